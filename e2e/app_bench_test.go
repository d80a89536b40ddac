package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/server"
)

// The field app's measured figures (docs/BENCHMARKS.md), as benchmarks, not timed tests:
//
//	go test ./e2e -run '^$' -bench FieldApp -benchtime 3x
//
// BenchmarkFieldAppShell: the bytes a phone downloads for the app shell on first load.
// BenchmarkFieldAppOfflineStart: from a reload with no network (the service worker serves
// the shell) to the ticket list on screen.
// BenchmarkFieldAppInitialSync: a new phone's first sync of a 500-ticket scope into IndexedDB.
// BenchmarkFieldAppPush: 1,000 mutations queued offline, pushed and acknowledged.

// benchServer is a demo server on loopback for a benchmark, with the coordinator's token.
func benchServer(b *testing.B) (base, coord string, users map[string]string, srv *server.Server) {
	b.Helper()
	dir := b.TempDir()
	srv, err := server.New(context.Background(), server.Config{DataDir: dir, DB: testpg.For(b, dir), Demo: true, AdminPassword: "admin-pass-1",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.App.Listener(ln)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	base = "http://" + ln.Addr().String()
	var login struct{ Token string }
	benchHTTP(b, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "coord", "password": demoPassword}, &login)
	var us struct{ Items []map[string]any }
	benchHTTP(b, "GET", base+"/api/v1/users", login.Token, nil, &us)
	users = map[string]string{}
	for _, u := range us.Items {
		users[u["username"].(string)] = u["id"].(string)
	}
	return base, login.Token, users, srv
}

func benchHTTP(b testing.TB, method, url, token string, body, out any) {
	b.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		b.Fatalf("%s %s: %d %s", method, url, res.StatusCode, raw)
	}
	if out != nil {
		json.Unmarshal(raw, out)
	}
}

func BenchmarkFieldAppShell(b *testing.B) {
	base, _, _, _ := benchServer(b)
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(path string, gz bool) []byte {
		req, _ := http.NewRequest("GET", base+path, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return raw
	}
	sw := string(get("/app/sw.js", false))
	var files []string
	json.Unmarshal([]byte(strings.SplitN(strings.SplitN(sw, "const SHELL = ", 2)[1], ";", 2)[0]), &files)
	files = append(files, "sw.js")
	total := 0
	for range b.N {
		total = 0
		for _, f := range files {
			total += len(get("/app/"+f, true))
		}
	}
	b.ReportMetric(float64(total), "shell-bytes")
	b.ReportMetric(float64(len(files)), "files")
}

func BenchmarkFieldAppOfflineStart(b *testing.B) {
	base, _, _, _ := benchServer(b)
	px := newProxy(b, func() string { return strings.TrimPrefix(base, "http://") })
	ctx, closeTab := tab(b, phone(b, "zh-CN"))
	defer closeTab()
	appLogin(b, ctx, px.base(), "tech1")
	until(b, ctx, "the service worker", `!!navigator.serviceWorker.controller`, 15*time.Second)
	until(b, ctx, "the ticket list", `document.querySelectorAll('#ticket-list a.ticket').length > 0`, 15*time.Second)
	offline(b, ctx, px, true)
	b.ResetTimer()
	for range b.N {
		do(b, ctx, "reload offline", chromedpReload())
		until(b, ctx, "the ticket list offline", `document.querySelectorAll('#ticket-list a.ticket').length > 0`, 15*time.Second)
	}
}

func BenchmarkFieldAppInitialSync(b *testing.B) {
	base, coord, users, _ := benchServer(b)
	var cs struct{ Items []map[string]any }
	benchHTTP(b, "GET", base+"/api/v1/customers", coord, nil, &cs)
	cust := cs.Items[0]["id"].(string)
	var ss struct{ Items []map[string]any }
	benchHTTP(b, "GET", base+"/api/v1/customers/"+cust+"/sites", coord, nil, &ss)
	site := ss.Items[0]["id"].(string)
	for i := range 500 {
		var tk map[string]any
		benchHTTP(b, "POST", base+"/api/v1/tickets", coord, map[string]any{"customer_id": cust, "site_id": site,
			"fault_symptoms": "bench " + strconv.Itoa(i), "urgency": "normal", "agreed_handling": "visit"}, &tk)
		benchHTTP(b, "POST", base+"/api/v1/tickets/"+tk["id"].(string)+"/actions/dispatch", coord, map[string]any{"technician_id": users["tech1"]}, nil)
	}
	ctx, closeTab := tab(b, phone(b, "zh-CN"))
	defer closeTab()
	appLogin(b, ctx, base, "tech1")
	b.ResetTimer()
	var n int
	for i := range b.N {
		// A new phone each time: its own database and device, from an empty mirror.
		n = eval[int](b, ctx, `(async () => {
			const { FieldSync } = await import('./fieldsync.js');
			const c = await new FieldSync({ dbName: 'bench-sync-`+strconv.Itoa(i)+`' }).open();
			await c.login('tech1', '`+demoPassword+`');
			await new Promise((resolve) => { c.addEventListener('state', () => { if (c.state.lastSync) resolve(); }); c.start(); });
			c.stop();
			return (await c.records('ticket')).length;
		})()`)
	}
	b.StopTimer()
	if n < 500 {
		b.Fatalf("the phone holds %d tickets after its first sync, want at least 500", n)
	}
	b.ReportMetric(float64(n), "tickets")
}

func BenchmarkFieldAppPush(b *testing.B) {
	base, coord, users, _ := benchServer(b)
	var mine struct{ Items []map[string]any }
	benchHTTP(b, "GET", base+"/api/v1/tickets?assignee_id="+users["tech1"], coord, nil, &mine)
	ticket := mine.Items[0]["id"].(string)
	ctx, closeTab := tab(b, phone(b, "zh-CN"))
	defer closeTab()
	appLogin(b, ctx, base, "tech1")
	for i := range b.N {
		b.StopTimer()
		// A day offline: 1,000 mutations in the outbox of a phone that is not syncing.
		eval[bool](b, ctx, `(async () => {
			const { FieldSync } = await import('./fieldsync.js');
			const c = await new FieldSync({ dbName: 'bench-push-`+strconv.Itoa(i)+`' }).open();
			await c.login('tech1', '`+demoPassword+`');
			for (let k = 0; k < 1000; k++) await c.mutate('ticket_event', crypto.randomUUID(), 'create', 0, { ticket_id: '`+ticket+`', note: 'bench ' + k });
			globalThis.benchClient = c;
			return true;
		})()`)
		b.StartTimer()
		left := eval[int](b, ctx, `(async () => {
			const c = globalThis.benchClient;
			await new Promise((resolve) => { c.addEventListener('state', () => { if (c.state.pending === 0) resolve(); }); c.start(); });
			c.stop();
			return c.state.pending;
		})()`)
		if left != 0 {
			b.Fatalf("%d mutations left", left)
		}
	}
}
