package sync

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"fieldsync/schema"
)

// TestQueueBoundPerDevice: a device whose pushes already queued hold MaxQueuedMutations
// mutations waits with its next push, and is answered rate_limited (retryable) when the
// writer does not get to it within QueueWait; nothing of that push is applied. Another
// device's push is queued meanwhile, and everything queued is applied once the writer
// moves on.
func TestQueueBoundPerDevice(t *testing.T) {
	e, tech, ids := benchScope(t, 1)
	ctx := context.Background()
	defer func(w time.Duration) { QueueWait = w }(QueueWait)
	QueueWait = 300 * time.Millisecond

	// The writer is held busy by a maintenance task until release.
	started, release := make(chan struct{}), make(chan struct{})
	go e.run(ctx, func(*wtx) error { close(started); <-release; return nil })
	<-started

	notes := func(n int) []Mutation {
		ms := make([]Mutation, n)
		for i := range ms {
			ms[i] = Mutation{MID: uuid.NewString(), Entity: schema.EntTicketEvent, ID: uuid.NewString(), Op: "create",
				Fields: raw(map[string]any{"ticket_id": ids[0], "note": fmt.Sprint("note ", i)})}
		}
		return ms
	}
	type answer struct {
		res []Result
		err error
	}
	push := func(actor schema.Actor, ms []Mutation) chan answer {
		ch := make(chan answer, 1)
		go func() {
			res, err := e.Push(ctx, actor, ms)
			ch <- answer{res, err}
		}()
		return ch
	}
	queued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); len(e.reqs) < n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d requests queued, want %d", len(e.reqs), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	first := push(tech, notes(MaxQueuedMutations-100))
	queued(1)
	over := notes(200)
	second := push(tech, over)
	other := tech
	other.DeviceID = "bench-device-2"
	third := push(other, notes(300))
	queued(2)

	select {
	case a := <-second:
		se, ok := schema.AsError(a.err)
		if !ok || se.Code != schema.CodeRateLimited {
			t.Fatalf("a push over the device's share of the queue: %v, want rate_limited", a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a push over the device's share of the queue was neither refused nor applied within 10 s")
	}
	close(release)
	for name, ch := range map[string]chan answer{"first": first, "third": third} {
		a := <-ch
		if a.err != nil {
			t.Fatalf("%s push: %v", name, a.err)
		}
		for _, r := range a.res {
			if r.Status != StatusApplied {
				t.Fatalf("%s push: %s %s %s", name, r.Status, r.Code, r.Message)
			}
		}
	}
	var n int
	if err := e.db.W.QueryRow(`SELECT COUNT(*) FROM records WHERE entity = 'ticket_event' AND data ->> 'note' LIKE 'note %'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := MaxQueuedMutations - 100 + 300; n != want {
		t.Errorf("%d notes stored, want %d", n, want)
	}
	var refused int
	for _, m := range over {
		var c int
		e.db.W.QueryRow(`SELECT COUNT(*) FROM mutations WHERE mid = ?`, m.MID).Scan(&c)
		refused += c
	}
	if refused != 0 {
		t.Errorf("%d mutations of the refused push were applied", refused)
	}
}
