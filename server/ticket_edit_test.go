package server

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// Ticket editing with If-Match (issue 13): a stale edit is 412 Precondition Failed, in
// Chinese and English, naming the fields someone else changed meanwhile, with their values
// (the current record) so the console can show theirs beside yours; nothing is written.
func TestStaleTicketEditIs412NamingTheFields(t *testing.T) {
	o := newOffice(t)
	tk := o.intake(nil)
	id, v := str(tk, "id"), strconv.Itoa(int(tk["version"].(float64)))

	// The manager changes the contact phone and the urgency.
	o.must(o.do("PATCH", "/api/v1/tickets/"+id, o.manager, map[string]any{"contact_phone": "139-1111-2222", "urgency": "critical"}, "If-Match", v), 200)

	// The coordinator, still on the old version, edits the phone and the handling.
	r := o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"contact_phone": "138-0000-0000", "agreed_handling": "电话指导"}, "If-Match", v)
	if r.Status != 412 {
		t.Fatalf("stale If-Match: %d %s, want 412", r.Status, r.Raw)
	}
	bilingual(t, "stale edit", r)
	e := r.Body["error"].(map[string]any)
	if fmt.Sprint(e["fields"]) != "[contact_phone]" {
		t.Errorf("fields %v, want the one both changed: [contact_phone]", e["fields"])
	}
	if fmt.Sprint(e["changed"]) != "[contact_phone urgency]" {
		t.Errorf("changed %v, want every field changed meanwhile: [contact_phone urgency]", e["changed"])
	}
	msg := str(e, "message")
	if !strings.Contains(msg, "contact_phone") {
		t.Errorf("the message does not name the field: %s", msg)
	}
	rec := e["record"].(map[string]any)
	if rec["contact_phone"] != "139-1111-2222" || rec["version"] != float64(2) {
		t.Errorf("the answer does not carry their values: %v", rec)
	}
	cur := o.must(o.do("GET", "/api/v1/tickets/"+id, o.coord, nil), 200).Body
	if cur["contact_phone"] != "139-1111-2222" || cur["agreed_handling"] != "" {
		t.Errorf("the stale edit was written: %v %v", cur["contact_phone"], cur["agreed_handling"])
	}

	// An edit of fields nobody else touched is still refused on a stale version (If-Match
	// means this version), with no conflicting field named.
	r = o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"agreed_handling": "电话指导"}, "If-Match", v)
	if r.Status != 412 || fmt.Sprint(r.Body["error"].(map[string]any)["fields"]) != "[]" {
		t.Errorf("stale edit of an untouched field: %d %s", r.Status, r.Raw)
	}
	// With the current version (the user chose), it goes through.
	o.must(o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"contact_phone": "138-0000-0000"}, "If-Match", "2"), 200)
}
