package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver: the run's database is created and dropped in the cluster
	"golang.org/x/crypto/bcrypt"

	"fieldsync/schema"
	"fieldsync/server"
	syncer "fieldsync/sync"
)

// fixture is the data a scenario needs on the server.
type fixture struct {
	techs          int // technicians
	devicesPerTech int // device tokens per technician
	ticketsPerTech int // tickets dispatched to each technician
	customers      int // customers (each with one site and one asset); default techs*tickets/10
	textBytes      int // padding of each ticket's text fields, to make it about 1 KB of JSON
	// settings are company settings to store before the scenario (name: JSON value).
	settings map[string]string
	// serial prefixes the assets' serial numbers (unique per company).
	serial string
}

// tech is a technician of the fixture.
type tech struct {
	ID       string
	Username string
	Tickets  []ticketRef
}

type ticketRef struct {
	ID       string
	Version  int64
	Customer string
}

// device is a device token of a technician.
type device struct {
	Tech     int // index in target.techs
	DeviceID string
	Token    string
}

// target is the server under measurement with the fixture's data in it: one instance, or
// several on one PostgreSQL database (Config.Instances).
type target struct {
	base  string   // instance 1 (http://127.0.0.1:PORT): the coordinators' HTTP API goes here
	bases []string // every instance; bases[0] == base
	// phones are the instances devices connect to: device i to bases[phones[i%len(phones)]].
	// Every instance by default; fanout leaves instance 1 to the coordinators.
	phones    []int
	dir       string // data folder (spawned servers; blobs and keys on PostgreSQL)
	db        string // the run's PostgreSQL database ("" on SQLite)
	pids      []int  // server processes, for memory (none: unknown)
	techs     []tech
	devices   []device
	coordUser string
	coordPass string
	stops     []func() error // each instance's, in start order
	cfg       *Config
}

const (
	benchAdminPass = "bench-admin-pass"
	benchPass      = "bench-pass-2026"
)

// deviceBase is the instance device i talks to.
func (t *target) deviceBase(i int) string { return t.bases[t.phones[i%len(t.phones)]] }

func (t *target) wsURL(i int) string {
	return "ws" + strings.TrimPrefix(t.deviceBase(i), "http") + "/mobile/v1/sync"
}

// phonesAvoidFirst sends the devices to instances 2..N when there are several, so that
// what the coordinators do on instance 1 reaches them across instances.
func (t *target) phonesAvoidFirst() {
	if len(t.phones) > 1 && t.phones[0] == 0 {
		t.phones = t.phones[1:]
	}
}

// serverKB sums a memory field of /proc/PID/status (VmRSS, VmHWM) over the server's
// processes.
func (t *target) serverKB(field string) (int64, error) {
	if len(t.pids) == 0 {
		return 0, errors.New("the server's process id is unknown (--pid)")
	}
	var sum int64
	for _, pid := range t.pids {
		kb, err := procKB(pid, field)
		if err != nil {
			return 0, err
		}
		sum += kb
	}
	return sum, nil
}

// Close stops the instances, then removes the data folder and drops the run's database
// (both kept with KeepDir).
func (t *target) Close() error {
	var err error
	for i := len(t.stops) - 1; i >= 0; i-- {
		if e := t.stops[i](); err == nil {
			err = e
		}
	}
	t.stops = nil
	if t.cfg.KeepDir {
		if t.dir != "" {
			t.cfg.logf("kept the data folder %s", t.dir)
		}
		if t.db != "" {
			t.cfg.logf("kept the database %s", dbName(t.db))
		}
		return err
	}
	if t.dir != "" {
		os.RemoveAll(t.dir)
	}
	if t.db != "" {
		if e := dropDatabase(t.cfg.DB, dbName(t.db)); err == nil {
			err = e
		}
	}
	return err
}

// setup spawns or reaches the server and seeds the fixture.
func setup(ctx context.Context, cfg *Config, fx fixture) (*target, error) {
	if fx.customers <= 0 {
		fx.customers = max(1, fx.techs*fx.ticketsPerTech/10)
	}
	if cfg.URL != "" {
		return setupRemote(ctx, cfg, fx)
	}
	return spawn(ctx, cfg, fx)
}

// spawn seeds a fresh store in this process through the engine (the write path, in
// batches), then serves it with Config.Instances instances: as child processes running
// `fieldsync serve` (so their memory is their own and they have their own file
// descriptors), or in this process with InProcess. The store is SQLite in a temporary data
// folder, or with Config.DB a PostgreSQL database created for the run in that cluster;
// the instances then share it and the data folder (blobs and keys).
func spawn(ctx context.Context, cfg *Config, fx fixture) (*target, error) {
	dir, err := os.MkdirTemp("", "fieldsync-bench-")
	if err != nil {
		return nil, err
	}
	t := &target{dir: dir, cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			t.Close()
		}
	}()
	start := time.Now()
	quiet := slog.New(slog.DiscardHandler)
	if cfg.StoreRecords > 0 {
		if err := historyStore(ctx, cfg, t); err != nil {
			return nil, err
		}
		start = time.Now()
	} else if cfg.DB != "" {
		if t.db, err = createDatabase(ctx, cfg.DB, ""); err != nil {
			return nil, err
		}
	}
	if t.db != "" {
		cfg.logf("PostgreSQL database %s for this run", dbName(t.db))
	}
	scfg := server.Config{DataDir: dir, DB: t.db, AdminPassword: benchAdminPass, Log: quiet, Out: func(string) {}}
	srv, err := server.New(ctx, scfg)
	if err != nil {
		return nil, err
	}
	if err := seedLocal(ctx, srv, fx, t); err != nil {
		srv.Shutdown(context.Background())
		return nil, err
	}
	cfg.logf("seeded %d technicians, %d devices, %d tickets in %s", len(t.techs), len(t.devices), fx.techs*fx.ticketsPerTech, time.Since(start).Round(time.Millisecond))
	n := max(cfg.Instances, 1)
	lns := make([]net.Listener, n)
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			for _, ln := range lns[:i] {
				ln.Close()
			}
			srv.Shutdown(context.Background())
			return nil, err
		}
		t.bases = append(t.bases, "http://"+lns[i].Addr().String())
		t.phones = append(t.phones, i)
	}
	t.base = t.bases[0]
	if cfg.InProcess {
		t.pids = []int{os.Getpid()}
		for i, ln := range lns {
			if i > 0 {
				if srv, err = server.New(ctx, scfg); err != nil {
					for _, ln := range lns[i:] {
						ln.Close()
					}
					return nil, fmt.Errorf("instance %d: %w", i+1, err)
				}
			}
			s := srv
			go s.App.Listener(ln)
			t.stops = append(t.stops, func() error {
				c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				return s.Shutdown(c)
			})
		}
	} else {
		for _, ln := range lns {
			ln.Close()
		}
		if err := srv.Shutdown(context.Background()); err != nil {
			return nil, err
		}
		for i := range n {
			if err := t.serve(ctx, i); err != nil {
				return nil, err
			}
		}
	}
	ok = true
	return t, nil
}

// serve starts instance i as a child process `fieldsync serve` on its address and waits
// until it answers /healthz. Its log goes to server.log in the data folder (instance 1) or
// server-N.log.
func (t *target) serve(ctx context.Context, i int) error {
	bin := t.cfg.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	logName := "server.log"
	if i > 0 {
		logName = fmt.Sprintf("server-%d.log", i+1)
	}
	logPath := filepath.Join(t.dir, logName)
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", "--addr", strings.TrimPrefix(t.bases[i], "http://"), "--data", t.dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The store goes in the environment, not on the command line where ps shows it; set
	// even when empty, so that a FIELDSYNC_DB of the caller's never reaches a SQLite run.
	cmd.Env = append(os.Environ(), "FIELDSYNC_DEMO=0", "FIELDSYNC_DB="+t.db)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s serve: %w", bin, err)
	}
	t.pids = append(t.pids, cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.stops = append(t.stops, func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		return nil
	})
	if err := waitHealthy(ctx, t.bases[i], exited); err != nil {
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("instance %d: %w\nserver log:\n%s", i+1, err, tail(log, 2000))
	}
	return nil
}

// createDatabase creates an empty database for a run in the cluster of clusterURL (as a
// copy of template when given) and returns its URL: the cluster's URL naming the new
// database.
func createDatabase(ctx context.Context, clusterURL, template string) (string, error) {
	b := make([]byte, 6)
	rand.Read(b)
	return createNamedDatabase(ctx, clusterURL, "fieldsync_bench_"+hex.EncodeToString(b), template)
}

func createNamedDatabase(ctx context.Context, clusterURL, name, template string) (string, error) {
	u, err := url.Parse(clusterURL)
	if err != nil {
		return "", fmt.Errorf("--db: %w", err)
	}
	admin, err := sql.Open("pgx", clusterURL)
	if err != nil {
		return "", fmt.Errorf("--db: %w", err)
	}
	defer admin.Close()
	q := "CREATE DATABASE " + name
	if template != "" {
		q += " TEMPLATE " + template
	}
	if _, err := admin.ExecContext(ctx, q); err != nil {
		return "", fmt.Errorf("--db: create the run's database %s in the cluster: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropDatabase drops a database of the cluster of clusterURL, if it exists, closing its
// connections.
func dropDatabase(clusterURL, name string) error {
	admin, err := sql.Open("pgx", clusterURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop the run's database %s: %w", name, err)
	}
	return nil
}

// databaseExists reports whether the cluster of clusterURL holds a database of that name.
func databaseExists(ctx context.Context, clusterURL, name string) bool {
	admin, err := sql.Open("pgx", clusterURL)
	if err != nil {
		return false
	}
	defer admin.Close()
	var one int
	return admin.QueryRowContext(ctx, "SELECT 1 FROM pg_database WHERE datname = $1", name).Scan(&one) == nil
}

// dbName is the database a postgres:// URL names.
func dbName(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func waitHealthy(ctx context.Context, base string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the server exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the server did not answer /healthz within 30 s")
}

// pad returns about n bytes of mixed Latin and Chinese text.
func pad(n int, i int) string {
	const words = "控制柜报警 alarm lamp stays on; 伺服报警 E-21 servo fault; check wiring and fuses. "
	var b strings.Builder
	fmt.Fprintf(&b, "#%d ", i)
	for b.Len() < n {
		b.WriteString(words)
	}
	out := b.String()[:max(0, min(b.Len(), n))]
	return strings.ToValidUTF8(out, "")
}

func rawFields(m map[string]any) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = schema.MustJSON(v)
	}
	return out
}

// seedLocal creates the fixture through srv.Engine: accounts with CreateUser (bcrypt, in
// parallel), records with Apply in batches of 500, device tokens written directly (a device
// login per token would cost a bcrypt comparison each).
func seedLocal(ctx context.Context, srv *server.Server, fx fixture, t *target) error {
	e := srv.Engine
	coord, err := e.CreateUser(ctx, schema.System, syncer.NewUser{Username: "bench-coord", Name: "Bench Coordinator", Role: schema.RoleCoordinator, Password: benchPass})
	if err != nil {
		return err
	}
	t.coordUser, t.coordPass = "bench-coord", benchPass
	if len(fx.settings) > 0 {
		vals := map[string]json.RawMessage{}
		for k, v := range fx.settings {
			vals[k] = json.RawMessage(v)
		}
		if err := e.PutSettings(ctx, schema.System, vals); err != nil {
			return err
		}
	}
	actor := schema.Actor{UserID: coord.Str("id"), Role: schema.RoleCoordinator, Name: "Bench Coordinator"}
	// Accounts are created with the cheapest hash, then all given one hash of the bench
	// password at the server's cost: logins cost what they would, seeding does not.
	cost := syncer.PasswordCost
	syncer.PasswordCost = bcrypt.MinCost
	defer func() { syncer.PasswordCost = cost }()
	t.techs = make([]tech, fx.techs)
	var wg gosync.WaitGroup
	errs := make(chan error, fx.techs)
	sem := make(chan struct{}, 4)
	for i := range fx.techs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("bench-tech-%05d", i)
			u, err := e.CreateUser(ctx, schema.System, syncer.NewUser{Username: name, Name: "技术员 Tech " + strconv.Itoa(i), Role: schema.RoleTechnician, Dedicated: true, Password: benchPass})
			if err != nil {
				errs <- err
				return
			}
			t.techs[i] = tech{ID: u.Str("id"), Username: name}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	apply := func(muts []syncer.Mutation) ([]syncer.Result, error) {
		var out []syncer.Result
		for len(muts) > 0 {
			n := min(500, len(muts))
			res, err := e.Apply(ctx, actor, muts[:n], syncer.Options{})
			if err != nil {
				return nil, err
			}
			for i, r := range res {
				if r.Status == syncer.StatusRejected {
					return nil, fmt.Errorf("seed %s %s: %s: %s", muts[i].Op, muts[i].Entity, r.Code, r.Message)
				}
			}
			out = append(out, res...)
			muts = muts[n:]
		}
		return out, nil
	}
	custs, sites, assets, err := seedCustomers(fx, apply)
	if err != nil {
		return err
	}
	var creates []syncer.Mutation
	for ti := range fx.techs {
		for k := range fx.ticketsPerTech {
			c := (ti*fx.ticketsPerTech + k) % len(custs)
			creates = append(creates, syncer.Mutation{Entity: schema.EntTicket, Op: "create", Fields: rawFields(ticketFields(custs[c], sites[c], assets[c], fx.textBytes, ti*fx.ticketsPerTech+k))})
		}
	}
	res, err := apply(creates)
	if err != nil {
		return err
	}
	var dispatches []syncer.Mutation
	for i, r := range res {
		ti := i / max(fx.ticketsPerTech, 1)
		dispatches = append(dispatches, syncer.Mutation{Entity: schema.EntTicket, ID: r.ID, Op: "action", Action: "dispatch",
			Fields: rawFields(map[string]any{"technician_id": t.techs[ti].ID})})
	}
	res, err = apply(dispatches)
	if err != nil {
		return err
	}
	for i, r := range res {
		ti := i / max(fx.ticketsPerTech, 1)
		t.techs[ti].Tickets = append(t.techs[ti].Tickets, ticketRef{ID: r.ID, Version: r.Version, Customer: custs[i%len(custs)]})
	}
	// Device tokens, as Engine.Login stores them (sha256 of the token; a devices row).
	tx, err := srv.DB.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPass), cost)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE credentials SET password_hash = ? WHERE username LIKE 'bench-%'`, string(hash)); err != nil {
		return err
	}
	now := time.Now().UTC()
	for ti := range t.techs {
		for k := range fx.devicesPerTech {
			raw := make([]byte, 32)
			rand.Read(raw)
			token := base64.RawURLEncoding.EncodeToString(raw)
			sum := sha256.Sum256([]byte(token))
			id := uuid.Must(uuid.NewV7()).String()
			devID := fmt.Sprintf("bench-%05d-%03d", ti, k)
			if _, err := tx.Exec(`INSERT INTO devices(id, user_id, device_id, name, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`,
				id, t.techs[ti].ID, devID, devID, schema.Stamp(now), schema.Stamp(now)); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO tokens(hash, user_id, device, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
				hex.EncodeToString(sum[:]), t.techs[ti].ID, id, schema.Stamp(now), schema.Stamp(now.Add(syncer.DeviceTokenTTL))); err != nil {
				return err
			}
			t.devices = append(t.devices, device{Tech: ti, DeviceID: devID, Token: token})
		}
	}
	return tx.Commit()
}

func seedCustomers(fx fixture, apply func([]syncer.Mutation) ([]syncer.Result, error)) (custs, sites, assets []string, err error) {
	var muts []syncer.Mutation
	for i := range fx.customers {
		muts = append(muts, syncer.Mutation{Entity: schema.EntCustomer, Op: "create", Fields: rawFields(map[string]any{
			"name": fmt.Sprintf("客户 Customer %05d 精密仪器有限公司", i), "phone": "021-5080-1234", "address": "上海市浦东新区张江路 88 号 Zhangjiang Road"})})
	}
	res, err := apply(muts)
	if err != nil {
		return nil, nil, nil, err
	}
	muts = muts[:0]
	for i, r := range res {
		custs = append(custs, r.ID)
		muts = append(muts, syncer.Mutation{Entity: schema.EntSite, Op: "create", Fields: rawFields(map[string]any{
			"customer_id": r.ID, "name": fmt.Sprintf("一号厂房 Plant %d", i), "address": "江苏省苏州市工业园区星湖街 328 号",
			"contacts": []map[string]string{{"name": "孙丽 Sun Li", "phone": "139-1234-5678"}}})})
	}
	if res, err = apply(muts); err != nil {
		return nil, nil, nil, err
	}
	muts = muts[:0]
	for i, r := range res {
		sites = append(sites, r.ID)
		muts = append(muts, syncer.Mutation{Entity: schema.EntAsset, Op: "create", Fields: rawFields(map[string]any{
			"customer_id": custs[i], "site_id": r.ID, "model": "PLC-X200 控制柜", "serial": fmt.Sprintf("HX-2023-%s%05d", fx.serial, i),
			"install_date": "2021-03-15", "manufacturer": "华东电气 East Electric"})})
	}
	if res, err = apply(muts); err != nil {
		return nil, nil, nil, err
	}
	for _, r := range res {
		assets = append(assets, r.ID)
	}
	return custs, sites, assets, nil
}

func ticketFields(cust, site, asset string, textBytes, i int) map[string]any {
	return map[string]any{"customer_id": cust, "site_id": site, "asset_id": asset,
		"fault_symptoms": pad(textBytes, i), "agreed_handling": "技术员上门检查 / technician visits",
		"urgency": "normal", "service_mode": "onsite", "contact_name": "周明 Zhou Ming", "contact_phone": "137-0000-1111",
		"address": "浙江省杭州市西湖区文三路 90 号 B 栋机房"}
}

// setupRemote creates the fixture on a running server through its public API. Device logins
// go through POST /mobile/v1/auth/login, which the server limits to 10 a minute from one
// address: runs with many devices belong to --spawn.
func setupRemote(ctx context.Context, cfg *Config, fx fixture) (*target, error) {
	t := &target{base: strings.TrimRight(cfg.URL, "/"), cfg: cfg}
	t.bases, t.phones = []string{t.base}, []int{0}
	if cfg.PID > 0 {
		t.pids = []int{cfg.PID}
	}
	if cfg.AdminPassword == "" {
		return nil, errors.New("--url needs the admin's password (--admin-password or FIELDSYNC_ADMIN_PASSWORD) to create the bench's accounts")
	}
	h := &httpAPI{base: t.base}
	admin, err := h.login(ctx, "admin", cfg.AdminPassword)
	if err != nil {
		return nil, err
	}
	if len(fx.settings) > 0 {
		vals := map[string]json.RawMessage{}
		for k, v := range fx.settings {
			vals[k] = json.RawMessage(v)
		}
		if err := h.do(ctx, "PUT", "/api/v1/settings", admin, "", vals, nil); err != nil {
			return nil, err
		}
	}
	run := strconv.FormatInt(time.Now().Unix()%1e6, 10)
	mkUser := func(name, role string) (string, error) {
		var u map[string]any
		err := h.do(ctx, "POST", "/api/v1/users", admin, "", map[string]any{"username": name, "name": name, "role": role, "password": benchPass}, &u)
		id, _ := u["id"].(string)
		return id, err
	}
	t.coordUser, t.coordPass = "bench-coord-"+run, benchPass
	if _, err := mkUser(t.coordUser, schema.RoleCoordinator); err != nil {
		return nil, err
	}
	coord, err := h.login(ctx, t.coordUser, t.coordPass)
	if err != nil {
		return nil, err
	}
	t.techs = make([]tech, fx.techs)
	for i := range t.techs {
		name := fmt.Sprintf("bench-%s-%05d", run, i)
		id, err := mkUser(name, schema.RoleTechnician)
		if err != nil {
			return nil, err
		}
		t.techs[i] = tech{ID: id, Username: name}
	}
	type rec = map[string]any
	var custs, sites, assets []string
	for i := range fx.customers {
		var c, s, a rec
		if err := h.do(ctx, "POST", "/api/v1/customers", coord, "", rec{"name": fmt.Sprintf("客户 Customer %05d", i)}, &c); err != nil {
			return nil, err
		}
		cid, _ := c["id"].(string)
		if err := h.do(ctx, "POST", "/api/v1/customers/"+cid+"/sites", coord, "", rec{"name": "Plant", "address": "星湖街 328 号"}, &s); err != nil {
			return nil, err
		}
		sid, _ := s["id"].(string)
		if err := h.do(ctx, "POST", "/api/v1/assets", coord, "", rec{"customer_id": cid, "site_id": sid, "model": "PLC-X200", "serial": fmt.Sprintf("HX-%s-%05d", run, i)}, &a); err != nil {
			return nil, err
		}
		aid, _ := a["id"].(string)
		custs, sites, assets = append(custs, cid), append(sites, sid), append(assets, aid)
	}
	n := 0
	for ti := range t.techs {
		for range fx.ticketsPerTech {
			c := n % len(custs)
			var tk, d rec
			if err := h.do(ctx, "POST", "/api/v1/tickets", coord, "", ticketFields(custs[c], sites[c], assets[c], fx.textBytes, n), &tk); err != nil {
				return nil, err
			}
			id, _ := tk["id"].(string)
			if err := h.do(ctx, "POST", "/api/v1/tickets/"+id+"/actions/dispatch", coord, "", rec{"technician_id": t.techs[ti].ID}, &d); err != nil {
				return nil, err
			}
			v, _ := d["version"].(float64)
			t.techs[ti].Tickets = append(t.techs[ti].Tickets, ticketRef{ID: id, Version: int64(v), Customer: custs[c]})
			n++
		}
	}
	for ti := range t.techs {
		for k := range fx.devicesPerTech {
			devID := fmt.Sprintf("bench-%s-%05d-%03d", run, ti, k)
			var out map[string]any
			err := h.do(ctx, "POST", "/mobile/v1/auth/login", "", "", map[string]any{"username": t.techs[ti].Username, "password": benchPass, "device_id": devID, "device_name": devID}, &out)
			if err != nil {
				return nil, fmt.Errorf("device login %d: %w (the server allows 10 logins a minute from one address: use --spawn for many devices)", len(t.devices), err)
			}
			tok, _ := out["token"].(string)
			t.devices = append(t.devices, device{Tech: ti, DeviceID: devID, Token: tok})
		}
	}
	return t, nil
}

// httpAPI is a small client of the coordinator API.
type httpAPI struct {
	base string
	c    http.Client
}

func (h *httpAPI) login(ctx context.Context, user, pass string) (string, error) {
	var out map[string]any
	if err := h.do(ctx, "POST", "/api/v1/auth/login", "", "", map[string]string{"username": user, "password": pass}, &out); err != nil {
		return "", fmt.Errorf("login %s: %w", user, err)
	}
	tok, _ := out["token"].(string)
	return tok, nil
}

// do sends a JSON request and decodes a JSON answer; a status of 300 or more is an error.
func (h *httpAPI) do(ctx context.Context, method, path, token, ifMatch string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, tail(b, 300))
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// historyStore gives the run (t.dir, and t.db on PostgreSQL) a copy of a store already
// holding cfg.StoreRecords records of other technicians: their closed tickets (each
// dispatched, then cancelled), and the customers, sites and assets these reference. The
// store is seeded once through the engine's write path into the temporary folder
// fieldsync-bench-store-N (on PostgreSQL: fieldsync-bench-store-N-pg and the database
// fieldsync_bench_store_N of the --db cluster) and copied for each run (the database as a
// template). It stays for later runs (seeding a million records takes a quarter of an
// hour); remove the folder (and drop the database) to seed again. --keep keeps only the
// run's copy, as any run's data folder.
func historyStore(ctx context.Context, cfg *Config, t *target) error {
	n := cfg.StoreRecords
	name := fmt.Sprintf("fieldsync-bench-store-%d", n)
	tmpl := fmt.Sprintf("fieldsync_bench_store_%d", n)
	if cfg.DB != "" {
		name += "-pg"
	}
	base := filepath.Join(os.TempDir(), name)
	ready := filepath.Join(base, "seeded")
	_, err := os.Stat(ready)
	if err == nil && cfg.DB != "" && !databaseExists(ctx, cfg.DB, tmpl) {
		err = errors.New("the seeded database is gone")
	}
	if err != nil {
		os.RemoveAll(base)
		if err := os.MkdirAll(base, 0o700); err != nil {
			return err
		}
		start := time.Now()
		var dbURL string
		if cfg.DB != "" {
			if err := dropDatabase(cfg.DB, tmpl); err != nil {
				return err
			}
			if dbURL, err = createNamedDatabase(ctx, cfg.DB, tmpl, ""); err != nil {
				return err
			}
		}
		srv, err := server.New(ctx, server.Config{DataDir: base, DB: dbURL, AdminPassword: benchAdminPass, Log: slog.New(slog.DiscardHandler), Out: func(string) {}})
		if err != nil {
			return err
		}
		err = seedHistory(ctx, cfg, srv, n)
		if serr := srv.Shutdown(context.Background()); err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("seeding a store of %d records: %w", n, err)
		}
		if err := os.WriteFile(ready, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			return err
		}
		cfg.logf("seeded a store of %d records of other technicians in %s (%s)", n, time.Since(start).Round(time.Second), base)
	}
	start := time.Now()
	err = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(t.dir, rel), 0o700)
		}
		if rel == "seeded" {
			return nil
		}
		return copyFile(p, filepath.Join(t.dir, rel))
	})
	if err == nil && cfg.DB != "" {
		t.db, err = createDatabase(ctx, cfg.DB, tmpl)
	}
	cfg.logf("copied the store of %d records in %s", n, time.Since(start).Round(time.Millisecond))
	return err
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// seedHistory writes about n records of 100 other technicians through srv's engine: a
// customer, site and asset for every 50 records, the rest tickets, each dispatched and then
// cancelled (closed work: a ticket and its dispatch and cancel events).
func seedHistory(ctx context.Context, cfg *Config, srv *server.Server, n int) error {
	e := srv.Engine
	cost := syncer.PasswordCost
	syncer.PasswordCost = bcrypt.MinCost
	defer func() { syncer.PasswordCost = cost }()
	coord, err := e.CreateUser(ctx, schema.System, syncer.NewUser{Username: "history-coord", Name: "History Coordinator", Role: schema.RoleCoordinator, Password: benchPass})
	if err != nil {
		return err
	}
	actor := schema.Actor{UserID: coord.Str("id"), Role: schema.RoleCoordinator, Name: "History Coordinator"}
	var techs []string
	for i := range 100 {
		u, err := e.CreateUser(ctx, schema.System, syncer.NewUser{Username: fmt.Sprintf("history-tech-%03d", i), Name: "往年技术员 Former " + strconv.Itoa(i), Role: schema.RoleTechnician, Password: benchPass})
		if err != nil {
			return err
		}
		techs = append(techs, u.Str("id"))
	}
	apply := func(muts []syncer.Mutation) ([]syncer.Result, error) {
		var out []syncer.Result
		for len(muts) > 0 {
			k := min(500, len(muts))
			res, err := e.Apply(ctx, actor, muts[:k], syncer.Options{})
			if err != nil {
				return nil, err
			}
			for i, r := range res {
				if r.Status == syncer.StatusRejected {
					return nil, fmt.Errorf("%s %s: %s: %s", muts[i].Op, muts[i].Entity, r.Code, r.Message)
				}
			}
			out = append(out, res...)
			muts = muts[k:]
		}
		return out, nil
	}
	custs, sites, assets, err := seedCustomers(fixture{customers: max(1, n/50), serial: "H"}, apply)
	if err != nil {
		return err
	}
	tickets := max(1, (n-3*len(custs))/3)
	start := time.Now()
	// In chunks, so that memory stays flat and progress shows.
	for done := 0; done < tickets; {
		k := min(5000, tickets-done)
		creates := make([]syncer.Mutation, k)
		for j := range k {
			c := (done + j) % len(custs)
			creates[j] = syncer.Mutation{Entity: schema.EntTicket, Op: "create", Fields: rawFields(ticketFields(custs[c], sites[c], assets[c], 200, done+j))}
		}
		res, err := apply(creates)
		if err != nil {
			return err
		}
		dispatches := make([]syncer.Mutation, k)
		for j, r := range res {
			dispatches[j] = syncer.Mutation{Entity: schema.EntTicket, ID: r.ID, Op: "action", Action: "dispatch",
				Fields: rawFields(map[string]any{"technician_id": techs[(done+j)%len(techs)]})}
		}
		if _, err := apply(dispatches); err != nil {
			return err
		}
		// History is closed work: an open backlog of this size is another load (the
		// deadline watcher reads every open ticket each tick).
		cancels := make([]syncer.Mutation, k)
		for j, r := range res {
			cancels[j] = syncer.Mutation{Entity: schema.EntTicket, ID: r.ID, Op: "action", Action: "cancel",
				Fields: rawFields(map[string]any{"reason": "往年工单 / last year's work"})}
		}
		if _, err := apply(cancels); err != nil {
			return err
		}
		done += k
		if done%100_000 < 5000 || done == tickets {
			cfg.logf("history: %d of %d tickets (%.0f mutations/s)", done, tickets, float64(3*done)/time.Since(start).Seconds())
		}
	}
	return nil
}
