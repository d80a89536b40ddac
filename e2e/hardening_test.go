package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"fieldsync/schema"
	syncer "fieldsync/sync"
	"fieldsync/sync/client"
)

// cliEngine opens the server's data folder a second time, as the command line does beside
// a running server: its own connections, its own engine, its own hub.
func (e *env) cliEngine() *syncer.Engine {
	e.t.Helper()
	db, err := schema.OpenExistingStore(context.Background(), e.dir, e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	eng, err := syncer.New(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		db.Close()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { eng.Close(); db.Close() })
	return eng
}

// TestCommandLineBesideServer (hardening 1): user add, disable and enable from the command
// line while the server runs; the server keeps writing, and the server's live connections
// learn of the change: the disabled technician's socket closes.
func TestCommandLineBesideServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, _ := e.device("tech1", "cli-phone")
	p := e.dial(token)
	p.hello("cli-phone")

	cli := e.cliEngine()
	ctx := context.Background()
	cliActor := schema.Actor{UserID: "cli", Role: schema.RoleAdmin, Name: "command line"}
	if _, err := cli.CreateUser(ctx, cliActor, syncer.NewUser{Username: "newtech", Name: "新来的 New", Role: schema.RoleTechnician, Password: "a-long-new-pass-2026"}); err != nil {
		t.Fatal(err)
	}
	// The server writes on: a ticket, a dispatch, a push from the phone.
	id := e.newTicket("after the command line added a user")
	e.dispatch(id, "tech1")
	if got := e.ticket(id)["status"]; got != "dispatched" {
		t.Fatalf("ticket status %v after dispatch", got)
	}
	// And the command line again, after the server wrote.
	if err := cli.SetActive(ctx, cliActor, "newtech", false); err != nil {
		t.Fatal(err)
	}
	if err := cli.SetActive(ctx, cliActor, "newtech", true); err != nil {
		t.Fatal(err)
	}
	e.newTicket("after disable and enable")
	if st, body := e.do("POST", "/api/v1/auth/login", "", map[string]any{"username": "newtech", "password": "a-long-new-pass-2026"}); st != 403 && st != 200 {
		t.Errorf("newtech's login: %d %s", st, body)
	}

	// The command line disables tech1: the server closes the phone's connection.
	start := time.Now()
	if err := cli.SetActive(ctx, cliActor, "tech1", false); err != nil {
		t.Fatal(err)
	}
	if code := p.closed(10 * time.Second); code != syncer.CloseUnauthenticated {
		t.Errorf("tech1's connection closed with %d, want 4401", code)
	}
	t.Logf("closed %v after the command line disabled the user", time.Since(start))
	if st, _ := e.do("POST", "/mobile/v1/sync/pull", token, map[string]any{"checkpoint": ""}); st != 401 {
		t.Errorf("a pull with the disabled user's token: %d, want 401", st)
	}
}

// TestCompressedFrameBomb (hardening 2): a small compressed frame that inflates past the
// limit is refused by what it decodes to (1009), before hello with a small limit.
func TestCompressedFrameBomb(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dial := func(token string) *websocket.Conn {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{syncer.Subprotocol}, EnableCompression: true}
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		c, _, err := d.Dial("ws://"+e.addr+"/mobile/v1/sync", h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.EnableWriteCompression(true)
		return c
	}
	closeCode := func(c *websocket.Conn) int {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			if err != nil {
				t.Fatalf("connection ended without a close frame: %v", err)
			}
		}
	}

	// Before hello: 16 MiB of spaces, a few KiB on the wire.
	c := dial("")
	if err := c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat(" ", 16<<20))); err != nil {
		t.Logf("write: %v", err) // the server may close before the whole frame is written
	}
	if code := closeCode(c); code != syncer.CloseTooBig {
		t.Errorf("a 16 MiB compressed frame before hello closed with %d, want 1009", code)
	}

	// After hello: the limit is max_frame_bytes, decompressed.
	token, _ := e.device("tech1", "bomb-phone")
	c = dial(token)
	c.WriteJSON(map[string]any{"type": "hello", "id": "h1", "protocol": 1, "device_id": "bomb-phone", "app_version": "raw", "schema_version": 1})
	var w map[string]any
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.ReadJSON(&w); err != nil || w["type"] != "welcome" {
		t.Fatalf("hello: %v %v", w, err)
	}
	big := `{"type":"push","id":"p1","mutations":[],"pad":"` + strings.Repeat("a", syncer.DefaultMaxFrameBytes) + `"}`
	if err := c.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Logf("write: %v", err) // the server may close before the whole frame is written
	}
	if code := closeCode(c); code != syncer.CloseTooBig {
		t.Errorf("a frame inflating past max_frame_bytes closed with %d, want 1009", code)
	}
	// A frame just under the limit before hello is still read and answered.
	c = dial("")
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"pull","id":"x","checkpoint":""}`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.ReadJSON(&w); err != nil || w["type"] != "error" {
		t.Errorf("a small frame before hello: %v %v, want an error frame", w, err)
	}
}

// TestClosedMeansClosed (hardening 3): a connection that never says hello and keeps sending
// pongs gets its close frame at the hello timeout, and its TCP connection ends shortly
// after, even when the peer never answers the close.
func TestClosedMeansClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{syncer.Subprotocol}}
	c, _, err := d.Dial("ws://"+e.addr+"/mobile/v1/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetCloseHandler(func(int, string) error { return nil }) // never answer the close
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 100; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				if c.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second)) != nil {
					return
				}
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != syncer.CloseUnauthenticated {
		t.Fatalf("want close 4401 at the hello timeout, got %v", err)
	}
	closedAt := time.Now()
	raw := c.UnderlyingConn()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	for {
		_, err := raw.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the TCP connection was still open 5 s after the close frame")
		}
		t.Logf("TCP closed %v after the close frame (%v)", time.Since(closedAt), err)
		return
	}
}

// TestSessionChangesCloseTheSocket (hardening 6): disabling the user through the write
// path, logging the device out, changing the user's role and the token's expiry each close
// an open sync connection at once; revoking the device closes it with 4403.
func TestSessionChangesCloseTheSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	eng := e.srv.Engine
	admin := schema.Actor{UserID: "system", Role: schema.RoleAdmin, Name: "test admin"}
	setUser := func(user string, fields map[string]any) {
		t.Helper()
		cur, err := eng.Get(ctx, schema.EntUser, e.users[user])
		if err != nil {
			t.Fatal(err)
		}
		raw := map[string]json.RawMessage{}
		for k, v := range fields {
			raw[k], _ = json.Marshal(v)
		}
		res, err := eng.Apply(ctx, admin, []syncer.Mutation{{Entity: schema.EntUser, ID: e.users[user], Op: "update", BaseVersion: cur.Int("version"), Fields: raw}}, syncer.Options{})
		if err != nil || res[0].Status != syncer.StatusApplied {
			t.Fatalf("update %s: %v %+v", user, err, res)
		}
	}
	cases := []struct {
		name   string
		user   string
		change func(token, device string)
		want   int
	}{
		{"disabled through the write path", "tech1", func(string, string) { setUser("tech1", map[string]any{"active": false}) }, syncer.CloseUnauthenticated},
		{"logged out", "tech2", func(token, _ string) { e.must("POST", "/api/v1/auth/logout", token, nil, 204, nil) }, syncer.CloseUnauthenticated},
		{"role changed", "tech3", func(string, string) { setUser("tech3", map[string]any{"role": schema.RoleCoordinator}) }, syncer.CloseUnauthenticated},
		{"device revoked", "tech2", func(_, device string) { e.must("POST", "/api/v1/devices/"+device+"/revoke", e.coord, nil, 200, nil) }, syncer.CloseRevoked},
	}
	for i, c := range cases {
		devID := "session-phone-" + string(rune('a'+i))
		token, device := e.device(c.user, devID)
		p := e.dial(token)
		p.hello(devID)
		c.change(token, device)
		if code := p.closed(10 * time.Second); code != c.want {
			t.Errorf("%s: closed with %d, want %d", c.name, code, c.want)
		}
	}

	// A token that expires while its connection is open: the connection closes then. (Its
	// hello is a use that slides the token a full lifetime forward, so the lifetime is cut
	// short afterwards and the open session checked again to pick it up.)
	token, device := e.device("tech2", "expiring-phone")
	p := e.dial(token)
	p.hello("expiring-phone")
	if _, err := e.srv.DB.W.Exec(`UPDATE tokens SET expires_at = ? WHERE device = ?`,
		schema.Stamp(time.Now().Add(2*time.Second)), device); err != nil {
		t.Fatal(err)
	}
	setUser("tech2", map[string]any{"phone": "13800000000"})
	if code := p.closed(10 * time.Second); code != syncer.CloseUnauthenticated {
		t.Errorf("token expired: closed with %d, want 4401", code)
	}
}

// TestForeignReferences (hardening 8): a technician cannot point a record at a customer,
// site or asset outside their scope, and the refusal reads the same whether the id exists
// or not; nothing of the foreign customer reaches the phone.
func TestForeignReferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("tech1's own ticket")
	e.dispatch(id, "tech1")
	var cust, site, asset map[string]any
	e.must("POST", "/api/v1/customers", e.coord, map[string]any{"name": "外人公司 Outsider Ltd", "phone": "010-55550000", "notes": "私密 private"}, 201, &cust)
	e.must("POST", "/api/v1/customers/"+cust["id"].(string)+"/sites", e.coord, map[string]any{"name": "外人工厂", "address": "北京市海淀区保密路 1 号"}, 201, &site)
	e.must("POST", "/api/v1/assets", e.coord, map[string]any{"customer_id": cust["id"], "site_id": site["id"], "model": "X-1", "serial": "OUT-0001"}, 201, &asset)

	c, _ := e.newClient("tech1", "phone-foreign", clientOpts{})
	syncNow(t, c)
	tk, ok, _ := c.Record("ticket", id)
	if !ok {
		t.Fatal("tech1 does not hold the ticket")
	}
	v := tk.Version
	for _, f := range []struct{ field, foreign string }{
		{"customer_id", cust["id"].(string)}, {"site_id", site["id"].(string)}, {"asset_id", asset["id"].(string)},
		{"customer_id", "0198aaaa-0000-7000-8000-00000000dead"},
	} {
		mutate(t, c, "ticket", id, "update", v, map[string]any{f.field: f.foreign}, "")
	}
	// A fault report (a new ticket) naming the foreign customer.
	mutate(t, c, "ticket", client.NewID(), "create", 0, map[string]any{"customer_id": cust["id"], "fault_symptoms": "看到的故障"}, "")
	syncNow(t, c)
	rej, _ := c.Rejections()
	if len(rej) != 5 {
		t.Fatalf("want 5 rejections, got %d: %+v", len(rej), rej)
	}
	shape := func(msg, id string) string { return strings.ReplaceAll(msg, id, "ID") }
	for i, x := range rej {
		if x.Code != "out_of_scope" || x.Field == "" {
			t.Errorf("rejection %d: %s %s (field %q), want out_of_scope naming the field", i, x.Code, x.Message, x.Field)
		}
		if strings.Contains(x.Message, "外人") || len(x.Record) > 0 && strings.Contains(string(x.Record), "外人") {
			t.Errorf("the rejection reveals the foreign customer: %s", x.Message)
		}
	}
	// The refusals of the existing and the missing customer read the same, ids aside.
	shapes := map[string]bool{}
	for _, x := range rej {
		if x.Field == "customer_id" && x.Op == "update" {
			shapes[shape(shape(x.Message, cust["id"].(string)), "0198aaaa-0000-7000-8000-00000000dead")] = true
		}
	}
	if len(shapes) != 1 {
		t.Errorf("an existing and a missing customer are refused differently: %v", shapes)
	}
	for _, ref := range []struct{ entity, id string }{{"customer", cust["id"].(string)}, {"site", site["id"].(string)}, {"asset", asset["id"].(string)}} {
		if _, ok, _ := c.Record(ref.entity, ref.id); ok {
			t.Errorf("the foreign %s reached the phone", ref.entity)
		}
	}
	if got := e.ticket(id)["customer_id"]; got != e.cust {
		t.Errorf("the ticket's customer is now %v", got)
	}
	e.sameStore(c, "tech1")
}

// TestOrphanedWorkIsChecked (hardening 11): work pushed for a ticket that left the phone's
// scope is kept for the coordinator only when it would have been accepted: an oversized
// note or an unknown field is refused and not kept.
func TestOrphanedWorkIsChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("orphaned work: pump noise")
	e.dispatch(id, "tech1")
	c, _ := e.newClient("tech1", "phone-orphan", clientOpts{})
	syncNow(t, c)
	r, ok, _ := c.Record("ticket", id)
	if !ok {
		t.Fatal("tech1 does not hold its ticket")
	}
	mutate(t, c, "ticket_event", client.NewID(), "create", 0, map[string]any{"ticket_id": id, "note": "bearing worn 轴承磨损"}, "")
	mutate(t, c, "ticket_event", client.NewID(), "create", 0, map[string]any{"ticket_id": id, "note": strings.Repeat("长", 100_000)}, "")
	mutate(t, c, "ticket", id, "update", r.Version, map[string]any{"tech_notes": "ok", "injected": "<script>"}, "")
	e.dispatch(id, "tech2")
	syncNow(t, c)
	rej, _ := c.Rejections()
	if len(rej) != 3 {
		t.Fatalf("rejections: %+v", rej)
	}
	keptSaid := 0
	for _, x := range rej {
		if strings.Contains(x.Message, "kept on ticket") {
			keptSaid++
		}
	}
	if keptSaid != 1 {
		t.Errorf("%d rejections say the work was kept, want 1 (the valid note)", keptSaid)
	}
	var kept []string
	for _, ev := range e.events(id) {
		if ev["kind"] == "orphaned_work" {
			b, _ := json.Marshal(ev["details"])
			kept = append(kept, string(b))
		}
	}
	if len(kept) != 1 || !strings.Contains(kept[0], "bearing worn") {
		t.Errorf("kept orphaned work: %d events, want only the valid note: %.300v", len(kept), kept)
	}
}

// TestInputHygiene (hardening 20): what the JSON decoder let through silently is refused
// with an error naming it: a key twice, text that is not UTF-8, a checkpoint the server
// never issued; an empty push is answered with an empty list; /api/v1/demo is 404 on a
// server without --demo (see server tests).
func TestInputHygiene(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, _ := e.device("tech1", "hygiene-phone")
	p := e.dial(token)
	p.hello("hygiene-phone")
	for _, c := range []struct{ name, frame, code, msg string }{
		{"a key twice", `{"type":"pull","id":"d1","checkpoint":"","checkpoint":"t1"}`, "bad_request", `"checkpoint" appears twice`},
		{"a key twice, escaped", `{"type":"push","id":"d2","mutations":[{"mid":"m1","entity":"ticket","id":"x","op":"update","fields":{"tech_notes":"a","tech_\u006eotes":"b"}}]}`, "bad_request", `"tech_notes" appears twice`},
		{"not UTF-8", "{\"type\":\"pull\",\"id\":\"d3\",\"checkpoint\":\"\xff\"}", "bad_request", "not valid UTF-8"},
		{"a checkpoint never issued", `{"type":"pull","id":"d4","checkpoint":"t99999999999999"}`, "validation", "not one this server issued"},
	} {
		p.sendRaw(c.frame)
		f := p.must()
		if f["type"] != "error" || f["code"] != c.code || !strings.Contains(fmt.Sprint(f["message"]), c.msg) {
			t.Errorf("%s: answered %v, want %s error saying %q", c.name, f, c.code, c.msg)
		}
	}
	p.sendRaw(`{"type":"push","id":"e1","mutations":[]}`)
	f := p.must()
	if res, ok := f["results"].([]any); f["type"] != "results" || !ok || len(res) != 0 {
		t.Errorf("an empty push answered %v, want results: []", f)
	}
	// The HTTP API refuses the same.
	st, body := e.do("POST", "/api/v1/tickets", e.coord, json.RawMessage(`{"customer_id":"a","customer_id":"b","fault_symptoms":"x"}`))
	if st != 400 || !strings.Contains(string(body), "appears twice") {
		t.Errorf("a key twice in an API body: %d %s", st, body)
	}
}

// TestWriteQuotas (hardening 9): one user's devices share an hourly push quota (another
// user's pushes go on), a user may register only so many devices, and a ticket flooded with
// events still answers with a bounded page.
func TestWriteQuotas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.login("admin")
	e.must("PUT", "/api/v1/settings", admin, map[string]any{"push_mutations_per_hour": 30, "max_devices_per_user": 2}, 200, nil)
	id := e.newTicket("quota")
	e.dispatch(id, "tech1")
	note := func(i int) map[string]any {
		return map[string]any{"mid": client.NewID(), "entity": "ticket_event", "id": client.NewID(), "op": "create", "fields": map[string]any{"ticket_id": id, "note": fmt.Sprint("note ", i)}}
	}
	batch := func(n int) map[string]any {
		var ms []any
		for i := 0; i < n; i++ {
			ms = append(ms, note(i))
		}
		return map[string]any{"mutations": ms}
	}
	tokA, _ := e.device("tech1", "quota-a")
	tokB, _ := e.device("tech1", "quota-b")
	e.must("POST", "/mobile/v1/sync/push", tokA, batch(20), 200, nil)
	// The same user's other device shares the quota: 20 more is over it.
	st, body := e.do("POST", "/mobile/v1/sync/push", tokB, batch(20))
	if st != 429 || !strings.Contains(string(body), "rate_limited") || !strings.Contains(string(body), "retry in") {
		t.Errorf("a push over the user's hourly quota: %d %s, want 429 rate_limited saying when to retry", st, body)
	}
	// A batch larger than the whole quota can never pass: too_large, so the app splits it.
	if st, body := e.do("POST", "/mobile/v1/sync/push", tokB, batch(31)); st != 413 || !strings.Contains(string(body), "too_large") {
		t.Errorf("a push larger than the hourly quota: %d %s, want 413 too_large", st, body)
	}
	// Another technician is not held back.
	other := e.newTicket("quota, other")
	e.dispatch(other, "tech2")
	tok2, _ := e.device("tech2", "quota-honest")
	e.must("POST", "/mobile/v1/sync/push", tok2, map[string]any{"mutations": []any{map[string]any{"mid": client.NewID(), "entity": "ticket_event", "id": client.NewID(), "op": "create",
		"fields": map[string]any{"ticket_id": other, "note": "honest"}}}}, 200, nil)

	// A third device for tech1 is refused, by name, until one is revoked.
	st, body = e.do("POST", "/mobile/v1/auth/login", "", map[string]string{"username": "tech1", "password": demoPassword, "device_id": "quota-c"})
	if st != 403 || !strings.Contains(string(body), "revoke") {
		t.Errorf("a third device: %d %s, want 403 asking for a revoke", st, body)
	}
	var devs struct{ Items []map[string]any }
	e.must("GET", "/api/v1/devices", e.coord, nil, 200, &devs)
	for _, d := range devs.Items {
		if d["device_id"] == "quota-a" {
			e.must("POST", "/api/v1/devices/"+d["id"].(string)+"/revoke", e.coord, nil, 200, nil)
		}
	}
	e.device("tech1", "quota-c")

	// 20 notes and the ticket's own events: the ticket answer is bounded, the rest pages.
	for i := 0; i < 110; i++ {
		e.must("POST", "/api/v1/tickets/"+id+"/notes", e.coord, map[string]any{"note": fmt.Sprint("office note ", i)}, 201, nil)
	}
	tk := e.ticket(id)
	evs := tk["events"].([]any)
	total := int(tk["events_total"].(float64))
	if len(evs) != 100 || total < 130 {
		t.Fatalf("the ticket lists %d events of %d, want the newest 100 of at least 130", len(evs), total)
	}
	if last := evs[len(evs)-1].(map[string]any)["note"]; last != "office note 109" {
		t.Errorf("the newest event listed is %v, want the last note", last)
	}
	var pg struct {
		Items []map[string]any
		Total int
	}
	e.must("GET", fmt.Sprintf("/api/v1/tickets/%s/events?limit=500&offset=0", id), e.coord, nil, 200, &pg)
	if pg.Total != total || len(pg.Items) != total {
		t.Errorf("paging the events: %d items, total %d; the ticket said %d", len(pg.Items), pg.Total, total)
	}
}
