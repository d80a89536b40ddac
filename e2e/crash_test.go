package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
	"fieldsync/sync/client"
)

// crashServer is `fieldsync serve` running as a separate process on a fixed port.
type crashServer struct {
	t    *testing.T
	bin  string
	dir  string
	db   string // --db: "" for SQLite in dir, or a PostgreSQL URL
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// crashBuild builds the fieldsync command into a temporary folder.
func crashBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fieldsync")
	cmd := exec.Command("go", "build", "-o", bin, "fieldsync")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (s *crashServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "serve", "--addr", s.addr, "--data", s.dir, "--db", s.db)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.Env = append(os.Environ(), "FIELDSYNC_DEMO=0")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func(c *exec.Cmd) { c.Wait(); close(done) }(s.cmd)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-done:
			s.t.Fatalf("the server exited at start; log:\n%s", crashTail(s.log.Name()))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the server did not come up; log:\n%s", crashTail(s.log.Name()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL: no shutdown, no flush, whatever was in flight.
func (s *crashServer) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// stop ends the server gracefully.
func (s *crashServer) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.kill()
	}
}

func crashTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func crashFreeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// crashHTTP sends a JSON request and decodes the answer, failing the test on a status of
// 300 or more.
func crashHTTP(t *testing.T, method, url, token string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

// TestCrashSafety runs the server as a separate process, lets several SDK devices push a
// storm of notes, kills the server with SIGKILL at random moments (fixed seed) and restarts
// it, cycle after cycle. After every kill the database passes PRAGMA integrity_check. At the
// end every device's outbox drains, every note any device created is on the server exactly
// once (one record, one create in the change log, one remembered mutation), no device has a
// rejection, and every device's local store equals its scope on the server (verify).
//
// FIELDSYNC_CRASH_CYCLES sets the number of kills (default 3; run 20 or more locally).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	cycles := 3
	if v := os.Getenv("FIELDSYNC_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FIELDSYNC_CRASH_CYCLES=%q is not a positive number", v)
		}
		cycles = n
	}
	rng := rand.New(rand.NewPCG(20261126, 9))
	bin := crashBuild(t)
	dir := t.TempDir()
	dbURL := testpg.For(t, dir)
	const pass = "crash-pass-2026"
	techs := []string{"crash-tech-1", "crash-tech-2", "crash-tech-3"}
	if out, err := exec.Command(bin, "migrate", "--data", dir, "--db", dbURL).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	for _, u := range append([]string{"crash-coord"}, techs...) {
		role := "technician"
		if u == "crash-coord" {
			role = "coordinator"
		}
		cmd := exec.Command(bin, "user", "add", "--data", dir, "--db", dbURL, "--username", u, "--name", u, "--role", role, "--password-stdin")
		cmd.Stdin = strings.NewReader(pass + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add %s: %v\n%s", u, err, out)
		}
	}
	// The storm is many hours of a technician's notes in a minute: the hourly push quota is
	// not what this test is about (FIELDSYNC_CRASH_CYCLES=20 went past its 5,000).
	if out, err := exec.Command(bin, "settings", "set", "--data", dir, "--db", dbURL, "push_mutations_per_hour", "1000000").CombinedOutput(); err != nil {
		t.Fatalf("settings set: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	srv := &crashServer{t: t, bin: bin, dir: dir, db: dbURL, addr: crashFreeAddr(t), log: logf}
	srv.start()
	defer func() {
		if srv.cmd.ProcessState == nil {
			srv.kill()
		}
	}()
	base := "http://" + srv.addr

	var login struct {
		Token string `json:"token"`
		User  struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	crashHTTP(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "crash-coord", "password": pass}, &login)
	coord := login.Token
	var cust, site map[string]any
	crashHTTP(t, "POST", base+"/api/v1/customers", coord, map[string]any{"name": "华东精密 Crash Test Co."}, &cust)
	crashHTTP(t, "POST", base+"/api/v1/customers/"+cust["id"].(string)+"/sites", coord, map[string]any{"name": "Plant 1", "address": "星湖街 328 号"}, &site)

	type phone struct {
		c      *client.Client
		ticket string
		notes  []string
	}
	var phones []*phone
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, u := range techs {
		crashHTTP(t, "POST", base+"/mobile/v1/auth/login", "", map[string]string{"username": u, "password": pass, "device_id": "crash-phone-" + u, "device_name": u}, &login)
		token, techID := login.Token, login.User.ID
		var tk map[string]any
		crashHTTP(t, "POST", base+"/api/v1/tickets", coord, map[string]any{"customer_id": cust["id"], "site_id": site["id"], "fault_symptoms": fmt.Sprintf("crash ticket %d", i), "urgency": "high", "service_mode": "onsite"}, &tk)
		crashHTTP(t, "POST", base+"/api/v1/tickets/"+tk["id"].(string)+"/actions/dispatch", coord, map[string]any{"technician_id": techID}, nil)
		c, err := client.Open(client.Config{BaseURL: base, DBPath: filepath.Join(t.TempDir(), "phone.db"), Token: token, DeviceID: "crash-phone-" + u,
			AppVersion: "crash", MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, RequestTimeout: 5 * time.Second, MaxBatch: 25, FallbackAfter: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		phones = append(phones, &phone{c: c, ticket: tk["id"].(string)})
	}

	// The storm: every phone creates notes on its ticket as fast as its outbox takes them.
	stormStop := make(chan struct{})
	var storm gosync.WaitGroup
	for pi, p := range phones {
		storm.Add(1)
		go func() {
			defer storm.Done()
			for n := 0; n < 100_000; n++ {
				select {
				case <-stormStop:
					return
				default:
				}
				id := client.NewID()
				if _, err := p.c.Mutate("ticket_event", id, "create", 0, map[string]any{"ticket_id": p.ticket, "note": fmt.Sprintf("phone %d note %d", pi, n)}, ""); err != nil {
					t.Errorf("phone %d: Mutate: %v", pi, err)
					return
				}
				p.notes = append(p.notes, id)
				if n%10 == 9 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	dbPath := filepath.Join(dir, schema.DBFile)
	for cycle := range cycles {
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		srv.kill()
		if dbURL == "" { // PostgreSQL's own crash safety is not fieldsync's to prove
			if err := schema.IntegrityCheck(context.Background(), dbPath); err != nil {
				t.Fatalf("cycle %d: integrity check after kill -9: %v", cycle, err)
			}
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		srv.start()
	}
	time.Sleep(200 * time.Millisecond)
	close(stormStop)
	storm.Wait()

	total := 0
	for pi, p := range phones {
		total += len(p.notes)
		deadline := time.Now().Add(60 * time.Second)
		for p.c.State().Pending > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("phone %d: %d mutations still in its outbox after 60 s (%s)", pi, p.c.State().Pending, p.c.State().LastError)
			}
			time.Sleep(20 * time.Millisecond)
		}
		rej, err := p.c.Rejections()
		if err != nil {
			t.Fatal(err)
		}
		if len(rej) > 0 {
			t.Fatalf("phone %d: %d rejections, e.g. %s: %s", pi, len(rej), rej[0].Code, rej[0].Message)
		}
		vctx, vcancel := context.WithTimeout(ctx, 30*time.Second)
		if err := p.c.SyncNow(vctx); err != nil {
			t.Fatalf("phone %d: SyncNow: %v", pi, err)
		}
		if err := p.c.Verify(vctx); err != nil {
			t.Fatalf("phone %d: local store differs from its server scope: %v", pi, err)
		}
		vcancel()
		local, err := p.c.Records("ticket_event")
		if err != nil {
			t.Fatal(err)
		}
		held := map[string]bool{}
		for _, r := range local {
			held[r.ID] = true
		}
		for _, id := range p.notes {
			if !held[id] {
				t.Fatalf("phone %d: its note %s is not in its local store after sync", pi, id)
			}
		}
	}
	t.Logf("%d kill -9 cycles, %d notes pushed by %d phones", cycles, total, len(phones))
	if total == 0 {
		t.Fatal("the storm pushed nothing")
	}
	cancel()
	for _, p := range phones {
		p.c.Close()
	}
	srv.stop()
	if dbURL == "" {
		if err := schema.IntegrityCheck(context.Background(), dbPath); err != nil {
			t.Fatalf("integrity check at the end: %v", err)
		}
	}
	db, err := schema.OpenExistingStore(context.Background(), dir, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string, args ...any) int {
		var n int
		if err := db.R.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for pi, p := range phones {
		for _, id := range p.notes {
			recs := count(`SELECT COUNT(*) FROM records WHERE entity = 'ticket_event' AND id = ?`, id)
			creates := count(`SELECT COUNT(*) FROM changes WHERE entity = 'ticket_event' AND id = ? AND op = 'create'`, id)
			muts := count(`SELECT COUNT(*) FROM mutations WHERE entity = 'ticket_event' AND rid = ?`, id)
			if recs != 1 || creates != 1 || muts != 1 {
				t.Fatalf("phone %d note %s: %d records, %d creates in the change log, %d remembered mutations; want 1 each", pi, id, recs, creates, muts)
			}
		}
	}
	if n := count(`SELECT COUNT(*) FROM records WHERE entity = 'ticket_event' AND data ->> 'kind' = 'note'`); n != total {
		t.Fatalf("the server holds %d notes, the phones created %d", n, total)
	}
}
