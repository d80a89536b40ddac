package server

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// TestErrorsInTheUsersLanguage: an API error answers in the request's Accept-Language
// (Chinese, English, or both when it names neither or both equally), names the item in the
// user's words, never by its JSON name, and keeps its code and field for programs.
func TestErrorsInTheUsersLanguage(t *testing.T) {
	e := newEnv(t, true)
	tok := e.login("coord", DemoPassword)
	cust := str(e.must(e.do("GET", "/api/v1/customers", tok, nil), 200).Body["items"].([]any)[0].(map[string]any), "id")
	long := strings.Repeat("1", 201)
	body := map[string]any{"customer_id": cust, "fault_symptoms": "x", "service_mode": "phone", "contact_phone": long}

	for _, c := range []struct {
		lang         string
		zh, en       bool
		want, unwant string
	}{
		{"", true, true, "联系电话", "contact_phone"},
		{"zh-CN,zh;q=0.9,en;q=0.8", true, false, "联系电话", "contact"},
		{"en-US,en;q=0.9", false, true, "contact phone", "contact_phone"},
		{"zh, en", true, true, "contact phone", "contact_phone"},
		{"fr-FR", true, true, "联系电话", "contact_phone"},
	} {
		r := e.do("POST", "/api/v1/tickets", tok, body, "Accept-Language", c.lang)
		er, _ := r.Body["error"].(map[string]any)
		msg, item := str(er, "message"), str(er, "item")
		if r.Status != 400 || r.errCode() != "validation" || r.errField() != "contact_phone" {
			t.Errorf("%q: %d %s", c.lang, r.Status, r.Raw)
			continue
		}
		if hasHan(msg) != c.zh || strings.Contains(msg, "characters long") != c.en {
			t.Errorf("Accept-Language %q: message %q, want Chinese %v, English %v", c.lang, msg, c.zh, c.en)
		}
		if !strings.Contains(msg, c.want) || strings.Contains(msg, c.unwant) {
			t.Errorf("Accept-Language %q: message %q should say %q and not %q", c.lang, msg, c.want, c.unwant)
		}
		if !strings.Contains(item, c.want) {
			t.Errorf("Accept-Language %q: item %q, want %q", c.lang, item, c.want)
		}
	}

	// An entity's own word: a customer's phone is the customer phone.
	r := e.do("POST", "/api/v1/customers", tok, map[string]any{"name": "x", "phone": long}, "Accept-Language", "en")
	if msg := str(r.Body["error"].(map[string]any), "message"); !strings.Contains(msg, "customer phone") {
		t.Errorf("customer phone error: %s", r.Raw)
	}
	r = e.do("POST", "/api/v1/customers", tok, map[string]any{"name": "x", "phone": long}, "Accept-Language", "zh")
	if msg := str(r.Body["error"].(map[string]any), "message"); !strings.Contains(msg, "客户电话") || strings.Contains(msg, "phone") {
		t.Errorf("客户电话 error: %s", r.Raw)
	}
	// A message already written in both languages is split, not doubled.
	phone := e.deviceLogin("tech1", DemoPassword, "lang-phone")
	r = e.do("GET", "/api/v1/tickets", phone, nil, "Accept-Language", "en")
	if msg := str(r.Body["error"].(map[string]any), "message"); r.Status != 403 || hasHan(msg) {
		t.Errorf("forbidden in English: %d %s", r.Status, r.Raw)
	}
}

// TestVerifyPageTimesInCompanyZone: the public verify page shows its times in the company's
// time zone (the timezone setting), not as UTC stamps, and names missing items in words.
func TestVerifyPageTimesInCompanyZone(t *testing.T) {
	e := newEnv(t, true)
	list, err := e.srv.Engine.List(context.Background(), syncer.Query{Entity: schema.EntSheet})
	if err != nil {
		t.Fatal(err)
	}
	loc := e.srv.Engine.Settings().Location()
	checked := 0
	for _, d := range list {
		signed := d.Str("signed_at")
		if signed == "" || d.Str("received_at") == "" {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, signed)
		page := string(e.must(e.do("GET", "/verify/"+d.Str("id")+"?fp="+d.Str("fingerprint"), "", nil), 200).Raw)
		if !strings.Contains(page, at.In(loc).Format("2006-01-02 15:04:05")) || strings.Contains(page, signed) {
			t.Errorf("the verify page of %s does not show %s in %s:\n%s", d.Str("id"), signed, loc, page)
		}
		if strings.Contains(page, "_blob") || strings.Contains(page, "signer_name") {
			t.Errorf("the verify page names an item by its field name:\n%s", page)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("the demo has no signed sheet")
	}
}
