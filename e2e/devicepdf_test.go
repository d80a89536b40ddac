package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldsync/sync/client"
)

// pdfText is pdftotext's reading of a PDF, white space dropped (it spaces CJK as it pleases).
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext not installed (apt-get install poppler-utils)")
	}
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-raw", "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return strings.Join(strings.Fields(string(out)), "")
}

func squashed(s string) string { return strings.Join(strings.Fields(s), "") }

// TestSealedSheetPDFShowsTheDeviceSignature: a phone whose clock is 40 s fast signs a sheet
// offline and syncs. The sealed sheet's PDF says which phone signed it (张伟's "Mate 60"),
// when by its clock with the offset, when the server received and sealed it, and that the
// device signature verified. After the phone is revoked, the PDF and the verify page say the
// phone was revoked later, and the signature, made before, stays valid.
func TestSealedSheetPDFShowsTheDeviceSignature(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := filepath.Join(t.TempDir(), "mate.db")
	token, err := client.Login(ctx, e.base, db, "tech1", demoPassword, "mate-60", "Mate 60")
	if err != nil {
		t.Fatal(err)
	}
	fast := func() time.Time { return time.Now().Add(40 * time.Second) }
	c := e.openClient(token, "mate-60", clientOpts{dbPath: db, now: fast})
	sig, err := c.PutBlob(stampPNG(t))
	if err != nil {
		t.Fatal(err)
	}
	id := e.newTicket("pdf: signed on the device")
	e.dispatch(id, "tech1")
	syncNow(t, c)
	mutate(t, c, "ticket", id, "action", 0, nil, "accept")
	sid := client.NewID()
	mutate(t, c, "feedback_sheet", sid, "create", 0, map[string]any{"ticket_id": id, "fault_symptoms": "不制冷",
		"inspection_record": "电容老化", "handling_result": "更换电容", "rating": 5, "signer_name": "王建国",
		"signature_blob": sig, "stamp_blob": sig}, "")
	if _, err := c.SignSheet(sid); err != nil {
		t.Fatal(err)
	}
	syncNow(t, c)
	if rej, _ := c.Rejections(); len(rej) != 0 {
		t.Fatalf("rejections: %+v", rej)
	}
	pdf := func() string {
		t.Helper()
		code, body := e.do("GET", "/api/v1/sheets/"+sid+".pdf?lang=both", e.coord, nil)
		if code != 200 {
			t.Fatalf("sheet PDF: %d %s", code, body)
		}
		return pdfText(t, body)
	}
	text := pdf()
	for _, want := range []string{"设备签名有效", "device signature verified", "签名手机：张伟 Zhang Wei 的手机（Mate 60）",
		"signed on 张伟 Zhang Wei's phone (Mate 60)", "手机时钟比服务器快 40 s", "the phone clock was 40 s ahead of the server's",
		"服务器接收并封签", "received and sealed by the server"} {
		if !strings.Contains(text, squashed(want)) {
			t.Errorf("the sealed sheet's PDF lacks %q", want)
		}
	}
	if strings.Contains(text, "revoked") {
		t.Errorf("the PDF says revoked before the phone was")
	}

	// Revoke the phone.
	var devs struct{ Items []map[string]any }
	e.must("GET", "/api/v1/devices?user_id="+e.users["tech1"], e.coord, nil, 200, &devs)
	dev := ""
	for _, d := range devs.Items {
		if d["device_id"] == "mate-60" {
			dev = d["id"].(string)
		}
	}
	if dev == "" {
		t.Fatalf("no device mate-60 in %v", devs.Items)
	}
	e.must("POST", "/api/v1/devices/"+dev+"/revoke", e.coord, nil, 200, nil)

	text = pdf()
	for _, want := range []string{"设备签名有效", "该手机已于之后停用", "停用前所作的签名仍然有效", "this phone was revoked later", "the signature it made before then stays valid"} {
		if !strings.Contains(text, squashed(want)) {
			t.Errorf("after the revocation, the PDF lacks %q", want)
		}
	}
	var s map[string]any
	e.must("GET", "/api/v1/sheets/"+sid, e.coord, nil, 200, &s)
	_, page := e.do("GET", "/verify/"+sid+"/"+s["fingerprint"].(string), "", nil)
	for _, want := range []string{"设备签名有效", "Mate 60", "该手机之后已停用", "the phone was revoked later", "stays valid"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the verify page lacks %q", want)
		}
	}
	_, body := e.do("GET", "/verify/"+sid+"/"+s["fingerprint"].(string), "", nil, "Accept", "application/json")
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v["valid"] != true || v["device_valid"] != true || v["device_revoked_at"] == nil || v["device_name"] != "Mate 60" {
		t.Errorf("verdict after the revocation: %s", body)
	}
}
