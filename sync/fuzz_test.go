package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
	"unicode/utf8"

	_ "golang.org/x/image/webp" // image.Decode of WebP

	"fieldsync/schema"
)

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder and to the dispatch of a
// connection that has not said hello yet. Whatever arrives, the server must not panic, must
// answer a bad frame with a bad_request error naming what is wrong, and a frame it accepts
// must survive an encode/decode round trip unchanged (what the server reads is what was
// meant).
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","id":"h1","protocol":1,"device_id":"d1","app_version":"1.0","schema_version":1,"token":"t"}`,
		`{"type":"pull","id":"p1","checkpoint":"","limit":100,"live":true}`,
		`{"type":"pull","id":"p2","checkpoint":"t42"}`,
		`{"type":"push","id":"m1","mutations":[{"mid":"a","entity":"ticket","id":"x","op":"action","action":"accept","base_version":3,"at":"2026-01-01T00:00:00Z"}]}`,
		`{"type":"push","id":"m2","mutations":[{"mid":"b","entity":"ticket","id":"x","op":"update","base_version":1,"fields":{"tech_notes":"现场检查","time_spent_min":30}}]}`,
		`{"type":"verify","id":"v1","checkpoint":"t7"}`,
		`{"type":"nope","id":"z"}`,
		`{"type":"pull","id":"p3","limit":"ten"}`,
		`{"type":"pull","id":"p4","bogus":1}`,
		`{"type":"pull","id":"p5"} {"type":"pull"}`,
		`{"id":7}`,
		`{"type":"pull","id":"p6","type":"push"}`,
		`{"type":"push","id":"m3","mutations":[{"mid":"c","entity":"ticket","id":"x","op":"update","fields":{"tech_notes":"a","tech_\u006eotes":"b"}}]}`,
		"{\"type\":\"pull\",\"id\":\"\xff\xfe\"}",
		`[1,2,3]`,
		`{"type":"push","id":"m3","mutations":{}}`,
		`{"type":"push","id":"m4","mutations":[{"mid":"c","fields":[]}]}`,
		`{`,
		``,
		"\xff\xfe",
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if fr == nil {
			t.Fatal("DecodeFrame returned a nil frame")
		}
		if err != nil {
			se, ok := schema.AsError(err)
			if !ok {
				t.Fatalf("error %v is not a *schema.Error", err)
			}
			if se.Code != schema.CodeBadRequest || se.Message == "" {
				t.Fatalf("error %+v: want code bad_request and a message", se)
			}
			ef := ErrorFrame(fr.ID, err)
			if ef.Type != MsgError || ef.Code != schema.CodeBadRequest || ef.Re != fr.ID {
				t.Fatalf("error frame %+v", ef)
			}
			if _, err := json.Marshal(ef); err != nil {
				t.Fatalf("error frame does not encode: %v", err)
			}
			return
		}
		enc, err := json.Marshal(fr)
		if err != nil {
			t.Fatalf("an accepted frame does not encode: %v", err)
		}
		again, err := DecodeFrame(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		enc2, _ := json.Marshal(again)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the frame:\n%s\n%s", enc, enc2)
		}

		// Before hello nothing but hello gets past the dispatch, and hello with a token the
		// server refuses closes with 4401 (or 4426 for another protocol version).
		e := &Engine{}
		cv := &Conversation{Limits: Limits{MaxBatch: 3, MaxFrameBytes: 1 << 20},
			Authenticate: func(context.Context, string) (*Session, error) {
				return nil, schema.Errorf(schema.CodeUnauthenticated, "no")
			}}
		out, err := e.Handle(context.Background(), cv, fr)
		var ce *CloseError
		switch {
		case errors.As(err, &ce):
			if fr.Type != MsgHello || (ce.Code != CloseUnauthenticated && ce.Code != CloseUnsupported) {
				t.Fatalf("frame %s closed with %d", enc, ce.Code)
			}
		case err != nil:
			t.Fatalf("frame %s: %v", enc, err)
		default:
			if len(out) != 1 || out[0].Type != MsgError || out[0].Code == "" || out[0].Re != fr.ID {
				t.Fatalf("frame %s before hello answered %+v", enc, out)
			}
		}
		if cv.Welcomed {
			t.Fatalf("frame %s welcomed an unauthenticated connection", enc)
		}
	})
}

// FuzzMutationFields feeds arbitrary field maps to the validation of pushed mutations, for
// every entity and both sides. A field is either refused with an error that names it, or
// accepted in the form records store, which must encode to JSON and decode again to itself.
func FuzzMutationFields(f *testing.F) {
	for _, s := range []struct {
		ent     uint8
		tech    bool
		create  bool
		payload string
	}{
		{0, true, false, `{"tech_notes":"换了保险丝","time_spent_min":45}`},
		{0, true, false, `{"time_spent_min":1.5}`},
		{0, true, false, `{"time_spent_min":"10"}`},
		{0, false, false, `{"urgency":"critical","warranty":"in","warranty_reason":"在保"}`},
		{0, false, true, `{"customer_id":"c1","fault_symptoms":"x","received_at":"2026-03-01T08:00:00+08:00"}`},
		{0, false, true, `{"received_at":"0000-01-01T00:00:00+01:00"}`},
		{0, true, false, `{"urgency":"high"}`},
		{0, true, false, `{"nope":1}`},
		{1, true, true, `{"ticket_id":"t1","note":"客户不在"}`},
		{2, false, true, `{"customer_id":"c","name":"site","contacts":[{"name":"A","phone":"1"}]}`},
		{2, false, true, `{"contacts":[{"name":"","x":1}]}`},
		{3, false, true, `{"install_date":"2021-02-30","manufacturer_onsite":"yes"}`},
		{0, true, false, `{"tech_notes":null,"inspection_record":"\ud800"}`},
		{0, true, false, `{"time_spent_min":1e3}`},
		{0, true, false, `{"time_spent_min":-1}`},
		{4, false, true, `{"name":"Acme\u0000\t\r=1+1"}`},
		{0, true, false, `{"tech_notes":"第一行\n\tok\u0007"}`},
		{2, false, true, `{"customer_id":"c","name":"s","contacts":[{"name":"王\u001b[31m","phone":"1"}]}`},
	} {
		f.Add(s.ent, s.tech, s.create, []byte(s.payload))
	}
	names := []string{schema.EntTicket, schema.EntTicketEvent, schema.EntSite, schema.EntAsset, schema.EntCustomer,
		schema.EntComplaint, schema.EntFollowup, schema.EntUser, schema.EntSetting}
	f.Fuzz(func(t *testing.T, entIdx uint8, tech, creating bool, payload []byte) {
		ent, ok := schema.LookupEntity(names[int(entIdx)%len(names)])
		if !ok {
			t.Skip()
		}
		actor := schema.Actor{UserID: "u1", Role: schema.RoleCoordinator}
		if tech {
			actor.Role = schema.RoleTechnician
		}
		// Every field of the entity judges the payload as a single value too.
		for i := range ent.Fields {
			checkValue(t, &ent.Fields[i], payload)
		}
		var fields map[string]json.RawMessage
		if json.Unmarshal(payload, &fields) != nil {
			return
		}
		out, err := decodeFields(actor, ent, fields, creating)
		if err != nil {
			se, ok := schema.AsError(err)
			if !ok {
				t.Fatalf("error %v is not a *schema.Error", err)
			}
			if _, named := fields[se.Field]; !named {
				t.Fatalf("error %+v does not name one of the fields sent", se)
			}
			switch se.Code {
			case schema.CodeBadRequest, schema.CodeForbidden, schema.CodeValidation:
			default:
				t.Fatalf("error code %q for a field", se.Code)
			}
			return
		}
		if len(out) != len(fields) {
			t.Fatalf("accepted %d of %d fields", len(out), len(fields))
		}
		for name := range fields {
			fd, _ := ent.Field(name)
			if fd.Writers == schema.SideServer || !writerAllows(fd.Writers, actor.Role) {
				t.Fatalf("a %s may set %s.%s", actor.Role, ent.Name, name)
			}
			if fd.CreateOnly && !creating {
				t.Fatalf("create-only %s.%s accepted on update", ent.Name, name)
			}
			roundTrip(t, fd, fields[name], out[name])
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("accepted fields do not encode: %v", err)
		}
	})
}

// checkValue: DecodeValue refuses raw with a field error, or returns a value that decodes to
// itself again (what is stored is read back unchanged).
func checkValue(t *testing.T, f *schema.Field, raw []byte) {
	t.Helper()
	v, err := schema.DecodeValue(f, raw)
	if err != nil {
		se, ok := schema.AsError(err)
		if !ok || se.Field != f.Name {
			t.Fatalf("%s: error %v does not name the field", f.Name, err)
		}
		return
	}
	roundTrip(t, f, raw, v)
}

// roundTrip: the value v accepted from raw encodes, and decodes to itself again.
func roundTrip(t *testing.T, f *schema.Field, raw []byte, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: accepted %q as %#v, which does not encode: %v", f.Name, raw, v, err)
	}
	v2, err := schema.DecodeValue(f, b)
	if err != nil {
		t.Fatalf("%s: accepted %q and stored %s, which is refused when read back: %v", f.Name, raw, b, err)
	}
	if !schema.Equal(v, v2) {
		t.Fatalf("%s: %s decodes to %#v, then to %#v", f.Name, raw, v, v2)
	}
}

// FuzzCheckJSON compares the duplicate-key and UTF-8 check with a slow reference built on
// encoding/json's tokenizer, for every input the standard library accepts as JSON.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":1},"b":{"b":2}}`, `[{"a":1},{"a":1}]`, `{"a":"\"a\":1","b":[{"a":1,"a":2}]}`,
		`{"\u0061":1,"a":2}`, `{"a\\":1,"a\\":1}`, `"\xff"`, `{"k":"v"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := schema.CheckJSON(b)
		if !json.Valid(b) {
			return // syntax is the decoder's to report; CheckJSON only must not panic
		}
		want := referenceDuplicate(b) || !utf8Valid(b)
		if (err != nil) != want {
			t.Fatalf("CheckJSON(%q) = %v, want refused=%v", b, err, want)
		}
	})
}

func utf8Valid(b []byte) bool { return bytes.Equal(bytes.ToValidUTF8(b, []byte("\uFFFD")), b) }

// referenceDuplicate reports whether some object in b holds a key twice.
func referenceDuplicate(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	type level struct {
		keys   map[string]bool
		object bool
		expect bool // the next string token is a key
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := (*level)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.expect = true
				}
				stack = append(stack, &level{keys: map[string]bool{}, object: v == '{', expect: v == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			if top != nil && top.object && top.expect {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.expect = false
				continue
			}
		}
		if top != nil && top.object {
			top.expect = true
		}
	}
}

// FuzzCheckImage feeds arbitrary bytes to the image check every upload passes before it is
// kept. It must never panic, and what it accepts must be a PNG, JPEG or WebP image that
// decodes whole within the pixel bound (what the PDF renderer then draws).
func FuzzCheckImage(f *testing.F) {
	var png1 bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.NRGBA{200, 10, 10, 255})
	if err := png.Encode(&png1, img); err != nil {
		f.Fatal(err)
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		f.Fatal(err)
	}
	for _, b := range [][]byte{
		png1.Bytes(),
		jpg.Bytes(),
		[]byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"),
		append([]byte("\x89PNG\r\n\x1a\n"), "<html><script>alert(1)</script></html>"...),
		append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, "<html></html>"...),
		png1.Bytes()[:png1.Len()/2],
		jpg.Bytes()[:jpg.Len()-10],
		[]byte("RIFF\x40\x00\x00\x00WEBP<html>"),
		nil,
	} {
		f.Add(b)
	}
	const maxPixels = 1 << 20 // the same check, bounded so that no input decodes for seconds
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkImage(b, maxPixels) != nil {
			return
		}
		if MediaType(b) == "" {
			t.Fatalf("accepted %d bytes of no image type", len(b))
		}
		got, _, err := image.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("accepted an image that does not decode: %v", err)
		}
		if r := got.Bounds(); r.Dx() <= 0 || r.Dy() <= 0 || r.Dx()*r.Dy() > maxPixels {
			t.Fatalf("accepted an image of %v", r)
		}
	})
}

// FuzzCheckLogin: whatever a login carries, the check never panics, and what it lets
// through is bounded (the strings that become rate-limiter keys and device rows).
func FuzzCheckLogin(f *testing.F) {
	f.Add("coord", "demo-pass-2026", "phone-1", "张伟的手机")
	f.Add("", "", "", "")
	f.Add("a b", "x", "\x00", "a\nb")
	f.Add(strings.Repeat("好", 65), strings.Repeat("p", 73), strings.Repeat("d", 129), strings.Repeat("名", 65))
	f.Add("\xff\xfe", "pw", "\xff", "\xff")
	f.Fuzz(func(t *testing.T, user, pw, devID, devName string) {
		for _, dev := range []*DeviceLogin{nil, {DeviceID: devID, Name: devName}} {
			if CheckLogin(user, pw, dev) != nil {
				continue
			}
			if utf8.RuneCountInString(user) > 64 || len(user) > 64*utf8.UTFMax || len(pw) > 72 {
				t.Fatalf("accepted an unbounded login: %d-byte username, %d-byte password", len(user), len(pw))
			}
			if dev != nil && (len(dev.DeviceID) > 128 || utf8.RuneCountInString(dev.Name) > MaxDeviceName || len(dev.Name) > MaxDeviceName*utf8.UTFMax) {
				t.Fatalf("accepted an unbounded device: %d-byte id, %d-byte name", len(dev.DeviceID), len(dev.Name))
			}
		}
	})
}
