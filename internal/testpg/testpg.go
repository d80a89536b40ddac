// Package testpg gives tests a store to run on: SQLite (the default), or a fresh
// PostgreSQL database when FIELDSYNC_TEST_PG names a cluster (postgres://… of a user that
// may create databases; `.ci/postgres` starts a throwaway one). The same tests then run
// against both stores.
package testpg

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	gosync "sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for creating and dropping databases
)

// Env is the variable naming the PostgreSQL cluster the tests use.
const Env = "FIELDSYNC_TEST_PG"

// On reports whether the tests run against PostgreSQL.
func On() bool { return os.Getenv(Env) != "" }

var (
	mu    gosync.Mutex
	byDir = map[string]string{}
)

// For returns the --db value that goes with a test's data folder: "" (SQLite in that
// folder) when FIELDSYNC_TEST_PG is unset, else the URL of a PostgreSQL database created
// empty for that folder on first use, the same on later calls (a test that restarts its
// server finds its data again), and dropped when the test that created it ends.
func For(t testing.TB, dataDir string) string {
	t.Helper()
	base := os.Getenv(Env)
	if base == "" {
		return ""
	}
	mu.Lock()
	defer mu.Unlock()
	if u, ok := byDir[dataDir]; ok {
		return u
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	rand.Read(b)
	name := "fieldsync_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		mu.Lock()
		delete(byDir, dataDir)
		mu.Unlock()
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	byDir[dataDir] = u.String()
	return u.String()
}

// SQLiteOnly skips a test that is about SQLite by nature (its PRAGMAs, VACUUM INTO backups,
// the database file itself) when the tests run against PostgreSQL, saying why; the run on
// SQLite covers it.
func SQLiteOnly(t testing.TB, why string) {
	t.Helper()
	if On() {
		t.Skip("SQLite only: " + why)
	}
}
