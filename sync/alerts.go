package sync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"fieldsync/schema"
)

// Alerts (docs/alerts.md). Whatever raises an alert is a record written on the single write
// path: a ticket event (a dispatch, an escalation, a missed deadline), a new ticket reported
// from the field, a complaint, a returned sheet. The same transaction writes the messages
// into the outbox, one per channel and recipient, so that an alert exists exactly when its
// cause does; package notify delivers them.

// alertKind says which alert, if any, a write raises.
func alertKind(entity, op, action string, next schema.Doc) string {
	switch {
	case entity == schema.EntTicketEvent && op == "create":
		switch k := next.Str("kind"); k {
		case schema.AlertDeadlineWarning, schema.AlertDeadlineMissed:
			return k
		case "action":
			switch next.Str("action") {
			case "dispatch":
				return schema.AlertDispatched
			case "escalate":
				return schema.AlertEscalated
			}
		}
	case entity == schema.EntTicket && op == "create" && next.Str("status") == schema.StReported:
		return schema.AlertReportWaiting
	case entity == schema.EntComplaint && op == "create":
		return schema.AlertComplaint
	case entity == schema.EntSheet && op == "action" && action == schema.SheetReturn:
		return schema.AlertSheetReturned
	case entity == schema.EntSale && op == "action" && action == remindAction:
		return schema.AlertReceivableAging
	}
	return ""
}

// raiseAlerts writes the outbox rows for a write that raises an alert.
func (w *wtx) raiseAlerts(entity, op, action string, next schema.Doc) error {
	kind := alertKind(entity, op, action, next)
	if kind == "" {
		return nil
	}
	s := w.Settings()
	var chans []string
	for _, ch := range schema.AlertChannels {
		if schema.ChannelConfigured(s, ch) {
			chans = append(chans, ch)
		}
	}
	if len(chans) == 0 {
		return nil
	}
	f := schema.AlertFacts{Kind: kind}
	// own: the technician the event concerns, the only technician told of it.
	var own string
	if kind == schema.AlertReceivableAging {
		own, f.SaleID, f.OwedFen, f.Days = next.Str("technician_id"), next.Str("id"), schema.Owed(next), next.Int("reminded_days")
		if c, err := w.Get(schema.EntCustomer, next.Str("customer_id")); err == nil {
			f.Customer = c.Str("name")
		}
		if u, err := w.Get(schema.EntUser, own); err == nil {
			f.Who = u.Str("name")
		}
	} else {
		ticketID := next.Str("ticket_id")
		if entity == schema.EntTicket {
			ticketID = next.Str("id")
		}
		t, err := w.Get(schema.EntTicket, ticketID)
		if err != nil {
			return nil // nothing to tell of a ticket that is gone
		}
		f.TicketID, f.Number, f.Urgency = ticketID, t.Str("number"), t.Str("urgency")
		if c, err := w.Get(schema.EntCustomer, t.Str("customer_id")); err == nil {
			f.Customer = c.Str("name")
		}
		own = t.Str("assignee_id")
	}
	switch kind {
	case schema.AlertDeadlineWarning, schema.AlertDeadlineMissed:
		d, _ := next["details"].(map[string]any)
		dd := schema.Doc(d)
		f.Deadline, f.DueAt = dd.Str("deadline"), dd.Time("due_at")
	case schema.AlertReportWaiting:
		own = ""
		t, _ := w.Get(schema.EntTicket, f.TicketID)
		if u, err := w.Get(schema.EntUser, t.Str("reported_by")); err == nil {
			f.Who = u.Str("name")
		}
	case schema.AlertComplaint:
		own = ""
	case schema.AlertSheetReturned:
		own, f.Note = next.Str("technician_id"), next.Str("returned_reason")
	}
	users, err := w.alertUsers()
	if err != nil {
		return err
	}
	source := fmt.Sprintf("%s/%s/%d", entity, next.Str("id"), next.Int("version"))
	loc := s.Location()
	type group struct{ mentions, recipients []string }
	groups := map[string]*group{}
	for _, u := range users {
		if u.role == schema.RoleTechnician && u.id != own {
			continue
		}
		for _, ch := range u.prefs.Events[kind] {
			if !slices.Contains(chans, ch) {
				continue
			}
			if schema.GroupChannel(ch) {
				g := groups[ch]
				if g == nil {
					g = &group{mentions: []string{}}
					groups[ch] = g
				}
				g.recipients = append(g.recipients, u.id)
				if u.phone != "" {
					g.mentions = append(g.mentions, u.phone)
				}
				continue
			}
			target := u.phone
			if ch == schema.ChanEmail {
				target = u.email
			}
			if target == "" {
				continue
			}
			if err := w.outbox(source, f, ch, target, nil, []string{u.id}, schema.AlertMessage(f, u.prefs.Lang, loc)); err != nil {
				return err
			}
		}
	}
	for _, ch := range slices.Sorted(maps.Keys(groups)) {
		g := groups[ch]
		if err := w.outbox(source, f, ch, "", g.mentions, g.recipients, schema.AlertMessage(f, s.String("alert_lang"), loc)); err != nil {
			return err
		}
	}
	return nil
}

func (w *wtx) outbox(source string, f schema.AlertFacts, ch, target string, mentions, recipients []string, text string) error {
	if mentions == nil {
		mentions = []string{}
	}
	now := schema.Stamp(w.now)
	_, err := w.tx.Exec(`INSERT INTO outbox (source, kind, channel, target, mentions, recipients, text, facts, created_at, next_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		source, f.Kind, ch, target, schema.MustJSON(mentions), schema.MustJSON(recipients), text, schema.MustJSON(f), now, now)
	w.alerted = true
	return err
}

type alertUser struct {
	id, role, phone, email string
	prefs                  schema.AlertPrefs
}

// alertUsers returns the active users with their alert preferences.
func (w *wtx) alertUsers() ([]alertUser, error) {
	rows, err := w.tx.Query(`SELECT r.data, p.prefs FROM records r LEFT JOIN alert_prefs p ON p.user_id = r.id
		WHERE r.entity = 'user' AND r.deleted = 0 ORDER BY r.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []alertUser
	for rows.Next() {
		var b []byte
		var pb sql.NullString
		if err := rows.Scan(&b, &pb); err != nil {
			return nil, err
		}
		d, err := schema.DecodeDoc(b)
		if err != nil {
			return nil, err
		}
		if !d.Bool("active") {
			continue
		}
		u := alertUser{id: d.Str("id"), role: d.Str("role"), phone: d.Str("phone"), email: d.Str("email"), prefs: schema.DefaultAlertPrefs(d.Str("role"))}
		if pb.Valid {
			if p, err := schema.CheckAlertPrefs([]byte(pb.String)); err == nil {
				u.prefs = p
			}
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// AlertPrefs returns a user's alert preferences (the role's defaults until they set their
// own) and whether they are the defaults.
func (e *Engine) AlertPrefs(ctx context.Context, userID string) (schema.AlertPrefs, bool, error) {
	u, err := e.Get(ctx, schema.EntUser, userID)
	if err != nil {
		return schema.AlertPrefs{}, false, err
	}
	var b string
	err = e.db.R.QueryRowContext(ctx, `SELECT prefs FROM alert_prefs WHERE user_id = ?`, userID).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return schema.DefaultAlertPrefs(u.Str("role")), true, nil
	}
	if err != nil {
		return schema.AlertPrefs{}, false, err
	}
	p, err := schema.CheckAlertPrefs([]byte(b))
	return p, false, err
}

// SetAlertPrefs stores a user's alert preferences (checked by schema.CheckAlertPrefs).
func (e *Engine) SetAlertPrefs(ctx context.Context, userID string, p schema.AlertPrefs) error {
	return e.run(ctx, func(w *wtx) error {
		if ok, err := w.exists(schema.EntUser, userID); err != nil {
			return err
		} else if !ok {
			return schema.Errorf(schema.CodeNotFound, "no user with id %q", userID)
		}
		_, err := w.tx.Exec(`INSERT INTO alert_prefs (user_id, prefs, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET prefs = excluded.prefs, updated_at = excluded.updated_at`,
			userID, schema.MustJSON(p), schema.Stamp(w.now))
		return err
	})
}

// deadlineBatch is how many tickets the deadline watcher, and sweepBatch how many leaving
// tickets the sweep, handle in one writer transaction: between two batches the writer serves
// whatever else waits.
const deadlineBatch, sweepBatch = 100, 100

// scanStats says what a look of the deadline watcher or a sweep read (tickets) and the most
// tickets it handled in one writer transaction (the tests check the bounds).
type scanStats struct{ read, maxPerTx int }

// deadlineCandidates selects the tickets one look of the deadline watcher reads: those with
// an unmet deadline (the generated columns due_response and due_arrival, migration 0008)
// in (from, now], missed since the last look, or in (from+warning, now+warning], near
// since the last look; and those written since the last look (last_seq above its sequence
// number) with an unmet deadline at or before now+warning: a deadline moved, a ticket
// reopened. Each part reads an index, so an open backlog whose deadlines were recorded
// costs nothing.
const deadlineCandidates = `SELECT id FROM records WHERE due_response > ? AND due_response <= ?
	UNION SELECT id FROM records WHERE due_response > ? AND due_response <= ?
	UNION SELECT id FROM records WHERE due_arrival > ? AND due_arrival <= ?
	UNION SELECT id FROM records WHERE due_arrival > ? AND due_arrival <= ?
	UNION SELECT id FROM records WHERE last_seq > ? AND (due_response <= ? OR due_arrival <= ?)
	ORDER BY id`

// WatchDeadlines is one look of the deadline watcher: for every open ticket whose response
// deadline (not accepted) or arrival deadline (on-site, not arrived) came near or passed
// since the last look, at the engine's clock, it records a deadline_warning or
// deadline_missed ticket event, unless the ticket already has that event for that deadline.
// Where the last look ended (its time and the write position) is kept in the database
// (counters deadline_watch_at and deadline_watch_seq), so a deadline that passed while the
// server was down is recorded on the first look after start; the first look of all reads
// every deadline already near. Tickets are read and written a batch per writer transaction,
// each checking for the event in the transaction that writes it, so an event is recorded
// once however often the watcher runs, and across restarts; the end of the look is recorded
// with the last batch. A deadline already missed gets no warning. It returns how many events
// it recorded.
func (e *Engine) WatchDeadlines(ctx context.Context) (int, error) {
	n, _, err := e.watchDeadlines(ctx)
	return n, err
}

// watchDeadlines is WatchDeadlines, saying also what the look read.
func (e *Engine) watchDeadlines(ctx context.Context) (int, scanStats, error) {
	now := e.Now()
	warn := time.Duration(e.Settings().Int("deadline_warning_minutes")) * time.Minute
	ids, seq, err := e.deadlineCandidates(ctx, now, warn)
	if err != nil {
		return 0, scanStats{}, err
	}
	st := scanStats{read: len(ids)}
	n := 0
	for i := 0; i == 0 || i < len(ids); i += deadlineBatch {
		batch := ids[i:min(i+deadlineBatch, len(ids))]
		last := i+deadlineBatch >= len(ids)
		made := 0
		err := e.run(ctx, func(w *wtx) error {
			made = 0
			for _, id := range batch {
				t, err := w.Get(schema.EntTicket, id)
				if err != nil {
					if _, ok := schema.AsError(err); ok {
						continue // gone since it was selected
					}
					return err
				}
				for _, dl := range schema.PendingDeadlines(t) {
					kind := ""
					switch {
					case !now.Before(dl.Due):
						kind = schema.AlertDeadlineMissed
					case warn > 0 && !now.Before(dl.Due.Add(-warn)):
						kind = schema.AlertDeadlineWarning
					default:
						continue
					}
					ok, err := w.deadlineEvent(t, kind, dl, nil)
					if err != nil {
						return err
					}
					if ok {
						made++
					}
				}
			}
			if !last {
				return nil
			}
			_, err := w.tx.Exec(`INSERT INTO counters (name, value) VALUES ('deadline_watch_at', ?), ('deadline_watch_seq', ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, now.UnixMilli(), seq)
			return err
		})
		if err != nil {
			return n, st, err
		}
		n += made
		st.maxPerTx = max(st.maxPerTx, len(batch))
	}
	return n, st, nil
}

// deadlineCandidates reads, in one snapshot, where the last look ended and the tickets this
// look at now must read (deadlineCandidates); it returns them with the write position the
// snapshot holds, where this look ends.
func (e *Engine) deadlineCandidates(ctx context.Context, now time.Time, warn time.Duration) (ids []string, seq int64, err error) {
	tx, err := e.db.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var lastAt, lastSeq sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT value FROM counters WHERE name = 'deadline_watch_at'),
		(SELECT value FROM counters WHERE name = 'deadline_watch_seq'), seq FROM engine_state`).Scan(&lastAt, &lastSeq, &seq); err != nil {
		return nil, 0, err
	}
	// The first look of all reads every deadline up to now+warn ("" is below every stamp),
	// which already holds every ticket written before it.
	from, fromWarn, since := "", "", seq
	if lastAt.Valid {
		last := time.UnixMilli(lastAt.Int64)
		if last.After(now) {
			last = now // a clock set back: look again from now
		}
		from, fromWarn, since = schema.Stamp(last), schema.Stamp(last.Add(warn)), lastSeq.Int64
	}
	to, toWarn := schema.Stamp(now), schema.Stamp(now.Add(warn))
	rows, err := tx.QueryContext(ctx, deadlineCandidates, from, to, fromWarn, toWarn, from, to, fromWarn, toWarn, since, toWarn, toWarn)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, 0, err
		}
		ids = append(ids, id)
	}
	return ids, seq, rows.Err()
}

// deviceStepTime keeps, on ticket next, the phone's time of a step a device pushed
// (deviceAt, the mutation's at) and the phone's clock offset as it last reported it, for
// schema.StepTime. A time that is not RFC 3339 is not kept: the server's time counts.
func (w *wtx) deviceStepTime(actor schema.Actor, action string, next schema.Doc, deviceAt string) error {
	stamp, ok := schema.DeviceTimedSteps[action]
	if !ok || actor.DeviceID == "" {
		return nil
	}
	times := map[string]any{}
	if old, ok := next["device_times"].(map[string]any); ok {
		maps.Copy(times, old)
	}
	delete(times, stamp)
	if at, err := time.Parse(time.RFC3339Nano, deviceAt); err == nil {
		var offset sql.NullInt64
		if err := w.tx.QueryRow(`SELECT clock_offset_ms FROM devices WHERE id = ?`, actor.DeviceID).Scan(&offset); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		entry := map[string]any{"device_at": schema.Stamp(at), "offset_ms": nil}
		if offset.Valid {
			entry["offset_ms"] = schema.Num(offset.Int64)
		}
		times[stamp] = entry
	}
	next["device_times"] = times
	return nil
}

// lateStep records deadline_missed when ticket t's accept or arrive counts (schema.StepTime:
// the phone's time if credible, else the server's) after its deadline and the watcher has not
// recorded the miss: a step that arrived between two looks of the watcher, or while it was
// down. The event names why a phone time was not used (device_time_flag).
func (w *wtx) lateStep(action string, t schema.Doc) error {
	stamp, ok := schema.DeviceTimedSteps[action]
	if !ok {
		return nil
	}
	dl := schema.Deadline{Name: "response", Due: t.Time("due_response_at")}
	if action == "arrive" {
		dl = schema.Deadline{Name: "arrival", Due: t.Time("due_arrival_at")}
	}
	at, flag := schema.StepTime(t, stamp, w.Settings().Int("device_clock_tolerance_seconds"))
	if dl.Due.IsZero() || !at.After(dl.Due) {
		return nil
	}
	_, err := w.deadlineEvent(t, schema.AlertDeadlineMissed, dl, map[string]any{"step_at": schema.Stamp(at), "device_time_flag": flag})
	return err
}

// deadlineEvent records kind for deadline dl of ticket t unless it is already recorded;
// extra is added to the event's details.
func (w *wtx) deadlineEvent(t schema.Doc, kind string, dl schema.Deadline, extra map[string]any) (bool, error) {
	due := schema.Stamp(dl.Due)
	var have int
	if err := w.tx.QueryRow(`SELECT COUNT(*) FROM records WHERE entity = 'ticket_event' AND ticket_id = ? AND deleted = 0
		AND data ->> 'kind' = ? AND data -> 'details' ->> 'deadline' = ? AND data -> 'details' ->> 'due_at' = ?`,
		t.Str("id"), kind, dl.Name, due).Scan(&have); err != nil || have > 0 {
		return false, err
	}
	note := map[string]string{
		schema.AlertDeadlineMissed:  "%s deadline missed 超过%s时限",
		schema.AlertDeadlineWarning: "%s deadline near 即将到%s时限",
	}[kind]
	ev := schema.Doc{"ticket_id": t.Str("id"), "kind": kind, "actor_id": schema.System.UserID, "at": schema.Stamp(w.now),
		"note":    fmt.Sprintf(note, dl.Name, map[string]string{"response": "响应", "arrival": "到场"}[dl.Name]),
		"details": map[string]any{"deadline": dl.Name, "due_at": due, "status": t.Str("status"), "assignee_id": t["assignee_id"]}}
	maps.Copy(ev["details"].(map[string]any), extra)
	if _, err := w.create(schema.System, schema.EntTicketEvent, uuid.Must(uuid.NewV7()).String(), ev, "", nil); err != nil {
		return false, err
	}
	return true, nil
}

// remindAction is the write that records a receivable reminder on its sale.
const remindAction = "remind"

// WatchReceivables is one tick of the receivables watcher: every shipped sale still owed
// whose debt reached an ageing threshold (schema.ReceivableThresholds) its handler was not
// yet reminded of gets reminded_days set to that threshold, written by the system through
// the write path as the sale's action "remind"; that write raises the receivable_aging
// alert. The check and the write are one transaction, so each threshold is reminded once
// however often the watcher runs and across restarts. It returns how many it reminded.
func (e *Engine) WatchReceivables(ctx context.Context) (int, error) {
	n := 0
	err := e.run(ctx, func(w *wtx) error {
		n = 0
		// Only sales shipped at least the first threshold ago and still owed are read.
		first := schema.Stamp(w.now.Add(-time.Duration(schema.ReceivableThresholds[0]) * 24 * time.Hour))
		sales, err := queryDocs(ctx, w.tx, `SELECT data FROM records WHERE entity = ? AND deleted = 0 AND data ->> 'shipped_at' <= ?
			AND CAST(data ->> 'paid_fen' AS INTEGER) < CAST(data ->> 'total_fen' AS INTEGER) ORDER BY id`, schema.EntSale, first)
		if err != nil {
			return err
		}
		for _, cur := range sales {
			due := schema.ReminderDue(cur, w.now)
			if due == 0 {
				continue
			}
			next := cur.Clone()
			next["reminded_days"] = schema.Num(due)
			if _, err := w.write(schema.System, schema.EntSale, cur, next, "action", remindAction, nil); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
