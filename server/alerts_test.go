package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	gosync "sync"
	"testing"
	"time"

	"fieldsync/internal/testpg"
)

func TestAlertSecretsAndPreferencesOverTheAPI(t *testing.T) {
	e := newEnv(t, false)
	admin := e.login("admin", "admin-pass-1")
	coord := e.must(e.do("POST", "/api/v1/users", admin, map[string]any{"username": "wangfang", "name": "王芳", "role": "coordinator",
		"phone": "13800000001", "email": "wangfang@example.com", "password": "coordinator-pw-1"}), 201).Body
	r := e.do("POST", "/api/v1/users", admin, map[string]any{"username": "bad", "name": "B", "role": "coordinator", "email": "not an address", "password": "coordinator-pw-1"})
	if r.Status != 400 || r.errField() != "email" {
		t.Errorf("a bad email: %d %s", r.Status, r.Raw)
	}
	r = e.do("PUT", "/api/v1/settings", admin, map[string]any{"alert_webhook_url": "ftp://example.com", "alert_webhook_secret": "hook-secret"})
	if r.Status != 400 || r.errField() != "alert_webhook_url" {
		t.Errorf("a bad webhook address: %d %s", r.Status, r.Raw)
	}
	if e.srv.Engine.Settings().String("alert_webhook_secret") != "" {
		t.Errorf("a refused PUT changed the secret")
	}
	e.must(e.do("PUT", "/api/v1/settings", admin, map[string]any{"alert_webhook_url": "https://hooks.example.com/in", "alert_webhook_secret": "hook-secret"}), 200)
	ct := e.login("wangfang", "coordinator-pw-1")
	find := func(token, key string) map[string]any {
		for _, it := range e.must(e.do("GET", "/api/v1/settings", token, nil), 200).Body["items"].([]any) {
			if m := it.(map[string]any); m["key"] == key {
				return m
			}
		}
		t.Fatalf("no setting %s", key)
		return nil
	}
	if s := find(ct, "alert_webhook_secret"); s["value"] != nil || s["secret"] != true || s["set"] != true {
		t.Errorf("a coordinator sees the secret setting as %v", s)
	}
	if s := find(admin, "alert_webhook_secret"); s["value"] != "hook-secret" {
		t.Errorf("the admin sees %v", s)
	}
	var onDevices, logged int
	e.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM scope WHERE entity = 'setting' AND id = 'alert_webhook_secret'`).Scan(&onDevices)
	e.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM changes WHERE entity = 'setting' AND fields LIKE '%hook-secret%'`).Scan(&logged)
	if onDevices != 0 || logged != 0 {
		t.Errorf("the secret is in %d device scopes and %d change entries", onDevices, logged)
	}

	p := e.must(e.do("GET", "/api/v1/me/alerts", ct, nil), 200).Body
	if p["defaults"] != true || len(p["events"].(map[string]any)["deadline_missed"].([]any)) == 0 {
		t.Errorf("a coordinator's default preferences: %s", p)
	}
	r = e.do("PUT", "/api/v1/me/alerts", ct, map[string]any{"lang": "en", "events": map[string]any{"deadline_missed": []string{"pigeon"}}})
	if r.Status != 400 || r.errField() != "events" {
		t.Errorf("an unknown channel: %d %s", r.Status, r.Raw)
	}
	p = e.must(e.do("PUT", "/api/v1/me/alerts", ct, map[string]any{"lang": "en", "events": map[string]any{"deadline_missed": []string{"webhook", "email"}}}), 200).Body
	if p["defaults"] != false || p["lang"] != "en" || len(p["configured_channels"].([]any)) != 1 {
		t.Errorf("after PUT: %s", p)
	}
	if r := e.do("GET", "/api/v1/users/"+str(coord, "id")+"/alerts", ct, nil); r.Status != 403 {
		t.Errorf("a coordinator reads another's preferences through the admin route: %d", r.Status)
	}
	e.must(e.do("GET", "/api/v1/users/"+str(coord, "id")+"/alerts", admin, nil), 200)
	if r := e.do("GET", "/api/v1/alerts/failed", ct, nil); r.Status != 403 {
		t.Errorf("a coordinator lists failed deliveries: %d", r.Status)
	}
	if r := e.must(e.do("GET", "/api/v1/alerts/failed", admin, nil), 200); len(r.Body["items"].([]any)) != 0 {
		t.Errorf("failed deliveries on a fresh server: %s", r.Raw)
	}
}

// A deadline that passes while the server is down is alerted once, by the watcher that runs
// at start; restarting again alerts nothing more.
func TestDeadlineCrossedWhileServerDownIsAlertedOnceAfterStart(t *testing.T) {
	var mu gosync.Mutex
	var got []string
	arrived := make(chan struct{}, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("hook-secret"))
		mac.Write([]byte(r.Header.Get("X-Fieldsync-Timestamp") + "."))
		mac.Write(b)
		if r.Header.Get("X-Fieldsync-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			rw.WriteHeader(401)
			return
		}
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		arrived <- struct{}{}
	}))
	defer hook.Close()
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)
	now := t0
	var clock gosync.Mutex
	open := func(at time.Time) *testEnv {
		clock.Lock()
		now = at
		clock.Unlock()
		srv, err := New(context.Background(), Config{DataDir: dir, DB: testpg.For(t, dir), AdminPassword: "admin-pass-1", Log: slog.New(slog.DiscardHandler), Out: func(string) {},
			Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
		if err != nil {
			t.Fatal(err)
		}
		return &testEnv{t: t, srv: srv, dir: dir}
	}
	stop := func(e *testEnv) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
	}
	e := open(t0)
	admin := e.login("admin", "admin-pass-1")
	coord := e.must(e.do("POST", "/api/v1/users", admin, map[string]any{"username": "wangfang", "name": "王芳", "role": "coordinator",
		"phone": "13800000001", "password": "coordinator-pw-1"}), 201).Body
	e.must(e.do("PUT", "/api/v1/settings", admin, map[string]any{"alert_webhook_url": hook.URL, "alert_webhook_secret": "hook-secret"}), 200)
	e.must(e.do("PUT", "/api/v1/users/"+str(coord, "id")+"/alerts", admin, map[string]any{"events": map[string]any{"deadline_missed": []string{"webhook"}}}), 200)
	cu := e.must(e.do("POST", "/api/v1/customers", admin, map[string]any{"name": "华东精密"}), 201).Body
	tk := e.must(e.do("POST", "/api/v1/tickets", admin, map[string]any{"customer_id": str(cu, "id"), "urgency": "critical", "service_mode": "phone", "fault_symptoms": "停机"}), 201).Body
	stop(e)

	// Down for an hour: the 30-minute response deadline passed meanwhile.
	e = open(t0.Add(time.Hour))
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("no alert reached the webhook after start")
	}
	stop(e)
	e = open(t0.Add(2 * time.Hour))
	defer stop(e)
	if n, err := e.srv.Engine.WatchDeadlines(context.Background()); err != nil || n != 0 {
		t.Errorf("after the second restart the watcher recorded %d events (%v)", n, err)
	}
	if sent, _, err := e.srv.sender.Tick(context.Background()); err != nil || sent != 0 {
		t.Errorf("after the second restart the sender sent %d (%v)", sent, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("the webhook received %d alerts, want 1: %q", len(got), got)
	}
	events := e.must(e.do("GET", "/api/v1/tickets/"+str(tk, "id")+"/events", admin, nil), 200).Body["items"].([]any)
	missed := 0
	for _, ev := range events {
		if ev.(map[string]any)["kind"] == "deadline_missed" {
			missed++
		}
	}
	if missed != 1 {
		t.Errorf("the ticket shows %d missed deadlines, want 1: %v", missed, events)
	}
}
