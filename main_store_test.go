package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
	"fieldsync/server"
)

// sqliteDemo seeds the demo company into a fresh data folder on SQLite, whichever store
// the other tests run on, and stops the server.
func sqliteDemo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	srv, err := server.New(context.Background(), server.Config{DataDir: dir, Demo: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return dir
}

// migrateStore runs `fieldsync migrate-store` (with no FIELDSYNC_DB around it).
func migrateStore(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"migrate-store"}, args...)...)
	cmd.Env = storeEnv(t, nil)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestMigrateStoreDemo: the demo company moves from SQLite into an empty PostgreSQL
// database and the verification passes, table by table; a database that holds data is
// refused and left as it was; and a copy broken afterwards (a record's text changed, a
// scope row gone) fails the verification, which names the tables that differ.
func TestMigrateStoreDemo(t *testing.T) {
	if !testpg.On() {
		t.Skip("needs FIELDSYNC_TEST_PG")
	}
	data := sqliteDemo(t)
	target := testpg.For(t, t.TempDir())
	out, code := migrateStore(t, "--from", data, "--to", target)
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("migrate-store: %d\n%s", code, out)
	}
	for _, table := range []string{"records", "changes", "scope", "mutations", "credentials", "devices", "tokens", "engine_state", "counters", "outbox", "outbox_attempts", "alert_prefs", "device_clock"} {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, table+" ") {
				line = l
			}
		}
		if !strings.HasSuffix(line, " equal") {
			t.Errorf("table %s: %q, want a line saying it is equal\n%s", table, line, out)
		}
	}
	if !strings.Contains(out, filepath.Join(data, schema.SealKeyFile)) {
		t.Errorf("migrate-store does not say where the seal key stays:\n%s", out)
	}
	// Every blob of the data folder is whole in PostgreSQL, with the same bytes.
	files, err := os.ReadDir(filepath.Join(data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, f := range files {
		if f.Type().IsRegular() && len(f.Name()) == 64 {
			sums = append(sums, f.Name())
		}
	}
	if len(sums) == 0 {
		t.Fatal("the demo company has no blobs to move")
	}
	if want := fmt.Sprintf("verified: %d blobs", len(sums)); !strings.Contains(out, want) {
		t.Errorf("migrate-store output lacks %q:\n%s", want, out)
	}

	// The copy is the demo company: the server on it finds its accounts and tickets.
	db, err := schema.OpenStore(context.Background(), "", target)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string) int {
		var n int
		if err := db.R.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if u, tk := count(`SELECT COUNT(*) FROM credentials`), count(`SELECT COUNT(*) FROM records WHERE entity = 'ticket'`); u != 7 || tk == 0 {
		t.Fatalf("the copy holds %d accounts and %d tickets", u, tk)
	}
	for _, sum := range sums {
		want, err := os.ReadFile(filepath.Join(data, "blobs", sum))
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		rows, err := db.R.Query(`SELECT c.data FROM blob_chunks c JOIN blobs b ON b.hash = c.hash AND b.complete = 1 WHERE c.hash = ? ORDER BY c.n`, sum)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var part []byte
			if err := rows.Scan(&part); err != nil {
				t.Fatal(err)
			}
			got = append(got, part...)
		}
		rows.Close()
		if !bytes.Equal(got, want) {
			t.Errorf("blob %s: %d bytes whole in PostgreSQL, want the file's %d", sum, len(got), len(want))
		}
	}

	// Again into the same database: refused, and nothing changes.
	before := count(`SELECT COUNT(*) FROM changes`)
	if out, code := migrateStore(t, "--from", data, "--to", target); code == 0 || !strings.Contains(out, "already holds data") {
		t.Errorf("a second move into the same database: %d\n%s", code, out)
	}
	if after := count(`SELECT COUNT(*) FROM changes`); after != before {
		t.Errorf("the refused move changed the database: %d changes, then %d", before, after)
	}

	// Broken after the copy: the verification fails and names what differs. The record's
	// change keeps its JSON equal in meaning, only its text differs (a space added).
	if _, err := db.W.Exec(`UPDATE records SET data = CAST(REPLACE(CAST(data AS text), ',"', ', "') AS json) WHERE entity = 'ticket' AND id = (SELECT MIN(id) FROM records WHERE entity = 'ticket')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.Exec(`DELETE FROM scope WHERE id = (SELECT MIN(id) FROM scope)`); err != nil {
		t.Fatal(err)
	}
	out, code = migrateStore(t, "--from", data, "--to", target, "--verify")
	if code == 0 || !strings.Contains(out, "differs") {
		t.Fatalf("verify of a broken copy: %d\n%s", code, out)
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] == "TABLE" {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // not a table's line
		}
		if broken := f[0] == "records" || f[0] == "scope"; strings.Contains(l, "DIFFERS") != broken {
			t.Errorf("verify of a broken copy: %q", l)
		}
	}
	if !strings.Contains(out, "records (SQLite") || !strings.Contains(out, "scope (SQLite") {
		t.Errorf("the failure does not name both broken tables:\n%s", out)
	}
}

// TestMigrateStoreRefusals: a --to that is not PostgreSQL, a --from without a database, and
// missing flags are refused, naming what was wrong.
func TestMigrateStoreRefusals(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", empty}, "--to are required"},
		{[]string{"--from", empty, "--to", filepath.Join(empty, "x.db")}, "postgres://"},
		{[]string{"--from", empty, "--to", "postgres://nobody@127.0.0.1:1/none"}, "no fieldsync database in " + empty},
	} {
		if out, code := migrateStore(t, c.args...); code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("migrate-store %q: %d %s; want %q", c.args, code, out, c.want)
		}
	}
	if listDir(empty) != "" {
		t.Errorf("a refused move wrote into --from: %s", listDir(empty))
	}
}
