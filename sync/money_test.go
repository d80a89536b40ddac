package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldsync/reports"
	"fieldsync/schema"
)

// moneyWorld is a store with a technician, the office roles, a customer and a settable clock.
type moneyWorld struct {
	t    *testing.T
	e    *Engine
	now  *time.Time
	tech schema.Actor
	mgr  schema.Actor
	lead schema.Actor
	com  schema.Actor
	n    int
}

func newMoneyWorld(t *testing.T) *moneyWorld {
	e, now := monthTestEngine(t)
	*now = time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	put(t, e, schema.EntUser,
		schema.Doc{"id": "tech", "name": "张伟", "role": "technician", "dedicated": true, "active": true},
		schema.Doc{"id": "mgr", "name": "李强", "role": "manager", "active": true},
		schema.Doc{"id": "lead", "name": "赵总", "role": "leader", "active": true},
		schema.Doc{"id": "com", "name": "孙丽", "role": "commerce", "active": true})
	put(t, e, schema.EntCustomer, schema.Doc{"id": "cu", "name": "华东精密"})
	// The customer is on the technician's phone, as it is when they serve it.
	if err := e.run(context.Background(), func(w *wtx) error { return w.setScope("tech", schema.EntCustomer, "cu", true) }); err != nil {
		t.Fatal(err)
	}
	return &moneyWorld{t: t, e: e, now: now,
		tech: schema.Actor{UserID: "tech", Role: schema.RoleTechnician, Name: "张伟"},
		mgr:  schema.Actor{UserID: "mgr", Role: schema.RoleManager, Name: "李强"},
		lead: schema.Actor{UserID: "lead", Role: schema.RoleLeader, Name: "赵总"},
		com:  schema.Actor{UserID: "com", Role: schema.RoleCommerce, Name: "孙丽"}}
}

// do applies one mutation through the write path and returns its result.
func (m *moneyWorld) do(actor schema.Actor, entity, id, op, action string, fields map[string]any) Result {
	m.t.Helper()
	m.n++
	raw := map[string]json.RawMessage{}
	for k, v := range fields {
		b, _ := json.Marshal(v)
		raw[k] = b
	}
	var base int64
	if cur, err := m.e.Get(context.Background(), entity, id); err == nil && op == "update" {
		base = cur.Int("version")
	}
	res, err := m.e.Apply(context.Background(), actor, []Mutation{{MID: fmt.Sprint("m", m.n), Entity: entity, ID: id, Op: op, Action: action, BaseVersion: base, Fields: raw}}, Options{})
	if err != nil {
		m.t.Fatal(err)
	}
	return res[0]
}

func (m *moneyWorld) ok(r Result) schema.Doc {
	m.t.Helper()
	if r.Status != StatusApplied {
		m.t.Fatalf("%s %s: %s %s (%s)", r.Entity, r.ID, r.Status, r.Message, r.Code)
	}
	d, err := schema.DecodeDoc(r.Record)
	if err != nil {
		m.t.Fatal(err)
	}
	return d
}

func (m *moneyWorld) refused(r Result, code, field, words string) {
	m.t.Helper()
	if r.Status != StatusRejected || r.Code != code || (field != "" && r.Field != field) || !strings.Contains(r.Message, words) {
		m.t.Fatalf("got %s %s field %q: %s; want rejected %s field %q saying %q", r.Status, r.Code, r.Field, r.Message, code, field, words)
	}
}

func TestExpenseNeedsItsApproval(t *testing.T) {
	m := newMoneyWorld(t)
	// Public transport needs nothing.
	m.ok(m.do(m.tech, schema.EntExpense, "e1", "create", "", map[string]any{"kind": "public_transport", "amount_fen": 600}))
	// A taxi without an approval is refused, naming the approval it lacks, and nothing is stored.
	m.refused(m.do(m.tech, schema.EntExpense, "e2", "create", "", map[string]any{"kind": "taxi", "amount_fen": 4500}), schema.CodeValidation, "approval_id", "taxi approval is needed")
	if _, err := m.e.Get(context.Background(), schema.EntExpense, "e2"); err == nil {
		t.Fatal("a refused expense was stored")
	}
	m.refused(m.do(m.tech, schema.EntExpense, "e2", "create", "", map[string]any{"kind": "taxi", "amount_fen": -5}), schema.CodeValidation, "amount_fen", "non-negative")
	m.refused(m.do(m.tech, schema.EntExpense, "e2", "create", "", map[string]any{"kind": "taxi", "amount_fen": 900000}), schema.CodeValidation, "amount_fen", "at most")

	a := m.ok(m.do(m.tech, schema.EntApproval, "a1", "create", "", map[string]any{"kind": "taxi", "amount_fen": 5000, "reason": "配件太重 the part is too heavy for the metro"}))
	if a.Str("technician_id") != "tech" || a.Str("status") != "pending" || a.Str("decider_role") != "manager" {
		t.Fatalf("approval %v", a)
	}
	m.refused(m.do(m.tech, schema.EntExpense, "e2", "create", "", map[string]any{"kind": "taxi", "amount_fen": 4500, "approval_id": "a1"}), schema.CodeValidation, "approval_id", "is pending, not approved")
	// The wrong role cannot decide it; the manager can.
	m.refused(m.do(m.lead, schema.EntApproval, "a1", "action", "approve", nil), schema.CodeForbidden, "", "decided by the manager")
	m.refused(m.do(m.com, schema.EntApproval, "a1", "action", "approve", nil), schema.CodeForbidden, "", "may not approve")
	m.ok(m.do(m.mgr, schema.EntApproval, "a1", "action", "approve", nil))
	m.refused(m.do(m.tech, schema.EntExpense, "e2", "create", "", map[string]any{"kind": "taxi", "amount_fen": 5001, "approval_id": "a1"}), schema.CodeValidation, "amount_fen", "more than the 5000 fen approved")
	m.refused(m.do(m.tech, schema.EntExpense, "e2", "create", "", map[string]any{"kind": "freight", "amount_fen": 4500, "approval_id": "a1"}), schema.CodeValidation, "approval_id", "is for taxi, not freight")
	e := m.ok(m.do(m.tech, schema.EntExpense, "e2", "create", "", map[string]any{"kind": "taxi", "amount_fen": 4500, "approval_id": "a1"}))
	if e.Str("status") != "submitted" || e.Str("technician_id") != "tech" {
		t.Fatalf("expense %v", e)
	}
	m.refused(m.do(m.tech, schema.EntExpense, "e2", "action", "reimburse", nil), schema.CodeForbidden, "", "may not reimburse")
	if d := m.ok(m.do(m.mgr, schema.EntExpense, "e2", "action", "reimburse", nil)); d.Str("reimbursed_at") == "" {
		t.Fatalf("reimbursed %v", d)
	}
	// The technician's own records are in their scope.
	err := m.e.run(context.Background(), func(w *wtx) error {
		for _, r := range [][2]string{{schema.EntExpense, "e1"}, {schema.EntExpense, "e2"}, {schema.EntApproval, "a1"}} {
			if !w.inScope("tech", r[0], r[1]) {
				t.Errorf("%s %s is not in the technician's scope", r[0], r[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sale records a parts sale of total fen by the technician.
func (m *moneyWorld) sale(id string, total int64) schema.Doc {
	return m.ok(m.do(m.tech, schema.EntSale, id, "create", "", map[string]any{"kind": "parts", "customer_id": "cu",
		"lines": []any{map[string]any{"item": "硬盘 2TB drive", "qty": 2, "price_fen": total / 2}}}))
}

func TestCreditThresholdAndPayments(t *testing.T) {
	m := newMoneyWorld(t) // credit_threshold_fen 1000000 by default
	s := m.sale("s1", 999998)
	if s.Int("total_fen") != 999998 || s.Int("paid_fen") != 0 {
		t.Fatalf("sale %v", s)
	}
	m.refused(m.do(m.com, schema.EntSale, "s1", "action", "ship", nil), schema.CodeValidation, "credit_approval_id", "credit approval is needed")
	// Just below the threshold: the manager decides.
	a := m.ok(m.do(m.tech, schema.EntApproval, "c1", "create", "", map[string]any{"kind": "credit", "amount_fen": 999998, "sale_id": "s1", "reason": "老客户 regular customer"}))
	if a.Str("decider_role") != "manager" {
		t.Fatalf("below the threshold decided by %s", a.Str("decider_role"))
	}
	m.ok(m.do(m.mgr, schema.EntApproval, "c1", "action", "approve", nil))
	m.ok(m.do(m.com, schema.EntSale, "s1", "action", "ship", map[string]any{"credit_approval_id": "c1"}))

	// At the threshold: leadership decides; the manager may not.
	m.sale("s2", 1000000)
	m.refused(m.do(m.tech, schema.EntApproval, "c2", "create", "", map[string]any{"kind": "credit", "amount_fen": 999999, "sale_id": "s2", "reason": "r"}), schema.CodeValidation, "amount_fen", "does not cover")
	a = m.ok(m.do(m.tech, schema.EntApproval, "c2", "create", "", map[string]any{"kind": "credit", "amount_fen": 1000000, "sale_id": "s2", "reason": "r"}))
	if a.Str("decider_role") != "leader" {
		t.Fatalf("at the threshold decided by %s", a.Str("decider_role"))
	}
	m.refused(m.do(m.mgr, schema.EntApproval, "c2", "action", "approve", nil), schema.CodeForbidden, "", "decided by the leader")
	m.refused(m.do(m.com, schema.EntSale, "s2", "action", "ship", map[string]any{"credit_approval_id": "c2"}), schema.CodeValidation, "credit_approval_id", "pending")
	m.ok(m.do(m.lead, schema.EntApproval, "c2", "action", "approve", nil))
	m.refused(m.do(m.com, schema.EntSale, "s2", "action", "ship", map[string]any{"credit_approval_id": "c1"}), schema.CodeValidation, "credit_approval_id", "another sale")
	m.ok(m.do(m.com, schema.EntSale, "s2", "action", "ship", map[string]any{"credit_approval_id": "c2"}))

	// Payments: more than owed is refused and changes nothing; the last one collects.
	m.refused(m.do(m.com, schema.EntSale, "s1", "action", "pay", map[string]any{"amount_fen": 999999}), schema.CodeValidation, "amount_fen", "more than the 999998 fen owed")
	m.refused(m.do(m.tech, schema.EntSale, "s1", "action", "pay", map[string]any{"amount_fen": 1}), schema.CodeForbidden, "", "may not pay")
	d := m.ok(m.do(m.com, schema.EntSale, "s1", "action", "pay", map[string]any{"amount_fen": 500000}))
	if d.Int("paid_fen") != 500000 || d.Str("collected_at") != "" {
		t.Fatalf("after a part payment %v", d)
	}
	d = m.ok(m.do(m.com, schema.EntSale, "s1", "action", "pay", map[string]any{"amount_fen": 499998}))
	if d.Int("paid_fen") != 999998 || d.Str("collected_at") == "" {
		t.Fatalf("after the last payment %v", d)
	}
	// A sale paid in full ships without credit.
	m.sale("s3", 2000)
	m.ok(m.do(m.com, schema.EntSale, "s3", "action", "pay", map[string]any{"amount_fen": 2000}))
	m.ok(m.do(m.com, schema.EntSale, "s3", "action", "ship", nil))
}

func TestLiabilityAfterAYear(t *testing.T) {
	m := newMoneyWorld(t)
	m.sale("s1", 10000)
	m.ok(m.do(m.tech, schema.EntApproval, "c1", "create", "", map[string]any{"kind": "credit", "amount_fen": 10000, "sale_id": "s1", "reason": "r"}))
	m.ok(m.do(m.mgr, schema.EntApproval, "c1", "action", "approve", nil))
	m.ok(m.do(m.com, schema.EntSale, "s1", "action", "ship", map[string]any{"credit_approval_id": "c1"}))
	m.ok(m.do(m.com, schema.EntSale, "s1", "action", "pay", map[string]any{"amount_fen": 2000}))
	shipped := *m.now

	*m.now = shipped.Add(364 * 24 * time.Hour)
	m.refused(m.do(m.lead, schema.EntSale, "s1", "action", "charge_liability", map[string]any{"share_pct": 80}), schema.CodeInvalidTransition, "", "open 364 days")
	s, _ := m.e.Get(context.Background(), schema.EntSale, "s1")
	if r, _ := schema.ReceivableOf(s, *m.now); r.Bucket != "181-364" || r.OwedFen != 8000 {
		t.Fatalf("receivable at 364 days %+v", r)
	}
	*m.now = shipped.Add(366 * 24 * time.Hour)
	if r, _ := schema.ReceivableOf(s, *m.now); r.Bucket != "365+" || r.AgeDays != 366 {
		t.Fatalf("receivable at 366 days %+v", r)
	}
	m.refused(m.do(m.lead, schema.EntSale, "s1", "action", "charge_liability", map[string]any{"share_pct": 79}), schema.CodeValidation, "share_pct", "between 80 and 100")
	m.refused(m.do(m.mgr, schema.EntSale, "s1", "action", "charge_liability", map[string]any{"share_pct": 90}), schema.CodeForbidden, "", "may not charge_liability")
	d := m.ok(m.do(m.lead, schema.EntSale, "s1", "action", "charge_liability", map[string]any{"share_pct": 90}))
	if d.Int("liability_fen") != 7200 {
		t.Fatalf("liability %d, want 90%% of 8000 = 7200", d.Int("liability_fen"))
	}
}

func TestSoftwareChargeNeedsCompanyApproval(t *testing.T) {
	m := newMoneyWorld(t)
	m.ok(m.do(m.tech, schema.EntSale, "sw", "create", "", map[string]any{"kind": "software", "customer_id": "cu",
		"lines": []any{map[string]any{"item": "系统安装 system install", "qty": 1, "price_fen": 30000}}}))
	m.refused(m.do(m.com, schema.EntSale, "sw", "action", "pay", map[string]any{"amount_fen": 30000}), schema.CodeValidation, "charge_approval_id", "software_charge approval is needed")
	m.ok(m.do(m.tech, schema.EntApproval, "ap", "create", "", map[string]any{"kind": "software_charge", "amount_fen": 30000, "sale_id": "sw", "reason": "保修期外 out of warranty"}))
	m.ok(m.do(m.mgr, schema.EntApproval, "ap", "action", "approve", nil))
	d := m.ok(m.do(m.com, schema.EntSale, "sw", "action", "pay", map[string]any{"amount_fen": 30000, "charge_approval_id": "ap"}))
	if d.Str("collected_at") == "" || d.Str("charge_approval_id") != "ap" {
		t.Fatalf("software sale %v", d)
	}
}

// computeWithReports is the server's month computation (server.monthComputer).
func computeWithReports(f schema.MonthInput) (MonthOutcome, error) {
	r := reports.ComputeMonth(f)
	out := MonthOutcome{Rows: r.Rows, Totals: r.Totals, Warnings: r.Warnings}
	for _, row := range r.Rows {
		out.CountedSheetIDs = append(out.CountedSheetIDs, row.CountedSheetIDs...)
		out.UpheldComplaintIDs = append(out.UpheldComplaintIDs, row.ComplaintIDs...)
		out.MoneyIDs = append(out.MoneyIDs, row.MoneyIDs...)
	}
	return out, nil
}

func monthRow(t *testing.T, report schema.Doc) map[string]any {
	t.Helper()
	rows, _ := report["rows"].([]any)
	if len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	return rows[0].(map[string]any)
}

func fen(v any) int64 { return schema.Doc{"v": v}.Int("v") }

func TestMonthMoneyThroughTheWritePath(t *testing.T) {
	m := newMoneyWorld(t)
	ctx := context.Background()
	coord := schema.Actor{UserID: "coord", Role: schema.RoleCoordinator, Name: "王芳"}
	put(t, m.e, schema.EntUser, schema.Doc{"id": "coord", "name": "王芳", "role": "coordinator", "active": true})

	// November: a parts sale collected, cost added; a taxi on approval and a bus fare.
	m.sale("s1", 100000)
	m.ok(m.do(m.com, schema.EntSale, "s1", "update", "", map[string]any{"cost_fen": 60000}))
	m.refused(m.do(m.tech, schema.EntSale, "s1", "update", "", map[string]any{"cost_fen": 1}), schema.CodeForbidden, "", "may not edit")
	m.ok(m.do(m.com, schema.EntSale, "s1", "action", "pay", map[string]any{"amount_fen": 100000}))
	m.ok(m.do(m.tech, schema.EntApproval, "a1", "create", "", map[string]any{"kind": "taxi", "amount_fen": 5000, "reason": "重件 heavy part"}))
	m.ok(m.do(m.mgr, schema.EntApproval, "a1", "action", "approve", nil))
	m.ok(m.do(m.tech, schema.EntExpense, "e1", "create", "", map[string]any{"kind": "taxi", "amount_fen": 4500, "approval_id": "a1"}))
	m.ok(m.do(m.tech, schema.EntExpense, "e2", "create", "", map[string]any{"kind": "public_transport", "amount_fen": 600}))
	m.ok(m.do(m.mgr, schema.EntExpense, "e1", "action", "reimburse", nil))
	m.ok(m.do(m.mgr, schema.EntExpense, "e2", "action", "reimburse", nil))

	*m.now = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC) // the last day, in Shanghai
	rep, err := m.e.CompileMonth(ctx, coord, "2026-11", computeWithReports)
	if err != nil {
		t.Fatal(err)
	}
	row := monthRow(t, rep)
	// (100000 − 60000) × 30% = 12000; no complaint: reward 20000; expenses 5100 apart.
	if fen(row["commission_fen"]) != 12000 || fen(row["expenses_fen"]) != 5100 || fen(row["total_fen"]) != 32000 {
		t.Fatalf("November row: commission %v expenses %v total %v", row["commission_fen"], row["expenses_fen"], row["total_fen"])
	}
	if ids := rep.Strings("money_ids"); !slices.Equal(ids, []string{"commission:s1", "expense:e1", "expense:e2"}) {
		t.Fatalf("money ids %v", ids)
	}
	for _, step := range []struct {
		a schema.Actor
		s string
	}{{m.mgr, schema.MonthReview}, {m.lead, schema.MonthApprove}} {
		if _, err := m.e.StepMonth(ctx, step.a, "2026-11", step.s, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Later the same day a software charge is collected: November is locked, so it goes to
	// December, late; November's report never changes.
	m.ok(m.do(m.tech, schema.EntSale, "sw", "create", "", map[string]any{"kind": "software", "customer_id": "cu",
		"lines": []any{map[string]any{"item": "系统安装", "qty": 1, "price_fen": 30000}}}))
	m.ok(m.do(m.tech, schema.EntApproval, "ap", "create", "", map[string]any{"kind": "software_charge", "amount_fen": 30000, "sale_id": "sw", "reason": "r"}))
	m.ok(m.do(m.mgr, schema.EntApproval, "ap", "action", "approve", nil))
	m.ok(m.do(m.com, schema.EntSale, "sw", "action", "pay", map[string]any{"amount_fen": 30000, "charge_approval_id": "ap"}))
	if _, err := m.e.CompileMonth(ctx, coord, "2026-11", computeWithReports); err == nil {
		t.Fatal("an approved month was compiled again")
	}
	after, _ := m.e.MonthReport(ctx, "2026-11")
	if fen(monthRow(t, after)["total_fen"]) != 32000 || after.Int("version") != rep.Int("version")+2 {
		t.Fatalf("the approved month changed: %v", after)
	}
	*m.now = time.Date(2026, 12, 31, 8, 0, 0, 0, time.UTC)
	dec, err := m.e.CompileMonth(ctx, coord, "2026-12", computeWithReports)
	if err != nil {
		t.Fatal(err)
	}
	row = monthRow(t, dec)
	if ids := dec.Strings("money_ids"); !slices.Equal(ids, []string{"commission:sw"}) || fen(row["commission_fen"]) != 12000 {
		t.Fatalf("December: money ids %v commission %v (want only the late software charge, 30000 × 40%%)", ids, row["commission_fen"])
	}
}

func TestMoneyTicketMustBeInScope(t *testing.T) {
	m := newMoneyWorld(t)
	put(t, m.e, schema.EntTicket, schema.Doc{"id": "other", "number": "SR-X", "customer_id": "cu", "status": "dispatched", "assignee_id": "someone"})
	m.refused(m.do(m.tech, schema.EntExpense, "e1", "create", "", map[string]any{"kind": "public_transport", "amount_fen": 600, "ticket_id": "other"}), schema.CodeOutOfScope, "ticket_id", "not in your scope")
	m.refused(m.do(m.mgr, schema.EntExpense, "e1", "create", "", map[string]any{"kind": "public_transport", "amount_fen": 600, "ticket_id": "nope", "technician_id": "tech"}), schema.CodeValidation, "ticket_id", "does not exist")
	m.ok(m.do(m.mgr, schema.EntExpense, "e1", "create", "", map[string]any{"kind": "public_transport", "amount_fen": 600, "ticket_id": "other", "technician_id": "tech"}))
}
