package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHelloReportsAppVersionAndPending: a phone's hello carries its app version and how much
// waits in its outbox (count and the oldest one's time); the office's device list shows them,
// so a phone with 300 unsent changes is seen. A bad report is refused and records nothing.
func TestHelloReportsAppVersionAndPending(t *testing.T) {
	e := newEnv(t, true)
	base := e.start()
	phone := e.deviceLogin("tech1", DemoPassword, "report-phone")
	coord := e.login("coord", DemoPassword)

	hello := func(frame string) map[string]any {
		t.Helper()
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"fieldsync.v1"}}
		conn, _, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/mobile/v1/sync", http.Header{"Authorization": {"Bearer " + phone}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	device := func() map[string]any {
		t.Helper()
		for _, d := range e.must(e.do("GET", "/api/v1/devices", coord, nil), 200).Body["items"].([]any) {
			if dm := d.(map[string]any); dm["device_id"] == "report-phone" {
				return dm
			}
		}
		t.Fatal("report-phone is not in the device list")
		return nil
	}

	if m := hello(`{"type":"hello","id":"h1","protocol":1,"device_id":"report-phone","app_version":"2.4.0","schema_version":1,
		"pending":300,"pending_since":"2026-11-20T08:00:00Z"}`); m["type"] != "welcome" {
		t.Fatalf("hello answered %v", m)
	}
	d := device()
	if d["app_version"] != "2.4.0" || d["pending"] != float64(300) || d["pending_since"] != "2026-11-20T08:00:00.000Z" || str(d, "reported_at") == "" {
		t.Fatalf("device after hello: %v", d)
	}

	for _, bad := range []struct{ frame, field string }{
		{`{"type":"hello","id":"h2","protocol":1,"device_id":"report-phone","app_version":"2.5.0","schema_version":1,"pending":-1}`, "pending"},
		{`{"type":"hello","id":"h3","protocol":1,"device_id":"report-phone","app_version":"2.5.0","schema_version":1,"pending":3,"pending_since":"last week"}`, "pending_since"},
		{`{"type":"hello","id":"h4","protocol":1,"device_id":"report-phone","app_version":"` + strings.Repeat("9", 65) + `","schema_version":1}`, "app_version"},
	} {
		m := hello(bad.frame)
		if m["type"] != "error" || m["code"] != "validation" || m["field"] != bad.field {
			t.Errorf("bad hello %s answered %v, want a validation error on %s", bad.field, m, bad.field)
		}
	}
	if d := device(); d["app_version"] != "2.4.0" || d["pending"] != float64(300) {
		t.Fatalf("a refused hello changed the device: %v", d)
	}

	// An empty outbox reports 0 and no pending_since.
	hello(`{"type":"hello","id":"h5","protocol":1,"device_id":"report-phone","app_version":"2.5.0","schema_version":1,"pending":0}`)
	if d := device(); d["app_version"] != "2.5.0" || d["pending"] != float64(0) || d["pending_since"] != nil {
		t.Fatalf("device after an empty outbox: %v", d)
	}
}
