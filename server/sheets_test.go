package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// sheetEnv is a fresh company: an admin, a coordinator, two technicians with phones, and a
// customer.
type sheetEnv struct {
	*testEnv
	admin, coord   string // web tokens
	t1, t2         string // device tokens
	t1ID, t2ID     string
	customer       string
	sig, stamp, ts string // uploaded image sums (t1's device uploaded them)
}

func newSheetEnv(t *testing.T, opts ...func(*Config)) *sheetEnv {
	t.Helper()
	e := &sheetEnv{testEnv: newEnv(t, false, opts...)}
	e.admin = e.login("admin", "admin-pass-1")
	mk := func(username, role string) string {
		r := e.must(e.do("POST", "/api/v1/users", e.admin, map[string]any{"username": username, "name": "名 " + username, "role": role, "password": "pass-" + username + "-1"}), 201)
		return str(r.Body, "id")
	}
	mk("coord", schema.RoleCoordinator)
	e.t1ID, e.t2ID = mk("tech1", schema.RoleTechnician), mk("tech2", schema.RoleTechnician)
	e.coord = e.login("coord", "pass-coord-1")
	e.t1 = e.deviceLogin("tech1", "pass-tech1-1", "phone-1")
	e.t2 = e.deviceLogin("tech2", "pass-tech2-1", "phone-2")
	e.customer = str(e.must(e.do("POST", "/api/v1/customers", e.coord, map[string]any{"name": "华东精密仪器有限公司"}), 201).Body, "id")
	e.sig = e.upload(e.t1, testPNG(1))
	e.stamp = e.upload(e.t1, testPNG(2))
	e.ts = e.upload(e.t1, testPNG(3))
	return e
}

// testPNG is a small distinct PNG image.
func testPNG(seed int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 8))
	for x := 0; x < 16; x++ {
		img.Set(x, (x*seed)%8, color.NRGBA{R: uint8(seed * 40), A: 255})
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// noisyPNG is a PNG of n×n pixels of noise (it does not compress: about 3n² bytes).
func noisyPNG(seed, n int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	x := uint32(seed)*2654435761 + 1
	for i := range img.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		img.Pix[i] = byte(x)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// uploadAs sends a blob in one PATCH and returns the answer.
func (e *sheetEnv) uploadAs(token, sum string, b []byte) resp {
	return e.do("PATCH", "/mobile/v1/blobs/"+sum, token, b, "Upload-Offset", "0", "Upload-Length", strconv.Itoa(len(b)), "Content-Type", "application/offset+octet-stream")
}

func (e *sheetEnv) upload(token string, b []byte) string {
	e.t.Helper()
	sum := sha(b)
	e.must(e.uploadAs(token, sum, b), 201)
	return sum
}

// ticket registers a ticket for the customer, dispatches it to tech and takes it to status
// (accepted or completed) as a phone service.
func (e *sheetEnv) ticket(techID, status string, chargeable bool) string {
	e.t.Helper()
	id := str(e.must(e.do("POST", "/api/v1/tickets", e.coord, map[string]any{"customer_id": e.customer, "fault_symptoms": "触摸屏无响应",
		"service_mode": "phone", "chargeable": chargeable}), 201).Body, "id")
	steps := []struct {
		action string
		params map[string]any
	}{{"dispatch", map[string]any{"technician_id": techID}}, {"accept", nil}}
	if status == schema.StCompleted {
		steps = append(steps, struct {
			action string
			params map[string]any
		}{"start", nil}, struct {
			action string
			params map[string]any
		}{"complete", map[string]any{"service_mode": "phone"}})
	}
	for _, s := range steps {
		var body any
		if s.params != nil {
			body = s.params
		}
		e.must(e.do("POST", "/api/v1/tickets/"+id+"/actions/"+s.action, e.coord, body), 200)
	}
	return id
}

// push sends mutations from a device and returns the results.
func (e *sheetEnv) push(token string, muts ...map[string]any) []map[string]any {
	e.t.Helper()
	for _, m := range muts {
		if m["mid"] == nil {
			m["mid"] = uuid.NewString()
		}
	}
	r := e.must(e.do("POST", "/mobile/v1/sync/push", token, map[string]any{"mutations": muts}), 200)
	var out []map[string]any
	for _, x := range r.Body["results"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

// pushOne pushes one mutation and returns its result.
func (e *sheetEnv) pushOne(token string, m map[string]any) map[string]any {
	e.t.Helper()
	return e.push(token, m)[0]
}

func applied(t *testing.T, r map[string]any) map[string]any {
	t.Helper()
	if r["status"] != "applied" {
		t.Fatalf("result %v, want applied", r)
	}
	return r["record"].(map[string]any)
}

func rejected(t *testing.T, r map[string]any, code, field string) {
	t.Helper()
	if r["status"] != "rejected" || r["code"] != code || field != "" && r["field"] != field {
		t.Fatalf("result %v, want rejected %s (field %q)", r, code, field)
	}
	if strings.TrimSpace(str(r, "message")) == "" {
		t.Fatalf("rejection %s has no message", code)
	}
}

// fullSheet is the content of a complete sheet for ticket.
func (e *sheetEnv) fullSheet(ticket string) map[string]any {
	return map[string]any{"ticket_id": ticket, "fault_symptoms": "报警灯常亮", "inspection_record": "电源模块老化",
		"handling_result": "更换电源模块，试运行正常", "rating": 5, "rating_comment": "很好", "signer_name": "王建国",
		"signature_blob": e.sig, "stamp_blob": e.stamp, "technician_signature_blob": e.ts,
		"parts":      []any{map[string]any{"item": "电源模块", "quantity": 1, "serial_removed": "PS-1", "serial_fitted": "PS-2"}},
		"arrived_at": "2026-11-02T01:00:00Z", "departed_at": "2026-11-02T02:30:00Z"}
}

// signedSheet creates and signs a sheet from token's device in one push.
func (e *sheetEnv) signedSheet(token string, fields map[string]any) map[string]any {
	e.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	res := e.push(token,
		map[string]any{"entity": "feedback_sheet", "id": id, "op": "create", "fields": fields},
		map[string]any{"entity": "feedback_sheet", "id": id, "op": "action", "action": "sign"})
	applied(e.t, res[0])
	return applied(e.t, res[1])
}

func (e *sheetEnv) verify(id, query string) map[string]any {
	e.t.Helper()
	return e.must(e.do("GET", "/verify/"+id+query, "", nil, "Accept", "application/json"), 200).Body
}

func TestSheetOfflineCreateSignSyncSealed(t *testing.T) {
	e := newSheetEnv(t)
	tk := e.ticket(e.t1ID, schema.StCompleted, true)
	id := uuid.Must(uuid.NewV7()).String()
	deviceTime := "2026-11-02T02:31:00Z" // signed offline days before the phone found a network
	before := time.Now().UTC().Add(-time.Second)
	f := e.fullSheet(tk)
	delete(f, "rating")
	res := e.push(e.t1,
		map[string]any{"entity": "feedback_sheet", "id": id, "op": "create", "fields": f, "at": "2026-11-02T02:00:00Z"},
		map[string]any{"entity": "feedback_sheet", "id": id, "op": "update", "base_version": 1, "fields": map[string]any{"rating": 4, "labour_fen": 20000}, "at": "2026-11-02T02:29:00Z"},
		map[string]any{"entity": "feedback_sheet", "id": id, "op": "action", "action": "sign", "at": deviceTime})
	draft := applied(t, res[0])
	if draft["status"] != "draft" || draft["complete"] != false || fmt.Sprint(draft["missing"]) != "[rating]" {
		t.Fatalf("draft without rating: status %v complete %v missing %v", draft["status"], draft["complete"], draft["missing"])
	}
	applied(t, res[1])
	s := applied(t, res[2])
	if s["status"] != "signed" || s["complete"] != true || fmt.Sprint(s["missing"]) != "[]" {
		t.Fatalf("signed sheet: %v", s)
	}
	if s["signed_at"] != "2026-11-02T02:31:00.000Z" {
		t.Errorf("signed_at %v, want the device's time %s", s["signed_at"], deviceTime)
	}
	recv, err := time.Parse(time.RFC3339, str(s, "received_at"))
	if err != nil || recv.Before(before) || recv.After(time.Now().Add(time.Second)) {
		t.Errorf("received_at %v is not the server's time of receipt", s["received_at"])
	}
	if s["technician_id"] != e.t1ID || s["technician_name"] != "名 tech1" || s["customer_name"] != "华东精密仪器有限公司" || !strings.HasSuffix(str(s, "number"), "/1") {
		t.Errorf("server-set fields: %v %v %v %v", s["technician_id"], s["technician_name"], s["customer_name"], s["number"])
	}
	// The seal verifies with the published key.
	key := e.must(e.do("GET", "/verify/key", "", nil), 200).Body
	pub, _ := hex.DecodeString(str(key, "public_key_hex"))
	sig, _ := base64.StdEncoding.DecodeString(str(s, "seal"))
	if !ed25519.Verify(pub, []byte(str(s, "fingerprint")), sig) {
		t.Fatal("the seal does not verify with the public key from /verify/key")
	}
	if !strings.Contains(str(key, "public_key_pem"), "BEGIN PUBLIC KEY") {
		t.Errorf("no PEM: %v", key)
	}
	// The coordinator sees it as complete.
	got := e.must(e.do("GET", "/api/v1/sheets/"+id, e.coord, nil), 200).Body
	if got["fingerprint"] != s["fingerprint"] || got["signed_at"] != s["signed_at"] {
		t.Fatalf("coordinator sees %v", got)
	}
	list := e.must(e.do("GET", "/api/v1/sheets?complete=true&technician_id="+e.t1ID+"&month=2026-11&ticket_id="+tk, e.coord, nil), 200).Body
	if list["total"] != float64(1) {
		t.Fatalf("list complete sheets of November: %v", list)
	}
	for _, q := range []string{"complete=false", "month=2026-10", "status=draft", "technician_id=" + e.t2ID} {
		if l := e.must(e.do("GET", "/api/v1/sheets?"+q, e.coord, nil), 200).Body; l["total"] != float64(0) {
			t.Errorf("?%s lists %v", q, l["total"])
		}
	}
	e.must(e.do("GET", "/api/v1/sheets?complete=maybe", e.coord, nil), 400)
	e.must(e.do("GET", "/api/v1/sheets", e.t1, nil), 403)
	if l := e.must(e.do("GET", "/api/v1/tickets/"+tk+"/sheets", e.coord, nil), 200).Body; l["total"] != float64(1) {
		t.Errorf("ticket sheets: %v", l)
	}

	// The public page: JSON and HTML, no login, nothing but what the sheet prints.
	v := e.verify(id, "/"+str(s, "fingerprint"))
	if v["valid"] != true || v["fingerprint"] != s["fingerprint"] || v["customer"] != "华东精密仪器有限公司" || v["technician"] != "名 tech1" ||
		v["date"] != "2026-11-02" || v["signed_at"] != s["signed_at"] || v["received_at"] != s["received_at"] || v["chain_intact"] != true {
		t.Fatalf("verify: %v", v)
	}
	raw := e.must(e.do("GET", "/verify/"+id, "", nil, "Accept", "application/json"), 200).Raw
	for _, private := range []string{"电源模块", "王建国", "PS-1", e.sig, e.t1ID, tk} {
		if bytes.Contains(raw, []byte(private)) {
			t.Errorf("the public verify answer shows %q", private)
		}
	}
	page := e.must(e.do("GET", "/verify/"+id+"/"+str(s, "fingerprint"), "", nil), 200)
	if !strings.Contains(string(page.Raw), "封签有效") || !strings.Contains(string(page.Raw), str(s, "fingerprint")) || !strings.HasPrefix(page.Header["Content-Type"], "text/html") {
		t.Fatalf("verify page: %s", page.Raw)
	}
	// A fingerprint from a printed copy is checked, in the query or the path.
	fp := str(s, "fingerprint")
	if v := e.verify(id, "?fp="+fp[:16]); v["valid"] != true || v["fingerprint_matches"] != true {
		t.Errorf("matching prefix: %v", v)
	}
	if v := e.verify(id, "/"+fp); v["valid"] != true || v["fingerprint_matches"] != true {
		t.Errorf("matching path fingerprint: %v", v)
	}
	other := strings.Repeat("0", 16)
	if v := e.verify(id, "?fp="+other); v["valid"] != false || v["fingerprint_matches"] != false {
		t.Errorf("wrong fingerprint: %v", v)
	}
	if v := e.verify(id, "?fp="+fp[:8]); v["valid"] != false {
		t.Errorf("an 8-digit fingerprint was accepted: %v", v)
	}
	if page := e.do("GET", "/verify/nope", "", nil); page.Status != 404 || !strings.Contains(string(page.Raw), "未找到") {
		t.Errorf("unknown sheet page: %d %s", page.Status, page.Raw)
	}
	if r := e.do("GET", "/verify/nope", "", nil, "Accept", "application/json"); r.Status != 404 || r.errCode() != "not_found" {
		t.Errorf("unknown sheet JSON: %d %s", r.Status, r.Raw)
	}
	// The technician's phone pulls the sealed sheet.
	pull := e.must(e.do("POST", "/mobile/v1/sync/pull", e.t1, map[string]any{"checkpoint": ""}), 200)
	if !bytes.Contains(pull.Raw, []byte(fp)) {
		t.Error("the device does not receive its sealed sheet")
	}
}

// tamper changes a sheet's stored JSON directly in the database, bypassing the write path.
// path is "$.field", a top-level field.
func (e *sheetEnv) tamper(id, path, jsonValue string) {
	e.t.Helper()
	var data []byte
	if err := e.srv.DB.W.QueryRow(`SELECT data FROM records WHERE entity = 'feedback_sheet' AND id = ?`, id).Scan(&data); err != nil {
		e.t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		e.t.Fatal(err)
	}
	doc[strings.TrimPrefix(path, "$.")] = json.RawMessage(jsonValue)
	if _, err := e.srv.DB.W.Exec(`UPDATE records SET data = ? WHERE entity = 'feedback_sheet' AND id = ?`, string(schema.MustJSON(doc)), id); err != nil {
		e.t.Fatal(err)
	}
}

func jsonOf(v any) string { return string(schema.MustJSON(v)) }

func TestSheetAnyChangedByteFailsVerification(t *testing.T) {
	e := newSheetEnv(t, func(c *Config) { c.VerifyPerMinute = 10_000 }) // it verifies a hundred times
	s := e.signedSheet(e.t1, e.fullSheet(e.ticket(e.t1ID, schema.StCompleted, false)))
	id := str(s, "id")
	if v := e.verify(id, ""); v["valid"] != true {
		t.Fatalf("fresh sheet: %v", v)
	}
	for _, f := range schema.SheetSealedFields {
		orig := s[f]
		var changed any
		switch x := orig.(type) {
		case string:
			changed = "x"
			if x != "" {
				changed = x[:len(x)-1] + string(x[len(x)-1]^1) // one byte
			}
		case float64:
			changed = x + 1
		case bool:
			changed = !x
		case nil:
			changed = "x"
		case []any:
			changed = append(x, "x")
		}
		t.Run(f, func(t *testing.T) {
			e.tamper(id, "$."+f, jsonOf(changed))
			v := e.verify(id, "")
			if v["valid"] != false || len(v["reasons"].([]any)) == 0 {
				t.Errorf("%s changed to %v: verify says %v", f, changed, v)
			}
			e.tamper(id, "$."+f, jsonOf(orig))
			if v := e.verify(id, ""); v["valid"] != true {
				t.Fatalf("%s restored: still invalid: %v", f, v["reasons"])
			}
		})
	}
	t.Run("seal", func(t *testing.T) {
		seal := str(s, "seal")
		b, _ := base64.StdEncoding.DecodeString(seal)
		b[0] ^= 1
		e.tamper(id, "$.seal", jsonOf(base64.StdEncoding.EncodeToString(b)))
		if v := e.verify(id, ""); v["valid"] != false || !strings.Contains(fmt.Sprint(v["reasons"]), "seal") {
			t.Errorf("changed seal: %v", v)
		}
		e.tamper(id, "$.seal", jsonOf(seal))
	})
	for _, f := range schema.SheetBlobFields {
		t.Run("image "+f, func(t *testing.T) {
			sum := str(s, f)
			e.flipBlobByte(sum)
			v := e.verify(id, "")
			if v["valid"] != false || !strings.Contains(fmt.Sprint(v["reasons"]), f) {
				t.Errorf("changed %s: %v", f, v)
			}
			e.flipBlobByte(sum)
			e.hideBlob(sum, true)
			if v := e.verify(id, ""); v["valid"] != false || !strings.Contains(fmt.Sprint(v["reasons"]), "missing") {
				t.Errorf("removed %s: %v", f, v)
			}
			e.hideBlob(sum, false)
			if v := e.verify(id, ""); v["valid"] != true {
				t.Fatalf("restored %s: %v", f, v)
			}
		})
	}
}

func TestSheetChainPerTechnician(t *testing.T) {
	e := newSheetEnv(t)
	var t1Sheets []map[string]any
	for i := 0; i < 3; i++ {
		t1Sheets = append(t1Sheets, e.signedSheet(e.t1, e.fullSheet(e.ticket(e.t1ID, schema.StCompleted, false))))
		if i == 0 {
			// tech2's sheet in between belongs to tech2's own chain.
			tk := e.ticket(e.t2ID, schema.StCompleted, false)
			f := e.fullSheet(tk)
			f["signature_blob"], f["stamp_blob"], f["technician_signature_blob"] = e.upload(e.t2, testPNG(7)), "", ""
			s2 := e.signedSheet(e.t2, f)
			if s2["chain_index"] != float64(1) || s2["prev_sheet_id"] != nil || s2["prev_fingerprint"] != nil {
				t.Fatalf("tech2's first sheet: chain %v prev %v %v", s2["chain_index"], s2["prev_sheet_id"], s2["prev_fingerprint"])
			}
		}
	}
	for i, s := range t1Sheets {
		if s["chain_index"] != float64(i+1) {
			t.Errorf("sheet %d: chain_index %v", i, s["chain_index"])
		}
		if i == 0 {
			if s["prev_fingerprint"] != nil {
				t.Errorf("first sheet links to %v", s["prev_fingerprint"])
			}
			continue
		}
		if s["prev_sheet_id"] != t1Sheets[i-1]["id"] || s["prev_fingerprint"] != t1Sheets[i-1]["fingerprint"] {
			t.Errorf("sheet %d links to %v/%v, want the previous one of tech1", i, s["prev_sheet_id"], s["prev_fingerprint"])
		}
	}
	// Rewriting the first sheet with a fresh fingerprint (as a forger without the key
	// might) breaks the second sheet's link, though its own seal is fine.
	first, second := str(t1Sheets[0], "id"), str(t1Sheets[1], "id")
	e.tamper(first, "$.fingerprint", jsonOf(strings.Repeat("ab", 32)))
	v := e.verify(second, "")
	if v["valid"] != false || v["chain_intact"] != false {
		t.Fatalf("second sheet after its predecessor changed: %v", v)
	}
	e.tamper(first, "$.fingerprint", jsonOf(t1Sheets[0]["fingerprint"]))
	if v := e.verify(second, ""); v["valid"] != true || v["chain_intact"] != true {
		t.Fatalf("restored chain: %v", v)
	}
}

func TestSheetReturnAndCorrection(t *testing.T) {
	e := newSheetEnv(t)
	tk := e.ticket(e.t1ID, schema.StCompleted, false)
	a := e.signedSheet(e.t1, e.fullSheet(tk))
	aID := str(a, "id")
	// The return needs a reason; only the office returns.
	if r := e.do("POST", "/api/v1/sheets/"+aID+"/actions/return", e.coord, nil); r.Status != 400 || r.errField() != "reason" {
		t.Fatalf("return without reason: %d %s", r.Status, r.Raw)
	}
	rejected(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": aID, "op": "action", "action": "return", "fields": map[string]any{"reason": "x"}}), "forbidden", "")
	ret := e.must(e.do("POST", "/api/v1/sheets/"+aID+"/actions/return", e.coord, map[string]any{"reason": "型号填写错误 / wrong model"}), 200).Body
	if ret["status"] != "returned" || ret["returned_reason"] != "型号填写错误 / wrong model" || ret["returned_by"] == nil {
		t.Fatalf("returned: %v", ret)
	}
	// The phone sees the reason.
	pull := e.must(e.do("POST", "/mobile/v1/sync/pull", e.t1, map[string]any{"checkpoint": ""}), 200)
	if !strings.Contains(string(pull.Raw), "型号填写错误") {
		t.Fatal("the returned reason does not reach the phone")
	}
	// Still sealed: the technician corrects with a new sheet.
	rejected(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": aID, "op": "update", "base_version": ret["version"], "fields": map[string]any{"handling_result": "改"}}), "sealed", "")
	f := e.fullSheet(tk)
	f["supersedes_id"] = aID
	f["handling_result"] = "更换电源模块 PS-200，试运行正常"
	b := e.signedSheet(e.t1, f)
	if b["supersedes_id"] != aID || b["status"] != "signed" || !strings.HasSuffix(str(b, "number"), "/2") {
		t.Fatalf("correction: %v", b)
	}
	old := e.must(e.do("GET", "/api/v1/sheets/"+aID, e.coord, nil), 200).Body
	if old["status"] != "void" || old["superseded_by"] != b["id"] || old["fingerprint"] != a["fingerprint"] {
		t.Fatalf("corrected sheet: status %v superseded_by %v", old["status"], old["superseded_by"])
	}
	// The old one stays in the history and still verifies as what was sealed.
	if v := e.verify(aID, ""); v["valid"] != true || v["status"] != "void" || v["notice"] == nil {
		t.Errorf("void sheet verify: %v", v)
	}
	hist := e.must(e.do("GET", "/api/v1/tickets/"+tk+"/history", e.coord, nil), 200)
	if !strings.Contains(string(hist.Raw), `"action":"void"`) || !strings.Contains(string(hist.Raw), `"action":"return"`) {
		t.Errorf("history lacks the return or the void: %s", hist.Raw)
	}
	// A second correction of the same sheet, and corrections of void or draft sheets, are refused.
	f2 := e.fullSheet(tk)
	f2["supersedes_id"] = aID
	rejected(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": uuid.NewString(), "op": "create", "fields": f2}), "invalid_transition", "supersedes_id")
	// The correction is received and moves the ticket.
	got := e.must(e.do("POST", "/api/v1/sheets/"+str(b, "id")+"/actions/receive", e.coord, nil), 200).Body
	if got["status"] != "received" || got["coordinator_received_by"] == nil {
		t.Fatalf("received: %v", got)
	}
	if tt := e.must(e.do("GET", "/api/v1/tickets/"+tk, e.coord, nil), 200).Body; tt["status"] != "sheet_received" {
		t.Fatalf("ticket after receive: %v", tt["status"])
	}
}

func TestSheetReceiveAndException(t *testing.T) {
	e := newSheetEnv(t)
	tk := e.ticket(e.t1ID, schema.StCompleted, false)
	f := e.fullSheet(tk)
	f["stamp_blob"] = ""
	f["absent_reason"] = "客户公章不在现场"
	s := e.signedSheet(e.t1, f)
	id := str(s, "id")
	if s["complete"] != false || fmt.Sprint(s["missing"]) != "[stamp_blob]" {
		t.Fatalf("sheet without stamp: complete %v missing %v", s["complete"], s["missing"])
	}
	if l := e.must(e.do("GET", "/api/v1/sheets?complete=false", e.coord, nil), 200).Body; l["total"] != float64(1) {
		t.Fatalf("incomplete list: %v", l)
	}
	act := func(token, action string, body any) resp {
		return e.do("POST", "/api/v1/sheets/"+id+"/actions/"+action, token, body)
	}
	if r := act(e.coord, "bless", nil); r.Status != 400 || r.errField() != "action" {
		t.Errorf("unknown action: %d %s", r.Status, r.Raw)
	}
	if r := act(e.coord, "receive", map[string]any{"reason": "x"}); r.Status != 400 || r.errField() != "reason" {
		t.Errorf("unknown parameter: %d %s", r.Status, r.Raw)
	}
	rejected(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": id, "op": "action", "action": "accept_exception", "fields": map[string]any{"note": "x"}}), "forbidden", "")
	e.must(e.do("POST", "/api/v1/users", e.admin, map[string]any{"username": "mgr", "name": "经理", "role": "manager", "password": "pass-mgr-1"}), 201)
	mgr := e.login("mgr", "pass-mgr-1")
	ex := e.must(act(mgr, "accept_exception", nil), 200).Body // the absent_reason is the reason
	if ex["exception_accepted"] != true || ex["exception_by"] == nil || ex["exception_at"] == nil || ex["complete"] != false {
		t.Fatalf("exception: %v", ex)
	}
	if !schema.SheetCounts(schema.Doc(ex)) {
		t.Error("an accepted exception does not count")
	}
	if r := act(mgr, "accept_exception", nil); r.errCode() != "invalid_transition" {
		t.Errorf("second acceptance: %s", r.Raw)
	}
	// Verification is unaffected by the workflow after sealing.
	if v := e.verify(id, ""); v["valid"] != true {
		t.Errorf("after exception: %v", v)
	}
	rec := e.must(act(e.coord, "receive", nil), 200).Body
	if rec["status"] != "received" {
		t.Fatalf("receive: %v", rec)
	}
	if tt := e.must(e.do("GET", "/api/v1/tickets/"+tk, e.coord, nil), 200).Body; tt["status"] != "sheet_received" {
		t.Fatalf("ticket: %v", tt["status"])
	}
	for _, a := range []string{"receive", "return"} {
		if r := act(e.coord, a, map[string]any{"reason": "x"}); a == "receive" && r.errCode() != "validation" || a == "return" && r.errCode() != "invalid_transition" {
			t.Errorf("%s after receive: %d %s", a, r.Status, r.Raw)
		}
	}
	if r := act(e.coord, "receive", nil); r.errCode() != "invalid_transition" {
		t.Errorf("receive twice: %s", r.Raw)
	}
	// An exception on a complete sheet, or with no reason at all, is refused.
	c := e.signedSheet(e.t1, e.fullSheet(e.ticket(e.t1ID, schema.StCompleted, false)))
	if r := e.do("POST", "/api/v1/sheets/"+str(c, "id")+"/actions/accept_exception", mgr, map[string]any{"note": "x"}); r.errCode() != "invalid_transition" {
		t.Errorf("exception on a complete sheet: %s", r.Raw)
	}
	f = e.fullSheet(e.ticket(e.t1ID, schema.StCompleted, false))
	f["signer_name"] = ""
	n := e.signedSheet(e.t1, f)
	if r := e.do("POST", "/api/v1/sheets/"+str(n, "id")+"/actions/accept_exception", mgr, nil); r.Status != 400 || r.errField() != "note" {
		t.Errorf("exception without any reason: %s", r.Raw)
	}
	// A receive on a ticket that is not at completed leaves the ticket alone.
	draftTicket := e.ticket(e.t1ID, schema.StAccepted, false)
	d := e.signedSheet(e.t1, e.fullSheet(draftTicket))
	e.must(e.do("POST", "/api/v1/sheets/"+str(d, "id")+"/actions/receive", e.coord, nil), 200)
	if tt := e.must(e.do("GET", "/api/v1/tickets/"+draftTicket, e.coord, nil), 200).Body; tt["status"] != "accepted" {
		t.Errorf("a sheet of an accepted ticket moved it to %v", tt["status"])
	}
}

func TestSheetBadInput(t *testing.T) {
	e := newSheetEnv(t)
	mine := e.ticket(e.t1ID, schema.StCompleted, false)
	create := func(token string, fields map[string]any) map[string]any {
		return e.pushOne(token, map[string]any{"entity": "feedback_sheet", "id": uuid.NewString(), "op": "create", "fields": fields})
	}
	with := func(k string, v any) map[string]any {
		f := e.fullSheet(mine)
		f[k] = v
		return f
	}

	t.Run("blob uploads", func(t *testing.T) {
		text := []byte("%PDF-1.4 not an image at all")
		if r := e.uploadAs(e.t1, sha(text), text); r.errCode() != "unsupported_media" || r.Status != 415 {
			t.Errorf("not an image: %d %s", r.Status, r.Raw)
		}
		if r := e.uploadAs(e.t1, sha(nil), nil); r.errCode() != "validation" || r.errField() != "Upload-Length" {
			t.Errorf("empty: %d %s", r.Status, r.Raw)
		}
		img := testPNG(9)
		if r := e.uploadAs(e.t1, sha(testPNG(10)), img); r.errCode() != "hash_mismatch" || r.Status != 422 {
			t.Errorf("hash mismatch: %d %s", r.Status, r.Raw)
		}
		// The smallest limit a setting allows is 16 KiB: a noisy image over it, uploaded
		// before the limit is lowered, and another one after.
		bigSig := e.upload(e.t1, noisyPNG(1, 96))
		big := noisyPNG(2, 96)
		e.must(e.do("PUT", "/api/v1/settings", e.admin, map[string]any{"blob_max_bytes": 16 << 10}), 200)
		if r := e.uploadAs(e.t1, sha(big), big); r.errCode() != "too_large" || r.Status != 413 {
			t.Errorf("over the limit: %d %s", r.Status, r.Raw)
		}
		// An image uploaded before the limit was lowered is refused on the sheet.
		rejected(t, create(e.t1, with("signature_blob", bigSig)), "too_large", "signature_blob")
		e.must(e.do("PUT", "/api/v1/settings", e.admin, map[string]any{"blob_max_bytes": 5 << 20}), 200)
	})
	t.Run("image not uploaded yet is retryable", func(t *testing.T) {
		later := testPNG(11)
		mid, id := uuid.NewString(), uuid.NewString()
		m := map[string]any{"mid": mid, "entity": "feedback_sheet", "id": id, "op": "create", "fields": with("stamp_blob", sha(later))}
		r := e.pushOne(e.t1, m)
		rejected(t, r, "missing_blob", "stamp_blob")
		if r["retryable"] != true {
			t.Fatalf("missing_blob not retryable: %v", r)
		}
		e.upload(e.t1, later)
		applied(t, e.pushOne(e.t1, m)) // the same mid, sent again
	})
	t.Run("not a blob name", func(t *testing.T) {
		rejected(t, create(e.t1, with("signature_blob", "abc")), "validation", "signature_blob")
	})
	t.Run("rating 0", func(t *testing.T) { rejected(t, create(e.t1, with("rating", 0)), "validation", "rating") })
	t.Run("rating 6", func(t *testing.T) { rejected(t, create(e.t1, with("rating", 6)), "validation", "rating") })
	t.Run("fees on a free ticket", func(t *testing.T) {
		rejected(t, create(e.t1, with("labour_fen", 100)), "validation", "labour_fen")
	})
	t.Run("server fields", func(t *testing.T) {
		rejected(t, create(e.t1, with("status", "received")), "forbidden", "status")
		rejected(t, create(e.t1, with("fingerprint", "x")), "forbidden", "fingerprint")
	})
	t.Run("another technician's ticket", func(t *testing.T) {
		r := create(e.t2, e.fullSheet(mine))
		rejected(t, r, "out_of_scope", "")
	})
	t.Run("a ticket the technician reported but is not assigned", func(t *testing.T) {
		e.ticket(e.t2ID, schema.StAccepted, false) // the customer is one tech2 serves
		rep := e.pushOne(e.t2, map[string]any{"entity": "ticket", "id": uuid.NewString(), "op": "create", "fields": map[string]any{"customer_id": e.customer, "fault_symptoms": "异响"}})
		tid := applied(t, rep)["id"]
		f := e.fullSheet(tid.(string))
		f["signature_blob"], f["stamp_blob"], f["technician_signature_blob"] = "", "", ""
		rejected(t, create(e.t2, f), "forbidden", "ticket_id")
	})
	t.Run("cancelled ticket", func(t *testing.T) {
		tk := e.ticket(e.t1ID, schema.StAccepted, false)
		id := uuid.NewString()
		applied(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": id, "op": "create", "fields": e.fullSheet(tk)}))
		e.must(e.do("POST", "/api/v1/tickets/"+tk+"/actions/cancel", e.coord, map[string]any{"reason": "客户取消"}), 200)
		rejected(t, create(e.t1, e.fullSheet(tk)), "ticket_cancelled", "ticket_id")
		rejected(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": id, "op": "action", "action": "sign"}), "ticket_cancelled", "ticket_id")
	})
	t.Run("signing twice", func(t *testing.T) {
		s := e.signedSheet(e.t1, e.fullSheet(mine))
		r := e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": s["id"], "op": "action", "action": "sign"})
		rejected(t, r, "already_signed", "")
		if r["record"].(map[string]any)["seal"] != s["seal"] {
			t.Error("signing twice changed the seal")
		}
	})
	t.Run("editing after signing", func(t *testing.T) {
		s := e.signedSheet(e.t1, e.fullSheet(mine))
		r := e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": s["id"], "op": "update", "base_version": s["version"], "fields": map[string]any{"rating": 1}})
		rejected(t, r, "sealed", "")
		if v := e.verify(str(s, "id"), ""); v["valid"] != true {
			t.Errorf("refused edit broke the seal: %v", v)
		}
	})
	t.Run("another technician edits or signs", func(t *testing.T) {
		id := uuid.NewString()
		applied(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": id, "op": "create", "fields": e.fullSheet(mine)}))
		rejected(t, e.pushOne(e.t2, map[string]any{"entity": "feedback_sheet", "id": id, "op": "update", "base_version": 1, "fields": map[string]any{"rating": 1}}), "out_of_scope", "")
		rejected(t, e.pushOne(e.t2, map[string]any{"entity": "feedback_sheet", "id": id, "op": "action", "action": "sign"}), "out_of_scope", "")
		if r := e.do("POST", "/api/v1/sheets/"+id+"/actions/sign", e.coord, nil); r.errCode() != "forbidden" {
			t.Errorf("the office signs: %d %s", r.Status, r.Raw)
		}
	})
}

// TestVerifyPagePublicHardening checks the public verify page against what anyone on the
// internet can do with it: it is framed by no page and runs no script (CSP,
// X-Frame-Options, nosniff), a draft shows as not signed with nothing of its content, a
// sealed sheet's names are shown only with the fingerprint from the printed copy (ids can
// be guessed), and one address cannot flood it.
func TestVerifyPagePublicHardening(t *testing.T) {
	e := newSheetEnv(t)
	tk := e.ticket(e.t1ID, schema.StCompleted, true)
	draftID := uuid.Must(uuid.NewV7()).String()
	applied(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": draftID, "op": "create", "fields": e.fullSheet(tk)}))
	tk2 := e.ticket(e.t1ID, schema.StCompleted, true)
	s := e.signedSheet(e.t1, e.fullSheet(tk2))
	id, fp := str(s, "id"), str(s, "fingerprint")
	names := []string{"华东精密仪器有限公司", "名 tech1", fp}

	checkHeaders := func(what string, r resp) {
		t.Helper()
		csp := r.Header["Content-Security-Policy"]
		for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "script-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, want)
			}
		}
		if r.Header["X-Frame-Options"] != "DENY" || r.Header["X-Content-Type-Options"] != "nosniff" || r.Header["Referrer-Policy"] != "no-referrer" {
			t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q, Referrer-Policy %q", what,
				r.Header["X-Frame-Options"], r.Header["X-Content-Type-Options"], r.Header["Referrer-Policy"])
		}
	}

	draft := e.must(e.do("GET", "/verify/"+draftID, "", nil), 200)
	checkHeaders("draft page", draft)
	if !strings.Contains(string(draft.Raw), "未签署") || !strings.Contains(string(draft.Raw), "Not signed") {
		t.Errorf("draft page does not say not signed:\n%s", draft.Raw)
	}
	for _, n := range names[:2] {
		if strings.Contains(string(draft.Raw), n) {
			t.Errorf("the draft page shows %q", n)
		}
	}

	guessed := e.must(e.do("GET", "/verify/"+id, "", nil), 200)
	checkHeaders("page without fingerprint", guessed)
	for _, n := range names {
		if strings.Contains(string(guessed.Raw), n) {
			t.Errorf("the page without the copy's fingerprint shows %q", n)
		}
	}
	if !strings.Contains(string(guessed.Raw), "封签有效") {
		t.Errorf("the page without fingerprint does not say whether the seal is valid:\n%s", guessed.Raw)
	}
	holder := e.must(e.do("GET", "/verify/"+id+"/"+fp, "", nil), 200)
	for _, n := range names {
		if !strings.Contains(string(holder.Raw), n) {
			t.Errorf("the page with the copy's fingerprint lacks %q", n)
		}
	}
	checkHeaders("JSON", e.must(e.do("GET", "/verify/"+id, "", nil, "Accept", "application/json"), 200))
	checkHeaders("unknown sheet", e.do("GET", "/verify/nope", "", nil))

	// One address: a burst far past any person's use is refused; the rest of the server is not.
	limited := 0
	for i := 0; i < 200 && limited == 0; i++ {
		if r := e.do("GET", "/verify/"+id+"/"+fp, "", nil, "Accept", "application/json"); r.Status == 429 {
			limited = i + 1
			if r.errCode() != schema.CodeRateLimited {
				t.Errorf("429 with code %q", r.errCode())
			}
			checkHeaders("429", r)
		}
	}
	if limited == 0 {
		t.Fatal("200 verify requests from one address in a burst were all answered")
	}
	e.must(e.do("GET", "/api/v1/sheets/"+id, e.coord, nil), 200)
}

// TestBlobUploadDecodedAndServedSafely checks, over HTTP, that an upload with an image's
// first bytes and HTML after them is refused (415) and cannot be named by a sheet, and that
// a blob is served so that no browser runs it as a page: nosniff and an attachment
// disposition naming the file by its hash.
func TestBlobUploadDecodedAndServedSafely(t *testing.T) {
	e := newSheetEnv(t)
	polyglot := append([]byte("\x89PNG\r\n\x1a\n"), []byte("<html><script>alert(document.cookie)</script></html>")...)
	if r := e.uploadAs(e.t1, sha(polyglot), polyglot); r.Status != 415 || r.errCode() != schema.CodeUnsupportedMedia {
		t.Fatalf("PNG header then HTML: %d %s, want 415 unsupported_media", r.Status, r.Raw)
	}
	tk := e.ticket(e.t1ID, schema.StCompleted, true)
	f := e.fullSheet(tk)
	f["signature_blob"] = sha(polyglot)
	rejected(t, e.pushOne(e.t1, map[string]any{"entity": "feedback_sheet", "id": uuid.Must(uuid.NewV7()).String(), "op": "create", "fields": f}),
		schema.CodeMissingBlob, "signature_blob")

	e.signedSheet(e.t1, e.fullSheet(tk)) // the signature is now in the technician's scope
	r := e.must(e.do("GET", "/mobile/v1/blobs/"+e.sig, e.t1, nil), 200)
	if r.Header["Content-Type"] != "image/png" || r.Header["X-Content-Type-Options"] != "nosniff" ||
		r.Header["Content-Disposition"] != `attachment; filename="`+e.sig+`.png"` {
		t.Errorf("blob download headers: Content-Type %q, X-Content-Type-Options %q, Content-Disposition %q",
			r.Header["Content-Type"], r.Header["X-Content-Type-Options"], r.Header["Content-Disposition"])
	}
	if !bytes.Equal(r.Raw, testPNG(1)) {
		t.Error("the blob downloaded is not the one uploaded")
	}
}

// TestBlobPartialQuotaOverHTTP checks that the unfinished-upload quota is the device's: a
// device that begins more uploads than its quota holds gets 429 rate_limited, another
// device does not.
func TestBlobPartialQuotaOverHTTP(t *testing.T) {
	e := newSheetEnv(t)
	head := testPNG(3)[:16]
	begin := func(token string, i int) resp {
		sum := sha([]byte(fmt.Sprint(token, i)))
		return e.do("PATCH", "/mobile/v1/blobs/"+sum, token, head, "Upload-Offset", "0", "Upload-Length", strconv.Itoa(5<<20),
			"Content-Type", "application/offset+octet-stream")
	}
	for i := range syncer.PartialUploadsPerDevice {
		e.must(begin(e.t1, i), 204)
	}
	if r := begin(e.t1, 99); r.Status != 429 || r.errCode() != schema.CodeRateLimited {
		t.Errorf("one upload past the device's quota: %d %s, want 429 rate_limited", r.Status, r.Raw)
	}
	e.must(begin(e.t2, 0), 204)
}

// flipBlobByte changes the last byte of the stored blob sum behind the blob store's back, as
// someone with access to the data folder or the database could; a second call restores it.
func (e *testEnv) flipBlobByte(sum string) {
	e.t.Helper()
	if e.srv.DB.Postgres {
		if _, err := e.srv.DB.W.Exec(`UPDATE blob_chunks SET data = set_byte(data, length(data) - 1, get_byte(data, length(data) - 1) # 1)
			WHERE hash = ? AND n = (SELECT max(n) FROM blob_chunks WHERE hash = ?)`, sum, sum); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	path := filepath.Join(e.dir, "blobs", sum)
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(path, b, 0o640); err != nil {
		e.t.Fatal(err)
	}
}

// hideBlob makes the stored blob sum vanish behind the blob store's back (hidden), or come
// back.
func (e *testEnv) hideBlob(sum string, hidden bool) {
	e.t.Helper()
	if e.srv.DB.Postgres {
		if _, err := e.srv.DB.W.Exec(`UPDATE blobs SET complete = ? WHERE hash = ?`, !hidden, sum); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	path := filepath.Join(e.dir, "blobs", sum)
	from, to := path, path+".hidden"
	if !hidden {
		from, to = to, from
	}
	if err := os.Rename(from, to); err != nil {
		e.t.Fatal(err)
	}
}
