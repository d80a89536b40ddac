package reports

import (
	"strconv"
)

// The money of docs/money.md in the monthly report: a second summary table with every part
// of pay and what is shown apart from it, and in each technician's section the lines behind
// those figures with their record ids.

// moneySummary draws the pay-and-money table of every technician with the totals line.
func (l *monthLayout) moneySummary() {
	rs := l.m.Result
	l.heading(l.label("工资与款项", "Pay and money"), 20)
	cols := []column{
		{30, "技术员", "Technician", "L"},
		{20, "底薪", "Base salary", "R"},
		{19, "补助+奖惩+劳务", "Allow.+bonus+labour", "R"},
		{18, "提成", "Commissions", "R"},
		{17, "取消提成", "Forfeited", "R"},
		{17, "欠款承担", "Liabilities", "R"},
		{17, "私收费扣款", "Unreported", "R"},
		{20, "合计", "Total", "R"},
		{16, "报销", "Expenses", "R"},
		{16, "维修费", "Repair fees", "R"},
	}
	rows := make([][]string, 0, len(rs.Rows))
	for _, r := range rs.Rows {
		rows = append(rows, []string{r.Technician.Name, fmtFen(r.BaseSalaryFen), fmtFen(r.AllowanceFen + r.BonusFen + r.LabourFen),
			fmtFen(r.CommissionFen), fmtFen(r.CommissionForfeitedFen), fmtFen(-r.LiabilityFen), fmtFen(-r.UnreportedFen),
			fmtFen(r.TotalFen), fmtFen(r.ExpensesFen), fmtFen(r.RepairFeesFen)})
	}
	t := rs.Totals
	totals := []string{l.label("合计", "Total"), fmtFen(t.BaseSalaryFen), fmtFen(t.AllowanceFen + t.BonusFen + t.LabourFen),
		fmtFen(t.CommissionFen), fmtFen(t.CommissionForfeitedFen), fmtFen(-t.LiabilityFen), fmtFen(-t.UnreportedFen),
		fmtFen(t.TotalFen), fmtFen(t.ExpensesFen), fmtFen(t.RepairFeesFen)}
	l.table(cols, rows, totals)
	l.paragraph(l.label("合计 = 底薪 + 服务补助 + 奖惩 + 劳务费 + 提成 − 欠款承担 − 私收费扣款及罚款。取消的提成（投诉达到上限）不发放；报销费用与收回的维修费另列，不计入工资。金额单位：元。",
		"Total = base salary + allowance + bonus + labour + commissions − liabilities − unreported charges and penalties. Forfeited commissions (complaint threshold) are not paid; expenses reimbursed and repair fees collected are shown apart, not pay. Amounts in yuan."), 6.5, colMuted)
}

// moneyLines draws the money records behind one technician's figures.
func (l *monthLayout) moneyLines(r *Row) bool {
	type line struct{ item, id, amount, note string }
	var lines []line
	late := func(b bool, note string) string {
		if b {
			if note != "" {
				note += ", "
			}
			note += l.label("补报", "late")
		}
		return note
	}
	for _, c := range r.Commissions {
		note := strconv.FormatInt(c.Pct, 10) + "% × " + fmtFen(c.BaseFen)
		if c.Forfeited {
			note += ", " + l.label("已取消", "forfeited")
		}
		lines = append(lines, line{l.label("提成", "Commission"), c.SaleID, fmtFen(c.CommissionFen), late(c.Late, note)})
	}
	for _, x := range r.Liabilities {
		lines = append(lines, line{l.label("欠款承担", "Liability"), x.SaleID, fmtFen(-x.AmountFen), late(x.Late, strconv.FormatInt(x.SharePct, 10)+"%")})
	}
	for _, x := range r.Unreported {
		lines = append(lines, line{l.label("私收费扣款", "Unreported charge"), x.ID, fmtFen(-x.AmountFen - x.PenaltyFen),
			late(x.Late, fmtFen(x.AmountFen)+" + "+l.label("罚款", "penalty")+" "+fmtFen(x.PenaltyFen))})
	}
	for _, x := range r.Expenses {
		lines = append(lines, line{l.label("报销", "Expense"), x.ExpenseID, fmtFen(x.AmountFen), late(x.Late, x.Kind)})
	}
	for _, x := range r.Repairs {
		lines = append(lines, line{l.label("维修费", "Repair fee"), x.RepairID, fmtFen(x.FeeFen), late(x.Late, "")})
	}
	if len(lines) == 0 {
		return false
	}
	cols := []column{{34, "项目", "Item", "L"}, {76, "记录", "Record", "L"}, {26, "金额", "Amount", "R"}, {54, "说明", "Note", "L"}}
	rows := make([][]string, len(lines))
	for i, x := range lines {
		rows[i] = []string{x.item, x.id, x.amount, x.note}
	}
	l.subheading(l.label("款项", "Money"))
	l.table(cols, rows, nil)
	return true
}
