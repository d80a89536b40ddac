package sync

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"fieldsync/schema"
)

// openTickets creates n tickets of urgency, each dispatched to the technician, at the
// world's clock, in one batch; it returns their ids.
func (w *alertWorld) openTickets(prefix string, n int, urgency string) []string {
	w.t.Helper()
	var ms []Mutation
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		ids = append(ids, id)
		ms = append(ms,
			Mutation{Entity: schema.EntTicket, ID: id, Op: "create", Fields: fields("customer_id", "cu", "urgency", urgency, "fault_symptoms", "报警灯常亮")},
			Mutation{Entity: schema.EntTicket, ID: id, Op: "action", Action: "dispatch", Fields: fields("technician_id", "tech")})
	}
	w.applyAll(alertCoord, ms)
	return ids
}

func (w *alertWorld) applyAll(actor schema.Actor, ms []Mutation) {
	w.t.Helper()
	res, err := w.e.Apply(context.Background(), actor, ms, Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != StatusApplied {
			w.t.Fatalf("%s %s %s: %s %s", ms[i].Op, ms[i].ID, ms[i].Action, r.Code, r.Message)
		}
	}
}

// An open backlog costs the deadline watcher nothing once its deadlines are recorded: a look
// reads only the tickets whose deadline it crosses (or that changed since the last look),
// and the writer is held for at most one batch of tickets at a time. Catching up after a
// restart reads only what crossed while the server was down.
func TestDeadlineWatcherReadsOnlyCrossedDeadlines(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)
	w := openAlertWorld(t, dir, t0)
	seedAlertWorld(t, w)
	backlog := 2*deadlineBatch + 30
	w.openTickets("old", backlog, "normal") // response due at t0+4h
	ctx := context.Background()
	tick := func(wantEvents, wantRead int) {
		t.Helper()
		n, st, err := w.e.watchDeadlines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != wantEvents || st.read != wantRead {
			t.Fatalf("at %s the watcher recorded %d events reading %d tickets, want %d events reading %d",
				w.now.Format(time.DateTime), n, st.read, wantEvents, wantRead)
		}
		if st.maxPerTx > deadlineBatch {
			t.Fatalf("at %s the watcher handled %d tickets in one writer transaction, want at most %d",
				w.now.Format(time.DateTime), st.maxPerTx, deadlineBatch)
		}
	}
	tick(0, 0)
	// The whole backlog misses its response deadline: all of it is read, a batch at a time.
	w.now = t0.Add(5 * time.Hour)
	tick(backlog, backlog)
	// Thirty seconds later nothing crossed: nothing is read, however large the backlog.
	w.now = w.now.Add(30 * time.Second)
	tick(0, 0)
	// A critical ticket (response within 30 minutes) is warned of and then missed; only it
	// is read.
	w.openTickets("new", 1, "critical")
	w.now = w.now.Add(30 * time.Second)
	tick(0, 0) // changed since the last look, but its deadline is not near yet
	w.now = w.now.Add(16 * time.Minute)
	tick(1, 1)
	w.now = w.now.Add(30 * time.Second)
	tick(0, 0)
	w.close()
	// Down while its response deadline passes: the first look after start reads it alone.
	w = openAlertWorld(t, dir, w.now.Add(20*time.Minute))
	defer w.close()
	tick(1, 1)
	tick(0, 0)

	// The candidates come from the deadline indexes, never from a scan of the records
	// (SQLite's plan; PostgreSQL's planner chooses by the table's size).
	if w.db.Postgres {
		return
	}
	rows, err := w.db.R.Query(`EXPLAIN QUERY PLAN `+deadlineCandidates, "", "", "", "", "", "", "", "", 0, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	for _, p := range plan {
		if strings.HasPrefix(p, "SCAN r") || strings.HasPrefix(p, "SCAN records") {
			t.Errorf("the watcher's query scans the records table:\n%s", strings.Join(plan, "\n"))
		}
	}
}

// The sweep reads only the tickets leaving a scope (closed longer ago than
// completed_scope_days), not every closed ticket still held, and removes them a batch per
// writer transaction, so that the first syncs after a start are not queued behind it.
func TestSweepReadsOnlyLeavingTicketsInBatches(t *testing.T) {
	t0 := time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)
	w := openAlertWorld(t, t.TempDir(), t0)
	defer w.close()
	seedAlertWorld(t, w)
	cancel := func(ids []string) {
		var ms []Mutation
		for _, id := range ids {
			ms = append(ms, Mutation{Entity: schema.EntTicket, ID: id, Op: "action", Action: "cancel", Fields: fields("reason", "客户撤销")})
		}
		w.applyAll(alertCoord, ms)
	}
	leaving := 2*sweepBatch + 30
	old := w.openTickets("old", leaving, "normal")
	cancel(old)
	w.now = t0.Add(31 * 24 * time.Hour) // completed_scope_days is 30
	recent := w.openTickets("recent", 40, "normal")
	cancel(recent)
	open := w.openTickets("open", 5, "normal")
	st, err := w.e.sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.read != leaving {
		t.Errorf("the sweep read %d tickets, want only the %d leaving", st.read, leaving)
	}
	if st.maxPerTx > sweepBatch {
		t.Errorf("the sweep removed %d tickets in one writer transaction, want at most %d", st.maxPerTx, sweepBatch)
	}
	held := map[string]bool{}
	rows, err := w.db.R.Query(`SELECT id FROM scope WHERE user_id = 'tech' AND entity = 'ticket' AND present = 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		rows.Scan(&id)
		held[id] = true
	}
	for _, id := range old {
		if held[id] {
			t.Fatalf("ticket %s, cancelled 31 days ago, is still in the technician's scope", id)
		}
	}
	for _, id := range append(recent, open...) {
		if !held[id] {
			t.Fatalf("ticket %s left the technician's scope too early", id)
		}
	}
}
