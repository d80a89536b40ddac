package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"fieldsync/internal/bench"
)

func init() {
	extraCommands = append(extraCommands, command{"bench", "bench SCENARIO [--url URL | --spawn] [--db postgres://… [--instances N]] [--devices N] [--duration D] [--json]   measure", cmdBench})
}

// cmdBench runs one scenario of internal/bench and exits non-zero when its checks fail.
func cmdBench(args []string) error {
	fs := newFlags("bench", "bench SCENARIO [--url URL | --spawn] [--db postgres://… [--instances N]] [--devices N] [--duration D] [--json]\n  scenarios: initial-sync, push, flood, fanout, morning, connections, reconnect, baseline")
	var cfg bench.Config
	fs.StringVar(&cfg.URL, "url", "", "measure the running server at this base URL (default: spawn one)")
	spawn := fs.Bool("spawn", false, "start a server on a temporary data folder on 127.0.0.1 and seed it (the default)")
	fs.StringVar(&cfg.AdminPassword, "admin-password", os.Getenv("FIELDSYNC_ADMIN_PASSWORD"), "with --url: the admin's password, to create the bench's accounts (env FIELDSYNC_ADMIN_PASSWORD)")
	fs.IntVar(&cfg.PID, "pid", 0, "with --url: the server's process id, to read its memory (connections)")
	fs.IntVar(&cfg.Devices, "devices", 0, "devices (default per scenario: push and flood 100, fanout 1000, morning 2000, connections and reconnect 10000)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to run (default per scenario: push and fanout 10s, connections 5s)")
	fs.IntVar(&cfg.Records, "records", 0, "initial-sync, morning: tickets in a device's scope (default 10000, morning 250)")
	fs.IntVar(&cfg.Rate, "rate", 0, "fanout: coordinator changes per second (default 200); push: mutations offered per second by all devices together (open loop; default: closed loop); flood: the same (default 1000)")
	fs.IntVar(&cfg.Batch, "batch", 0, "push, flood: mutations per push (default 50; open loop 5)")
	fs.BoolVar(&cfg.LoggedIn, "logged-in", false, "morning: the phones already hold their device tokens and only sync (no password check)")
	fs.IntVar(&cfg.PerTech, "per-tech", 0, "morning: phones per technician, sharing its scope (default 1)")
	fs.BoolVar(&cfg.InProcess, "in-process", false, "serve the spawned server in the bench's own process (memory figures then include the clients)")
	fs.BoolVar(&cfg.KeepDir, "keep", false, "keep the spawned server's data folder (each run's own: with --store-records, a copy of the store)")
	fs.IntVar(&cfg.StoreRecords, "store-records", 0, "spawned server: its store already holds N records of other technicians (seeded once into $TMPDIR/fieldsync-bench-store-N, kept, and copied for each run; remove it to seed again)")
	fs.StringVar(&cfg.DB, "db", "", "spawned server: store on PostgreSQL, in a database created for the run in this cluster (postgres://… of a user that may create databases) and dropped after it (kept with --keep)")
	fs.IntVar(&cfg.Instances, "instances", 1, "with --db: serve with N instances on the one database, each its own process (or in-process server) and port; fanout's coordinators use instance 1 and its phones the others, the other scenarios' devices take the instances in turn")
	rates := fs.String("rates", "", "push: run the open loop at each of these offered rates in turn (comma-separated, e.g. 1000,2000,3000), each on its own server")
	plot := fs.String("plot", "", "with push --rates: draw acknowledgement latency against offered load into this PNG file")
	asJSON := fs.Bool("json", false, "print one JSON object (with --rates: one a line)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the bench process to this file (with --in-process it includes the server; initial-sync: the timed sync only)")
	quiet := fs.Bool("quiet", false, "no progress lines on standard error")
	// The scenario may come before or after the flags.
	var scenario string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		scenario, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if scenario == "" && fs.NArg() > 0 {
		scenario = fs.Arg(0)
	}
	if scenario == "" {
		fs.Usage()
		return errors.New("name a scenario")
	}
	if *spawn && cfg.URL != "" {
		return errors.New("--spawn and --url exclude each other")
	}
	if cfg.Instances < 1 {
		return fmt.Errorf("--instances %d: give 1 or more", cfg.Instances)
	}
	cfg.Scenario = scenario
	if !*quiet {
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.CPUProfile = f
	}
	var runs []int
	if *rates != "" {
		if scenario != "push" {
			return errors.New("--rates belongs to the push scenario")
		}
		for _, f := range strings.Split(*rates, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				return fmt.Errorf("--rates: %q is not a positive number of mutations a second", f)
			}
			runs = append(runs, r)
		}
	} else if *plot != "" {
		return errors.New("--plot needs push --rates")
	} else {
		runs = []int{cfg.Rate}
	}
	var results []bench.Result
	var failed error
	for _, r := range runs {
		c := cfg
		c.Rate = r
		res, err := bench.Run(ctx, c)
		if err != nil {
			return err
		}
		if *asJSON {
			b, _ := json.Marshal(res)
			fmt.Println(string(b))
		} else {
			fmt.Print(res.Text())
		}
		if !res.OK && failed == nil {
			failed = fmt.Errorf("%s FAILED: %s", scenario, res.Error)
		}
		results = append(results, res)
	}
	if *plot != "" {
		title := fmt.Sprintf("push --rate: acknowledgement latency against offered load (%s)", time.Now().UTC().Format("2006-01-02"))
		if err := bench.PlotRateCurve(*plot, title, results); err != nil {
			return err
		}
	}
	return failed
}
