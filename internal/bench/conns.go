package bench

import (
	"context"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"time"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// connections: Devices lean devices (a hundred per technician) connect, say hello and
// catch up on a live pull, then stay idle for Duration. Measured: the server's resident
// memory grown per connection (VmRSS of the server process before and after). Checked: every
// device is welcomed, caught up, and still answers a verify at the end.
//
// reconnect (with again): the same devices, once connected and caught up, lose their
// network all at once; a coordinator edits every technician's ticket meanwhile; then all
// reconnect at once from their checkpoints. Measured: seconds until the last device has
// received its ticket's new version and caught up; failures: devices that did not within
// 60 s (a device whose dial fails retries after 100 ms, 200 ms, ..., as the SDK does).
func connections(ctx context.Context, cfg *Config, res *Result, again bool) error {
	nDev := defInt(cfg.Devices, 10000)
	perTech := min(100, nDev)
	nTech := (nDev + perTech - 1) / perTech
	dur := defDur(cfg.Duration, 5*time.Second)
	if again {
		dur = defDur(cfg.Duration, time.Second)
	}
	t, err := setup(ctx, cfg, fixture{techs: nTech, devicesPerTech: perTech, ticketsPerTech: 1, customers: max(1, nTech/10), textBytes: 200})
	if err != nil {
		return err
	}
	defer t.Close()
	t.devices = t.devices[:nDev]
	time.Sleep(500 * time.Millisecond)
	rss0, rssErr := t.serverKB("VmRSS")
	conns := make([]*lean, nDev)
	var mu gosync.Mutex
	// seen[i] is the highest version of its technician's ticket device i has received.
	seen := make([]atomic.Int64, nDev)
	onFrame := func(i int) func(*syncer.Frame, time.Time) {
		want := t.techs[t.devices[i].Tech].Tickets[0].ID
		return func(f *syncer.Frame, _ time.Time) {
			for _, c := range f.Changes {
				if c.Entity == schema.EntTicket && c.ID == want && c.Version > seen[i].Load() {
					seen[i].Store(c.Version)
				}
			}
		}
	}
	start := time.Now()
	failures := dialAll(ctx, nDev, 256, 60*time.Second, func(ctx context.Context, i int) error {
		l, err := dialLean(ctx, t.wsURL(i), t.devices[i], onFrame(i))
		if err != nil {
			return err
		}
		if err := l.live(""); err != nil {
			l.close()
			return err
		}
		if err := l.waitCaught(ctx); err != nil {
			l.close()
			return err
		}
		mu.Lock()
		conns[i] = l
		mu.Unlock()
		return nil
	})
	defer func() {
		for _, l := range conns {
			if l != nil {
				l.close()
			}
		}
	}()
	cfg.logf("%d devices connected and caught up in %s, %d failed", nDev-len(failures), time.Since(start).Round(time.Millisecond), len(failures))
	if len(failures) > 0 {
		res.set("devices", float64(nDev-len(failures)))
		res.set("failures", float64(len(failures)))
		return failf("%d devices could not connect, e.g. %v", len(failures), first(failures))
	}
	if !again {
		time.Sleep(dur)
		rss1, err := t.serverKB("VmRSS")
		if err != nil {
			rssErr = err
		}
		res.set("devices", float64(nDev))
		if rssErr == nil {
			res.set("server_rss_kb", float64(rss1))
			res.set("server_rss_per_conn_kb", float64(rss1-rss0)/float64(nDev))
			if cfg.InProcess {
				res.Notes = append(res.Notes, "in-process server: the memory figure includes the bench's own clients")
			}
		} else {
			res.Notes = append(res.Notes, "server memory not measured: "+rssErr.Error())
		}
		// Every connection still answers.
		var dead atomic.Int64
		var wg gosync.WaitGroup
		sem := make(chan struct{}, 256)
		for _, l := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				cp := l.checkpoint()
				f, err := l.request(ctx, syncer.Frame{Type: syncer.MsgVerify, Checkpoint: &cp})
				if err != nil || f.Type != syncer.MsgDigest || f.Count == nil || *f.Count == 0 {
					dead.Add(1)
				}
			}()
		}
		wg.Wait()
		if d := dead.Load(); d > 0 {
			res.set("failures", float64(d))
			return failf("%d of %d held connections did not answer a verify", d, nDev)
		}
		res.set("failures", 0)
		return nil
	}

	// Drop every connection at once, change every technician's ticket, reconnect all.
	cps := make([]string, nDev)
	for i, l := range conns {
		cps[i] = l.checkpoint()
		l.drop()
		conns[i] = nil
	}
	h := &httpAPI{base: t.base}
	coord, err := h.login(ctx, t.coordUser, t.coordPass)
	if err != nil {
		return err
	}
	want := make([]int64, nTech)
	for ti := range t.techs {
		tk := &t.techs[ti].Tickets[0]
		var out map[string]any
		if err := h.do(ctx, "PATCH", "/api/v1/tickets/"+tk.ID, coord, fmt.Sprint(tk.Version), map[string]any{"urgency": "critical"}, &out); err != nil {
			return err
		}
		v, _ := out["version"].(float64)
		want[ti] = int64(v)
	}
	time.Sleep(dur)
	cfg.logf("reconnect: %d devices reconnect at once", nDev)
	start = time.Now()
	var lastMu gosync.Mutex
	var last time.Duration
	failures = dialAll(ctx, nDev, nDev, 60*time.Second, func(ctx context.Context, i int) error {
		l, err := dialLean(ctx, t.wsURL(i), t.devices[i], onFrame(i))
		if err != nil {
			return err
		}
		if err := l.live(cps[i]); err != nil {
			l.close()
			return err
		}
		if err := l.waitCaught(ctx); err != nil {
			l.close()
			return err
		}
		if got := seen[i].Load(); got < want[t.devices[i].Tech] {
			l.close()
			return failf("caught up without its ticket's version %d (has %d)", want[t.devices[i].Tech], got)
		}
		el := time.Since(start)
		mu.Lock()
		conns[i] = l
		mu.Unlock()
		lastMu.Lock()
		last = max(last, el)
		lastMu.Unlock()
		return nil
	})
	res.set("devices", float64(nDev))
	res.set("seconds", last.Seconds())
	res.set("failures", float64(len(failures)))
	if len(failures) > 0 {
		return failf("%d of %d devices did not catch up, e.g. %v", len(failures), nDev, first(failures))
	}
	return nil
}

func first(m map[int]error) error {
	for _, e := range m {
		return e
	}
	return nil
}

// dialAll runs connect for devices 0..n-1, at most par at a time, retrying each with
// backoff until it succeeds or within elapses; it returns the devices that never did. A
// check failure (failf) is not retried.
func dialAll(ctx context.Context, n, par int, within time.Duration, connect func(context.Context, int) error) map[int]error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var mu gosync.Mutex
	failed := map[int]error{}
	var wg gosync.WaitGroup
	sem := make(chan struct{}, max(par, 1))
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			wait := 100 * time.Millisecond
			for attempt := 0; attempt < 50; attempt++ {
				err := connect(ctx, i)
				if err == nil {
					return
				}
				if _, check := err.(*checkError); check || ctx.Err() != nil {
					mu.Lock()
					failed[i] = err
					mu.Unlock()
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				wait = min(wait*2, 2*time.Second)
			}
			mu.Lock()
			failed[i] = fmt.Errorf("gave up after 50 attempts")
			mu.Unlock()
		}()
	}
	wg.Wait()
	return failed
}
