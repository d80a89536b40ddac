package client

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	syncer "fieldsync/sync"
)

// openTest opens a client on a fresh local store; nothing listens at its BaseURL.
func openTest(t *testing.T, dbPath string) *Client {
	t.Helper()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "device.db")
	}
	c, err := Open(Config{BaseURL: "http://127.0.0.1:1", DBPath: dbPath, Token: "tok", DeviceID: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ptr[T any](v T) *T { return &v }

func upsert(entity, id string, version int64, data string) syncer.Change {
	return syncer.Change{Entity: entity, ID: id, Op: syncer.OpUpsert, Version: version, Record: json.RawMessage(data)}
}

func TestOutboxSurvivesCloseAndOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "device.db")
	c := openTest(t, path)
	id := NewID()
	var mids []string
	for _, m := range []struct {
		op     string
		fields map[string]any
		action string
	}{
		{"create", map[string]any{"title": "pump leaks"}, ""},
		{"update", map[string]any{"notes": "seal worn"}, ""},
		{"action", map[string]any{"service_mode": "phone"}, "complete"},
	} {
		mid, err := c.Mutate("ticket", id, m.op, 0, m.fields, m.action)
		if err != nil {
			t.Fatal(err)
		}
		mids = append(mids, mid)
	}
	c.Close()

	c = openTest(t, path)
	if got := c.State().Pending; got != 3 {
		t.Fatalf("pending after reopen = %d, want 3", got)
	}
	rows, err := outbox(c.st.r, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r.m.MID != mids[i] {
			t.Errorf("outbox[%d] = %s, want %s (order kept)", i, r.m.MID, mids[i])
		}
	}
	if got := string(rows[2].m.Fields["service_mode"]); got != `"phone"` || rows[2].m.Action != "complete" {
		t.Errorf("action row = %+v", rows[2].m)
	}
}

func TestMutateRefusesBadShapes(t *testing.T) {
	c := openTest(t, "")
	for name, call := range map[string]func() error{
		"no id":          func() error { _, err := c.Mutate("ticket", "", "update", 1, nil, ""); return err },
		"unknown op":     func() error { _, err := c.Mutate("ticket", "x", "upsert", 1, nil, ""); return err },
		"action no name": func() error { _, err := c.Mutate("ticket", "x", "action", 1, nil, ""); return err },
		"fields not obj": func() error { _, err := c.MutateJSON("ticket", "x", "update", 1, []byte(`[1]`), ""); return err },
	} {
		if call() == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := c.State().Pending; n != 0 {
		t.Errorf("pending = %d after refused mutations", n)
	}
}

func TestApplyChangesStoresCheckpointAtomically(t *testing.T) {
	c := openTest(t, "")
	if _, err := c.st.applyChanges([]syncer.Change{upsert("ticket", "a", 1, `{"id":"a"}`)}, ptr("1")); err != nil {
		t.Fatal(err)
	}
	// A batch with a bad change must leave neither its good changes nor its checkpoint.
	bad := []syncer.Change{upsert("ticket", "b", 1, `{"id":"b"}`), {Entity: "ticket", ID: "c", Op: syncer.OpUpsert, Version: 1}}
	if _, err := c.st.applyChanges(bad, ptr("3")); err == nil {
		t.Fatal("a batch with an upsert without record was applied")
	}
	if cp := c.State().Checkpoint; cp != "1" {
		t.Errorf("checkpoint = %q, want 1", cp)
	}
	if _, ok, _ := c.Record("ticket", "b"); ok {
		t.Error("ticket b applied from a failed batch")
	}
	// Delete removes; an older version never replaces a newer one.
	_, err := c.st.applyChanges([]syncer.Change{
		upsert("ticket", "a", 3, `{"id":"a","n":3}`),
		upsert("ticket", "a", 2, `{"id":"a","n":2}`),
		{Entity: "ticket", ID: "gone", Op: syncer.OpDelete, Version: 4},
	}, ptr("4"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := c.Record("ticket", "a")
	if r.Version != 3 {
		t.Errorf("version = %d, want 3", r.Version)
	}
}

func TestEvictKeepsPendingMutations(t *testing.T) {
	c := openTest(t, "")
	c.st.applyChanges([]syncer.Change{upsert("ticket", "t1", 2, `{"id":"t1","notes":""}`)}, ptr("1"))
	if _, err := c.Mutate("ticket", "t1", "update", 2, map[string]any{"notes": "done"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.st.applyChanges([]syncer.Change{{Entity: "ticket", ID: "t1", Op: syncer.OpEvict, Version: 3}}, ptr("2")); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Record("ticket", "t1"); ok {
		t.Error("evicted record still shown")
	}
	if n := c.State().Pending; n != 1 {
		t.Errorf("pending = %d after evict, want 1 (kept)", n)
	}
}

func TestOptimisticView(t *testing.T) {
	c := openTest(t, "")
	c.st.applyChanges([]syncer.Change{
		upsert("ticket", "a", 1, `{"id":"a","notes":"old","urgency":"high"}`),
		upsert("ticket", "b", 1, `{"id":"b"}`),
	}, ptr("1"))
	c.Mutate("ticket", "a", "update", 1, map[string]any{"notes": "new"}, "")
	c.Mutate("ticket", "a", "action", 1, map[string]any{"service_mode": "phone"}, "complete")
	c.Mutate("ticket", "b", "delete", 1, nil, "")
	newID := NewID()
	c.Mutate("ticket", newID, "create", 0, map[string]any{"title": "noise"}, "")

	rs, err := c.Records("ticket")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Record{}
	for _, r := range rs {
		got[r.ID] = r
	}
	if _, ok := got["b"]; ok || len(rs) != 2 {
		t.Errorf("records = %v, want a and the new one", rs)
	}
	var a map[string]any
	json.Unmarshal(got["a"].Data, &a)
	if a["notes"] != "new" || a["urgency"] != "high" || !got["a"].Pending || got["a"].Version != 1 {
		t.Errorf("a = %s pending %v", got["a"].Data, got["a"].Pending)
	}
	var n map[string]any
	json.Unmarshal(got[newID].Data, &n)
	if n["title"] != "noise" || n["id"] != newID {
		t.Errorf("created = %s", got[newID].Data)
	}
	// The digest sees only the server state.
	if count, _, _ := c.Digest(); count != 2 {
		t.Errorf("digest count = %d, want 2", count)
	}
}

func TestDigest(t *testing.T) {
	c := openTest(t, "")
	count, hash, err := c.Digest()
	if err != nil || count != 0 || hash != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty digest = %d %s %v", count, hash, err)
	}
	c.st.applyChanges([]syncer.Change{
		upsert("ticket", "b", 2, `{}`),
		upsert("customer", "a", 1, `{}`),
		upsert("ticket", "a", 13, `{}`),
		upsert("Ticket", "z", 1, `{}`), // upper case sorts first in byte order
	}, ptr("9"))
	// printf 'Ticket\nz\n1\ncustomer\na\n1\nticket\na\n13\nticket\nb\n2\n' | sha256sum
	const want = "0121437185bd2a74b016466919d5933ca48dc2f47521f8e33104c7fda94cf8ee"
	count, hash, _ = c.Digest()
	if count != 4 || hash != want {
		t.Errorf("digest = %d %s, want 4 %s", count, hash, want)
	}
}

func TestSplitBatch(t *testing.T) {
	rows := make([]outboxRow, 10)
	for i := range rows {
		rows[i].m = syncer.Mutation{MID: strings.Repeat("x", 36), Entity: "ticket", ID: "i", Op: "update",
			Fields: map[string]json.RawMessage{"notes": json.RawMessage(`"` + strings.Repeat("n", 100) + `"`)}}
	}
	one, _ := json.Marshal(rows[0].m)
	for _, tc := range []struct {
		name            string
		maxCount, bytes int
		want            int
	}{
		{"count", 4, 0, 4},
		{"all", 500, 0, 10},
		{"bytes", 500, pushOverhead + 3*(len(one)+1), 3},
		{"one too big still goes alone", 500, 10, 1},
		{"zero count means one", 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(splitBatch(rows, tc.maxCount, tc.bytes)); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestDueRowsHoldsBackLaterMutationsOfADeferredRecord(t *testing.T) {
	now := time.Now()
	later := now.Add(time.Minute).UnixMilli()
	rows := []outboxRow{
		{m: syncer.Mutation{MID: "1", Entity: "ticket", ID: "a"}, nextAt: later},
		{m: syncer.Mutation{MID: "2", Entity: "ticket", ID: "b"}},
		{m: syncer.Mutation{MID: "3", Entity: "ticket", ID: "a"}},
	}
	due, wake := dueRows(rows, now)
	if len(due) != 1 || due[0].m.MID != "2" {
		t.Errorf("due = %v, want only 2", due)
	}
	if wake.UnixMilli() != later {
		t.Errorf("wake = %v", wake)
	}
}

func TestBackoffBounds(t *testing.T) {
	minD, maxD := 200*time.Millisecond, 30*time.Second
	for n := -1; n < 100; n++ {
		for range 50 {
			d := backoff(n, minD, maxD)
			if d < minD/2 || d > maxD {
				t.Fatalf("backoff(%d) = %v outside [%v, %v]", n, d, minD/2, maxD)
			}
			if n <= 1 && d > minD {
				t.Fatalf("backoff(%d) = %v above the first delay %v", n, d, minD)
			}
		}
	}
	if d := backoff(10, minD, maxD); d < maxD/2 {
		t.Errorf("backoff(10) = %v, want near the cap", d)
	}
}

func TestBlobRefs(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	got := blobRefs(map[string]json.RawMessage{
		"signature_blob": json.RawMessage(`"` + sha + `"`),
		"stamp_blob":     json.RawMessage(`"not a hash"`),
		"photo":          json.RawMessage(`"` + sha + `"`),
	})
	if len(got) != 1 || got[0] != sha {
		t.Errorf("refs = %v", got)
	}
}
