package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"fieldsync/internal/testpg"
	syncer "fieldsync/sync"
)

func TestMain(m *testing.M) {
	syncer.PasswordCost = bcrypt.MinCost // real bcrypt, cheap cost: the phones log in
	os.Exit(m.Run())
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// runInProcess runs cfg on an in-process server (two minutes at most) and fails the test
// unless the scenario passed its own checks.
func runInProcess(t *testing.T, cfg Config) Result {
	t.Helper()
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
	return res
}

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
			res := runInProcess(t, c.cfg)
			for _, k := range c.keys {
				if _, ok := res.Figures[k]; !ok {
					t.Errorf("%s: no %q in %v", c.cfg.Scenario, k, res.Figures)
				}
			}
		})
	}
}

// TestPostgresInstances runs a tiny push and fanout on PostgreSQL with two in-process
// instances on one database (FIELDSYNC_TEST_PG names the cluster; the bench creates its own
// database there and drops it): each must pass its own checks (push: every note back once
// on its device's live stream and in the database once; fanout: every change reaches every
// phone on the instance the coordinators do not use), and report its store and instances.
func TestPostgresInstances(t *testing.T) {
	if !testpg.On() {
		t.Skip("PostgreSQL: set " + testpg.Env + " (bash .ci/postgres)")
	}
	before := benchDatabases(t)
	for _, cfg := range []Config{
		{Scenario: "push", Devices: 4, Batch: 5, Duration: time.Second},
		{Scenario: "fanout", Devices: 4, Rate: 20, Duration: time.Second},
	} {
		t.Run(cfg.Scenario, func(t *testing.T) {
			cfg.DB = os.Getenv(testpg.Env)
			cfg.Instances = 2
			res := runInProcess(t, cfg)
			if res.Store != "postgres" || res.Instances != 2 {
				t.Errorf("%s reports store %q, %d instances; want postgres, 2", cfg.Scenario, res.Store, res.Instances)
			}
			b, _ := json.Marshal(res)
			if !strings.Contains(string(b), `"store":"postgres","instances":2`) {
				t.Errorf("--json output %s lacks the store and the instance count", b)
			}
		})
	}
	if after := benchDatabases(t); after != before {
		t.Errorf("%d bench databases in the cluster after the runs, %d before: a run's database was not dropped", after, before)
	}
}

// benchDatabases counts the bench's databases in the FIELDSYNC_TEST_PG cluster.
func benchDatabases(t *testing.T) int {
	db, err := sql.Open("pgx", os.Getenv(testpg.Env))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pg_database WHERE datname LIKE 'fieldsync_bench_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
