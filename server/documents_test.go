package server

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// pdfText runs pdftotext on a PDF and returns its text (layout kept), failing the test when
// poppler cannot read it: a broken PDF fails here.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	return poppler(t, pdf, "pdftotext", "-layout", "-enc", "UTF-8", "{}", "-")
}

// pdfPages returns the page count pdfinfo reports.
func pdfPages(t *testing.T, pdf []byte) string {
	t.Helper()
	info := poppler(t, pdf, "pdfinfo", "{}")
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("pdfinfo reports no page count:\n%s", info)
	}
	return m[1]
}

func poppler(t *testing.T, pdf []byte, tool string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed (apt-get install poppler-utils)", tool)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %.80q", pdf)
	}
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if a == "{}" {
			args[i] = path
		}
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	return string(out)
}

// squash drops white space, since pdftotext spaces CJK text as it pleases.
func squash(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// demoTicket returns the demo ticket whose fault symptoms start with prefix.
func demoTicket(t *testing.T, env *testEnv, prefix string) schema.Doc {
	t.Helper()
	list, err := env.srv.Engine.List(context.Background(), syncer.Query{Entity: schema.EntTicket})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		if strings.HasPrefix(d.Str("fault_symptoms"), prefix) {
			return d
		}
	}
	t.Fatalf("no demo ticket with symptoms %q", prefix)
	return nil
}

func testTicketFormPDF(t *testing.T, env *testEnv) {
	tok := env.login("coord", DemoPassword)
	tk := demoTicket(t, env, "触摸屏无响应")
	number := tk.Str("number")
	if !regexp.MustCompile(`^SR-\d{6}-\d{4}$`).MatchString(number) {
		t.Fatalf("demo ticket number %q", number)
	}

	for _, key := range []string{tk.Str("id"), number} {
		r := env.must(env.do("GET", "/api/v1/tickets/"+key+"/form.pdf", tok, nil), 200)
		if ct := r.Header["Content-Type"]; ct != "application/pdf" {
			t.Errorf("Content-Type %q, want application/pdf", ct)
		}
		if cd, want := r.Header["Content-Disposition"], `inline; filename="`+number+`-form.pdf"`; cd != want {
			t.Errorf("Content-Disposition %q, want %q", cd, want)
		}
		if cc := r.Header["Cache-Control"]; !strings.Contains(cc, "no-store") {
			t.Errorf("Cache-Control %q: a form with customer details must not be cached", cc)
		}
		if p := pdfPages(t, r.Raw); p != "1" {
			t.Errorf("the form has %s pages, want 1", p)
		}
		text := pdfText(t, r.Raw)
		flat := squash(text)
		received := tk.Time("received_at").In(mustZone(t, "Asia/Shanghai")).Format("2006-01-02 15:04")
		for _, want := range []string{
			number, "华东精密仪器有限公司", "上海市浦东新区张江路88号", "张江研发中心", // customer and site address
			"孙丽", "139-1234-5678", "PLC-X200控制柜", "HX-2023-0001", "2027-06-30", // contact and equipment
			"特急", "Critical", "现场维修", "On-site", // critical, onsite: codes shown as labels
			"故障现象", "Faultsymptoms", "客户单位", "Customer",
			squash(received),                             // the company's time zone, not UTC
			"华东系统工程有限公司", "400-800-1234", "400-800-5678", // company settings
		} {
			if !strings.Contains(flat, want) {
				t.Errorf("GET form.pdf by %s: the text has no %q:\n%s", key, want, text)
			}
		}
		for _, bad := range []string{"<nil>", "null", "onsite", "critical"} {
			if strings.Contains(text, bad) {
				t.Errorf("the form shows %q:\n%s", bad, text)
			}
		}
	}
}

// TestDocuments runs the document tests on one demo company (seeding it is slow under
// -race); the language test runs last, since it changes the pdf_lang setting.
func TestDocuments(t *testing.T) {
	env := newEnv(t, true)
	t.Run("ticket form", func(t *testing.T) { testTicketFormPDF(t, env) })
	t.Run("form without asset", func(t *testing.T) { testFormPDFNoAsset(t, env) })
	t.Run("blank form", func(t *testing.T) { testBlankFormPDF(t, env) })
	t.Run("errors", func(t *testing.T) { testDocumentErrors(t, env) })
	t.Run("device scope", func(t *testing.T) { testMobileSheetPDFScope(t, env) })
	t.Run("InScope", func(t *testing.T) { testInScope(t, env) })
	t.Run("sheet", func(t *testing.T) { testSheetPDF(t, env) })
	t.Run("languages", func(t *testing.T) { testFormPDFLanguages(t, env) })
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// testFormPDFNoAsset: a ticket with no asset and no phone prints those boxes empty.
func testFormPDFNoAsset(t *testing.T, env *testEnv) {
	tok := env.login("coord", DemoPassword)
	cust := env.must(env.do("POST", "/api/v1/customers", tok, map[string]any{"name": "宁波港务集团", "address": "浙江省宁波市北仑区"}), 201)
	tk := env.must(env.do("POST", "/api/v1/tickets", tok, map[string]any{"customer_id": str(cust.Body, "id"),
		"fault_symptoms": "闸机无法开启", "urgency": "normal", "service_mode": "phone"}), 201)
	r := env.must(env.do("GET", "/api/v1/tickets/"+str(tk.Body, "id")+"/form.pdf?lang=zh", tok, nil), 200)
	text := pdfText(t, r.Raw)
	flat := squash(text)
	for _, want := range []string{str(tk.Body, "number"), "宁波港务集团", "浙江省宁波市北仑区", "电话服务"} {
		if !strings.Contains(flat, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
	for _, bad := range []string{"<nil>", "null", "0001-01-01", "undefined"} {
		if strings.Contains(text, bad) {
			t.Errorf("a missing value printed as %q:\n%s", bad, text)
		}
	}
}

func testFormPDFLanguages(t *testing.T, env *testEnv) {
	tok := env.login("coord", DemoPassword)
	tk := demoTicket(t, env, "触摸屏无响应")
	path := "/api/v1/tickets/" + tk.Str("id") + "/form.pdf"
	zhLabels := []string{"售后服务信息反馈单", "故障现象", "客户单位", "服务请求", "客户签字"}
	enLabels := []string{"Service Feedback Sheet", "Fault symptoms", "Customer signature", "Log number"}

	en := pdfText(t, env.must(env.do("GET", path+"?lang=en", tok, nil), 200).Raw)
	for _, l := range zhLabels {
		if strings.Contains(squash(en), squash(l)) {
			t.Errorf("?lang=en: Chinese label %q printed", l)
		}
	}
	for _, l := range enLabels {
		if !strings.Contains(en, l) {
			t.Errorf("?lang=en: no %q", l)
		}
	}
	if !strings.Contains(squash(en), "华东精密仪器有限公司") {
		t.Errorf("?lang=en: data is printed as entered, but the customer's name is missing:\n%s", en)
	}

	zh := pdfText(t, env.must(env.do("GET", path+"?lang=zh", tok, nil), 200).Raw)
	for _, l := range enLabels {
		if strings.Contains(zh, l) {
			t.Errorf("?lang=zh: English label %q printed", l)
		}
	}

	// The setting chooses when the query does not.
	admin := env.login("admin", DemoPassword)
	env.must(env.do("PUT", "/api/v1/settings", admin, map[string]any{"pdf_lang": "en"}), 200)
	def := pdfText(t, env.must(env.do("GET", path, tok, nil), 200).Raw)
	if strings.Contains(squash(def), "故障现象") || !strings.Contains(def, "Fault symptoms") {
		t.Errorf("pdf_lang=en: the form without ?lang is not English only:\n%s", def)
	}
	both := pdfText(t, env.must(env.do("GET", path+"?lang=both", tok, nil), 200).Raw)
	if !strings.Contains(squash(both), "故障现象") || !strings.Contains(both, "Fault symptoms") {
		t.Errorf("?lang=both overrides the setting: want both labels:\n%s", both)
	}

	for _, p := range []string{path + "?lang=fr", "/api/v1/forms/blank.pdf?lang=ZH", "/api/v1/sheets/x.pdf?lang=english"} {
		r := env.do("GET", p, tok, nil)
		if r.Status != 400 || r.errCode() != schema.CodeValidation || r.errField() != "lang" {
			t.Errorf("GET %s: %d %s, want 400 validation naming lang", p, r.Status, r.Raw)
		}
	}
}

func testBlankFormPDF(t *testing.T, env *testEnv) {
	tok := env.login("manager", DemoPassword)
	r := env.must(env.do("GET", "/api/v1/forms/blank.pdf", tok, nil), 200)
	if ct, cd := r.Header["Content-Type"], r.Header["Content-Disposition"]; ct != "application/pdf" || cd != `inline; filename="feedback-form-blank.pdf"` {
		t.Errorf("headers: Content-Type %q, Content-Disposition %q", ct, cd)
	}
	if p := pdfPages(t, r.Raw); p != "1" {
		t.Errorf("the blank form has %s pages, want 1", p)
	}
	text := pdfText(t, r.Raw)
	for _, want := range []string{"售后服务信息反馈单", "Service Feedback Sheet", "Fault symptoms", "Customer signature", "Company stamp"} {
		if !strings.Contains(text, want) {
			t.Errorf("blank form: no %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "SR-") {
		t.Errorf("the blank form carries a ticket number:\n%s", text)
	}
}

// testDocumentErrors: what does not exist, or is not the caller's, is an error in the one
// error shape, never a PDF.
func testDocumentErrors(t *testing.T, env *testEnv) {
	coord := env.login("coord", DemoPassword)
	tech := env.login("tech1", DemoPassword)
	tk := demoTicket(t, env, "触摸屏无响应")
	cases := []struct {
		name, path, token string
		status            int
		code, inMessage   string
	}{
		{"no such ticket", "/api/v1/tickets/no-such-ticket/form.pdf", coord, 404, schema.CodeNotFound, "no-such-ticket"},
		{"no such sheet", "/api/v1/sheets/0190c0de-0000-7000-8000-000000000000.pdf", coord, 404, schema.CodeNotFound, "0190c0de-0000-7000-8000-000000000000"},
		{"a ticket id is not a sheet", "/api/v1/sheets/" + tk.Str("id") + ".pdf", coord, 404, schema.CodeNotFound, "feedback_sheet"},
		{"no login", "/api/v1/tickets/" + tk.Str("id") + "/form.pdf", "", 401, schema.CodeUnauthenticated, ""},
		{"no login, blank", "/api/v1/forms/blank.pdf", "", 401, schema.CodeUnauthenticated, ""},
		{"technician on the office API", "/api/v1/tickets/" + tk.Str("id") + "/form.pdf", tech, 403, schema.CodeForbidden, "technician"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := env.do("GET", c.path, c.token, nil)
			if r.Status != c.status || r.errCode() != c.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Raw, c.status, c.code)
			}
			if bytes.HasPrefix(r.Raw, []byte("%PDF")) || strings.Contains(r.Header["Content-Type"], "pdf") {
				t.Fatalf("an error answered with a PDF (Content-Type %q)", r.Header["Content-Type"])
			}
			if !strings.HasPrefix(r.Header["Content-Type"], "application/json") {
				t.Errorf("Content-Type %q, want JSON", r.Header["Content-Type"])
			}
			msg, _ := r.Body["error"].(map[string]any)["message"].(string)
			if !strings.Contains(msg, c.inMessage) {
				t.Errorf("message %q does not name %q", msg, c.inMessage)
			}
		})
	}
}

// testMobileSheetPDFScope: a device gets only sheets in its scope; anything else is 404,
// whether it exists or not.
func testMobileSheetPDFScope(t *testing.T, env *testEnv) {
	tok := env.deviceLogin("tech1", DemoPassword, "dev-tech1")
	tk := demoTicket(t, env, "触摸屏无响应") // dispatched to tech1: in scope as a ticket
	for _, id := range []string{"no-such-sheet", tk.Str("id")} {
		r := env.do("GET", "/mobile/v1/sheets/"+id+".pdf", tok, nil)
		if r.Status != 404 || r.errCode() != schema.CodeNotFound || bytes.HasPrefix(r.Raw, []byte("%PDF")) {
			t.Errorf("sheet %s: %d %s, want 404 not_found", id, r.Status, r.Raw)
		}
	}
	web := env.login("tech1", DemoPassword)
	if r := env.do("GET", "/mobile/v1/sheets/x.pdf", web, nil); r.Status != 401 {
		t.Errorf("a web token on the device API: %d %s, want 401", r.Status, r.Raw)
	}
	if r := env.do("GET", "/mobile/v1/sheets/x.pdf?lang=de", tok, nil); r.Status != 400 || r.errField() != "lang" {
		t.Errorf("?lang=de: %d %s, want 400 naming lang", r.Status, r.Raw)
	}
}

// testInScope: a technician's scope holds their tickets and not another technician's;
// office roles hold everything.
func testInScope(t *testing.T, env *testEnv) {
	ctx := context.Background()
	tk := demoTicket(t, env, "触摸屏无响应") // dispatched to tech1
	users := map[string]schema.Actor{}
	for _, u := range []string{"tech1", "tech2", "coord"} {
		d, err := env.srv.Engine.UserByName(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		users[u] = schema.Actor{UserID: d.Str("id"), Role: d.Str("role")}
	}
	for _, c := range []struct {
		user, entity, id string
		want             bool
	}{
		{"tech1", schema.EntTicket, tk.Str("id"), true},
		{"tech1", schema.EntCustomer, tk.Str("customer_id"), true},
		{"tech2", schema.EntTicket, tk.Str("id"), false},
		{"tech1", schema.EntSheet, tk.Str("id"), false}, // same id, other entity
		{"tech1", schema.EntTicket, "no-such-id", false},
		{"coord", schema.EntTicket, tk.Str("id"), true},
	} {
		got, err := env.srv.Engine.InScope(ctx, users[c.user], c.entity, c.id)
		if err != nil || got != c.want {
			t.Errorf("InScope(%s, %s %s) = %v, %v; want %v", c.user, c.entity, c.id, got, err, c.want)
		}
	}
}

func TestDocumentRoutesInOpenAPI(t *testing.T) {
	env := newEnv(t, false)
	r := env.must(env.do("GET", "/api/v1/openapi.json", "", nil), 200)
	paths, _ := r.Body["paths"].(map[string]any)
	for _, p := range []string{"/api/v1/tickets/{id}/form.pdf", "/api/v1/forms/blank.pdf", "/api/v1/sheets/{id}.pdf", "/mobile/v1/sheets/{id}.pdf"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("OpenAPI document has no %s", p)
		}
	}
}

// testSheetPDF prints the demo company's sheets: a signed one with its images and seal, an
// incomplete one marked, and the device side limited to the technician's own.
func testSheetPDF(t *testing.T, env *testEnv) {
	ctx := context.Background()
	sheets, err := env.srv.Engine.List(ctx, syncer.Query{Entity: schema.EntSheet, Order: "id"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sheets) == 0 {
		t.Fatal("the demo company has no feedback sheets to print")
	}
	var signed, incomplete schema.Doc
	for _, sh := range sheets {
		switch {
		case sh.Str("fingerprint") != "" && sh.Bool("complete") && sh.Str("stamp_blob") != "" && signed == nil:
			signed = sh
		case sh.Str("fingerprint") != "" && !sh.Bool("complete") && incomplete == nil:
			incomplete = sh
		}
	}
	if signed == nil || incomplete == nil {
		t.Fatalf("the demo has no complete signed sheet with a stamp, or no incomplete signed one: %v", sheets)
	}
	tk, err := env.srv.Engine.Get(ctx, schema.EntTicket, signed.Str("ticket_id"))
	if err != nil {
		t.Fatal(err)
	}
	coord := env.login("coord", DemoPassword)

	r := env.must(env.do("GET", "/api/v1/sheets/"+signed.Str("id")+".pdf", coord, nil), 200)
	wantName := tk.Str("number") + "-sheet-" + signed.Str("id")[:8] + ".pdf"
	if ct, cd := r.Header["Content-Type"], r.Header["Content-Disposition"]; ct != "application/pdf" || cd != `inline; filename="`+wantName+`"` {
		t.Errorf("headers: Content-Type %q, Content-Disposition %q (want file %s)", ct, cd, wantName)
	}
	if p := pdfPages(t, r.Raw); p != "1" {
		t.Errorf("a normal sheet has %s pages, want 1", p)
	}
	text := pdfText(t, r.Raw)
	flat := squash(text)
	fp := strings.ToUpper(signed.Str("fingerprint")[:4])
	for _, want := range []string{tk.Str("number"), signed.Str("signer_name"), squash(signed.Str("handling_result")), "张伟ZhangWei", signed.Str("id")} {
		if !strings.Contains(flat, want) {
			t.Errorf("signed sheet: no %q in:\n%s", want, text)
		}
	}
	if !strings.Contains(strings.ToUpper(flat), fp) {
		t.Errorf("signed sheet: the seal's fingerprint (%s…) is not printed:\n%s", fp, text)
	}
	if strings.Contains(text, "INCOMPLETE") {
		t.Errorf("a complete sheet is marked INCOMPLETE:\n%s", text)
	}
	list := poppler(t, r.Raw, "pdfimages", "-list", "{}")
	images := 0
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "image" {
			images++
		}
	}
	if images != 3 {
		t.Errorf("pdfimages lists %d images, want signature, stamp and technician signature:\n%s", images, list)
	}

	// The QR code links to /verify/{id}/{fingerprint} (mobileapi.verifyURL): that page must
	// accept the form and find the seal valid.
	v := env.must(env.do("GET", "/verify/"+signed.Str("id")+"/"+signed.Str("fingerprint"), "", nil, "Accept", "application/json"), 200)
	if v.Body["valid"] != true || v.Body["fingerprint_matches"] != true {
		t.Errorf("the verify link the QR code carries: %s", v.Raw)
	}

	r = env.must(env.do("GET", "/api/v1/sheets/"+incomplete.Str("id")+".pdf?lang=en", coord, nil), 200)
	if text := pdfText(t, r.Raw); !strings.Contains(text, "INCOMPLETE") {
		t.Errorf("an incomplete sheet is not marked INCOMPLETE:\n%s", text)
	}

	// The device side: the technician who holds the sheet gets it, another is refused.
	holder, err := env.srv.Engine.Get(ctx, schema.EntUser, signed.Str("technician_id"))
	if err != nil {
		t.Fatal(err)
	}
	other := "tech2"
	if holder.Str("username") == "tech2" {
		other = "tech1"
	}
	path := "/mobile/v1/sheets/" + signed.Str("id") + ".pdf"
	own := env.deviceLogin(holder.Str("username"), DemoPassword, "dev-own")
	r = env.must(env.do("GET", path, own, nil), 200)
	if r.Header["Content-Type"] != "application/pdf" || pdfPages(t, r.Raw) != "1" {
		t.Errorf("the holder's device: Content-Type %q", r.Header["Content-Type"])
	}
	r = env.do("GET", path, env.deviceLogin(other, DemoPassword, "dev-other"), nil)
	if r.Status != 404 || r.errCode() != schema.CodeNotFound || bytes.HasPrefix(r.Raw, []byte("%PDF")) {
		t.Errorf("%s's device on %s's sheet: %d %s, want 404 not_found", other, holder.Str("username"), r.Status, r.Raw)
	}
}

// sheetQR renders a sheet's PDF page to an image and returns what its QR code says
// (poppler's pdftoppm, then zbar's zbarimg).
func sheetQR(t *testing.T, pdf []byte) string {
	t.Helper()
	for _, tool := range []string{"pdftoppm", "zbarimg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install poppler-utils zbar-tools)", tool)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sheet.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pdftoppm", "-r", "200", "-f", "1", "-l", "1", "-png", path, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "page*.png"))
	if len(pages) != 1 {
		t.Fatalf("pdftoppm wrote %v", pages)
	}
	out, err := exec.Command("zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", pages[0]).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestSheetQRNeverTrustsHost checks that the verify link a sheet's QR code carries comes
// from the public_url setting, never from the Host header of the request that printed it:
// a coordinator's browser (or anyone on the path) sending Host: evil.example must not make
// the printed QR code point there.
func TestSheetQRNeverTrustsHost(t *testing.T) {
	env := newEnv(t, true)
	sheets, err := env.srv.Engine.List(context.Background(), syncer.Query{Entity: schema.EntSheet, Order: "id"})
	if err != nil {
		t.Fatal(err)
	}
	var signed schema.Doc
	for _, sh := range sheets {
		if sh.Str("fingerprint") != "" && signed == nil {
			signed = sh
		}
	}
	if signed == nil {
		t.Fatal("the demo has no signed sheet")
	}
	tk, err := env.srv.Engine.Get(context.Background(), schema.EntTicket, signed.Str("ticket_id"))
	if err != nil {
		t.Fatal(err)
	}
	coord := env.login("coord", DemoPassword)
	admin := env.login("admin", DemoPassword)
	holder, err := env.srv.Engine.Get(context.Background(), schema.EntUser, signed.Str("technician_id"))
	if err != nil {
		t.Fatal(err)
	}
	device := env.deviceLogin(holder.Str("username"), DemoPassword, "dev-qr")
	printed := func() []string {
		var got []string
		for _, r := range []resp{
			env.must(env.do("GET", "http://evil.example/api/v1/sheets/"+signed.Str("id")+".pdf", coord, nil), 200),
			env.must(env.do("GET", "http://evil.example/mobile/v1/sheets/"+signed.Str("id")+".pdf", device, nil), 200),
		} {
			got = append(got, sheetQR(t, r.Raw))
		}
		return got
	}

	// No public_url: no link at all (the QR code carries the ticket number), never Host.
	for _, qr := range printed() {
		if qr != tk.Str("number") {
			t.Errorf("public_url unset: the QR code says %q, want the ticket number %q", qr, tk.Str("number"))
		}
	}

	for _, bad := range []string{"evil.example", "ftp://svc.example.cn", "https://", "https://svc.example.cn/x?y=1", "https://user:pw@svc.example.cn"} {
		r := env.do("PUT", "/api/v1/settings", admin, map[string]any{"public_url": bad})
		if r.Status != 400 || r.errField() != "public_url" {
			t.Errorf("public_url %q: %d %s, want 400 naming public_url", bad, r.Status, r.Raw)
		}
	}

	env.must(env.do("PUT", "/api/v1/settings", admin, map[string]any{"public_url": "https://svc.example.cn/fieldsync/"}), 200)
	want := "https://svc.example.cn/fieldsync/verify/" + signed.Str("id") + "/" + signed.Str("fingerprint")
	for _, qr := range printed() {
		if qr != want {
			t.Errorf("public_url set: the QR code says %q, want %q", qr, want)
		}
	}
}
