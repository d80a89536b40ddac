package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// liveEvent is one server-sent event.
type liveEvent struct {
	Name string
	Data map[string]any
}

// openLive opens /api/v1/live with token and returns its events; the stream ends with the
// test or when the server closes it.
func openLive(t *testing.T, base, token string) (*http.Response, <-chan liveEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/live", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan liveEvent, 100)
	if res.StatusCode != 200 {
		res.Body.Close()
		close(ch)
		return res, ch
	}
	go func() {
		defer close(ch)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var ev liveEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data)
			case line == "":
				if ev.Name != "" {
					ch <- ev
				}
				ev = liveEvent{}
			}
		}
	}()
	return res, ch
}

// nextEvent waits (at most 10 s) for the next event named one of names, skipping others;
// ok is false when the stream ended.
func nextEvent(t *testing.T, ch <-chan liveEvent, names ...string) (liveEvent, bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return ev, false
			}
			for _, n := range names {
				if ev.Name == n {
					return ev, true
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within 10 s", names)
		}
	}
}

// TestLiveFeed: an office user's open live feed hears of a change made by someone else (a
// dispatch through the API, a technician's step from the phone) with the ticket it concerns;
// a technician gets none; a user has a bounded number of feeds; the feed sends heartbeats;
// and it ends at once when the user logs out or is disabled.
func TestLiveFeed(t *testing.T) {
	d := liveHeartbeat
	t.Cleanup(func() { liveHeartbeat = d }) // after the server's shutdown (cleanups run last first)
	liveHeartbeat = 200 * time.Millisecond
	e := newEnv(t, true)
	base := e.start()
	coord := e.login("coord", DemoPassword)
	manager := e.login("manager", DemoPassword)

	res, ch := openLive(t, base, coord)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("live feed: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	hello, _ := nextEvent(t, ch, "hello")
	if str(hello.Data, "server_time") == "" {
		t.Errorf("hello without server_time: %v", hello.Data)
	}
	if _, ok := nextEvent(t, ch, "ping"); !ok {
		t.Fatal("no heartbeat")
	}

	// The manager dispatches a ticket: the coordinator's feed names it.
	var ticket, tech1 string
	for _, u := range e.must(e.do("GET", "/api/v1/users", manager, nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "tech1" {
			tech1 = str(m, "id")
		}
	}
	tickets := e.must(e.do("GET", "/api/v1/tickets?status=registered", manager, nil), 200).Body["items"].([]any)
	ticket = str(tickets[0].(map[string]any), "id")
	e.must(e.do("POST", "/api/v1/tickets/"+ticket+"/actions/dispatch", manager, map[string]any{"technician_id": tech1}), 200)
	found := false
	for !found {
		ev, ok := nextEvent(t, ch, "changes")
		if !ok {
			t.Fatal("the feed ended")
		}
		for _, c := range ev.Data["changes"].([]any) {
			if cm := c.(map[string]any); cm["entity"] == "ticket" && cm["id"] == ticket && cm["ticket_id"] == ticket {
				found = true
			}
		}
	}
	// A note on it names the ticket as the one concerned.
	e.must(e.do("POST", "/api/v1/tickets/"+ticket+"/notes", manager, map[string]any{"note": "客户催促 customer chasing"}), 201)
	for found = false; !found; {
		ev, ok := nextEvent(t, ch, "changes")
		if !ok {
			t.Fatal("the feed ended")
		}
		for _, c := range ev.Data["changes"].([]any) {
			if cm := c.(map[string]any); cm["entity"] == "ticket_event" && cm["ticket_id"] == ticket {
				found = true
			}
		}
	}

	// Technicians have the field app's own live sync, not this feed.
	phone := e.deviceLogin("tech1", DemoPassword, "live-phone")
	if r, _ := openLive(t, base, phone); r.StatusCode != 403 {
		t.Errorf("a technician's live feed: %d, want 403", r.StatusCode)
	}
	if r, _ := openLive(t, base, "not-a-token"); r.StatusCode != 401 {
		t.Errorf("a live feed without a session: %d, want 401", r.StatusCode)
	}

	// At most LiveFeedsPerUser feeds per user; one more is refused with a reason.
	for range LiveFeedsPerUser - 1 {
		if r, _ := openLive(t, base, coord); r.StatusCode != 200 {
			t.Fatalf("feed within the bound: %d", r.StatusCode)
		}
	}
	if r, _ := openLive(t, base, coord); r.StatusCode != 429 {
		t.Errorf("one feed over the bound: %d, want 429", r.StatusCode)
	}

	// Logging out ends the feed at once, with a reason.
	e.must(e.do("POST", "/api/v1/auth/logout", coord, nil), 204)
	end, ok := nextEvent(t, ch, "end")
	if !ok || str(end.Data, "code") != "unauthenticated" {
		t.Errorf("after logout the feed said %v (ok %v), want end unauthenticated", end.Data, ok)
	}
	if _, ok := nextEvent(t, ch, "never"); ok {
		t.Error("the feed stayed open after its end")
	}

	// Disabling a user ends theirs.
	_, mch := openLive(t, base, manager)
	nextEvent(t, mch, "hello")
	admin := e.login("admin", DemoPassword)
	var managerID string
	var version float64
	for _, u := range e.must(e.do("GET", "/api/v1/users", admin, nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "manager" {
			managerID, version = str(m, "id"), m["version"].(float64)
		}
	}
	e.must(e.do("PATCH", "/api/v1/users/"+managerID, admin, map[string]any{"active": false}, "If-Match", strings.TrimSuffix(strings.TrimSuffix(jsonNum(version), ".0"), ".")), 200)
	if end, ok := nextEvent(t, mch, "end"); !ok || str(end.Data, "code") != "unauthenticated" {
		t.Errorf("after disabling the manager their feed said %v (ok %v)", end.Data, ok)
	}
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }
