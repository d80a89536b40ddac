// Package e2e proves the sync protocol end to end: a real fieldsync server on a temporary
// data folder, served on loopback, driven by the coordinator API over HTTP and by several
// real SDK clients (sync/client), plus raw WebSocket peers for hostile frames.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
	"fieldsync/server"
	"fieldsync/sync/client"
)

// env is one fieldsync server on a temporary data folder, listening on 127.0.0.1.
type env struct {
	t    *testing.T
	dir  string
	db   string // the store: "" for SQLite in dir, or a PostgreSQL URL (testpg)
	addr string // host:port, kept across restarts so clients reconnect to it
	srv  *server.Server
	base string
	now  func() time.Time // the server's clock; nil for the real one

	coord string            // the coordinator's web token
	users map[string]string // demo username -> user id
	cust  string            // a customer, site and asset of the demo company
	site  string
	asset string
}

const demoPassword = server.DemoPassword

// newEnv starts a demo server and logs the coordinator in.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvAt(t, nil)
}

// newEnvAt is newEnv with the server's clock (nil for the real one).
func newEnvAt(t *testing.T, now func() time.Time) *env {
	t.Helper()
	dir := t.TempDir()
	return newEnvOn(t, now, dir, testpg.For(t, dir))
}

// newEnvOn is newEnvAt on a given data folder and store.
func newEnvOn(t *testing.T, now func() time.Time, dir, db string) *env {
	t.Helper()
	e := &env{t: t, dir: dir, db: db, addr: "127.0.0.1:0", now: now}
	e.boot()
	t.Cleanup(e.stop)
	e.coord = e.login("coord")
	e.users = map[string]string{}
	var us struct{ Items []map[string]any }
	e.must("GET", "/api/v1/users", e.coord, nil, 200, &us)
	for _, u := range us.Items {
		e.users[u["username"].(string)] = u["id"].(string)
	}
	var cs struct{ Items []map[string]any }
	e.must("GET", "/api/v1/customers", e.coord, nil, 200, &cs)
	e.cust = cs.Items[0]["id"].(string)
	var ss struct{ Items []map[string]any }
	e.must("GET", "/api/v1/customers/"+e.cust+"/sites", e.coord, nil, 200, &ss)
	e.site = ss.Items[0]["id"].(string)
	var as struct{ Items []map[string]any }
	e.must("GET", "/api/v1/assets?customer_id="+e.cust, e.coord, nil, 200, &as)
	for _, a := range as.Items {
		if a["customer_id"] == e.cust {
			e.asset = a["id"].(string)
		}
	}
	if e.asset == "" {
		t.Fatal("no asset of the first demo customer")
	}
	return e
}

// boot opens the server on e.dir and serves it on e.addr (a fresh port the first time).
func (e *env) boot() {
	e.t.Helper()
	srv, err := server.New(context.Background(), server.Config{DataDir: e.dir, DB: e.db, Demo: true, AdminPassword: "admin-pass-1", Now: e.now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		e.t.Fatal(err)
	}
	var ln net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err = net.Listen("tcp", e.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the old listener's port is being released
	}
	if err != nil {
		srv.Shutdown(context.Background())
		e.t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.base = "http://" + e.addr
	e.srv = srv
	go srv.App.Listener(ln)
}

func (e *env) stop() {
	if e.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	e.srv = nil
}

// restart shuts the server down and starts it again on the same folder and port.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	// The old server closed its keep-alive connections; a POST sent on one of them before
	// the client notices would fail with EOF (POSTs are not retried), so drop them now.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	e.boot()
}

// do sends a JSON request and returns the status and raw body.
func (e *env) do(method, path, token string, body any, headers ...string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	cl := &http.Client{Timeout: 10 * time.Second}
	res, err := cl.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// must sends a request, fails unless the status is want, and decodes the answer into out.
func (e *env) must(method, path, token string, body any, want int, out any) {
	e.t.Helper()
	st, raw := e.do(method, path, token, body)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

func (e *env) login(user string) string {
	e.t.Helper()
	var out struct{ Token string }
	e.must("POST", "/api/v1/auth/login", "", map[string]string{"username": user, "password": demoPassword}, 200, &out)
	return out.Token
}

// device logs a demo user in on a phone and returns its token and the server's device id.
func (e *env) device(user, deviceID string) (token, serverDevice string) {
	e.t.Helper()
	var out struct{ Token, Device string }
	e.must("POST", "/mobile/v1/auth/login", "", map[string]string{"username": user, "password": demoPassword, "device_id": deviceID}, 200, &out)
	return out.Token, out.Device
}

// newTicket registers a ticket for the demo customer, site and asset.
func (e *env) newTicket(symptoms string) string {
	e.t.Helper()
	var t map[string]any
	e.must("POST", "/api/v1/tickets", e.coord, map[string]any{"customer_id": e.cust, "site_id": e.site, "asset_id": e.asset,
		"fault_symptoms": symptoms, "urgency": "high", "agreed_handling": "visit"}, 201, &t)
	return t["id"].(string)
}

// act runs a ticket action as the coordinator and returns the ticket.
func (e *env) act(id, action string, params map[string]any) map[string]any {
	e.t.Helper()
	var t map[string]any
	e.must("POST", "/api/v1/tickets/"+id+"/actions/"+action, e.coord, params, 200, &t)
	return t
}

func (e *env) dispatch(id, user string) map[string]any {
	return e.act(id, "dispatch", map[string]any{"technician_id": e.users[user]})
}

// ticket reads a ticket with its events, as the coordinator sees it.
func (e *env) ticket(id string) map[string]any {
	e.t.Helper()
	var t map[string]any
	e.must("GET", "/api/v1/tickets/"+id, e.coord, nil, 200, &t)
	return t
}

// events returns every event of a ticket, as the coordinator sees them, page by page.
func (e *env) events(id string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for {
		var pg struct {
			Items []map[string]any
			Total int
		}
		e.must("GET", fmt.Sprintf("/api/v1/tickets/%s/events?limit=500&offset=%d", id, len(out)), e.coord, nil, 200, &pg)
		out = append(out, pg.Items...)
		if len(pg.Items) == 0 || len(out) >= pg.Total {
			return out
		}
	}
}

// clientOpts tunes a test client.
type clientOpts struct {
	forceHTTP bool
	dbPath    string
	maxBatch  int
	now       func() time.Time // the phone's clock; nil for the real one
}

// newClient opens an SDK client for a device of a demo user; it is closed at cleanup.
func (e *env) newClient(user, deviceID string, o clientOpts) (*client.Client, string) {
	e.t.Helper()
	token, _ := e.device(user, deviceID)
	return e.openClient(token, deviceID, o), token
}

func (e *env) openClient(token, deviceID string, o clientOpts) *client.Client {
	e.t.Helper()
	path := o.dbPath
	if path == "" {
		path = filepath.Join(e.t.TempDir(), deviceID+".db")
	}
	c, err := client.Open(client.Config{BaseURL: e.base, DBPath: path, Token: token, DeviceID: deviceID,
		AppVersion: "e2e", ForceHTTP: o.forceHTTP, MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		RequestTimeout: 5 * time.Second, PollInterval: 100 * time.Millisecond, MaxBatch: o.maxBatch, Now: o.now})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// syncNow runs one SDK round with a deadline.
func syncNow(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.SyncNow(ctx); err != nil {
		t.Fatalf("SyncNow: %v", err)
	}
}

// mutate queues a mutation on the device.
func mutate(t *testing.T, c *client.Client, entity, id, op string, base int64, fields map[string]any, action string) string {
	t.Helper()
	mid, err := c.Mutate(entity, id, op, base, fields, action)
	if err != nil {
		t.Fatalf("Mutate %s %s %s: %v", op, entity, action, err)
	}
	return mid
}

// eventually polls cond every 10 ms until it holds or d has passed.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rec is a record as held somewhere: its version and data.
type rec struct {
	Version int64
	Data    map[string]any
}

// scopeOf reads a technician's scope from the server's store: every record it holds now.
func (e *env) scopeOf(user string) map[string]rec {
	e.t.Helper()
	rows, err := e.srv.DB.R.Query(`SELECT s.entity, s.id, r.version, r.data FROM scope s JOIN records r ON r.entity = s.entity AND r.id = s.id
		WHERE s.user_id IN (?, '*') AND s.present = 1 AND r.deleted = 0`, e.users[user])
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]rec{}
	for rows.Next() {
		var ent, id string
		var r rec
		var data []byte
		if err := rows.Scan(&ent, &id, &r.Version, &data); err != nil {
			e.t.Fatal(err)
		}
		if err := json.Unmarshal(data, &r.Data); err != nil {
			e.t.Fatal(err)
		}
		out[ent+"/"+id] = r
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// localOf reads everything a device holds, by entity/id.
func localOf(t *testing.T, c *client.Client) map[string]rec {
	t.Helper()
	out := map[string]rec{}
	for name := range schema.Entities() {
		rs, err := c.Records(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Pending {
				t.Errorf("%s/%s still has pending mutations", r.Entity, r.ID)
			}
			var d map[string]any
			if err := json.Unmarshal(r.Data, &d); err != nil {
				t.Fatal(err)
			}
			out[r.Entity+"/"+r.ID] = rec{r.Version, d}
		}
	}
	return out
}

// sameStore fails unless the device holds exactly the records of the user's server scope,
// at the same versions with the same data.
func (e *env) sameStore(c *client.Client, user string) {
	e.t.Helper()
	want, got := e.scopeOf(user), localOf(e.t, c)
	if diff := diffStores(want, got); diff != "" {
		e.t.Fatalf("device of %s differs from its server scope:\n%s", user, diff)
	}
}

func diffStores(want, got map[string]rec) string {
	var lines []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			lines = append(lines, "missing on the device: "+k)
		case g.Version != w.Version:
			lines = append(lines, fmt.Sprintf("%s: device version %d, server %d", k, g.Version, w.Version))
		case !reflect.DeepEqual(g.Data, w.Data):
			lines = append(lines, fmt.Sprintf("%s: data differs at the same version %d", k, w.Version))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, "on the device but not in its scope: "+k)
		}
	}
	sort.Strings(lines)
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("... and %d more", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}

// verify runs the SDK's Verify (its digest against the server's) with a deadline.
func verify(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Verify(ctx); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// copyDB copies a closed client's SQLite file (and its WAL, if any) to dst.
func copyDB(t *testing.T, src, dst string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(src + suffix)
		if os.IsNotExist(err) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func keysOf(m map[string]rec, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, strings.TrimPrefix(k, prefix))
		}
	}
	sort.Strings(out)
	return out
}
