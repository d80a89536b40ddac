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
	{"纸质反馈单", "Paper sheets", true, func(r Row, _ string) string { return strconv.Itoa(r.PaperServices) }},
	{"例外计入", "Counted by exception", true, func(r Row, _ string) string { return strconv.Itoa(r.ExceptionServices) }},
	{"无反馈单", "No sheet", true, func(r Row, _ string) string { return strconv.Itoa(r.NoSheetServices) }},
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
	// Then the services the table's special counts stand for, one a line: a sheet entered
	// from paper, a sheet counted through a manager's exception, a service with no sheet.
	for _, d := range MonthSpecialServices(r, lang) {
		clear(record)
		record[0], record[1], record[2], record[3] = d.Kind, monthCSVText(d.Technician), monthCSVText(d.Ticket), monthCSVText(d.Detail)
		if err := cw.Write(record); err != nil {
			return err
		}
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

// SpecialService is one service the month report names apart: counted from a paper sheet,
// counted through a manager's exception, or listed with no sheet.
type SpecialService struct {
	Kind, Technician, Ticket, Detail string
}

// MonthSpecialServices lists, technician by technician, the services counted from paper,
// counted through an exception, and recorded with no sheet, in lang.
func MonthSpecialServices(r MonthResult, lang string) []SpecialService {
	var out []SpecialService
	for _, row := range r.Rows {
		for _, s := range row.Counted {
			if s.Origin == schema.OriginPaper {
				out = append(out, SpecialService{monthText("纸质反馈单", "Paper sheet", lang), row.Technician.Name, s.TicketNumber,
					monthText("由 "+s.EnteredBy+" 录入", "entered by "+s.EnteredBy, lang)})
			}
			if s.OnBehalf {
				out = append(out, SpecialService{monthText("代技术员记录", "Recorded for the technician", lang), row.Technician.Name, s.TicketNumber,
					monthText("完成步骤由办公室代为记录", "the office recorded the completion on the technician's behalf", lang)})
			}
			if e := s.Exception; e != nil {
				out = append(out, SpecialService{monthText("例外计入", "Counted by exception", lang), row.Technician.Name, s.TicketNumber,
					monthText("缺 "+MissingIn(e.Missing, "zh")+"；经理 "+e.By+" 接受："+e.Note,
						"missing "+MissingIn(e.Missing, "en")+"; accepted by the manager "+e.By+": "+e.Note, lang)})
			}
		}
		for _, n := range row.NoSheet {
			out = append(out, SpecialService{monthText("无反馈单（不计入）", "No sheet (not counted)", lang), row.Technician.Name, n.TicketNumber,
				monthText("经理 "+n.By+" 登记："+n.Reason, "recorded by the manager "+n.By+": "+n.Reason, lang)})
		}
	}
	return out
}

// MissingIn names the missing sheet items in words, in lang ("zh", "en", or both).
func MissingIn(items []string, lang string) string {
	names := map[string][2]string{
		"fault_symptoms": {"故障现象", "fault symptoms"}, "inspection_record": {"检查记录", "inspection record"},
		"handling_result": {"处理结果", "handling result"}, "rating": {"满意度", "rating"}, "signer_name": {"签字人姓名", "signer's name"},
		"signature_blob": {"客户签字", "customer's signature"}, "stamp_blob": {"客户盖章", "customer's stamp"},
		"technician_signature_blob": {"技术员签字", "technician's signature"}, "arrived_at": {"到达时间", "arrival time"}, "departed_at": {"离开时间", "departure time"},
	}
	out := make([]string, len(items))
	for i, m := range items {
		n, ok := names[m]
		if !ok {
			n = [2]string{m, m}
		}
		out[i] = monthText(n[0], n[1], lang)
	}
	sep := ", "
	if lang == "zh" {
		sep = "、"
	}
	return strings.Join(out, sep)
}

// monthTotalsRecord is the CSV's last line. Only the columns that add up are
// filled; averages and flags are left blank rather than summed.
func monthTotalsRecord(t Totals, lang string) []string {
	sum := Row{
		Technician:        TechnicianRef{Name: monthText("合计", "Total", lang)},
		CountedServices:   t.CountedServices,
		ExcludedServices:  t.ExcludedServices,
		PaperServices:     t.PaperServices,
		ExceptionServices: t.ExceptionServices,
		NoSheetServices:   t.NoSheetServices,
		Complaints:        t.Complaints,
		OnTimeResponses:   t.OnTimeResponses,
		OnTimeArrivals:    t.OnTimeArrivals,
		AllowanceFen:      t.AllowanceFen,
		BonusFen:          t.BonusFen,
		LabourFen:         t.LabourFen,
		TotalFen:          t.TotalFen,
		BaseSalaryFen:     t.BaseSalaryFen,
		CommissionFen:     t.CommissionFen,
		LiabilityFen:      t.LiabilityFen,
		UnreportedFen:     t.UnreportedFen,
		ExpensesFen:       t.ExpensesFen,
		RepairFeesFen:     t.RepairFeesFen,
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
