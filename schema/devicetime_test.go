package schema

import (
	"strings"
	"testing"
)

// TestStepTime: a step taken on a phone counts at the phone's time when that time is
// credible, and at the server's time of receipt, with a flag saying why, when the phone clock
// was off by more than the tolerance, or the phone's time is after the server received the
// step, or before the ticket was dispatched.
func TestStepTime(t *testing.T) {
	const tol = 300 // seconds
	ticket := func(deviceAt string, offset any) Doc {
		return Doc{"dispatched_at": "2026-11-10T02:00:00.000Z", "accepted_at": "2026-11-10T02:45:00.000Z",
			"device_times": map[string]any{"accepted_at": map[string]any{"device_at": deviceAt, "offset_ms": offset}}}
	}
	for _, tc := range []struct {
		name     string
		t        Doc
		want     string
		flagWith string
	}{
		{"no phone time: the server's", Doc{"accepted_at": "2026-11-10T02:45:00.000Z"}, "2026-11-10T02:45:00.000Z", ""},
		{"credible, clock 40 s fast", ticket("2026-11-10T02:20:40.000Z", Num(40_000)), "2026-11-10T02:20:40.000Z", ""},
		{"credible, clock never reported", ticket("2026-11-10T02:20:00.000Z", nil), "2026-11-10T02:20:00.000Z", ""},
		{"clock 2 h behind", ticket("2026-11-10T00:45:00.000Z", Num(-7_200_000)), "2026-11-10T02:45:00.000Z", "2h0m0s behind"},
		{"after the server received it", ticket("2026-11-10T03:45:00.000Z", Num(0)), "2026-11-10T02:45:00.000Z", "after the server received"},
		{"before the dispatch", ticket("2026-11-10T01:00:00.000Z", Num(0)), "2026-11-10T02:45:00.000Z", "before the dispatch"},
		{"within the tolerance of the dispatch", ticket("2026-11-10T01:57:00.000Z", Num(0)), "2026-11-10T01:57:00.000Z", ""},
	} {
		at, flag := StepTime(tc.t, "accepted_at", tol)
		if Stamp(at) != tc.want {
			t.Errorf("%s: counts at %s, want %s", tc.name, Stamp(at), tc.want)
		}
		if tc.flagWith == "" && flag != "" || tc.flagWith != "" && (!strings.Contains(flag, tc.flagWith) || !strings.Contains(flag, "服务器") || !strings.Contains(flag, "server's time of receipt is used")) {
			t.Errorf("%s: flag %q, want one with %q", tc.name, flag, tc.flagWith)
		}
	}
}

// TestSheetArrivalBeforeDispatchFlagged: a sheet whose phone arrival time is before its
// ticket's dispatch is flagged in Chinese and English.
func TestSheetArrivalBeforeDispatchFlagged(t *testing.T) {
	sheet := Doc{"arrived_at": "2026-11-10T01:00:00.000Z", "received_at": "2026-11-10T05:00:00.000Z", "device_clock_offset_ms": Num(0)}
	tk := Doc{"dispatched_at": "2026-11-10T02:00:00.000Z"}
	if f := SheetClockFlag(sheet, tk, 300); !strings.Contains(f, "早于派单") || !strings.Contains(f, "before the dispatch") {
		t.Errorf("flag %q", f)
	}
	sheet["arrived_at"] = "2026-11-10T02:30:00.000Z"
	if f := SheetClockFlag(sheet, tk, 300); f != "" {
		t.Errorf("an arrival after the dispatch is flagged %q", f)
	}
}
