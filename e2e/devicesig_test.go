package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"fieldsync/sync/client"
)

// TestSDKSignsSheetsOnTheDevice: the Go SDK logs in with a device key (made in its store),
// writes and signs two sheets offline, then syncs; the server accepts both device
// signatures, seals them, and the verify answer shows them valid and chained. A device
// logged in without a key (an older app) signs as before and its sheet is "not signed on
// the device".
func TestSDKSignsSheetsOnTheDevice(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := filepath.Join(t.TempDir(), "sdk-signer.db")
	token, err := client.Login(ctx, e.base, db, "tech1", demoPassword, "sdk-signer", "SDK phone")
	if err != nil {
		t.Fatal(err)
	}
	c := e.openClient(token, "sdk-signer", clientOpts{dbPath: db})
	sig, err := c.PutBlob(stampPNG(t))
	if err != nil {
		t.Fatal(err)
	}
	var sheets []string
	for i := 0; i < 2; i++ {
		id := e.newTicket("sdk: signed on the device")
		e.dispatch(id, "tech1")
		syncNow(t, c)
		mutate(t, c, "ticket", id, "action", 0, nil, "accept")
		sid := client.NewID()
		mutate(t, c, "feedback_sheet", sid, "create", 0, map[string]any{"ticket_id": id, "fault_symptoms": "不制冷\n\"异响\"",
			"inspection_record": "电容老化", "handling_result": "更换电容", "rating": 5, "signer_name": "王建国",
			"signature_blob": sig, "stamp_blob": sig}, "")
		if _, err := c.SignSheet(sid); err != nil {
			t.Fatal(err)
		}
		sheets = append(sheets, sid)
	}
	syncNow(t, c)
	if rej, _ := c.Rejections(); len(rej) != 0 {
		t.Fatalf("rejections: %+v", rej)
	}
	var prevSig string
	for i, sid := range sheets {
		var s map[string]any
		e.must("GET", "/api/v1/sheets/"+sid, e.coord, nil, 200, &s)
		var v map[string]any
		_, body := e.do("GET", "/verify/"+sid+"/"+s["fingerprint"].(string), "", nil, "Accept", "application/json")
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		if v["valid"] != true || v["device_signed"] != true || v["device_valid"] != true || v["device_chain_gap"] == true {
			t.Fatalf("sheet %d verdict: %s", i, body)
		}
		if got, _ := v["device_prev_signature"].(string); got != prevSig {
			t.Fatalf("sheet %d: prev %q, want %q", i, got, prevSig)
		}
		prevSig = v["device_signature"].(string)
	}

	// An older app, without a key.
	old, _ := e.newClient("tech1", "old-app", clientOpts{})
	id := e.newTicket("sdk: old app")
	e.dispatch(id, "tech1")
	syncNow(t, old)
	mutate(t, old, "ticket", id, "action", 0, nil, "accept")
	sid := client.NewID()
	mutate(t, old, "feedback_sheet", sid, "create", 0, map[string]any{"ticket_id": id, "fault_symptoms": "x"}, "")
	if _, err := old.SignSheet(sid); err != nil {
		t.Fatal(err)
	}
	syncNow(t, old)
	var s map[string]any
	e.must("GET", "/api/v1/sheets/"+sid, e.coord, nil, 200, &s)
	_, body := e.do("GET", "/verify/"+sid+"/"+s["fingerprint"].(string), "", nil, "Accept", "application/json")
	var v map[string]any
	json.Unmarshal(body, &v)
	if v["valid"] != true || v["device_signed"] != false || v["device_note"] == "" {
		t.Fatalf("old app verdict: %s", body)
	}
}
