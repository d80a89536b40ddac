package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	gorilla "github.com/gorilla/websocket"
	_ "github.com/mattn/go-sqlite3"

	mobileapi "fieldsync/mobile-api"
)

// baseline measures what this machine allows, with the server's own building blocks and no
// fieldsync logic: SQLite inserts through the same driver and pragmas (WAL, synchronous
// FULL, one writer, batches of 500 rows a transaction, rows shaped like change-log entries),
// and WebSocket echo round trips through the same stack (Fiber, the WebSocket upgrade of the sync endpoint,
// gorilla clients, 64 connections, one frame in flight each, a 200-byte JSON text frame).
// Then the latency of a commit of one such row, one after another (the floor of anything
// the server acknowledges after its commit, as a coordinator's edit reaching a phone).
// With Config.DB, also the same inserts into a database created for the run in that
// PostgreSQL cluster (through pgx, one connection, synchronous_commit as the cluster has it).
func baseline(ctx context.Context, cfg *Config, res *Result) error {
	dur := defDur(cfg.Duration, 3*time.Second)
	rows, commits, err := sqliteBaseline(ctx, dur)
	if err != nil {
		return err
	}
	res.set("sqlite_rows_per_s", rows)
	res.set("sqlite_commit_p50_ms", pct(commits, 0.5))
	res.set("sqlite_commit_p99_ms", pct(commits, 0.99))
	if cfg.DB != "" {
		if rows, commits, err = postgresBaseline(ctx, cfg, dur); err != nil {
			return err
		}
		res.set("postgres_rows_per_s", rows)
		res.set("postgres_commit_p50_ms", pct(commits, 0.5))
		res.set("postgres_commit_p99_ms", pct(commits, 0.99))
	}
	rts, err := wsBaseline(ctx, dur)
	if err != nil {
		return err
	}
	res.set("ws_round_trips_per_s", rts)
	return nil
}

func sqliteBaseline(ctx context.Context, dur time.Duration) (float64, []time.Duration, error) {
	dir, err := os.MkdirTemp("", "fieldsync-bench-sqlite-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(dir)
	v := url.Values{}
	v.Set("_journal_mode", "WAL")
	v.Set("_busy_timeout", "5000")
	v.Set("_foreign_keys", "on")
	v.Set("_synchronous", "FULL")
	v.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "b.db")+"?"+v.Encode())
	if err != nil {
		return 0, nil, err
	}
	defer db.Close()
	return insertRows(ctx, db, dur, `CREATE TABLE t (seq INTEGER PRIMARY KEY, entity TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL)`,
		`INSERT INTO t(seq, entity, id, version, data) VALUES (?, 'ticket_event', ?, 1, ?)`)
}

// postgresBaseline is sqliteBaseline's inserts into a database created for the run in the
// cluster of cfg.DB (dropped after it unless KeepDir).
func postgresBaseline(ctx context.Context, cfg *Config, dur time.Duration) (float64, []time.Duration, error) {
	dbURL, err := createDatabase(ctx, cfg.DB, "")
	if err != nil {
		return 0, nil, err
	}
	if cfg.KeepDir {
		cfg.logf("keeping the database %s", dbName(dbURL))
	} else {
		defer dropDatabase(cfg.DB, dbName(dbURL))
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return 0, nil, err
	}
	defer db.Close()
	return insertRows(ctx, db, dur, `CREATE TABLE t (seq bigint PRIMARY KEY, entity text NOT NULL, id text NOT NULL, version bigint NOT NULL, data json NOT NULL)`,
		`INSERT INTO t(seq, entity, id, version, data) VALUES ($1, 'ticket_event', $2, 1, $3)`)
}

// insertRows creates table t of db (table, and an index on entity and id) and inserts rows
// shaped like change-log entries with insert, through one connection, 500 a transaction,
// for dur; then one a transaction for a third of dur (1,000 at most), timing each commit.
// It checks they are all there and returns the rows a second of the first part and the
// commits' times, in order.
func insertRows(ctx context.Context, db *sql.DB, dur time.Duration, table, insert string) (float64, []time.Duration, error) {
	db.SetMaxOpenConns(1)
	for _, ddl := range []string{table, `CREATE INDEX t_id ON t (entity, id)`} {
		if _, err := db.Exec(ddl); err != nil {
			return 0, nil, err
		}
	}
	data := fmt.Sprintf(`{"ticket_id":"%s","kind":"note","note":"到场前电话确认 / called ahead, note 0-0","actor_id":"%s","at":"2026-01-01T00:00:00Z"}`, uuid.NewString(), uuid.NewString())
	var n int64
	start := time.Now()
	for time.Since(start) < dur && n < 100_000_000 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, nil, err
		}
		st, err := tx.Prepare(insert)
		if err != nil {
			tx.Rollback()
			return 0, nil, err
		}
		for range 500 {
			n++
			if _, err := st.Exec(n, uuid.NewString(), data); err != nil {
				tx.Rollback()
				return 0, nil, err
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			return 0, nil, err
		}
	}
	perS := float64(n) / time.Since(start).Seconds()
	var commits []time.Duration
	for start := time.Now(); time.Since(start) < dur/3 && len(commits) < 1000; {
		n++
		t0 := time.Now()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, nil, err
		}
		if _, err := tx.Exec(insert, n, uuid.NewString(), data); err != nil {
			tx.Rollback()
			return 0, nil, err
		}
		if err := tx.Commit(); err != nil {
			return 0, nil, err
		}
		commits = append(commits, time.Since(t0))
	}
	var got int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&got); err != nil {
		return 0, nil, err
	}
	if got != n {
		return 0, nil, failf("baseline: %d rows stored, %d inserted", got, n)
	}
	slices.Sort(commits)
	return perS, commits, nil
}

func wsBaseline(ctx context.Context, dur time.Duration) (float64, error) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	mobileapi.KeepHijacked(app)
	app.Get("/echo", mobileapi.Upgrade(&gorilla.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}, func(c *gorilla.Conn) {
		defer c.Close()
		for {
			t, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(t, b); err != nil {
				return
			}
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	go app.Listener(ln)
	defer app.Shutdown()
	const conns = 64
	msg := []byte(fmt.Sprintf(`{"type":"push","id":"m1","mutations":[{"mid":"%s","entity":"ticket","id":"%s","op":"update","base_version":3,"fields":{"tech_notes":"ok"}}]}`, uuid.NewString(), uuid.NewString()))
	var total atomic.Int64
	var wg gosync.WaitGroup
	var ferr atomic.Value
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := gorilla.DefaultDialer.DialContext(ctx, "ws://"+ln.Addr().String()+"/echo", nil)
			if err != nil {
				ferr.CompareAndSwap(nil, err.Error())
				return
			}
			defer c.Close()
			for time.Since(start) < dur {
				if err := c.WriteMessage(gorilla.TextMessage, msg); err != nil {
					ferr.CompareAndSwap(nil, err.Error())
					return
				}
				_, b, err := c.ReadMessage()
				if err != nil || len(b) != len(msg) {
					ferr.CompareAndSwap(nil, fmt.Sprintf("echo: %v (%d bytes)", err, len(b)))
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	if v := ferr.Load(); v != nil {
		return 0, failf("websocket baseline: %s", v.(string))
	}
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}
