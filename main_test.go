package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldsync-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "fieldsync")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// storeEnv is the environment of a child fieldsync: FIELDSYNC_DB names the store that goes
// with the --data folder among args (testpg.For: SQLite in it, or that folder's
// PostgreSQL database when FIELDSYNC_TEST_PG is set), so that the same tests run on both.
func storeEnv(t *testing.T, args []string) []string {
	t.Helper()
	db := ""
	for i, a := range args {
		if a == "--data" && i+1 < len(args) {
			db = testpg.For(t, args[i+1])
		}
	}
	return append(os.Environ(), "FIELDSYNC_DB="+db)
}

// run runs the binary with stdin and returns its output and exit code.
func run(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = storeEnv(t, args)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestUserCommands(t *testing.T) {
	data := t.TempDir()
	if out, code := run(t, "", "migrate", "--data", data); code != 0 {
		t.Fatalf("migrate: %d %s", code, out)
	}
	out, code := run(t, "s3cret-pass\n", "user", "add", "--data", data, "--username", "zhang", "--name", "张伟 \"Wei\"", "--role", "technician", "--probation", "--password-stdin")
	if code != 0 || !strings.Contains(out, "created zhang") {
		t.Fatalf("user add: %d %s", code, out)
	}
	if out, code := run(t, "s3cret-pass\n", "user", "add", "--data", data, "--username", "zhang", "--name", "x", "--role", "technician", "--password-stdin"); code == 0 || !strings.Contains(out, "taken") {
		t.Errorf("duplicate username: %d %s", code, out)
	}
	if out, code := run(t, "short\n", "user", "add", "--data", data, "--username", "li", "--name", "x", "--role", "technician", "--password-stdin"); code == 0 || !strings.Contains(out, "at least 8") {
		t.Errorf("short password: %d %s", code, out)
	}
	for _, pw := range []string{"12345678", "Password1", "li.ming.99"} {
		if out, code := run(t, pw+"\n", "user", "add", "--data", data, "--username", "li.ming.99", "--name", "x", "--role", "technician", "--password-stdin"); code == 0 || !strings.Contains(out, "password") {
			t.Errorf("weak password %q: %d %s", pw, code, out)
		}
	}
	if out, code := run(t, "long-enough\n", "user", "add", "--data", data, "--username", "li", "--name", "x", "--role", "janitor", "--password-stdin"); code == 0 || !strings.Contains(out, "role") {
		t.Errorf("unknown role: %d %s", code, out)
	}
	out, _ = run(t, "", "user", "list", "--data", data)
	if !strings.Contains(out, `张伟 "Wei"`) || !strings.Contains(out, "technician") || !strings.Contains(out, "true") {
		t.Errorf("user list: %s", out)
	}
	if out, code := run(t, "new-password-1\n", "user", "passwd", "--data", data, "--username", "zhang", "--password-stdin"); code != 0 {
		t.Errorf("passwd: %d %s", code, out)
	}
	if out, code := run(t, "", "user", "disable", "--data", data, "--username", "zhang"); code != 0 {
		t.Errorf("disable: %d %s", code, out)
	}
	out, _ = run(t, "", "user", "list", "--data", data)
	if !strings.Contains(out, "false") {
		t.Errorf("disabled user still active: %s", out)
	}
	if _, code := run(t, "", "user", "disable", "--data", data, "--username", "nobody"); code == 0 {
		t.Error("disabling an unknown user succeeded")
	}
	if out, code := run(t, "", "user", "add", "--help"); code != 0 || !strings.Contains(out, "--password-stdin") {
		t.Errorf("user add --help: %d %s", code, out)
	}
}

func TestVersionHelpAndUnknown(t *testing.T) {
	if out, code := run(t, "", "version"); code != 0 || !strings.HasPrefix(out, "fieldsync ") {
		t.Errorf("version: %d %q", code, out)
	}
	if out, code := run(t, "", "help"); code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "backup") {
		t.Errorf("help: %d %q", code, out)
	}
	if _, code := run(t, "", "frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
	for _, c := range []string{"serve", "backup", "migrate"} {
		if out, code := run(t, "", c, "--help"); code != 0 || !strings.Contains(out, "--data") {
			t.Errorf("%s --help: %d %s", c, code, out)
		}
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a buffer the child process writes while the test reads it.
type syncBuffer struct {
	mu  gosync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve starts `fieldsync serve` and waits until it answers.
func serve(t *testing.T, data string, extra ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(binary, append([]string{"serve", "--addr", addr, "--data", data}, extra...)...)
	cmd.Env = storeEnv(t, cmd.Args)
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = &bytes.Buffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return cmd, base, out
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not become ready: %s", out.String())
	return nil, "", nil
}

func TestServePrintsAdminPasswordOnceAndShutsDownGracefully(t *testing.T) {
	data := t.TempDir()
	cmd, base, out := serve(t, data)
	line := out.String()
	i := strings.Index(line, "password ")
	if i < 0 {
		t.Fatalf("no admin password printed: %q", line)
	}
	pw := strings.Fields(line[i+len("password "):])[0]
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": pw})
	res, err := http.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("login with the printed password: %v %v", err, res)
	}
	res.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("no exit 25 s after SIGTERM")
	}
	if !testpg.On() {
		if err := schema.IntegrityCheck(context.Background(), filepath.Join(data, schema.DBFile)); err != nil {
			t.Error(err)
		}
	}
	// A second start creates no new admin and prints no password.
	_, _, out2 := serve(t, data)
	if strings.Contains(out2.String(), "password") {
		t.Errorf("second start printed a password: %q", out2.String())
	}
}

func TestBackupWhileServing(t *testing.T) {
	if testpg.On() {
		t.Skip("backup copies the SQLite database; on PostgreSQL it names pg_dump (TestBackupOnPostgresNamesPgDump)")
	}
	data := t.TempDir()
	_, base, _ := serve(t, data, "--demo")
	body, _ := json.Marshal(map[string]string{"username": "coord", "password": "demo-pass-2026"})
	res, err := http.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	// Keep writing while the backup runs.
	stop := make(chan struct{})
	writes := make(chan int, 1)
	go func() {
		n := 0
		defer func() { writes <- n }()
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b, _ := json.Marshal(map[string]string{"name": fmt.Sprintf("客户 %d", i)})
			req, _ := http.NewRequest("POST", base+"/api/v1/customers", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+login.Token)
			if r, err := http.DefaultClient.Do(req); err == nil {
				r.Body.Close()
				if r.StatusCode == 201 {
					n++
				}
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	backup := filepath.Join(t.TempDir(), "copy.db")
	out, code := run(t, "", "backup", "--data", data, "--out", backup)
	close(stop)
	n := <-writes
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("backup: %d %s", code, out)
	}
	if n == 0 {
		t.Fatal("no writes happened during the backup")
	}
	if err := schema.IntegrityCheck(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	restored := t.TempDir()
	os.Rename(backup, filepath.Join(restored, schema.DBFile))
	db, err := schema.Open(context.Background(), restored)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer db.Close()
	var users, custs int
	db.R.QueryRow(`SELECT COUNT(*) FROM credentials`).Scan(&users)
	db.R.QueryRow(`SELECT COUNT(*) FROM records WHERE entity = 'customer'`).Scan(&custs)
	if users != 7 || custs < 3 {
		t.Errorf("backup holds %d users and %d customers", users, custs)
	}
	if _, code := run(t, "", "backup", "--data", data, "--out", filepath.Join(restored, schema.DBFile)); code == 0 {
		t.Error("backup overwrote an existing file")
	}
}

// Every command that reads or changes an existing company refuses a folder without a
// fieldsync database, says so, and leaves the folder as it was: a mistyped --data must not
// create an empty database (and, for backup, report it verified).
func TestCommandsRefuseAFolderWithoutADatabase(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	for _, c := range []struct {
		name, stdin string
		args        []string
	}{
		{"backup", "", []string{"backup", "--out", out + ".db"}},
		{"user add", "long-enough-1\n", []string{"user", "add", "--username", "li", "--name", "x", "--role", "technician", "--password-stdin"}},
		{"user list", "", []string{"user", "list"}},
		{"user passwd", "long-enough-1\n", []string{"user", "passwd", "--username", "admin", "--password-stdin"}},
		{"user disable", "", []string{"user", "disable", "--username", "admin"}},
		{"pdf", "", []string{"pdf", "blank", "-o", out + ".pdf"}},
		{"report", "", []string{"report", "month", "2026-11", "-o", out + ".csv"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, kind := range []string{"missing", "empty", "other"} {
				data := filepath.Join(t.TempDir(), "mistyped")
				switch kind {
				case "empty":
					os.Mkdir(data, 0o700)
				case "other": // a folder holding some other file named like the database
					os.Mkdir(data, 0o700)
					os.WriteFile(filepath.Join(data, schema.DBFile), nil, 0o600)
				}
				before := listDir(data)
				got, code := run(t, c.stdin, append(c.args, "--data", data)...)
				// On PostgreSQL the store is the folder's fresh, empty database.
				where := data
				if db := testpg.For(t, data); db != "" {
					where = schema.RedactURL(db)
				}
				if code == 0 || !strings.Contains(got, "no fieldsync database") || !strings.Contains(got, where) {
					t.Errorf("%s folder: exit %d, %s; want a refusal naming %s", kind, code, got, where)
				}
				if after := listDir(data); after != before {
					t.Errorf("%s folder changed: %q → %q", kind, before, after)
				}
				if db := testpg.For(t, data); db != "" {
					if n := pgTables(t, db); n != 0 {
						t.Errorf("%s: the empty PostgreSQL database now holds %d tables", kind, n)
					}
				}
				for _, ext := range []string{".db", ".pdf", ".csv"} {
					if _, err := os.Stat(out + ext); err == nil {
						t.Errorf("%s folder: %s written", kind, out+ext)
						os.Remove(out + ext)
					}
				}
			}
		})
	}
}

// listDir names the files in dir and their sizes ("" when dir is missing).
func listDir(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, e := range ents {
		info, _ := e.Info()
		fmt.Fprintf(&b, "%s:%d ", e.Name(), info.Size())
	}
	return b.String()
}

// pgTables counts the tables in the PostgreSQL database at url.
func pgTables(t *testing.T, url string) int {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBackupOnPostgresNamesPgDump: on PostgreSQL, backup answers with the pg_dump command
// line (the URL without its password) and the data folder's files to keep, exits non-zero,
// and writes nothing.
func TestBackupOnPostgresNamesPgDump(t *testing.T) {
	if !testpg.On() {
		t.Skip("needs FIELDSYNC_TEST_PG")
	}
	data := t.TempDir()
	if out, code := run(t, "", "migrate", "--data", data); code != 0 {
		t.Fatalf("migrate: %d %s", code, out)
	}
	u, err := url.Parse(testpg.For(t, data))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "pw-never-shown")
	backup := filepath.Join(t.TempDir(), "copy.dump")
	cmd := exec.Command(binary, "backup", "--data", data, "--db", u.String(), "--out", backup)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("backup on PostgreSQL succeeded: %s", out)
	}
	u.User = url.User(u.User.Username())
	for _, want := range []string{"pg_dump --format=custom --file " + backup, u.String(), "pg_restore", filepath.Join(data, schema.SealKeyFile), filepath.Join(data, "blobs")} {
		if !strings.Contains(string(out), want) {
			t.Errorf("backup on PostgreSQL: %s\nwant %q in it", out, want)
		}
	}
	if strings.Contains(string(out), "pw-never-shown") {
		t.Errorf("the message shows the password: %s", out)
	}
	if _, err := os.Stat(backup); err == nil {
		t.Error("backup on PostgreSQL wrote a file")
	}
}

func TestBackupIsPrivate(t *testing.T) {
	if testpg.On() {
		t.Skip("backup copies the SQLite database; on PostgreSQL it names pg_dump (TestBackupOnPostgresNamesPgDump)")
	}
	data := t.TempDir()
	if out, code := run(t, "", "migrate", "--data", data); code != 0 {
		t.Fatalf("migrate: %d %s", code, out)
	}
	backup := filepath.Join(t.TempDir(), "copy.db")
	if out, code := run(t, "", "backup", "--data", data, "--out", backup); code != 0 {
		t.Fatalf("backup: %d %s", code, out)
	}
	info, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("backup file mode %o; want 600 (it holds password hashes and customer data)", perm)
	}
}

func TestServeRefusesNewerDatabase(t *testing.T) {
	data := t.TempDir()
	if out, code := run(t, "", "migrate", "--data", data); code != 0 || !strings.Contains(out, "schema version") {
		t.Fatalf("migrate: %d %s", code, out)
	}
	db, err := schema.OpenStore(context.Background(), data, testpg.For(t, data))
	if err != nil {
		t.Fatal(err)
	}
	db.W.Exec(`INSERT INTO schema_migrations(version, name, checksum, applied_at) VALUES (500, 'future', 'x', 'now')`)
	db.Close()
	out, code := run(t, "", "serve", "--addr", freePort(t), "--data", data)
	if code == 0 || !strings.Contains(out, "newer fieldsync") {
		t.Errorf("serve on a newer database: %d %s", code, out)
	}
}

// TestBadStoredSettingAndSettingsCommand: a stored setting out of range (written by an older
// version, which accepted blob_max_bytes 0) never stops the server: it logs the setting and
// uses the default. `fieldsync settings` lists the settings and sets one offline, through
// the same checks as the API.
func TestBadStoredSettingAndSettingsCommand(t *testing.T) {
	data := t.TempDir()
	cmd, _, _ := serve(t, data) // stores every setting with its default
	cmd.Process.Kill()
	cmd.Wait()
	db, err := schema.OpenStore(context.Background(), data, testpg.For(t, data))
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	if err := db.R.QueryRow(`SELECT data FROM records WHERE entity = 'setting' AND id = 'blob_max_bytes'`).Scan(&doc); err != nil {
		t.Fatal(err)
	}
	var setting map[string]any
	json.Unmarshal([]byte(doc), &setting)
	setting["value"] = 0
	b, _ := json.Marshal(setting)
	if _, err := db.W.Exec(`UPDATE records SET data = ? WHERE entity = 'setting' AND id = 'blob_max_bytes'`, string(b)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	cmd, _, _ = serve(t, data)
	cmd.Process.Kill()
	cmd.Wait()
	if log := cmd.Stderr.(*bytes.Buffer).String(); !strings.Contains(log, "blob_max_bytes") {
		t.Errorf("the server did not say which setting it refused: %s", log)
	}

	out, code := run(t, "", "settings", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "blob_max_bytes") || !strings.Contains(out, "16384 to 33554432") || !strings.Contains(out, "offline_days") {
		t.Fatalf("settings list: %d %s", code, out)
	}
	if out, code := run(t, "", "settings", "set", "--data", data, "blob_max_bytes", "0"); code == 0 || !strings.Contains(out, "blob_max_bytes") || !strings.Contains(out, "33554432") {
		t.Errorf("settings set out of range: %d %s", code, out)
	}
	if out, code := run(t, "", "settings", "set", "--data", data, "no_such_setting", "1"); code == 0 || !strings.Contains(out, "no_such_setting") {
		t.Errorf("settings set unknown: %d %s", code, out)
	}
	if out, code := run(t, "", "settings", "set", "--data", data, "blob_max_bytes", "1048576"); code != 0 {
		t.Fatalf("settings set: %d %s", code, out)
	}
	if out, code := run(t, "", "settings", "set", "--data", data, "company_name", "上海申江 \"Shenjiang\""); code != 0 {
		t.Fatalf("settings set a string: %d %s", code, out)
	}
	out, _ = run(t, "", "settings", "list", "--data", data)
	if !strings.Contains(out, "1048576") || !strings.Contains(out, `上海申江 \"Shenjiang\"`) {
		t.Errorf("settings list after set: %s", out)
	}
	cmd, _, _ = serve(t, data)
	cmd.Process.Kill()
	cmd.Wait()
	if log := cmd.Stderr.(*bytes.Buffer).String(); strings.Contains(log, "blob_max_bytes") {
		t.Errorf("the repaired setting is still refused: %s", log)
	}
}

func TestServeTLSFlagsNeedBoth(t *testing.T) {
	out, code := run(t, "", "serve", "--addr", freePort(t), "--data", t.TempDir(), "--tls-cert", "cert.pem")
	if code == 0 || !strings.Contains(out, "--tls-key") {
		t.Errorf("serve with a certificate and no key: %d %s", code, out)
	}
}

func TestServeMetricsFlag(t *testing.T) {
	maddr := freePort(t)
	serve(t, t.TempDir(), "--metrics", maddr)
	var body string
	for range 100 { // the metrics listener starts beside the API's
		res, err := http.Get("http://" + maddr + "/metrics")
		if err == nil {
			b := new(bytes.Buffer)
			b.ReadFrom(res.Body)
			res.Body.Close()
			body = b.String()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, "fieldsync_write_queue_depth") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("--metrics: %.300s", body)
	}
}

// TestServeSaysListeningOnlyOnceBound (hardening 20): a port already taken stops serve with
// the listener's error, and "listening" is never printed; on a free port it prints the
// address it is bound to.
func TestServeSaysListeningOnlyOnceBound(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := t.TempDir()
	out, code := run(t, "", "serve", "--addr", taken.Addr().String(), "--data", data)
	if code == 0 || strings.Contains(out, "listening") || !strings.Contains(out, "address already in use") {
		t.Errorf("serve on a taken port: exit %d, output %q; want a failure naming the address in use and no 'listening'", code, out)
	}
	_, base, buf := serve(t, t.TempDir())
	if want := "listening on " + strings.TrimPrefix(base, "http://"); !strings.Contains(buf.String(), want) {
		t.Errorf("serve printed %q, want %q", buf.String(), want)
	}
}
