package server

import (
	"fmt"
	"strings"
	"testing"
)

// TestSettingsHaveRanges: every setting has a sane range, listed by GET /api/v1/settings
// and in its description, and a PUT outside it is refused naming the setting and the range,
// changing nothing. The values here once stopped a server (blob_max_bytes 0), wiped the
// sync history (offline_days past what a time.Duration holds) or made deadlines absurd.
func TestSettingsHaveRanges(t *testing.T) {
	o := newOffice(t)
	items := o.must(o.do("GET", "/api/v1/settings", o.coord, nil), 200).Body["items"].([]any)
	bounds := map[string][2]float64{}
	for _, it := range items {
		m := it.(map[string]any)
		lo, okLo := m["min"].(float64)
		hi, okHi := m["max"].(float64)
		if k := str(m, "kind"); k == "timezone" || k == "lang" {
			continue // checked against the known zones and languages
		}
		if !okLo || !okHi || lo > hi {
			t.Errorf("setting %s: min %v max %v, want both, min <= max", m["key"], m["min"], m["max"])
			continue
		}
		bounds[str(m, "key")] = [2]float64{lo, hi}
		if d := str(m, "description"); !strings.Contains(d, fmt.Sprint(int64(hi))) {
			t.Errorf("setting %s: description %q does not state its range", m["key"], d)
		}
	}
	for _, tc := range []struct {
		key   string
		value any
	}{
		{"blob_max_bytes", 0},
		{"offline_days", 106752},
		{"offline_days", 0},
		{"response_minutes_low", int64(1) << 40},
		{"arrival_minutes_critical", 43201},
		{"completed_scope_days", 100000},
		{"allowance_per_service_fen", int64(1) << 50},
		{"complaint_forfeit_threshold", 1000000},
		{"company_name", strings.Repeat("华", 1000)},
	} {
		before := o.srv.Engine.Settings().All()
		r := o.do("PUT", "/api/v1/settings", o.admin, map[string]any{tc.key: tc.value})
		if r.Status != 400 || r.errField() != tc.key {
			t.Errorf("PUT %s = %.40v: %d %s, want 400 naming %s", tc.key, tc.value, r.Status, r.Raw, tc.key)
			continue
		}
		b := bounds[tc.key]
		msg := fmt.Sprint(r.Body["error"].(map[string]any)["message"])
		if !strings.Contains(msg, fmt.Sprint(int64(b[1]))) {
			t.Errorf("PUT %s: message %q does not give the range (max %v)", tc.key, msg, b[1])
		}
		if after := o.srv.Engine.Settings().All(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("a refused PUT of %s changed the settings", tc.key)
		}
	}
	if r := o.do("PUT", "/api/v1/settings", o.admin, map[string]any{"sheet_required": []string{"rating", "rating"}}); r.Status != 400 || r.errField() != "sheet_required" {
		t.Errorf("sheet_required with an item twice: %d %s", r.Status, r.Raw)
	}
	// The bounds themselves are accepted.
	for _, key := range []string{"offline_days", "response_minutes_low", "blob_max_bytes"} {
		b := bounds[key]
		o.must(o.do("PUT", "/api/v1/settings", o.admin, map[string]any{key: b[0]}), 200)
		o.must(o.do("PUT", "/api/v1/settings", o.admin, map[string]any{key: b[1]}), 200)
	}
}
