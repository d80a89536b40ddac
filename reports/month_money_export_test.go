package reports

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"fieldsync/schema"
)

// moneyExportMonth is the PDF sample with money: 张伟 has base salary ¥6000.00, a parts sale
// (¥1000.00 sold, cost ¥600.00: commission ¥120.00), a liability of ¥72.00, an unreported
// charge ¥300.00 + penalty ¥100.00, a taxi ¥45.00 reimbursed and a repair fee ¥320.00.
// His total: 6000 + 100 (allowance) + 200 (reward) + 120 − 72 − 400 = ¥5948.00.
// Totals: ¥5948.00 + ¥50.00 + ¥80.00 = ¥6078.00.
func moneyExportMonth(status string) *MonthReportData {
	in := monthPDFSample()
	in.Settings.CommissionPartsPct = 30
	in.Technicians[0].BaseSalaryFen = 600000
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, pdfZone)
	in.Sales = []SaleFact{{ID: "sale-parts-1", Kind: "parts", TechnicianID: "t1", TotalFen: 100000, CostFen: 60000, CollectedAt: at}}
	in.Liabilities = []LiabilityFact{{SaleID: "sale-old-1", TechnicianID: "t1", SharePct: 90, AmountFen: 7200, At: at}}
	in.Unreported = []schema.UnreportedFact{{ID: "unrep-1", TechnicianID: "t1", ComplaintID: "c9", AmountFen: 30000, PenaltyFen: 10000, At: at}}
	in.Expenses = []ExpenseFact{{ID: "exp-taxi-1", TechnicianID: "t1", Kind: "taxi", AmountFen: 4500, ApprovalID: "appr-1", ReimbursedAt: at}}
	in.Repairs = []schema.RepairFact{{ID: "repair-1", TechnicianID: "t1", AssetID: "as1", FeeFen: 32000, CollectedAt: at}}
	return monthPDFData(in, status)
}

// The month's money in the three exports: the PDF (read with pdftotext), the CSV and the
// XLSX (read back with excelize) show the same figures and totals, with the record ids.
func TestMonthMoneyExportsAgree(t *testing.T) {
	m := moneyExportMonth("approved")
	if m.Result.Totals.TotalFen != 607800 || m.Result.Rows[1].TotalFen != 594800 {
		t.Fatalf("totals %+v; 张伟 %d", m.Result.Totals, m.Result.Rows[1].TotalFen)
	}
	text := poppler(t, renderMonth(t, m, LangBoth), "pdftotext", "-raw")
	pdfMustContain(t, text, "工资与款项 / Pay and money", "¥6000.00", "¥120.00", "-¥72.00", "-¥400.00", "¥5948.00", "¥6078.00",
		"¥45.00", "¥320.00", "sale-parts-1", "sale-old-1", "unrep-1", "exp-taxi-1", "repair-1", "¥300.00 + 罚款 / penalty ¥100.00")

	var csvBuf bytes.Buffer
	if err := WriteMonthCSV(&csvBuf, m.Result, "en"); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(csvBuf.String(), monthBOM))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int {
		i := slices.Index(recs[0], name)
		if i < 0 {
			t.Fatalf("no CSV column %q in %q", name, recs[0])
		}
		return i
	}
	csvTotals := recs[len(m.Result.Rows)+1]
	for name, want := range map[string]string{"Base salary (yuan)": "6000.00", "Commissions (yuan)": "120.00", "Liabilities (yuan)": "72.00",
		"Unreported charges and penalties (yuan)": "400.00", "Total (yuan)": "6078.00", "Expenses reimbursed (yuan)": "45.00",
		"Repair fees collected (yuan)": "320.00", "Commissions forfeited (yuan)": "0.00"} {
		if got := csvTotals[col(name)]; got != want {
			t.Errorf("CSV totals %s = %q, want %q", name, got, want)
		}
	}
	if ids := recs[2][col("Money records")]; ids != "commission:sale-parts-1 liability:sale-old-1 expense:exp-taxi-1 repair:repair-1 unreported:unrep-1" {
		t.Errorf("张伟's money records %q", ids)
	}

	var xb bytes.Buffer
	recv := []schema.Receivable{{SaleID: "sale-old-2", TechnicianID: "t1", CustomerID: "cu", OwedFen: 8000, AgeDays: 366, Bucket: "365+"}}
	if err := WriteMonthXLSX(&xb, m, recv, "en"); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&xb)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"Statistics", "Pay lines", "Sales", "Receivables", "Expenses"}) {
		t.Fatalf("sheets %q", got)
	}
	stats, err := f.GetRows("Statistics")
	if err != nil {
		t.Fatal(err)
	}
	// The statistics sheet is the CSV, cell for cell.
	for i, rec := range recs[:len(m.Result.Rows)+2] {
		row := append(stats[i], make([]string, len(rec))...)[:len(rec)]
		if !slices.Equal(row, rec) {
			t.Errorf("Statistics row %d\n got %q\nwant %q", i, row, rec)
		}
	}
	// Money cells are numbers.
	cell, _ := excelize.CoordinatesToCellName(col("Total (yuan)")+1, len(m.Result.Rows)+2)
	if typ, _ := f.GetCellType("Statistics", cell); typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
		t.Errorf("total cell %s has type %v, want a number", cell, typ)
	}
	pay, _ := f.GetRows("Pay lines")
	var payTotal []string
	for _, r := range pay {
		if r[0] == "张伟 Zhang Wei" && r[1] == "Total" {
			payTotal = r
		}
	}
	if len(payTotal) < 4 || payTotal[3] != "5948.00" {
		t.Errorf("pay lines total %q", payTotal)
	}
	sales, _ := f.GetRows("Sales")
	if len(sales) != 2 || sales[1][1] != "sale-parts-1" || sales[1][7] != "120.00" {
		t.Errorf("sales %q", sales)
	}
	rv, _ := f.GetRows("Receivables")
	if len(rv) != 3 || rv[1][0] != "sale-old-2" || rv[1][1] != "张伟 Zhang Wei" || rv[1][3] != "80.00" || rv[1][5] != "365+" || rv[2][3] != "80.00" {
		t.Errorf("receivables %q", rv)
	}
	ex, _ := f.GetRows("Expenses")
	if len(ex) != 5 || ex[1][2] != "exp-taxi-1" || ex[1][4] != "45.00" || ex[2][2] != "repair-1" || ex[3][4] != "45.00" || ex[4][4] != "320.00" {
		t.Errorf("expenses %q", ex)
	}
}
