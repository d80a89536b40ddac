package client

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the local store's driver

	syncer "fieldsync/sync"
)

// localSchema is the device's own database: the mirror of its scope (records), the sync
// checkpoint (meta), the durable outbox, the final rejections and the blobs it made or fetched.
// Tables whose rows are large (records, blobs) keep a rowid: a WITHOUT ROWID table stores
// each row inside its key's B-tree, which large rows make deep and slow to write.
const localSchema = `
CREATE TABLE IF NOT EXISTS records (
	entity  TEXT NOT NULL,
	id      TEXT NOT NULL,
	version INTEGER NOT NULL,
	data    TEXT NOT NULL,
	PRIMARY KEY (entity, id)
);
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	mid          TEXT NOT NULL UNIQUE,
	entity       TEXT NOT NULL,
	id           TEXT NOT NULL,
	op           TEXT NOT NULL,
	base_version INTEGER NOT NULL,
	fields       TEXT NOT NULL DEFAULT '',
	action       TEXT NOT NULL DEFAULT '',
	at           TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_at      INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS rejections (
	mid      TEXT PRIMARY KEY,
	entity   TEXT NOT NULL,
	id       TEXT NOT NULL,
	op       TEXT NOT NULL,
	action   TEXT NOT NULL,
	fields   TEXT NOT NULL,
	code     TEXT NOT NULL,
	message  TEXT NOT NULL,
	field    TEXT NOT NULL,
	record   TEXT NOT NULL,
	at       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
	sha      TEXT PRIMARY KEY,
	data     BLOB NOT NULL,
	uploaded INTEGER NOT NULL DEFAULT 0
);
`

// metaCheckpoint is the meta key of the pull checkpoint.
const metaCheckpoint = "checkpoint"

// store is the local SQLite database: one writer connection (every write is a BEGIN
// IMMEDIATE transaction on it) and a small read pool, both in WAL mode.
type store struct {
	w *sql.DB
	r *sql.DB
}

// openStore opens (creating if needed) the local database at path.
func openStore(path string) (*store, error) {
	if path == "" {
		return nil, errors.New("client: Config.DBPath is empty")
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	w, err := sql.Open("sqlite3", base+"?_journal_mode=WAL&_busy_timeout=5000&_synchronous=FULL&_txlock=immediate&_stmt_cache_size=32")
	if err != nil {
		return nil, fmt.Errorf("client: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(localSchema); err != nil {
		w.Close()
		return nil, fmt.Errorf("client: creating the local schema in %s: %w", path, err)
	}
	r, err := sql.Open("sqlite3", base+"?_journal_mode=WAL&_busy_timeout=5000&_txlock=deferred&_query_only=1&_stmt_cache_size=32")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("client: opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	return &store{w: w, r: r}, nil
}

func (s *store) close() error { return errors.Join(s.r.Close(), s.w.Close()) }

// update runs fn in one write transaction.
func (s *store) update(fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		return fmt.Errorf("client: local store: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("client: local store: %w", err)
	}
	return nil
}

// view runs fn in one read transaction, so that what it reads is one consistent snapshot.
func (s *store) view(fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("client: local store: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// change is one committed change of the app-visible state, for OnChange listeners.
type change struct{ entity, id, op string }

// checkpoint returns the stored pull checkpoint ("" before the first sync).
func (s *store) checkpoint() (string, error) {
	var cp string
	err := s.r.QueryRow(`SELECT value FROM meta WHERE key = ?`, metaCheckpoint).Scan(&cp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("client: reading the checkpoint: %w", err)
	}
	return cp, nil
}

// applyChanges applies one pulled batch and stores its checkpoint in the same transaction, so
// that a crash leaves either both or neither. Upserts go in multi-row statements
// (upsertRows records each), in the batch's order.
func (s *store) applyChanges(changes []syncer.Change, checkpoint *string) ([]change, error) {
	var notes []change
	err := s.update(func(tx *sql.Tx) error {
		notes = notes[:0]
		var rows []syncer.Change // upserts not yet written, fewer than upsertRows
		flush := func() error {
			for _, ch := range rows {
				if _, err := putRecord(tx, ch.Entity, ch.ID, ch.Version, ch.Record); err != nil {
					return err
				}
			}
			rows = rows[:0]
			return nil
		}
		for _, ch := range changes {
			switch ch.Op {
			case syncer.OpUpsert:
				if ch.Record == nil {
					return fmt.Errorf("client: upsert of %s/%s without a record", ch.Entity, ch.ID)
				}
				if rows = append(rows, ch); len(rows) == upsertRows {
					if err := putRecords(tx, rows); err != nil {
						return err
					}
					rows = rows[:0]
				}
			case syncer.OpDelete, syncer.OpEvict:
				if err := flush(); err != nil {
					return err
				}
				if _, err := tx.Exec(`DELETE FROM records WHERE entity = ? AND id = ?`, ch.Entity, ch.ID); err != nil {
					return fmt.Errorf("client: removing %s/%s: %w", ch.Entity, ch.ID, err)
				}
			default:
				return fmt.Errorf("client: change of %s/%s has unknown op %q", ch.Entity, ch.ID, ch.Op)
			}
			notes = append(notes, change{ch.Entity, ch.ID, ch.Op})
		}
		if err := flush(); err != nil {
			return err
		}
		if checkpoint != nil {
			return setMeta(tx, metaCheckpoint, *checkpoint)
		}
		return nil
	})
	return notes, err
}

// upsertRows is how many records one statement of applyChanges stores.
const upsertRows = 100

// upsertRecord ends the statements that store a record unless a newer version is already
// held. The record's JSON is bound as bytes and stored as text (CAST), without a copy into
// a Go string.
const upsertRecord = ` ON CONFLICT (entity, id) DO UPDATE SET version = excluded.version, data = excluded.data
	WHERE excluded.version >= records.version`

var upsertMany = `INSERT INTO records (entity, id, version, data) VALUES ` +
	strings.Repeat(`(?, ?, ?, CAST(? AS TEXT)), `, upsertRows-1) + `(?, ?, ?, CAST(? AS TEXT))` + upsertRecord

// putRecords stores upsertRows records in one statement, as putRecord stores one.
func putRecords(tx *sql.Tx, rows []syncer.Change) error {
	args := make([]any, 0, 4*len(rows))
	for _, ch := range rows {
		args = append(args, ch.Entity, ch.ID, ch.Version, []byte(ch.Record))
	}
	if _, err := tx.Exec(upsertMany, args...); err != nil {
		return fmt.Errorf("client: storing %d records from %s/%s: %w", len(rows), rows[0].Entity, rows[0].ID, err)
	}
	return nil
}

// putRecord stores the server state of a record unless a newer version is already held
// (results and pulls can arrive in either order); it reports whether it wrote. data comes
// from a frame that was decoded whole, so it is valid JSON.
func putRecord(tx *sql.Tx, entity, id string, version int64, data json.RawMessage) (bool, error) {
	res, err := tx.Exec(`INSERT INTO records (entity, id, version, data) VALUES (?, ?, ?, CAST(? AS TEXT))`+upsertRecord,
		entity, id, version, []byte(data))
	if err != nil {
		return false, fmt.Errorf("client: storing %s/%s: %w", entity, id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func setMeta(tx *sql.Tx, key, value string) error {
	_, err := tx.Exec(`INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("client: storing %s: %w", key, err)
	}
	return nil
}

// wipeMirror forgets every held record and the checkpoint but keeps the outbox, the
// rejections and the blobs: what a client does before resyncing from "".
func (s *store) wipeMirror() error {
	return s.update(func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM records; DELETE FROM meta WHERE key = 'checkpoint';`)
		return err
	})
}

// wipeAll forgets everything the device holds: what a revoked device must do.
func (s *store) wipeAll() error {
	return s.update(func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM records; DELETE FROM meta; DELETE FROM outbox;
			DELETE FROM rejections; DELETE FROM blobs;`)
		return err
	})
}

// outboxRow is one pending mutation with its retry bookkeeping.
type outboxRow struct {
	seq      int64
	m        syncer.Mutation
	attempts int
	nextAt   int64 // unix milliseconds before which it is not re-sent
}

// addMutation appends m to the outbox.
func (s *store) addMutation(m syncer.Mutation) error {
	return s.update(func(tx *sql.Tx) error { return insertMutation(tx, m) })
}

func insertMutation(tx *sql.Tx, m syncer.Mutation) error {
	fields, err := encodeFields(m.Fields)
	if err != nil {
		return err
	}
	_, err = tx.Exec(`INSERT INTO outbox (mid, entity, id, op, base_version, fields, action, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, m.MID, m.Entity, m.ID, m.Op, m.BaseVersion, fields, m.Action, m.At)
	if err != nil {
		return fmt.Errorf("client: writing mutation %s to the outbox: %w", m.MID, err)
	}
	return nil
}

func encodeFields(f map[string]json.RawMessage) (string, error) {
	if len(f) == 0 {
		return "", nil
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("client: encoding fields: %w", err)
	}
	return string(b), nil
}

func decodeFields(s string) (map[string]json.RawMessage, error) {
	if s == "" {
		return nil, nil
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		return nil, fmt.Errorf("client: decoding stored fields: %w", err)
	}
	return f, nil
}

// querier is what both *sql.DB and *sql.Tx offer for reading.
type querier interface {
	Query(query string, args ...any) (*sql.Rows, error)
}

// outbox returns the pending mutations in the order they were made, optionally only those of
// one entity (and id).
func outbox(q querier, entity, id string) ([]outboxRow, error) {
	query := `SELECT seq, mid, entity, id, op, base_version, fields, action, at, attempts, next_at FROM outbox`
	var args []any
	switch {
	case entity != "" && id != "":
		query += ` WHERE entity = ? AND id = ?`
		args = append(args, entity, id)
	case entity != "":
		query += ` WHERE entity = ?`
		args = append(args, entity)
	}
	rows, err := q.Query(query+` ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("client: reading the outbox: %w", err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var fields string
		if err := rows.Scan(&r.seq, &r.m.MID, &r.m.Entity, &r.m.ID, &r.m.Op, &r.m.BaseVersion,
			&fields, &r.m.Action, &r.m.At, &r.attempts, &r.nextAt); err != nil {
			return nil, fmt.Errorf("client: reading the outbox: %w", err)
		}
		if r.m.Fields, err = decodeFields(fields); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *store) pending() (int, error) {
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("client: counting the outbox: %w", err)
	}
	return n, nil
}

// outboxReport is what hello tells the server of the outbox: how many mutations wait and
// when the oldest was made ("" when none).
func (s *store) outboxReport() (n int, oldest string, err error) {
	var at sql.NullString
	if err := s.r.QueryRow(`SELECT count(*), min(at) FROM outbox`).Scan(&n, &at); err != nil {
		return 0, "", fmt.Errorf("client: reading the outbox: %w", err)
	}
	return n, at.String, nil
}

// resultAction tells what applyResults did with one result, for logging and tests.
type resultAction int

const (
	resultDone     resultAction = iota // applied, merged or duplicate: removed from the outbox
	resultRejected                     // final rejection: moved to rejections
	resultDeferred                     // retryable: stays, re-sent after its backoff
	resultMissing                      // no result came back for it: stays, re-sent
)

// applyResults settles a pushed batch with the server's results in one transaction: done
// mutations leave the outbox and their record is stored, final rejections move to the
// rejections table, retryable ones stay with a later next_at. retryDelay gives the backoff of
// a mutation that failed attempts times.
func (s *store) applyResults(batch []outboxRow, results []syncer.Result, now time.Time,
	retryDelay func(attempts int) time.Duration) ([]resultAction, []change, error) {
	actions := make([]resultAction, len(batch))
	var notes []change
	err := s.update(func(tx *sql.Tx) error {
		notes = notes[:0]
		byMID := make(map[string]int, len(batch))
		for i, r := range batch {
			byMID[r.m.MID] = i
			actions[i] = resultMissing
		}
		for k, res := range results {
			i, ok := byMID[res.MID]
			if !ok {
				if res.MID != "" || k >= len(batch) {
					continue // not one of ours
				}
				i = k
			}
			row := batch[i]
			m := row.m
			switch {
			case res.Status == syncer.StatusApplied || res.Status == syncer.StatusMerged || res.Status == syncer.StatusDuplicate:
				if err := deleteOutbox(tx, m.MID); err != nil {
					return err
				}
				if res.Record != nil && string(res.Record) != "null" {
					version := res.Version
					if version == 0 {
						version = recordVersion(res.Record)
					}
					if _, err := putRecord(tx, m.Entity, m.ID, version, res.Record); err != nil {
						return err
					}
				} else if m.Op == "delete" {
					if _, err := tx.Exec(`DELETE FROM records WHERE entity = ? AND id = ?`, m.Entity, m.ID); err != nil {
						return fmt.Errorf("client: removing %s/%s: %w", m.Entity, m.ID, err)
					}
				}
				actions[i] = resultDone
				notes = append(notes, change{m.Entity, m.ID, opOf(m.Op)})
			case res.Status == syncer.StatusRejected && !res.Retryable:
				if err := deleteOutbox(tx, m.MID); err != nil {
					return err
				}
				if err := insertRejection(tx, m, res, now); err != nil {
					return err
				}
				if res.Record != nil && string(res.Record) != "null" && res.Code != "out_of_scope" {
					// Only refresh a record the device holds: a rejection must not widen the scope.
					var held int
					tx.QueryRow(`SELECT count(*) FROM records WHERE entity = ? AND id = ?`, m.Entity, m.ID).Scan(&held)
					if held > 0 {
						if _, err := putRecord(tx, m.Entity, m.ID, max(res.Version, recordVersion(res.Record)), res.Record); err != nil {
							return err
						}
					}
				}
				actions[i] = resultRejected
				notes = append(notes, change{m.Entity, m.ID, ChangeRejected})
			default: // retryable rejection, or a status this client does not know
				next := now.Add(retryDelay(row.attempts + 1)).UnixMilli()
				msg := res.Code
				if res.Message != "" {
					msg += ": " + res.Message
				}
				if _, err := tx.Exec(`UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE mid = ?`,
					next, msg, m.MID); err != nil {
					return fmt.Errorf("client: deferring mutation %s: %w", m.MID, err)
				}
				actions[i] = resultDeferred
			}
		}
		return nil
	})
	return actions, notes, err
}

// deferMutations pushes back the next attempt of the mutations mids, e.g. when a blob they
// need could not be uploaded.
func (s *store) deferMutations(mids []string, now time.Time, retryDelay func(int) time.Duration, why string) error {
	return s.update(func(tx *sql.Tx) error {
		for _, mid := range mids {
			var attempts int
			if err := tx.QueryRow(`SELECT attempts FROM outbox WHERE mid = ?`, mid).Scan(&attempts); err != nil {
				continue
			}
			next := now.Add(retryDelay(attempts + 1)).UnixMilli()
			if _, err := tx.Exec(`UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE mid = ?`,
				attempts+1, next, why, mid); err != nil {
				return fmt.Errorf("client: deferring mutation %s: %w", mid, err)
			}
		}
		return nil
	})
}

// rejectLocally moves one mutation from the outbox to the rejections, for a mutation the
// server refused as a frame error even when sent alone.
func (s *store) rejectLocally(row outboxRow, code, message string, now time.Time) error {
	return s.update(func(tx *sql.Tx) error {
		if err := deleteOutbox(tx, row.m.MID); err != nil {
			return err
		}
		return insertRejection(tx, row.m, syncer.Result{MID: row.m.MID, Status: syncer.StatusRejected, Code: code, Message: message}, now)
	})
}

func deleteOutbox(tx *sql.Tx, mid string) error {
	if _, err := tx.Exec(`DELETE FROM outbox WHERE mid = ?`, mid); err != nil {
		return fmt.Errorf("client: removing mutation %s from the outbox: %w", mid, err)
	}
	return nil
}

func insertRejection(tx *sql.Tx, m syncer.Mutation, res syncer.Result, now time.Time) error {
	fields, err := encodeFields(m.Fields)
	if err != nil {
		return err
	}
	record := ""
	if res.Record != nil {
		record = string(res.Record)
	}
	_, err = tx.Exec(`INSERT OR REPLACE INTO rejections (mid, entity, id, op, action, fields, code, message, field, record, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.MID, m.Entity, m.ID, m.Op, m.Action, fields,
		res.Code, res.Message, res.Field, record, now.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("client: recording the rejection of %s: %w", m.MID, err)
	}
	return nil
}

// recordVersion reads a "version" number out of a record, 0 when it has none.
func recordVersion(data json.RawMessage) int64 {
	var v struct {
		Version json.Number `json:"version"`
	}
	if json.Unmarshal(data, &v) != nil {
		return 0
	}
	n, _ := strconv.ParseInt(v.Version.String(), 10, 64)
	return n
}

// opOf names the change a local mutation makes to the app-visible state.
func opOf(mutationOp string) string {
	if mutationOp == "delete" {
		return syncer.OpDelete
	}
	return syncer.OpUpsert
}

// records returns the app's view of entity (one id, or all when id is ""): the held server
// state with the device's own pending mutations applied on top, in the order they were made.
func (s *store) records(entity, id string) ([]Record, error) {
	var out []Record
	err := s.view(func(tx *sql.Tx) error {
		query := `SELECT id, version, data FROM records WHERE entity = ?`
		args := []any{entity}
		if id != "" {
			query += ` AND id = ?`
			args = append(args, id)
		}
		rows, err := tx.Query(query, args...)
		if err != nil {
			return fmt.Errorf("client: reading %s: %w", entity, err)
		}
		held := make(map[string]*Record)
		for rows.Next() {
			r := Record{Entity: entity}
			var data string
			if err := rows.Scan(&r.ID, &r.Version, &data); err != nil {
				rows.Close()
				return fmt.Errorf("client: reading %s: %w", entity, err)
			}
			r.Data = json.RawMessage(data)
			held[r.ID] = &r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		pending, err := outbox(tx, entity, id)
		if err != nil {
			return err
		}
		for _, p := range pending {
			overlay(held, p.m)
		}
		for _, r := range held {
			out = append(out, *r)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// overlay applies one pending mutation to the optimistic view. An action changes nothing it
// can predict (the server runs the state machine) but marks the record pending; an edit of a
// record the device no longer holds (evicted) shows nothing.
func overlay(view map[string]*Record, m syncer.Mutation) {
	r := view[m.ID]
	switch m.Op {
	case "create":
		if r == nil {
			r = &Record{Entity: m.Entity, ID: m.ID, Data: json.RawMessage(`{}`)}
			view[m.ID] = r
			if _, ok := m.Fields["id"]; !ok {
				r.Data = mergeFields(r.Data, map[string]json.RawMessage{"id": mustJSON(m.ID)})
			}
		}
		r.Data = mergeFields(r.Data, m.Fields)
	case "update":
		if r != nil {
			r.Data = mergeFields(r.Data, m.Fields)
		}
	case "delete":
		delete(view, m.ID)
		return
	}
	if r != nil {
		r.Pending = true
	}
}

// mergeFields returns the JSON object data with fields set on it.
func mergeFields(data json.RawMessage, fields map[string]json.RawMessage) json.RawMessage {
	if len(fields) == 0 {
		return data
	}
	obj := make(map[string]json.RawMessage)
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		obj = make(map[string]json.RawMessage)
	}
	for k, v := range fields {
		obj[k] = v
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return data
	}
	return b
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// digest computes the verify digest over the held records (not the optimistic view) and
// returns it with the checkpoint it belongs to, read in one snapshot.
func (s *store) digest() (count int64, hash, checkpoint string, err error) {
	err = s.view(func(tx *sql.Tx) error {
		if err := tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, metaCheckpoint).Scan(&checkpoint); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("client: reading the checkpoint: %w", err)
		}
		rows, err := tx.Query(`SELECT entity, id, version FROM records`)
		if err != nil {
			return fmt.Errorf("client: computing the digest: %w", err)
		}
		defer rows.Close()
		type key struct {
			entity, id string
			version    int64
		}
		var all []key
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.entity, &k.id, &k.version); err != nil {
				return fmt.Errorf("client: computing the digest: %w", err)
			}
			all = append(all, k)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// Sort in Go, byte order, so the result never depends on a collation.
		sort.Slice(all, func(i, j int) bool {
			if all[i].entity != all[j].entity {
				return all[i].entity < all[j].entity
			}
			return all[i].id < all[j].id
		})
		h := sha256.New()
		var line strings.Builder
		for _, k := range all {
			line.Reset()
			line.WriteString(k.entity)
			line.WriteByte('\n')
			line.WriteString(k.id)
			line.WriteByte('\n')
			line.WriteString(strconv.FormatInt(k.version, 10))
			line.WriteByte('\n')
			h.Write([]byte(line.String()))
		}
		count = int64(len(all))
		hash = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return count, hash, checkpoint, err
}

// rejections lists the final rejections, oldest first.
func (s *store) rejections() ([]Rejection, error) {
	rows, err := s.r.Query(`SELECT mid, entity, id, op, action, fields, code, message, field, record, at
		FROM rejections ORDER BY at, mid`)
	if err != nil {
		return nil, fmt.Errorf("client: reading the rejections: %w", err)
	}
	defer rows.Close()
	var out []Rejection
	for rows.Next() {
		var r Rejection
		var fields, record string
		if err := rows.Scan(&r.MID, &r.Entity, &r.ID, &r.Op, &r.Action, &fields, &r.Code, &r.Message,
			&r.Field, &record, &r.At); err != nil {
			return nil, fmt.Errorf("client: reading the rejections: %w", err)
		}
		if fields != "" {
			r.Fields = json.RawMessage(fields)
		}
		if record != "" {
			r.Record = json.RawMessage(record)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *store) dismissRejection(mid string) error {
	return s.update(func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM rejections WHERE mid = ?`, mid)
		return err
	})
}

// putBlob stores data under its hash, queued for upload unless already held.
func (s *store) putBlob(sha string, data []byte, uploaded bool) error {
	return s.update(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO blobs (sha, data, uploaded) VALUES (?, ?, ?)
			ON CONFLICT (sha) DO UPDATE SET uploaded = max(blobs.uploaded, excluded.uploaded)`, sha, data, uploaded)
		if err != nil {
			return fmt.Errorf("client: storing blob %s: %w", sha, err)
		}
		return nil
	})
}

// blob returns the blob sha if held locally.
func (s *store) blob(sha string) (data []byte, uploaded, ok bool, err error) {
	err = s.r.QueryRow(`SELECT data, uploaded FROM blobs WHERE sha = ?`, sha).Scan(&data, &uploaded)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("client: reading blob %s: %w", sha, err)
	}
	return data, uploaded, true, nil
}

func (s *store) markUploaded(sha string) error {
	return s.update(func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE blobs SET uploaded = 1 WHERE sha = ?`, sha)
		return err
	})
}
