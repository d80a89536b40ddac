package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
)

// benchScope builds an engine whose technician holds n dispatched tickets (with their
// customer, site, asset and dispatch events) and returns the technician's device actor and
// the ticket ids.
func benchScope(b testing.TB, n int) (*Engine, schema.Actor, []string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := schema.OpenStore(ctx, dir, testpg.For(b, dir))
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close(); db.Close() })
	u, err := e.CreateUser(ctx, schema.System, NewUser{Username: "bench-tech", Name: "Bench Tech", Role: schema.RoleTechnician, Password: "bench-password"})
	if err != nil {
		b.Fatal(err)
	}
	tech := schema.Actor{UserID: u.Str("id"), Role: schema.RoleTechnician, Name: "Bench Tech", DeviceID: "bench-device"}
	coord := schema.Actor{UserID: "bench-coord", Role: schema.RoleCoordinator}
	apply := func(ms []Mutation) {
		res, err := e.Apply(ctx, coord, ms, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Status == StatusRejected {
				b.Fatalf("setup: %s %s: %s", r.Code, r.ID, r.Message)
			}
		}
	}
	cust, site, asset := uuid.NewString(), uuid.NewString(), uuid.NewString()
	apply([]Mutation{
		{Entity: schema.EntCustomer, ID: cust, Op: "create", Fields: raw(map[string]any{"name": "Bench Customer"})},
		{Entity: schema.EntSite, ID: site, Op: "create", Fields: raw(map[string]any{"customer_id": cust, "name": "Plant 1"})},
		{Entity: schema.EntAsset, ID: asset, Op: "create", Fields: raw(map[string]any{"customer_id": cust, "site_id": site, "model": "X-200", "serial": "SN-1"})},
	})
	ids := make([]string, n)
	for start := 0; start < n; start += 100 {
		var ms []Mutation
		for i := start; i < min(start+100, n); i++ {
			ids[i] = uuid.NewString()
			ms = append(ms,
				Mutation{Entity: schema.EntTicket, ID: ids[i], Op: "create", Fields: raw(map[string]any{"customer_id": cust, "site_id": site,
					"asset_id": asset, "fault_symptoms": fmt.Sprintf("fault %d: alarm lamp stays on", i), "urgency": "normal", "agreed_handling": "visit"})},
				Mutation{Entity: schema.EntTicket, ID: ids[i], Op: "action", Action: "dispatch", Fields: raw(map[string]any{"technician_id": tech.UserID})})
		}
		apply(ms)
	}
	return e, tech, ids
}

func raw(m map[string]any) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range m {
		out[k] = schema.MustJSON(v)
	}
	return out
}

// BenchmarkPull pulls a technician's whole scope of 1,000 tickets (and their customer, site,
// asset, events, user record and settings) from an empty checkpoint, in pages of the
// default size, as a fresh install does.
func BenchmarkPull(b *testing.B) {
	e, tech, _ := benchScope(b, 1000)
	ctx := context.Background()
	changes := 0
	b.ResetTimer()
	for b.Loop() {
		cp, n := "", 0
		for range 100 {
			page, err := e.Pull(ctx, tech, cp, DefaultPullLimit)
			if err != nil {
				b.Fatal(err)
			}
			n += len(page.Changes)
			cp = page.Checkpoint
			if !page.HasMore {
				break
			}
		}
		changes = n
	}
	if changes < 2000 {
		b.Fatalf("pulled %d changes; want the 1,000 tickets with their events", changes)
	}
	b.ReportMetric(float64(changes), "changes/op")
	b.ReportMetric(float64(changes)*float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkPush pushes batches of 50 technician updates (notes and time spent on 50
// different tickets), each through the exactly-once table and the per-field merge.
func BenchmarkPush(b *testing.B) {
	e, tech, ids := benchScope(b, 1000)
	ctx := context.Background()
	versions := map[string]int64{}
	next := 0
	b.ResetTimer()
	for b.Loop() {
		ms := make([]Mutation, 50)
		for i := range ms {
			id := ids[next%len(ids)]
			next++
			ms[i] = Mutation{MID: uuid.NewString(), Entity: schema.EntTicket, ID: id, Op: "update", BaseVersion: versions[id],
				Fields: raw(map[string]any{"tech_notes": fmt.Sprintf("note %d", next), "time_spent_min": next % 600})}
		}
		res, err := e.Push(ctx, tech, ms)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Status != StatusApplied && r.Status != StatusMerged {
				b.Fatalf("%s: %s %s", r.Status, r.Code, r.Message)
			}
			versions[r.ID] = r.Version
		}
	}
	b.ReportMetric(50*float64(b.N)/b.Elapsed().Seconds(), "mutations/s")
}

// BenchmarkDecodePushFrame decodes a push of 500 mutations as a phone sends it; CheckJSON
// is the part spent refusing duplicate keys and invalid UTF-8.
func BenchmarkDecodePushFrame(b *testing.B) {
	var ms []string
	for i := range 500 {
		ms = append(ms, fmt.Sprintf(`{"mid":"m-%04d","entity":"ticket_event","id":"e-%04d","op":"create","base_version":0,"at":"2026-11-29T08:00:00Z","fields":{"ticket_id":"t-1","note":"现场检查：更换保险丝 %d，设备运行正常。 Replaced the fuse, running normally."}}`, i, i, i))
	}
	frame := []byte(`{"type":"push","id":"p1","mutations":[` + strings.Join(ms, ",") + `]}`)
	b.Run("CheckJSON", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if err := schema.CheckJSON(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeFrame", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if _, err := DecodeFrame(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
}
