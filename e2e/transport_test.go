package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// peer is a raw WebSocket connection speaking the protocol by hand.
type peer struct {
	t    *testing.T
	conn *websocket.Conn
}

// dial opens /mobile/v1/sync with the bearer token (none if "").
func (e *env) dial(token string) *peer {
	e.t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"fieldsync.v1"}}
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	conn, resp, err := d.Dial("ws://"+e.addr+"/mobile/v1/sync", h)
	if err != nil {
		e.t.Fatalf("dial: %v (%v)", err, resp)
	}
	if conn.Subprotocol() != "fieldsync.v1" {
		e.t.Errorf("subprotocol %q", conn.Subprotocol())
	}
	e.t.Cleanup(func() { conn.Close() })
	return &peer{t: e.t, conn: conn}
}

func (p *peer) sendRaw(s string) {
	p.t.Helper()
	if err := p.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

func (p *peer) send(f any) {
	p.t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendRaw(string(b))
}

// read returns the next frame, or the error that ended the connection.
func (p *peer) read(within time.Duration) (map[string]any, error) {
	p.conn.SetReadDeadline(time.Now().Add(within))
	_, b, err := p.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		p.t.Fatalf("undecodable frame %s", b)
	}
	return f, nil
}

func (p *peer) must() map[string]any {
	p.t.Helper()
	f, err := p.read(5 * time.Second)
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	return f
}

// closed waits for the server to close the connection and returns the close code.
func (p *peer) closed(within time.Duration) int {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		_, err := p.read(time.Until(deadline))
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			p.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
	p.t.Fatalf("not closed within %v", within)
	return 0
}

func (p *peer) hello(deviceID string) map[string]any {
	p.t.Helper()
	p.send(map[string]any{"type": "hello", "id": "h1", "protocol": 1, "device_id": deviceID, "app_version": "raw", "schema_version": 1})
	w := p.must()
	if w["type"] != "welcome" || w["re"] != "h1" {
		p.t.Fatalf("hello answered %v", w)
	}
	return w
}

// TestHostileFrames: every kind of bad input is answered with a precise error frame or a
// rejected result, nothing is half-applied, and the connection carries on.
func TestHostileFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mine := e.newTicket("hostile: mine")
	e.dispatch(mine, "tech1")
	theirs := e.newTicket("hostile: tech2's")
	e.dispatch(theirs, "tech2")
	token, _ := e.device("tech1", "raw-1")
	p := e.dial(token)

	// Before hello only hello is accepted.
	p.send(map[string]any{"type": "pull", "id": "early", "checkpoint": ""})
	if f := p.must(); f["type"] != "error" || f["re"] != "early" || f["code"] != "unauthenticated" {
		t.Fatalf("pull before hello answered %v", f)
	}
	w := p.hello("raw-1")
	limits := w["limits"].(map[string]any)
	maxBatch := int(limits["max_batch"].(float64))
	if w["user"].(map[string]any)["id"] != e.users["tech1"] || maxBatch <= 0 || limits["max_frame_bytes"].(float64) <= 0 {
		t.Fatalf("welcome %v", w)
	}

	errCases := []struct {
		name, frame, re, code, field string
	}{
		{"malformed JSON", `{"type":"pull","id":"m1",`, "", "bad_request", ""},
		{"not an object", `[1,2]`, "", "bad_request", ""},
		{"two objects", `{"type":"pull","id":"two"} {}`, "two", "bad_request", ""},
		{"unknown type", `{"type":"subscribe","id":"u1"}`, "u1", "bad_request", "type"},
		{"no type", `{"id":"n1"}`, "n1", "bad_request", "type"},
		{"no id", `{"type":"pull"}`, "", "bad_request", "id"},
		{"wrong field type", `{"type":"pull","id":"w1","limit":"ten"}`, "w1", "bad_request", "limit"},
		{"wrong type in a mutation", `{"type":"push","id":"w2","mutations":[{"mid":"x","entity":"ticket","id":"a","op":"update","base_version":"one"}]}`, "w2", "bad_request", "mutations.base_version"},
		{"unknown field", `{"type":"pull","id":"w3","bogus":true}`, "w3", "bad_request", "bogus"},
		{"negative limit", `{"type":"pull","id":"w4","limit":-1}`, "w4", "validation", "limit"},
		{"forged checkpoint", `{"type":"pull","id":"w5","checkpoint":"o1"}`, "w5", "checkpoint_expired", "checkpoint"},
		{"garbage checkpoint", `{"type":"pull","id":"w6","checkpoint":"tabc"}`, "w6", "validation", "checkpoint"},
		{"second hello", `{"type":"hello","id":"h2","protocol":1,"device_id":"raw-1"}`, "h2", "bad_request", ""},
		{"mutation without mid", `{"type":"push","id":"w7","mutations":[{"entity":"ticket","id":"a","op":"update"}]}`, "w7", "validation", "mutations[0].mid"},
	}
	for _, c := range errCases {
		p.sendRaw(c.frame)
		f := p.must()
		if f["type"] != "error" || f["code"] != c.code || (f["re"] != nil && f["re"] != c.re) || c.re != "" && f["re"] != c.re {
			t.Errorf("%s: answered %v; want error %s re %q", c.name, f, c.code, c.re)
			continue
		}
		if got, _ := f["field"].(string); c.field != "" && got != c.field {
			t.Errorf("%s: field %q, want %q", c.name, got, c.field)
		}
		if m, _ := f["message"].(string); m == "" {
			t.Errorf("%s: no message", c.name)
		}
	}

	// A binary frame.
	p.conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	if f := p.must(); f["type"] != "error" || f["code"] != "bad_request" {
		t.Errorf("binary frame answered %v", f)
	}

	// A batch over max_batch is refused whole: nothing of it is applied.
	var big []map[string]any
	for i := range maxBatch + 1 {
		big = append(big, map[string]any{"mid": fmt.Sprintf("big-%d", i), "entity": "ticket_event", "id": fmt.Sprintf("ev-big-%d", i),
			"op": "create", "fields": map[string]any{"ticket_id": mine, "note": "flood"}})
	}
	p.send(map[string]any{"type": "push", "id": "big", "mutations": big})
	if f := p.must(); f["type"] != "error" || f["re"] != "big" || f["code"] != "too_large" || f["field"] != "mutations" {
		t.Errorf("over max_batch answered %v", f)
	}
	for _, ev := range e.events(mine) {
		if ev["note"] == "flood" {
			t.Fatal("part of a refused batch was applied")
		}
	}

	// Mutations judged one by one: each bad one rejected precisely, the good one applied.
	p.send(map[string]any{"type": "push", "id": "mix", "mutations": []map[string]any{
		{"mid": "r1", "entity": "spaceship", "id": "s1", "op": "create", "fields": map[string]any{"x": 1}},
		{"mid": "r2", "entity": "ticket", "id": theirs, "op": "update", "base_version": 1, "fields": map[string]any{"tech_notes": "forged"}},
		{"mid": "r3", "entity": "ticket", "id": theirs, "op": "action", "action": "accept", "base_version": 1},
		{"mid": "r4", "entity": "ticket", "id": mine, "op": "update", "base_version": 1, "fields": map[string]any{"urgency": "low"}},
		{"mid": "r5", "entity": "ticket", "id": mine, "op": "update", "base_version": 1, "fields": map[string]any{"time_spent_min": "lots"}},
		{"mid": "r6", "entity": "ticket", "id": mine, "op": "update", "base_version": 1, "fields": map[string]any{"no_such_field": 1}},
		{"mid": "r7", "entity": "ticket", "id": mine, "op": "action", "action": "complete", "base_version": 1},
		{"mid": "r8", "entity": "ticket", "id": "../../etc", "op": "update", "base_version": 1, "fields": map[string]any{"tech_notes": "x"}},
		{"mid": "r9", "entity": "customer", "id": e.cust, "op": "update", "base_version": 1, "fields": map[string]any{"name": "mine now"}},
		{"mid": "r10", "entity": "ticket", "id": mine, "op": "delete", "base_version": 1},
		{"mid": "ok1", "entity": "ticket", "id": mine, "op": "update", "base_version": 1, "fields": map[string]any{"tech_notes": "fine"}},
	}})
	f := p.must()
	if f["type"] != "results" || f["re"] != "mix" {
		t.Fatalf("push answered %v", f)
	}
	want := []struct{ status, code, field string }{
		{"rejected", "validation", "entity"},
		{"rejected", "out_of_scope", ""},
		{"rejected", "out_of_scope", ""},
		{"rejected", "forbidden", "urgency"},
		{"rejected", "validation", "time_spent_min"},
		{"rejected", "bad_request", "no_such_field"},
		{"rejected", "invalid_transition", ""},
		{"rejected", "validation", "id"},
		{"rejected", "forbidden", ""},
		{"rejected", "forbidden", ""},
		{"applied", "", ""},
	}
	results := f["results"].([]any)
	if len(results) != len(want) {
		t.Fatalf("%d results for %d mutations", len(results), len(want))
	}
	for i, w := range want {
		r := results[i].(map[string]any)
		got := fmt.Sprintf("%v %v %v", r["status"], r["code"], r["field"])
		if r["status"] != w.status || (w.code != "" && r["code"] != w.code) || (w.field != "" && r["field"] != w.field) {
			t.Errorf("mutation %d: got %s, want %s %s %s (%v)", i, got, w.status, w.code, w.field, r["message"])
		}
		if w.status == "rejected" && r["message"] == "" {
			t.Errorf("mutation %d: rejected without a message", i)
		}
		if r["code"] == "out_of_scope" && (r["record"] != nil || strings.Contains(fmt.Sprint(r["message"]), "SR-")) {
			t.Errorf("mutation %d: an out-of-scope rejection reveals the record: %v", i, r)
		}
	}
	if tk := e.ticket(theirs); tk["tech_notes"] != "" || tk["status"] != "dispatched" {
		t.Errorf("tech2's ticket was touched: %v %v", tk["tech_notes"], tk["status"])
	}
	if tk := e.ticket(mine); tk["tech_notes"] != "fine" || tk["urgency"] != "high" {
		t.Errorf("own ticket: notes %v urgency %v", tk["tech_notes"], tk["urgency"])
	}

	// The connection survived all of it.
	p.send(map[string]any{"type": "pull", "id": "last", "checkpoint": "", "limit": 5000})
	if f := p.must(); f["type"] != "changes" || f["re"] != "last" || len(f["changes"].([]any)) == 0 {
		t.Errorf("pull after the hostile frames answered %v", f)
	}
	p.send(map[string]any{"type": "verify", "id": "v", "checkpoint": ""})
	if f := p.must(); f["type"] != "digest" || f["re"] != "v" || f["count"].(float64) == 0 {
		t.Errorf("verify answered %v", f)
	}
}

// TestOversizedFrame: a frame over max_frame_bytes closes the connection with 1009.
func TestOversizedFrame(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, _ := e.device("tech1", "raw-big")
	p := e.dial(token)
	w := p.hello("raw-big")
	max := int(w["limits"].(map[string]any)["max_frame_bytes"].(float64))
	p.sendRaw(`{"type":"pull","id":"x","checkpoint":"` + strings.Repeat("a", max) + `"}`)
	if code := p.closed(10 * time.Second); code != websocket.CloseMessageTooBig {
		t.Errorf("close code %d, want 1009", code)
	}
}

// TestRevokeWhileConnected: revoking a connected device closes it with 4403 at once; the SDK
// wipes its local data and stops.
func TestRevokeWhileConnected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("revoke")
	e.dispatch(id, "tech1")

	rawToken, rawDevice := e.device("tech1", "raw-revoke")
	p := e.dial(rawToken)
	p.hello("raw-revoke")

	token, sdkDevice := e.device("tech1", "phone-revoke")
	c := e.openClient(token, "phone-revoke", clientOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the SDK holds the ticket", func() bool {
		_, ok, _ := c.Record("ticket", id)
		return ok
	})
	mutate(t, c, "ticket_event", "01900000-0000-7000-8000-000000000001", "create", 0, map[string]any{"ticket_id": id, "note": "x"}, "")

	start := time.Now()
	e.must("POST", "/api/v1/devices/"+rawDevice+"/revoke", e.coord, nil, 200, nil)
	if code := p.closed(5 * time.Second); code != 4403 {
		t.Errorf("raw connection closed with %d, want 4403", code)
	}
	t.Logf("4403 arrived %v after the revoke", time.Since(start))

	e.must("POST", "/api/v1/devices/"+sdkDevice+"/revoke", e.coord, nil, 200, nil)
	eventually(t, 10*time.Second, "the SDK stops as revoked", func() bool { return c.State().Stopped == "revoked" })
	// The SDK wipes on revoke: whatever the loop still does, nothing is left.
	eventually(t, 10*time.Second, "the SDK wiped its data", func() bool {
		rs, err := c.Records("ticket")
		return err == nil && len(rs) == 0 && c.State().Pending == 0
	})
	// The revoked token no longer works, on any path.
	if st, _ := e.do("POST", "/mobile/v1/sync/pull", token, map[string]any{"checkpoint": ""}); st != 401 && st != 403 {
		t.Errorf("pull with a revoked token: %d", st)
	}
}

// TestReplacedConnection: a second connection of the same device replaces the first, which
// is closed with 4409.
func TestReplacedConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, _ := e.device("tech2", "raw-dup")
	a := e.dial(token)
	a.hello("raw-dup")
	b := e.dial(token)
	b.hello("raw-dup")
	if code := a.closed(10 * time.Second); code != 4409 {
		t.Errorf("first connection closed with %d, want 4409", code)
	}
	b.send(map[string]any{"type": "pull", "id": "p", "checkpoint": ""})
	if f := b.must(); f["type"] != "changes" {
		t.Errorf("the new connection answered %v", f)
	}
}

// TestWrongProtocol: hello with another protocol version closes with 4426.
func TestWrongProtocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, _ := e.device("tech2", "raw-v2")
	p := e.dial(token)
	p.send(map[string]any{"type": "hello", "id": "h", "protocol": 2, "device_id": "raw-v2"})
	if code := p.closed(10 * time.Second); code != 4426 {
		t.Errorf("close code %d, want 4426", code)
	}
	// A bad token in hello (no bearer on the upgrade) closes with 4401.
	q := e.dial("")
	q.send(map[string]any{"type": "hello", "id": "h", "protocol": 1, "device_id": "raw-v2", "token": "not-a-token"})
	if code := q.closed(10 * time.Second); code != 4401 {
		t.Errorf("bad token: close code %d, want 4401", code)
	}
}

// TestHelloTimeout: a connection that sends no hello is closed with 4401 after 10 s.
func TestHelloTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.dial("")
	start := time.Now()
	if code := p.closed(15 * time.Second); code != 4401 {
		t.Errorf("close code %d, want 4401", code)
	}
	if d := time.Since(start); d < 9*time.Second || d > 12*time.Second {
		t.Errorf("closed after %v, want about 10 s", d)
	}
}

// TestIdleConnectionHoldsOneGoroutine: a phone that said hello and waits on its live pull
// costs the server one goroutine (the one reading its socket), not an owner and a reader; and
// every one of them ends when its phone goes. Counted with runtime.NumGoroutine over real
// connections on loopback (the test's own clients read only when asked, so they add none).
// Not parallel: other tests' goroutines would blur the count.
func TestIdleConnectionHoldsOneGoroutine(t *testing.T) {
	const n = 40
	e := newEnv(t)
	e.must("PUT", "/api/v1/settings", e.login("admin"), map[string]any{"max_devices_per_user": 50}, 200, nil)
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i], _ = e.device("tech1", fmt.Sprintf("idle-%d", i))
	}
	before := settledGoroutines()
	peers := make([]*peer, n)
	for i, tok := range tokens {
		p := e.dial(tok)
		p.hello(fmt.Sprintf("idle-%d", i))
		p.send(map[string]any{"type": "pull", "id": "live", "checkpoint": "", "live": true})
		for {
			f := p.must()
			if f["type"] != "changes" {
				t.Fatalf("live pull answered %v", f)
			}
			if f["has_more"] == false {
				break
			}
			p.send(map[string]any{"type": "pull", "id": "live", "checkpoint": f["checkpoint"], "live": true})
		}
		peers[i] = p
	}
	idle := settledGoroutines()
	perConn := float64(idle-before) / n
	t.Logf("%d goroutines before, %d with %d idle connections: %.2f a connection", before, idle, n, perConn)
	if perConn > 1.2 {
		t.Errorf("%.2f goroutines per idle connection, want 1", perConn)
	}
	// The idle connections still work: a change reaches every one of them.
	id := e.newTicket("idle")
	e.dispatch(id, "tech1")
	for i, p := range peers {
		for {
			f := p.must()
			if f["type"] != "changes" {
				t.Fatalf("connection %d: %v", i, f)
			}
			if strings.Contains(fmt.Sprint(f["changes"]), id) {
				break
			}
		}
	}
	for _, p := range peers {
		p.conn.Close()
	}
	eventually(t, 10*time.Second, "every connection's goroutine ended", func() bool {
		return runtime.NumGoroutine() <= before+5
	})
	t.Logf("%d goroutines after", settledGoroutines())
}

// settledGoroutines is the number of goroutines once it stopped changing (at most 2 s).
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// TestHandshakeRefusals: a malformed upgrade is answered with a 400 that names the header,
// and a client that sends frames before the upgrade's answer is disconnected, while a proper
// handshake on the same server still works.
func TestHandshakeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// raw sends req on a fresh connection and returns the answer's status line, headers and
	// body (empty when the server closed without answering).
	raw := func(req string) string {
		c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return ""
		}
		var b strings.Builder
		if resp.StatusCode != http.StatusSwitchingProtocols {
			io.Copy(&b, resp.Body)
		}
		return fmt.Sprintf("%d %v %s", resp.StatusCode, resp.Header, b.String())
	}
	upgrade := "GET /mobile/v1/sync HTTP/1.1\r\nHost: " + e.addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Protocol: fieldsync.v1\r\n"
	got := raw(upgrade + "Sec-WebSocket-Version: 12\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if !strings.HasPrefix(got, "400 ") || !strings.Contains(got, "Sec-Websocket-Version") || !strings.Contains(got, `"bad_request"`) {
		t.Errorf("version 12 answered %q", got)
	}
	got = raw(upgrade + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n")
	if !strings.HasPrefix(got, "400 ") || !strings.Contains(got, "Sec-WebSocket-Key") {
		t.Errorf("a bad key answered %q", got)
	}
	// A masked text frame right behind the request, in the same write.
	frame := string([]byte{0x81, 0x82, 1, 2, 3, 4, '{' ^ 1, '}' ^ 2})
	if got = raw(upgrade + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" + frame); got != "" {
		t.Errorf("early frame: answered %q, want the connection closed", got)
	}
	got = raw(upgrade + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if !strings.HasPrefix(got, "101 ") || !strings.Contains(got, "Sec-Websocket-Protocol:[fieldsync.v1]") {
		t.Errorf("a proper handshake answered %q", got)
	}
}

// TestHeartbeat: the server pings a welcomed connection; a phone that answers stays
// connected past the idle timeout, one that does not is dropped (timers lowered).
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.Mobile.PingEvery, e.srv.Mobile.IdleTimeout = 100*time.Millisecond, 600*time.Millisecond
	// listen reads p's frames on a goroutine of its own (pings are seen only while reading);
	// pong says whether it answers pings.
	listen := func(p *peer, pong bool) (pings *atomic.Int64, frames chan map[string]any, ended chan error) {
		pings, frames, ended = new(atomic.Int64), make(chan map[string]any, 16), make(chan error, 1)
		p.conn.SetPingHandler(func(data string) error {
			pings.Add(1)
			if !pong {
				return nil
			}
			return p.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func() {
			for {
				_, b, err := p.conn.ReadMessage()
				if err != nil {
					ended <- err
					return
				}
				var f map[string]any
				json.Unmarshal(b, &f)
				frames <- f
			}
		}()
		return pings, frames, ended
	}
	tokA, _ := e.device("tech1", "beat-a")
	a := e.dial(tokA)
	a.hello("beat-a")
	pings, frames, ended := listen(a, true)
	eventually(t, 10*time.Second, "ten pings answered (past the idle timeout)", func() bool { return pings.Load() >= 10 })
	a.send(map[string]any{"type": "pull", "id": "p", "checkpoint": ""})
	select {
	case f := <-frames:
		if f["type"] != "changes" {
			t.Errorf("pull answered %v", f)
		}
	case err := <-ended:
		t.Fatalf("a connection that answers pings was closed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to a pull")
	}

	tokB, _ := e.device("tech1", "beat-b")
	b := e.dial(tokB)
	b.hello("beat-b")
	pingsB, _, endedB := listen(b, false)
	select {
	case err := <-endedB:
		if pingsB.Load() == 0 {
			t.Errorf("dropped (%v) without a ping first", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a connection that answers no ping is still open")
	}
}
