package sync

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"fieldsync/schema"
)

// Get reads one record (with its version) from a committed snapshot.
func (e *Engine) Get(ctx context.Context, entity, id string) (schema.Doc, error) {
	var b []byte
	var deleted bool
	err := e.db.R.QueryRowContext(ctx, `SELECT data, deleted FROM records WHERE entity = ? AND id = ?`, entity, id).Scan(&b, &deleted)
	if errors.Is(err, sql.ErrNoRows) || err == nil && deleted {
		return nil, schema.Errorf(schema.CodeNotFound, "no %s with id %q", entity, id)
	}
	if err != nil {
		return nil, err
	}
	return schema.DecodeDoc(b)
}

// Query selects records of one entity. Where is an SQL condition over the records table's
// columns (entity, id, data, status, assignee_id, customer_id, ticket_id, technician_id,
// serial) with ? placeholders filled from Args; it is written by this program, never by a
// client.
type Query struct {
	Entity string
	Where  []string
	Args   []any
	Order  string // default: id
	Limit  int
	Offset int
}

// List runs q and returns the matching records.
func (e *Engine) List(ctx context.Context, q Query) ([]schema.Doc, error) {
	sqlText := `SELECT data FROM records WHERE entity = ? AND deleted = 0`
	args := []any{q.Entity}
	for _, w := range q.Where {
		sqlText += " AND (" + w + ")"
	}
	args = append(args, q.Args...)
	order := q.Order
	if order == "" {
		order = "id"
	}
	sqlText += " ORDER BY " + order
	if q.Limit > 0 {
		sqlText += " LIMIT ? OFFSET ?"
		args = append(args, q.Limit, q.Offset)
	}
	out, err := queryDocs(ctx, e.db.R, sqlText, args...)
	if out == nil && err == nil {
		out = []schema.Doc{} // an empty list, never null, in JSON answers
	}
	return out, err
}

// Count counts the records matching q (ignoring its limit).
func (e *Engine) Count(ctx context.Context, q Query) (int, error) {
	sqlText := `SELECT COUNT(*) FROM records WHERE entity = ? AND deleted = 0`
	for _, w := range q.Where {
		sqlText += " AND (" + w + ")"
	}
	var n int
	err := e.db.R.QueryRowContext(ctx, sqlText, append([]any{q.Entity}, q.Args...)...).Scan(&n)
	return n, err
}

// HistoryEntry is one change log entry.
type HistoryEntry struct {
	Seq       int64           `json:"seq"`
	Entity    string          `json:"entity"`
	ID        string          `json:"id"`
	Version   int64           `json:"version"`
	Op        string          `json:"op"`
	Action    string          `json:"action,omitempty"`
	ActorID   string          `json:"actor_id"`
	DeviceID  string          `json:"device_id,omitempty"`
	At        string          `json:"at"`
	Fields    json.RawMessage `json:"fields"`
	Conflicts json.RawMessage `json:"conflicts,omitempty"`
}

// History returns the change log of one record, oldest first.
func (e *Engine) History(ctx context.Context, entity, id string) ([]HistoryEntry, error) {
	return e.history(ctx, `WHERE entity = ? AND id = ? ORDER BY seq`, entity, id)
}

// TicketHistory returns the change log of a ticket and of its events, complaints,
// follow-ups and sheets, oldest first: everything that happened to it.
func (e *Engine) TicketHistory(ctx context.Context, id string) ([]HistoryEntry, error) {
	return e.history(ctx, `WHERE (entity = 'ticket' AND id = ?) OR (entity IN ('ticket_event', 'complaint', 'followup', 'feedback_sheet')
		AND id IN (SELECT id FROM records WHERE ticket_id = ?)) ORDER BY seq`, id, id)
}

// SettingsHistory returns the change log of the settings, newest first: who changed which
// setting, when, from what to what (fields.value is [old, new]). key "" is every setting.
func (e *Engine) SettingsHistory(ctx context.Context, key string, limit, offset int) ([]HistoryEntry, error) {
	return e.history(ctx, `WHERE entity = 'setting' AND (? = '' OR id = ?) ORDER BY seq DESC LIMIT ? OFFSET ?`, key, key, limit, offset)
}

func (e *Engine) history(ctx context.Context, where string, args ...any) ([]HistoryEntry, error) {
	rows, err := e.db.R.QueryContext(ctx, `SELECT seq, entity, id, version, op, action, actor_id, device_id, at, fields, conflicts FROM changes `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []HistoryEntry{}
	for rows.Next() {
		var h HistoryEntry
		var f, c []byte
		if err := rows.Scan(&h.Seq, &h.Entity, &h.ID, &h.Version, &h.Op, &h.Action, &h.ActorID, &h.DeviceID, &h.At, &f, &c); err != nil {
			return nil, err
		}
		h.Fields = f
		if s := strings.TrimSpace(string(c)); s != "{}" && s != "" {
			h.Conflicts = c
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Users returns every user record with its username.
func (e *Engine) Users(ctx context.Context) ([]schema.Doc, error) {
	return e.List(ctx, Query{Entity: schema.EntUser, Order: "data ->> 'username'"})
}

// UserByName finds a user record by username.
func (e *Engine) UserByName(ctx context.Context, username string) (schema.Doc, error) {
	var id string
	err := e.db.R.QueryRowContext(ctx, `SELECT user_id FROM credentials WHERE username = ?`, username).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, schema.FieldError(schema.CodeNotFound, "username", "no user %q", username)
	}
	if err != nil {
		return nil, err
	}
	return e.Get(ctx, schema.EntUser, id)
}

// BlobInScope reports whether a blob is referenced by a record in the actor's scope.
func (e *Engine) BlobInScope(ctx context.Context, actor schema.Actor, sum string) (bool, error) {
	var n int
	err := e.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM scope s JOIN records r ON r.entity = s.entity AND r.id = s.id
		WHERE s.user_id = ? AND s.present = 1 AND s.entity = 'feedback_sheet'
		AND ? IN (r.data ->> 'signature_blob', r.data ->> 'stamp_blob', r.data ->> 'technician_signature_blob')`, actor.UserID, sum).Scan(&n)
	return n > 0, err
}

// ChangeRef names one committed change without its content: what an office console needs
// to know which of the lists and records it shows to read again. TicketID is the ticket a
// child record (event, sheet, complaint, follow-up) belongs to.
type ChangeRef struct {
	Seq      int64  `json:"seq"`
	Entity   string `json:"entity"`
	ID       string `json:"id"`
	Op       string `json:"op"`
	Action   string `json:"action,omitempty"`
	TicketID string `json:"ticket_id,omitempty"`
}

// Changed lists at most limit changes committed after seq, oldest first, and whether more
// follow. It is the office's feed: every record, no scope.
func (e *Engine) Changed(ctx context.Context, since int64, limit int) (refs []ChangeRef, more bool, err error) {
	rows, err := e.db.R.QueryContext(ctx, `SELECT c.seq, c.entity, c.id, c.op, c.action,
		COALESCE(CASE WHEN c.entity = 'ticket' THEN c.id ELSE r.ticket_id END, '')
		FROM changes c LEFT JOIN records r ON r.entity = c.entity AND r.id = c.id
		WHERE c.seq > ? ORDER BY c.seq LIMIT ?`, since, limit+1)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	refs = []ChangeRef{}
	for rows.Next() {
		var r ChangeRef
		if err := rows.Scan(&r.Seq, &r.Entity, &r.ID, &r.Op, &r.Action, &r.TicketID); err != nil {
			return nil, false, err
		}
		refs = append(refs, r)
	}
	if len(refs) > limit {
		return refs[:limit], true, rows.Err()
	}
	return refs, false, rows.Err()
}
