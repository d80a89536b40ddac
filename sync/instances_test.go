package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	gosync "sync"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// Several instances on one PostgreSQL database (docs/operations.md, "Several instances").
// These tests run only against PostgreSQL: SQLite serves one machine.

// instances opens n engines on one fresh database, each with its own pools, as n
// fieldsync processes would.
func instances(t *testing.T, n int) []*syncer.Engine {
	t.Helper()
	if !testpg.On() {
		t.Skip("several instances need PostgreSQL: set " + testpg.Env + " (bash .ci/postgres)")
	}
	dir := t.TempDir()
	url := testpg.For(t, dir)
	var out []*syncer.Engine
	for range n {
		db, err := schema.OpenStore(context.Background(), dir, url)
		if err != nil {
			t.Fatal(err)
		}
		e, err := syncer.New(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		e.Listen()
		t.Cleanup(func() { e.Close(); db.Close() })
		out = append(out, e)
	}
	return out
}

func coordinatorOn(t *testing.T, e *syncer.Engine) schema.Actor {
	t.Helper()
	d, err := e.CreateUser(context.Background(), schema.System, syncer.NewUser{Username: "coord", Name: "协调员", Role: schema.RoleCoordinator, Password: "password-coord"})
	if err != nil {
		t.Fatal(err)
	}
	return schema.Actor{UserID: d.Str("id"), Role: schema.RoleCoordinator, Name: "协调员"}
}

// Writers on three instances commit at once while a reader follows the change log from its
// checkpoint, as a phone or the console does: it must see every commit, each once, in
// increasing positions; a commit that landed behind the reader's checkpoint would be lost
// to it for good.
func TestInstancesCommitInOneOrder(t *testing.T) {
	es := instances(t, 3)
	coord := coordinatorOn(t, es[0])
	ctx := context.Background()
	const writersPer, batches = 2, 25
	var wg gosync.WaitGroup
	var mu gosync.Mutex
	written := map[string]bool{}
	errs := make(chan error, len(es)*writersPer)
	for i, e := range es {
		for w := range writersPer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range batches {
					var muts []syncer.Mutation
					for k := range 1 + b%3 {
						id := fmt.Sprintf("c-%d-%d-%d-%d", i, w, b, k)
						muts = append(muts, syncer.Mutation{Entity: "customer", ID: id, Op: "create", Fields: raw(map[string]any{"name": "客户 " + id})})
					}
					res, err := e.Apply(ctx, coord, muts, syncer.Options{})
					if err != nil {
						errs <- fmt.Errorf("instance %d: %w", i, err)
						return
					}
					mu.Lock()
					for k, r := range res {
						if r.Status != syncer.StatusApplied {
							errs <- fmt.Errorf("instance %d: %s %s: %s", i, muts[k].ID, r.Status, r.Message)
						}
						written[muts[k].ID] = true
					}
					mu.Unlock()
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]int{}
	var since int64
	reader := es[2]
	follow := func() {
		for {
			refs, more, err := reader.Changed(ctx, since, 50)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range refs {
				if r.Seq <= since {
					t.Fatalf("position %d after %d", r.Seq, since)
				}
				since = r.Seq
				if r.Entity == "customer" {
					seen[r.ID]++
				}
			}
			if !more {
				return
			}
		}
	}
	deadline := time.After(2 * time.Minute)
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-deadline:
			t.Fatal("the writers did not finish in 2 minutes")
		default:
			follow()
		}
	}
	follow() // what committed after the last pass
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := len(es) * writersPer * (batches + batches/3*3) // 1, 2, 3 mutations in turn
	if len(written) < want-len(es)*writersPer*3 || len(written) == 0 {
		t.Fatalf("%d customers written, want about %d", len(written), want)
	}
	for id := range written {
		if seen[id] != 1 {
			t.Errorf("customer %s: the reader following from its checkpoint saw it %d times, want once", id, seen[id])
		}
	}
}

// The same push, by the same device, reaching two instances at once (a phone that retried
// on another instance while the first still worked) is applied once: one instance answers
// applied, the other duplicate, with the same record.
func TestInstancesApplyAMutationOnce(t *testing.T) {
	es := instances(t, 2)
	coord := coordinatorOn(t, es[0])
	coord.DeviceID = "dev-desk-1"
	ctx := context.Background()
	for i := range 20 {
		m := syncer.Mutation{MID: fmt.Sprintf("mid-%d", i), Entity: "customer", ID: fmt.Sprintf("c-once-%d", i), Op: "create",
			Fields: raw(map[string]any{"name": fmt.Sprintf("客户 %d", i)})}
		var wg gosync.WaitGroup
		res := make([][]syncer.Result, 2)
		for k, e := range es {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := e.Push(ctx, coord, []syncer.Mutation{m})
				if err != nil {
					t.Errorf("instance %d: %v", k, err)
				}
				res[k] = r
			}()
		}
		wg.Wait()
		if len(res[0]) != 1 || len(res[1]) != 1 {
			t.Fatalf("mid %s: answers %+v and %+v", m.MID, res[0], res[1])
		}
		statuses := map[string]int{res[0][0].Status: 1}
		statuses[res[1][0].Status]++
		if statuses[syncer.StatusApplied] != 1 || statuses[syncer.StatusDuplicate] != 1 ||
			res[0][0].Version != res[1][0].Version || string(res[0][0].Record) != string(res[1][0].Record) {
			t.Fatalf("mid %s: answers %s v%d and %s v%d, want one applied and one duplicate of the same record", m.MID,
				res[0][0].Status, res[0][0].Version, res[1][0].Status, res[1][0].Version)
		}
	}
	var records, changes int
	db := es[1].DB()
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM records WHERE entity = 'customer' AND id LIKE 'c-once-%'`).Scan(&records); err != nil {
		t.Fatal(err)
	}
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM changes WHERE entity = 'customer' AND id LIKE 'c-once-%'`).Scan(&changes); err != nil {
		t.Fatal(err)
	}
	if records != 20 || changes != 20 {
		t.Errorf("20 mutations pushed to two instances each: %d records and %d changes, want 20 and 20", records, changes)
	}
}

// A commit on one instance wakes the live feeds of another, checks the sessions a change of
// account concerns, and moves its settings.
func TestInstancesWakeEachOther(t *testing.T) {
	es := instances(t, 2)
	a, b := es[0], es[1]
	coord := coordinatorOn(t, a)
	ctx := context.Background()
	wake, recheck := make(chan struct{}, 1), make(chan struct{}, 1)
	office := b.Hub.Subscribe(coord.UserID, "desk", true, syncer.Signal(wake), syncer.Signal(recheck))
	defer b.Hub.Unsubscribe(office)
	select { // the listener's first connection wakes everyone once
	case <-wake:
	case <-time.After(10 * time.Second):
	}
	if _, err := a.Apply(ctx, coord, []syncer.Mutation{{Entity: "customer", ID: "c-wake", Op: "create", Fields: raw(map[string]any{"name": "唤醒"})}}, syncer.Options{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("a commit on instance A did not wake an office feed on instance B within 10 s")
	}
	if last := b.Hub.Last(); last < 2 {
		t.Errorf("instance B's hub is at position %d after A's commits", last)
	}

	if err := a.SetActive(ctx, schema.Actor{UserID: "admin", Role: schema.RoleAdmin}, "coord", false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-recheck:
	case <-time.After(10 * time.Second):
		t.Fatal("disabling an account on instance A did not make instance B check its sessions")
	}

	v, _ := json.Marshal(7)
	if err := a.PutSettings(ctx, schema.Actor{UserID: "admin", Role: schema.RoleAdmin}, map[string]json.RawMessage{"deadline_warning_minutes": v}); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); b.Settings().Int("deadline_warning_minutes") != 7; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("instance B's deadline_warning_minutes is %d 10 s after instance A set 7", b.Settings().Int("deadline_warning_minutes"))
		}
	}
}
