package mobileapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldsync/reports"
	"fieldsync/schema"
)

// doc builds a record the way the store hands it out: decoded from JSON with numbers kept.
func doc(t *testing.T, js string) schema.Doc {
	t.Helper()
	d, err := schema.DecodeDoc([]byte(js))
	if err != nil {
		t.Fatalf("%v in %s", err, js)
	}
	return d
}

func pngBytes(c color.Color) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 120, 60))
	for x := 10; x < 110; x++ {
		img.Set(x, 30+(x%7), c)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

const (
	sigSum   = "1111111111111111111111111111111111111111111111111111111111111111"
	stampSum = "2222222222222222222222222222222222222222222222222222222222222222"
	techSum  = "3333333333333333333333333333333333333333333333333333333333333333"
)

func sampleRecords(t *testing.T) (sheet, ticket, customer, site, asset, tech schema.Doc) {
	sheet = doc(t, `{"id": "0190c0de-aaaa-7000-8000-000000000001", "ticket_id": "t1", "technician_id": "u1", "version": 3,
		"service_mode": "onsite", "arrived_at": "2026-11-18T06:30:00.000Z", "departed_at": "2026-11-18T08:05:00.000Z",
		"fault_symptoms": "触摸屏无响应", "inspection_record": "排线松动，重新插接", "handling_result": "已修复 / fixed",
		"parts": [{"item": "触摸屏排线", "quantity": 2, "serial_removed": "OLD-1", "serial_fitted": "NEW-1"}, {"item": "fuse", "quantity": 1}],
		"labour_fen": 8000, "parts_fen": 12050, "shipping_fen": 0, "rating": 5, "rating_comment": "很满意",
		"signer_name": "孙丽", "signature_blob": "`+sigSum+`", "stamp_blob": "`+stampSum+`", "technician_signature_blob": "`+techSum+`",
		"signed_at": "2026-11-18T08:00:00.000Z", "received_at": "2026-11-20T01:00:00.000Z",
		"complete": true, "missing": [], "fingerprint": "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		"status": "signed"}`)
	ticket = doc(t, `{"id": "t1", "number": "SR-202611-0042", "received_at": "2026-11-18T01:05:00.000Z", "source": "technician_report",
		"service_mode": "phone", "service_type": "inspection", "urgency": "critical", "warranty": "in", "chargeable": true,
		"customer_id": "c1", "site_id": "s1", "asset_id": "a1"}`)
	customer = doc(t, `{"id": "c1", "name": "华东精密仪器有限公司", "phone": "021-5080-1234", "address": "上海市浦东新区张江路 88 号"}`)
	site = doc(t, `{"id": "s1", "customer_id": "c1", "name": "张江研发中心", "address": "上海市浦东新区张江路 88 号 3 号楼",
		"contacts": [{"name": "孙丽", "phone": "139-1234-5678"}, {"name": "周明", "phone": "137-0000-1111"}]}`)
	asset = doc(t, `{"id": "a1", "model": "PLC-X200", "serial": "HX-2023-0001", "warranty_until": "2027-06-30"}`)
	tech = doc(t, `{"id": "u1", "name": "张伟 Zhang Wei", "role": "technician"}`)
	return
}

func blobsOf(m map[string][]byte) func(string) ([]byte, error) {
	return func(sum string) ([]byte, error) {
		if b, ok := m[sum]; ok {
			return b, nil
		}
		return nil, schema.Errorf(schema.CodeNotFound, "blob %s is not held whole", sum)
	}
}

func TestSheetData(t *testing.T) {
	sheet, ticket, customer, site, asset, tech := sampleRecords(t)
	st := schema.NewSettings(map[string]any{"company_name": "申江系统工程有限公司"})
	sig, stamp, ts := pngBytes(color.Black), pngBytes(color.RGBA{200, 0, 0, 255}), pngBytes(color.RGBA{0, 0, 150, 255})
	s, err := sheetData(sheet, ticket, customer, site, asset, tech, st, reports.LangBoth, "https://svc.example.com/verify/x",
		blobsOf(map[string][]byte{sigSum: sig, stampSum: stamp, techSum: ts}))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) *time.Time {
		tm, _ := time.Parse(time.RFC3339, s)
		return &tm
	}
	want := &reports.SheetData{
		FormData: reports.FormData{
			Number: "SR-202611-0042", ReceivedAt: *at("2026-11-18T01:05:00Z"), Source: "technician_report",
			ServiceMode: "onsite", // the visit's mode, not the ticket's
			ServiceType: "inspection", Urgency: "critical", Warranty: "in", Chargeable: true,
			Customer: "华东精密仪器有限公司", SiteAddress: "上海市浦东新区张江路 88 号 3 号楼 (张江研发中心)",
			ContactName: "孙丽", ContactPhone: "139-1234-5678",
			AssetModel: "PLC-X200", AssetSerial: "HX-2023-0001", WarrantyUntil: "2027-06-30",
			CompanyName: "申江系统工程有限公司", Hotline: "400-800-1234", ComplaintLine: "400-800-5678",
			CommitmentText: st.String("commitment_text"), Location: st.Location(),
		},
		SheetID: "0190c0de-aaaa-7000-8000-000000000001", Status: "signed", Technician: "张伟 Zhang Wei",
		ArrivedAt: at("2026-11-18T06:30:00Z"), DepartedAt: at("2026-11-18T08:05:00Z"),
		FaultSymptoms: "触摸屏无响应", InspectionRecord: "排线松动，重新插接", HandlingResult: "已修复 / fixed",
		Parts:     []reports.PartLine{{Item: "触摸屏排线", Quantity: 2, SerialRemoved: "OLD-1", SerialFitted: "NEW-1"}, {Item: "fuse", Quantity: 1}},
		LabourFen: 8000, PartsFen: 12050, Rating: 5, RatingComment: "很满意", SignerName: "孙丽",
		Signature: sig, Stamp: stamp, TechnicianSignature: ts,
		SignedAt: at("2026-11-18T08:00:00Z"), ServerReceivedAt: at("2026-11-20T01:00:00Z"),
		Complete: true, Missing: []string{}, Fingerprint: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		VerifyURL: "https://svc.example.com/verify/x",
	}
	gj, _ := json.MarshalIndent(s, "", " ")
	wj, _ := json.MarshalIndent(want, "", " ")
	if !bytes.Equal(gj, wj) || s.Location.String() != "Asia/Shanghai" {
		t.Errorf("sheetData:\n got %s\nwant %s", gj, wj)
	}
}

// TestSheetDataMissingOptional: a draft with no asset, no site, no technician record and no
// images maps to empty values, never "<nil>".
func TestSheetDataMissingOptional(t *testing.T) {
	sheet := doc(t, `{"id": "sh1", "ticket_id": "t1", "status": "draft", "complete": false, "missing": ["signature_blob", "rating"],
		"absent_reason": "客户不在现场"}`)
	ticket := doc(t, `{"id": "t1", "number": "SR-202611-0043", "customer_id": "c1", "created_at": "2026-11-18T01:05:00.000Z", "warranty": "unknown"}`)
	customer := doc(t, `{"id": "c1", "name": "杭州西溪数据中心", "address": "浙江省杭州市西湖区文三路 90 号"}`)
	s, err := sheetData(sheet, ticket, customer, nil, nil, nil, schema.NewSettings(nil), reports.LangEN, "", blobsOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.AssetModel != "" || s.AssetSerial != "" || s.WarrantyUntil != "" || s.ContactName != "" || s.ContactPhone != "" || s.Technician != "" {
		t.Errorf("missing records should leave empty boxes: %+v", s.FormData)
	}
	if s.SiteAddress != "浙江省杭州市西湖区文三路 90 号" {
		t.Errorf("without a site the address is the customer's: %q", s.SiteAddress)
	}
	if s.ReceivedAt.IsZero() || s.Warranty != "unknown" {
		t.Errorf("received %v (want created_at when received_at is absent), warranty %q", s.ReceivedAt, s.Warranty)
	}
	if s.ArrivedAt != nil || s.SignedAt != nil || s.Signature != nil || s.Rating != 0 {
		t.Errorf("absent times and images must be nil: %+v", s)
	}
	if s.Complete || strings.Join(s.Missing, ",") != "signature_blob,rating" || s.RatingComment != "客户不在现场" {
		t.Errorf("complete %v, missing %v, comment %q", s.Complete, s.Missing, s.RatingComment)
	}
}

func TestSheetDataBrokenBlob(t *testing.T) {
	sheet, ticket, customer, site, asset, tech := sampleRecords(t)
	_, err := sheetData(sheet, ticket, customer, site, asset, tech, schema.NewSettings(nil), reports.LangBoth, "",
		blobsOf(map[string][]byte{sigSum: pngBytes(color.Black), techSum: pngBytes(color.Black)}))
	if err == nil || !strings.Contains(err.Error(), "stamp_blob") || !strings.Contains(err.Error(), stampSum) {
		t.Fatalf("a stamp missing from the store: err %v, want one naming stamp_blob and its sum", err)
	}
}

func TestFormDataContacts(t *testing.T) {
	site := doc(t, `{"name": "一号厂房", "address": "苏州工业园区", "contacts": [{"name": "周明", "phone": "137"}, {"name": "吴昊", "phone": "136"}]}`)
	customer := doc(t, `{"name": "天工", "phone": "0512"}`)
	for _, c := range []struct{ ticket, name, phone string }{
		{`{}`, "周明", "137"},                                             // the site's first contact
		{`{"contact_name": "吴昊"}`, "吴昊", "136"},                         // the named contact's phone
		{`{"contact_name": "钱七"}`, "钱七", "0512"},                        // someone else: not a site contact's phone
		{`{"contact_name": "钱七", "contact_phone": "188"}`, "钱七", "188"}, // the ticket's own
	} {
		f := formData(doc(t, c.ticket), customer, site, nil, schema.NewSettings(nil), reports.LangZH)
		if f.ContactName != c.name || f.ContactPhone != c.phone {
			t.Errorf("ticket %s: contact %q %q, want %q %q", c.ticket, f.ContactName, f.ContactPhone, c.name, c.phone)
		}
	}
}

// TestSheetPDFRendered renders mapped records and checks the PDF with poppler: the data,
// the images, the INCOMPLETE mark of an incomplete sheet.
func TestSheetPDFRendered(t *testing.T) {
	for _, tool := range []string{"pdftotext", "pdfimages", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install poppler-utils)", tool)
		}
	}
	sheet, ticket, customer, site, asset, tech := sampleRecords(t)
	blobs := blobsOf(map[string][]byte{sigSum: pngBytes(color.Black), stampSum: pngBytes(color.RGBA{200, 0, 0, 255}), techSum: pngBytes(color.Black)})
	render := func(sheet schema.Doc, lang reports.Lang) (string, string) {
		s, err := sheetData(sheet, ticket, customer, site, asset, tech, schema.NewSettings(nil), lang, "https://svc.example.com/verify/"+sheet.Str("id"), blobs)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := reports.RenderSheet(&b, s, reports.Options{Lang: lang}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "sheet.pdf")
		os.WriteFile(path, b.Bytes(), 0o600)
		text, err := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", path, "-").CombinedOutput()
		if err != nil {
			t.Fatalf("pdftotext: %v %s", err, text)
		}
		images, err := exec.Command("pdfimages", "-list", path).CombinedOutput()
		if err != nil {
			t.Fatalf("pdfimages: %v %s", err, images)
		}
		return string(text), string(images)
	}
	text, images := render(sheet, reports.LangBoth)
	flat := strings.Join(strings.Fields(text), "")
	for _, want := range []string{"SR-202611-0042", "华东精密仪器有限公司", "触摸屏排线", "NEW-1", "孙丽", "张伟ZhangWei",
		"2026-11-1814:30", // arrived 06:30 UTC, printed in Asia/Shanghai
		"¥80.00", "¥120.50", "ABCD", "abcd"} {
		if !strings.Contains(flat, want) && !strings.Contains(strings.ToLower(flat), strings.ToLower(want)) {
			t.Errorf("sheet: no %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "INCOMPLETE") {
		t.Errorf("a complete sheet is marked INCOMPLETE:\n%s", text)
	}
	// signature, stamp and technician signature (a PNG with alpha adds an smask row each)
	if n := countImages(images); n != 3 {
		t.Errorf("pdfimages lists %d images, want the signature, the stamp and the technician's signature:\n%s", n, images)
	}

	inc := sheet.Clone()
	inc["complete"], inc["missing"], inc["stamp_blob"] = false, []any{"stamp_blob"}, ""
	text, images = render(inc, reports.LangEN)
	if n := countImages(images); n != 2 {
		t.Errorf("a sheet without a stamp has %d images, want 2:\n%s", n, images)
	}
	if !strings.Contains(text, "INCOMPLETE") || !strings.Contains(text, "company stamp") {
		t.Errorf("an incomplete sheet: want INCOMPLETE and the missing company stamp named:\n%s", text)
	}
}

// countImages counts the rows of type image in `pdfimages -list` output.
func countImages(list string) int {
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "image" {
			n++
		}
	}
	return n
}

func TestPDFLangValues(t *testing.T) {
	// PDFLang needs an engine only for the setting; the query values are checked first.
	for _, q := range []string{"zh", "en", "both"} {
		if l, err := PDFLang(nil, q); err != nil || string(l) != q {
			t.Errorf("PDFLang(%q) = %q, %v", q, l, err)
		}
	}
	_, err := PDFLang(nil, "fr")
	var se *schema.Error
	if !errors.As(err, &se) || se.Field != "lang" || se.Code != schema.CodeValidation || !strings.Contains(se.Message, `"fr"`) {
		t.Errorf("PDFLang(fr): %v, want a validation error naming lang and the value", err)
	}
}

func TestContentDisposition(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"SR-202611-0042-form.pdf", `inline; filename="SR-202611-0042-form.pdf"`},
		{"报修单 SR-1.pdf", `inline; filename="____SR-1.pdf"; filename*=UTF-8''%E6%8A%A5%E4%BF%AE%E5%8D%95%20SR-1.pdf`},
		{`a"b\c/d.pdf`, `inline; filename="a_b_c_d.pdf"; filename*=UTF-8''a%22b%5Cc%2Fd.pdf`},
	} {
		if got := ContentDisposition(c.name); got != c.want {
			t.Errorf("ContentDisposition(%q)\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestVerifyURL(t *testing.T) {
	for _, c := range []struct{ base, id, fp, want string }{
		{"https://svc.example.com", "0190-ab", "abcd", "https://svc.example.com/verify/0190-ab/abcd"},
		{"http://127.0.0.1:8080/", "s1", "", "http://127.0.0.1:8080/verify/s1"},
		{"https://svc.example.com", "a/b c", "", "https://svc.example.com/verify/a%2Fb%20c"},
		{"", "s1", "abcd", ""},
	} {
		if got := verifyURL(c.base, c.id, c.fp); got != c.want {
			t.Errorf("verifyURL(%q, %q, %q) = %q, want %q", c.base, c.id, c.fp, got, c.want)
		}
	}
}
