package sync

import (
	"context"
	"fmt"
	"testing"

	"fieldsync/schema"
)

// A paged pull reads the next page while the current one travels. A page read ahead is only
// the answer to the pull that continues from it; a write made meanwhile still reaches the
// device, in a later page, and a pull from elsewhere gets its own answer.
func TestPagedPullReadAheadMissesNothing(t *testing.T) {
	e, tech, ids := benchScope(t, 30)
	ctx := context.Background()
	cv := &Conversation{Session: &Session{Actor: tech}, Welcomed: true}
	n := 0
	pull := func(cp string) Frame {
		t.Helper()
		n++
		out, err := e.Handle(ctx, cv, &Frame{Type: MsgPull, ID: fmt.Sprint("p", n), Checkpoint: &cp, Limit: 10})
		if err != nil || len(out) != 1 || out[0].Type != MsgChanges {
			t.Fatalf("pull from %q: %+v %v", cp, out, err)
		}
		return out[0]
	}
	first := pull("")
	if !*first.HasMore || cv.ahead == nil {
		t.Fatalf("the first page of 10 (has_more %v) read nothing ahead", *first.HasMore)
	}
	// A pull from elsewhere (here the start again) is answered afresh, not with the page
	// read ahead.
	again := pull("")
	if again.Changes[0].Seq != first.Changes[0].Seq || *again.Checkpoint != *first.Checkpoint {
		t.Fatalf("a pull from the start answered from seq %d to %s, want from %d to %s",
			again.Changes[0].Seq, *again.Checkpoint, first.Changes[0].Seq, *first.Checkpoint)
	}
	<-cv.ahead.done // the second page is read; now every ticket changes
	coord := schema.Actor{UserID: "bench-coord", Role: schema.RoleCoordinator}
	var ms []Mutation
	for _, id := range ids {
		cur, err := e.Get(ctx, schema.EntTicket, id)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, Mutation{Entity: schema.EntTicket, ID: id, Op: "update", BaseVersion: cur.Int("version"),
			Fields: raw(map[string]any{"agreed_handling": "phone first"})})
	}
	if res, err := e.Apply(ctx, coord, ms, Options{}); err != nil || res[0].Status != StatusApplied {
		t.Fatalf("edits: %v %+v", err, res[0])
	}
	held := map[string]int64{}
	f := again
	for range 20 {
		for _, c := range f.Changes {
			held[c.Entity+"/"+c.ID] = max(held[c.Entity+"/"+c.ID], c.Version)
		}
		if !*f.HasMore {
			break
		}
		f = pull(*f.Checkpoint)
	}
	for _, id := range ids {
		cur, _ := e.Get(ctx, schema.EntTicket, id)
		if held["ticket/"+id] != cur.Int("version") {
			t.Fatalf("after paging, the device holds ticket %s at version %d, the server has %d", id, held["ticket/"+id], cur.Int("version"))
		}
	}
}
