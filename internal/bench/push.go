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
// server the database holds exactly the applied notes, each remembered once. With several
// instances (Config.Instances) the devices are spread over them, round-robin.
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
	ps, err := connectPushers(ctx, t, nDev)
	if err != nil {
		return err
	}
	defer closePushers(ps)
	cfg.logf("push: %d devices connected; pushing batches of %d for %s", nDev, batch, dur)
	start := time.Now()
	var failed atomic.Value
	if cfg.Rate > 0 {
		openLoop(ctx, ps, cfg.Rate, batch, start, dur, &failed)
	} else {
		closedLoop(ctx, ps, batch, start.Add(dur), &failed)
	}
	elapsed := time.Since(start)
	lats, total := latencies(ps)
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
	if err := checkDelivered(ps); err != nil {
		return err
	}
	return checkNotesStored(ctx, t, res, total)
}

// pusher is a lean device that pushes new notes on one ticket of its technician and
// counts what comes back on its live stream.
type pusher struct {
	i      int
	l      *lean
	ticket string
	mu     gosync.Mutex
	sent   map[string]bool // note ids applied
	got    map[string]int  // note ids received on the live stream
	lat    []time.Duration // acknowledgement latencies
	mark   int             // len(lat) at the start of the current phase
	// applied counts the mutations applied; limited the pushes refused rate_limited.
	applied, limited int
}

// connectPushers connects devices 0..n-1 of t on live pulls and waits until each caught up.
func connectPushers(ctx context.Context, t *target, n int) ([]*pusher, error) {
	ps := make([]*pusher, 0, n)
	for i := range n {
		p := &pusher{i: i, ticket: t.techs[t.devices[i].Tech].Tickets[0].ID, sent: map[string]bool{}, got: map[string]int{}}
		l, err := dialLean(ctx, t.wsURL(i), t.devices[i], func(f *syncer.Frame, _ time.Time) {
			p.mu.Lock()
			for _, c := range f.Changes {
				if c.Entity == schema.EntTicketEvent && c.Op == syncer.OpUpsert {
					p.got[c.ID]++
				}
			}
			p.mu.Unlock()
		})
		if err != nil {
			closePushers(ps)
			return nil, fmt.Errorf("device %d: %w", i, err)
		}
		p.l = l
		ps = append(ps, p)
		if err := l.live(""); err != nil {
			closePushers(ps)
			return nil, err
		}
	}
	for _, p := range ps {
		if err := p.l.waitCaught(ctx); err != nil {
			closePushers(ps)
			return nil, err
		}
	}
	// Forget the dispatch events of the initial pull: only the pushed notes are counted.
	for _, p := range ps {
		p.mu.Lock()
		p.got = map[string]int{}
		p.mu.Unlock()
	}
	return ps, nil
}

func closePushers(ps []*pusher) {
	for _, p := range ps {
		p.l.close()
	}
}

// push sends push n of batch new notes, due at t0, and checks its results. A push refused
// rate_limited (the fair write queue's backpressure) counts in limited when mayLimit; any
// other failure is recorded in failed and ends the device's loop (false).
func (p *pusher) push(ctx context.Context, n, batch int, t0 time.Time, mayLimit bool, failed *atomic.Value) bool {
	muts := make([]syncer.Mutation, batch)
	ids := make([]string, batch)
	for k := range muts {
		ids[k] = uuid.Must(uuid.NewV7()).String()
		muts[k] = syncer.Mutation{MID: uuid.NewString(), Entity: schema.EntTicketEvent, ID: ids[k], Op: "create",
			Fields: rawFields(map[string]any{"ticket_id": p.ticket, "note": fmt.Sprintf("到场前电话确认 / called ahead, note %d-%d", n, k)}),
			At:     time.Now().UTC().Format(time.RFC3339Nano)}
	}
	f, err := p.l.request(ctx, syncer.Frame{Type: syncer.MsgPush, Mutations: muts})
	lat := time.Since(t0)
	if err != nil {
		failed.CompareAndSwap(nil, fmt.Sprintf("device %d: push: %v", p.i, err))
		return false
	}
	if mayLimit && f.Type == syncer.MsgError && f.Code == schema.CodeRateLimited {
		p.mu.Lock()
		p.limited++
		p.mu.Unlock()
		return true
	}
	if f.Type != syncer.MsgResults || len(f.Results) != batch {
		failed.CompareAndSwap(nil, fmt.Sprintf("device %d: push answered %s %s %s with %d results", p.i, f.Type, f.Code, f.Message, len(f.Results)))
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lat = append(p.lat, lat)
	for k, r := range f.Results {
		if r.Status != syncer.StatusApplied || r.MID != muts[k].MID || r.ID != ids[k] {
			failed.CompareAndSwap(nil, fmt.Sprintf("device %d: mutation %s: %s %s %s", p.i, r.MID, r.Status, r.Code, r.Message))
			return false
		}
		p.sent[ids[k]] = true
	}
	p.applied += batch
	return true
}

// closedLoop: each device keeps one push of batch in flight until deadline.
func closedLoop(ctx context.Context, ps []*pusher, batch int, deadline time.Time, failed *atomic.Value) {
	var wg gosync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline) && n < 1_000_000; n++ {
				if !p.push(ctx, n, batch, time.Now(), false, failed) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// openLoop: the devices together offer rate mutations a second in pushes of batch from
// start for dur, each device on its own schedule (spread over the first interval) whether
// or not its earlier pushes were answered; it returns when every push was answered.
func openLoop(ctx context.Context, ps []*pusher, rate, batch int, start time.Time, dur time.Duration, failed *atomic.Value) {
	every := time.Duration(float64(time.Second) * float64(len(ps)*batch) / float64(rate))
	deadline := start.Add(dur)
	var wg gosync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			due := start.Add(every * time.Duration(i) / time.Duration(len(ps)))
			for n := 0; due.Before(deadline) && n < 1_000_000; n++ {
				time.Sleep(time.Until(due))
				if failed.Load() != nil || ctx.Err() != nil {
					return
				}
				wg.Add(1)
				go func(n int, due time.Time) {
					defer wg.Done()
					p.push(ctx, n, batch, due, false, failed)
				}(n, due)
				due = due.Add(every)
			}
		}()
	}
	wg.Wait()
}

// latencies returns the sorted acknowledgement latencies of ps recorded since their mark,
// and the mutations they applied in all.
func latencies(ps []*pusher) ([]time.Duration, int64) {
	var lats []time.Duration
	var total int64
	for _, p := range ps {
		p.mu.Lock()
		lats = append(lats, p.lat[p.mark:]...)
		total += int64(p.applied)
		p.mu.Unlock()
	}
	slices.Sort(lats)
	return lats, total
}

// checkDelivered: every device gets each of its applied notes back on its live stream,
// once, and no note it did not push.
func checkDelivered(ps []*pusher) error {
	waitUntil := time.Now().Add(30 * time.Second)
	for _, p := range ps {
		for {
			p.mu.Lock()
			missing, dup := 0, 0
			for id := range p.sent {
				switch p.got[id] {
				case 0:
					missing++
				case 1:
				default:
					dup++
				}
			}
			extra := len(p.got) - (len(p.sent) - missing)
			sent := len(p.sent)
			p.mu.Unlock()
			if dup > 0 || extra > 0 {
				return failf("device %d: %d notes delivered twice, %d notes it never pushed", p.i, dup, extra)
			}
			if missing == 0 {
				break
			}
			if time.Now().After(waitUntil) {
				return failf("device %d: %d of its %d applied notes never came back on its live stream", p.i, missing, sent)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// checkNotesStored: on a spawned server, the database (SQLite or PostgreSQL) holds exactly
// total notes, each remembered once as an applied mutation.
func checkNotesStored(ctx context.Context, t *target, res *Result, total int64) error {
	if t.dir == "" {
		res.Notes = append(res.Notes, "durability not checked in the database (--url): checked on the live streams only")
		return nil
	}
	driver, dsn := "sqlite3", "file:"+filepath.Join(t.dir, schema.DBFile)+"?mode=ro&_busy_timeout=5000"
	if t.db != "" {
		driver, dsn = "pgx", t.db
	}
	db, err := sql.Open(driver, dsn)
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
