package bench

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// push: Devices devices (one technician each, lean clients on a live pull, as a connected
// app is) each push batches of Batch new ticket notes for Duration. Closed loop by
// default: one push in flight per device. With Rate (open loop, as phones send): the
// devices together offer Rate mutations a second in batches of Batch (default 5), each
// device sending on its own schedule whether or not its earlier pushes were answered.
// Measured: applied mutations per second, and the acknowledgement latency of a push (from
// the moment it was due to be sent, so that a slow server does not hide its own queue,
// to results received). Checked: every result is applied and names the record sent; every
// device receives each of its notes back exactly once on its live stream; on a spawned
// server the database holds exactly the applied notes, each remembered once.
func push(ctx context.Context, cfg *Config, res *Result) error {
	nDev := defInt(cfg.Devices, 100)
	batch := defInt(cfg.Batch, 50)
	if cfg.Rate > 0 {
		batch = defInt(cfg.Batch, 5)
	}
	dur := defDur(cfg.Duration, 10*time.Second)
	t, err := setup(ctx, cfg, fixture{techs: nDev, devicesPerTech: 1, ticketsPerTech: 1, customers: max(1, nDev/10), textBytes: 200})
	if err != nil {
		return err
	}
	defer t.Close()

	type devState struct {
		mu       gosync.Mutex
		sent     map[string]bool // note ids applied
		got      map[string]int  // note ids received on the live stream
		lat      []time.Duration
		rejected int
	}
	states := make([]*devState, nDev)
	conns := make([]*lean, nDev)
	for i := range nDev {
		st := &devState{sent: map[string]bool{}, got: map[string]int{}}
		states[i] = st
		l, err := dialLean(ctx, t.wsURL(), t.devices[i], func(f *syncer.Frame, _ time.Time) {
			st.mu.Lock()
			for _, c := range f.Changes {
				if c.Entity == schema.EntTicketEvent && c.Op == syncer.OpUpsert {
					st.got[c.ID]++
				}
			}
			st.mu.Unlock()
		})
		if err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		conns[i] = l
		defer l.close()
		if err := l.live(""); err != nil {
			return err
		}
	}
	for _, l := range conns {
		if err := l.waitCaught(ctx); err != nil {
			return err
		}
	}
	// Forget the dispatch events of the initial pull: only the pushed notes are counted.
	for _, st := range states {
		st.got = map[string]int{}
	}
	cfg.logf("push: %d devices connected; pushing batches of %d for %s", nDev, batch, dur)
	var applied atomic.Int64
	var failed atomic.Value
	start := time.Now()
	deadline := start.Add(dur)
	var wg gosync.WaitGroup
	// every is the time between two pushes of one device in the open loop.
	var every time.Duration
	if cfg.Rate > 0 {
		every = time.Duration(float64(time.Second) * float64(nDev*batch) / float64(cfg.Rate))
	}
	for i := range nDev {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, l := states[i], conns[i]
			ticket := t.techs[t.devices[i].Tech].Tickets[0].ID
			// one sends push n, due at t0, and checks its results.
			one := func(n int, t0 time.Time) bool {
				muts := make([]syncer.Mutation, batch)
				ids := make([]string, batch)
				for k := range muts {
					ids[k] = uuid.Must(uuid.NewV7()).String()
					muts[k] = syncer.Mutation{MID: uuid.NewString(), Entity: schema.EntTicketEvent, ID: ids[k], Op: "create",
						Fields: rawFields(map[string]any{"ticket_id": ticket, "note": fmt.Sprintf("到场前电话确认 / called ahead, note %d-%d", n, k)}),
						At:     time.Now().UTC().Format(time.RFC3339Nano)}
				}
				f, err := l.request(ctx, syncer.Frame{Type: syncer.MsgPush, Mutations: muts})
				lat := time.Since(t0)
				if err != nil {
					failed.CompareAndSwap(nil, fmt.Sprintf("device %d: push: %v", i, err))
					return false
				}
				if f.Type != syncer.MsgResults || len(f.Results) != batch {
					failed.CompareAndSwap(nil, fmt.Sprintf("device %d: push answered %s %s %s with %d results", i, f.Type, f.Code, f.Message, len(f.Results)))
					return false
				}
				st.mu.Lock()
				st.lat = append(st.lat, lat)
				for k, r := range f.Results {
					if r.Status != syncer.StatusApplied || r.MID != muts[k].MID || r.ID != ids[k] {
						st.rejected++
						failed.CompareAndSwap(nil, fmt.Sprintf("device %d: mutation %s: %s %s %s", i, r.MID, r.Status, r.Code, r.Message))
						continue
					}
					st.sent[ids[k]] = true
				}
				st.mu.Unlock()
				applied.Add(int64(batch))
				return true
			}
			if every == 0 {
				for n := 0; time.Now().Before(deadline) && n < 1_000_000; n++ {
					if !one(n, time.Now()) {
						return
					}
				}
				return
			}
			// Open loop: the devices' schedules are spread over the first interval.
			var inflight gosync.WaitGroup
			defer inflight.Wait()
			due := start.Add(every * time.Duration(i) / time.Duration(nDev))
			for n := 0; due.Before(deadline) && n < 1_000_000; n++ {
				time.Sleep(time.Until(due))
				if failed.Load() != nil {
					return
				}
				inflight.Add(1)
				go func(n int, due time.Time) {
					defer inflight.Done()
					one(n, due)
				}(n, due)
				due = due.Add(every)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var lats []time.Duration
	for _, st := range states {
		lats = append(lats, st.lat...)
	}
	slices.Sort(lats)
	total := applied.Load()
	res.set("devices", float64(nDev))
	res.set("batch", float64(batch))
	if cfg.Rate > 0 {
		res.set("offered_per_s", float64(cfg.Rate))
	}
	res.set("mutations", float64(total))
	res.set("mutations_per_s", float64(total)/elapsed.Seconds())
	res.set("ack_p50_ms", pct(lats, 0.5))
	res.set("ack_p99_ms", pct(lats, 0.99))
	res.set("ack_max_ms", pct(lats, 1))
	cfg.logf("push: %d applied in %s", total, elapsed.Round(time.Millisecond))
	if v := failed.Load(); v != nil {
		return failf("%s", v.(string))
	}
	if total == 0 {
		return failf("nothing was applied")
	}
	// Every device gets each of its notes back on its live stream, once.
	waitUntil := time.Now().Add(30 * time.Second)
	for i, st := range states {
		for {
			st.mu.Lock()
			missing, dup := 0, 0
			for id := range st.sent {
				switch st.got[id] {
				case 0:
					missing++
				case 1:
				default:
					dup++
				}
			}
			extra := len(st.got) - (len(st.sent) - missing)
			st.mu.Unlock()
			if dup > 0 || extra > 0 {
				return failf("device %d: %d notes delivered twice, %d notes it never pushed", i, dup, extra)
			}
			if missing == 0 {
				break
			}
			if time.Now().After(waitUntil) {
				return failf("device %d: %d of its %d applied notes never came back on its live stream", i, missing, len(st.sent))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if t.dir == "" {
		res.Notes = append(res.Notes, "durability not checked in the database (--url): checked on the live streams only")
		return nil
	}
	// The database holds each applied note exactly once, and each mutation is remembered once.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.dir, schema.DBFile)+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	var notes, remembered, distinct int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE entity = 'ticket_event' AND data ->> 'kind' = 'note'`).Scan(&notes); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT rid) FROM mutations WHERE status = 'applied'`).Scan(&remembered, &distinct); err != nil {
		return err
	}
	if notes != total || remembered != total || distinct != total {
		return failf("the database holds %d notes and %d remembered mutations (%d distinct records), want %d", notes, remembered, distinct, total)
	}
	return nil
}
