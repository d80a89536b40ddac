package sync

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"fieldsync/schema"
)

// moveScopes updates the scope feed after a record was written at seq: every device holding
// the record sees the new version; a ticket entering a technician's scope brings its
// customer, site, asset, events and sheets; a ticket leaving it is evicted, and so are the
// records only it referenced.
func (w *wtx) moveScopes(entity string, cur, next schema.Doc, seq int64) error {
	id := next.Str("id")
	// Every device holding the record sees its new version at the record's own sequence
	// number: a user holds one row per record, so no feed gets two rows of one number.
	var holders []string
	if cur != nil { // a new record has no holders yet
		var err error
		if holders, err = w.bump(entity, id, seq); err != nil {
			return err
		}
	}
	switch entity {
	case schema.EntTicket:
		after := schema.TicketHolders(next, w.now, w.Settings().Int("completed_scope_days"))
		before := map[string]bool{}
		for _, u := range holders {
			before[u] = true
		}
		refsMoved := cur == nil || !slices.Equal(schema.TicketRefs(cur), schema.TicketRefs(next))
		for _, u := range after {
			if !before[u] || refsMoved {
				if err := w.enterTicket(u, next, !before[u]); err != nil {
					return err
				}
			}
			delete(before, u)
		}
		for u := range before {
			if err := w.leaveTicket(u, next); err != nil {
				return err
			}
		}
	case schema.EntTicketEvent, schema.EntSheet:
		ticketHolders, err := w.holdersOfTicket(next.Str("ticket_id"))
		if err != nil {
			return err
		}
		for _, u := range ticketHolders {
			if err := w.setScope(u, entity, id, true); err != nil {
				return err
			}
		}
	case schema.EntUser:
		return w.setScope(id, schema.EntUser, id, true)
	case schema.EntApproval, schema.EntExpense, schema.EntSale, schema.EntRepair, schema.EntUnreported:
		// A technician's own requests, expenses, sales (receivables), repairs and the
		// unreported charges they bear stay on their devices.
		if cur == nil && next.Str("technician_id") != "" {
			return w.setScope(next.Str("technician_id"), entity, id, true)
		}
	case schema.EntSetting:
		if schema.SecretSetting(id) { // channel secrets stay on the server
			return nil
		}
		return w.setScope("*", schema.EntSetting, id, true)
	}
	return nil
}

// bump moves the rows of every user whose scope holds a record to seq and returns those
// users.
func (w *wtx) bump(entity, id string, seq int64) ([]string, error) {
	users, err := w.userIDs(`UPDATE scope SET seq = ? WHERE entity = ? AND id = ? AND present = 1 RETURNING user_id`, seq, entity, id)
	for _, u := range users {
		w.users[u] = true
	}
	return users, err
}

// holders lists the users whose scope holds a record now.
func (w *wtx) holders(entity, id string) ([]string, error) {
	return w.userIDs(`SELECT user_id FROM scope WHERE entity = ? AND id = ? AND present = 1`, entity, id)
}

// holdersOfTicket lists the users whose scope holds ticket id now, from the engine's
// memory of tickets written lately when it has them.
func (w *wtx) holdersOfTicket(id string) ([]string, error) {
	if hs, ok := w.e.ticketHolders[id]; ok {
		return hs, nil
	}
	hs, err := w.holders(schema.EntTicket, id)
	if err == nil {
		w.e.ticketHolders[id] = hs
	}
	return hs, err
}

// userIDs runs a query whose one column is a user id.
func (w *wtx) userIDs(query string, args ...any) ([]string, error) {
	rows, err := w.tx.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// setScope records that user's scope gained (present) or lost a record, at a new sequence
// number of its own, so a pull page never splits one sequence number.
func (w *wtx) setScope(user, entity, id string, present bool) error {
	_, err := w.tx.Exec(`INSERT INTO scope(user_id, entity, id, seq, present) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(user_id, entity, id) DO UPDATE SET seq = excluded.seq, present = excluded.present`,
		user, entity, id, w.nextSeq(), present)
	w.users[user] = true
	if entity == schema.EntTicket {
		delete(w.e.ticketHolders, id)
	}
	return err
}

func (w *wtx) inScope(user, entity, id string) bool {
	var present bool
	err := w.tx.QueryRow(`SELECT present FROM scope WHERE user_id = ? AND entity = ? AND id = ?`, user, entity, id).Scan(&present)
	return err == nil && present
}

// enterTicket puts a ticket and what it references in user's scope. Referenced records
// come whatever their age; those already held are left alone.
func (w *wtx) enterTicket(user string, t schema.Doc, fresh bool) error {
	for _, ref := range schema.TicketRefs(t) {
		if !w.inScope(user, ref[0], ref[1]) {
			if err := w.setScope(user, ref[0], ref[1], true); err != nil {
				return err
			}
		}
	}
	if !fresh {
		return nil
	}
	if err := w.setScope(user, schema.EntTicket, t.Str("id"), true); err != nil {
		return err
	}
	children, err := w.children(t.Str("id"))
	if err != nil {
		return err
	}
	for _, c := range children {
		if err := w.setScope(user, c[0], c[1], true); err != nil {
			return err
		}
	}
	return nil
}

// leaveTicket evicts a ticket, its events and sheets from user's scope, and every record it
// referenced that no other ticket in the scope still references.
func (w *wtx) leaveTicket(user string, t schema.Doc) error {
	if err := w.setScope(user, schema.EntTicket, t.Str("id"), false); err != nil {
		return err
	}
	children, err := w.children(t.Str("id"))
	if err != nil {
		return err
	}
	for _, c := range children {
		if err := w.setScope(user, c[0], c[1], false); err != nil {
			return err
		}
	}
	for _, ref := range schema.TicketRefs(t) {
		var n int
		err := w.tx.QueryRow(`SELECT COUNT(*) FROM scope s JOIN records r ON r.entity = 'ticket' AND r.id = s.id
			WHERE s.user_id = ? AND s.entity = 'ticket' AND s.present = 1 AND r.data ->> ? = ?`,
			user, ref[0]+"_id", ref[1]).Scan(&n)
		if err != nil {
			return err
		}
		if n == 0 && w.inScope(user, ref[0], ref[1]) {
			if err := w.setScope(user, ref[0], ref[1], false); err != nil {
				return err
			}
		}
	}
	return nil
}

// children lists the events and sheets of a ticket.
func (w *wtx) children(ticketID string) ([][2]string, error) {
	// INDEXED BY: without statistics SQLite prefers walking the primary key to skip the sort,
	// which reads every event of every ticket.
	rows, err := w.tx.Query(`SELECT entity, id FROM records INDEXED BY records_ticket
		WHERE entity IN ('ticket_event', 'feedback_sheet') AND ticket_id = ? ORDER BY entity, id`, ticketID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var c [2]string
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Checkpoints are opaque to clients: "t<seq>" for a technician's scoped feed, "o<seq>" for
// the whole-store feed of office roles. A checkpoint of the other kind, or one older than
// the pruned horizon, is expired and the client resyncs from empty.
func feedKind(role string) string {
	if role == schema.RoleTechnician {
		return "t"
	}
	return "o"
}

func (e *Engine) parseCheckpoint(role, cp string) (int64, error) {
	if cp == "" {
		return 0, nil
	}
	kind := feedKind(role)
	if !strings.HasPrefix(cp, kind) {
		return 0, schema.FieldError(schema.CodeCheckpointExpired, "checkpoint", "checkpoint %q belongs to another kind of feed: resync from empty", cp)
	}
	seq, err := strconv.ParseInt(cp[1:], 10, 64)
	if err != nil || seq < 0 {
		return 0, schema.FieldError(schema.CodeValidation, "checkpoint", "checkpoint %q is not one this server issued", cp)
	}
	var floor, last int64
	if err := e.db.R.QueryRow(`SELECT COALESCE((SELECT value FROM counters WHERE name = 'prune_floor'), 0), seq FROM engine_state`).Scan(&floor, &last); err != nil {
		return 0, err
	}
	if seq > last {
		return 0, schema.FieldError(schema.CodeValidation, "checkpoint", "checkpoint %q is not one this server issued", cp)
	}
	if seq < floor {
		return 0, schema.FieldError(schema.CodeCheckpointExpired, "checkpoint", "checkpoint %q is older than the %d days of history kept: resync from empty", cp, e.Settings().Int("offline_days"))
	}
	return seq, nil
}

// Page is one answer to a pull.
type Page struct {
	Changes    []Change
	Checkpoint string
	HasMore    bool
}

// Pull returns the changes in user's scope after checkpoint, at most limit of them, in
// commit order.
func (e *Engine) Pull(ctx context.Context, user schema.Actor, checkpoint string, limit int) (Page, error) {
	p, err := e.pullPage(ctx, user, checkpoint, limit, true)
	e.metrics().Pulled(outcome(err))
	return p, err
}

// PagesAtOnce is how many pages of catch-up pulls are read at once: one a processor, two
// at least. Catch-up is work for the processors; when a whole shift's phones catch up at
// once (the start of a working day), reading every page together finishes all of them
// late, while taking turns serves the phones in the order they asked, each page at full
// speed. A live connection's wake-ups (a few changes each) do not wait for a turn.
func PagesAtOnce() int { return max(2, runtime.GOMAXPROCS(0)) }

// pullPage is pull in its turn among the pages of catch-up pulls (PagesAtOnce). With wait
// it waits for a turn as long as ctx allows. Without, it reads only in a turn free now, else
// answers errNotAhead: that is a page read ahead, which would only wait in memory until its
// device asks for it while other pulls wait for turns; the device's next pull then reads it
// in its turn.
func (e *Engine) pullPage(ctx context.Context, user schema.Actor, checkpoint string, limit int, wait bool) (Page, error) {
	if e.pages != nil {
		if wait {
			select {
			case e.pages <- struct{}{}:
			case <-ctx.Done():
				return Page{}, ctx.Err()
			}
		} else {
			select {
			case e.pages <- struct{}{}:
			default:
				return Page{}, errNotAhead
			}
		}
		defer func() { <-e.pages }()
	}
	return e.pull(ctx, user, checkpoint, limit)
}

// pull is Pull without the count (a live connection's deliveries are counted apart).
func (e *Engine) pull(ctx context.Context, user schema.Actor, checkpoint string, limit int) (Page, error) {
	from, err := e.parseCheckpoint(user.Role, checkpoint)
	if err != nil {
		return Page{}, err
	}
	if limit <= 0 {
		limit = DefaultPullLimit
	}
	limit = min(limit, MaxPullLimit)
	// Everything up to hi was committed before the read below starts, so its snapshot holds
	// it: a caught-up checkpoint may move to hi, never past what the read saw.
	hi := e.lastCommitted()
	tx, err := e.db.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Page{}, err
	}
	defer tx.Rollback()
	var changes []Change
	if user.Role == schema.RoleTechnician {
		// The user's own feed and the feed every device shares ('*'), each read in index
		// order and merged: one query over both would sort the whole remaining scope.
		mine, err := pullRows(ctx, tx, `SELECT s.seq, s.entity, s.id, s.present, r.version, r.deleted, r.data
			FROM scope s JOIN records r ON r.entity = s.entity AND r.id = s.id
			WHERE s.user_id = ? AND s.seq > ? ORDER BY s.seq LIMIT ?`, user.UserID, from, limit+1)
		if err != nil {
			return Page{}, err
		}
		shared, err := pullRows(ctx, tx, `SELECT s.seq, s.entity, s.id, s.present, r.version, r.deleted, r.data
			FROM scope s JOIN records r ON r.entity = s.entity AND r.id = s.id
			WHERE s.user_id = '*' AND s.seq > ? ORDER BY s.seq LIMIT ?`, from, limit+1)
		if err != nil {
			return Page{}, err
		}
		changes = mergeBySeq(mine, shared)
	} else {
		// The whole store, but the secret settings only for admins (docs/alerts.md).
		hidden := []string{}
		if user.Role != schema.RoleAdmin {
			hidden = schema.SecretSettings
		}
		changes, err = pullRows(ctx, tx, `SELECT last_seq, entity, id, 1, version, deleted, data
			FROM records WHERE last_seq > ? AND NOT (entity = 'setting' AND id IN (SELECT value FROM json_each(?)))
			ORDER BY last_seq LIMIT ?`, from, schema.MustJSON(hidden), limit+1)
		if err != nil {
			return Page{}, err
		}
	}
	page := Page{Changes: changes}
	if len(changes) > limit {
		page.Changes, page.HasMore = changes[:limit], true
	}
	last := from
	if n := len(page.Changes); n > 0 {
		last = page.Changes[n-1].Seq
	}
	if !page.HasMore {
		// Caught up: the checkpoint moves to the newest sequence number, so a device whose
		// scope saw nothing still advances past changes it will never need.
		last = max(last, hi)
	}
	page.Checkpoint = feedKind(user.Role) + strconv.FormatInt(last, 10)
	return page, nil
}

// pullRows reads changes from a query of (seq, entity, id, present, version, deleted, data).
func pullRows(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]Change, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		var present, deleted int64 // 0 or 1; integers scan without database/sql's conversions
		var data []byte
		if err := rows.Scan(&c.Seq, &c.Entity, &c.ID, &present, &c.Version, &deleted, &data); err != nil {
			return nil, err
		}
		switch {
		case present == 0:
			c.Op = OpEvict
		case deleted != 0:
			c.Op = OpDelete
		default:
			c.Op, c.Record = OpUpsert, json.RawMessage(data)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// mergeBySeq merges two lists ordered by sequence number.
func mergeBySeq(a, b []Change) []Change {
	out := make([]Change, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Seq <= b[0].Seq {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// lastCommitted is the newest sequence number known committed (published by the writer).
func (e *Engine) lastCommitted() int64 { return e.Hub.Last() }

// Digest returns the number of records in user's scope and a hash over their entity, id
// and version, so a device can check that its local store holds exactly its scope.
func (e *Engine) Digest(ctx context.Context, user schema.Actor) (int64, string, error) {
	tx, err := e.db.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, "", err
	}
	defer tx.Rollback()
	h := sha256.New()
	var n int64
	var b []byte
	add := func(r digestRow) {
		b = append(append(append(append(b[:0], r.entity...), '\n'), r.id...), '\n')
		h.Write(append(strconv.AppendInt(b, r.version, 10), '\n'))
		n++
	}
	if user.Role == schema.RoleTechnician {
		// The user's feed and the shared one, each read in its key's order and merged: one
		// query over both sorts the whole scope. The order is bytes' (COLLATE BINARY), as
		// devices hash it, whatever a PostgreSQL database's locale.
		const q = `SELECT s.entity, s.id, r.version FROM scope s JOIN records r ON r.entity = s.entity AND r.id = s.id
			WHERE s.user_id = ? AND s.present = 1 AND r.deleted = 0 ORDER BY s.entity COLLATE BINARY, s.id COLLATE BINARY`
		var mine, shared []digestRow
		collect := func(list *[]digestRow) func(digestRow) { return func(r digestRow) { *list = append(*list, r) } }
		if err := digestRows(ctx, tx, collect(&mine), q, user.UserID); err != nil {
			return 0, "", err
		}
		if err := digestRows(ctx, tx, collect(&shared), q, "*"); err != nil {
			return 0, "", err
		}
		for _, r := range mergeDigestRows(mine, shared) {
			add(r)
		}
	} else if err := digestRows(ctx, tx, add, `SELECT entity, id, version FROM records WHERE deleted = 0 ORDER BY entity COLLATE BINARY, id COLLATE BINARY`); err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// digestRow is one record of a digest.
type digestRow struct {
	entity, id string
	version    int64
}

// digestRows hands each row of query (entity, id, version) to each.
func digestRows(ctx context.Context, tx *sql.Tx, each func(digestRow), query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r digestRow
		if err := rows.Scan(&r.entity, &r.id, &r.version); err != nil {
			return err
		}
		each(r)
	}
	return rows.Err()
}

// mergeDigestRows merges two lists ordered by entity, then id.
func mergeDigestRows(a, b []digestRow) []digestRow {
	out := make([]digestRow, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if c := strings.Compare(a[0].entity, b[0].entity); c < 0 || c == 0 && a[0].id <= b[0].id {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// Run executes fn inside the writer's transaction (for maintenance such as Sweep) and
// publishes what it changed.
func (e *Engine) run(ctx context.Context, fn func(w *wtx) error) error {
	r := &applyReq{ctx: ctx, done: make(chan struct{}), fn: fn}
	select {
	case e.reqs <- r:
	case <-e.closed:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-r.done
	return r.err
}

// Sweep evicts tickets whose time in a scope ran out (completed or cancelled more than
// completed_scope_days ago) and prunes what is older than offline_days: scope departures
// and remembered mutation results. Checkpoints older than what was pruned expire. It reads
// outside the writer and writes a batch of sweepBatch tickets per writer transaction, so
// that the first syncs after a start do not wait behind it.
func (e *Engine) Sweep(ctx context.Context) error {
	_, err := e.sweep(ctx)
	return err
}

// sweep is Sweep, saying also what it read.
func (e *Engine) sweep(ctx context.Context) (scanStats, error) {
	now := e.Now()
	days := e.Settings().Int("completed_scope_days")
	leaving, err := e.leavingTickets(ctx, now, days)
	if err != nil {
		return scanStats{}, err
	}
	st := scanStats{read: len(leaving)}
	for i := 0; i < len(leaving); i += sweepBatch {
		batch := leaving[i:min(i+sweepBatch, len(leaving))]
		err := e.run(ctx, func(w *wtx) error {
			for _, g := range batch {
				// Judged again in the transaction that writes: schema.TicketHolders has the
				// last word.
				t, err := w.Get(schema.EntTicket, g[1])
				if err != nil {
					if _, ok := schema.AsError(err); ok {
						continue
					}
					return err
				}
				if slices.Contains(schema.TicketHolders(t, w.now, days), g[0]) || !w.inScope(g[0], schema.EntTicket, g[1]) {
					continue
				}
				if err := w.leaveTicket(g[0], t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return st, err
		}
		st.maxPerTx = max(st.maxPerTx, len(batch))
	}
	horizon := schema.Stamp(now.Add(-time.Duration(e.Settings().Int("offline_days")) * 24 * time.Hour))
	// The newest change older than the horizon, read backwards from the newest: outside the
	// writer, as it reads the days of history kept.
	var floor sql.NullInt64
	if err := e.db.R.QueryRowContext(ctx, `SELECT seq FROM changes WHERE at < ? ORDER BY seq DESC LIMIT 1`, horizon).Scan(&floor); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, err
	}
	return st, e.run(ctx, func(w *wtx) error {
		if floor.Valid {
			if _, err := w.tx.Exec(`DELETE FROM scope WHERE present = 0 AND seq <= ?`, floor.Int64); err != nil {
				return err
			}
			if _, err := w.tx.Exec(`INSERT INTO counters(name, value) VALUES ('prune_floor', ?)
				ON CONFLICT(name) DO UPDATE SET value = CASE WHEN excluded.value > counters.value THEN excluded.value ELSE counters.value END`, floor.Int64); err != nil {
				return err
			}
		}
		if _, err := w.tx.Exec(`DELETE FROM mutations WHERE at < ?`, horizon); err != nil {
			return err
		}
		return w.pruneDeviceClock()
	})
}

// leavingTickets lists the (user, ticket) pairs of the scopes whose time ran out at now: a
// closed ticket held by someone who is not its assignee, or whose completion (cancellation)
// is days or more ago (stamps compare as strings). Only those are read, not every closed
// ticket still held.
func (e *Engine) leavingTickets(ctx context.Context, now time.Time, days int64) ([][2]string, error) {
	cut := schema.Stamp(now.Add(-time.Duration(days) * 24 * time.Hour))
	rows, err := e.db.R.QueryContext(ctx, `SELECT s.user_id, s.id FROM scope s JOIN records r ON r.entity = 'ticket' AND r.id = s.id
		WHERE s.entity = 'ticket' AND s.present = 1 AND r.status IN ('completed', 'sheet_received', 'followed_up', 'closed', 'cancelled')
		AND (s.user_id <> COALESCE(r.assignee_id, '')
		  OR COALESCE(CASE r.status WHEN 'cancelled' THEN r.data ->> 'cancelled_at' ELSE r.data ->> 'completed_at' END, '') BETWEEN '0' AND ?)
		ORDER BY s.user_id, s.id`, cut)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var g [2]string
		if err := rows.Scan(&g[0], &g[1]); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// pruneDeviceClock keeps device_clock_keep_days of each device's clock history, and at most
// its newest device_clock_keep_rows readings.
func (w *wtx) pruneDeviceClock() error {
	s := w.Settings()
	cut := w.now.Add(-time.Duration(s.Int("device_clock_keep_days")) * 24 * time.Hour)
	if _, err := w.tx.Exec(`DELETE FROM device_clock WHERE at < ?`, schema.Stamp(cut)); err != nil {
		return err
	}
	_, err := w.tx.Exec(`DELETE FROM device_clock WHERE rowid IN (SELECT rowid FROM (
		SELECT rowid, ROW_NUMBER() OVER (PARTITION BY device ORDER BY at DESC, rowid DESC) AS n FROM device_clock) AS ranked WHERE n > ?)`,
		s.Int("device_clock_keep_rows"))
	return err
}
