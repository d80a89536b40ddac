package server

import (
	"fmt"
	"net/url"
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
	if !strings.Contains(msg, "contact_phone") || !strings.Contains(msg, "工单 ") {
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

// The ticket list finds tickets by the customer's phone, the equipment's serial and the
// technician, filters by urgency and date, and sorts (issue 13).
func TestTicketListFiltersAndSorts(t *testing.T) {
	o := newOffice(t)
	other := str(o.must(o.do("POST", "/api/v1/customers", o.coord, map[string]any{"name": "杭州湾电厂", "phone": "0571-8888-7777"}), 201).Body, "id")
	otherAsset := str(o.must(o.do("POST", "/api/v1/assets", o.coord, map[string]any{"customer_id": other, "model": "DCS-3", "serial": "HZ-DCS-0042"}), 201).Body, "id")
	a := o.intake(map[string]any{"urgency": "low"})                                                                        // 0574-1234, NB-QC9-0001
	b := o.intake(map[string]any{"customer_id": other, "site_id": nil, "asset_id": otherAsset, "urgency": "critical"})     // 0571-…, HZ-DCS-0042
	c := o.intake(map[string]any{"customer_id": other, "site_id": nil, "asset_id": nil, "contact_phone": "139-5555-0000"}) // only the contact's phone
	o.must(o.act(o.coord, str(b, "id"), "dispatch", map[string]any{"technician_id": o.users["tech1"]}), 200)
	o.must(o.act(o.coord, str(c, "id"), "dispatch", map[string]any{"technician_id": o.users["tech2"]}), 200)
	var techName string
	for _, u := range o.must(o.do("GET", "/api/v1/users?limit=100", o.coord, nil), 200).Body["items"].([]any) {
		if str(u.(map[string]any), "id") == o.users["tech1"] {
			techName = str(u.(map[string]any), "name")
		}
	}

	numbers := func(query string) string {
		t.Helper()
		r := o.must(o.do("GET", "/api/v1/tickets?"+query, o.coord, nil), 200)
		var out []string
		for _, it := range r.Body["items"].([]any) {
			n := str(it.(map[string]any), "number")
			for name, tk := range map[string]map[string]any{"a": a, "b": b, "c": c} {
				if str(tk, "number") == n {
					out = append(out, name)
				}
			}
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct{ query, want string }{
		{"phone=0571-8888", "c,b"},  // the customer's phone, newest first
		{"phone=88887777", "c,b"},   // digits only, as said on the phone
		{"phone=139-5555", "c"},     // the contact's phone on the ticket
		{"serial=HZ-DCS-0042", "b"}, // the equipment's serial
		{"serial=nb-qc9", "a"},      // part of it, any case
		{"technician=" + o.users["tech1"], "b"},
		{"technician=" + url.QueryEscape(techName), "b"}, // or by name
		{"urgency=critical,low&sort=urgency", "b,a"},
		{"sort=received_at", "a,b,c"},
		{"sort=-received_at", "c,b,a"},
		{"sort=number", "a,b,c"},
	} {
		if got := numbers(c.query); got != c.want {
			t.Errorf("GET /tickets?%s: %s, want %s", c.query, got, c.want)
		}
	}
	for _, bad := range []struct{ query, field string }{
		{"sort=colour", "sort"}, {"urgency=urgent", "urgency"}, {"from=yesterday", "from"}, {"phone=%20", "phone"},
	} {
		if r := o.do("GET", "/api/v1/tickets?"+bad.query, o.coord, nil); r.Status != 400 || r.errField() != bad.field {
			t.Errorf("GET /tickets?%s: %d %s, want 400 naming %s", bad.query, r.Status, r.Raw, bad.field)
		}
	}
}
