package server

import (
	"context"
	"fieldsync/internal/testpg"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// clockEnv is a demo server whose clock the test moves forward.
func clockEnv(t *testing.T, ahead *atomic.Int64) *testEnv {
	t.Helper()
	dir := t.TempDir()
	srv, err := New(context.Background(), Config{DataDir: dir, DB: testpg.For(t, dir), Demo: true,
		Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &testEnv{t: t, srv: srv, dir: dir}
}

// TestConsoleLive: an open console follows changes made elsewhere without a reload: a
// ticket registered through the API appears in the list, a dispatch made on another desk
// shows on the open ticket, and a ticket whose response deadline passes while the list is
// open turns red.
func TestConsoleLive(t *testing.T) {
	d := liveHeartbeat
	t.Cleanup(func() { liveHeartbeat = d })
	liveHeartbeat = 500 * time.Millisecond // pings carry the server's clock
	var ahead atomic.Int64
	env := clockEnv(t, &ahead)
	base := env.start()
	mgr := env.login("manager", DemoPassword)
	var tech1, customer string
	for _, u := range env.must(env.do("GET", "/api/v1/users", mgr, nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "tech1" {
			tech1 = str(m, "id")
		}
	}
	customer = str(env.must(env.do("GET", "/api/v1/customers", mgr, nil), 200).Body["items"].([]any)[0].(map[string]any), "id")

	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "log in",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.WaitVisible(css("#live")),
		chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`),
	)

	// A ticket registered on another desk appears in the open list.
	tk := env.must(env.do("POST", "/api/v1/tickets", mgr, map[string]any{"customer_id": customer, "urgency": "critical",
		"service_mode": "phone", "fault_symptoms": "实时测试：主控板报错 live test: main board error"}), 201).Body
	id, number := str(tk, "id"), str(tk, "number")
	step(t, ctx, "the new ticket appears without reload",
		waitJS(`!!document.querySelector('tr[data-id="`+id+`"]') && window.notReloaded === true`))
	if row := text(t, ctx, `tr[data-id="`+id+`"]`); !strings.Contains(row, number) || strings.Contains(row, "超时") {
		t.Errorf("the new row: %q", row)
	}

	// Its response deadline passes while the list is open: the row turns red. The server's
	// clock is moved to a few seconds before the deadline; the page learns it from the
	// feed and marks the row when the deadline passes.
	due, err := time.Parse(time.RFC3339Nano, str(tk, "due_response_at"))
	if err != nil {
		t.Fatalf("due_response_at %q: %v", str(tk, "due_response_at"), err)
	}
	ahead.Store(int64(time.Until(due) - 3*time.Second))
	step(t, ctx, "the row turns red when its deadline passes",
		waitJS(`document.querySelector('tr[data-id="`+id+`"]').classList.contains('overdue') &&
			document.querySelector('tr[data-id="`+id+`"]').textContent.includes('超时 Overdue') && window.notReloaded === true`))
	screenshot(t, ctx, "console-live-overdue.png")

	// The open ticket follows a dispatch made on another desk.
	step(t, ctx, "open the ticket",
		chromedp.Click(css(`tr[data-id="`+id+`"] a`)),
		chromedp.WaitVisible(css(".head-badges")),
	)
	env.must(env.do("POST", "/api/v1/tickets/"+id+"/actions/dispatch", mgr, map[string]any{"technician_id": tech1}), 200)
	step(t, ctx, "the dispatch shows without reload",
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已派工 Dispatched') && window.notReloaded === true`))
	if events := text(t, ctx, ".events"); !strings.Contains(events, "张伟 Zhang Wei") {
		t.Errorf("the history does not show the dispatch to 张伟:\n%s", events)
	}

	// Logging out closes the feed: the server holds no feed of this user's.
	step(t, ctx, "log out", chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#login-form")))
	for range 50 {
		env.srv.feeds.mu.Lock()
		n := len(env.srv.feeds.n)
		env.srv.feeds.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error("a live feed stayed open after logout")
}

// TestConsoleDevicesShowOutbox: the people page shows each phone's app version and how many
// changes wait unsent on it, as its hello reported, so an office sees a phone with 300.
func TestConsoleDevicesShowOutbox(t *testing.T) {
	e := newEnv(t, true)
	base := e.start()
	phone := e.deviceLogin("tech1", DemoPassword, "stuck-phone")
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"fieldsync.v1"}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/mobile/v1/sync", http.Header{"Authorization": {"Bearer " + phone}})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","id":"h1","protocol":1,"device_id":"stuck-phone","app_version":"2.4.0","schema_version":1,"pending":300,"pending_since":"2026-11-20T08:00:00Z"}`))
	var welcome map[string]any
	if err := conn.ReadJSON(&welcome); err != nil || welcome["type"] != "welcome" {
		t.Fatalf("hello: %v %v", welcome, err)
	}
	conn.Close()

	ctx := browser(t, time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "the admin's people page",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "admin"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("[data-nav=users]")),
		chromedp.Click(css("[data-nav=users]")),
		chromedp.WaitVisible(css(`form[data-user="tech1"] .devices`)),
	)
	got := text(t, ctx, `form[data-user="tech1"] .devices`)
	for _, want := range []string{"2.4.0", "待上传 300 unsent", "2026-11-20"} {
		if !strings.Contains(got, want) {
			t.Errorf("tech1's devices do not show %q:\n%s", want, got)
		}
	}
}
