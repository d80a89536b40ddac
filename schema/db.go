// Package schema holds fieldsync's data: the SQLite store and its migrations, the record
// types and the rules on them (the ticket state machine, who may take which step, who owns
// which field, feedback sheet completeness, settings). It imports no web library and no
// renderer, so every transport and every renderer applies the same rules.
package schema

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

//go:embed migrations/*.sql migrations_pg/*.sql
var migrationFiles embed.FS

// DB is the store: one writer connection (SQLite allows one writer at a time, so a pool of
// writers would only queue on the lock) and a pool of readers that see committed snapshots
// thanks to WAL mode. On PostgreSQL the same: one writer connection per instance (the
// instances' writers take turns on the engine_state row lock) and a pool of readers, each
// of whose transactions reads one snapshot (repeatable read).
type DB struct {
	W        *sql.DB // the single writer
	R        *sql.DB // the read pool
	Path     string  // the SQLite file; "" on PostgreSQL
	URL      string  // the PostgreSQL database; "" on SQLite
	Postgres bool
}

// dsn puts the pragmas in the connection string so that every pooled connection gets them.
func dsn(path string, readOnly bool) string {
	v := url.Values{}
	v.Set("_journal_mode", "WAL")
	v.Set("_busy_timeout", "5000")
	v.Set("_foreign_keys", "on")
	v.Set("_synchronous", "FULL") // an acknowledged commit survives a crash of the machine too
	v.Set("_txlock", "immediate")
	v.Set("_stmt_cache_size", "128") // the hot statements stay prepared per connection
	v.Set("_cache_size", "-65536")   // 64 MiB of page cache per connection (the default is 2 MiB)
	if readOnly {
		v.Set("mode", "ro")
		v.Set("_txlock", "deferred")
	}
	return "file:" + path + "?" + v.Encode()
}

// DBFile is the name of the database inside the data folder.
const DBFile = "fieldsync.db"

// Open opens (creating if need be) the database in dataDir and brings it to the binary's
// schema version. It refuses a database newer than the binary or one whose applied migration
// was edited, and says why.
func Open(ctx context.Context, dataDir string) (*DB, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, DBFile)
	w, err := sql.Open("sqlite3", dsn(path, false))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return &DB{W: w, R: r, Path: path}, nil
}

// OpenStore opens the store a --db value names: "" for SQLite in dataDir (see Open), or a
// postgres:// URL. On PostgreSQL it brings the database to the binary's schema version
// under an advisory lock, so that instances starting together migrate it once.
func OpenStore(ctx context.Context, dataDir, dbURL string) (*DB, error) {
	if dbURL == "" {
		return Open(ctx, dataDir)
	}
	if !IsPostgresURL(dbURL) {
		return nil, fmt.Errorf("--db %q: give a postgres:// URL, or nothing for SQLite in --data", redactURL(dbURL))
	}
	w, err := openPostgres(dbURL, nil)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	if err := migratePostgres(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("--db %s: %w", redactURL(dbURL), err)
	}
	r, err := openPostgres(dbURL, map[string]string{
		"default_transaction_isolation": "repeatable read",
		"default_transaction_read_only": "on",
	})
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return &DB{W: w, R: r, URL: dbURL, Postgres: true}, nil
}

// migrationLock is the advisory lock key PostgreSQL migrations run under.
const migrationLock = 0x6669656c6473796e // "fieldsyn"

func migratePostgres(ctx context.Context, w *sql.DB) error {
	conn, err := w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(?)`, migrationLock); err != nil {
		return err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(?)`, migrationLock)
	migs, err := migrationsIn("migrations_pg")
	if err != nil {
		return err
	}
	return applyMigrations(ctx, conn, migs)
}

// OpenExisting opens the database of a data folder that already holds one, for the
// commands that read or change an existing company (user, backup, pdf, report): unlike
// Open it refuses, and leaves untouched, a folder that is missing, empty, or whose
// fieldsync.db is not a fieldsync database, so a mistyped --data creates nothing.
func OpenExisting(ctx context.Context, dataDir string) (*DB, error) {
	path := filepath.Join(dataDir, DBFile)
	refuse := func(why string) (*DB, error) {
		return nil, fmt.Errorf("no fieldsync database in %s (%s): check --data; `fieldsync serve` or `fieldsync migrate` creates one", dataDir, why)
	}
	if _, err := os.Stat(path); err != nil {
		return refuse("no " + DBFile)
	}
	ro, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return nil, err
	}
	var n int
	err = ro.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
	ro.Close()
	if err != nil {
		return refuse(DBFile + " is not an SQLite database: " + err.Error())
	}
	if n == 0 {
		return refuse(DBFile + " holds no fieldsync tables")
	}
	return Open(ctx, dataDir)
}

// OpenExistingStore is OpenExisting for the store a --db value names: "" for SQLite in
// dataDir, or a postgres:// URL, which it refuses, creating nothing, when the database
// holds no fieldsync tables (a mistyped URL, or a database no fieldsync server ran on).
func OpenExistingStore(ctx context.Context, dataDir, dbURL string) (*DB, error) {
	if dbURL == "" {
		return OpenExisting(ctx, dataDir)
	}
	if !IsPostgresURL(dbURL) {
		return nil, fmt.Errorf("--db %q: give a postgres:// URL, or nothing for SQLite in --data", redactURL(dbURL))
	}
	probe, err := openPostgres(dbURL, nil)
	if err != nil {
		return nil, err
	}
	var n int
	err = probe.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`).Scan(&n)
	probe.Close()
	if err != nil {
		return nil, fmt.Errorf("--db %s: %w", redactURL(dbURL), err)
	}
	if n == 0 {
		return nil, fmt.Errorf("no fieldsync database at --db %s (it holds no fieldsync tables): check --db; `fieldsync serve --db` or `fieldsync migrate --db` creates them", redactURL(dbURL))
	}
	return OpenStore(ctx, dataDir, dbURL)
}

// RedactURL is a database URL with its password hidden, for messages.
func RedactURL(u string) string { return redactURL(u) }

// Close closes both pools.
func (db *DB) Close() error {
	err1 := db.R.Close()
	err2 := db.W.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// Migration is one embedded SQL file.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string
}

// Migrations returns the embedded SQLite migrations in order. Files are named NNNN_name.sql.
func Migrations() ([]Migration, error) { return migrationsIn("migrations") }

// PostgresMigrations returns the embedded PostgreSQL migrations in order.
func PostgresMigrations() ([]Migration, error) { return migrationsIn("migrations_pg") }

func migrationsIn(dir string) ([]Migration, error) {
	entries, err := migrationFiles.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", name)
		}
		b, err := migrationFiles.ReadFile(dir + "/" + name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: name, SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.Name, i+1)
		}
	}
	return out, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	migs, err := Migrations()
	if err != nil {
		return err
	}
	return applyMigrations(ctx, db, migs)
}

// applyMigrations applies the missing migrations, each in its own transaction, after
// checking that those already applied are the ones this binary knows, byte for byte.
func applyMigrations(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, migs []Migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT version, name, checksum FROM schema_migrations ORDER BY version`)
	if err != nil {
		return err
	}
	applied := map[int][2]string{}
	maxApplied := 0
	for rows.Next() {
		var v int
		var name, sum string
		if err := rows.Scan(&v, &name, &sum); err != nil {
			rows.Close()
			return err
		}
		applied[v] = [2]string{name, sum}
		maxApplied = max(maxApplied, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if maxApplied > len(migs) {
		return fmt.Errorf("the database is at schema version %d but this binary knows only up to %d: run a newer fieldsync, or restore a backup made by this version", maxApplied, len(migs))
	}
	for _, m := range migs {
		if a, ok := applied[m.Version]; ok {
			if a[1] != m.Checksum {
				return fmt.Errorf("migration %d (%s) was edited after it was applied to this database (checksum %q, expected %s): restore the original file; fix data with a new migration instead", m.Version, a[0], short(a[1]), short(m.Checksum))
			}
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
			m.Version, m.Name, m.Checksum, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// short returns the first 12 characters of a checksum, or all of it when shorter (a stored
// value may have been edited to anything).
func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// Version returns the schema version of the database.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.R.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// IntegrityCheck runs PRAGMA integrity_check on the database file at path.
func IntegrityCheck(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return fmt.Errorf("integrity_check %s: %w", path, err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity_check %s: %s", path, res)
	}
	return nil
}

// Backup writes a consistent copy of the live database to out with VACUUM INTO (it reads one
// snapshot, so writers keep going), then checks the copy's integrity before reporting success.
// The copy is created readable by its owner only (mode 0600): it holds password hashes and
// customers' personal data.
func (db *DB) Backup(ctx context.Context, out string) error {
	// VACUUM INTO writes into an empty file: create it first, exclusively and private.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("backup target %s exists; choose a new file name", out)
	} else if err != nil {
		return fmt.Errorf("backup to %s: %w", out, err)
	}
	f.Close()
	if _, err := db.R.ExecContext(ctx, `VACUUM INTO ?`, out); err != nil {
		os.Remove(out)
		return fmt.Errorf("backup to %s: %w", out, err)
	}
	if err := IntegrityCheck(ctx, out); err != nil {
		os.Remove(out)
		return err
	}
	return nil
}
