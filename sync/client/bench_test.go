package client

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	syncer "fieldsync/sync"
)

// pageFrame is a changes frame of n ticket records of about 1.9 KB each, as the server
// writes it for a fresh device's first sync.
func pageFrame(b testing.TB, n int) []byte {
	b.Helper()
	changes := make([]syncer.Change, n)
	for i := range changes {
		id := fmt.Sprintf("01a227f7-ca75-72e6-b72d-%012d", i)
		rec := map[string]any{"id": id, "number": fmt.Sprintf("SR-202611-%04d", i), "status": "dispatched", "urgency": "normal",
			"fault_symptoms": strings.Repeat("控制柜报警 alarm lamp stays on; ", 14), "address": "浙江省杭州市西湖区文三路 90 号 B 栋机房",
			"customer_id": "01a227f7-c158-79e2-8e78-c8461fe12a69", "site_id": "01a227f7-c38d-77c9-9e76-c2acecb5ffed",
			"asset_id": "01a227f7-c600-7809-8b89-4d8f77c40750", "assignee_id": "01a227f7-c155-7dea-8930-b3ed2d3903d2",
			"due_response_at": "2026-11-29T19:41:20.373Z", "due_arrival_at": "2026-11-30T15:41:20.373Z", "accepted_at": nil,
			"arrived_at": nil, "completed_at": nil, "cancelled_at": nil, "chargeable": false, "time_spent_min": 0, "version": 2,
			"created_at": "2026-11-29T15:41:20.373Z", "updated_at": "2026-11-29T15:41:30.477Z", "tech_notes": "", "verified": true}
		changes[i] = syncer.Change{Seq: int64(i + 1), Entity: "ticket", ID: id, Op: syncer.OpUpsert, Version: 2, Record: mustJSON(rec)}
	}
	cp, more := fmt.Sprintf("t%d", n), true
	data, err := syncer.EncodeFrame(syncer.Frame{Type: syncer.MsgChanges, Re: "p1", Changes: changes, Checkpoint: &cp, HasMore: &more})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkDecodePage is the device's decoding of one changes frame of 5,000 tickets (its
// reader goroutine's work for a page of a first sync).
func BenchmarkDecodePage(b *testing.B) {
	data := pageFrame(b, 5000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeFrame(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStorePage is the device's storing of one page of a first sync: 5,000 new tickets
// and the checkpoint in one transaction (the store is emptied between pages, untimed).
func BenchmarkStorePage(b *testing.B) {
	var f syncer.Frame
	if err := json.Unmarshal(pageFrame(b, 5000), &f); err != nil {
		b.Fatal(err)
	}
	st, err := openStore(filepath.Join(b.TempDir(), "device.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	for b.Loop() {
		if _, err := st.applyChanges(f.Changes, f.Checkpoint); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := st.w.Exec(`DELETE FROM records`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
