package bench

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"
	"time"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// delivery is one ticket version arriving on one device.
type delivery struct {
	id      string
	version int64
	at      time.Time
}

// fanout: Devices lean devices on live pulls, ten per technician, while coordinators (over
// the HTTP API, as the web console does) edit the technicians' tickets and dispatch new ones
// at Rate changes a second for Duration. Measured: time from the coordinator sending the
// change to each device in scope receiving it (so it includes the commit and its fsync),
// p50/p99/max. With several instances (Config.Instances) the coordinators use instance 1
// and the phones the others, round-robin. Checked: every device in scope receives every change (or a later version of
// the same ticket), and never the same version twice.
func fanout(ctx context.Context, cfg *Config, res *Result) error {
	nDev := defInt(cfg.Devices, 1000)
	perTech := 10
	if nDev < perTech {
		perTech = 1
	}
	nTech := (nDev + perTech - 1) / perTech
	rate := defInt(cfg.Rate, 200)
	dur := defDur(cfg.Duration, 10*time.Second)
	t, err := setup(ctx, cfg, fixture{techs: nTech, devicesPerTech: perTech, ticketsPerTech: 1, customers: max(1, nTech/10), textBytes: 200})
	if err != nil {
		return err
	}
	defer t.Close()
	t.devices = t.devices[:nDev]
	// With several instances the coordinators edit on instance 1 and the phones listen on
	// the others: what is measured is the path across instances (commit, NOTIFY, the other
	// instance's hub, the phone).
	t.phonesAvoidFirst()

	type devLog struct {
		mu   gosync.Mutex
		seen []delivery
	}
	logs := make([]*devLog, nDev)
	byTech := make([][]int, nTech)
	conns := make([]*lean, nDev)
	var dialErr error
	var dmu gosync.Mutex
	var wg gosync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range nDev {
		logs[i] = &devLog{}
		byTech[t.devices[i].Tech] = append(byTech[t.devices[i].Tech], i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			lg := logs[i]
			l, err := dialLean(ctx, t.wsURL(i), t.devices[i], func(f *syncer.Frame, at time.Time) {
				lg.mu.Lock()
				for _, c := range f.Changes {
					if c.Entity == schema.EntTicket && c.Op == syncer.OpUpsert {
						lg.seen = append(lg.seen, delivery{c.ID, c.Version, at})
					}
				}
				lg.mu.Unlock()
			})
			if err == nil {
				err = l.live("")
			}
			if err == nil {
				err = l.waitCaught(ctx)
			}
			dmu.Lock()
			defer dmu.Unlock()
			if err != nil {
				dialErr = fmt.Errorf("device %d: %w", i, err)
				return
			}
			conns[i] = l
		}()
	}
	wg.Wait()
	defer func() {
		for _, l := range conns {
			if l != nil {
				l.close()
			}
		}
	}()
	if dialErr != nil {
		return dialErr
	}
	for _, lg := range logs {
		lg.mu.Lock()
		lg.seen = nil
		lg.mu.Unlock()
	}
	cfg.logf("fanout: %d devices (%d technicians) connected; %d changes/s for %s", nDev, nTech, rate, dur)
	if len(t.bases) > 1 {
		cfg.logf("fanout: coordinators on instance 1, phones on the other %d", len(t.bases)-1)
	}

	h := &httpAPI{base: t.base}
	coord, err := h.login(ctx, t.coordUser, t.coordPass)
	if err != nil {
		return err
	}
	type sent struct {
		tech    int
		id      string
		version int64
		at      time.Time
		commit  time.Duration
	}
	const workers = 4
	var smu gosync.Mutex
	var changes []sent
	var werr error
	start := time.Now()
	deadline := start.Add(dur)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every := time.Duration(float64(time.Second) * workers / float64(rate))
			next := time.Now()
			var mine []int
			for ti := w; ti < nTech; ti += workers {
				mine = append(mine, ti)
			}
			if len(mine) == 0 {
				return
			}
			for n := 0; time.Now().Before(deadline) && n < 10_000_000; n++ {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(every)
				ti := mine[n%len(mine)]
				tk := &t.techs[ti].Tickets[0]
				var out map[string]any
				t0 := time.Now()
				var err error
				var id string
				if n%5 == 4 {
					// A new ticket, dispatched to the technician: it enters the scope.
					var created map[string]any
					f := map[string]any{"fault_symptoms": pad(200, n), "urgency": "high", "service_mode": "onsite", "customer_id": tk.Customer}
					if err = h.do(ctx, "POST", "/api/v1/tickets", coord, "", f, &created); err == nil {
						id, _ = created["id"].(string)
						t0 = time.Now()
						err = h.do(ctx, "POST", "/api/v1/tickets/"+id+"/actions/dispatch", coord, "", map[string]any{"technician_id": t.techs[ti].ID}, &out)
					}
				} else {
					id = tk.ID
					err = h.do(ctx, "PATCH", "/api/v1/tickets/"+tk.ID, coord, fmt.Sprint(tk.Version),
						map[string]any{"agreed_handling": fmt.Sprintf("第 %d 次调整 / change %d at %s", n, n, t0.Format(time.RFC3339Nano))}, &out)
				}
				commit := time.Since(t0)
				if err != nil {
					smu.Lock()
					werr = err
					smu.Unlock()
					return
				}
				v, _ := out["version"].(float64)
				if id == tk.ID {
					tk.Version = int64(v)
				}
				smu.Lock()
				changes = append(changes, sent{ti, id, int64(v), t0, commit})
				smu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if werr != nil {
		return fmt.Errorf("coordinator: %w", werr)
	}
	// Wait for the last deliveries, then match.
	var lats, commits []time.Duration
	var missing []string
	grace := time.Now().Add(10 * time.Second)
	for {
		lats, commits, missing = lats[:0], commits[:0], missing[:0]
		for _, c := range changes {
			commits = append(commits, c.commit)
			for _, di := range byTech[c.tech] {
				lg := logs[di]
				lg.mu.Lock()
				var got time.Time
				for _, d := range lg.seen {
					if d.id == c.id && d.version >= c.version && (got.IsZero() || d.at.Before(got)) {
						got = d.at
					}
				}
				lg.mu.Unlock()
				if got.IsZero() {
					missing = append(missing, fmt.Sprintf("device %d: ticket %s v%d", di, c.id, c.version))
					continue
				}
				lats = append(lats, max(got.Sub(c.at), 0))
			}
		}
		if len(missing) == 0 || time.Now().After(grace) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for di, lg := range logs {
		seen := map[delivery]bool{}
		for _, d := range lg.seen {
			k := delivery{d.id, d.version, time.Time{}}
			if seen[k] {
				return failf("device %d received ticket %s version %d twice", di, d.id, d.version)
			}
			seen[k] = true
		}
	}
	slices.Sort(lats)
	slices.Sort(commits)
	res.set("devices", float64(nDev))
	res.set("changes", float64(len(changes)))
	res.set("changes_per_s", float64(len(changes))/elapsed.Seconds())
	res.set("deliveries", float64(len(lats)))
	res.set("p50_ms", pct(lats, 0.5))
	res.set("p99_ms", pct(lats, 0.99))
	res.set("max_ms", pct(lats, 1))
	res.set("commit_p50_ms", pct(commits, 0.5))
	if len(missing) > 0 {
		return failf("%d deliveries missing, e.g. %s", len(missing), missing[0])
	}
	if len(changes) == 0 {
		return failf("no change was made")
	}
	return nil
}
