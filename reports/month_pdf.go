package reports

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"fieldsync/schema"
)

// TrailEntry is one step of a month's approval trail: who compiled, reviewed, returned or
// approved it, when, and their comment.
type TrailEntry struct {
	Step    string    `json:"step"` // compile, review, return, approve
	By      string    `json:"by"`
	ByName  string    `json:"by_name"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment"`
}

// MonthReportData is a compiled month as the monthly report prints it.
type MonthReportData struct {
	Result      MonthResult
	Status      string // draft, reviewed or approved
	Trail       []TrailEntry
	CompanyName string
	CompiledAt  time.Time
	// Location is the time zone times are printed in; nil means UTC.
	Location *time.Location
}

// RenderMonthReport writes the monthly report (P8) as an A4 PDF: the summary table of every
// technician with totals, a section per technician (counted services, excluded sheets with
// their reasons, complaints), then the approval trail and lines to sign. Until the month is
// approved every page carries the DRAFT / 草稿 watermark, whatever o.Draft says. Nothing
// is written if rendering fails.
func RenderMonthReport(w io.Writer, m *MonthReportData, o Options) error {
	if m == nil {
		return fmt.Errorf("reports: no month to render")
	}
	o.Draft = o.Draft || m.Status != "approved"
	d, err := newDoc(o)
	if err != nil {
		return err
	}
	l := &monthLayout{doc: d, m: m}
	d.bottom = monthFooterTop - 1
	d.header = l.header
	d.newPage()
	l.summary()
	l.moneySummary()
	for i := range m.Result.Rows {
		l.technician(&m.Result.Rows[i])
	}
	l.trail()
	d.footer(monthFooterTop, l.footerText())
	return d.output(w)
}

const monthFooterTop = pageH - marginY - 6

type monthLayout struct {
	*doc
	m *MonthReportData
}

func (l *monthLayout) loc() *time.Location {
	if l.m.Location == nil {
		return time.UTC
	}
	return l.m.Location
}

// header draws the title band of every page and returns the y below it.
func (l *monthLayout) header() float64 {
	y := marginY
	l.setColor(colText)
	l.setFont(8.5, true)
	for i, line := range l.wrap(l.m.CompanyName, 53) {
		if i == 2 {
			break
		}
		l.cell(marginX, y+float64(i)*4.2, 55, 4.2, line, "L")
	}
	titleX, titleW := marginX+55, contentW-110
	lines := l.labelLines("月度售后服务统计表", "Monthly After-sales Statistics")
	l.setFont(13, true)
	l.cell(titleX, y, titleW, 6.5, lines[0]+"  "+l.m.Result.Month, "C")
	if len(lines) > 1 {
		l.setFont(9, true)
		l.cell(titleX, y+6.5, titleW, 5, lines[1]+"  "+l.m.Result.Month, "C")
	}
	l.setFont(7.5, false)
	l.setColor(colMuted)
	l.cell(pageW-marginX-55, y, 55, 4, l.label("状态", "Status")+": "+l.statusLabel(l.m.Status), "R")
	if !l.m.CompiledAt.IsZero() {
		l.cell(pageW-marginX-55, y+4, 55, 4, l.label("编制于", "Compiled")+" "+fmtTime(l.m.CompiledAt, l.loc()), "R")
	}
	l.setColor(colText)
	l.pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
	l.pdf.SetLineWidth(0.5)
	l.pdf.Line(marginX, y+13.5, pageW-marginX, y+13.5)
	return y + 16
}

func (l *monthLayout) statusLabel(s string) string {
	switch s {
	case "draft":
		return l.label("草稿", "Draft")
	case "reviewed":
		return l.label("已审核", "Reviewed")
	case "approved":
		return l.label("已批准", "Approved")
	}
	return s
}

func (l *monthLayout) footerText() string {
	return fmt.Sprintf("fieldsync · %s %s · %s", l.label("月度统计", "Monthly statistics"), l.m.Result.Month, l.statusLabel(l.m.Status))
}

// column is one column of a table: width, header in two languages, alignment.
type column struct {
	w      float64
	zh, en string
	align  string
}

// headRow draws a shaded table header, Chinese above English when both are printed. It
// returns the y below it.
func (l *monthLayout) headRow(y float64, cols []column) float64 {
	h := 5.0
	if l.lang == LangBoth {
		h = 7.5
	}
	size, bold := l.size, l.bold
	defer l.setFont(size, bold)
	x := marginX
	for _, c := range cols {
		l.rect(x, y, c.w, h, true)
		lines := l.labelLines(c.zh, c.en)
		l.setColor(colText)
		l.setFont(7, true)
		if len(lines) == 1 {
			l.cell(x, y, c.w, h, lines[0], "C")
		} else {
			l.cell(x, y+0.4, c.w, 3.6, lines[0], "C")
			l.setFont(5.8, false)
			l.setColor(colMuted)
			l.cell(x, y+3.7, c.w, 3.2, lines[1], "C")
			l.setColor(colText)
		}
		x += c.w
	}
	return y + h
}

// bodyRow draws one row of cells; bold for totals.
func (l *monthLayout) bodyRow(y, h float64, cols []column, cells []string, bold bool) float64 {
	size, b := l.size, l.bold
	defer l.setFont(size, b)
	l.setFont(7.5, bold)
	x := marginX
	for i, c := range cols {
		l.rect(x, y, c.w, h, bold)
		if i < len(cells) {
			l.cell(x, y, c.w, h, cells[i], c.align)
		}
		x += c.w
	}
	return y + h
}

// table draws a header and rows, repeating the header on each new page.
func (l *monthLayout) table(cols []column, rows [][]string, totals []string) {
	l.wrapTable(cols, rows, totals, -1)
}

// wrapTable is table with the text of column wrapCol (if >= 0) wrapped onto as many lines
// as it needs, so a long reason or complaint is printed whole rather than cut.
func (l *monthLayout) wrapTable(cols []column, rows [][]string, totals []string, wrapCol int) {
	const rowH = 5.2
	head := func() { l.y = l.headRow(l.y, cols) }
	l.ensure(rowH * 3)
	head()
	for _, r := range rows {
		if wrapCol >= 0 && wrapCol < len(r) && wrapCol < len(cols) {
			size := l.size
			l.setFont(7.5, false)
			lines := l.wrap(r[wrapCol], cols[wrapCol].w-2.4)
			l.setFont(size, l.bold)
			if len(lines) > 1 {
				h := float64(len(lines))*3.4 + 1.8
				if l.ensure(h) {
					head()
				}
				cells := append([]string{}, r...)
				cells[wrapCol] = ""
				l.bodyRow(l.y, h, cols, cells, false)
				x := marginX
				for _, c := range cols[:wrapCol] {
					x += c.w
				}
				l.setFont(7.5, false)
				for i, line := range lines {
					l.text(x+1.2, l.y+0.9+float64(i)*3.4+2.6, line)
				}
				l.setFont(size, l.bold)
				l.y += h
				continue
			}
		}
		if l.ensure(rowH) {
			head()
		}
		l.y = l.bodyRow(l.y, rowH, cols, r, false)
	}
	if totals != nil {
		if l.ensure(rowH) {
			head()
		}
		l.y = l.bodyRow(l.y, rowH, cols, totals, true)
	}
	l.y += 2
}

// heading draws a section bar, keeping at least need millimetres below it on the page.
func (l *monthLayout) heading(title string, need float64) {
	l.ensure(5.5 + need)
	l.y = l.sectionBar(l.y, title) + 1.5
}

// paragraph draws wrapped text lines.
func (l *monthLayout) paragraph(text string, size float64, c [3]int) {
	s, b := l.size, l.bold
	l.setFont(size, false)
	l.setColor(c)
	for _, line := range l.wrap(text, contentW) {
		l.ensure(l.lineH())
		l.y = l.textLines(marginX, l.y, []string{line})
	}
	l.setColor(colText)
	l.setFont(s, b)
	l.y += 0.8
}

func (l *monthLayout) summary() {
	rs := l.m.Result
	l.heading(l.label("汇总", "Summary")+fmt.Sprintf(" · %d %s", rs.Totals.Technicians, l.label("名技术员", "technicians")), 20)
	cols := []column{
		{35, "技术员", "Technician", "L"},
		{11, "计入", "Counted", "R"},
		{12, "未计入", "Excluded", "R"},
		{17, "现场/电话/在线", "Site/phone/online", "C"},
		{11, "满意度", "Rating", "R"},
		{13, "回访", "Follow-ups", "C"},
		{17, "准时响应/到场", "On time resp/arr", "C"},
		{11, "有效投诉", "Complaints", "R"},
		{16, "服务补助", "Allowance", "R"},
		{15, "奖惩", "Bonus", "R"},
		{15, "劳务费", "Labour", "R"},
		{15, "合计", "Total", "R"},
	}
	rows := make([][]string, 0, len(rs.Rows))
	for _, r := range rs.Rows {
		name := r.Technician.Name
		var tags []string
		if r.Probation {
			tags = append(tags, l.label("试用", "prob."))
		}
		if !r.Dedicated {
			tags = append(tags, l.label("非专职", "non-ded."))
		}
		if len(tags) > 0 {
			name += " (" + strings.Join(tags, ", ") + ")"
		}
		complaints := strconv.Itoa(r.Complaints)
		if r.BonusForfeited {
			complaints += " ✕"
		}
		rows = append(rows, []string{name, strconv.Itoa(r.CountedServices), strconv.Itoa(r.ExcludedServices),
			fmt.Sprintf("%d/%d/%d", r.Modes.Onsite, r.Modes.Phone, r.Modes.Online), monthRating(r),
			fmt.Sprintf("%d/%d/%d", r.Followups.Satisfied, r.Followups.Unsatisfied, r.Followups.Unreachable),
			fmt.Sprintf("%d/%d", r.OnTimeResponses, r.OnTimeArrivals), complaints, fmtFen(r.AllowanceFen), l.bonusCell(r), fmtFen(r.LabourFen), fmtFen(r.TotalFen)})
	}
	t := rs.Totals
	totals := []string{l.label("合计", "Total"), strconv.Itoa(t.CountedServices), strconv.Itoa(t.ExcludedServices), "", "", "",
		fmt.Sprintf("%d/%d", t.OnTimeResponses, t.OnTimeArrivals), strconv.Itoa(t.Complaints), fmtFen(t.AllowanceFen), fmtFen(t.BonusFen), fmtFen(t.LabourFen), fmtFen(t.TotalFen)}
	l.table(cols, rows, totals)
	l.paragraph(l.label("准时响应/到场：计入的服务中按时限接单的次数 / 按时限到场的现场服务次数（P5）。回访：满意/不满意/未接通。✕ = 投诉达到上限，奖金取消（罚款照扣）；— = 不参与投诉奖惩（试用期或非专职）。金额单位：元。",
		"On time resp/arr: counted services accepted by the response deadline / on-site services arrived by the arrival deadline (P5). Follow-ups: satisfied/unsatisfied/unreachable. ✕ = bonus forfeited at the complaint threshold (penalties still apply); — = no complaint bonus (probation or not dedicated). Amounts in yuan."), 6.5, colMuted)
	for _, w := range rs.Warnings {
		l.paragraph(l.label("提示", "Warning")+": "+WarningIn(w, string(l.lang)), 7, colAlert)
	}
}

func (l *monthLayout) bonusCell(r Row) string {
	if !r.BonusEligible {
		return "—"
	}
	return fmtFen(r.BonusFen)
}

func monthRating(r Row) string {
	if r.RatedServices == 0 {
		return "—"
	}
	return strconv.FormatFloat(r.AverageRating, 'f', 2, 64)
}

// technician draws one technician's section: the figures, the notes, then the services
// behind them.
func (l *monthLayout) technician(r *Row) {
	title := fmt.Sprintf("%s · %s %d · %s %d · %s %d · %s %s", r.Technician.Name,
		l.label("计入", "counted"), r.CountedServices, l.label("未计入", "excluded"), r.ExcludedServices,
		l.label("有效投诉", "complaints"), r.Complaints, l.label("合计", "total"), fmtFen(r.TotalFen))
	l.heading(title, 12)
	for _, n := range l.notes(r) {
		l.paragraph(n, 7.5, colMuted)
	}
	if len(r.Counted) > 0 {
		cols := []column{
			{8, "序", "#", "R"},
			{30, "单号", "Ticket", "L"},
			{62, "客户", "Customer", "L"},
			{28, "方式", "Mode", "L"},
			{30, "完成时间", "Completed", "L"},
			{14, "满意度", "Rating", "R"},
			{18, "备注", "Note", "L"},
		}
		rows := make([][]string, len(r.Counted))
		for i, s := range r.Counted {
			rating := "—"
			if s.Rating > 0 {
				rating = strconv.Itoa(s.Rating)
			}
			var marks []string
			if s.Late {
				marks = append(marks, l.label("补报", "late"))
			}
			if s.Origin == schema.OriginPaper {
				marks = append(marks, l.label("纸质", "paper"))
			}
			if s.Exception != nil {
				marks = append(marks, l.label("例外", "exception"))
			}
			if s.OnBehalf {
				marks = append(marks, l.label("代录", "for tech"))
			}
			note := strings.Join(marks, " ")
			rows[i] = []string{strconv.Itoa(i + 1), s.TicketNumber, s.Customer, l.modeLabel(s.Mode),
				fmtTime(s.CompletedAt, l.loc()), rating, note}
		}
		l.subheading(l.label("计入的服务", "Counted services"))
		l.table(cols, rows, nil)
	}
	if special := MonthSpecialServices(MonthResult{Rows: []Row{*r}}, string(l.lang)); len(special) > 0 {
		cols := []column{{42, "类别", "Kind", "L"}, {30, "单号", "Ticket", "L"}, {118, "说明", "Details", "L"}}
		rows := make([][]string, len(special))
		for i, x := range special {
			rows[i] = []string{x.Kind, x.Ticket, x.Detail}
		}
		l.subheading(l.label("纸质反馈单、代录、例外计入与无反馈单", "Paper sheets, steps recorded for the technician, services counted by exception, services with no sheet"))
		l.wrapTable(cols, rows, nil, 2)
	}
	if len(r.Excluded) > 0 {
		cols := []column{{30, "单号", "Ticket", "L"}, {50, "反馈单", "Sheet", "L"}, {110, "未计入原因", "Reason not counted", "L"}}
		rows := make([][]string, len(r.Excluded))
		for i, x := range r.Excluded {
			rows[i] = []string{x.TicketNumber, x.SheetID, l.reason(x.Reason)}
		}
		l.subheading(l.label("未计入的服务", "Excluded services"))
		l.wrapTable(cols, rows, nil, 2)
	}
	if len(r.ComplaintList) > 0 {
		cols := []column{{30, "单号", "Ticket", "L"}, {28, "状态", "Status", "L"}, {116, "内容", "Complaint", "L"}, {16, "备注", "Note", "L"}}
		rows := make([][]string, len(r.ComplaintList))
		for i, c := range r.ComplaintList {
			note := ""
			if c.Late {
				note = l.label("补报", "late")
			}
			rows[i] = []string{c.TicketNumber, l.complaintStatus(c.Status), c.Description, note}
		}
		l.subheading(l.label("投诉", "Complaints"))
		l.wrapTable(cols, rows, nil, 2)
	}
	money := l.moneyLines(r)
	if len(r.Counted) == 0 && len(r.Excluded) == 0 && len(r.ComplaintList) == 0 && len(r.NoSheet) == 0 && !money {
		l.paragraph(l.label("本月无服务、无投诉。", "No services and no complaints this month."), 7.5, colMuted)
	}
	l.y += 1.5
}

func (l *monthLayout) subheading(s string) {
	l.ensure(4.5 + 12)
	size, bold := l.size, l.bold
	l.setFont(8, true)
	l.cell(marginX, l.y, contentW, 4.5, s, "L")
	l.setFont(size, bold)
	l.y += 4.5
}

// notes explains the pay rules that shaped a row, in the report's language.
func (l *monthLayout) notes(r *Row) []string {
	var out []string
	if r.Probation {
		out = append(out, l.label("试用期：不参与投诉奖惩（无奖励、无罚款）。", "On probation: no complaint bonus (no reward, no penalty)."))
	}
	if !r.Dedicated {
		out = append(out, l.label(fmt.Sprintf("非专职售后人员：按 %d 次现场服务计劳务费，不计服务补助，不参与投诉奖惩。", r.Modes.Onsite),
			fmt.Sprintf("Not dedicated after-sales staff: labour fee for %d on-site visit(s) instead of the allowance; no complaint bonus.", r.Modes.Onsite)))
	}
	if r.BonusForfeited {
		out = append(out, l.label(fmt.Sprintf("有效投诉 %d 次，达到上限：本月奖金取消，罚款照扣，其他奖励项目一并停发。", r.Complaints),
			fmt.Sprintf("%d upheld complaints reach the threshold: the month's bonus is forfeited, penalties still apply, other bonus items are withheld.", r.Complaints)))
	}
	for _, n := range r.Notes {
		if strings.Contains(n, "still open") {
			out = append(out, l.label("尚有未处理的投诉，认定前不计。", n))
		}
	}
	return out
}

func (l *monthLayout) modeLabel(m string) string {
	switch m {
	case ModeOnsite:
		return l.label("现场", "On-site")
	case ModePhone:
		return l.label("电话", "Phone")
	case ModeOnline:
		return l.label("在线", "Online")
	}
	return m
}

func (l *monthLayout) complaintStatus(s string) string {
	switch s {
	case ComplaintOpen:
		return l.label("待处理", "open")
	case ComplaintUpheld:
		return l.label("成立", "upheld")
	case ComplaintDismissed:
		return l.label("不成立", "dismissed")
	}
	return s
}

// reason translates an exclusion reason ("not signed; incomplete: missing stamp") part by
// part.
func (l *monthLayout) reason(r string) string {
	parts := strings.Split(r, "; ")
	for i, p := range parts {
		switch {
		case p == ReasonNotSigned:
			parts[i] = l.label("未签字封签", p)
		case p == ReasonNotReceived:
			parts[i] = l.label("专职人员未接收", "not received")
		case p == ReasonOutsideMonth:
			parts[i] = l.label("不在本月", p)
		case p == ReasonNoCompletedTime:
			parts[i] = l.label("无完成时间", p)
		case p == ReasonTicketCounted:
			parts[i] = l.label("同一工单已有反馈单计入", p)
		case p == ReasonTicketSettled:
			parts[i] = l.label("该工单已在已批准的月份计入", p)
		case strings.HasPrefix(p, ReasonIncomplete):
			rest := strings.TrimPrefix(strings.TrimPrefix(p, ReasonIncomplete), ": missing ")
			if rest == "" {
				parts[i] = l.label("反馈单不完整", p)
			} else {
				var zh, en []string
				for _, f := range strings.Split(rest, ", ") {
					w, _ := schema.ItemLabel(schema.EntSheet, f)
					zh, en = append(zh, w.Zh), append(en, w.En)
				}
				parts[i] = l.label("反馈单不完整，缺："+strings.Join(zh, "、"), ReasonIncomplete+": missing "+strings.Join(en, ", "))
			}
		}
	}
	return strings.Join(parts, "; ")
}

// trail draws the approval trail, then the three lines to sign.
func (l *monthLayout) trail() {
	l.heading(l.label("审批记录", "Approval trail"), 20)
	if len(l.m.Trail) == 0 {
		l.paragraph(l.label("尚无记录。", "No steps yet."), 7.5, colMuted)
	} else {
		cols := []column{{10, "序", "#", "R"}, {26, "步骤", "Step", "L"}, {52, "经办人", "By", "L"}, {32, "时间", "When", "L"}, {70, "意见", "Comment", "L"}}
		rows := make([][]string, len(l.m.Trail))
		for i, t := range l.m.Trail {
			rows[i] = []string{strconv.Itoa(i + 1), l.stepLabel(t.Step), t.ByName, fmtTime(t.At, l.loc()), t.Comment}
		}
		l.wrapTable(cols, rows, nil, 4)
	}
	// The signature block: who did each step last, and a line to sign by hand.
	last := map[string]TrailEntry{}
	for _, t := range l.m.Trail {
		last[t.Step] = t
	}
	if st := l.m.Status; st == "draft" {
		delete(last, "review") // a returned month's review no longer stands
	}
	const boxH = 22.0
	l.ensure(boxH + 4)
	y := l.y + 2
	w := contentW / 3
	for i, s := range []struct{ step, zh, en string }{
		{"compile", "编制（专职人员）", "Compiled by (coordinator)"},
		{"review", "审核（部门经理）", "Reviewed by (manager)"},
		{"approve", "批准（企业领导）", "Approved by (leadership)"},
	} {
		x := marginX + float64(i)*w
		l.rect(x, y, w, boxH, false)
		l.setFont(7, true)
		l.cell(x, y+0.5, w, 4, l.label(s.zh, s.en), "L")
		l.setFont(8, false)
		if t, ok := last[s.step]; ok {
			l.cell(x, y+4.5, w, 4.5, t.ByName+"  "+fmtTime(t.At, l.loc()), "L")
		}
		l.pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
		l.pdf.SetLineWidth(0.2)
		l.pdf.Line(x+3, y+boxH-7, x+w-3, y+boxH-7)
		l.setFont(6.5, false)
		l.setColor(colMuted)
		l.cell(x, y+boxH-6.5, w, 3.5, l.label("签字", "Signature"), "L")
		l.cell(x, y+boxH-3.5, w, 3.5, l.label("日期", "Date")+"：", "L")
		l.setColor(colText)
	}
	l.y = y + boxH + 2
}

func (l *monthLayout) stepLabel(s string) string {
	switch s {
	case "compile":
		return l.label("编制", "Compiled")
	case "review":
		return l.label("审核", "Reviewed")
	case "return":
		return l.label("退回", "Returned")
	case "approve":
		return l.label("批准", "Approved")
	}
	return s
}
