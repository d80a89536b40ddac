package reports

import (
	"fmt"
	"slices"
	"testing"

	"fieldsync/schema"
)

// moneyMonth is November for one technician with two collected sales, a liability and two
// expenses, and n upheld complaints.
func moneyMonth(t *testing.T, n int, probation bool) Row {
	t.Helper()
	s := testSettings(t)
	s.CommissionPartsPct, s.CommissionSoftwarePct = 30, 40
	in := MonthInput{Month: "2026-11", Settings: s,
		Technicians: []Technician{{ID: "a", Name: "张伟", Dedicated: true, Probation: probation}},
		Sheets:      sheets("a", 2),
		Sales: []SaleFact{
			{ID: "parts", Kind: "parts", TechnicianID: "a", TotalFen: 100000, CostFen: 60000, CollectedAt: midNovember},
			{ID: "soft", Kind: "software", TechnicianID: "a", TotalFen: 30000, CollectedAt: midNovember},
			{ID: "odd", Kind: "parts", TechnicianID: "a", TotalFen: 10, CostFen: 3, CollectedAt: midNovember},
			{ID: "nocost", Kind: "parts", TechnicianID: "a", TotalFen: 5000, CollectedAt: midNovember},
		},
		Liabilities: []LiabilityFact{{SaleID: "old", TechnicianID: "a", SharePct: 90, AmountFen: 7200, At: midNovember}},
		Expenses: []ExpenseFact{
			{ID: "bus", TechnicianID: "a", Kind: "public_transport", AmountFen: 600, ReimbursedAt: midNovember},
			{ID: "taxi", TechnicianID: "a", Kind: "taxi", AmountFen: 4500, ApprovalID: "ap1", ReimbursedAt: midNovember},
		},
	}
	for i := range n {
		in.Complaints = append(in.Complaints, ComplaintFact{ID: fmt.Sprintf("c%d", i), TechnicianID: "a", Status: ComplaintUpheld, ReceivedAt: midNovember})
	}
	res := ComputeMonth(in)
	if len(res.Rows) != 1 || len(res.Warnings) > 0 {
		t.Fatalf("rows %d warnings %v", len(res.Rows), res.Warnings)
	}
	r := res.Rows[0]
	if res.Totals.TotalFen != r.TotalFen || res.Totals.ExpensesFen != r.ExpensesFen || res.Totals.CommissionFen != r.CommissionFen {
		t.Errorf("totals %+v do not add the row up", res.Totals)
	}
	return r
}

// Hand-computed: parts (100000 − 60000) × 30% = 12000; software 30000 × 40% = 12000;
// odd (10 − 3) × 30% = 2.1 → 2 fen; nocost has no cost yet: no commission, not settled.
// Commissions 24002. Allowance 2 × 5000 = 10000. Liability 7200. Expenses 600 + 4500 = 5100.
func TestMonthMoneyBelowTheForfeit(t *testing.T) {
	r := moneyMonth(t, 2, false) // K−1 = 2 upheld complaints: bonus −10000, commissions paid
	if r.CommissionFen != 24002 || r.CommissionForfeitedFen != 0 || r.BonusFen != -10000 || r.LiabilityFen != 7200 {
		t.Fatalf("commission %d forfeited %d bonus %d liability %d", r.CommissionFen, r.CommissionForfeitedFen, r.BonusFen, r.LiabilityFen)
	}
	// 10000 − 10000 + 24002 − 7200
	if r.TotalFen != 16802 || r.ExpensesFen != 5100 {
		t.Fatalf("total %d expenses %d, want 16802 and 5100", r.TotalFen, r.ExpensesFen)
	}
	want := []string{"commission:parts", "commission:soft", "commission:odd", "liability:old", "expense:bus", "expense:taxi"}
	if !slices.Equal(r.MoneyIDs, want) {
		t.Fatalf("money ids %v, want %v", r.MoneyIDs, want)
	}
	if len(r.Commissions) != 3 || r.Commissions[2].CommissionFen != 2 || r.Expenses[1].ApprovalID != "ap1" {
		t.Fatalf("lines %+v %+v", r.Commissions, r.Expenses)
	}
}

func TestMonthMoneyAtTheForfeit(t *testing.T) {
	r := moneyMonth(t, 3, false) // K = 3: the month's bonus, commissions included, is forfeited
	if r.CommissionFen != 0 || r.CommissionForfeitedFen != 24002 || r.BonusFen != -15000 || !r.BonusForfeited {
		t.Fatalf("commission %d forfeited %d bonus %d", r.CommissionFen, r.CommissionForfeitedFen, r.BonusFen)
	}
	// 10000 − 15000 + 0 − 7200; expenses are reimbursed all the same.
	if r.TotalFen != -12200 || r.ExpensesFen != 5100 {
		t.Fatalf("total %d expenses %d, want -12200 and 5100", r.TotalFen, r.ExpensesFen)
	}
	if !slices.Contains(r.MoneyIDs, schema.CommissionKey("parts")) || !r.Commissions[0].Forfeited {
		t.Fatalf("a forfeited commission is settled for good: %v %+v", r.MoneyIDs, r.Commissions)
	}
}

func TestMonthMoneyProbationForfeitsCommissionsToo(t *testing.T) {
	r := moneyMonth(t, 3, true) // no complaint bonus on probation; the forfeit still takes commissions
	if r.BonusFen != 0 || r.CommissionFen != 0 || r.CommissionForfeitedFen != 24002 || r.TotalFen != 10000-7200 {
		t.Fatalf("bonus %d commission %d forfeited %d total %d", r.BonusFen, r.CommissionFen, r.CommissionForfeitedFen, r.TotalFen)
	}
	r = moneyMonth(t, 0, true)
	if r.CommissionFen != 24002 || r.TotalFen != 10000+24002-7200 {
		t.Fatalf("probation, no complaints: commission %d total %d", r.CommissionFen, r.TotalFen)
	}
}

// A non-dedicated colleague's on-site visit with a taxi there: labour 8000 for the visit,
// the taxi 4500 reimbursed apart; no commission, no bonus.
func TestMonthMoneyNonDedicatedVisitWithTaxi(t *testing.T) {
	s := testSettings(t)
	res := ComputeMonth(MonthInput{Month: "2026-11", Settings: s,
		Technicians: []Technician{{ID: "b", Name: "钱进"}},
		Sheets:      sheets("b", 1),
		Expenses:    []ExpenseFact{{ID: "taxi", TechnicianID: "b", Kind: "taxi", AmountFen: 4500, ApprovalID: "ap", ReimbursedAt: midNovember}},
	})
	r := res.Rows[0]
	if r.LabourFen != 8000 || r.AllowanceFen != 0 || r.BonusFen != 0 || r.TotalFen != 8000 || r.ExpensesFen != 4500 {
		t.Fatalf("labour %d allowance %d bonus %d total %d expenses %d", r.LabourFen, r.AllowanceFen, r.BonusFen, r.TotalFen, r.ExpensesFen)
	}
	if res.Totals.TotalFen != 8000 || res.Totals.ExpensesFen != 4500 {
		t.Fatalf("totals %+v", res.Totals)
	}
}

// The whole month's pay: base salary + allowance + bonus + commissions − liabilities −
// unreported charges with their penalty; repair fees and expenses are listed apart. On
// probation the base salary is paid and the complaint bonus is not.
func TestMonthPayWithBaseSalaryRepairsAndUnreported(t *testing.T) {
	s := testSettings(t)
	s.CommissionPartsPct = 30
	for _, probation := range []bool{false, true} {
		res := ComputeMonth(MonthInput{Month: "2026-11", Settings: s,
			Technicians: []Technician{{ID: "a", Name: "张伟", Dedicated: true, Probation: probation, BaseSalaryFen: 600000}},
			Sheets:      sheets("a", 2),
			Complaints:  []ComplaintFact{{ID: "c1", TechnicianID: "a", Status: ComplaintUpheld, ReceivedAt: midNovember}},
			Sales:       []SaleFact{{ID: "p", Kind: "parts", TechnicianID: "a", TotalFen: 100000, CostFen: 60000, CollectedAt: midNovember}},
			Repairs:     []schema.RepairFact{{ID: "r1", TechnicianID: "a", AssetID: "as1", FeeFen: 32000, CollectedAt: midNovember}},
			Unreported:  []schema.UnreportedFact{{ID: "u1", TechnicianID: "a", ComplaintID: "c1", AmountFen: 30000, PenaltyFen: 10000, At: midNovember}},
		})
		r := res.Rows[0]
		bonus := int64(-5000)
		if probation {
			bonus = 0
		}
		// 600000 + 2 × 5000 + bonus + 12000 − (30000 + 10000)
		want := 600000 + 10000 + bonus + 12000 - 40000
		if r.BaseSalaryFen != 600000 || r.UnreportedFen != 40000 || r.RepairFeesFen != 32000 || r.TotalFen != want {
			t.Fatalf("probation %v: base %d unreported %d repairs %d total %d, want total %d", probation, r.BaseSalaryFen, r.UnreportedFen, r.RepairFeesFen, r.TotalFen, want)
		}
		if res.Totals.BaseSalaryFen != 600000 || res.Totals.UnreportedFen != 40000 || res.Totals.RepairFeesFen != 32000 || res.Totals.TotalFen != want {
			t.Fatalf("totals %+v", res.Totals)
		}
		if want := []string{"commission:p", "repair:r1", "unreported:u1"}; !slices.Equal(r.MoneyIDs, want) {
			t.Fatalf("money ids %v, want %v", r.MoneyIDs, want)
		}
	}
}
