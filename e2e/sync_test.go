package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldsync/schema"
	"fieldsync/sync/client"
)

// TestInitialSync: a fresh install of tech1's phone holds exactly its scope: the tickets
// assigned to tech1 (open, and completed within 30 days) and the one it reported, with their
// customers, sites, assets and events, its own user record and no one else's, the settings
// (but the alert channels' secrets), and nothing else; the server's digest agrees.
func TestInitialSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.newClient("tech1", "phone-1", clientOpts{})
	syncNow(t, c)

	// What tech1's scope must be, from the coordinator's view of the company.
	var all struct{ Items []map[string]any }
	e.must("GET", "/api/v1/tickets?limit=500", e.coord, nil, 200, &all)
	me := e.users["tech1"]
	wantTickets, refs := []string{}, map[string][]string{}
	for _, tk := range all.Items {
		mine := tk["assignee_id"] == me && tk["status"] != "cancelled"
		reported := tk["status"] == "reported" && tk["reported_by"] == me
		if !mine && !reported {
			continue
		}
		id := tk["id"].(string)
		wantTickets = append(wantTickets, id)
		for _, r := range []string{"customer", "site", "asset"} {
			if v, _ := tk[r+"_id"].(string); v != "" && !slices.Contains(refs[r], v) {
				refs[r] = append(refs[r], v)
			}
		}
		for _, ev := range e.events(id) {
			refs["ticket_event"] = append(refs["ticket_event"], ev["id"].(string))
		}
	}
	if len(wantTickets) < 6 {
		t.Fatalf("the demo gives tech1 %d tickets; want at least 6", len(wantTickets))
	}
	local := localOf(t, c)
	check := func(entity string, want []string) {
		t.Helper()
		sort.Strings(want)
		if got := keysOf(local, entity+"/"); !slices.Equal(got, want) {
			t.Errorf("%s on the device: %v\nwant %v", entity, got, want)
		}
	}
	check("ticket", wantTickets)
	for _, ent := range []string{"customer", "site", "asset", "ticket_event"} {
		check(ent, refs[ent])
	}
	check("user", []string{me})
	var n int
	// Every setting but the alert channels' secrets, which stay on the server.
	e.srv.DB.R.QueryRow(`SELECT count(*) FROM records WHERE entity = 'setting' AND id NOT IN (SELECT value FROM json_each(?))`,
		schema.MustJSON(schema.SecretSettings)).Scan(&n)
	if got := keysOf(local, "setting/"); len(got) != n || n == 0 {
		t.Errorf("the device holds %d settings, the server has %d it may send", len(got), n)
	}
	for k := range local {
		ent := strings.SplitN(k, "/", 2)[0]
		switch ent {
		case "ticket", "customer", "site", "asset", "ticket_event", "feedback_sheet", "user", "setting":
		default:
			t.Errorf("the device holds %s, outside a technician's scope", k)
		}
	}
	e.sameStore(c, "tech1")
	verify(t, c)
	if st := c.State(); st.Checkpoint == "" || st.Pending != 0 || st.LastSync.IsZero() {
		t.Errorf("state after the first sync: %+v", st)
	}
}

// TestIncrementalSync: after the first sync, only what changed comes down: an edit by the
// coordinator and a new dispatch, both visible after the next round; a ticket of another
// technician never is.
func TestIncrementalSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.newClient("tech1", "phone-1", clientOpts{})
	syncNow(t, c)
	cp1 := c.State().Checkpoint

	id := e.newTicket("incremental: pump leaks")
	e.dispatch(id, "tech1")
	other := e.newTicket("incremental: not yours")
	e.dispatch(other, "tech2")
	syncNow(t, c)
	if c.State().Checkpoint == cp1 {
		t.Error("the checkpoint did not move")
	}
	r, ok, err := c.Record("ticket", id)
	if err != nil || !ok {
		t.Fatalf("the new dispatch is not on the device: %v", err)
	}
	if !strings.Contains(string(r.Data), `"status":"dispatched"`) {
		t.Errorf("ticket on the device: %s", r.Data)
	}
	if _, ok, _ := c.Record("ticket", other); ok {
		t.Error("tech2's ticket reached tech1's device")
	}

	// The coordinator raises the urgency: the device gets the new version.
	tk := e.ticket(id)
	st, raw := e.do("PATCH", "/api/v1/tickets/"+id, e.coord, map[string]any{"urgency": "critical"}, "If-Match", itoa(tk["version"]))
	if st != 200 {
		t.Fatalf("PATCH: %d %s", st, raw)
	}
	syncNow(t, c)
	r, _, _ = c.Record("ticket", id)
	if !strings.Contains(string(r.Data), `"urgency":"critical"`) {
		t.Errorf("the urgency change did not come down: %s", r.Data)
	}
	e.sameStore(c, "tech1")
	verify(t, c)
}

// TestLiveDispatch: a connected phone gets a ticket dispatched to it without asking, within
// a moment, with its customer, site and asset.
func TestLiveDispatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, _ := e.newClient("tech2", "phone-2", clientOpts{})
	arrived := make(chan string, 64)
	c.OnChange(func(entity, id, op string) {
		if entity == "ticket" && op == "upsert" {
			select {
			case arrived <- id:
			default:
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "connected and caught up", func() bool {
		st := c.State()
		return st.Connected && !st.LastSync.IsZero()
	})
	id := e.newTicket("live: conveyor stopped")
	start := time.Now()
	e.dispatch(id, "tech2")
	took := eventually(t, 5*time.Second, "the dispatch reaches the connected phone", func() bool {
		_, ok, _ := c.Record("ticket", id)
		return ok
	})
	t.Logf("dispatch reached the phone %v after the API answered (%v after the request)", took, time.Since(start))
	for _, ref := range [][2]string{{"customer", e.cust}, {"site", e.site}, {"asset", e.asset}} {
		if _, ok, _ := c.Record(ref[0], ref[1]); !ok {
			t.Errorf("%s %s did not come with the ticket", ref[0], ref[1])
		}
	}
	// The live stream keeps the store complete: the dispatch event follows the ticket.
	eventually(t, 10*time.Second, "the device matches its scope", func() bool {
		return diffStores(e.scopeOf("tech2"), localOf(t, c)) == ""
	})
	verify(t, c)
}

// TestOfflineWork: the technician works with no network (accept, en route, arrive, a note,
// inspection text, time spent, a new fault reported on another machine), then the phone
// finds a network: every mutation is applied once, in order, and the server has it all.
func TestOfflineWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("offline: basement pump")
	e.dispatch(id, "tech1")
	c, _ := e.newClient("tech1", "phone-1", clientOpts{})
	syncNow(t, c)
	r, ok, _ := c.Record("ticket", id)
	if !ok {
		t.Fatal("the dispatched ticket is not on the device")
	}

	// Offline: nothing below talks to the server.
	mutate(t, c, "ticket", id, "action", r.Version, nil, "accept")
	mutate(t, c, "ticket", id, "action", r.Version, nil, "en_route")
	mutate(t, c, "ticket", id, "action", r.Version, nil, "arrive")
	mutate(t, c, "ticket", id, "update", r.Version, map[string]any{"inspection_record": "bearing worn", "time_spent_min": 40}, "")
	note := client.NewID()
	mutate(t, c, "ticket_event", note, "create", 0, map[string]any{"ticket_id": id, "note": "customer asked for a quote"}, "")
	report := client.NewID()
	mutate(t, c, "ticket", report, "create", 0, map[string]any{"customer_id": e.cust, "site_id": e.site,
		"fault_symptoms": "second pump hums loudly"}, "")
	if st := c.State(); st.Pending != 6 {
		t.Fatalf("pending %d, want 6", st.Pending)
	}
	// The app's view shows the pending edits at once.
	if v, _, _ := c.Record("ticket", id); !v.Pending || !strings.Contains(string(v.Data), "bearing worn") {
		t.Errorf("the local view does not show the pending edit: %+v", v)
	}

	syncNow(t, c)
	if st := c.State(); st.Pending != 0 {
		t.Fatalf("pending %d after sync", st.Pending)
	}
	if rej, _ := c.Rejections(); len(rej) != 0 {
		t.Fatalf("rejections: %+v", rej)
	}
	tk := e.ticket(id)
	if tk["status"] != "on_site" || tk["inspection_record"] != "bearing worn" || itoa(tk["time_spent_min"]) != "40" {
		t.Errorf("server ticket: status %v inspection %v time %v", tk["status"], tk["inspection_record"], tk["time_spent_min"])
	}
	count := map[string]int{}
	for _, ev := range e.events(id) {
		if a, _ := ev["action"].(string); a != "" {
			count[a]++
		}
		if ev["note"] == "customer asked for a quote" {
			count["note"]++
		}
	}
	for _, k := range []string{"accept", "en_route", "arrive", "note"} {
		if count[k] != 1 {
			t.Errorf("%s recorded %d times on the server, want once", k, count[k])
		}
	}
	var rep map[string]any
	e.must("GET", "/api/v1/tickets/"+report, e.coord, nil, 200, &rep)
	if rep["source"] != "technician_report" || rep["status"] != "reported" || rep["verified"] != false {
		t.Errorf("reported ticket: source %v status %v verified %v", rep["source"], rep["status"], rep["verified"])
	}
	// The same round brought down what the pushes made on the server (the action events).
	e.sameStore(c, "tech1")
	verify(t, c)
}

// TestDroppedAcknowledgement: the phone pushed, the server applied, but the phone never
// stored the results (the app was killed, the answer was lost). The same outbox is sent
// again: every mutation comes back duplicate and nothing is applied twice.
func TestDroppedAcknowledgement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("dropped ack")
	e.dispatch(id, "tech1")
	dir := t.TempDir()
	token, _ := e.device("tech1", "phone-1")
	pathA := filepath.Join(dir, "a.db")
	a := e.openClient(token, "phone-1", clientOpts{dbPath: pathA})
	syncNow(t, a)
	r, _, _ := a.Record("ticket", id)
	mutate(t, a, "ticket", id, "action", r.Version, nil, "accept")
	mutate(t, a, "ticket_event", client.NewID(), "create", 0, map[string]any{"ticket_id": id, "note": "once only"}, "")
	mutate(t, a, "ticket", id, "update", r.Version, map[string]any{"tech_notes": "n1"}, "")
	a.Close()
	pathB := filepath.Join(dir, "b.db")
	copyDB(t, pathA, pathB) // the phone's state before the answer arrived

	a = e.openClient(token, "phone-1", clientOpts{dbPath: pathA})
	syncNow(t, a)
	v1 := e.ticket(id)["version"]
	a.Close()

	b := e.openClient(token, "phone-1", clientOpts{dbPath: pathB})
	if st := b.State(); st.Pending != 3 {
		t.Fatalf("the copy holds %d pending mutations, want 3", st.Pending)
	}
	syncNow(t, b)
	if st := b.State(); st.Pending != 0 {
		t.Fatalf("pending %d after the re-send", st.Pending)
	}
	if rej, _ := b.Rejections(); len(rej) != 0 {
		t.Fatalf("the re-sent batch was rejected: %+v", rej)
	}
	if v2 := e.ticket(id)["version"]; itoa(v2) != itoa(v1) {
		t.Errorf("the ticket moved from version %v to %v on a re-send", v1, v2)
	}
	notes, accepts := 0, 0
	for _, ev := range e.events(id) {
		if ev["note"] == "once only" {
			notes++
		}
		if ev["action"] == "accept" {
			accepts++
		}
	}
	if notes != 1 || accepts != 1 {
		t.Errorf("note applied %d times, accept %d times; want once each", notes, accepts)
	}
	// The server remembers each mid once.
	var n int
	e.srv.DB.R.QueryRow(`SELECT count(*) FROM mutations WHERE status != 'rejected'`).Scan(&n)
	if n != 3 {
		t.Errorf("%d remembered mutations, want 3", n)
	}
	syncNow(t, b)
	e.sameStore(b, "tech1")
}

// TestHTTPFallback: the same offline work pushed over the HTTP fallback leaves the device in
// the same state as over the WebSocket.
func TestHTTPFallback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("fallback")
	e.dispatch(id, "tech3")
	ws, _ := e.newClient("tech3", "phone-ws", clientOpts{})
	hc, _ := e.newClient("tech3", "phone-http", clientOpts{forceHTTP: true})
	syncNow(t, ws)
	syncNow(t, hc)
	if d := diffStores(localOf(t, ws), localOf(t, hc)); d != "" {
		t.Fatalf("after the first sync the HTTP device differs:\n%s", d)
	}
	r, _, _ := hc.Record("ticket", id)
	mutate(t, hc, "ticket", id, "action", r.Version, nil, "accept")
	mutate(t, hc, "ticket", id, "update", r.Version, map[string]any{"tech_notes": "over http"}, "")
	mutate(t, hc, "ticket_event", client.NewID(), "create", 0, map[string]any{"ticket_id": id, "note": "http note"}, "")
	// A forged id is rejected the same way over HTTP.
	mutate(t, hc, "ticket", "no-such-ticket", "update", 1, map[string]any{"tech_notes": "x"}, "")
	syncNow(t, hc)
	rej, _ := hc.Rejections()
	if len(rej) != 1 || rej[0].Code != "out_of_scope" {
		t.Fatalf("rejections over HTTP: %+v", rej)
	}
	syncNow(t, hc)
	syncNow(t, ws)
	e.sameStore(hc, "tech3")
	e.sameStore(ws, "tech3")
	if d := diffStores(localOf(t, ws), localOf(t, hc)); d != "" {
		t.Fatalf("the HTTP device and the WebSocket device differ:\n%s", d)
	}
	n1, h1, _ := hc.Digest()
	n2, h2, _ := ws.Digest()
	if n1 != n2 || h1 != h2 {
		t.Errorf("digests differ: http %d %s, ws %d %s", n1, h1, n2, h2)
	}
	verify(t, ws)
}

func itoa(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	return ""
}
