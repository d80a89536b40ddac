package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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

// TestCatchUpPagesTakeTurns: while PagesAtOnce pages of catch-up pulls are being read, another
// catch-up pull waits for its turn (and gives up when its connection does), no page is read
// ahead, a live connection's wake-up does not wait, and the waiting pull is answered once a
// turn is free.
func TestCatchUpPagesTakeTurns(t *testing.T) {
	e, tech, _ := benchScope(t, 5)
	ctx := context.Background()
	for range PagesAtOnce() { // every turn taken, as by pages being read
		e.pages <- struct{}{}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := e.Pull(short, tech, "", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a catch-up pull with every turn taken: %v, want it to wait until its context ends", err)
	}
	// Nor is a page read ahead while pulls wait: it would only wait in memory.
	if _, err := e.pullPage(ctx, tech, "", 0, false); !errors.Is(err, errNotAhead) {
		t.Fatalf("a page read ahead with every turn taken: %v, want errNotAhead at once", err)
	}
	live := &Conversation{Session: &Session{Actor: tech}, Welcomed: true, Live: true, LiveRe: "l"}
	frames, err := e.LiveChanges(ctx, live)
	if err != nil || len(frames) == 0 || len(frames[0].Changes) == 0 {
		t.Fatalf("a live wake-up with every turn taken: %d frames, %v; want the scope's changes at once", len(frames), err)
	}
	got := make(chan error, 1)
	go func() {
		p, err := e.Pull(ctx, tech, "", 0)
		if err == nil && len(p.Changes) == 0 {
			err = errors.New("an empty page")
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("the pull was answered (%v) with every turn still taken", err)
	case <-time.After(50 * time.Millisecond):
	}
	<-e.pages // a page read ends
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("the waiting pull, once a turn was free: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting pull was not answered after a turn was free")
	}
}

// TestLiveWakeUpsShareARead: the phones of one technician, woken by the same commit at the
// same checkpoint, get the change from one read between them; a phone woken by a later
// commit does not join a read that began before that commit, and gets its change.
func TestLiveWakeUpsShareARead(t *testing.T) {
	e, tech, ids := benchScope(t, 3)
	ctx := context.Background()
	cp := ""
	for { // catch up, as the phones are before the commit
		p, err := e.Pull(ctx, tech, cp, 0)
		if err != nil {
			t.Fatal(err)
		}
		cp = p.Checkpoint
		if !p.HasMore {
			break
		}
	}
	edit := func(note string) {
		t.Helper()
		cur, err := e.Get(ctx, schema.EntTicket, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		ms := []Mutation{{Entity: schema.EntTicket, ID: ids[0], Op: "update", BaseVersion: cur.Int("version"),
			Fields: raw(map[string]any{"agreed_handling": note})}}
		if res, err := e.Apply(ctx, schema.Actor{UserID: "bench-coord", Role: schema.RoleCoordinator}, ms, Options{}); err != nil || res[0].Status != StatusApplied {
			t.Fatalf("edit: %v %+v", err, res)
		}
	}
	edit("first")
	got := make(chan []Frame, 8)
	// wake is a phone's connection woken at checkpoint cp: its live changes go to got.
	wake := func(cp string) {
		go func() {
			cv := &Conversation{Session: &Session{Actor: tech}, Welcomed: true, Live: true, LiveRe: "l", LiveCP: cp}
			frames, err := e.LiveChanges(ctx, cv)
			if err != nil {
				t.Error(err)
			}
			got <- frames
		}()
	}
	var reads atomic.Int32
	release := make(chan struct{})
	e.beforeLiveRead = func() {
		reads.Add(1)
		<-release
	}
	const phones = 6
	for range phones {
		wake(cp)
	}
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the others reach the read in flight
	close(release)
	var cpNow string
	for range phones {
		frames := <-got
		if len(frames) != 1 || len(frames[0].Changes) != 1 || frames[0].Changes[0].ID != ids[0] {
			t.Fatalf("a phone woken by the edit got %+v, want the edited ticket", frames)
		}
		cpNow = *frames[0].Checkpoint
	}
	if n := reads.Load(); n >= phones {
		t.Errorf("%d phones woken together made %d reads, want them to share", phones, n)
	}
	// A phone woken by a later commit does not join a read that began before that commit.
	release2 := make(chan struct{})
	reads.Store(0)
	e.beforeLiveRead = func() {
		reads.Add(1)
		<-release2
	}
	wake(cpNow)
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	edit("second")
	wake(cpNow)
	for deadline := time.Now().Add(10 * time.Second); reads.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(release2)
			t.Fatal("a phone woken by a later commit joined a read that began before it")
		}
	}
	close(release2)
	for range 2 {
		frames := <-got
		var rec map[string]any
		if len(frames) == 1 && len(frames[0].Changes) == 1 {
			json.Unmarshal(frames[0].Changes[0].Record, &rec)
		}
		if rec["agreed_handling"] != "second" {
			t.Errorf("after the second edit a phone got %+v, want the second edit", frames)
		}
	}
}
