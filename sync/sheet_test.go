package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// sheetEngine is an engine on a fresh store with a blob store, a seal key, a coordinator,
// a technician and a completed phone ticket assigned to the technician.
type sheetEngine struct {
	t      *testing.T
	e      *syncer.Engine
	coord  schema.Actor
	tech   schema.Actor
	ticket string
	sig    string
	stamp  string
	dir    string // the data folder
}

func newSheetEngine(t *testing.T) *sheetEngine {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := schema.OpenStore(ctx, dir, testpg.For(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	e, err := syncer.New(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); db.Close() })
	if e.Blobs, err = syncer.OpenBlobStoreIn(db, filepath.Join(dir, "blobs"), 1<<20); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Blobs.Close() })
	if e.Sealer, err = schema.LoadSealKey(dir); err != nil {
		t.Fatal(err)
	}
	s := &sheetEngine{t: t, e: e, dir: dir}
	user := func(name, role string) schema.Actor {
		d, err := e.CreateUser(ctx, schema.System, syncer.NewUser{Username: name, Name: name, Role: role, Password: "password-" + name})
		if err != nil {
			t.Fatal(err)
		}
		return schema.Actor{UserID: d.Str("id"), Role: role, Name: name}
	}
	s.coord, s.tech = user("coord", schema.RoleCoordinator), user("tech", schema.RoleTechnician)
	cust := s.apply(s.coord, syncer.Mutation{Entity: "customer", Op: "create", Fields: raw(map[string]any{"name": "客户"})})
	s.ticket = s.apply(s.coord, syncer.Mutation{Entity: "ticket", Op: "create", Fields: raw(map[string]any{"customer_id": cust, "fault_symptoms": "x", "service_mode": "phone"})})
	for _, a := range []struct {
		action string
		params map[string]any
	}{{"dispatch", map[string]any{"technician_id": s.tech.UserID}}, {"accept", nil}, {"start", nil}, {"complete", map[string]any{"service_mode": "phone"}}} {
		s.apply(s.coord, syncer.Mutation{Entity: "ticket", ID: s.ticket, Op: "action", Action: a.action, Fields: raw(a.params)})
	}
	s.sig = s.put(blobPNG(t, 4, 4))
	s.stamp = s.put(blobJPEG(t))
	return s
}

func raw(m map[string]any) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range m {
		out[k] = schema.MustJSON(v)
	}
	return out
}

func (s *sheetEngine) put(b []byte) string {
	s.t.Helper()
	sum := blobSum(b)
	if _, _, err := s.e.Blobs.Append("", sum, 0, int64(len(b)), bytes.NewReader(b)); err != nil {
		s.t.Fatal(err)
	}
	return sum
}

func (s *sheetEngine) try(actor schema.Actor, m syncer.Mutation) syncer.Result {
	s.t.Helper()
	res, err := s.e.Apply(context.Background(), actor, []syncer.Mutation{m}, syncer.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	return res[0]
}

func (s *sheetEngine) apply(actor schema.Actor, m syncer.Mutation) string {
	s.t.Helper()
	r := s.try(actor, m)
	if r.Status == syncer.StatusRejected {
		s.t.Fatalf("%s %s %s: %s %s", m.Op, m.Entity, m.Action, r.Code, r.Message)
	}
	return r.ID
}

func (s *sheetEngine) get(id string) schema.Doc {
	s.t.Helper()
	d, err := s.e.Get(context.Background(), schema.EntSheet, id)
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

func TestSheetCompletenessFollowsTheSetting(t *testing.T) {
	s := newSheetEngine(t)
	fields := map[string]any{"ticket_id": s.ticket, "fault_symptoms": "a", "inspection_record": "b", "handling_result": "c",
		"rating": 5, "signer_name": "d", "signature_blob": s.sig}
	id := s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(fields)})
	if d := s.get(id); d.Bool("complete") || fmt.Sprint(d["missing"]) != "[stamp_blob]" {
		t.Fatalf("without stamp: complete %v missing %v", d["complete"], d["missing"])
	}
	// The items are set per service mode: narrowing the on-site list leaves this phone
	// service's sheet as it was; once the stamp is no longer required for phone service,
	// the next write finds it complete.
	if err := s.e.PutSettings(context.Background(), schema.System, raw(map[string]any{"sheet_required": []string{"fault_symptoms", "signature_blob"}})); err != nil {
		t.Fatal(err)
	}
	s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "update", BaseVersion: 1, Fields: raw(map[string]any{"rating_comment": "好"})})
	if d := s.get(id); d.Bool("complete") {
		t.Fatalf("the on-site list decided a phone service's sheet: missing %v", d["missing"])
	}
	if err := s.e.PutSettings(context.Background(), schema.System, raw(map[string]any{"sheet_required_phone": []string{"fault_symptoms", "signature_blob"}})); err != nil {
		t.Fatal(err)
	}
	s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "update", BaseVersion: 2, Fields: raw(map[string]any{"rating_comment": "很好"})})
	if d := s.get(id); !d.Bool("complete") || fmt.Sprint(d["missing"]) != "[]" {
		t.Fatalf("with the narrower setting: complete %v missing %v", d["complete"], d["missing"])
	}
}

func TestSheetSignSealsAndVerifies(t *testing.T) {
	s := newSheetEngine(t)
	now := time.Date(2026, 11, 5, 8, 0, 0, 0, time.UTC)
	s.e.Now = func() time.Time { return now }
	fields := map[string]any{"ticket_id": s.ticket, "fault_symptoms": "a", "inspection_record": "b", "handling_result": "c",
		"rating": 4, "signer_name": "d", "signature_blob": s.sig, "stamp_blob": s.stamp}
	var prev schema.Doc
	for i := 1; i <= 2; i++ {
		id := s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(fields)})
		s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "action", Action: "sign", Fields: raw(map[string]any{"signed_at": "2026-11-01T09:00:00+08:00"})})
		d := s.get(id)
		if d.Str("status") != schema.SheetSigned || d.Str("signed_at") != "2026-11-01T01:00:00.000Z" || d.Str("received_at") != schema.Stamp(now) {
			t.Fatalf("sheet %d: status %s signed_at %s received_at %s", i, d.Str("status"), d.Str("signed_at"), d.Str("received_at"))
		}
		if d.Int("chain_index") != int64(i) || prev != nil && d.Str("prev_fingerprint") != prev.Str("fingerprint") {
			t.Fatalf("sheet %d: chain %d prev %s", i, d.Int("chain_index"), d.Str("prev_fingerprint"))
		}
		if got := schema.SheetFingerprint(d, map[string]string{"signature_blob": s.sig, "stamp_blob": s.stamp}); got != d.Str("fingerprint") {
			t.Fatalf("stored fingerprint %s, recomputed %s", d.Str("fingerprint"), got)
		}
		if !schema.VerifySeal(s.e.Sealer.Public(), d.Str("fingerprint"), d.Str("seal")) {
			t.Fatal("seal does not verify")
		}
		v, err := s.e.VerifySheet(context.Background(), id, d.Str("fingerprint"))
		if err != nil || !v.Valid || v.Date != "2026-11-01" {
			t.Fatalf("verify: %+v %v", v, err)
		}
		prev = d
	}
	// A bad device time is refused, naming the parameter.
	id := s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(fields)})
	if r := s.try(s.tech, syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "action", Action: "sign", Fields: raw(map[string]any{"signed_at": "yesterday"})}); r.Code != schema.CodeValidation || r.Field != "signed_at" {
		t.Fatalf("bad signed_at: %+v", r)
	}
	// The mutation's own time is kept when no signed_at is given.
	r := s.try(s.tech, syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "action", Action: "sign", At: "2026-11-03T10:00:00Z"})
	if r.Status != syncer.StatusApplied || s.get(id).Str("signed_at") != "2026-11-03T10:00:00.000Z" {
		t.Fatalf("sign with at: %+v %s", r, s.get(id).Str("signed_at"))
	}
}

// TestVerifySheetPublicView checks what the public verify answer shows: a draft is "not
// signed" with no names; a sealed sheet shows its names, times and fingerprint only to the
// holder of its fingerprint (from the printed copy's QR code), since sheet ids can be
// guessed; the images of a sealed sheet are hashed once, not on every request, yet an
// image changed on disk is still found.
func TestVerifySheetPublicView(t *testing.T) {
	s := newSheetEngine(t)
	ctx := context.Background()
	fields := map[string]any{"ticket_id": s.ticket, "fault_symptoms": "a", "inspection_record": "b", "handling_result": "c",
		"rating": 4, "signer_name": "d", "signature_blob": s.sig, "stamp_blob": s.stamp}
	draft := s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(fields)})
	v, err := s.e.VerifySheet(ctx, draft, "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Valid || v.Customer != "" || v.Technician != "" || v.Number != "" || v.Date != "" || len(v.Reasons) != 1 {
		t.Errorf("draft: %+v, want not signed and no names", v)
	}

	id := s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: raw(fields)})
	s.apply(s.tech, syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "action", Action: "sign"})
	fp := s.get(id).Str("fingerprint")
	for _, given := range []string{"", "0000000000000000"} {
		v, err := s.e.VerifySheet(ctx, id, given)
		if err != nil {
			t.Fatal(err)
		}
		if v.Customer != "" || v.Technician != "" || v.Number != "" || v.Fingerprint != "" || v.Seal != "" || v.SignedAt != "" {
			t.Errorf("fingerprint %q: names or fingerprint shown without the copy's fingerprint: %+v", given, v)
		}
	}
	before := s.e.Blobs.HashedBytes()
	for range 3 {
		v, err := s.e.VerifySheet(ctx, id, fp[:16])
		if err != nil || !v.Valid || v.Customer != "客户" || v.Technician != "tech" || v.Fingerprint != fp {
			t.Fatalf("holder of the fingerprint: %+v %v", v, err)
		}
	}
	if n := s.e.Blobs.HashedBytes() - before; n != 0 {
		t.Errorf("three verifications of a sealed sheet hashed %d bytes of images again", n)
	}

	// An image replaced behind the store's back (with other content) is found despite the
	// cache.
	if err := syncer.ReplaceBlob(s.e.Blobs, s.sig, blobPNG(t, 5, 5)); err != nil {
		t.Fatal(err)
	}
	v, err = s.e.VerifySheet(ctx, id, fp)
	if err != nil || v.Valid {
		t.Fatalf("a changed signature image: %+v %v", v, err)
	}
}
