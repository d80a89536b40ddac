package reports

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"

	"fieldsync/schema"
)

// monthBOM starts the CSV file because Excel reads a CSV without it in the
// local ANSI code page and garbles Chinese names.
const monthBOM = "\uFEFF"

// monthCSVColumn is one column of the month's CSV export: its header in each
// language and how a row fills it.
type monthCSVColumn struct {
	zh, en  string
	onTotal bool // filled on the totals line; averages and flags are not summed
	cell    func(r Row, lang string) string
}

// monthCSVColumns is the statistics table's layout, shared by the header,
// the technician rows and the totals row.
var monthCSVColumns = []monthCSVColumn{
	{"技术员编号", "Technician ID", false, func(r Row, _ string) string { return monthCSVText(r.Technician.ID) }},
	{"技术员", "Technician", true, func(r Row, _ string) string { return monthCSVText(r.Technician.Name) }},
	{"专职", "Dedicated", false, func(r Row, lang string) string { return monthYesNo(r.Dedicated, lang) }},
	{"试用期", "Probation", false, func(r Row, lang string) string { return monthYesNo(r.Probation, lang) }},
	{"计入服务数", "Counted services", true, func(r Row, _ string) string { return strconv.Itoa(r.CountedServices) }},
	{"未计入服务数", "Excluded services", true, func(r Row, _ string) string { return strconv.Itoa(r.ExcludedServices) }},
	{"现场维修", "On-site", false, func(r Row, _ string) string { return strconv.Itoa(r.Modes.Onsite) }},
	{"电话服务", "Phone", false, func(r Row, _ string) string { return strconv.Itoa(r.Modes.Phone) }},
	{"网络在线服务", "Online", false, func(r Row, _ string) string { return strconv.Itoa(r.Modes.Online) }},
	{"平均满意度", "Average rating", false, func(r Row, _ string) string { return strconv.FormatFloat(r.AverageRating, 'f', 2, 64) }},
	{"回访满意", "Follow-ups satisfied", false, func(r Row, _ string) string { return strconv.Itoa(r.Followups.Satisfied) }},
	{"回访不满意", "Follow-ups unsatisfied", false, func(r Row, _ string) string { return strconv.Itoa(r.Followups.Unsatisfied) }},
	{"回访未接通", "Follow-ups unreachable", false, func(r Row, _ string) string { return strconv.Itoa(r.Followups.Unreachable) }},
	{"准时响应数", "On-time responses", true, func(r Row, _ string) string { return strconv.Itoa(r.OnTimeResponses) }},
	{"准时到场数", "On-time arrivals", true, func(r Row, _ string) string { return strconv.Itoa(r.OnTimeArrivals) }},
	{"有效投诉", "Upheld complaints", true, func(r Row, _ string) string { return strconv.Itoa(r.Complaints) }},
	{"参与奖惩", "Bonus eligible", false, func(r Row, lang string) string { return monthYesNo(r.BonusEligible, lang) }},
	{"奖金取消", "Bonus forfeited", false, func(r Row, lang string) string { return monthYesNo(r.BonusForfeited, lang) }},
	{"服务补助（元）", "Allowance (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.AllowanceFen) }},
	{"奖惩（元）", "Bonus (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.BonusFen) }},
	{"劳务费（元）", "Labour (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.LabourFen) }},
	// The money of docs/money.md: the parts of pay, then what is shown apart from it.
	{"底薪（元）", "Base salary (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.BaseSalaryFen) }},
	{"提成（元）", "Commissions (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.CommissionFen) }},
	{"取消的提成（元）", "Commissions forfeited (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.CommissionForfeitedFen) }},
	{"欠款承担（元）", "Liabilities (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.LiabilityFen) }},
	{"私收费扣款及罚款（元）", "Unreported charges and penalties (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.UnreportedFen) }},
	{"合计（元）", "Total (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.TotalFen) }},
	{"报销费用（元）", "Expenses reimbursed (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.ExpensesFen) }},
	{"收回维修费（元）", "Repair fees collected (yuan)", true, func(r Row, _ string) string { return schema.Yuan(r.RepairFeesFen) }},
	{"款项记录", "Money records", false, func(r Row, _ string) string { return monthCSVText(strings.Join(r.MoneyIDs, " ")) }},
	{"备注", "Notes", false, func(r Row, _ string) string { return monthCSVText(strings.Join(r.Notes, "; ")) }},
}

// WriteMonthCSV writes the month's statistics table as CSV for spreadsheets:
// a UTF-8 BOM, a header row, one row per technician a totals row and the warnings, money
// in yuan with two decimals. lang "zh" or "en" picks one language for the
// header and yes/no cells; anything else writes both ("技术员 / Technician"),
// as the printed report does. encoding/csv quotes names holding commas or
// quotes.
func WriteMonthCSV(w io.Writer, r MonthResult, lang string) error {
	if _, err := io.WriteString(w, monthBOM); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	record := make([]string, len(monthCSVColumns))

	for i, c := range monthCSVColumns {
		record[i] = monthText(c.zh, c.en, lang)
	}
	if err := cw.Write(record); err != nil {
		return err
	}
	for _, row := range r.Rows {
		for i, c := range monthCSVColumns {
			record[i] = c.cell(row, lang)
		}
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	if err := cw.Write(monthTotalsRecord(r.Totals, lang)); err != nil {
		return err
	}
	// Warnings follow the table, one a line (as wide as the table, so the file stays
	// rectangular), as the printed report lists them.
	for _, w := range r.Warnings {
		clear(record)
		record[0], record[1] = monthText("提示", "Warning", lang), monthCSVText(WarningIn(w, lang))
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// monthTotalsRecord is the CSV's last line. Only the columns that add up are
// filled; averages and flags are left blank rather than summed.
func monthTotalsRecord(t Totals, lang string) []string {
	sum := Row{
		Technician:       TechnicianRef{Name: monthText("合计", "Total", lang)},
		CountedServices:  t.CountedServices,
		ExcludedServices: t.ExcludedServices,
		Complaints:       t.Complaints,
		OnTimeResponses:  t.OnTimeResponses,
		OnTimeArrivals:   t.OnTimeArrivals,
		AllowanceFen:     t.AllowanceFen,
		BonusFen:         t.BonusFen,
		LabourFen:        t.LabourFen,
		TotalFen:         t.TotalFen,
		BaseSalaryFen:    t.BaseSalaryFen,
		CommissionFen:    t.CommissionFen,
		LiabilityFen:     t.LiabilityFen,
		UnreportedFen:    t.UnreportedFen,
		ExpensesFen:      t.ExpensesFen,
		RepairFeesFen:    t.RepairFeesFen,
		// Forfeits are summed too.
		CommissionForfeitedFen: t.CommissionForfeitedFen,
	}
	record := make([]string, len(monthCSVColumns))
	for i, c := range monthCSVColumns {
		if c.onTotal {
			record[i] = c.cell(sum, lang)
		}
	}
	return record
}

// monthCSVText guards a free-text cell against spreadsheet formula injection:
// a spreadsheet may run a cell starting with = + - @, a tab or a carriage
// return as a formula, so such text gets a leading apostrophe, which Excel
// shows as plain text.
func monthCSVText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// monthText returns the text for lang: Chinese, English, or both for a bilingual
// report.
func monthText(zh, en, lang string) string {
	switch lang {
	case "zh":
		return zh
	case "en":
		return en
	}
	return zh + " / " + en
}

// monthYesNo renders a flag in the report's language.
func monthYesNo(b bool, lang string) string {
	if b {
		return monthText("是", "yes", lang)
	}
	return monthText("否", "no", lang)
}
