package schema

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fieldsync/internal/testpg"
)

// openTest opens the store of a test's data folder: SQLite in it, or a fresh PostgreSQL
// database for it when FIELDSYNC_TEST_PG is set.
func openTest(t *testing.T, dir string) (*DB, error) {
	t.Helper()
	return OpenStore(context.Background(), dir, testpg.For(t, dir))
}

// migrationsOf returns the migrations the store applies.
func migrationsOf(db *DB) ([]Migration, error) {
	if db.Postgres {
		return PostgresMigrations()
	}
	return Migrations()
}

func TestOpenFreshAndReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := openTest(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	migs, _ := migrationsOf(db)
	v, err := db.Version(ctx)
	if err != nil || v != len(migs) {
		t.Fatalf("version %d (%v), want %d", v, err, len(migs))
	}
	// A reader cannot write: the read pool is read-only.
	if _, err := db.R.Exec(`INSERT INTO counters(name, value) VALUES ('x', 1)`); err == nil {
		t.Error("the read pool accepted a write")
	}
	db.Close()
	// Re-running applies nothing and keeps the recorded rows.
	db, err = openTest(t, dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	var n int
	db.R.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
	if n != len(migs) {
		t.Errorf("%d migrations recorded after reopen, want %d", n, len(migs))
	}
	db.Close()
}

// Every SQLite connection, the writer's and the readers', gets the DSN's pragmas, and the
// file passes its integrity check after a reopen.
func TestSQLitePragmasOnEveryConnection(t *testing.T) {
	testpg.SQLiteOnly(t, "SQLite's PRAGMAs and database file")
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	db.W.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}
	var fk int
	db.R.QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
	if fk != 1 {
		t.Errorf("foreign_keys off on a reader connection")
	}
	db.Close()
	if db, err = Open(ctx, dir); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	db.Close()
	if err := IntegrityCheck(ctx, filepath.Join(dir, DBFile)); err != nil {
		t.Error(err)
	}
}

func TestOpenRefusesNewerDatabase(t *testing.T) {
	dir := t.TempDir()
	db, err := openTest(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	db.W.Exec(`INSERT INTO schema_migrations(version, name, checksum, applied_at) VALUES (999, '0999_future.sql', 'abc', '2030-01-01')`)
	db.Close()
	_, err = openTest(t, dir)
	if err == nil || !strings.Contains(err.Error(), "schema version 999") || !strings.Contains(err.Error(), "newer fieldsync") {
		t.Fatalf("opening a newer database: %v; want a refusal that says why", err)
	}
}

func TestOpenRefusesEditedMigration(t *testing.T) {
	dir := t.TempDir()
	db, err := openTest(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	db.W.Exec(`UPDATE schema_migrations SET checksum = 'deadbeefdeadbeef' WHERE version = 1`)
	db.Close()
	_, err = openTest(t, dir)
	if err == nil || !strings.Contains(err.Error(), "was edited") {
		t.Fatalf("opening with an edited migration: %v; want a refusal", err)
	}
}

// A stored checksum of any length (short, empty) that does not match is refused with the
// edited-migration message, not a panic.
func TestOpenRefusesShortStoredChecksum(t *testing.T) {
	for _, sum := range []string{"", "abc", "deadbeef012"} {
		t.Run(fmt.Sprintf("%q", sum), func(t *testing.T) {
			dir := t.TempDir()
			db, err := openTest(t, dir)
			if err != nil {
				t.Fatal(err)
			}
			db.W.Exec(`UPDATE schema_migrations SET checksum = ? WHERE version = 1`, sum)
			db.Close()
			_, err = openTest(t, dir)
			if err == nil || !strings.Contains(err.Error(), "was edited") {
				t.Fatalf("opening with stored checksum %q: %v; want a refusal", sum, err)
			}
		})
	}
}

func TestMigrationsApplyInOrderEachInItsOwnTransaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := openTest(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	migs, _ := migrationsOf(db)
	broken := append(migs, Migration{Version: len(migs) + 1, Name: "broken.sql", SQL: "CREATE TABLE ok_part(x INTEGER); THIS IS NOT SQL;", Checksum: "x"})
	if err := applyMigrations(ctx, db.W, broken); err == nil {
		t.Fatal("a broken migration applied")
	}
	if _, err := db.W.Exec(`SELECT COUNT(*) FROM ok_part`); err == nil {
		t.Error("a failed migration left part of its work behind")
	}
	v, _ := db.Version(ctx)
	if v != len(migs) {
		t.Errorf("version %d after a failed migration, want %d", v, len(migs))
	}
}

func TestBackupIsConsistentAndVerified(t *testing.T) {
	testpg.SQLiteOnly(t, "VACUUM INTO copies an SQLite file (PostgreSQL is backed up with pg_dump)")
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.W.Exec(`INSERT INTO counters(name, value) VALUES ('probe', 42)`)
	out := filepath.Join(t.TempDir(), "b.db")
	if err := db.Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(ctx, out); err == nil {
		t.Error("backup overwrote an existing file")
	}
	copyDB, err := Open(ctx, filepath.Dir(out)+"/restored")
	if err != nil {
		t.Fatal(err)
	}
	copyDB.Close()
	os.Rename(out, filepath.Dir(out)+"/restored/"+DBFile)
	restored, err := Open(ctx, filepath.Dir(out)+"/restored")
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	var v int
	restored.R.QueryRow(`SELECT value FROM counters WHERE name = 'probe'`).Scan(&v)
	if v != 42 {
		t.Errorf("restored backup has probe=%d, want 42", v)
	}
}
