package sync

import (
	"context"
	"slices"
	"testing"
	"time"

	"fieldsync/schema"
)

// putAsset stores an asset of the money world's customer, on the technician's phone.
func (m *moneyWorld) putAsset(id string) {
	m.t.Helper()
	put(m.t, m.e, schema.EntAsset, schema.Doc{"id": id, "customer_id": "cu", "model": "DS-7608", "serial": "SN-" + id})
	if err := m.e.run(context.Background(), func(w *wtx) error { return w.setScope("tech", schema.EntAsset, id, true) }); err != nil {
		m.t.Fatal(err)
	}
}

// P11: out of warranty, the quote (shipping included) is confirmed by the customer before
// anything ships; commerce receives, repairs and returns it; the fee is collected.
func TestRepairReturnOutOfWarranty(t *testing.T) {
	m := newMoneyWorld(t)
	m.putAsset("as1")
	m.refused(m.do(m.tech, schema.EntRepair, "r1", "create", "", map[string]any{"asset_id": "nope", "fault": "不开机"}), schema.CodeOutOfScope, "asset_id", "not in your scope")
	r := m.ok(m.do(m.tech, schema.EntRepair, "r1", "create", "", map[string]any{"asset_id": "as1", "fault": "硬盘损坏 drive failed"}))
	if r.Str("status") != schema.RepReported || r.Str("customer_id") != "cu" || r.Str("technician_id") != "tech" {
		t.Fatalf("new repair %v", r)
	}
	// Only commerce answers the warranty questions, and nothing ships before a confirmed quote.
	m.refused(m.do(m.tech, schema.EntRepair, "r1", "action", "answer_warranty", map[string]any{"in_warranty": false, "manufacturer_onsite": false}), schema.CodeForbidden, "", "may not answer_warranty")
	m.refused(m.do(m.tech, schema.EntRepair, "r1", "action", "ship", nil), schema.CodeInvalidTransition, "", "nothing ships before the customer confirms")
	m.ok(m.do(m.com, schema.EntRepair, "r1", "action", "answer_warranty", map[string]any{"in_warranty": false, "manufacturer_onsite": true}))
	m.refused(m.do(m.com, schema.EntRepair, "r1", "action", "quote", map[string]any{"repair_fen": 0, "shipping_fen": 0}), schema.CodeValidation, "repair_fen", "out-of-warranty repair needs a quote")
	m.refused(m.do(m.com, schema.EntRepair, "r1", "action", "quote", map[string]any{"repair_fen": -1, "shipping_fen": 2000}), schema.CodeValidation, "repair_fen", "0 or more")
	q := m.ok(m.do(m.com, schema.EntRepair, "r1", "action", "quote", map[string]any{"repair_fen": 30000, "shipping_fen": 2000}))
	if q.Int("quote_fen") != 32000 || q.Str("status") != schema.RepQuoted {
		t.Fatalf("quote %v", q)
	}
	m.refused(m.do(m.tech, schema.EntRepair, "r1", "action", "ship", nil), schema.CodeInvalidTransition, "", "nothing ships before the customer confirms")
	m.refused(m.do(m.com, schema.EntRepair, "r1", "action", "pay", map[string]any{"amount_fen": 100}), schema.CodeInvalidTransition, "", "once the customer confirmed")
	m.refused(m.do(m.tech, schema.EntRepair, "r1", "action", "confirm", map[string]any{"confirmed_by": " "}), schema.CodeValidation, "confirmed_by", "")
	c := m.ok(m.do(m.tech, schema.EntRepair, "r1", "action", "confirm", map[string]any{"confirmed_by": "刘工 Liu (customer IT)"}))
	if c.Str("confirmed_by") != "刘工 Liu (customer IT)" || c.Str("confirmed_at") == "" || c.Str("confirm_recorded_by") != "tech" {
		t.Fatalf("confirmation %v", c)
	}
	m.ok(m.do(m.tech, schema.EntRepair, "r1", "action", "ship", nil))
	m.refused(m.do(m.tech, schema.EntRepair, "r1", "action", "receive", nil), schema.CodeForbidden, "", "may not receive")
	for _, a := range []string{"receive", "repaired", "return"} {
		m.ok(m.do(m.com, schema.EntRepair, "r1", "action", a, nil))
	}
	// The fee: more than owed is refused; the payment that completes it stamps collected_at.
	m.refused(m.do(m.com, schema.EntRepair, "r1", "action", "pay", map[string]any{"amount_fen": 32001}), schema.CodeValidation, "amount_fen", "more than the 32000 fen owed")
	m.ok(m.do(m.com, schema.EntRepair, "r1", "action", "pay", map[string]any{"amount_fen": 2000}))
	d := m.ok(m.do(m.com, schema.EntRepair, "r1", "action", "pay", map[string]any{"amount_fen": 30000}))
	if d.Str("collected_at") == "" || d.Int("paid_fen") != 32000 || d.Str("status") != schema.RepReturned {
		t.Fatalf("collected %v", d)
	}
	// The fee shows in the month it was collected, apart from pay, under its handler.
	put(t, m.e, schema.EntUser, schema.Doc{"id": "coord", "name": "王芳", "role": "coordinator", "active": true})
	*m.now = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	rep, err := m.e.CompileMonth(context.Background(), schema.Actor{UserID: "coord", Role: schema.RoleCoordinator}, "2026-11", computeWithReports)
	if err != nil {
		t.Fatal(err)
	}
	row := monthRow(t, rep)
	if fen(row["repair_fees_fen"]) != 32000 || fen(row["total_fen"]) != 20000 || !slices.Equal(rep.Strings("money_ids"), []string{"repair:r1"}) {
		t.Fatalf("month: repair fees %v total %v money ids %v (want 32000 apart; the total is the no-complaint reward)", row["repair_fees_fen"], row["total_fen"], rep.Strings("money_ids"))
	}
	// The repair is on the technician's phone.
	if err := m.e.run(context.Background(), func(w *wtx) error {
		if !w.inScope("tech", schema.EntRepair, "r1") {
			t.Error("the repair is not in its technician's scope")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// In warranty with the manufacturer's on-site service, nothing goes back: the manufacturer
// comes. In warranty without it, the device goes back; a quote of 0 is allowed.
func TestRepairInWarranty(t *testing.T) {
	m := newMoneyWorld(t)
	m.putAsset("as1")
	m.ok(m.do(m.tech, schema.EntRepair, "r1", "create", "", map[string]any{"asset_id": "as1", "fault": "f"}))
	d := m.ok(m.do(m.com, schema.EntRepair, "r1", "action", "answer_warranty", map[string]any{"in_warranty": true, "manufacturer_onsite": true}))
	if d.Str("status") != schema.RepManufacturer {
		t.Fatalf("status %s", d.Str("status"))
	}
	m.refused(m.do(m.com, schema.EntRepair, "r1", "action", "quote", map[string]any{"repair_fen": 0, "shipping_fen": 0}), schema.CodeInvalidTransition, "", "is manufacturer")
	m.ok(m.do(m.tech, schema.EntRepair, "r2", "create", "", map[string]any{"asset_id": "as1", "fault": "f"}))
	m.ok(m.do(m.com, schema.EntRepair, "r2", "action", "answer_warranty", map[string]any{"in_warranty": true, "manufacturer_onsite": false}))
	m.ok(m.do(m.com, schema.EntRepair, "r2", "action", "quote", map[string]any{"repair_fen": 0, "shipping_fen": 0}))
	m.ok(m.do(m.tech, schema.EntRepair, "r2", "action", "confirm", map[string]any{"confirmed_by": "刘工"}))
	m.ok(m.do(m.tech, schema.EntRepair, "r2", "action", "ship", nil))
}

// P13 B: a charge never reported, found through an upheld complaint, costs the technician the
// charge in full plus the penalty per case, in the month it is recorded.
func TestUnreportedChargeThroughTheMonth(t *testing.T) {
	m := newMoneyWorld(t)
	ctx := context.Background()
	put(t, m.e, schema.EntTicket, schema.Doc{"id": "tk", "number": "SR-1", "customer_id": "cu", "status": "closed", "assignee_id": "tech"})
	put(t, m.e, schema.EntComplaint,
		schema.Doc{"id": "co", "ticket_id": "tk", "technician_id": "tech", "status": "open", "description": "私下收费 charged privately", "received_at": schema.Stamp(*m.now)},
		schema.Doc{"id": "co2", "ticket_id": "tk", "technician_id": "tech", "status": "upheld", "description": "d", "received_at": schema.Stamp(*m.now)})
	m.refused(m.do(m.mgr, schema.EntUnreported, "u1", "create", "", map[string]any{"complaint_id": "co", "amount_fen": 30000}), schema.CodeValidation, "complaint_id", "is open")
	m.refused(m.do(m.tech, schema.EntUnreported, "u1", "create", "", map[string]any{"complaint_id": "co2", "amount_fen": 30000}), schema.CodeOutOfScope, "", "")
	m.refused(m.do(m.mgr, schema.EntUnreported, "u1", "create", "", map[string]any{"complaint_id": "co2", "amount_fen": 0}), schema.CodeValidation, "amount_fen", "more than 0")
	u := m.ok(m.do(m.mgr, schema.EntUnreported, "u1", "create", "", map[string]any{"complaint_id": "co2", "amount_fen": 30000, "note": "装系统收了300元"}))
	if u.Str("technician_id") != "tech" || u.Int("penalty_fen") != 10000 {
		t.Fatalf("recorded %v", u)
	}
	m.refused(m.do(m.mgr, schema.EntUnreported, "u2", "create", "", map[string]any{"complaint_id": "co2", "amount_fen": 1}), schema.CodeValidation, "complaint_id", "taken by another")

	// Base salary from the employment history, in force on the month's first day.
	put(t, m.e, schema.EntUser, schema.Doc{"id": "tech", "name": "张伟", "role": "technician", "dedicated": true, "active": true,
		"employment": []any{map[string]any{"from": "2026-01-01", "probation": false, "dedicated": true, "base_salary_fen": schema.Num(600000)},
			map[string]any{"from": "2026-11-02", "probation": false, "dedicated": true, "base_salary_fen": schema.Num(650000)}}})
	put(t, m.e, schema.EntUser, schema.Doc{"id": "coord", "name": "王芳", "role": "coordinator", "active": true})
	*m.now = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	rep, err := m.e.CompileMonth(ctx, schema.Actor{UserID: "coord", Role: schema.RoleCoordinator}, "2026-11", computeWithReports)
	if err != nil {
		t.Fatal(err)
	}
	row := monthRow(t, rep)
	// Base 600000 (the 1 November entry); one upheld complaint: bonus −5000; unreported
	// 30000 + 10000 = 40000. Total 600000 − 5000 − 40000 = 555000.
	if fen(row["base_salary_fen"]) != 600000 || fen(row["unreported_fen"]) != 40000 || fen(row["total_fen"]) != 555000 {
		t.Fatalf("row base %v unreported %v total %v", row["base_salary_fen"], row["unreported_fen"], row["total_fen"])
	}
	if ids := rep.Strings("money_ids"); !slices.Equal(ids, []string{"unreported:u1"}) {
		t.Fatalf("money ids %v", ids)
	}
}
