package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	syncer "fieldsync/sync"
)

// morning: Devices fresh phones (default 2,000; PerTech of them per technician, default 1)
// log in with the technician's password and sync at once, as at the start of a working
// day; each technician's scope is Records tickets (default 250) with their customers,
// sites, assets and dispatch events. Each phone: POST /mobile/v1/auth/login (a bcrypt
// check on the server), a WebSocket, hello, a live pull from empty until caught up, then
// verify. Measured: seconds from the start until the last phone verified; login latency;
// each phone's sync time (from its login's answer to verified); one bcrypt check here;
// the server's peak resident memory (VmHWM of the spawned server, which only serves).
// Checked: every phone logs in, catches up and its digest of what it received (entity, id,
// version of each record held) equals the server's digest of its scope; failures are
// phones that did not within 5 minutes (failed dials retry with backoff, as the SDK does).
// With LoggedIn the phones already hold their device tokens (seeded as a login stores them)
// and only sync.
func morning(ctx context.Context, cfg *Config, res *Result) error {
	nDev := defInt(cfg.Devices, 2000)
	perTech := min(defInt(cfg.PerTech, 1), nDev)
	nTech := (nDev + perTech - 1) / perTech
	nTickets := defInt(cfg.Records, 250)
	fx := fixture{techs: nTech, devicesPerTech: 0, ticketsPerTech: nTickets, textBytes: 420}
	if cfg.LoggedIn { // the phones already hold their tokens
		fx.devicesPerTech = perTech
	}
	if perTech > 3 { // the company's default bound of registered devices per person
		fx.settings = map[string]string{"max_devices_per_user": fmt.Sprint(perTech)}
	}
	t, err := setup(ctx, cfg, fx)
	if err != nil {
		return err
	}
	defer t.Close()
	// One bcrypt comparison at the cost the server's hashes have: the floor of a login.
	hash, _ := bcrypt.GenerateFromPassword([]byte(benchPass), syncer.PasswordCost)
	b0 := time.Now()
	bcrypt.CompareHashAndPassword(hash, []byte(benchPass))
	bcryptTime := time.Since(b0)
	run := fmt.Sprint(time.Now().UnixNano() % 1e9)
	var mu gosync.Mutex
	var logins, syncs, done []time.Duration
	var received int64
	conns := make([]*lean, nDev)
	cfg.logf("morning: %d phones (%d technicians, %d tickets each) log in and sync at once", nDev, nTech, nTickets)
	start := time.Now()
	failures := dialAll(ctx, nDev, nDev, morningWithin, func(ctx context.Context, i int) error {
		ti := i / perTech
		dev := device{Tech: ti, DeviceID: fmt.Sprintf("morning-%s-%05d", run, i)}
		var loginTime time.Duration
		if cfg.LoggedIn {
			dev = t.devices[i]
		} else if err := func() error {
			// Each phone logs in from its own loopback address, as phones reach a server from
			// their own networks (the server slows many logins at once from one address).
			h := &httpAPI{base: t.deviceBase(i)}
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(i%250+1))}}
			h.c.Transport = &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
			l0 := time.Now()
			var out map[string]any
			if err := h.do(ctx, "POST", "/mobile/v1/auth/login", "", "", map[string]any{"username": t.techs[ti].Username, "password": benchPass,
				"device_id": dev.DeviceID, "device_name": "早班 morning " + dev.DeviceID}, &out); err != nil {
				if strings.Contains(err.Error(), ": 4") { // refused: a check failure, not a dial to retry
					return failf("login: %v", err)
				}
				return err
			}
			loginTime = time.Since(l0)
			dev.Token, _ = out["token"].(string)
			return nil
		}(); err != nil {
			return err
		}
		s0 := time.Now()
		// held is what the phone holds: entity/id -> version.
		held := map[string]int64{}
		var hmu gosync.Mutex
		l, err := dialLean(ctx, t.wsURL(i), dev, func(f *syncer.Frame, _ time.Time) {
			hmu.Lock()
			for _, c := range f.Changes {
				k := c.Entity + "\n" + c.ID
				if c.Op == syncer.OpUpsert {
					held[k] = c.Version
				} else {
					delete(held, k)
				}
			}
			hmu.Unlock()
		})
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
		cp := l.checkpoint()
		f, err := l.request(ctx, syncer.Frame{Type: syncer.MsgVerify, Checkpoint: &cp})
		if err != nil {
			l.close()
			return err
		}
		hmu.Lock()
		n, sum := digestOf(held)
		hmu.Unlock()
		if f.Type != syncer.MsgDigest || f.Count == nil || *f.Count != n || f.Hash != sum {
			l.close()
			return failf("device %d holds %d records that do not match the server's digest of its scope (%v records)", i, n, f.Count)
		}
		el := time.Since(start)
		mu.Lock()
		conns[i] = l
		if !cfg.LoggedIn {
			logins = append(logins, loginTime)
		}
		syncs = append(syncs, time.Since(s0))
		done = append(done, el)
		received += n
		mu.Unlock()
		return nil
	})
	for _, l := range conns {
		if l != nil {
			l.close()
		}
	}
	slices.Sort(logins)
	slices.Sort(done)
	slices.Sort(syncs)
	res.set("devices", float64(nDev))
	res.set("technicians", float64(nTech))
	res.set("tickets_per_scope", float64(nTickets))
	res.set("failures", float64(len(failures)))
	res.set("records", float64(received))
	if len(done) > 0 {
		res.set("seconds", done[len(done)-1].Seconds())
		res.set("p50_seconds", pct(done, 0.5)/1000)
		res.set("records_per_device", float64(received)/float64(len(done)))
	}
	if len(logins) > 0 {
		res.set("login_p50_ms", pct(logins, 0.5))
		res.set("login_p99_ms", pct(logins, 0.99))
	}
	res.set("sync_p50_ms", pct(syncs, 0.5))
	res.set("sync_p99_ms", pct(syncs, 0.99))
	res.set("bcrypt_ms", ms(bcryptTime))
	if kb, err := t.serverKB("VmHWM"); err == nil {
		res.set("server_peak_rss_kb", float64(kb))
		if cfg.InProcess {
			res.Notes = append(res.Notes, "in-process server: the peak memory includes the seeding and the bench's own clients")
		}
	} else {
		res.Notes = append(res.Notes, "server peak memory not measured (--pid)")
	}
	cfg.logf("morning: %d of %d phones verified, the last after %s", len(done), nDev, time.Duration(res.Figures["seconds"]*float64(time.Second)).Round(time.Millisecond))
	if len(failures) > 0 {
		return failf("%d of %d phones did not log in, catch up and verify within %s, e.g. %v", len(failures), nDev, morningWithin, first(failures))
	}
	return nil
}

// morningWithin is how long the phones of morning have to be verified, logins included.
const morningWithin = 5 * time.Minute

// digestOf is the verify digest of held (entity "\n" id -> version): the count and the hex
// SHA-256 over "entity\nid\nversion\n" in entity, id order, as the server computes it.
func digestOf(held map[string]int64) (int64, string) {
	keys := make([]string, 0, len(held))
	for k := range held {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ea, ia, _ := strings.Cut(a, "\n")
		eb, ib, _ := strings.Cut(b, "\n")
		if c := strings.Compare(ea, eb); c != 0 {
			return c
		}
		return strings.Compare(ia, ib)
	})
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\n%d\n", k, held[k])
	}
	return int64(len(keys)), hex.EncodeToString(h.Sum(nil))
}
