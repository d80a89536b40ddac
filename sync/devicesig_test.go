package sync_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldsync/reports"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// deviceSigner is a technician's device with a registered key, as the field app and the Go
// SDK are: it signs sheets in a chain.
type deviceSigner struct {
	s     *sheetEngine
	actor schema.Actor
	key   *schema.DeviceKey
	last  string
}

func (s *sheetEngine) device(t *testing.T, name string, withKey bool) *deviceSigner {
	t.Helper()
	d := &deviceSigner{s: s}
	login := &syncer.DeviceLogin{DeviceID: name}
	if withKey {
		var err error
		if d.key, err = schema.NewDeviceKey(); err != nil {
			t.Fatal(err)
		}
		login.PublicKey = d.key.PublicB64()
	}
	_, sess, err := s.e.Login(context.Background(), "tech", "password-tech", login)
	if err != nil {
		t.Fatal(err)
	}
	d.actor = sess.Actor
	return d
}

// params signs sheet (as the device holds it) at deviceTime, chained to the device's last.
func (d *deviceSigner) params(t *testing.T, sheet schema.Doc, deviceTime string) map[string]any {
	t.Helper()
	msg := schema.DeviceSignedMessage(schema.SheetDeviceFingerprint(sheet), deviceTime, d.last)
	sig, err := d.key.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]any{"device_time": deviceTime, "device_signature": sig}
	if d.last != "" {
		p["device_prev_signature"] = d.last
	}
	d.last = sig
	return p
}

func (d *deviceSigner) sign(id string, p map[string]any) syncer.Result {
	return d.s.try(d.actor, syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "action", Action: "sign", Fields: raw(p)})
}

// TestDeviceSignedSheets: a device that registered a key signs its sheets; the server
// verifies before sealing and the seal covers the device signature. A sheet altered after
// the device signed it, a signature replayed on another sheet and a sign without a device
// signature are refused (device_signature) and change nothing; a gap in the device's chain
// is flagged; a revoked device cannot send; a device without a key (an older app) still
// signs and its sheet says "not signed on the device".
func TestDeviceSignedSheets(t *testing.T) {
	s := newSheetEngine(t)
	ctx := context.Background()
	fields := map[string]any{"ticket_id": s.ticket, "fault_symptoms": "不制冷\n\"异响\"", "inspection_record": "b", "handling_result": "c",
		"rating": 4, "signer_name": "张伟", "signature_blob": s.sig, "stamp_blob": s.stamp, "parts": []any{}}
	dev := s.device(t, "phone-1", true)
	create := func(actor schema.Actor) (string, schema.Doc) {
		id := s.apply(actor, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(fields)})
		return id, s.get(id)
	}

	// Signed and sealed: the verdict shows both signatures valid.
	a, sheetA := create(dev.actor)
	if r := dev.sign(a, dev.params(t, sheetA, "2026-11-05T14:05:00+08:00")); r.Status != syncer.StatusApplied {
		t.Fatalf("sign: %+v", r)
	}
	d := s.get(a)
	if d.Str("device_signature") == "" || d.Str("signed_at") != "2026-11-05T06:05:00.000Z" || d.Bool("device_chain_gap") {
		t.Fatalf("signed sheet: %v", d)
	}
	v, err := s.e.VerifySheet(ctx, a, d.Str("fingerprint"))
	if err != nil || !v.Valid || !v.DeviceSigned || !v.DeviceValid {
		t.Fatalf("verdict: %+v %v", v, err)
	}
	// The seal covers the device signature: changing it in the store breaks the fingerprint.
	tampered := d.Clone()
	tampered["device_time"] = "2026-11-05T09:00:00+08:00"
	if schema.SheetFingerprint(tampered, map[string]string{"signature_blob": s.sig, "stamp_blob": s.stamp}) == d.Str("fingerprint") {
		t.Fatal("the seal does not cover the device time")
	}

	// Altered after signing: the device signed one content, the server holds another.
	b, sheetB := create(dev.actor)
	p := dev.params(t, sheetB, "2026-11-05T15:00:00+08:00")
	s.apply(dev.actor, syncer.Mutation{Entity: schema.EntSheet, ID: b, Op: "update", BaseVersion: sheetB.Int("version"), Fields: raw(map[string]any{"handling_result": "changed"})})
	if r := dev.sign(b, p); r.Code != schema.CodeDeviceSignature || r.Field != "device_signature" || !strings.Contains(r.Message, "changed after signing") {
		t.Fatalf("altered sheet: %+v", r)
	}
	// A signature replayed on another sheet.
	c, _ := create(dev.actor)
	if r := dev.sign(c, p); r.Code != schema.CodeDeviceSignature {
		t.Fatalf("replayed signature: %+v", r)
	}
	// No signature at all from a device with a key.
	if r := dev.sign(c, map[string]any{"signed_at": "2026-11-05T15:00:00+08:00"}); r.Code != schema.CodeDeviceSignature {
		t.Fatalf("missing signature: %+v", r)
	}
	if got := s.get(c); got.Str("status") != schema.SheetDraft || got.Str("device_signature") != "" {
		t.Fatalf("a refused sign changed the sheet: %v", got)
	}

	// A gap: the device signed sheet B (refused above, as if deleted from the phone), then C
	// chained to it; the server's last signature of this device is A's.
	dev.last = p["device_signature"].(string)
	_, sheetC := c, s.get(c)
	if r := dev.sign(c, dev.params(t, sheetC, "2026-11-05T16:00:00+08:00")); r.Status != syncer.StatusApplied {
		t.Fatalf("sign after a gap: %+v", r)
	}
	v, _ = s.e.VerifySheet(ctx, c, s.get(c).Str("fingerprint"))
	if !v.DeviceValid || !v.DeviceChainGap || !strings.Contains(v.DeviceNote, "gap") {
		t.Fatalf("the gap is not flagged: %+v", v)
	}

	// A revoked device cannot send its signatures.
	if err := s.e.RevokeDevice(ctx, dev.actor.DeviceID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.e.Login(ctx, "tech", "password-tech", &syncer.DeviceLogin{DeviceID: "phone-1", PublicKey: dev.key.PublicB64()}); schema.ErrorCode(err) != schema.CodeForbidden {
		t.Fatalf("login of a revoked device: %v", err)
	}
	// Another device cannot pass off the revoked device's signature as its own.
	other := s.device(t, "phone-2", true)
	e, sheetE := create(other.actor)
	revoked := &deviceSigner{s: s, actor: dev.actor, key: dev.key}
	if r := other.sign(e, revoked.params(t, sheetE, "2026-11-05T17:00:00+08:00")); r.Code != schema.CodeDeviceSignature {
		t.Fatalf("a revoked device's signature sent by another device: %+v", r)
	}

	// A device without a key: signed as before, "not signed on the device".
	old := s.device(t, "old-phone", false)
	f, _ := create(old.actor)
	if r := s.try(old.actor, syncer.Mutation{Entity: schema.EntSheet, ID: f, Op: "action", Action: "sign"}); r.Status != syncer.StatusApplied {
		t.Fatalf("old app: %+v", r)
	}
	v, _ = s.e.VerifySheet(ctx, f, s.get(f).Str("fingerprint"))
	if !v.Valid || v.DeviceSigned || !strings.Contains(v.DeviceNote, "not signed on the device") {
		t.Fatalf("old app verdict: %+v", v)
	}

	// A key that is not P-256 is refused at login.
	if _, _, err := s.e.Login(ctx, "tech", "password-tech", &syncer.DeviceLogin{DeviceID: "phone-3", PublicKey: "AAAA"}); schema.ErrorCode(err) != schema.CodeValidation {
		t.Fatalf("bad key: %v", err)
	}
}

// TestPhoneClockOffIsFlagged: a phone whose clock is 2 hours ahead reports it in hello; the
// server records the offset, the sheet signed on it carries the offset, the verify answer
// shows it, and the month's facts and report flag the service. A phone within the
// tolerance is not flagged; a bad client_time is refused naming it.
func TestPhoneClockOffIsFlagged(t *testing.T) {
	s := newSheetEngine(t)
	ctx := context.Background()
	fields := map[string]any{"ticket_id": s.ticket, "fault_symptoms": "a", "inspection_record": "b", "handling_result": "c",
		"rating": 4, "signer_name": "d", "signature_blob": s.sig, "stamp_blob": s.stamp}
	dev := s.device(t, "fast-phone", true)
	if err := s.e.RecordClock(ctx, dev.actor.DeviceID, "yesterday"); schema.ErrorCode(err) != schema.CodeValidation {
		t.Fatalf("bad client_time: %v", err)
	}
	phone := time.Now().Add(2 * time.Hour)
	if err := s.e.RecordClock(ctx, dev.actor.DeviceID, phone.Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	id := s.apply(dev.actor, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(fields)})
	if r := dev.sign(id, dev.params(t, s.get(id), phone.UTC().Format(time.RFC3339Nano))); r.Status != syncer.StatusApplied {
		t.Fatalf("sign: %+v", r)
	}
	d := s.get(id)
	if off := d.Int("device_clock_offset_ms"); off < 7190_000 || off > 7210_000 {
		t.Fatalf("recorded offset %d ms, want about 2 h", off)
	}
	v, err := s.e.VerifySheet(ctx, id, d.Str("fingerprint"))
	if err != nil || v.DeviceClockOffsetMS == nil || v.ClockFlag == "" || !v.Valid || !v.DeviceValid {
		t.Fatalf("verdict: %+v %v", v, err)
	}
	in, err := s.e.MonthFactsPreview(ctx, schema.MonthOf(time.Now(), s.e.Settings().Location()))
	if err != nil {
		t.Fatal(err)
	}
	var flagged bool
	for _, f := range in.Sheets {
		if f.SheetID == id {
			flagged = strings.Contains(f.ClockFlag, "2h0m0s ahead of")
		}
	}
	if !flagged {
		t.Fatalf("the month's facts do not flag the sheet: %+v", in.Sheets)
	}
	res := reports.ComputeMonth(in)
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, id) && strings.Contains(w, "phone clock") }) {
		t.Fatalf("the month report does not flag the sheet: %v", res.Warnings)
	}

	// A phone 40 s off, within the tolerance: shown, not flagged.
	if err := s.e.RecordClock(ctx, dev.actor.DeviceID, time.Now().Add(40*time.Second).Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	id2 := s.apply(dev.actor, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(fields)})
	if r := dev.sign(id2, dev.params(t, s.get(id2), time.Now().Format(time.RFC3339Nano))); r.Status != syncer.StatusApplied {
		t.Fatalf("sign: %+v", r)
	}
	v, _ = s.e.VerifySheet(ctx, id2, s.get(id2).Str("fingerprint"))
	if v.DeviceClockOffsetMS == nil || v.ClockFlag != "" {
		t.Fatalf("a phone within the tolerance: %+v", v)
	}
}
