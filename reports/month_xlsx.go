package reports

import (
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/xuri/excelize/v2"

	"fieldsync/schema"
)

// WriteMonthXLSX writes the month as a workbook for the office: the statistics table (the
// CSV's columns and totals line, then the warnings), the pay lines behind every figure, the
// sales collected, the receivables as they stand at export, and the expenses and repair
// fees, each on its own sheet. Money is written as exact decimal yuan in number cells (the
// text FormatYuan makes, never through floating point), formatted 0.00. lang picks the
// headers' language as for the CSV.
func WriteMonthXLSX(w io.Writer, m *MonthReportData, receivables []schema.Receivable, lang string) error {
	if m == nil {
		return fmt.Errorf("reports: no month to export")
	}
	f := excelize.NewFile()
	defer f.Close()
	money, err := f.NewStyle(&excelize.Style{NumFmt: 2}) // 0.00
	if err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	x := &xlsxBook{f: f, money: money, bold: bold, lang: lang}
	rs := m.Result

	// Statistics: the CSV's table.
	x.sheet("统计", "Statistics")
	head := make([]string, len(monthCSVColumns))
	for i, c := range monthCSVColumns {
		head[i] = monthText(c.zh, c.en, lang)
	}
	x.header(head...)
	for _, r := range rs.Rows {
		cells := make([]any, len(monthCSVColumns))
		for i, c := range monthCSVColumns {
			cells[i] = xlsxCell(i, c.cell(r, lang))
		}
		x.row(cells...)
	}
	tot := monthTotalsRecord(rs.Totals, lang)
	cells := make([]any, len(tot))
	for i, v := range tot {
		cells[i] = xlsxCell(i, v)
	}
	x.row(cells...)
	for _, w := range rs.Warnings {
		x.row(monthText("提示", "Warning", lang), WarningIn(w, lang))
	}

	// Pay: every line behind the money figures, with its record id.
	x.sheet("工资明细", "Pay lines")
	x.header(monthText("技术员", "Technician", lang), monthText("项目", "Item", lang), monthText("记录", "Record", lang),
		monthText("金额（元）", "Amount (yuan)", lang), monthText("说明", "Note", lang), monthText("补报", "Late", lang))
	for _, r := range rs.Rows {
		name := r.Technician.Name
		x.row(name, monthText("底薪", "Base salary", lang), "", yuan(r.BaseSalaryFen), "", "")
		x.row(name, monthText("服务补助", "Allowance", lang), "", yuan(r.AllowanceFen), "", "")
		x.row(name, monthText("奖惩", "Bonus", lang), "", yuan(r.BonusFen), "", "")
		x.row(name, monthText("劳务费", "Labour", lang), "", yuan(r.LabourFen), "", "")
		for _, c := range r.Commissions {
			note := ""
			if c.Forfeited {
				note = monthText("已取消（投诉达到上限）", "forfeited (complaint threshold)", lang)
			}
			amount := c.CommissionFen
			if c.Forfeited {
				amount = 0
			}
			x.row(name, monthText("提成", "Commission", lang), c.SaleID, yuan(amount), note, monthYesNo(c.Late, lang))
		}
		for _, l := range r.Liabilities {
			x.row(name, monthText("欠款承担", "Liability", lang), l.SaleID, yuan(-l.AmountFen), strconv.FormatInt(l.SharePct, 10)+"%", monthYesNo(l.Late, lang))
		}
		for _, u := range r.Unreported {
			x.row(name, monthText("私收费扣款及罚款", "Unreported charge and penalty", lang), u.ID, yuan(-u.AmountFen-u.PenaltyFen),
				schema.Yuan(u.AmountFen)+" + "+schema.Yuan(u.PenaltyFen), monthYesNo(u.Late, lang))
		}
		x.row(name, monthText("合计", "Total", lang), "", yuan(r.TotalFen), "", "")
	}

	// Sales collected in the month.
	x.sheet("销售", "Sales")
	x.header(monthText("技术员", "Technician", lang), monthText("销售单", "Sale", lang), monthText("类别", "Kind", lang),
		monthText("收款（元）", "Collected (yuan)", lang), monthText("成本（元）", "Cost (yuan)", lang), monthText("计提基数（元）", "Base (yuan)", lang),
		monthText("比例%", "Pct", lang), monthText("提成（元）", "Commission (yuan)", lang), monthText("取消", "Forfeited", lang), monthText("补报", "Late", lang))
	for _, r := range rs.Rows {
		for _, c := range r.Commissions {
			x.row(r.Technician.Name, c.SaleID, c.Kind, yuan(c.CollectedFen), yuan(c.CostFen), yuan(c.BaseFen), c.Pct, yuan(c.CommissionFen),
				monthYesNo(c.Forfeited, lang), monthYesNo(c.Late, lang))
		}
	}

	// Receivables as they stand at export.
	names := map[string]string{}
	for _, r := range rs.Rows {
		names[r.Technician.ID] = r.Technician.Name
	}
	x.sheet("应收账款", "Receivables")
	x.header(monthText("销售单", "Sale", lang), monthText("经办人", "Handler", lang), monthText("客户", "Customer", lang),
		monthText("欠款（元）", "Owed (yuan)", lang), monthText("账龄（天）", "Age (days)", lang), monthText("账龄段", "Bucket", lang),
		monthText("承担（元）", "Charged to handler (yuan)", lang))
	var owed int64
	for _, r := range receivables {
		x.row(r.SaleID, cmpName(names[r.TechnicianID], r.TechnicianID), r.CustomerID, yuan(r.OwedFen), r.AgeDays, r.Bucket, yuan(r.LiabilityFen))
		owed += r.OwedFen
	}
	x.row(monthText("合计", "Total", lang), "", "", yuan(owed))

	// Expenses reimbursed and repair fees collected: shown apart from pay.
	x.sheet("费用", "Expenses")
	x.header(monthText("技术员", "Technician", lang), monthText("项目", "Item", lang), monthText("记录", "Record", lang),
		monthText("类别", "Kind", lang), monthText("金额（元）", "Amount (yuan)", lang), monthText("审批", "Approval", lang), monthText("补报", "Late", lang))
	for _, r := range rs.Rows {
		for _, e := range r.Expenses {
			x.row(r.Technician.Name, monthText("报销", "Expense", lang), e.ExpenseID, e.Kind, yuan(e.AmountFen), e.ApprovalID, monthYesNo(e.Late, lang))
		}
		for _, p := range r.Repairs {
			kind := monthText("保外", "out of warranty", lang)
			if p.InWarranty {
				kind = monthText("保内", "in warranty", lang)
			}
			x.row(r.Technician.Name, monthText("维修费", "Repair fee", lang), p.RepairID, kind, yuan(p.FeeFen), "", monthYesNo(p.Late, lang))
		}
	}
	x.row(monthText("合计", "Total", lang), monthText("报销", "Expenses", lang), "", "", yuan(rs.Totals.ExpensesFen))
	x.row(monthText("合计", "Total", lang), monthText("维修费", "Repair fees", lang), "", "", yuan(rs.Totals.RepairFeesFen))

	if x.err != nil {
		return x.err
	}
	f.DeleteSheet("Sheet1")
	_, err = f.WriteTo(w)
	return err
}

// yuan is an amount for a number cell: exact decimal text.
type yuan int64

var decimalCell = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// xlsxCell turns a CSV cell into a workbook cell: the amounts and counts become number
// cells, the technician's id and name (columns 0 and 1) and all text stay text.
func xlsxCell(col int, v string) any {
	if col > 1 && decimalCell.MatchString(v) {
		return rawNumber(v)
	}
	return v
}

type rawNumber string

func cmpName(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// xlsxBook writes rows into the current sheet, keeping the first error.
type xlsxBook struct {
	f           *excelize.File
	cur         string
	n           int
	money, bold int
	lang        string
	err         error
}

// sheet starts a sheet named in the book's language; a bilingual name is "统计 Statistics"
// (a sheet name may not hold a slash).
func (x *xlsxBook) sheet(zh, en string) {
	if x.err != nil {
		return
	}
	name := monthText(zh, en, x.lang)
	if x.lang != "zh" && x.lang != "en" {
		name = zh + " " + en
	}
	_, x.err = x.f.NewSheet(name)
	x.cur, x.n = name, 0
}

func (x *xlsxBook) header(cells ...string) {
	vals := make([]any, len(cells))
	for i, c := range cells {
		vals[i] = c
	}
	x.row(vals...)
	if x.err == nil {
		first, _ := excelize.CoordinatesToCellName(1, x.n)
		last, _ := excelize.CoordinatesToCellName(len(cells), x.n)
		x.err = x.f.SetCellStyle(x.cur, first, last, x.bold)
	}
}

func (x *xlsxBook) row(cells ...any) {
	if x.err != nil {
		return
	}
	x.n++
	for i, v := range cells {
		cell, err := excelize.CoordinatesToCellName(i+1, x.n)
		if err != nil {
			x.err = err
			return
		}
		switch v := v.(type) {
		case yuan:
			err = x.f.SetCellDefault(x.cur, cell, schema.Yuan(int64(v)))
			if err == nil {
				err = x.f.SetCellStyle(x.cur, cell, cell, x.money)
			}
		case rawNumber:
			err = x.f.SetCellDefault(x.cur, cell, string(v))
			if err == nil && len(v) > 3 && v[len(v)-3] == '.' {
				err = x.f.SetCellStyle(x.cur, cell, cell, x.money)
			}
		case string:
			err = x.f.SetCellStr(x.cur, cell, v)
		default:
			err = x.f.SetCellValue(x.cur, cell, v)
		}
		if err != nil {
			x.err = err
			return
		}
	}
}
