package schema

import (
	"crypto/ed25519"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var defaultRequired = []string{"fault_symptoms", "inspection_record", "handling_result", "rating", "signer_name", "signature_blob", "stamp_blob"}

func fullSheet() Doc {
	return Doc{
		"id": "s1", "ticket_id": "t1", "technician_id": "u1", "number": "SR-202611-0001/1",
		"fault_symptoms": "报警灯常亮", "inspection_record": "电源模块老化", "handling_result": "更换电源模块",
		"rating": json.Number("5"), "signer_name": "王建国",
		"signature_blob": strings.Repeat("a", 64), "stamp_blob": strings.Repeat("b", 64),
		"parts":      []any{map[string]any{"item": "电源模块", "quantity": json.Number("1"), "serial_removed": "A1", "serial_fitted": "B2"}},
		"labour_fen": json.Number("20000"), "signed_at": "2026-11-19T03:10:00.000Z", "complete": true, "missing": []any{},
	}
}

func TestSheetCompletenessNamesEachMissingItem(t *testing.T) {
	empty := map[string]any{"fault_symptoms": "  ", "inspection_record": "", "handling_result": nil,
		"rating": nil, "signer_name": "", "signature_blob": "", "stamp_blob": ""}
	for _, item := range defaultRequired {
		t.Run(item, func(t *testing.T) {
			s := fullSheet()
			s[item] = empty[item]
			complete, missing := SheetCompleteness(s, defaultRequired)
			if complete || !reflect.DeepEqual(missing, []string{item}) {
				t.Fatalf("without %s: complete=%v missing=%v, want false [%s]", item, complete, missing, item)
			}
		})
	}
	t.Run("all present", func(t *testing.T) {
		complete, missing := SheetCompleteness(fullSheet(), defaultRequired)
		if !complete || len(missing) != 0 {
			t.Fatalf("complete=%v missing=%v", complete, missing)
		}
	})
	t.Run("rating zero is not rated", func(t *testing.T) {
		s := fullSheet()
		s["rating"] = json.Number("0")
		if _, missing := SheetCompleteness(s, defaultRequired); !reflect.DeepEqual(missing, []string{"rating"}) {
			t.Fatalf("missing=%v", missing)
		}
	})
	t.Run("empty sheet lists every item in a stable order", func(t *testing.T) {
		shuffled := []string{"stamp_blob", "rating", "fault_symptoms", "signature_blob", "signer_name", "handling_result", "inspection_record"}
		_, missing := SheetCompleteness(Doc{}, shuffled)
		if !reflect.DeepEqual(missing, defaultRequired) {
			t.Fatalf("missing=%v, want %v", missing, defaultRequired)
		}
	})
	t.Run("the setting decides", func(t *testing.T) {
		s := fullSheet()
		s["stamp_blob"] = ""
		if complete, _ := SheetCompleteness(s, []string{"fault_symptoms", "signature_blob"}); !complete {
			t.Fatal("a stamp that is not required made the sheet incomplete")
		}
		if _, missing := SheetCompleteness(s, []string{"technician_signature_blob", "stamp_blob"}); !reflect.DeepEqual(missing, []string{"stamp_blob", "technician_signature_blob"}) {
			t.Fatalf("missing=%v", missing)
		}
	})
}

func TestSheetFingerprintCoversEverySealedFieldAndImage(t *testing.T) {
	sums := map[string]string{"signature_blob": strings.Repeat("a", 64), "stamp_blob": strings.Repeat("b", 64)}
	base := SheetFingerprint(fullSheet(), sums)
	if len(base) != 64 {
		t.Fatalf("fingerprint %q is not hex SHA-256", base)
	}
	// Read back from JSON (as the store gives it) the fingerprint is the same.
	back, err := DecodeDoc(MustJSON(fullSheet()))
	if err != nil {
		t.Fatal(err)
	}
	if got := SheetFingerprint(back, sums); got != base {
		t.Fatalf("round trip changed the fingerprint: %s != %s", got, base)
	}
	for _, f := range SheetSealedFields {
		s := fullSheet()
		switch v := s[f].(type) {
		case string:
			s[f] = v + "x"
		case json.Number:
			s[f] = json.Number(string(v) + "1")
		case bool:
			s[f] = !v
		case []any:
			s[f] = append(v, "x")
		default:
			s[f] = "x"
		}
		if SheetFingerprint(s, sums) == base {
			t.Errorf("changing %s leaves the fingerprint as it was", f)
		}
	}
	changed := map[string]string{"signature_blob": strings.Repeat("a", 63) + "c", "stamp_blob": sums["stamp_blob"]}
	if SheetFingerprint(fullSheet(), changed) == base {
		t.Error("a changed image leaves the fingerprint as it was")
	}
	// Workflow fields after signing are not sealed.
	s := fullSheet()
	s["status"], s["coordinator_received_at"], s["version"] = "received", "2026-11-20T00:00:00.000Z", json.Number("9")
	if SheetFingerprint(s, sums) != base {
		t.Error("status or version changed the fingerprint")
	}
}

func TestCanonicalJSON(t *testing.T) {
	got, err := CanonicalJSON(map[string]any{"b": []any{json.Number("1"), true, nil}, "a": "引号\"\\\n\x01</>\u2028"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"引号\"\\\n\u0001</>` + "\u2028" + `","b":[1,true,null]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := CanonicalJSON(map[string]any{"x": json.Number("1.5")}); err == nil {
		t.Fatal("a fraction has no canonical form here, yet it was encoded")
	}
}

func TestSealVerifiesFingerprint(t *testing.T) {
	k, err := LoadSealKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fp := SheetFingerprint(fullSheet(), nil)
	seal := k.Seal(fp)
	if !VerifySeal(k.Public(), fp, seal) {
		t.Fatal("a fresh seal does not verify")
	}
	if VerifySeal(k.Public(), fp[:63]+"0", seal) {
		t.Fatal("the seal verifies another fingerprint")
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if VerifySeal(other, fp, seal) {
		t.Fatal("the seal verifies under another key")
	}
}

func TestSheetFieldChecks(t *testing.T) {
	ent, _ := LookupEntity(EntSheet)
	cases := []struct {
		field, value, wantErr string
	}{
		{"rating", `0`, "outside 1–5"},
		{"rating", `6`, "outside 1–5"},
		{"rating", `4.5`, "whole number"},
		{"rating", `"5"`, "whole number"},
		{"rating", `3`, ""},
		{"rating", `null`, ""},
		{"parts", `[{"item":"探头","quantity":2,"serial_removed":"A","serial_fitted":"B"}]`, ""},
		{"parts", `[{"item":"","quantity":1}]`, "item is required"},
		{"parts", `[{"item":"x","quantity":0}]`, "quantity"},
		{"parts", `[{"item":"x"}]`, "quantity is required"},
		{"parts", `[{"item":"x","quantity":1,"price":3}]`, "unknown field \"price\""},
		{"parts", `{"item":"x"}`, "must be a list"},
		{"labour_fen", `-1`, "non-negative"},
		{"service_mode", `"teleport"`, "not one of"},
	}
	for _, c := range cases {
		f, ok := ent.Field(c.field)
		if !ok {
			t.Fatalf("feedback_sheet has no field %s", c.field)
		}
		_, err := DecodeValue(f, json.RawMessage(c.value))
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s=%s: %v", c.field, c.value, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s=%s: error %v, want one containing %q", c.field, c.value, err, c.wantErr)
		case c.wantErr != "":
			if se, _ := AsError(err); se.Field != c.field || se.Code != CodeValidation {
				t.Errorf("%s=%s: code %s field %s", c.field, c.value, se.Code, se.Field)
			}
		}
	}
	if err := CheckLocation("31.23,121.47"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"31.23", "91,0", "a,b"} {
		if err := CheckLocation(bad); err == nil {
			t.Errorf("location %q accepted", bad)
		}
	}
}

func TestSheetCounts(t *testing.T) {
	for _, c := range []struct {
		status              string
		complete, exception bool
		want                bool
	}{
		{SheetReceived, true, false, true},
		{SheetSigned, false, true, true},
		{SheetReceived, false, false, false},
		{SheetDraft, true, false, false},
		{SheetVoid, true, false, false},
		{SheetReturned, true, false, false},
	} {
		if got := SheetCounts(Doc{"status": c.status, "complete": c.complete, "exception_accepted": c.exception}); got != c.want {
			t.Errorf("%+v: counts=%v", c, got)
		}
	}
}

// TestTextRefusesControlCharacters checks that a one-line string (a name, a phone, an
// address) refuses every control character, and that free text keeps its line breaks and
// tabs but refuses the other controls; the error names the field and the character.
func TestTextRefusesControlCharacters(t *testing.T) {
	customer, _ := LookupEntity(EntCustomer)
	name, _ := customer.Field("name")
	ticket, _ := LookupEntity(EntTicket)
	notes, _ := ticket.Field("tech_notes")
	if name.Kind != KString || notes.Kind != KText {
		t.Fatalf("customer.name is kind %d, ticket.tech_notes kind %d", name.Kind, notes.Kind)
	}
	for _, c := range []struct {
		f     *Field
		value string
		ok    bool
	}{
		{name, `"华东精密仪器有限公司"`, true},
		{name, `"𠮷祥精密机械厂 👍"`, true},
		{name, `"Acme\u0000"`, false},
		{name, `"Acme\tLtd"`, false},
		{name, `"Acme\nLtd"`, false},
		{name, `"\r=1+1"`, false},
		{name, `"\u001b[31mred"`, false},
		{name, `"Acme\u007f"`, false},
		{name, `"Acme\u0085"`, false},
		{notes, `"第一行\n第二行\r\n\tindented"`, true},
		{notes, `"bell\u0007"`, false},
		{notes, `"nul\u0000"`, false},
	} {

		_, err := DecodeValue(c.f, json.RawMessage(c.value))
		if c.ok && err != nil {
			t.Errorf("%s=%s refused: %v", c.f.Name, c.value, err)
		}
		if !c.ok {
			se, _ := AsError(err)
			if se == nil || se.Code != CodeValidation || se.Field != c.f.Name || !strings.Contains(se.Message, "control character") {
				t.Errorf("%s=%s: error %v, want a validation error on %s naming the control character", c.f.Name, c.value, err, c.f.Name)
			}
		}
	}
}

func TestListItemsRefuseControlCharacters(t *testing.T) {
	sheet, _ := LookupEntity(EntSheet)
	parts, _ := sheet.Field("parts")
	site, _ := LookupEntity(EntSite)
	contacts, _ := site.Field("contacts")
	for _, c := range []struct {
		f   *Field
		raw string
	}{
		{parts, `[{"item":"探头\u0000","quantity":1}]`},
		{contacts, `[{"name":"王\tfive","phone":"1"}]`},
	} {
		if _, err := DecodeValue(c.f, json.RawMessage(c.raw)); err == nil || !strings.Contains(err.Error(), "control character") {
			t.Errorf("%s=%s: error %v, want one naming the control character", c.f.Name, c.raw, err)
		}
	}
}
