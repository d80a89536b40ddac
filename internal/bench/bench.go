// Package bench is `fieldsync bench`: it measures a fieldsync server under the loads the
// product promises (a fresh phone's first sync, a storm of pushes, live fan-out to many
// phones, many idle connections, mass reconnects) and the raw limits of the same machine
// (SQLite inserts, WebSocket round trips) to compare with. Every scenario checks its own
// result (nothing missing, nothing duplicated) and fails when it does not hold: a fast
// wrong answer is a failure.
//
// The scenarios about the app's experience (initial-sync) drive the real Go SDK
// (sync/client) with its own SQLite file; those about server capacity (push, fanout,
// connections, reconnect) drive a lean protocol client (gorilla/websocket, the same frames)
// so that thousands of devices fit on the machine next to the server.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"fieldsync/schema"
)

// Scenarios lists the scenario names in the order the docs give them.
var Scenarios = []string{"initial-sync", "push", "flood", "fanout", "morning", "connections", "reconnect", "baseline"}

// Config says what to run and against which server.
type Config struct {
	Scenario string
	// URL is a running server to measure; empty means spawn one on a temporary data folder.
	URL string
	// AdminPassword is the admin's password on the server at URL (to create the bench's
	// accounts and data through the API).
	AdminPassword string
	// PID of the server at URL, to read its memory (connections); 0 when unknown.
	PID int
	// InProcess serves the spawned server in this process instead of a child process (tests;
	// the memory figure then includes the clients).
	InProcess bool
	// Binary is the fieldsync binary a spawned server runs (default: this executable).
	Binary   string
	Devices  int           // 0: the scenario's default
	Duration time.Duration // 0: the scenario's default
	Records  int           // initial-sync: tickets in the scope (default 10,000)
	Rate     int           // fanout: coordinator changes per second (default 200)
	Batch    int           // push: mutations per push (default 50)
	PerTech  int           // morning: devices per technician (default 1)
	LoggedIn bool          // morning: the phones already hold their tokens (no password login)
	Log      io.Writer     // progress lines; nil: discard
	KeepDir  bool          // keep the temporary data folder (and a PostgreSQL run's database)
	// StoreRecords: the spawned server's store already holds this many records of other
	// technicians (seeded once into a folder of $TMPDIR that later runs copy).
	StoreRecords int
	// DB is a PostgreSQL cluster (postgres://… of a user that may create databases): the
	// spawned server then stores on PostgreSQL, in a database created for the run and
	// dropped after it (kept with KeepDir), instead of SQLite in its data folder.
	DB string
	// Instances is how many server instances share DB (default 1), each its own process
	// (or in-process server) on its own port; see target.phones for who talks to which.
	Instances int
	// CPUProfile receives a CPU profile of the measured part (initial-sync: the timed sync
	// only, without the seeding; the other scenarios: the whole run); nil: none.
	CPUProfile io.Writer
	profiling  bool
}

// profile starts the CPU profile, if one is wanted and not yet running, and returns what
// stops it.
func (c *Config) profile() (stop func(), err error) {
	if c.CPUProfile == nil || c.profiling {
		return func() {}, nil
	}
	if err := pprof.StartCPUProfile(c.CPUProfile); err != nil {
		return nil, err
	}
	c.profiling = true
	return func() {
		if c.profiling {
			pprof.StopCPUProfile()
			c.profiling = false
		}
	}, nil
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
	}
}

// Result is what a scenario measured. Figures holds the scenario's JSON keys.
type Result struct {
	Scenario string
	OK       bool
	Error    string
	// Store is what the spawned server stored on ("sqlite" or "postgres") and Instances how
	// many instances served; both unset for a server at a URL and for baseline.
	Store     string
	Instances int
	Figures   map[string]float64
	Notes     []string
}

func (r *Result) set(k string, v float64) {
	if r.Figures == nil {
		r.Figures = map[string]float64{}
	}
	r.Figures[k] = v
}

// MarshalJSON writes one flat object: scenario, ok, error (when failed), then the figures.
func (r Result) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteString(`{"scenario":`)
	s, _ := json.Marshal(r.Scenario)
	b.Write(s)
	fmt.Fprintf(&b, `,"ok":%v`, r.OK)
	if r.Error != "" {
		e, _ := json.Marshal(r.Error)
		b.WriteString(`,"error":`)
		b.Write(e)
	}
	if r.Store != "" {
		fmt.Fprintf(&b, `,"store":%q,"instances":%d`, r.Store, r.Instances)
	}
	keys := make([]string, 0, len(r.Figures))
	for k := range r.Figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := r.Figures[k]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = -1
		}
		fmt.Fprintf(&b, `,%q:%s`, k, formatNum(v))
	}
	if len(r.Notes) > 0 {
		n, _ := json.Marshal(r.Notes)
		b.WriteString(`,"notes":`)
		b.Write(n)
	}
	b.WriteString("}")
	return []byte(b.String()), nil
}

func formatNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}

// Text renders the result for a person.
func (r Result) Text() string {
	var b strings.Builder
	st := "ok"
	if !r.OK {
		st = "FAILED: " + r.Error
	}
	fmt.Fprintf(&b, "%s: %s\n", r.Scenario, st)
	if r.Store != "" {
		fmt.Fprintf(&b, "  %-26s %s, %d instance(s)\n", "store", r.Store, r.Instances)
	}
	keys := make([]string, 0, len(r.Figures))
	for k := range r.Figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-26s %s\n", k, formatNum(r.Figures[k]))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// Run runs one scenario. The error is for the run as a whole (the server would not start);
// a scenario whose checks fail returns a Result with OK false and Error set.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if !slices.Contains(Scenarios, cfg.Scenario) {
		return Result{}, fmt.Errorf("unknown scenario %q (one of %s)", cfg.Scenario, strings.Join(Scenarios, ", "))
	}
	cfg.Instances = max(cfg.Instances, 1)
	switch {
	case cfg.DB != "" && cfg.URL != "":
		return Result{}, errors.New("--db and --url exclude each other: the server at --url has its own store")
	case cfg.DB != "" && !schema.IsPostgresURL(cfg.DB):
		return Result{}, errors.New("--db: give the postgres:// URL of a PostgreSQL cluster where the bench may create a database")
	case cfg.Instances > 1 && cfg.DB == "":
		return Result{}, errors.New("--instances: several instances share one PostgreSQL database: give --db")
	}
	RaiseFileLimit()
	res := Result{Scenario: cfg.Scenario}
	if cfg.URL == "" && cfg.Scenario != "baseline" {
		res.Store, res.Instances = "sqlite", cfg.Instances
		if cfg.DB != "" {
			res.Store = "postgres"
		}
	}
	var err error
	if cfg.Scenario != "initial-sync" {
		stop, err := cfg.profile()
		if err != nil {
			return res, err
		}
		defer stop()
	}
	switch cfg.Scenario {
	case "initial-sync":
		err = initialSync(ctx, &cfg, &res)
	case "push":
		err = push(ctx, &cfg, &res)
	case "flood":
		err = flood(ctx, &cfg, &res)
	case "fanout":
		err = fanout(ctx, &cfg, &res)
	case "morning":
		err = morning(ctx, &cfg, &res)
	case "connections":
		err = connections(ctx, &cfg, &res, false)
	case "reconnect":
		err = connections(ctx, &cfg, &res, true)
	case "baseline":
		err = baseline(ctx, &cfg, &res)
	}
	if err != nil {
		if _, ok := err.(*checkError); !ok && res.Figures == nil {
			return res, err
		}
		res.OK, res.Error = false, err.Error()
		return res, nil
	}
	res.OK = true
	return res, nil
}

// checkError is a scenario whose result did not hold.
type checkError struct{ msg string }

func (e *checkError) Error() string { return e.msg }

func failf(format string, args ...any) error { return &checkError{fmt.Sprintf(format, args...)} }

// RaiseFileLimit lifts the soft limit on open files to the hard one: 10,000 connections
// need 10,000 descriptors on each side.
func RaiseFileLimit() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return l.Cur
}

// pct returns the q-quantile (0..1) of sorted durations, in milliseconds.
func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// procKB reads a memory field (VmRSS, VmHWM) of a process from /proc/PID/status.
func procKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no %s for process %d", field, pid)
}

func defInt(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func defDur(v, d time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return d
}
