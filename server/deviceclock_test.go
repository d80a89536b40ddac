package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestDeviceClockHistoryAPI: an admin or a manager reads a device's clock offsets over time
// (newest first, paged); other roles are refused; an unknown device is 404 naming it; the
// hourly sweep keeps device_clock_keep_days of history and at most device_clock_keep_rows
// rows per device.
func TestDeviceClockHistoryAPI(t *testing.T) {
	var now atomic.Int64 // the server's clock; its background sweep reads it too
	setClock := func(t time.Time) { now.Store(t.UnixNano()) }
	setClock(time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC))
	e := newEnv(t, true, func(c *Config) { c.Now = func() time.Time { return time.Unix(0, now.Load()).UTC() } })
	ctx := context.Background()
	var login struct{ Device string }
	r := e.must(e.do("POST", "/mobile/v1/auth/login", "", map[string]string{"username": "tech1", "password": DemoPassword, "device_id": "clock-phone"}), 200)
	login.Device = r.Body["device"].(string)
	// Twelve reports a day apart, the phone drifting a further 2 s fast each day.
	for i := 0; i < 12; i++ {
		day := time.Date(2026, 11, 1+i, 8, 0, 0, 0, time.UTC)
		setClock(day)
		if err := e.srv.Engine.RecordClock(ctx, login.Device, day.Add(time.Duration(2*(i+1))*time.Second).Format(time.RFC3339Nano)); err != nil {
			t.Fatal(err)
		}
	}
	admin, manager, coord := e.login("admin", DemoPassword), e.login("manager", DemoPassword), e.login("coord", DemoPassword)
	path := "/api/v1/devices/" + login.Device + "/clock"
	for _, tok := range []string{admin, manager} {
		b := e.must(e.do("GET", path+"?limit=5", tok, nil), 200).Body
		items := b["items"].([]any)
		if b["total"] != float64(12) || len(items) != 5 {
			t.Fatalf("total %v, %d items", b["total"], len(items))
		}
		first := items[0].(map[string]any)
		if first["at"] != "2026-11-12T08:00:00.000Z" || first["offset_ms"] != float64(24000) {
			t.Errorf("newest reading %v", first)
		}
		if d := b["device"].(map[string]any); d["device_id"] != "clock-phone" {
			t.Errorf("device %v", d)
		}
	}
	if b := e.must(e.do("GET", path+"?limit=5&offset=10", admin, nil), 200).Body; len(b["items"].([]any)) != 2 {
		t.Errorf("the last page: %v", b["items"])
	}
	if r := e.do("GET", path, coord, nil); r.Status != 403 {
		t.Errorf("a coordinator reads the clock history: %d", r.Status)
	}
	if r := e.do("GET", "/api/v1/devices/no-such/clock", admin, nil); r.Status != 404 || r.errField() != "id" {
		t.Errorf("an unknown device: %d %s", r.Status, r.Raw)
	}
	if r := e.do("GET", path+"?limit=0", admin, nil); r.Status != 400 || r.errField() != "limit" {
		t.Errorf("limit=0: %d %s", r.Status, r.Raw)
	}

	// Keep 7 days and at most 4 rows: on 2026-11-15 the days rule drops 11-01..11-07, the
	// rows rule 11-08.
	setClock(time.Date(2026, 11, 15, 8, 0, 0, 0, time.UTC))
	admin = e.login("admin", DemoPassword) // the clock moved past the token's life
	e.must(e.do("PUT", "/api/v1/settings", admin, map[string]any{"device_clock_keep_days": 7, "device_clock_keep_rows": 4}), 200)
	if err := e.srv.Engine.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	b := e.must(e.do("GET", path, admin, nil), 200).Body
	var ats []string
	for _, it := range b["items"].([]any) {
		ats = append(ats, it.(map[string]any)["at"].(string)[:10])
	}
	if fmt.Sprint(ats) != "[2026-11-12 2026-11-11 2026-11-10 2026-11-09]" {
		t.Errorf("after the sweep: %v", ats)
	}
	// Seven days on, the days rule alone leaves the readings of the last 7 days.
	setClock(time.Date(2026, 11, 18, 7, 0, 0, 0, time.UTC))
	if err := e.srv.Engine.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	admin = e.login("admin", DemoPassword)
	if b := e.must(e.do("GET", path, admin, nil), 200).Body; b["total"] != float64(2) {
		t.Errorf("after the second sweep: %v", b["items"])
	}
}
