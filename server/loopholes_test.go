package server

import (
	"strings"
	"testing"

	"fieldsync/schema"
)

// The policy's loopholes found by trying the demo, each closed (issue 13).

// A ticket moves on to sheet_received only when its sheet is received, or when a manager
// records that there is no sheet, with the reason.
func TestReceiveSheetNeedsASheetOrAManagersReason(t *testing.T) {
	e := newSheetEnv(t)
	e.must(e.do("POST", "/api/v1/users", e.admin, map[string]any{"username": "mgr", "name": "经理", "role": "manager", "password": "pass-mgr-1"}), 201)
	mgr := e.login("mgr", "pass-mgr-1")
	tk := e.ticket(e.t1ID, schema.StCompleted, false)
	act := func(token string, body any) resp {
		return e.do("POST", "/api/v1/tickets/"+tk+"/actions/receive_sheet", token, body)
	}
	if r := act(e.coord, nil); r.Status != 409 || r.errCode() != "invalid_transition" {
		t.Fatalf("a ticket without a sheet moved to sheet_received: %d %s", r.Status, r.Raw)
	}
	if r := act(e.coord, map[string]any{"no_sheet_reason": "客户拒绝签字"}); r.Status != 403 {
		t.Errorf("a coordinator recorded no sheet: %d %s", r.Status, r.Raw)
	}
	if r := act(mgr, map[string]any{"no_sheet_reason": "  "}); r.Status != 409 {
		t.Errorf("an empty reason: %d %s", r.Status, r.Raw)
	}
	got := e.must(act(mgr, map[string]any{"no_sheet_reason": "客户拒绝签字"}), 200).Body
	if got["status"] != "sheet_received" || got["no_sheet_reason"] != "客户拒绝签字" || got["no_sheet_by"] == nil {
		t.Errorf("the manager's no-sheet decision: %v", got)
	}

	// With a received sheet the step happens by itself, as before.
	tk2 := e.ticket(e.t1ID, schema.StCompleted, false)
	s := e.signedSheet(e.t1, e.fullSheet(tk2))
	e.must(e.do("POST", "/api/v1/sheets/"+str(s, "id")+"/actions/receive", e.coord, nil), 200)
	if st := e.must(e.do("GET", "/api/v1/tickets/"+tk2, e.coord, nil), 200).Body["status"]; st != "sheet_received" {
		t.Errorf("receiving the sheet left the ticket %v", st)
	}
}

// Accepting an incomplete sheet (so that it counts) is the manager's decision, not the
// coordinator's.
func TestAcceptExceptionIsAManagersDecision(t *testing.T) {
	e := newSheetEnv(t)
	e.must(e.do("POST", "/api/v1/users", e.admin, map[string]any{"username": "mgr", "name": "经理", "role": "manager", "password": "pass-mgr-1"}), 201)
	mgr := e.login("mgr", "pass-mgr-1")
	f := e.fullSheet(e.ticket(e.t1ID, schema.StCompleted, false))
	f["stamp_blob"] = ""
	f["absent_reason"] = "公章不在现场"
	id := str(e.signedSheet(e.t1, f), "id")
	if r := e.do("POST", "/api/v1/sheets/"+id+"/actions/accept_exception", e.coord, nil); r.Status != 403 {
		t.Fatalf("a coordinator accepted an incomplete sheet: %d %s", r.Status, r.Raw)
	}
	ex := e.must(e.do("POST", "/api/v1/sheets/"+id+"/actions/accept_exception", mgr, map[string]any{"note": "同意"}), 200).Body
	if ex["exception_accepted"] != true || ex["exception_by"] == nil {
		t.Errorf("the manager's acceptance: %v", ex)
	}
}

// The pre-filled form a technician takes out on paper shows what is wrong, who goes and
// what was agreed with the customer.
func TestPrefilledFormShowsSymptomsTechnicianAndHandling(t *testing.T) {
	e := newSheetEnv(t)
	tk := str(e.must(e.do("POST", "/api/v1/tickets", e.coord, map[string]any{"customer_id": e.customer, "service_mode": "onsite",
		"fault_symptoms": "三号机主轴异响", "agreed_handling": "先电话指导，仍不行再上门"}), 201).Body, "id")
	e.must(e.do("POST", "/api/v1/tickets/"+tk+"/actions/dispatch", e.coord, map[string]any{"technician_id": e.t1ID}), 200)
	r := e.must(e.do("GET", "/api/v1/tickets/"+tk+"/form.pdf", e.coord, nil), 200)
	text := squash(pdfText(t, r.Raw))
	for _, want := range []string{"三号机主轴异响", "名tech1", "先电话指导，仍不行再上门", "Agreedhandling"} {
		if !strings.Contains(text, want) {
			t.Errorf("the pre-filled form does not show %q:\n%s", want, pdfText(t, r.Raw))
		}
	}
	if n := pdfPages(t, r.Raw); n != "1" {
		t.Errorf("the form has %s pages, want 1", n)
	}
}

// The items a complete sheet needs are set per service mode: a phone service can do
// without the customer's stamp while an on-site one still needs it.
func TestRequiredSheetItemsPerServiceMode(t *testing.T) {
	e := newSheetEnv(t)
	e.must(e.do("PUT", "/api/v1/settings", e.admin, map[string]any{
		"sheet_required_phone": []string{"fault_symptoms", "inspection_record", "handling_result", "rating", "signer_name", "signature_blob"}}), 200)
	f := e.fullSheet(e.ticket(e.t1ID, schema.StCompleted, false)) // a phone service
	f["stamp_blob"] = ""
	if s := e.signedSheet(e.t1, f); s["complete"] != true {
		t.Errorf("a phone sheet without the stamp, stamp not required for phone: complete %v missing %v", s["complete"], s["missing"])
	}
	if r := e.do("PUT", "/api/v1/settings", e.admin, map[string]any{"sheet_required_online": []string{"stamp"}}); r.Status != 400 || r.errField() != "sheet_required_online" {
		t.Errorf("an unknown item: %d %s", r.Status, r.Raw)
	}
	// On site the stamp is still required.
	s := e.settingsValue("sheet_required")
	if !strings.Contains(s, "stamp_blob") {
		t.Errorf("the on-site list lost the stamp: %s", s)
	}
}

func (e *sheetEnv) settingsValue(key string) string {
	for _, it := range e.must(e.do("GET", "/api/v1/settings", e.coord, nil), 200).Body["items"].([]any) {
		if m := it.(map[string]any); m["key"] == key {
			return jsonOf(m["value"])
		}
	}
	return ""
}

// The verify page and the sheet's PDF say the same three things: sealed or not, complete or
// not (what is missing), and whether an exception was accepted, by whom and why.
func TestVerifyPageAndPDFSaySealedCompleteException(t *testing.T) {
	e := newSheetEnv(t)
	e.must(e.do("POST", "/api/v1/users", e.admin, map[string]any{"username": "mgr", "name": "李经理", "role": "manager", "password": "pass-mgr-1"}), 201)
	mgr := e.login("mgr", "pass-mgr-1")
	f := e.fullSheet(e.ticket(e.t1ID, schema.StCompleted, false))
	f["stamp_blob"] = ""
	f["absent_reason"] = "公章在总部"
	signed := e.signedSheet(e.t1, f)
	id, fp := str(signed, "id"), str(signed, "fingerprint")

	// What the sheet says shows to whoever holds a copy (its fingerprint, as in the QR code).
	page := func() string { return string(e.must(e.do("GET", "/verify/"+id+"/"+fp, "", nil), 200).Raw) }
	before := page()
	for _, want := range []string{"已封签 Sealed", "不完整 Incomplete", "客户盖章 company stamp", "例外 Exception", "无 none"} {
		if !strings.Contains(before, want) {
			t.Errorf("the verify page of an incomplete sheet does not say %q:\n%s", want, before)
		}
	}
	e.must(e.do("POST", "/api/v1/sheets/"+id+"/actions/accept_exception", mgr, map[string]any{"note": "经理同意：电话服务无需盖章"}), 200)
	after := page()
	for _, want := range []string{"已封签 Sealed", "不完整 Incomplete", "已接受 accepted", "李经理", "经理同意：电话服务无需盖章"} {
		if !strings.Contains(after, want) {
			t.Errorf("the verify page after the exception does not say %q:\n%s", want, after)
		}
	}
	v := e.must(e.do("GET", "/verify/"+id+"/"+fp, "", nil, "Accept", "application/json"), 200).Body
	if v["complete"] != false || v["exception_accepted"] != true || v["exception_by"] != "李经理" {
		t.Errorf("verify JSON: %v", v)
	}
	pdf := squash(pdfText(t, e.must(e.do("GET", "/api/v1/sheets/"+id+".pdf", e.coord, nil), 200).Raw))
	for _, want := range []string{"不完整", "例外已接受", "李经理", "经理同意：电话服务无需盖章"} {
		if !strings.Contains(pdf, want) {
			t.Errorf("the sheet PDF does not say %q:\n%s", want, pdf)
		}
	}
}
