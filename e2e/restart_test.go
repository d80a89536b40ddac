package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"fieldsync/sync/client"
)

// TestRestartMidStream: a live phone is pushing a long outbox in small batches and pulling
// live when the server shuts down and comes back on the same data folder. The phone
// reconnects by itself; every mutation is on the server exactly once, changes committed
// before, during and after the restart all reach the phone (no gap), and its store is its
// scope again.
func TestRestartMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("restart: long outbox")
	e.dispatch(id, "tech1")
	c, _ := e.newClient("tech1", "phone-restart", clientOpts{maxBatch: 5})
	syncNow(t, c)
	const n = 150
	for i := range n {
		mutate(t, c, "ticket_event", client.NewID(), "create", 0, map[string]any{"ticket_id": id, "note": fmt.Sprintf("restart note %03d", i)}, "")
	}
	before := e.newTicket("restart: dispatched before")
	e.dispatch(before, "tech1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the push under way", func() bool {
		p := c.State().Pending
		return p < n-20 && p > 0
	})
	e.restart()
	t.Logf("restarted with %d mutations pending", c.State().Pending)
	after := e.newTicket("restart: dispatched after")
	e.dispatch(after, "tech1")

	eventually(t, 20*time.Second, "the outbox drains after the restart", func() bool { return c.State().Pending == 0 })
	eventually(t, 10*time.Second, "the ticket dispatched after the restart arrives live", func() bool {
		_, ok, _ := c.Record("ticket", after)
		return ok
	})
	if _, ok, _ := c.Record("ticket", before); !ok {
		t.Error("the ticket dispatched before the restart is missing")
	}
	seen := map[string]int{}
	for _, ev := range e.events(id) {
		if s, _ := ev["note"].(string); len(s) > 0 {
			seen[s]++
		}
	}
	for i := range n {
		if k := fmt.Sprintf("restart note %03d", i); seen[k] != 1 {
			t.Errorf("%q is on the server %d times, want once", k, seen[k])
		}
	}
	if rej, _ := c.Rejections(); len(rej) != 0 {
		t.Errorf("rejections: %+v", rej)
	}
	eventually(t, 10*time.Second, "the phone holds its scope", func() bool {
		return diffStores(e.scopeOf("tech1"), localOf(t, c)) == ""
	})
	verify(t, c)
}
