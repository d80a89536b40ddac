package server

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"fieldsync/schema"
)

// Paper sheets (issue 13): the customer signed and stamped the printed form, the technician
// handed it in, a coordinator enters it with its scan.

// testPDF is a small whole PDF file (a scanner's output, as far as the server looks).
func testPDF(seed int) []byte {
	return []byte(fmt.Sprintf("%%PDF-1.4\n%% scan %d\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%%%EOF\n", seed))
}

// officeUpload sends a blob through the office API in one PATCH and returns its name.
func (e *sheetEnv) officeUpload(token string, b []byte) string {
	e.t.Helper()
	sum := sha(b)
	e.must(e.do("PATCH", "/api/v1/blobs/"+sum, token, b, "Upload-Offset", "0", "Upload-Length", strconv.Itoa(len(b)), "Content-Type", "application/offset+octet-stream"), 201)
	return sum
}

// paperFields is what a coordinator types from a complete paper sheet.
func paperFields(scans ...string) map[string]any {
	return map[string]any{"scan_blobs": scans, "signature_present": true, "stamp_present": true, "technician_signature_present": true,
		"fault_symptoms": "报警灯常亮", "inspection_record": "电源模块老化", "handling_result": "更换电源模块，试运行正常",
		"rating": 5, "signer_name": "王建国", "arrived_at": "2026-11-02T01:00:00Z", "departed_at": "2026-11-02T02:30:00Z"}
}

func bilingual(t *testing.T, what string, r resp) {
	t.Helper()
	e, _ := r.Body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	hasHan := strings.ContainsFunc(msg, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff })
	hasLatin := strings.ContainsFunc(msg, func(r rune) bool { return r >= 'a' && r <= 'z' })
	if !hasHan || !hasLatin {
		t.Errorf("%s: the message is not in Chinese and English: %q", what, msg)
	}
}

func TestPaperSheetEntrySealedAtEntry(t *testing.T) {
	e := newSheetEnv(t)
	tk := e.ticket(e.t1ID, schema.StCompleted, false)
	number := str(e.must(e.do("GET", "/api/v1/tickets/"+tk, e.coord, nil), 200).Body, "number")

	// The printed form's QR code carries the ticket number: scanned into the lookup, it
	// finds the ticket.
	found := e.must(e.do("GET", "/api/v1/tickets/lookup?code="+number, e.coord, nil), 200).Body
	if str(found, "id") != tk {
		t.Fatalf("lookup by the form's number found %v", found["id"])
	}
	if r := e.do("GET", "/api/v1/tickets/lookup?code=SR-000000-9999", e.coord, nil); r.Status != 404 || r.errField() != "code" {
		t.Errorf("lookup of an unknown number: %d %s", r.Status, r.Raw)
	}

	// The scan: a photo and a PDF page, uploaded by the coordinator.
	photo, page := e.officeUpload(e.coord, testPNG(7)), e.officeUpload(e.coord, testPDF(1))
	s := e.must(e.do("POST", "/api/v1/tickets/"+number+"/paper-sheet", e.coord, paperFields(photo, page)), 201).Body
	if s["origin"] != "paper" || s["status"] != "received" || s["complete"] != true || str(s, "seal") == "" || str(s, "fingerprint") == "" {
		t.Fatalf("the paper sheet: origin %v status %v complete %v seal %q", s["origin"], s["status"], s["complete"], s["seal"])
	}
	if str(s, "entered_by") != e.userID(e.coord) || str(s, "entered_by_name") != "名 coord" || str(s, "technician_id") != e.t1ID {
		t.Errorf("entered by %v (%v) for technician %v", s["entered_by"], s["entered_by_name"], s["technician_id"])
	}
	if st := e.must(e.do("GET", "/api/v1/tickets/"+tk, e.coord, nil), 200).Body["status"]; st != "sheet_received" {
		t.Errorf("the ticket is %v after its paper sheet was entered, want sheet_received", st)
	}

	// The seal covers the origin, who entered it, the ticks and every scan page.
	id, fp := str(s, "id"), str(s, "fingerprint")
	v := e.verify(id, "?fp="+fp)
	if v["valid"] != true || v["origin"] != "paper" || v["entered_by"] != "名 coord" || v["scan_pages"] != float64(2) {
		t.Fatalf("verify: %v", v)
	}
	html := string(e.must(e.do("GET", "/verify/"+id+"/"+fp, "", nil), 200).Raw)
	if !strings.Contains(html, "纸质反馈单") || !strings.Contains(html, "paper sheet entered by 名 coord") {
		t.Errorf("the verify page does not say the sheet came from paper")
	}
	e.tamper(id, "$.stamp_present", "false")
	if v := e.verify(id, "?fp="+fp); v["valid"] != false {
		t.Errorf("untick the stamp after sealing: still valid")
	}
	e.tamper(id, "$.stamp_present", "true")
	e.tamper(id, "$.origin", `"device"`)
	if v := e.verify(id, "?fp="+fp); v["valid"] != false {
		t.Errorf("a paper sheet passed off as a phone's: still valid")
	}
	e.tamper(id, "$.origin", `"paper"`)
	if v := e.verify(id, "?fp="+fp); v["valid"] != true {
		t.Fatalf("restored: %v", v["reasons"])
	}

	// The sheet's PDF says it came from paper, who entered it, and carries the scan.
	pdf := e.must(e.do("GET", "/api/v1/sheets/"+id+".pdf?lang=en", e.coord, nil), 200).Raw
	text := strings.Join(strings.Fields(pdfText(t, pdf)), " ")
	for _, want := range []string{"Paper sheet: entered by 名 coord", "Scan, page 1 of 2", "Scan, page 2 of 2", page} {
		if !strings.Contains(text, want) {
			t.Errorf("the paper sheet's PDF does not show %q:\n%s", want, text)
		}
	}
	if n := pdfPages(t, pdf); n != "3" {
		t.Errorf("the paper sheet's PDF has %s pages, want the sheet and two scan pages", n)
	}

	// The sheet's scan pages can be fetched by the office.
	got := e.must(e.do("GET", "/api/v1/blobs/"+page, e.coord, nil), 200)
	if got.Header["Content-Type"] != "application/pdf" {
		t.Errorf("scan page type %q", got.Header["Content-Type"])
	}
}

func TestPaperSheetRefusesASecondSealedSheet(t *testing.T) {
	e := newSheetEnv(t)
	scan := e.officeUpload(e.coord, testPNG(9))

	// A ticket whose phone sheet is sealed takes no paper sheet.
	tk := e.ticket(e.t1ID, schema.StCompleted, false)
	e.signedSheet(e.t1, e.fullSheet(tk))
	r := e.do("POST", "/api/v1/tickets/"+tk+"/paper-sheet", e.coord, paperFields(scan))
	if r.Status != 409 || r.errCode() != schema.CodeAlreadySigned {
		t.Fatalf("paper sheet over a sealed phone sheet: %d %s", r.Status, r.Raw)
	}
	bilingual(t, "second sheet", r)

	// A paper sheet entered twice: the second is refused, nothing is written.
	tk2 := e.ticket(e.t1ID, schema.StCompleted, false)
	e.must(e.do("POST", "/api/v1/tickets/"+tk2+"/paper-sheet", e.coord, paperFields(scan)), 201)
	r = e.do("POST", "/api/v1/tickets/"+tk2+"/paper-sheet", e.coord, paperFields(scan))
	if r.Status != 409 || r.errCode() != schema.CodeAlreadySigned {
		t.Fatalf("second paper sheet: %d %s", r.Status, r.Raw)
	}
	bilingual(t, "second paper sheet", r)
	if n := num(e.must(e.do("GET", "/api/v1/sheets?ticket_id="+tk2, e.coord, nil), 200).Body, "total"); n != 1 {
		t.Errorf("%d sheets on the ticket after a refused second entry", n)
	}

	// The technician's phone, with a draft written before the paper came in, cannot seal a
	// second sheet either.
	tk3 := e.ticket(e.t1ID, schema.StAccepted, false)
	draft := uuid.Must(uuid.NewV7()).String()
	applied(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": draft, "op": "create", "fields": e.fullSheet(tk3)}))
	e.must(e.do("POST", "/api/v1/tickets/"+tk3+"/paper-sheet", e.coord, paperFields(scan)), 201)
	rejected(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": draft, "op": "action", "action": "sign"}), schema.CodeAlreadySigned, "ticket_id")
}

func TestPaperSheetRolesAndBadInput(t *testing.T) {
	e := newSheetEnv(t)
	e.must(e.do("POST", "/api/v1/users", e.admin, map[string]any{"username": "mgr", "name": "经理", "role": "manager", "password": "pass-mgr-1"}), 201)
	mgr := e.login("mgr", "pass-mgr-1")
	tk := e.ticket(e.t1ID, schema.StCompleted, false)
	scan := e.officeUpload(e.coord, testPNG(11))

	// Only a coordinator (or admin) enters one; a manager, and a technician's phone, may not.
	r := e.do("POST", "/api/v1/tickets/"+tk+"/paper-sheet", mgr, paperFields(scan))
	if r.Status != 403 {
		t.Errorf("a manager entered a paper sheet: %d %s", r.Status, r.Raw)
	}
	bilingual(t, "manager", r)
	if r := e.do("PATCH", "/api/v1/blobs/"+sha(testPNG(12)), mgr, testPNG(12), "Upload-Offset", "0"); r.Status != 403 {
		t.Errorf("a manager uploaded a scan: %d", r.Status)
	}
	f := e.fullSheet(tk)
	f["scan_blobs"] = []string{scan}
	rejected(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": uuid.Must(uuid.NewV7()).String(), "op": "create", "fields": f}), schema.CodeForbidden, "scan_blobs")

	for _, c := range []struct {
		name   string
		change func(map[string]any)
		status int
		field  string
	}{
		{"no scan", func(m map[string]any) { delete(m, "scan_blobs") }, 400, "scan_blobs"},
		{"empty scan list", func(m map[string]any) { m["scan_blobs"] = []string{} }, 400, "scan_blobs"},
		{"scan not uploaded", func(m map[string]any) { m["scan_blobs"] = []string{sha([]byte("never sent"))} }, 409, "scan_blobs"},
		{"scan page twice", func(m map[string]any) { m["scan_blobs"] = []string{scan, scan} }, 400, "scan_blobs"},
		{"signature as an image", func(m map[string]any) { m["signature_blob"] = e.sig }, 400, "signature_blob"},
		{"rating 6", func(m map[string]any) { m["rating"] = 6 }, 400, "rating"},
		{"departed tomorrow", func(m map[string]any) { m["departed_at"] = time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339) }, 400, "departed_at"},
		{"unknown field", func(m map[string]any) { m["stamp_colour"] = "red" }, 400, "stamp_colour"},
		{"ticket id in the body", func(m map[string]any) { m["ticket_id"] = tk }, 400, "ticket_id"},
	} {
		m := paperFields(scan)
		c.change(m)
		r := e.do("POST", "/api/v1/tickets/"+tk+"/paper-sheet", e.coord, m)
		if r.Status != c.status || r.errField() != c.field {
			t.Errorf("%s: %d %s, want %d naming %s", c.name, r.Status, r.Raw, c.status, c.field)
		}
	}
	if n := num(e.must(e.do("GET", "/api/v1/sheets?ticket_id="+tk, e.coord, nil), 200).Body, "total"); n != 0 {
		t.Errorf("refused entries left %d sheets", n)
	}
	// A registered ticket, not yet dispatched, takes no sheet.
	open := str(e.must(e.do("POST", "/api/v1/tickets", e.coord, map[string]any{"customer_id": e.customer, "fault_symptoms": "x", "service_mode": "phone"}), 201).Body, "id")
	if r := e.do("POST", "/api/v1/tickets/"+open+"/paper-sheet", e.coord, paperFields(scan)); r.Status != 409 {
		t.Errorf("paper sheet on an undispatched ticket: %d %s", r.Status, r.Raw)
	}

	// Completeness is the same rule as on the phone: the stamp not on the paper makes the
	// sheet incomplete, naming the stamp, and it does not count unless a manager accepts.
	m := paperFields(scan)
	m["stamp_present"] = false
	s := e.must(e.do("POST", "/api/v1/tickets/"+tk+"/paper-sheet", e.coord, m), 201).Body
	if s["complete"] != false || fmt.Sprint(s["missing"]) != "[stamp_blob]" {
		t.Errorf("paper sheet without a stamp: complete %v missing %v", s["complete"], s["missing"])
	}
	if schema.SheetCounts(schema.Doc(s)) {
		t.Errorf("an incomplete paper sheet counts")
	}
	if r := e.do("POST", "/api/v1/sheets/"+str(s, "id")+"/actions/accept_exception", mgr, map[string]any{"note": "公章遗失，客户来函确认"}); r.Status != 200 {
		t.Errorf("the manager's exception on a paper sheet: %d %s", r.Status, r.Raw)
	}
}

// userID returns the id of the user a web token belongs to.
func (e *sheetEnv) userID(token string) string {
	return str(e.must(e.do("GET", "/api/v1/me", token, nil), 200).Body["user"].(map[string]any), "id")
}

// The month report says which services counted from paper, which counted through a
// manager's exception (by whom, why), and which a manager recorded as having no sheet, in
// the API, the PDF and the CSV.
func TestMonthShowsPaperExceptionAndNoSheet(t *testing.T) {
	f := newMonthFixture(t)
	e := f.env
	coord, mgr := f.tok("coord"), f.tok("manager")
	scanPNG := testPNG(21)
	scan := sha(scanPNG)
	e.must(e.do("PATCH", "/api/v1/blobs/"+scan, coord, scanPNG, "Upload-Offset", "0", "Upload-Length", strconv.Itoa(len(scanPNG))), 201)
	me := func(tok string) string {
		return str(e.must(e.do("GET", "/api/v1/me", tok, nil), 200).Body["user"].(map[string]any), "name")
	}
	coordName, mgrName := me(coord), me(mgr)

	paper := f.completed("tech1", "2026-09-03 10:00")
	pf := paperFields(scan)
	pf["arrived_at"], pf["departed_at"] = shanghai("2026-09-03 09:00").Format(time.RFC3339), shanghai("2026-09-03 09:50").Format(time.RFC3339)
	e.must(e.do("POST", "/api/v1/tickets/"+paper+"/paper-sheet", coord, pf), 201)
	excepted := f.completed("tech1", "2026-09-04 10:00")
	f.sheet("ex1", excepted, "tech1", "phone", false, true, true, "stamp_blob")
	noSheet := f.completed("tech2", "2026-09-05 10:00")
	e.must(e.do("POST", "/api/v1/tickets/"+noSheet+"/actions/receive_sheet", mgr, map[string]any{"no_sheet_reason": "客户单位搬迁，无法盖章签字"}), 200)
	number := func(id string) string {
		return str(e.must(e.do("GET", "/api/v1/tickets/"+id, coord, nil), 200).Body, "number")
	}
	paperNo, exNo, noNo := number(paper), number(excepted), number(noSheet)

	f.clock.set(shanghai("2026-10-01 10:00"))
	body := e.must(e.do("POST", "/api/v1/months/2026-09/compile", coord, nil), 200).Body
	row := monthRow(t, body, f.users["tech1"])
	if num(row, "counted_services") != 2 || num(row, "paper_services") != 1 || num(row, "exception_services") != 1 {
		t.Errorf("tech1: counted %d, paper %d, exception %d; want 2, 1, 1", num(row, "counted_services"), num(row, "paper_services"), num(row, "exception_services"))
	}
	for _, x := range row["counted"].([]any) {
		s := x.(map[string]any)
		switch s["ticket_number"] {
		case paperNo:
			if s["origin"] != "paper" || s["entered_by"] != coordName || s["recorded_by_office"] != true {
				t.Errorf("the paper service: %v", s)
			}
		case exNo:
			ex, _ := s["exception"].(map[string]any)
			if ex == nil || ex["by"] != mgrName || fmt.Sprint(ex["missing"]) != "[stamp_blob]" || !strings.Contains(str(ex, "note"), "客户无法提供") {
				t.Errorf("the service counted by exception: %v", s)
			}
		}
	}
	row2 := monthRow(t, body, f.users["tech2"])
	ns, _ := row2["no_sheet"].([]any)
	if num(row2, "counted_services") != 0 || num(row2, "no_sheet_services") != 1 || len(ns) != 1 {
		t.Fatalf("tech2's no-sheet service: counted %d, no_sheet %v", num(row2, "counted_services"), row2["no_sheet"])
	}
	if n := ns[0].(map[string]any); n["ticket_number"] != noNo || n["by"] != mgrName || n["reason"] != "客户单位搬迁，无法盖章签字" {
		t.Errorf("the no-sheet line: %v", n)
	}
	tot := body["totals"].(map[string]any)
	if num(tot, "paper_services") != 1 || num(tot, "exception_services") != 1 || num(tot, "no_sheet_services") != 1 {
		t.Errorf("totals: %v", tot)
	}

	// The coordinator took the technician's steps (the fixture does): the history says on
	// whose behalf.
	hist := e.must(e.do("GET", "/api/v1/tickets/"+paper+"/events?limit=100", coord, nil), 200).Body["items"].([]any)
	behalf := 0
	for _, x := range hist {
		ev := x.(map[string]any)
		if d, _ := ev["details"].(map[string]any); d != nil && d["on_behalf_of"] == f.users["tech1"] {
			behalf++
		}
	}
	if behalf != 3 { // accept, start, complete
		t.Errorf("%d steps marked as recorded on tech1's behalf, want 3: %v", behalf, hist)
	}

	for _, lang := range []struct{ code, paper, exception, none string }{
		{"en", "Paper sheet", "Counted by exception", "No sheet (not counted)"},
		{"zh", "纸质反馈单", "例外计入", "无反馈单（不计入）"},
	} {
		csv := string(e.must(e.do("GET", "/api/v1/months/2026-09/report.csv?lang="+lang.code, coord, nil), 200).Raw)
		pdf := pdfText(t, e.must(e.do("GET", "/api/v1/months/2026-09/report.pdf?lang="+lang.code, coord, nil), 200).Raw)
		for name, doc := range map[string]string{"CSV": csv, "PDF": strings.Join(strings.Fields(pdf), " ")} {
			for _, want := range []string{lang.paper, lang.exception, lang.none, paperNo, exNo, noNo, "客户单位搬迁", mgrName, coordName,
				map[string]string{"en": "Recorded for the technician", "zh": "代技术员记录"}[lang.code]} {
				if !strings.Contains(doc, want) {
					t.Errorf("the %s %s does not show %q:\n%s", lang.code, name, want, doc)
				}
			}
		}
	}
}

// A paper sheet may come in before the completion was recorded: the ticket keeps its status,
// and moves on to sheet_received the moment it is completed, whoever records that.
func TestPaperSheetBeforeCompletion(t *testing.T) {
	e := newSheetEnv(t)
	scan := e.officeUpload(e.coord, testPNG(31))
	tk := e.ticket(e.t1ID, schema.StAccepted, false)
	e.must(e.do("POST", "/api/v1/tickets/"+tk+"/paper-sheet", e.coord, paperFields(scan)), 201)
	if st := e.must(e.do("GET", "/api/v1/tickets/"+tk, e.coord, nil), 200).Body["status"]; st != "accepted" {
		t.Fatalf("after the paper sheet the ticket is %v, want it still accepted", st)
	}
	// The technician's phone records the work.
	applied(t, e.pushOne(e.t1, map[string]any{"entity": "ticket", "id": tk, "op": "action", "action": "start"}))
	r := applied(t, e.pushOne(e.t1, map[string]any{"entity": "ticket", "id": tk, "op": "action", "action": "complete", "fields": map[string]any{"service_mode": "phone"}}))
	if r["status"] != "sheet_received" {
		t.Errorf("completed with its paper sheet already received: %v, want sheet_received", r["status"])
	}
}
