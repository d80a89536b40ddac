package bench

import (
	"context"
	"os"
	"path/filepath"
	"time"

	syncer "fieldsync/sync"
	"fieldsync/sync/client"
)

// initialSync: a fresh device (the real SDK, its own SQLite file) pulls a technician's scope
// of Records tickets with their customers, sites, assets and dispatch events; timed from
// client.Open to SyncNow returning with everything stored locally. Checked: the local store
// holds every ticket once, and its digest equals the server's digest of the scope.
func initialSync(ctx context.Context, cfg *Config, res *Result) error {
	n := defInt(cfg.Records, 10000)
	t, err := setup(ctx, cfg, fixture{techs: 1, devicesPerTech: 1, ticketsPerTech: n, customers: max(1, n/10), textBytes: 420})
	if err != nil {
		return err
	}
	defer t.Close()
	dir, err := os.MkdirTemp("", "fieldsync-bench-device-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dev := t.devices[0]
	stopProfile, err := cfg.profile()
	if err != nil {
		return err
	}
	defer stopProfile()
	start := time.Now()
	c, err := client.Open(client.Config{BaseURL: t.deviceBase(0), DBPath: filepath.Join(dir, "device.db"), Token: dev.Token, DeviceID: dev.DeviceID,
		PullLimit: syncer.MaxPullLimit, AppVersion: "bench"})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SyncNow(ctx); err != nil {
		return err
	}
	el := time.Since(start)
	stopProfile()
	count, _, err := c.Digest()
	if err != nil {
		return err
	}
	res.set("seconds", el.Seconds())
	res.set("records", float64(count))
	res.set("tickets", float64(n))
	res.set("records_per_s", float64(count)/el.Seconds())
	cfg.logf("initial sync: %d records in %s", count, el.Round(time.Millisecond))
	tickets, err := c.Records("ticket")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, r := range tickets {
		if seen[r.ID] {
			return failf("ticket %s twice in the local store", r.ID)
		}
		seen[r.ID] = true
	}
	for _, tk := range t.techs[0].Tickets {
		if !seen[tk.ID] {
			return failf("ticket %s missing from the local store (%d of %d held)", tk.ID, len(tickets), n)
		}
	}
	if len(tickets) != n {
		return failf("the device holds %d tickets, want %d", len(tickets), n)
	}
	if err := c.Verify(ctx); err != nil {
		return failf("verify: %v", err)
	}
	return nil
}
