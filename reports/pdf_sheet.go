package reports

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"fieldsync/schema"
)

// FormData is a printable feedback form pre-filled from a ticket: the
// request, the customer and the equipment. Empty strings print as empty
// boxes. A nil *FormData prints the blank form.
type FormData struct {
	Number      string    // service log number, e.g. SR-202611-0042; the QR code carries it
	ReceivedAt  time.Time // when the request was taken in
	Source      string    // hotline, technician, leadership (codes are translated)
	ServiceMode string    // onsite, phone, online (the schema's codes are translated)
	ServiceType string
	Urgency     string
	Warranty    string // warranty status as displayed, e.g. 保内 / In warranty
	Chargeable  bool

	Customer      string
	SiteAddress   string
	ContactName   string
	ContactPhone  string
	AssetModel    string
	AssetSerial   string
	WarrantyUntil string // a date such as 2027-06-30, or ""

	// What the office registered, so that a technician going out with the paper form knows
	// what is wrong, who goes and what was agreed: the form prints the reported symptoms in
	// the fault box, with the agreed handling below them, and the assigned technician.
	ReportedSymptoms   string
	AssignedTechnician string
	AgreedHandling     string

	CompanyName    string // the service company, printed in the header
	Hotline        string // the after-sales hotline
	ComplaintLine  string // the separate complaint line
	CommitmentText string // the service commitment printed in the footer

	// Location is the time zone dates are printed in; nil means UTC.
	Location *time.Location
}

// PartLine is one row of the parts table of a feedback sheet.
type PartLine struct {
	Item          string
	Quantity      int
	SerialRemoved string
	SerialFitted  string
}

// SheetData is a filled feedback sheet: the form's data plus what the
// technician and the customer entered on the visit, and the seal.
type SheetData struct {
	FormData

	SheetID    string
	Status     string // draft, signed, received, returned, void
	Technician string
	ArrivedAt  *time.Time
	DepartedAt *time.Time

	FaultSymptoms    string
	InspectionRecord string
	HandlingResult   string
	Parts            []PartLine

	LabourFen   int64 // fees in fen (1/100 yuan), printed as ¥12.34
	PartsFen    int64
	ShippingFen int64

	Rating        int // 1–5; 0 means not rated
	RatingComment string
	SignerName    string

	// Signature, Stamp and TechnicianSignature are image bytes (PNG, JPEG
	// or WebP); nil leaves the box empty, anything else is an error.
	Signature           []byte
	Stamp               []byte
	TechnicianSignature []byte

	SignedAt         *time.Time // the device's time of signing
	ServerReceivedAt *time.Time // the server's time of receipt (the sheet's received_at)

	Complete bool
	Missing  []string // field names, e.g. signature_blob; printed with labels
	// An incomplete sheet whose exception a manager accepted: who, when and why, printed
	// with the INCOMPLETE mark. ExceptionBy "" means no exception was accepted.
	ExceptionBy   string
	ExceptionAt   *time.Time
	ExceptionNote string
	// A paper sheet: who entered it, and its scan, page by page (nil for a page that is a
	// PDF file, which is named, not drawn). PaperEnteredBy "" means a phone's sheet.
	PaperEnteredBy string
	Scans          [][]byte
	ScanSums       []string
	Fingerprint    string // hex SHA-256 of the sealed content
	VerifyURL      string // the public verify page; the sheet's QR code links to it
	// Device is the phone's own signature of the sheet, printed under the signatures; nil
	// prints nothing (a form, an unsealed sheet).
	Device *DeviceSignature
}

// DeviceSignature is what a sealed sheet says of the phone's signature: which phone, when
// by its clock and how far off that clock was, whether the signature verified, and whether
// the phone was revoked afterwards. Signed false: the app had no device key.
type DeviceSignature struct {
	Signed   bool
	Valid    bool   // the phone key's signature of the sheet's content
	ChainGap bool   // a sheet signed on the phone before this one never reached the server
	User     string // whose phone
	Device   string // the phone's name, as it logged in
	At       *time.Time
	// ClockOffset is the phone clock minus the server's as the phone last reported it before
	// it signed; nil when it never did. ClockFlag says why its times are not credible.
	ClockOffset *time.Duration
	ClockFlag   string
	RevokedAt   *time.Time // when the phone was revoked, after it signed; nil if it was not
}

// RenderForm writes the feedback form for a ticket as a one-page A4 PDF,
// or the blank form when f is nil. Nothing is written if rendering fails.
func RenderForm(w io.Writer, f *FormData, o Options) error {
	s := &SheetData{}
	if f != nil {
		s.FormData = *f
	}
	return render(w, s, f == nil, true, o)
}

// RenderSheet writes a filled feedback sheet as a PDF: the form's layout
// with the entries, signature and stamp images, the seal's short
// fingerprint and a QR code to the verify page. An incomplete sheet is
// marked INCOMPLETE / 不完整 with its missing items. Long text continues on
// further pages with the header repeated. Nothing is written if rendering
// fails, including when an image is not a PNG, JPEG or WebP.
func RenderSheet(w io.Writer, s *SheetData, o Options) error {
	if s == nil {
		return fmt.Errorf("reports: RenderSheet: nil sheet")
	}
	return render(w, s, false, false, o)
}

// sheetLayout renders the form and the sheet; form is true for the form
// (empty work boxes, no seal), blank for the form without a ticket.
type sheetLayout struct {
	*doc
	s     *SheetData
	form  bool
	blank bool
}

// Row and block heights, in millimetres. The work boxes (symptoms,
// inspection, result) have generous minimum heights and grow with their text.
const (
	rowH      = 8.0
	labelW    = 21.0
	boxPad    = 1.5
	partRowH  = 6.0
	signH     = 44.0
	footerTop = pageH - marginY - 9
)

func render(w io.Writer, s *SheetData, blank, form bool, o Options) error {
	d, err := newDoc(o)
	if err != nil {
		return err
	}
	l := &sheetLayout{doc: d, s: s, form: form, blank: blank}
	d.bottom = footerTop - 1
	d.header = l.header
	d.newPage()
	if err := l.body(); err != nil {
		return err
	}
	if err := l.scanPages(); err != nil {
		return err
	}
	d.footer(footerTop, l.footerText())
	return d.output(w)
}

// paragraphText writes text across the content width, wrapped, and moves below it.
func (l *sheetLayout) paragraphText(text string) {
	lines := l.wrap(text, contentW)
	l.ensure(float64(len(lines))*l.lineH() + 2)
	l.textLines(marginX, l.y, lines)
	l.y += float64(len(lines))*l.lineH() + 2
}

// scanPages appends a paper sheet's scan, one page each; a page that is a PDF file is
// named by its SHA-256 (the console offers it for download).
func (l *sheetLayout) scanPages() error {
	for i, sum := range l.s.ScanSums {
		l.newPage()
		l.setFont(9, true)
		title := l.label(fmt.Sprintf("扫描件第 %d/%d 页", i+1, len(l.s.ScanSums)), fmt.Sprintf("Scan, page %d of %d", i+1, len(l.s.ScanSums)))
		l.cell(marginX, l.y, contentW, 5, title, "L")
		l.y += 6
		l.setFont(9, false)
		if i >= len(l.s.Scans) || l.s.Scans[i] == nil {
			l.paragraphText(l.label("此页为 PDF 文件，SHA-256 ", "This page is a PDF file, SHA-256 ") + sum)
			continue
		}
		if err := l.image(fmt.Sprintf("scan page %d", i+1), l.s.Scans[i], marginX, l.y, contentW, l.bottom-l.y); err != nil {
			return err
		}
	}
	return nil
}

// header draws the page header and returns the y below it.
func (l *sheetLayout) header() float64 {
	s := l.s
	y := marginY
	const qrSize = 21.0
	// Company and lines, top left.
	l.setColor(colText)
	l.setFont(10, true)
	l.cell(marginX, y, 60, 5, s.CompanyName, "L")
	l.setFont(7, false)
	l.setColor(colMuted)
	if s.Hotline != "" {
		l.cell(marginX, y+5, 60, 4, l.label("服务热线", "Hotline")+": "+s.Hotline, "L")
	}
	if s.ComplaintLine != "" {
		l.cell(marginX, y+9, 60, 4, l.label("投诉电话", "Complaints")+": "+s.ComplaintLine, "L")
	}
	l.setColor(colText)
	// Title, centred.
	titleX, titleW := marginX+60, contentW-60-qrSize-32
	switch l.lang {
	case LangBoth:
		l.setFont(15, true)
		l.cell(titleX, y, titleW, 8, "售后服务信息反馈单", "C")
		l.setFont(10, true)
		l.cell(titleX, y+8, titleW, 5, "Service Feedback Sheet", "C")
	case LangZH:
		l.setFont(15, true)
		l.cell(titleX, y+2, titleW, 9, "售后服务信息反馈单", "C")
	case LangEN:
		l.setFont(14, true)
		l.cell(titleX, y+2, titleW, 9, "Service Feedback Sheet", "C")
	}
	// Number and sheet id, right of the title.
	infoX := pageW - marginX - qrSize - 32
	l.setFont(7, false)
	l.setColor(colMuted)
	l.cell(infoX, y, 32, 4, l.label("单号", "No."), "L")
	l.setColor(colText)
	l.setFont(8.5, true)
	l.cell(infoX, y+3.5, 32, 4.5, s.Number, "L")
	if !l.form {
		l.setFont(7, false)
		l.setColor(colMuted)
		l.cell(infoX, y+8.5, 32, 4, l.label("封签指纹", "Seal"), "L")
		l.setColor(colText)
		l.setFont(7.5, false)
		l.cell(infoX, y+12, 32, 4, shortFingerprint(s.Fingerprint), "L")
	}
	// QR code, top right: the verify link on a sheet, the number on a form.
	qrText := s.Number
	if !l.form && s.VerifyURL != "" {
		qrText = s.VerifyURL
	}
	if qrText != "" {
		if err := l.qr(qrText, pageW-marginX-qrSize, y-1.5, qrSize); err != nil {
			l.pdf.SetError(err)
		}
		if !l.form && s.VerifyURL != "" {
			l.setFont(6, false)
			l.setColor(colMuted)
			l.cell(infoX, y+15.5, 32, 3.5, l.label("扫码验证", "Scan to verify")+" →", "L")
			l.setColor(colText)
		}
	}
	l.pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
	l.pdf.SetLineWidth(0.5)
	l.pdf.Line(marginX, y+20, pageW-marginX, y+20)
	return y + 22
}

// shortFingerprint prints the first 16 hex digits in groups of four.
func shortFingerprint(fp string) string {
	fp = strings.ToUpper(strings.TrimSpace(fp))
	if len(fp) > 16 {
		fp = fp[:16]
	}
	var groups []string
	for len(fp) > 4 {
		groups = append(groups, fp[:4])
		fp = fp[4:]
	}
	if fp != "" {
		groups = append(groups, fp)
	}
	return strings.Join(groups, " ")
}

// body lays out every block below the header, flowing onto further pages
// when the text needs it.
func (l *sheetLayout) body() error {
	s := l.s
	loc := s.Location
	if !l.form && !s.Complete {
		l.incompleteBlock()
	}
	if !l.form && s.PaperEnteredBy != "" {
		l.setFont(8.5, true)
		l.paragraphText(l.label(fmt.Sprintf("纸质反馈单：由 %s 据客户签字盖章的纸质表单录入，附扫描件 %d 页（见后页）。", s.PaperEnteredBy, len(s.ScanSums)),
			fmt.Sprintf("Paper sheet: entered by %s from the paper form the customer signed and stamped; its scan of %d page(s) follows.", s.PaperEnteredBy, len(s.ScanSums))))
		l.setFont(9, false)
	}

	// Request.
	l.ensure(5.5 + 2*rowH)
	l.y = l.sectionBar(l.y, l.label("服务请求", "Request"))
	chargeable := ""
	switch {
	case l.blank:
		chargeable = map[Lang]string{LangZH: "□ 是   □ 否", LangEN: "□ Yes   □ No", LangBoth: "□ 是 Yes  □ 否 No"}[l.lang]
	case s.Chargeable:
		chargeable = l.label("是", "Yes")
	default:
		chargeable = l.label("否", "No")
	}
	l.y = l.fieldRow(l.y, rowH, 4, labelW,
		field{zh: "登记单号", en: "Log number", value: s.Number},
		field{zh: "受理时间", en: "Received", value: fmtTime(s.ReceivedAt, loc)},
		field{zh: "来源", en: "Source", value: l.code(s.Source)},
		field{zh: "服务方式", en: "Service mode", value: l.code(s.ServiceMode)})
	l.y = l.fieldRow(l.y, rowH, 4, labelW,
		field{zh: "服务类型", en: "Service type", value: l.code(s.ServiceType)},
		field{zh: "紧急程度", en: "Urgency", value: l.code(s.Urgency)},
		field{zh: "保修状态", en: "Warranty", value: l.code(s.Warranty)},
		field{zh: "是否收费", en: "Chargeable", value: chargeable})

	// Customer and equipment.
	l.y += 1.5
	l.ensure(5.5 + 3*rowH)
	l.y = l.sectionBar(l.y, l.label("客户与设备", "Customer and equipment"))
	l.y = l.fieldRow(l.y, rowH, 4, labelW,
		field{zh: "客户单位", en: "Customer", value: s.Customer, span: 4})
	l.y = l.fieldRow(l.y, rowH, 4, labelW,
		field{zh: "现场地址", en: "Site address", value: s.SiteAddress, span: 2},
		field{zh: "联系人", en: "Contact", value: s.ContactName},
		field{zh: "联系电话", en: "Phone", value: s.ContactPhone})
	l.y = l.fieldRow(l.y, rowH, 4, labelW,
		field{zh: "设备型号", en: "Model", value: s.AssetModel, span: 2},
		field{zh: "序列号", en: "Serial no.", value: s.AssetSerial},
		field{zh: "保修截止", en: "Warranty until", value: s.WarrantyUntil})

	// Visit.
	l.y += 1.5
	l.ensure(5.5 + rowH)
	l.y = l.sectionBar(l.y, l.label("服务过程", "Service visit"))
	tech, symptoms := s.Technician, s.FaultSymptoms
	if l.form {
		tech, symptoms = s.AssignedTechnician, s.ReportedSymptoms
		if s.AgreedHandling != "" {
			symptoms += "\n" + l.label("商定处理方式", "Agreed handling") + ": " + s.AgreedHandling
		}
	}
	l.y = l.fieldRow(l.y, rowH, 3, labelW,
		field{zh: "服务工程师", en: "Technician", value: tech},
		field{zh: "到达时间", en: "Arrived", value: fmtTimePtr(s.ArrivedAt, loc)},
		field{zh: "离开时间", en: "Departed", value: fmtTimePtr(s.DepartedAt, loc)})

	// The work: text boxes that grow with their text.
	// A form leaves room to write by hand; a filled sheet's boxes grow with their text from
	// smaller minimums, which leaves room for the phone's signature under the signatures.
	minH := [3]float64{25, 33, 25}
	if !l.form {
		minH = [3]float64{18, 24, 18}
	}
	l.textBox(l.label("故障现象", "Fault symptoms"), symptoms, minH[0])
	l.textBox(l.label("检查记录", "Inspection record"), s.InspectionRecord, minH[1])
	l.textBox(l.label("处理结果", "Handling result"), s.HandlingResult, minH[2])

	l.partsTable()
	l.feesAndRating()
	if err := l.signatureBlock(); err != nil {
		return err
	}
	l.deviceBlock()
	return nil
}

// deviceBlock prints the phone's signature under the signatures: which phone, its time and
// clock offset, the server's receipt and seal, the verdict, and a later revocation. Each
// language is one paragraph (Chinese first when both), so that it fits under a full sheet.
func (l *sheetLayout) deviceBlock() {
	d, s := l.s.Device, l.s
	if d == nil || l.form {
		return
	}
	var zh, en []string
	add := func(z, e string) { zh, en = append(zh, z), append(en, e) }
	bad := d.Signed && (!d.Valid || d.ChainGap || d.ClockFlag != "")
	if !d.Signed {
		add("设备签名：未在设备上签名（旧版应用）", "Device signature: not signed on the device (an app without device keys)")
	} else {
		z, e := "设备签名有效", "device signature verified"
		if !d.Valid {
			z, e = "设备签名无效", "device signature NOT valid"
		}
		add("设备签名："+z+"，签名手机："+d.User+" 的手机（"+d.Device+"）", "Device signature: "+e+", signed on "+d.User+"'s phone ("+d.Device+")")
		when := fmtTimePtr(d.At, s.Location)
		z, e = "手机时间 "+when, "phone time "+when
		if d.ClockOffset != nil {
			off, zf, ef := *d.ClockOffset, "快", "ahead of"
			if off < 0 {
				off, zf, ef = -off, "慢", "behind"
			}
			z += fmt.Sprintf("（最近一次同步时手机时钟比服务器%s %s）", zf, fmtOffset(off))
			e += fmt.Sprintf(" (when it last synced, the phone clock was %s %s the server's)", fmtOffset(off), ef)
		}
		rec := fmtTimePtr(s.ServerReceivedAt, s.Location)
		add(z+"，服务器接收并封签 "+rec, e+"; received and sealed by the server "+rec)
		if d.ClockFlag != "" {
			add(WarningIn(d.ClockFlag, "zh"), WarningIn(d.ClockFlag, "en"))
		}
		if d.ChainGap {
			add("设备签名链有缺口：此前在该手机上签署的反馈单未送达服务器", "a gap in the phone's chain: a sheet signed on it before this one did not reach the server")
		}
		if d.RevokedAt != nil {
			at := fmtTimePtr(d.RevokedAt, s.Location)
			add("该手机已于之后停用（"+at+"）；停用前所作的签名仍然有效", "this phone was revoked later ("+at+"); the signature it made before then stays valid")
		}
	}
	var paras []string
	if l.lang != LangEN {
		paras = append(paras, strings.Join(zh, "；")+"。")
	}
	if l.lang != LangZH {
		paras = append(paras, strings.Join(en, "; ")+".")
	}
	size, bold := l.size, l.bold
	defer l.setFont(size, bold)
	l.setFont(6.5, false)
	var lines []string
	for _, p := range paras {
		lines = append(lines, l.wrap(p, contentW-2)...)
	}
	h := float64(len(lines))*l.lineH() + 1.5
	l.y += 1.5
	l.ensure(h)
	l.rect(marginX, l.y, contentW, h, false)
	l.setColor(colText)
	if bad {
		l.setColor(colAlert)
	}
	l.textLines(marginX+1, l.y+0.7, lines)
	l.setColor(colText)
	l.y += h
}

// fmtOffset prints a clock offset: seconds under a minute ("40 s"), else Go's form ("2h0m0s").
func fmtOffset(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.0f s", d.Round(time.Second).Seconds())
	}
	return d.Round(time.Second).String()
}

// code translates the schema's enumeration codes (service modes, sources,
// urgencies, warranty states, service types) into labels; any other value
// prints as given.
func (l *sheetLayout) code(v string) string {
	labels := map[string][2]string{
		"onsite": {"现场维修", "On-site"}, "phone": {"电话服务", "Phone"}, "online": {"网络在线服务", "Online"},
		"hotline": {"服务热线", "Hotline"}, "technician_report": {"技术员报告", "Technician report"},
		"leadership": {"领导指示", "Leadership"},
		"in":         {"保修期内", "In warranty"}, "out": {"保修期外", "Out of warranty"}, "unknown": {"待确认", "To be confirmed"},
		"repair": {"维修", "Repair"}, "maintenance": {"维护", "Maintenance"}, "installation": {"安装", "Installation"},
		"inspection": {"巡检", "Inspection"}, "consultation": {"咨询", "Consultation"}, "software": {"软件服务", "Software"},
		"other": {"其他", "Other"},
	}
	if lb, ok := labels[v]; ok {
		return l.label(lb[0], lb[1])
	}
	if lb, ok := schema.UrgencyLabels[v]; ok {
		return l.label(lb.Zh, lb.En)
	}
	return v
}

// textBox draws a titled box holding text wrapped to its width, at least
// minH tall. Text that does not fit on the page continues in a box on the
// next page, its title marked "(续 / cont.)".
func (l *sheetLayout) textBox(title, text string, minH float64) {
	const titleH = 5.0
	l.setFont(9, false)
	lh := l.lineH()
	lines := l.wrap(text, contentW-2*boxPad)
	need := titleH + float64(len(lines))*lh + boxPad
	h := max(minH, need)
	// Keep at least the title and three lines (or the whole box) together.
	l.ensure(min(h, titleH+3*lh+boxPad))
	cont := false
	for {
		avail := l.bottom - l.y
		n := len(lines)
		boxH := h
		if boxH > avail {
			n = int((avail - titleH - boxPad) / lh)
			boxH = avail
		}
		l.rect(marginX, l.y, contentW, boxH, false)
		l.setFont(8, true)
		t := title
		if cont {
			t += " (" + l.label("续", "cont.") + ")"
		}
		l.cell(marginX, l.y, contentW, titleH, t, "L")
		l.setFont(9, false)
		l.textLines(marginX+boxPad, l.y+titleH, lines[:n])
		l.y += boxH
		lines = lines[n:]
		if len(lines) == 0 {
			return
		}
		l.newPage()
		cont = true
		h = titleH + float64(len(lines))*lh + boxPad
	}
}

// partsTable draws the parts used; the form gets four empty rows.
func (l *sheetLayout) partsTable() {
	widths := []float64{86, 20, 42, 42}
	head := []string{
		l.label("更换配件", "Part"), l.label("数量", "Qty"),
		l.label("拆下序列号", "Serial removed"), l.label("装上序列号", "Serial fitted"),
	}
	rows := make([][]string, 0, 4)
	for _, p := range l.s.Parts {
		qty := ""
		if p.Quantity != 0 {
			qty = strconv.Itoa(p.Quantity)
		}
		rows = append(rows, []string{p.Item, qty, p.SerialRemoved, p.SerialFitted})
	}
	empty := 0
	if l.form {
		empty = 4
	} else if len(rows) == 0 {
		empty = 1
	}
	for i := 0; i < empty; i++ {
		rows = append(rows, nil)
	}
	l.y += 1.5
	l.ensure(partRowH * float64(1+min(len(rows), 2)))
	l.y = l.tableRow(marginX, l.y, partRowH, widths, head, true)
	for _, r := range rows {
		if l.ensure(partRowH) {
			l.y = l.tableRow(marginX, l.y, partRowH, widths, head, true)
		}
		l.y = l.tableRow(marginX, l.y, partRowH, widths, r, false)
	}
}

// feesAndRating draws the fees row and the satisfaction tick boxes.
func (l *sheetLayout) feesAndRating() {
	s := l.s
	fee := func(fen int64) string {
		if l.form || (!s.Chargeable && fen == 0) {
			return ""
		}
		return fmtFen(fen)
	}
	total := ""
	if !l.form && (s.Chargeable || s.LabourFen+s.PartsFen+s.ShippingFen != 0) {
		total = fmtFen(s.LabourFen + s.PartsFen + s.ShippingFen)
	}
	l.y += 1.5
	l.ensure(2 * rowH)
	l.y = l.fieldRow(l.y, rowH, 4, labelW,
		field{zh: "人工费", en: "Labour", value: fee(s.LabourFen)},
		field{zh: "配件费", en: "Parts", value: fee(s.PartsFen)},
		field{zh: "运费", en: "Shipping", value: fee(s.ShippingFen)},
		field{zh: "合计", en: "Total", value: total})

	// Satisfaction: label, five tick boxes, comment.
	y := l.y
	lw := 30.0
	l.labelCell(marginX, y, lw, rowH, "客户满意度", "Satisfaction")
	boxesW := 70.0
	l.rect(marginX+lw, y, boxesW, rowH, false)
	words := [][2]string{{"很差", "Poor"}, {"差", "Fair"}, {"一般", "OK"}, {"好", "Good"}, {"很好", "Excellent"}}
	step := boxesW / 5
	for i := 0; i < 5; i++ {
		bx := marginX + lw + float64(i)*step + 1.5
		by := y + (rowH-3.2)/2
		l.pdf.SetLineWidth(0.3)
		l.pdf.Rect(bx, by, 3.2, 3.2, "D")
		if s.Rating == i+1 {
			l.pdf.SetLineWidth(0.6)
			l.pdf.Line(bx+0.5, by+1.7, bx+1.3, by+2.7)
			l.pdf.Line(bx+1.3, by+2.7, bx+3.0, by+0.4)
			l.pdf.SetLineWidth(0.25)
		}
		l.setFont(6.5, false)
		word := words[i][1]
		if l.lang != LangEN {
			word = words[i][0]
		}
		l.cell(bx+3.2, y, step-4.7, rowH, fmt.Sprintf("%d %s", i+1, word), "L")
	}
	commentX := marginX + lw + boxesW
	rest := contentW - lw - boxesW
	comment := s.RatingComment
	if !l.form && s.Rating >= 1 && s.Rating <= 5 {
		comment = strings.TrimSpace(fmt.Sprintf("%d/5 %s", s.Rating, comment))
	}
	l.labelCell(commentX, y, labelW, rowH, "评价意见", "Comment")
	l.valueCell(commentX+labelW, y, rest-labelW, rowH, comment)
	l.y = y + rowH
}

// signatureBlock draws the customer's signature, name and date, the
// company stamp box and the technician's signature. It is never split: if
// it does not fit, it moves to a new page whole.
func (l *sheetLayout) signatureBlock() error {
	s := l.s
	l.y += 1.5
	l.ensure(signH)
	y := l.y
	const titleH = 5.0
	sigW, stampW := 78.0, 50.0
	techW := contentW - sigW - stampW
	x1, x2, x3 := marginX, marginX+sigW, marginX+sigW+stampW

	l.rect(x1, y, sigW, signH, false)
	l.rect(x2, y, stampW, signH, false)
	l.rect(x3, y, techW, signH, false)
	l.setFont(8, true)
	l.cell(x1, y, sigW, titleH, l.label("客户签字", "Customer signature"), "L")
	l.cell(x2, y, stampW, titleH, l.label("客户单位盖章", "Company stamp"), "L")
	l.cell(x3, y, techW, titleH, l.label("工程师签字", "Technician signature"), "L")

	// Name and date lines under the customer's signature.
	l.setFont(7.5, false)
	nameY := y + signH - 10
	l.cell(x1, nameY, sigW, 5, l.label("姓名", "Name")+": "+s.SignerName, "L")
	date := fmtTimePtr(s.SignedAt, s.Location)
	if l.form {
		date = ""
	}
	l.cell(x1, nameY+4.5, sigW, 5, l.label("日期", "Date")+": "+date, "L")
	if !l.form {
		l.setFont(6.5, false)
		l.setColor(colMuted)
		l.cell(x3, nameY+4.5, techW, 5, l.label("服务器接收", "Received by server")+": "+fmtTimePtr(s.ServerReceivedAt, s.Location), "L")
		l.setColor(colText)
	}

	imgTop := y + titleH + 0.5
	if err := l.maybeImage("signature", s.Signature, x1+2, imgTop, sigW-4, nameY-imgTop-0.5); err != nil {
		return err
	}
	if err := l.maybeImage("stamp", s.Stamp, x2+2, imgTop, stampW-4, y+signH-imgTop-2); err != nil {
		return err
	}
	if err := l.maybeImage("technician signature", s.TechnicianSignature, x3+2, imgTop, techW-4, nameY-imgTop+4); err != nil {
		return err
	}
	l.y = y + signH
	return nil
}

// maybeImage draws data in the box when there is any.
func (l *sheetLayout) maybeImage(what string, data []byte, x, y, w, h float64) error {
	if data == nil {
		return nil
	}
	return l.image(what, data, x, y, w, h)
}

// incompleteBlock draws the INCOMPLETE / 不完整 mark and the missing items.
func (l *sheetLayout) incompleteBlock() {
	items := make([]string, 0, len(l.s.Missing))
	for _, m := range l.s.Missing {
		items = append(items, l.missingLabel(m))
	}
	text := l.label("缺少", "Missing") + ": " + strings.Join(items, "；")
	if len(items) == 0 {
		text = l.label("反馈单不完整", "The sheet is incomplete")
	}
	if s := l.s; s.ExceptionBy != "" {
		text += "\n" + l.label("例外已接受", "Exception accepted") + ": " + s.ExceptionBy + " " + fmtTimePtr(s.ExceptionAt, s.Location)
		if s.ExceptionNote != "" {
			text += " · " + s.ExceptionNote
		}
	}
	l.setFont(8.5, false)
	lines := l.wrap(text, contentW-48)
	h := max(11, float64(len(lines))*l.lineH()+3)
	l.pdf.SetDrawColor(colAlert[0], colAlert[1], colAlert[2])
	l.pdf.SetLineWidth(0.6)
	l.pdf.Rect(marginX, l.y, contentW, h, "D")
	l.setColor(colAlert)
	l.setFont(12, true)
	l.cell(marginX+1, l.y, 44, h, l.label("不完整", "INCOMPLETE"), "L")
	l.setFont(8.5, false)
	l.textLines(marginX+46, l.y+1.5, lines)
	l.setColor(colText)
	l.pdf.SetLineWidth(0.25)
	l.y += h + 1.5
}

// missingLabel names a missing field for people, in the words every screen uses
// (schema.ItemLabel).
func (l *sheetLayout) missingLabel(field string) string {
	n, _ := schema.ItemLabel(schema.EntSheet, field)
	return l.label(n.Zh, n.En)
}

// footerText is the commitment, the complaint line and the validity rule.
func (l *sheetLayout) footerText() string {
	s := l.s
	parts := []string{}
	if t := oneLine(s.CommitmentText); t != "" {
		parts = append(parts, t)
	}
	if s.ComplaintLine != "" {
		parts = append(parts, l.label("投诉电话", "Complaints")+": "+s.ComplaintLine)
	}
	parts = append(parts, l.label("不完整的反馈单无效", "Incomplete sheets are invalid"))
	if !l.form && s.SheetID != "" {
		parts = append(parts, l.label("反馈单", "Sheet")+" "+s.SheetID)
	}
	return strings.Join(parts, "  ·  ")
}
