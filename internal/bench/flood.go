package bench

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	syncer "fieldsync/sync"
)

// floodCoordinators edit tickets over the HTTP API during flood, floodCoordRate edits a
// second between them; floodDepth is how many maximum-size pushes the flooder keeps in
// flight on its one connection.
const (
	floodCoordinators = 4
	floodCoordRate    = 40
	floodDepth        = 4
)

// flood: the open loop of push --rate (Devices honest devices offering Rate mutations a
// second in pushes of Batch, default 1,000/s in pushes of 5) with 4 coordinators editing
// tickets over the HTTP API (PATCH with If-Match, 40 edits a second), run twice for
// Duration each: first calm, then with one more device pipelining pushes of the maximum
// size (500 new notes, 4 in flight) without pause. Measured: the honest devices'
// acknowledgement latency and the coordinators' edit latency (both from the moment each was
// due) in both runs, their p99 ratio flood/calm, and what the flooder got through.
// Checked: every honest push and every coordinator edit succeeds (the flooder alone may be
// refused rate_limited: that is the backpressure); every applied note comes back once on its
// device's live stream; the database holds exactly the applied notes, each remembered once;
// each edited ticket ends at the version of its last acknowledged edit.
func flood(ctx context.Context, cfg *Config, res *Result) error {
	nDev := defInt(cfg.Devices, 100)
	rate := defInt(cfg.Rate, 1000)
	batch := defInt(cfg.Batch, 5)
	dur := defDur(cfg.Duration, 10*time.Second)
	// The flooder is technician nDev. Its hourly push quota is lifted (as an office could
	// for one busy technician): the quota is not what must keep it from slowing the others.
	t, err := setup(ctx, cfg, fixture{techs: nDev + 1, devicesPerTech: 1, ticketsPerTech: 2, customers: max(1, nDev/10), textBytes: 200,
		settings: map[string]string{"push_mutations_per_hour": "1000000", "push_bytes_per_hour": "1073741824"}})
	if err != nil {
		return err
	}
	defer t.Close()
	ps, err := connectPushers(ctx, t, nDev+1)
	if err != nil {
		return err
	}
	defer closePushers(ps)
	honest, flooder := ps[:nDev], ps[nDev]
	h := &httpAPI{base: t.base}
	coord, err := h.login(ctx, t.coordUser, t.coordPass)
	if err != nil {
		return err
	}
	// versions[ti] is the version of technician ti's second ticket after its last edit.
	versions := make([]int64, nDev)
	for ti := range versions {
		versions[ti] = t.techs[ti].Tickets[1].Version
	}
	var failed atomic.Value
	// coordinators edit from start for dur; they return their edit latencies, sorted.
	coordinators := func(start time.Time) []time.Duration {
		var mu gosync.Mutex
		var lats []time.Duration
		var wg gosync.WaitGroup
		every := time.Duration(float64(time.Second) * floodCoordinators / floodCoordRate)
		for w := range floodCoordinators {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []int // each coordinator keeps to its own technicians
				for ti := w; ti < nDev; ti += floodCoordinators {
					mine = append(mine, ti)
				}
				if len(mine) == 0 {
					return
				}
				due := start.Add(every * time.Duration(w) / floodCoordinators)
				for n := 0; due.Before(start.Add(dur)) && n < 1_000_000; n++ {
					time.Sleep(time.Until(due))
					ti := mine[n%len(mine)]
					tk := t.techs[ti].Tickets[1]
					var out map[string]any
					err := h.do(ctx, "PATCH", "/api/v1/tickets/"+tk.ID, coord, fmt.Sprint(versions[ti]),
						map[string]any{"agreed_handling": fmt.Sprintf("第 %d 次调整 / change %d by coordinator %d", n, n, w)}, &out)
					lat := time.Since(due)
					if err != nil {
						failed.CompareAndSwap(nil, fmt.Sprintf("coordinator %d: %v", w, err))
						return
					}
					v, _ := out["version"].(float64)
					versions[ti] = int64(v)
					mu.Lock()
					lats = append(lats, lat)
					mu.Unlock()
					due = due.Add(every)
				}
			}()
		}
		wg.Wait()
		slices.Sort(lats)
		return lats
	}
	type phase struct {
		acks, edits []time.Duration
		applied     int64
		elapsed     time.Duration
	}
	run := func(withFlooder bool) phase {
		for _, p := range honest {
			p.mu.Lock()
			p.mark = len(p.lat)
			p.mu.Unlock()
		}
		_, before := latencies(honest)
		start := time.Now()
		var wg gosync.WaitGroup
		var edits []time.Duration
		wg.Add(1)
		go func() { defer wg.Done(); edits = coordinators(start) }()
		if withFlooder {
			for range floodDepth {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; time.Now().Before(start.Add(dur)) && n < 1_000_000 && failed.Load() == nil; n++ {
						if !flooder.push(ctx, n, syncer.DefaultMaxBatch, time.Now(), true, &failed) {
							return
						}
					}
				}()
			}
		}
		openLoop(ctx, honest, rate, batch, start, dur, &failed)
		wg.Wait()
		acks, after := latencies(honest)
		return phase{acks: acks, edits: edits, applied: after - before, elapsed: time.Since(start)}
	}
	cfg.logf("flood: %d devices offering %d mutations/s, %d coordinators %d edits/s, %s calm", nDev, rate, floodCoordinators, floodCoordRate, dur)
	calm := run(false)
	cfg.logf("flood: %s with one device pipelining pushes of %d", dur, syncer.DefaultMaxBatch)
	fl := run(true)
	res.set("devices", float64(nDev))
	res.set("batch", float64(batch))
	res.set("offered_per_s", float64(rate))
	res.set("coordinator_edits_per_s", floodCoordRate)
	for _, x := range []struct {
		name string
		ph   phase
	}{{"calm", calm}, {"flood", fl}} {
		res.set(x.name+"_mutations_per_s", float64(x.ph.applied)/x.ph.elapsed.Seconds())
		res.set(x.name+"_ack_p50_ms", pct(x.ph.acks, 0.5))
		res.set(x.name+"_ack_p99_ms", pct(x.ph.acks, 0.99))
		res.set(x.name+"_edit_p50_ms", pct(x.ph.edits, 0.5))
		res.set(x.name+"_edit_p99_ms", pct(x.ph.edits, 0.99))
	}
	res.set("ack_p99_ratio", pct(fl.acks, 0.99)/pct(calm.acks, 0.99))
	res.set("edit_p99_ratio", pct(fl.edits, 0.99)/pct(calm.edits, 0.99))
	res.set("flooder_mutations", float64(flooder.applied))
	res.set("flooder_mutations_per_s", float64(flooder.applied)/fl.elapsed.Seconds())
	res.set("flooder_rate_limited", float64(flooder.limited))
	if v := failed.Load(); v != nil {
		return failf("%s", v.(string))
	}
	if calm.applied == 0 || fl.applied == 0 || len(calm.edits) == 0 || len(fl.edits) == 0 {
		return failf("a run applied nothing (calm %d notes %d edits, flood %d notes %d edits)", calm.applied, len(calm.edits), fl.applied, len(fl.edits))
	}
	if err := checkDelivered(ps); err != nil {
		return err
	}
	// Every edit is kept: each ticket is at the version of its last acknowledged edit.
	for ti := range versions {
		var tk map[string]any
		if err := h.do(ctx, "GET", "/api/v1/tickets/"+t.techs[ti].Tickets[1].ID, coord, "", nil, &tk); err != nil {
			return err
		}
		if v, _ := tk["version"].(float64); int64(v) != versions[ti] {
			return failf("ticket %s is at version %d, its last acknowledged edit made %d", t.techs[ti].Tickets[1].ID, int64(v), versions[ti])
		}
	}
	_, total := latencies(ps)
	return checkNotesStored(ctx, t, res, total)
}
