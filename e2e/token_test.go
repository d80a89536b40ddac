package e2e

import (
	"context"
	"errors"
	gosync "sync"
	"testing"
	"time"

	"fieldsync/sync/client"
)

// TestLongOfflineDeviceKeepsItsWork: a device token in use slides forward (a phone that
// syncs every few weeks is never logged out), and a phone offline longer than its token
// lasts logs in again with the same device id and keeps its device, its outbox and its
// mirror: nothing is lost and nothing is applied twice.
func TestLongOfflineDeviceKeepsItsWork(t *testing.T) {
	t.Parallel()
	var mu gosync.Mutex
	var offset time.Duration
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	advance := func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() }
	const day = 24 * time.Hour

	e := newEnvAt(t, clock)
	id := e.newTicket("long offline: cooling tower fan")
	e.dispatch(id, "tech1")
	token, device := e.device("tech1", "phone-long")
	c := e.openClient(token, "phone-long", clientOpts{})
	syncNow(t, c)

	// In use every 20 days for 100 days: the 30-day token keeps sliding forward.
	for i := range 5 {
		advance(20 * day)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := c.SyncNow(ctx)
		cancel()
		if err != nil {
			t.Fatalf("sync on day %d with a token in use: %v", 20*(i+1), err)
		}
	}

	// Work done offline, then 31 days without a connection: the token has expired.
	r, ok, _ := c.Record("ticket", id)
	if !ok {
		t.Fatal("the dispatched ticket is not on the device")
	}
	mutate(t, c, "ticket", id, "action", r.Version, nil, "accept")
	note := client.NewID()
	mutate(t, c, "ticket_event", note, "create", 0, map[string]any{"ticket_id": id, "note": "fan bearing replaced after 31 days offline"}, "")
	advance(31 * day)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	err := c.SyncNow(ctx)
	cancel()
	if !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("sync with an expired token: %v; want ErrUnauthorized", err)
	}
	if st := c.State(); st.Pending != 2 || st.Stopped != "unauthorized" {
		t.Fatalf("after the expired token: pending %d stopped %q; want 2, unauthorized", st.Pending, st.Stopped)
	}

	// The technician logs in again on the same phone: same device, same outbox.
	token2, device2 := e.device("tech1", "phone-long")
	if device2 != device {
		t.Errorf("logging in again made a new device %s (was %s)", device2, device)
	}
	if err := c.SetToken(token2); err != nil {
		t.Fatal(err)
	}
	syncNow(t, c)
	if st := c.State(); st.Pending != 0 || st.Stopped != "" {
		t.Fatalf("after logging in again: pending %d stopped %q", st.Pending, st.Stopped)
	}
	if rej, _ := c.Rejections(); len(rej) != 0 {
		t.Fatalf("rejections: %+v", rej)
	}
	e.coord = e.login("coord") // the coordinator's web token expired with the jumps too
	accepts, notes := 0, 0
	for _, ev := range e.events(id) {
		if ev["action"] == "accept" {
			accepts++
		}
		if ev["note"] == "fan bearing replaced after 31 days offline" {
			notes++
		}
	}
	if accepts != 1 || notes != 1 {
		t.Errorf("on the server: %d accept and %d note events; want one each", accepts, notes)
	}
	var devs struct{ Items []map[string]any }
	e.must("GET", "/api/v1/devices?user_id="+e.users["tech1"], e.coord, nil, 200, &devs)
	if len(devs.Items) != 1 {
		t.Errorf("tech1 has %d devices; want the one phone", len(devs.Items))
	}
	e.sameStore(c, "tech1")
}
