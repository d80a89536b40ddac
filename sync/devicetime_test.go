package sync_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"fieldsync/reports"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// TestDeviceTimesCountOnlyWhenCredible: the accept and arrive a phone pushes carry its clock.
// The deadlines (the deadline event written when a late step arrives, and the month's
// on-time counts) use that time when it is credible, and the server's time of receipt,
// flagged, when it is not: the phone clock off by more than the tolerance, or a time before
// the dispatch. A sheet whose phone arrival is before the dispatch is flagged too.
func TestDeviceTimesCountOnlyWhenCredible(t *testing.T) {
	s := newSheetEngine(t)
	ctx := context.Background()
	clock := time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)
	s.e.Now = func() time.Time { return clock }
	dev := s.device(t, "phone-1", false)
	cust, err := s.e.Get(ctx, schema.EntTicket, s.ticket)
	if err != nil {
		t.Fatal(err)
	}
	// Each ticket: critical, on site, dispatched at 02:00: respond by 02:30, arrive by 06:00.
	newTicket := func() string {
		id := s.apply(s.coord, syncer.Mutation{Entity: schema.EntTicket, Op: "create", Fields: raw(map[string]any{
			"customer_id": cust.Str("customer_id"), "fault_symptoms": "停机", "urgency": "critical", "service_mode": "onsite"})})
		s.apply(s.coord, syncer.Mutation{Entity: schema.EntTicket, ID: id, Op: "action", Action: "dispatch", Fields: raw(map[string]any{"technician_id": s.tech.UserID})})
		return id
	}
	clockOffset := func(d time.Duration) {
		t.Helper()
		if err := s.e.RecordClock(ctx, dev.actor.DeviceID, clock.Add(d).Format(time.RFC3339Nano)); err != nil {
			t.Fatal(err)
		}
	}
	// step pushes action at server time recv, with the phone's clock saying phone.
	step := func(id, action string, recv, phone time.Time) schema.Doc {
		t.Helper()
		clock = recv
		r := s.try(dev.actor, syncer.Mutation{Entity: schema.EntTicket, ID: id, Op: "action", Action: action, At: phone.Format(time.RFC3339Nano)})
		if r.Status != syncer.StatusApplied {
			t.Fatalf("%s: %s %s", action, r.Code, r.Message)
		}
		d, _ := s.e.Get(ctx, schema.EntTicket, id)
		return d
	}
	missed := func(id string) []string {
		t.Helper()
		evs, err := s.e.List(ctx, syncer.Query{Entity: schema.EntTicketEvent, Where: []string{"ticket_id = ?"}, Args: []any{id}})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range evs {
			if ev.Str("kind") == schema.AlertDeadlineMissed {
				d := schema.Doc(ev["details"].(map[string]any))
				out = append(out, d.Str("deadline")+" "+d.Str("device_time_flag"))
			}
		}
		return out
	}
	at := func(h, m int) time.Time { return time.Date(2026, 11, 10, h, m, 0, 0, time.UTC) }

	// A: the phone, 40 s fast, accepted offline at 02:20 and arrived at 05:30; the server
	// heard of each later, after its deadline. Both met: no missed deadline.
	a := newTicket()
	clockOffset(40 * time.Second)
	step(a, "accept", at(2, 45), at(2, 20).Add(40*time.Second))
	step(a, "en_route", at(2, 50), at(2, 50))
	d := step(a, "arrive", at(7, 0), at(5, 30).Add(40*time.Second))
	if dt := schema.Doc(d["device_times"].(map[string]any)); dt["arrived_at"] == nil || dt["accepted_at"] == nil {
		t.Fatalf("the ticket does not keep the phone's times: %v", d["device_times"])
	}
	if m := missed(a); len(m) != 0 {
		t.Errorf("ticket A, steps taken in time on a credible phone: missed %q", m)
	}

	// B: the phone's clock is 2 h behind: its accept "at 00:45" is not believed; the server
	// received it at 02:45, after the response deadline: missed, and the event says why.
	clock = at(2, 0)
	b := newTicket()
	clock = at(2, 40)
	clockOffset(-2 * time.Hour)
	step(b, "accept", at(2, 45), at(0, 45))
	if m := missed(b); len(m) != 1 || !strings.HasPrefix(m[0], "response ") || !strings.Contains(m[0], "2h0m0s behind") {
		t.Errorf("ticket B: missed %q, want the response deadline flagged for the phone clock", m)
	}

	// C: the phone's clock is right, but its arrival says 01:00, before the 02:00 dispatch:
	// the server's 03:00 counts (on time), flagged; the sheet's arrival is flagged too.
	clock = at(2, 0)
	c := newTicket()
	clockOffset(0)
	step(c, "accept", at(2, 10), at(2, 10))
	step(c, "en_route", at(2, 20), at(2, 20))
	step(c, "arrive", at(3, 0), at(1, 0))
	if m := missed(c); len(m) != 0 {
		t.Errorf("ticket C: missed %q", m)
	}
	s.apply(dev.actor, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(map[string]any{"ticket_id": c, "arrived_at": "2026-11-10T01:00:00Z"})})
	for _, id := range []string{a, b} {
		s.apply(dev.actor, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(map[string]any{"ticket_id": id})})
	}

	in, err := s.e.MonthFactsPreview(ctx, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		resp, arr bool
		flag      string
	}
	facts := map[string]got{}
	for _, f := range in.Sheets {
		facts[f.TicketID] = got{f.RespondedOnTime, f.ArrivedOnTime, f.ClockFlag}
	}
	if f := facts[a]; !f.resp || !f.arr || f.flag != "" {
		t.Errorf("ticket A: %+v, want both on time, no flag", f)
	}
	if f := facts[b]; f.resp || !strings.Contains(f.flag, "2h0m0s behind") || !strings.Contains(f.flag, "server's time of receipt is used") {
		t.Errorf("ticket B: %+v, want late, flagged", f)
	}
	if f := facts[c]; !f.resp || !f.arr || !strings.Contains(f.flag, "arrived_at") || !strings.Contains(f.flag, "before the dispatch") {
		t.Errorf("ticket C: %+v, want on time, the arrival before the dispatch flagged", f)
	}

	// The month report lists each flag as a warning naming the sheet, whole in either language.
	var enB, zhC string
	sheetOf := map[string]string{}
	for _, f := range in.Sheets {
		sheetOf[f.TicketID] = f.SheetID
	}
	for _, w := range reports.ComputeMonth(in).Warnings {
		if strings.Contains(w, sheetOf[b]) {
			enB = reports.WarningIn(w, "en")
		}
		if strings.Contains(w, sheetOf[c]) {
			zhC = reports.WarningIn(w, "zh")
		}
	}
	if !strings.Contains(enB, "times not credible") || !strings.Contains(enB, "2h0m0s behind") || !strings.Contains(enB, "the server's time of receipt is used") ||
		strings.ContainsFunc(enB, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) {
		t.Errorf("ticket B's warning in English: %q", enB)
	}
	if !strings.Contains(zhC, "时间存疑") || !strings.Contains(zhC, "早于派单时间") || strings.Contains(zhC, "dispatch") {
		t.Errorf("ticket C's warning in Chinese: %q", zhC)
	}
}
