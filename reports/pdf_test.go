package reports

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	pdfUpdate    = flag.Bool("update", false, "rewrite the golden files in testdata/")
	pdfWriteDocs = flag.Bool("images", false, "render each document to PNG in ../docs/images/")
)

var pdfZone = time.FixedZone("CST", 8*3600)

// pdfNow is the fixed clock of every test document.
func pdfNow() time.Time { return time.Date(2026, 11, 20, 9, 30, 0, 0, pdfZone) }

func pdfAt(day, hour, min int) *time.Time {
	t := time.Date(2026, 11, day, hour, min, 0, 0, pdfZone)
	return &t
}

func pdfSampleForm() *FormData {
	return &FormData{
		Number:         "SR-202611-0042",
		ReceivedAt:     time.Date(2026, 11, 18, 14, 5, 0, 0, pdfZone),
		Source:         "hotline",
		ServiceMode:    "onsite",
		ServiceType:    "repair",
		Urgency:        "critical",
		Warranty:       "in",
		Chargeable:     true,
		Customer:       "华东精密仪器有限公司",
		SiteAddress:    "上海浦东新区张江路 88 号 3 号楼",
		ContactName:    "王建国",
		ContactPhone:   "021-5080 1234",
		AssetModel:     "“Model X-200” 精密测温仪",
		AssetSerial:    "X200-2025-00917",
		WarrantyUntil:  "2027-06-30",
		CompanyName:    "申江系统工程有限公司",
		Hotline:        "400-820-1234",
		ComplaintLine:  "021-6888 0000",
		CommitmentText: "承诺：接到报修后 2 小时内响应，24 小时内到达现场。We respond within 2 hours and arrive within 24 hours.",
		Location:       pdfZone,
	}
}

// pdfSignaturePNG draws a pen stroke on a transparent background, as a
// phone's signature pad exports it.
func pdfSignaturePNG() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 300, 110))
	ink := color.NRGBA{10, 20, 120, 255}
	for x := 10; x < 290; x++ {
		fx := float64(x)
		y := 55 + 35*math.Sin(fx/23)*math.Cos(fx/61)
		for dy := -2; dy <= 2; dy++ {
			img.SetNRGBA(x, int(y)+dy, ink)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// pdfStampPNG draws a red ring, as a photographed company stamp.
func pdfStampPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 160, 160))
	for y := 0; y < 160; y++ {
		for x := 0; x < 160; x++ {
			r := math.Hypot(float64(x-80), float64(y-80))
			c := color.RGBA{250, 248, 245, 255}
			if (r > 62 && r < 72) || (r < 14) {
				c = color.RGBA{210, 30, 40, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func pdfSealedSheet() *SheetData {
	return &SheetData{
		FormData:            *pdfSampleForm(),
		SheetID:             "0193a7c2-5f1e-7b3a-9c4d-2e8f6a1b0c9d",
		Status:              "received",
		Technician:          "李明",
		ArrivedAt:           pdfAt(19, 9, 40),
		DepartedAt:          pdfAt(19, 11, 15),
		FaultSymptoms:       "设备开机后温度读数跳变，偶发“E-07”报警；客户称上周起出现。",
		InspectionRecord:    "检查电源模块输出 12.1 V 正常；传感器接头氧化，接触电阻偏大。清洁后复测仍有跳变，判断为探头老化。",
		HandlingResult:      "更换温度探头（PT100），校准后连续运行 30 分钟读数稳定，报警消除。",
		Parts:               []PartLine{{Item: "PT100 温度探头 Probe", Quantity: 1, SerialRemoved: "PT-0021877", SerialFitted: "PT-0030412"}},
		LabourFen:           20000,
		PartsFen:            35050,
		ShippingFen:         0,
		Rating:              5,
		RatingComment:       "响应及时，处理专业。",
		SignerName:          "王建国",
		Signature:           pdfSignaturePNG(),
		Stamp:               pdfStampPNG(),
		TechnicianSignature: pdfSignaturePNG(),
		SignedAt:            pdfAt(19, 11, 10),
		ServerReceivedAt:    pdfAt(20, 8, 2),
		Complete:            true,
		Fingerprint:         "3f2a9c0177b4e0d25566778899aabbccddeeff00112233445566778899aabbcc",
		VerifyURL:           "https://service.example.cn/verify/0193a7c2-5f1e-7b3a-9c4d-2e8f6a1b0c9d?fp=3f2a9c0177b4e0d2",
		Device: &DeviceSignature{Signed: true, Valid: true, User: "李明", Device: "Mate 60", At: pdfAt(19, 11, 10),
			ClockOffset: func() *time.Duration { d := 40 * time.Second; return &d }()},
	}
}

func pdfIncompleteSheet() *SheetData {
	s := pdfSealedSheet()
	s.Complete = false
	s.Status = "signed"
	s.Stamp = nil
	s.Rating = 0
	s.RatingComment = ""
	s.Missing = []string{"rating", "stamp_blob"}
	return s
}

// pdfLongSheet has an inspection record far longer than one page holds.
func pdfLongSheet() *SheetData {
	s := pdfSealedSheet()
	var b strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "第 %d 步：检查控制柜第 %d 路接线端子，测量绝缘电阻 >20 MΩ，紧固螺丝，记录 Step %d checked.\n", i, i, i)
	}
	s.InspectionRecord = b.String()
	return s
}

func pdfOpts(l Lang) Options { return Options{Lang: l, Now: pdfNow} }

func pdfRender(t testing.TB, fn func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := fn(&b); err != nil {
		t.Fatalf("render: %v", err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("%PDF-")) {
		t.Fatalf("output is not a PDF")
	}
	return b.Bytes()
}

// poppler runs a poppler-utils tool on pdf and returns its output.
func poppler(t *testing.T, pdf []byte, tool string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s not found: install poppler-utils (apt-get install poppler-utils)", tool)
	}
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	args = append(args, path)
	if tool == "pdftotext" {
		args = append(args, "-")
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return string(out)
}

func pdfPageCount(t *testing.T, pdf []byte) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindStringSubmatch(poppler(t, pdf, "pdfinfo"))
	if m == nil {
		t.Fatal("pdfinfo printed no page count")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pdfSquash removes all whitespace, because pdftotext may break or space
// CJK text differently from how it was written.
func pdfSquash(s string) string { return strings.Join(strings.Fields(s), "") }

func pdfMustContain(t *testing.T, text string, wants ...string) {
	t.Helper()
	sq := pdfSquash(text)
	for _, w := range wants {
		if !strings.Contains(sq, pdfSquash(w)) {
			t.Errorf("text lacks %q", w)
		}
	}
}

func pdfMustNotContain(t *testing.T, text string, bad ...string) {
	t.Helper()
	sq := pdfSquash(text)
	for _, w := range bad {
		if strings.Contains(sq, pdfSquash(w)) {
			t.Errorf("text has %q", w)
		}
	}
}

func TestSheetText(t *testing.T) {
	pdf := pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, pdfSealedSheet(), pdfOpts(LangBoth)) })
	if n := pdfPageCount(t, pdf); n != 1 {
		t.Errorf("normal sheet has %d pages, want 1", n)
	}
	text := poppler(t, pdf, "pdftotext", "-layout")
	pdfMustContain(t, text,
		"售后服务信息反馈单", "Service Feedback Sheet",
		"故障现象 / Fault symptoms", "检查记录 / Inspection record", "处理结果 / Handling result",
		"客户签字 / Customer signature", "客户单位盖章 / Company stamp",
		"华东精密仪器有限公司", "上海浦东新区张江路 88 号", "“Model X-200” 精密测温仪",
		"SR-202611-0042", "2026-11-18 14:05", "现场维修 / On-site",
		"偶发“E-07”报警", "更换温度探头（PT100）", "PT-0030412",
		"¥200.00", "¥350.50", "¥550.50",
		"3F2A 9C01 77B4 E0D2", "2026-11-19 11:10", "2026-11-20 08:02",
		"不完整的反馈单无效 / Incomplete sheets are invalid", "021-6888 0000",
		"承诺：接到报修后 2 小时内响应",
	)
	pdfMustNotContain(t, text, "<nil>", "null", "INCOMPLETE", "不完整 / INCOMPLETE")

	fonts := poppler(t, pdf, "pdffonts")
	for _, f := range []string{"dejavusans", "dejavusansB", "droidsansfallback"} {
		// name, type, encoding, then emb, sub, uni: embedded, with a
		// Unicode map (so text can be searched and copied).
		if !regexp.MustCompile(`(?m)^utf8` + f + `\s+CID TrueType\s+Identity-H\s+yes\s+\w+\s+yes`).MatchString(fonts) {
			t.Errorf("pdffonts does not show %s embedded with a Unicode map:\n%s", f, fonts)
		}
	}

	imgs := poppler(t, pdf, "pdfimages", "-list")
	// Header lines, then one row per image: signature (with its alpha
	// mask), stamp, technician signature.
	var sizes []string
	for _, line := range strings.Split(imgs, "\n")[2:] {
		f := strings.Fields(line)
		if len(f) > 4 && f[2] == "image" {
			sizes = append(sizes, f[3]+"x"+f[4])
		}
	}
	if got := strings.Join(sizes, ","); !strings.Contains(got, "300x110") || !strings.Contains(got, "160x160") {
		t.Errorf("pdfimages lists %q, want the 300x110 signature and the 160x160 stamp:\n%s", got, imgs)
	}
}

func TestIncompleteSheet(t *testing.T) {
	pdf := pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, pdfIncompleteSheet(), pdfOpts(LangBoth)) })
	text := poppler(t, pdf, "pdftotext", "-layout")
	pdfMustContain(t, text, "不完整 / INCOMPLETE", "满意度 / satisfaction rating", "客户盖章 / company stamp")
	imgs := poppler(t, pdf, "pdfimages", "-list")
	if strings.Contains(imgs, "160   160") {
		t.Errorf("a sheet without a stamp shows a stamp image:\n%s", imgs)
	}
}

func TestLongSheetFlowsOntoSecondPage(t *testing.T) {
	pdf := pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, pdfLongSheet(), pdfOpts(LangBoth)) })
	n := pdfPageCount(t, pdf)
	if n != 2 {
		t.Fatalf("long sheet has %d pages, want 2", n)
	}
	all := poppler(t, pdf, "pdftotext")
	for i := 1; i <= 50; i++ {
		pdfMustContain(t, all, fmt.Sprintf("Step %d checked.", i))
	}
	sigPage := 0
	for p := 1; p <= n; p++ {
		text := poppler(t, pdf, "pdftotext", "-f", strconv.Itoa(p), "-l", strconv.Itoa(p))
		// The header is repeated on every page.
		pdfMustContain(t, text, "售后服务信息反馈单", "SR-202611-0042")
		has := 0
		for _, l := range []string{"客户签字 / Customer signature", "客户单位盖章 / Company stamp", "工程师签字 / Technician signature", "姓名 / Name", "日期 / Date"} {
			if strings.Contains(pdfSquash(text), pdfSquash(l)) {
				has++
			}
		}
		if has > 0 && has < 5 {
			t.Errorf("page %d holds only part of the signature block", p)
		}
		if has == 5 {
			sigPage = p
		}
	}
	if sigPage != 2 {
		t.Errorf("signature block on page %d, want 2 (after the record)", sigPage)
	}
	last := poppler(t, pdf, "pdftotext", "-f", "2", "-l", "2")
	pdfMustContain(t, last, "检查记录 / Inspection record (续 / cont.)")
}

func TestForms(t *testing.T) {
	t.Run("prefilled", func(t *testing.T) {
		pdf := pdfRender(t, func(b *bytes.Buffer) error { return RenderForm(b, pdfSampleForm(), pdfOpts(LangBoth)) })
		if n := pdfPageCount(t, pdf); n != 1 {
			t.Errorf("form has %d pages, want 1", n)
		}
		text := poppler(t, pdf, "pdftotext", "-layout")
		pdfMustContain(t, text, "华东精密仪器有限公司", "上海浦东新区张江路 88 号", "王建国", "X200-2025-00917",
			"故障现象 / Fault symptoms", "客户满意度", "Satisfaction", "5 很好", "工程师签字 / Technician signature", "是 / Yes")
		pdfMustNotContain(t, text, "<nil>", "null", "¥", "封签指纹")
	})
	t.Run("blank", func(t *testing.T) {
		pdf := pdfRender(t, func(b *bytes.Buffer) error { return RenderForm(b, nil, pdfOpts(LangBoth)) })
		if n := pdfPageCount(t, pdf); n != 1 {
			t.Errorf("blank form has %d pages, want 1", n)
		}
		text := poppler(t, pdf, "pdftotext", "-layout")
		pdfMustContain(t, text, "售后服务信息反馈单", "Service Feedback Sheet", "客户单位 Customer", "□ 是 Yes □ 否 No")
		pdfMustNotContain(t, text, "<nil>", "null", "0001-01-01")
	})
	t.Run("missing optional data", func(t *testing.T) {
		f := pdfSampleForm()
		f.AssetModel, f.AssetSerial, f.WarrantyUntil, f.ContactPhone, f.Location = "", "", "", "", nil
		text := poppler(t, pdfRender(t, func(b *bytes.Buffer) error { return RenderForm(b, f, pdfOpts(LangBoth)) }), "pdftotext", "-layout")
		pdfMustContain(t, text, "2026-11-18 06:05") // UTC without a location
		pdfMustNotContain(t, text, "<nil>", "null")
	})
}

func TestLabelLanguages(t *testing.T) {
	en := []string{"Service Feedback Sheet", "Fault symptoms", "Customer signature", "Incomplete sheets are invalid", "Satisfaction"}
	zh := []string{"售后服务信息反馈单", "故障现象", "客户签字", "不完整的反馈单无效", "客户满意度"}
	t.Run("zh", func(t *testing.T) {
		text := poppler(t, pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, pdfIncompleteSheet(), pdfOpts(LangZH)) }), "pdftotext")
		pdfMustContain(t, text, zh...)
		pdfMustContain(t, text, "不完整", "“Model X-200”") // data stays as entered
		pdfMustNotContain(t, text, append(en, "INCOMPLETE", "Missing")...)
	})
	t.Run("en", func(t *testing.T) {
		text := poppler(t, pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, pdfIncompleteSheet(), pdfOpts(LangEN)) }), "pdftotext")
		pdfMustContain(t, text, en...)
		pdfMustContain(t, text, "INCOMPLETE", "华东精密仪器有限公司") // data stays as entered
		pdfMustNotContain(t, text, append(zh, "不完整", "缺少")...)
	})
	t.Run("unknown", func(t *testing.T) {
		if err := RenderForm(&bytes.Buffer{}, nil, Options{Lang: "fr"}); err == nil {
			t.Error("an unknown language rendered")
		}
	})
}

func TestSignatureImages(t *testing.T) {
	webp, err := os.ReadFile("testdata/signature.webp")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("webp", func(t *testing.T) {
		s := pdfSealedSheet()
		s.Signature = webp
		imgs := poppler(t, pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, s, pdfOpts(LangBoth)) }), "pdfimages", "-list")
		if !strings.Contains(imgs, " 240    90 ") {
			t.Errorf("the 240x90 WebP signature is not in the PDF:\n%s", imgs)
		}
	})
	bad := map[string][]byte{
		"text":           []byte("not an image at all"),
		"empty":          {},
		"truncated png":  pdfSignaturePNG()[:40],
		"truncated webp": webp[:30],
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			s := pdfSealedSheet()
			s.Signature = data
			var b bytes.Buffer
			err := RenderSheet(&b, s, pdfOpts(LangBoth))
			if err == nil {
				t.Fatal("rendered a sheet whose signature is not an image")
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", b.Len())
			}
			if name != "empty" && !errors.Is(err, ErrNotImage) {
				t.Errorf("error %v is not ErrNotImage", err)
			}
		})
	}
}

// TestGolden compares each document's text layout and bytes with the files
// in testdata, so that layout changes are seen and deliberate. Regenerate
// with: go test ./reports -run TestGolden -pdfUpdate
func TestGolden(t *testing.T) {
	docs := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"form-blank", func(b *bytes.Buffer) error { return RenderForm(b, nil, pdfOpts(LangBoth)) }},
		{"form-prefilled", func(b *bytes.Buffer) error { return RenderForm(b, pdfSampleForm(), pdfOpts(LangBoth)) }},
		{"sheet-sealed", func(b *bytes.Buffer) error { return RenderSheet(b, pdfSealedSheet(), pdfOpts(LangBoth)) }},
		{"sheet-incomplete", func(b *bytes.Buffer) error { return RenderSheet(b, pdfIncompleteSheet(), pdfOpts(LangBoth)) }},
		{"sheet-long", func(b *bytes.Buffer) error { return RenderSheet(b, pdfLongSheet(), pdfOpts(LangBoth)) }},
	}
	for _, d := range docs {
		t.Run(d.name, func(t *testing.T) {
			pdf := pdfRender(t, d.render)
			again := pdfRender(t, d.render)
			if !bytes.Equal(pdf, again) {
				t.Fatal("two renders with the same pdfNow clock differ")
			}
			text := poppler(t, pdf, "pdftotext", "-layout")
			sum := fmt.Sprintf("%x\n", sha256.Sum256(pdf))
			textPath := filepath.Join("testdata", d.name+".txt")
			sumPath := filepath.Join("testdata", d.name+".pdf.sha256")
			if *pdfUpdate {
				if err := os.WriteFile(textPath, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(sumPath, []byte(sum), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if *pdfWriteDocs {
				out := filepath.Join("..", "docs", "images", d.name)
				if err := os.WriteFile(out+".pdf", pdf, 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command("pdftoppm", "-r", "60", "-png", out+".pdf", out) // out-1.png, out-2.png, ...
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("pdftoppm: %v\n%s", err, b)
				}
				os.Remove(out + ".pdf")
			}
			wantText, err := os.ReadFile(textPath)
			if err != nil {
				t.Fatalf("%v (run with -pdfUpdate to create it)", err)
			}
			if text != string(wantText) {
				t.Errorf("text layout differs from %s (run with -update if the change is intended):\n%s", textPath, text)
			}
			wantSum, err := os.ReadFile(sumPath)
			if err != nil {
				t.Fatalf("%v (run with -pdfUpdate to create it)", err)
			}
			if sum != string(wantSum) {
				t.Errorf("PDF bytes differ from %s (run with -update if the change is intended)", sumPath)
			}
		})
	}
}

func TestDraftWatermark(t *testing.T) {
	o := pdfOpts(LangBoth)
	o.Draft = true
	text := poppler(t, pdfRender(t, func(b *bytes.Buffer) error { return RenderForm(b, nil, o) }), "pdftotext", "-raw")
	pdfMustContain(t, text, "草稿 / DRAFT")
}

func BenchmarkRenderSheet(b *testing.B) {
	s := pdfSealedSheet()
	if _, err := loadFonts(); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := RenderSheet(&buf, s, pdfOpts(LangBoth)); err != nil {
			b.Fatal(err)
		}
	}
}
