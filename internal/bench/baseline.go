package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
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
// With Config.DB, also the same inserts into a database created for the run in that
// PostgreSQL cluster (through pgx, one connection, synchronous_commit as the cluster has it).
func baseline(ctx context.Context, cfg *Config, res *Result) error {
	dur := defDur(cfg.Duration, 3*time.Second)
	rows, err := sqliteBaseline(ctx, dur)
	if err != nil {
		return err
	}
	res.set("sqlite_rows_per_s", rows)
	if cfg.DB != "" {
		if rows, err = postgresBaseline(ctx, cfg, dur); err != nil {
			return err
		}
		res.set("postgres_rows_per_s", rows)
	}
	rts, err := wsBaseline(ctx, dur)
	if err != nil {
		return err
	}
	res.set("ws_round_trips_per_s", rts)
	return nil
}

func sqliteBaseline(ctx context.Context, dur time.Duration) (float64, error) {
	dir, err := os.MkdirTemp("", "fieldsync-bench-sqlite-")
	if err != nil {
		return 0, err
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
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (seq INTEGER PRIMARY KEY, entity TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL)`); err != nil {
		return 0, err
	}
	if _, err := db.Exec(`CREATE INDEX t_id ON t (entity, id)`); err != nil {
		return 0, err
	}
	return insertRows(ctx, db, dur, `INSERT INTO t(seq, entity, id, version, data) VALUES (?, 'ticket_event', ?, 1, ?)`)
}

// postgresBaseline is sqliteBaseline's inserts into a database created for the run in the
// cluster of cfg.DB (dropped after it unless KeepDir).
func postgresBaseline(ctx context.Context, cfg *Config, dur time.Duration) (float64, error) {
	dbURL, err := createDatabase(ctx, cfg.DB, "")
	if err != nil {
		return 0, err
	}
	if cfg.KeepDir {
		cfg.logf("keeping the database %s", dbName(dbURL))
	} else {
		defer dropDatabase(cfg.DB, dbName(dbURL))
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (seq bigint PRIMARY KEY, entity text NOT NULL, id text NOT NULL, version bigint NOT NULL, data json NOT NULL)`); err != nil {
		return 0, err
	}
	if _, err := db.Exec(`CREATE INDEX t_id ON t (entity, id)`); err != nil {
		return 0, err
	}
	return insertRows(ctx, db, dur, `INSERT INTO t(seq, entity, id, version, data) VALUES ($1, 'ticket_event', $2, 1, $3)`)
}

// insertRows inserts rows shaped like change-log entries into table t of db with insert,
// 500 a transaction, for dur, checks they are all there and returns the rows a second.
func insertRows(ctx context.Context, db *sql.DB, dur time.Duration, insert string) (float64, error) {
	data := fmt.Sprintf(`{"ticket_id":"%s","kind":"note","note":"到场前电话确认 / called ahead, note 0-0","actor_id":"%s","at":"2026-01-01T00:00:00Z"}`, uuid.NewString(), uuid.NewString())
	var n int64
	start := time.Now()
	for time.Since(start) < dur && n < 100_000_000 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		st, err := tx.Prepare(insert)
		if err != nil {
			tx.Rollback()
			return 0, err
		}
		for range 500 {
			n++
			if _, err := st.Exec(n, uuid.NewString(), data); err != nil {
				tx.Rollback()
				return 0, err
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	var got int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&got); err != nil {
		return 0, err
	}
	if got != n {
		return 0, failf("baseline: %d rows stored, %d inserted", got, n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
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
