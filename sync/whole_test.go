package sync_test

import (
	"context"
	"errors"
	"testing"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// A Whole batch with one bad mutation writes nothing and names the bad one; a DryRun batch
// answers what would happen and writes nothing either.
func TestWholeBatchIsAllOrNothing(t *testing.T) {
	s := newSheetEngine(t)
	ctx := context.Background()
	count := func() int {
		n, err := s.e.Count(ctx, syncer.Query{Entity: schema.EntCustomer})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	batch := []syncer.Mutation{
		{Entity: "customer", ID: "c-new-1", Op: "create", Fields: raw(map[string]any{"name": "甲"})},
		{Entity: "site", ID: "s-new-1", Op: "create", Fields: raw(map[string]any{"customer_id": "c-new-1", "name": "总部"})},
		{Entity: "customer", ID: "c-new-2", Op: "create", Fields: raw(map[string]any{"phone": "no name"})},
	}
	res, err := s.e.Apply(ctx, s.coord, batch, syncer.Options{Whole: true})
	if !errors.Is(err, syncer.ErrNotWritten) || len(res) != 3 {
		t.Fatalf("a Whole batch with a bad mutation: %v, %d results", err, len(res))
	}
	if res[0].Status == syncer.StatusRejected || res[2].Status != syncer.StatusRejected || res[2].Field != "name" {
		t.Errorf("results: %+v", res)
	}
	if n := count(); n != before {
		t.Errorf("a refused Whole batch wrote %d customers", n-before)
	}

	batch = batch[:2]
	if res, err = s.e.Apply(ctx, s.coord, batch, syncer.Options{DryRun: true}); !errors.Is(err, syncer.ErrNotWritten) || res[1].Status != syncer.StatusApplied {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	if n := count(); n != before {
		t.Errorf("a dry run wrote %d customers", n-before)
	}
	if res, err = s.e.Apply(ctx, s.coord, batch, syncer.Options{Whole: true}); err != nil || res[1].Status != syncer.StatusApplied {
		t.Fatalf("a good Whole batch: %v %+v", err, res)
	}
	if n := count(); n != before+1 {
		t.Errorf("a good Whole batch wrote %d customers, want 1", n-before)
	}
}
