package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	syncer "fieldsync/sync"
)

func TestMain(m *testing.M) {
	syncer.PasswordCost = bcrypt.MinCost // real bcrypt, cheap cost: the phones log in
	os.Exit(m.Run())
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// TestScenariosSmall runs the flood and morning scenarios at a tiny scale on an in-process
// server: each must pass its own checks and report its documented keys. The figures are not
// judged (benchmarks are not timed tests).
func TestScenariosSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds servers")
	}
	for _, c := range []struct {
		cfg  Config
		keys []string
	}{
		{Config{Scenario: "flood", Devices: 4, Rate: 100, Duration: time.Second},
			[]string{"calm_ack_p99_ms", "flood_ack_p99_ms", "calm_edit_p99_ms", "flood_edit_p99_ms", "ack_p99_ratio", "edit_p99_ratio", "flooder_mutations", "flooder_rate_limited"}},
		{Config{Scenario: "morning", Devices: 6, Records: 5},
			[]string{"seconds", "failures", "records_per_device", "login_p99_ms", "sync_p99_ms", "bcrypt_ms", "server_peak_rss_kb"}},
	} {
		t.Run(c.cfg.Scenario, func(t *testing.T) {
			cfg := c.cfg
			cfg.InProcess = true
			cfg.Log = logWriter{t}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK {
				t.Fatalf("%s failed its checks: %s", cfg.Scenario, res.Error)
			}
			for _, k := range c.keys {
				if _, ok := res.Figures[k]; !ok {
					t.Errorf("%s: no %q in %v", cfg.Scenario, k, res.Figures)
				}
			}
		})
	}
}
