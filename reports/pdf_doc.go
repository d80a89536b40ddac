// Package reports renders fieldsync's printable documents and computes month-end statistics and pay.
package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/jung-kurt/gofpdf"
)

// Lang chooses the language of a document's labels. Data (names, addresses,
// notes) is printed as entered whatever the Lang.
type Lang string

// The label languages a deployment can choose.
const (
	LangZH   Lang = "zh"   // Chinese labels only
	LangEN   Lang = "en"   // English labels only
	LangBoth Lang = "both" // Chinese first, then English: 故障现象 / Fault symptoms
)

// Options are the settings every document takes.
type Options struct {
	// Lang chooses the labels; the zero value means LangBoth.
	Lang Lang
	// Now is the clock stamped into the PDF's creation and modification
	// dates. Tests pin it so that output is byte-for-byte reproducible;
	// nil means time.Now.
	Now func() time.Time
	// Draft prints a DRAFT / 草稿 watermark on every page (used by the
	// monthly report before the month is approved).
	Draft bool
}

// Page geometry of every fieldsync document, in millimetres (A4 portrait).
const (
	pageW    = 210.0
	pageH    = 297.0
	marginX  = 10.0
	marginY  = 10.0
	contentW = pageW - 2*marginX
	ptPerMM  = 72 / 25.4
)

// Colours used across documents, as RGB.
var (
	colText   = [3]int{0, 0, 0}
	colMuted  = [3]int{90, 90, 90}
	colRule   = [3]int{60, 60, 60}
	colFill   = [3]int{236, 239, 243}
	colAlert  = [3]int{200, 20, 20}
	colMarkBg = [3]int{225, 225, 225}
)

// doc is a PDF under construction with fieldsync's fonts, geometry and
// label language. Text drawn through its methods is split into font runs
// (DejaVu Sans for Latin, Droid Sans Fallback for Chinese), so any mix of
// Chinese and Latin renders. Auto page break is off: callers place content
// themselves and call newPage (or ensure) when a page is full.
type doc struct {
	pdf   *gofpdf.Fpdf
	fonts *fontSet
	lang  Lang
	draft bool

	size float64 // current font size in points
	bold bool

	// header, if set, is drawn at the top of every page newPage adds; it
	// returns the y where content starts.
	header func() float64
	// y is the layout cursor for flowing content; bottom is the lowest y
	// content may reach on a page (above the footer).
	y, bottom float64

	images int // images registered, for unique names
}

// newDoc starts an A4 document: fonts registered, dates pinned to o.Now,
// catalog sorted (deterministic bytes), auto page break off. No page is
// added yet: call newPage.
func newDoc(o Options) (*doc, error) {
	fonts, err := loadFonts()
	if err != nil {
		return nil, err
	}
	lang := o.Lang
	switch lang {
	case "":
		lang = LangBoth
	case LangZH, LangEN, LangBoth:
	default:
		return nil, fmt.Errorf("reports: unknown label language %q", lang)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	pdf := gofpdf.New("P", "mm", "A4", "")
	t := now()
	pdf.SetCreationDate(t)
	pdf.SetModificationDate(t)
	pdf.SetCatalogSort(true)
	pdf.SetCompression(true)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetMargins(marginX, marginY, marginX)
	pdf.SetCreator("fieldsync", false)
	pdf.SetProducer("fieldsync (gofpdf)", false)
	if err := fonts.addFonts(pdf); err != nil {
		return nil, err
	}
	d := &doc{pdf: pdf, fonts: fonts, lang: lang, draft: o.Draft, size: 9, bottom: pageH - marginY}
	return d, nil
}

// label returns a label in the document's language: zh, en, or "zh / en".
func (d *doc) label(zh, en string) string {
	switch d.lang {
	case LangZH:
		return zh
	case LangEN:
		return en
	}
	return zh + " / " + en
}

// labelLines returns a label as one or two lines (Chinese above English
// when both), for narrow label cells.
func (d *doc) labelLines(zh, en string) []string {
	switch d.lang {
	case LangZH:
		return []string{zh}
	case LangEN:
		return []string{en}
	}
	return []string{zh, en}
}

// setFont sets the size (points) and weight of the text drawn next.
func (d *doc) setFont(size float64, bold bool) {
	d.size, d.bold = size, bold
}

// setColor sets the text colour.
func (d *doc) setColor(c [3]int) { d.pdf.SetTextColor(c[0], c[1], c[2]) }

// fontMM is the current font size in millimetres.
func (d *doc) fontMM() float64 { return d.size / ptPerMM }

// lineH is the line height for the current font size.
func (d *doc) lineH() float64 { return d.fontMM() * 1.3 }

// width measures s in the current font, in millimetres, across font runs.
func (d *doc) width(s string) float64 {
	w := 0
	for _, r := range s {
		w += d.fonts.runeWidth(r, d.bold)
	}
	return float64(w) * d.fontMM() / 1000
}

// text draws s with its baseline at (x, y), switching fonts run by run.
func (d *doc) text(x, y float64, s string) {
	for _, run := range d.fonts.splitRuns(s, d.bold) {
		if run.face == &d.fonts.cjkExt && d.pdf.GetFontDesc(famCJKExt, "").Ascent == 0 {
			// Registered on first use only: it is large (see loadFonts).
			if err := run.face.addTo(d.pdf); err != nil {
				d.pdf.SetError(err)
				return
			}
		}
		d.pdf.SetFont(run.face.family, run.face.style, d.size)
		d.pdf.Text(x, y, run.text)
		x += d.width(run.text)
	}
}

// cell draws one line of s inside the box (x, y, w, h), vertically
// centred, aligned "L", "C" or "R", with a small inner padding. Text too
// wide for the box is shrunk down to 70% of the font size, then cut with
// an ellipsis, so it never spills into a neighbouring box.
func (d *doc) cell(x, y, w, h float64, s, align string) {
	s = oneLine(s)
	if s == "" {
		return
	}
	const pad = 1.2
	avail := w - 2*pad
	size := d.size
	defer d.setFont(size, d.bold)
	for d.width(s) > avail && d.size > size*0.7 {
		d.size -= 0.25
	}
	if d.width(s) > avail {
		s = d.truncate(s, avail)
	}
	tx := x + pad
	switch align {
	case "C":
		tx = x + (w-d.width(s))/2
	case "R":
		tx = x + w - pad - d.width(s)
	}
	d.text(tx, y+h/2+d.fontMM()*0.35, s)
}

// truncate cuts s to fit w with a trailing ellipsis.
func (d *doc) truncate(s string, w float64) string {
	rs := []rune(s)
	for len(rs) > 0 && d.width(string(rs)+"…") > w {
		rs = rs[:len(rs)-1]
	}
	return string(rs) + "…"
}

// oneLine folds line breaks and tabs into spaces and trims the ends.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s))
}

// wrap breaks s into lines no wider than w in the current font. Explicit
// line breaks are kept; Latin text breaks at spaces (a word longer than a
// line is cut); Chinese breaks between any two characters, except that
// closing punctuation (，。、）) never starts a line.
func (d *doc) wrap(s string, w float64) []string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		para = strings.TrimRightFunc(para, unicode.IsSpace)
		if para == "" {
			lines = append(lines, "")
			continue
		}
		lines = append(lines, d.wrapPara(para, w)...)
	}
	// Trailing blank lines only waste space.
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func (d *doc) wrapPara(para string, w float64) []string {
	var lines []string
	rs := []rune(para)
	scale := d.fontMM() / 1000
	for len(rs) > 0 {
		// Take as many runes as fit.
		used, n := 0.0, 0
		for n < len(rs) {
			cw := float64(d.fonts.runeWidth(rs[n], d.bold)) * scale
			if used+cw > w && n > 0 {
				break
			}
			used += cw
			n++
		}
		if n < len(rs) {
			n = breakPoint(rs, n)
		}
		lines = append(lines, strings.TrimRightFunc(string(rs[:n]), unicode.IsSpace))
		rs = rs[n:]
		for len(rs) > 0 && rs[0] == ' ' {
			rs = rs[1:]
		}
	}
	return lines
}

// breakPoint moves a line break at n (the first rune that did not fit)
// back to a good place: after a space in Latin text, before a character
// that may start a line.
func breakPoint(rs []rune, n int) int {
	if isWide(rs[n]) || rs[n] == ' ' || isWide(rs[n-1]) {
		// Between wide characters: just keep closing punctuation off the
		// start of the next line.
		if isClosing(rs[n]) && n > 1 {
			return n - 1
		}
		return n
	}
	// Inside a Latin word: go back to the last space or wide character.
	for i := n - 1; i > 0; i-- {
		if rs[i] == ' ' {
			return i + 1
		}
		if isWide(rs[i]) && !isClosing(rs[i+1]) {
			return i + 1
		}
	}
	return n // one word wider than the line: cut it
}

// isWide reports whether r is a CJK character, which lines may break around.
func isWide(r rune) bool {
	return unicode.Is(unicode.Han, r) || (r >= 0x3000 && r <= 0x30FF) || (r >= 0xFF00 && r <= 0xFFEF)
}

// isClosing reports whether r is punctuation that must not start a line.
func isClosing(r rune) bool {
	return strings.ContainsRune("，。、；：？！）》」』】〕,.;:?!)]}”’…%", r)
}

// rect strokes a rectangle in the rule colour, optionally filled.
func (d *doc) rect(x, y, w, h float64, fill bool) {
	d.pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
	d.pdf.SetLineWidth(0.25)
	style := "D"
	if fill {
		d.pdf.SetFillColor(colFill[0], colFill[1], colFill[2])
		style = "FD"
	}
	d.pdf.Rect(x, y, w, h, style)
}

// labelCell draws a shaded label cell holding a bilingual label, Chinese
// above English when the language is LangBoth.
func (d *doc) labelCell(x, y, w, h float64, zh, en string) {
	d.rect(x, y, w, h, true)
	lines := d.labelLines(zh, en)
	size, bold := d.size, d.bold
	defer d.setFont(size, bold)
	d.setColor(colText)
	if len(lines) == 1 {
		d.setFont(7.5, false)
		d.cell(x, y, w, h, lines[0], "L")
		return
	}
	d.setFont(7.5, false)
	d.cell(x, y+h/2-3.4, w, 3.6, lines[0], "L")
	d.setFont(6, false)
	d.setColor(colMuted)
	d.cell(x, y+h/2+0.1, w, 3.0, lines[1], "L")
	d.setColor(colText)
}

// valueCell draws a bordered cell with one line of value text.
func (d *doc) valueCell(x, y, w, h float64, value string) {
	d.rect(x, y, w, h, false)
	size, bold := d.size, d.bold
	d.setFont(9, false)
	d.cell(x, y, w, h, value, "L")
	d.setFont(size, bold)
}

// field is one label/value pair in a grid row.
type field struct {
	zh, en string
	value  string
	span   int // columns the value spans (1 if zero)
}

// fieldRow draws a row of label/value pairs across the content width.
// Each pair takes one of cols equal columns (or span of them); the label
// cell is labelW wide. It returns the y below the row.
func (d *doc) fieldRow(y, h float64, cols int, labelW float64, fields ...field) float64 {
	colW := contentW / float64(cols)
	x := marginX
	for _, f := range fields {
		span := f.span
		if span == 0 {
			span = 1
		}
		w := colW * float64(span)
		d.labelCell(x, y, labelW, h, f.zh, f.en)
		d.valueCell(x+labelW, y, w-labelW, h, f.value)
		x += w
	}
	return y + h
}

// sectionBar draws a full-width shaded band with a section title and
// returns the y below it.
func (d *doc) sectionBar(y float64, title string) float64 {
	const h = 5.5
	d.pdf.SetFillColor(colMarkBg[0], colMarkBg[1], colMarkBg[2])
	d.pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
	d.pdf.Rect(marginX, y, contentW, h, "FD")
	size, bold := d.size, d.bold
	d.setFont(8.5, true)
	d.setColor(colText)
	d.cell(marginX, y, contentW, h, title, "L")
	d.setFont(size, bold)
	return y + h
}

// tableRow draws one row of a table: cells of the given widths from x,
// each holding one line (cut to fit). A header row is shaded and bold.
// It returns the y below the row.
func (d *doc) tableRow(x, y, h float64, widths []float64, cells []string, header bool) float64 {
	size, bold := d.size, d.bold
	defer d.setFont(size, bold)
	if header {
		d.setFont(7.5, true)
	} else {
		d.setFont(8.5, false)
	}
	for i, w := range widths {
		d.rect(x, y, w, h, header)
		if i < len(cells) {
			align := "L"
			if header {
				align = "C"
			}
			d.cell(x, y, w, h, cells[i], align)
		}
		x += w
	}
	return y + h
}

// textLines draws lines top-down from (x, y) at the current line height
// and returns the y below the last.
func (d *doc) textLines(x, y float64, lines []string) float64 {
	lh := d.lineH()
	for _, l := range lines {
		d.text(x, y+lh*0.78, l)
		y += lh
	}
	return y
}

// newPage adds a page, draws the watermark if the document is a draft and
// the page header if one is set, and moves the cursor below it.
func (d *doc) newPage() {
	d.pdf.AddPage()
	if d.draft {
		d.watermark()
	}
	d.y = marginY
	if d.header != nil {
		d.y = d.header()
	}
}

// ensure starts a new page unless h millimetres fit below the cursor. It
// reports whether it did.
func (d *doc) ensure(h float64) bool {
	if d.y+h <= d.bottom {
		return false
	}
	d.newPage()
	return true
}

// watermark draws a large diagonal DRAFT / 草稿 across the page, in light
// grey behind the content drawn after it.
func (d *doc) watermark() {
	size, bold := d.size, d.bold
	d.setFont(64, true)
	d.pdf.SetTextColor(215, 215, 215)
	mark := d.label("草稿", "DRAFT")
	d.pdf.TransformBegin()
	d.pdf.TransformRotate(35, pageW/2, pageH/2)
	d.text(pageW/2-d.width(mark)/2, pageH/2+d.fontMM()*0.35, mark)
	d.pdf.TransformEnd()
	d.setColor(colText)
	d.setFont(size, bold)
}

// footer draws, on every page, a rule, left text (wrapped onto at most two
// lines) and "page / pages" at the right, inside the bottom margin zone
// from y to the page's bottom margin. Call it once, after all content.
func (d *doc) footer(y float64, left string) {
	n := d.pdf.PageCount()
	size, bold := d.size, d.bold
	defer d.setFont(size, bold)
	for p := 1; p <= n; p++ {
		d.pdf.SetPage(p)
		d.pdf.SetDrawColor(colRule[0], colRule[1], colRule[2])
		d.pdf.SetLineWidth(0.2)
		d.pdf.Line(marginX, y, pageW-marginX, y)
		d.setFont(7, false)
		d.setColor(colMuted)
		pg := fmt.Sprintf("%d / %d", p, n)
		d.cell(pageW-marginX-20, y+0.5, 20, 4, pg, "R")
		lines := d.wrap(left, contentW-22)
		if len(lines) > 2 {
			lines = []string{lines[0], d.truncate(lines[1], contentW-24)}
		}
		d.textLines(marginX, y+0.8, lines)
		d.setColor(colText)
	}
}

// output checks gofpdf's sticky error, renders the whole PDF into memory
// and only then writes it to w, so a failed render never sends a byte.
func (d *doc) output(w io.Writer) error {
	if err := d.pdf.Error(); err != nil {
		return fmt.Errorf("reports: rendering PDF: %w", err)
	}
	var buf bytes.Buffer
	if err := d.pdf.Output(&buf); err != nil {
		return fmt.Errorf("reports: rendering PDF: %w", err)
	}
	if buf.Len() == 0 {
		return errors.New("reports: rendering PDF: empty output")
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// fmtTime formats t in loc (UTC if nil) as 2006-01-02 15:04; the zero time
// prints as "".
func fmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04")
}

// fmtTimePtr is fmtTime for optional times.
func fmtTimePtr(t *time.Time, loc *time.Location) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t, loc)
}

// fmtFen prints an amount of money held in fen (1/100 yuan) as ¥12.34.
func fmtFen(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, fen/100, fen%100)
}
