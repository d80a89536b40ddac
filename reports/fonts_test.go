package reports

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
)

func TestFontsLoadOnce(t *testing.T) {
	a, err := loadFonts()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := loadFonts()
	if a != b {
		t.Error("loadFonts prepared the fonts twice")
	}
	// The premise of the run splitter: Droid has no Latin, DejaVu no Chinese.
	for _, r := range "AZaz09" {
		if a.cjk.cover.has(r) || a.cjkExt.cover.has(r) {
			t.Errorf("Droid Sans Fallback unexpectedly maps %q", r)
		}
	}
	if a.latin.cover.has('中') {
		t.Error("DejaVu Sans unexpectedly maps 中")
	}
}

// TestEveryPrintedCharacterHasAGlyph renders every document in every
// language and checks that each character poppler extracts is covered by
// the font the run splitter chose for it (a missing glyph would still be
// extracted, through the ToUnicode map, but print as an empty box).
func TestEveryPrintedCharacterHasAGlyph(t *testing.T) {
	fs, err := loadFonts()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, lang := range []Lang{LangBoth, LangZH, LangEN} {
		for _, render := range []func(*bytes.Buffer) error{
			func(b *bytes.Buffer) error { return RenderForm(b, nil, pdfOpts(lang)) },
			func(b *bytes.Buffer) error { return RenderForm(b, pdfSampleForm(), pdfOpts(lang)) },
			func(b *bytes.Buffer) error { return RenderSheet(b, pdfSealedSheet(), pdfOpts(lang)) },
			func(b *bytes.Buffer) error { return RenderSheet(b, pdfIncompleteSheet(), pdfOpts(lang)) },
			func(b *bytes.Buffer) error {
				o := pdfOpts(lang)
				o.Draft = true
				return RenderForm(b, nil, o)
			},
		} {
			text.WriteString(poppler(t, pdfRender(t, render), "pdftotext", "-raw"))
		}
	}
	seen := map[rune]bool{}
	for _, r := range text.String() {
		if unicode.IsSpace(r) || seen[r] {
			continue
		}
		seen[r] = true
		if !fs.covers(r) {
			t.Errorf("%q (U+%04X) is printed but its font has no glyph", r, r)
		}
	}
	if len(seen) < 150 {
		t.Errorf("only %d distinct characters extracted; the check saw too little", len(seen))
	}
}

func TestSplitRuns(t *testing.T) {
	fs, err := loadFonts()
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, run := range fs.splitRuns("上海浦东新区张江路 88 号，“Model X-200”", false) {
		got = append(got, run.face.family+":"+run.text)
	}
	want := []string{
		famCJK + ":上海浦东新区张江路", famLatin + ": 88 ", famCJK + ":号，", famLatin + ":“Model X-200”",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitRuns:\n got %q\nwant %q", got, want)
	}
	// Customer data in Chinese, with names and places beyond GB 2312.
	samples := []string{
		"华东精密仪器有限公司", "上海浦东新区张江路 88 号", "王建国", "李明", "“Model X-200” 精密测温仪",
		"陈喆", "朱镕基路", "深圳市南山区粤海街道（科技园）", "¥1,234.50", "№ 7 ℃ ±0.5 — …",
	}
	for _, s := range samples {
		for _, run := range fs.splitRuns(s, false) {
			for _, r := range run.text {
				if !run.face.cover.has(r) {
					t.Errorf("%q in %q goes to %s, which has no glyph for it", r, s, run.face.family)
				}
			}
		}
	}
}

// TestRareCharacterUsesExtendedFace checks that a name outside GB 2312
// prints (from the extended Droid face, added only when needed).
func TestRareCharacterUsesExtendedFace(t *testing.T) {
	fs, _ := loadFonts()
	if fs.faceFor('喆', false) != &fs.cjkExt {
		t.Fatal("喆 is expected outside GB 2312, in the extended face")
	}
	f := pdfSampleForm()
	f.ContactName = "陈喆"
	pdf := pdfRender(t, func(b *bytes.Buffer) error { return RenderForm(b, f, pdfOpts(LangBoth)) })
	pdfMustContain(t, poppler(t, pdf, "pdftotext"), "陈喆")
	if fonts := poppler(t, pdf, "pdffonts"); !strings.Contains(fonts, "utf8"+famCJKExt) {
		t.Errorf("extended face not embedded:\n%s", fonts)
	}
	plain := pdfRender(t, func(b *bytes.Buffer) error { return RenderForm(b, pdfSampleForm(), pdfOpts(LangBoth)) })
	if fonts := poppler(t, plain, "pdffonts"); strings.Contains(fonts, "utf8"+famCJKExt) {
		t.Errorf("extended face embedded though no character needs it:\n%s", fonts)
	}
}

func TestWrapKeepsTextInsideWidth(t *testing.T) {
	d, err := newDoc(pdfOpts(LangBoth))
	if err != nil {
		t.Fatal(err)
	}
	d.setFont(9, false)
	text := "检查电源模块输出 12.1 V 正常；传感器接头氧化，接触电阻偏大。Replaced the PT100 probe and recalibrated the controller, verylongwordwithoutanyspacesatallthatmustbecut。"
	const w = 60.0
	lines := d.wrap(text, w)
	if len(lines) < 3 {
		t.Fatalf("wrap gave %d lines", len(lines))
	}
	for _, l := range lines {
		if d.width(l) > w+0.01 {
			t.Errorf("line %q is %.1f mm wide, box is %.0f", l, d.width(l), w)
		}
		if r := []rune(l); len(r) > 0 && isClosing(r[0]) {
			t.Errorf("line starts with closing punctuation: %q", l)
		}
	}
	if got := strings.Join(lines, ""); pdfSquash(got) != pdfSquash(text) {
		t.Errorf("wrap lost text:\n got %q\nwant %q", got, text)
	}
}

// TestCharactersNoFontDraws renders every document with names and notes
// holding characters outside the Basic Multilingual Plane (a rare
// ideograph in real names, an emoji), which gofpdf cannot embed: each
// document renders, and each such character prints as the visible
// substitute □ while the rest of the text prints as written.
func TestCharactersNoFontDraws(t *testing.T) {
	const (
		tech     = "𠮷磊"
		customer = "𠮷祥精密机械厂"
		note     = "客户很满意 👍 thanks"
	)
	form := pdfSampleForm()
	form.Customer = customer
	form.ContactName = tech
	form.SiteAddress = "上海 𠮷 路 1 号 \U0001F3ED"
	sheet := pdfSealedSheet()
	sheet.FormData = *form
	sheet.Technician = tech
	sheet.SignerName = tech
	sheet.RatingComment = note
	sheet.HandlingResult = "更换探头 🔧 OK"
	sheet.Parts = []PartLine{{Item: "探头 🌡 Probe", Quantity: 1}}
	in := monthPDFSample()
	in.Technicians[0].Name = tech
	in.Sheets[0].Customer = customer
	in.Complaints[0].Description = note
	month := monthPDFData(in, "approved")
	month.CompanyName = customer
	month.Trail[0].ByName = tech
	month.Trail[1].Comment = note

	render := func(t *testing.T, fn func(*bytes.Buffer) error) (pdf []byte) {
		t.Helper()
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("render panicked: %v", r)
			}
		}()
		return pdfRender(t, fn)
	}
	for _, lang := range []Lang{LangBoth, LangZH, LangEN} {
		for _, doc := range []struct {
			name  string
			fn    func(*bytes.Buffer) error
			wants []string
		}{
			{"form", func(b *bytes.Buffer) error { return RenderForm(b, form, pdfOpts(lang)) },
				[]string{"□祥精密机械厂", "□磊", "上海 □ 路 1 号 □"}},
			{"blank", func(b *bytes.Buffer) error { return RenderForm(b, nil, pdfOpts(lang)) }, nil},
			{"sheet", func(b *bytes.Buffer) error { return RenderSheet(b, sheet, pdfOpts(lang)) },
				[]string{"□祥精密机械厂", "□磊", "客户很满意 □ thanks", "更换探头 □ OK", "探头 □ Probe"}},
			{"month", func(b *bytes.Buffer) error { return RenderMonthReport(b, month, pdfOpts(lang)) },
				[]string{"□祥精密机械厂", "□磊", "客户很满意 □ thanks"}},
		} {
			t.Run(string(lang)+"/"+doc.name, func(t *testing.T) {
				text := poppler(t, render(t, doc.fn), "pdftotext", "-raw")
				pdfMustContain(t, text, doc.wants...)
				for _, r := range text {
					if r > 0xFFFF {
						t.Errorf("%q (U+%04X) extracted: gofpdf cannot embed it", r, r)
					}
				}
			})
		}
	}
}
