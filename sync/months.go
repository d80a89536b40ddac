package sync

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"fieldsync/schema"
)

// The month-end facts (P7-P9). This file is the one place that reads the records a month is
// computed from: technicians, feedback sheets with their tickets, complaints and follow-up
// calls, as the fact types of package schema. The computation itself lives in package
// reports (a renderer's package, which sync must not import), so CompileMonth takes it as a
// function.

// MonthOutcome is what the computation hands back to be stored: the table (any value that
// encodes as JSON) and the ids that counted, which an approved month keeps as settled.
type MonthOutcome struct {
	Rows               any
	Totals             any
	Warnings           []string
	CountedSheetIDs    []string
	UpheldComplaintIDs []string
	MoneyIDs           []string // schema.CommissionKey, ExpenseKey, LiabilityKey of what counted
}

// MonthComputer computes a month's table from its facts (reports.ComputeMonth, adapted).
type MonthComputer func(schema.MonthInput) (MonthOutcome, error)

// querier is what the loader reads through: the writer's transaction when compiling, the
// read pool for a preview.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// monthLedger is what approved months settled: the months themselves, every sheet and
// complaint they listed, and those that counted. Records an approved month settled never
// move; those it never saw (or listed as not counting, and that count now) are late and go
// to the next open month.
type monthLedger struct {
	approved       map[string]bool
	listedSheets   map[string]bool
	countedSheets  map[string]bool
	listedCompl    map[string]bool
	upheldCompl    map[string]bool
	settledMoney   map[string]bool
	approvedMonths []string
}

func loadLedger(ctx context.Context, q querier) (*monthLedger, error) {
	l := &monthLedger{approved: map[string]bool{}, listedSheets: map[string]bool{}, countedSheets: map[string]bool{},
		listedCompl: map[string]bool{}, upheldCompl: map[string]bool{}, settledMoney: map[string]bool{}}
	docs, err := queryDocs(ctx, q, `SELECT data FROM records WHERE entity = ? AND deleted = 0 AND status = ?`, schema.EntMonthReport, schema.MonthApproved)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		l.approved[d.Str("month")] = true
		l.approvedMonths = append(l.approvedMonths, d.Str("month"))
		for _, set := range []struct {
			m   map[string]bool
			key string
		}{{l.listedSheets, "sheet_ids"}, {l.countedSheets, "counted_sheet_ids"}, {l.listedCompl, "complaint_ids"}, {l.upheldCompl, "upheld_complaint_ids"}, {l.settledMoney, "money_ids"}} {
			for _, id := range d.Strings(set.key) {
				set.m[id] = true
			}
		}
	}
	sort.Strings(l.approvedMonths)
	return l, nil
}

// nextOpen is the first month after own that is not approved: where a late record goes.
func (l *monthLedger) nextOpen(own string) string {
	m := schema.NextMonth(own)
	for l.approved[m] {
		m = schema.NextMonth(m)
	}
	return m
}

// place decides whether a record whose own month is own belongs to month, and whether it is
// late there. counted: an approved month counted it; listed: an approved month listed it;
// countsNow: it would count today.
func (l *monthLedger) place(month, own string, counted, listed, countsNow bool) (in, late bool) {
	if counted {
		return false, false // settled by an approved month: never again
	}
	if own == month {
		return !l.approved[own], false
	}
	if own > month || !l.approved[own] {
		return false, false // its own open month takes it
	}
	if listed && !countsNow {
		return false, false // already shown as not counting, and nothing changed
	}
	in = l.nextOpen(own) == month
	return in, in
}

// queryDocs runs a query whose one column is a record's JSON and decodes each.
func queryDocs(ctx context.Context, q querier, query string, args ...any) ([]schema.Doc, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schema.Doc
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		d, err := schema.DecodeDoc(b)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// loadMonth reads the facts of month (already validated, bounds [start, end)).
func loadMonth(ctx context.Context, q querier, s *schema.Settings, month string, start, end time.Time) (schema.MonthInput, *monthLedger, error) {
	loc := s.Location()
	f := schema.MonthInput{Month: month, Settings: schema.PaySettings{
		AllowancePerServiceFen:    s.Int("allowance_per_service_fen"),
		BonusRewardFen:            s.Int("bonus_reward_fen"),
		ComplaintPenaltyFen:       s.Int("complaint_penalty_fen"),
		LabourPerVisitFen:         s.Int("labour_per_visit_fen"),
		ComplaintForfeitThreshold: int(s.Int("complaint_forfeit_threshold")),
		CommissionPartsPct:        s.Int("commission_parts_pct"),
		CommissionSoftwarePct:     s.Int("commission_software_pct"),
		Location:                  loc,
	}, Technicians: []schema.MonthTechnician{}, Sheets: []schema.SheetFact{}, NoSheets: []schema.NoSheetFact{}, Complaints: []schema.ComplaintFact{}, Followups: []schema.FollowupFact{},
		Sales: []schema.SaleFact{}, Expenses: []schema.ExpenseFact{}, Liabilities: []schema.LiabilityFact{},
		Repairs: []schema.RepairFact{}, Unreported: []schema.UnreportedFact{}}
	ledger, err := loadLedger(ctx, q)
	if err != nil {
		return f, nil, err
	}
	endStamp := schema.Stamp(end)

	customers := map[string]string{}
	customerName := func(id string) (string, error) {
		if id == "" {
			return "", nil
		}
		if n, ok := customers[id]; ok {
			return n, nil
		}
		docs, err := queryDocs(ctx, q, `SELECT data FROM records WHERE entity = ? AND id = ?`, schema.EntCustomer, id)
		if err != nil {
			return "", err
		}
		n := ""
		if len(docs) > 0 {
			n = docs[0].Str("name")
		}
		customers[id] = n
		return n, nil
	}
	userNames := map[string]string{}
	userName := func(id string) (string, error) {
		if id == "" {
			return "", nil
		}
		if n, ok := userNames[id]; ok {
			return n, nil
		}
		docs, err := queryDocs(ctx, q, `SELECT data FROM records WHERE entity = ? AND id = ?`, schema.EntUser, id)
		if err != nil {
			return "", err
		}
		n := id
		if len(docs) > 0 {
			n = docs[0].Str("name")
		}
		userNames[id] = n
		return n, nil
	}
	used := map[string]bool{} // technicians with facts this month

	// Sheets, with their tickets. A sheet's own month is its ticket's completion month;
	// without one (the ticket is not completed), the month it was signed or made in, so it
	// is still listed as not counting.
	rows, err := q.QueryContext(ctx, `SELECT s.data, COALESCE(t.data, '{}') FROM records s
		LEFT JOIN records t ON t.entity = 'ticket' AND t.id = s.ticket_id
		WHERE s.entity = ? AND s.deleted = 0 AND COALESCE(s.status, '') != 'void'
		AND COALESCE(t.data ->> 'completed_at', s.data ->> 'signed_at', s.data ->> 'created_at') < ?
		ORDER BY COALESCE(s.data ->> 'signed_at', s.data ->> 'created_at'), s.id`, schema.EntSheet, endStamp)
	if err != nil {
		return f, nil, err
	}
	type pair struct{ s, t schema.Doc }
	var sheets []pair
	for rows.Next() {
		var sb, tb []byte
		if err := rows.Scan(&sb, &tb); err != nil {
			rows.Close()
			return f, nil, err
		}
		sd, err1 := schema.DecodeDoc(sb)
		td, err2 := schema.DecodeDoc(tb)
		if err := errors.Join(err1, err2); err != nil {
			rows.Close()
			return f, nil, err
		}
		sheets = append(sheets, pair{sd, td})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, nil, err
	}
	// A ticket counts once: tickets an approved month counted, through any of their
	// sheets, are settled, and their other sheets never count.
	settledTickets := map[string]bool{}
	for _, p := range sheets {
		if ledger.countedSheets[p.s.Str("id")] {
			settledTickets[p.s.Str("ticket_id")] = true
		}
	}
	// Tickets whose completion the office recorded on the technician's behalf.
	onBehalf := map[string]bool{}
	events, err := queryDocs(ctx, q, `SELECT data FROM records WHERE entity = ? AND deleted = 0
		AND data ->> 'action' = 'complete' AND COALESCE(data -> 'details' ->> 'on_behalf_of', '') != ''`, schema.EntTicketEvent)
	if err != nil {
		return f, nil, err
	}
	for _, ev := range events {
		onBehalf[ev.Str("ticket_id")] = true
	}
	for _, p := range sheets {
		sd, td := p.s, p.t
		completed := td.Time("completed_at")
		anchor := completed
		if anchor.IsZero() {
			anchor = sd.Time("signed_at")
		}
		if anchor.IsZero() {
			anchor = sd.Time("created_at")
		}
		fact := schema.SheetFact{
			SheetID: sd.Str("id"), TicketID: sd.Str("ticket_id"), TicketNumber: td.Str("number"),
			TechnicianID: cmp.Or(sd.Str("technician_id"), td.Str("completed_by"), td.Str("assignee_id")),
			// The ticket's mode pays, never the sheet's: the technician writes the sheet.
			ServiceMode: cmp.Or(td.Str("actual_service_mode"), td.Str("service_mode")),
			SheetMode:   sd.Str("service_mode"),
			CompletedAt: completed,
			Sealed:      sd.Str("seal") != "",
			Complete:    sd.Bool("complete"), Missing: sd.Strings("missing"),
			ExceptionAccepted: sd.Bool("exception_accepted"), ExceptionNote: cmp.Or(sd.Str("exception_note"), sd.Str("absent_reason")),
			Origin: cmp.Or(sd.Str("origin"), schema.OriginDevice), EnteredBy: sd.Str("entered_by_name"),
			Received: sd.Str("status") == "received",
			Rating:   int(sd.Int("rating")),
		}
		countsNow := fact.Sealed && (fact.Complete || fact.ExceptionAccepted) && fact.Received
		in, late := ledger.place(month, schema.MonthOf(anchor, loc), ledger.countedSheets[fact.SheetID], ledger.listedSheets[fact.SheetID], countsNow)
		if !in {
			continue
		}
		fact.Late = late
		tol := s.Int("device_clock_tolerance_seconds")
		var stepFlag string
		fact.RespondedOnTime, fact.ArrivedOnTime, stepFlag = schema.MetDeadlines(td, tol)
		fact.ClockFlag = schema.JoinFlags(schema.SheetClockFlag(sd, td, tol), stepFlag)
		fact.TicketSettled = settledTickets[fact.TicketID]
		if fact.Customer, err = customerName(td.Str("customer_id")); err != nil {
			return f, nil, err
		}
		fact.OnBehalf = onBehalf[fact.TicketID]
		if fact.ExceptionAccepted {
			if fact.ExceptionBy, err = userName(sd.Str("exception_by")); err != nil {
				return f, nil, err
			}
		}
		used[fact.TechnicianID] = true
		f.Sheets = append(f.Sheets, fact)
	}

	// Services a manager recorded as having no sheet, in the month their ticket was
	// completed: listed, never counted.
	noSheet, err := queryDocs(ctx, q, `SELECT data FROM records WHERE entity = ? AND deleted = 0
		AND COALESCE(data ->> 'no_sheet_reason', '') != '' AND data ->> 'completed_at' >= ? AND data ->> 'completed_at' < ?
		ORDER BY data ->> 'completed_at', id`, schema.EntTicket, schema.Stamp(start), endStamp)
	if err != nil {
		return f, nil, err
	}
	for _, td := range noSheet {
		fact := schema.NoSheetFact{TicketID: td.Str("id"), TicketNumber: td.Str("number"),
			TechnicianID: cmp.Or(td.Str("completed_by"), td.Str("assignee_id")), CompletedAt: td.Time("completed_at"), Reason: td.Str("no_sheet_reason")}
		if fact.Customer, err = customerName(td.Str("customer_id")); err != nil {
			return f, nil, err
		}
		if fact.By, err = userName(td.Str("no_sheet_by")); err != nil {
			return f, nil, err
		}
		used[fact.TechnicianID] = true
		f.NoSheets = append(f.NoSheets, fact)
	}

	// Complaints, by the time they were received.
	rows, err = q.QueryContext(ctx, `SELECT c.data, COALESCE(t.data, '{}') FROM records c
		LEFT JOIN records t ON t.entity = 'ticket' AND t.id = c.ticket_id
		WHERE c.entity = ? AND c.deleted = 0 AND c.data ->> 'received_at' < ? ORDER BY c.data ->> 'received_at', c.id`,
		schema.EntComplaint, endStamp)
	if err != nil {
		return f, nil, err
	}
	for rows.Next() {
		var cb, tb []byte
		if err := rows.Scan(&cb, &tb); err != nil {
			rows.Close()
			return f, nil, err
		}
		cd, err1 := schema.DecodeDoc(cb)
		td, err2 := schema.DecodeDoc(tb)
		if err := errors.Join(err1, err2); err != nil {
			rows.Close()
			return f, nil, err
		}
		id := cd.Str("id")
		in, late := ledger.place(month, schema.MonthOf(cd.Time("received_at"), loc), ledger.upheldCompl[id], ledger.listedCompl[id], cd.Str("status") == "upheld")
		if !in {
			continue
		}
		used[cd.Str("technician_id")] = true
		f.Complaints = append(f.Complaints, schema.ComplaintFact{ID: id, TicketID: cd.Str("ticket_id"), TicketNumber: td.Str("number"),
			TechnicianID: cd.Str("technician_id"), Description: cd.Str("description"), Status: cd.Str("status"),
			ReceivedAt: cd.Time("received_at"), Late: late})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, nil, err
	}

	// Follow-up calls made in the month (they tally the manager's work; no pay hangs on them).
	calls, err := queryDocs(ctx, q, `SELECT data FROM records WHERE entity = ? AND deleted = 0
		AND data ->> 'called_at' >= ? AND data ->> 'called_at' < ? ORDER BY data ->> 'called_at', id`,
		schema.EntFollowup, schema.Stamp(start), endStamp)
	if err != nil {
		return f, nil, err
	}
	for _, d := range calls {
		if d.Str("technician_id") == "" {
			continue // a call about a ticket nobody served
		}
		used[d.Str("technician_id")] = true
		f.Followups = append(f.Followups, schema.FollowupFact{ID: d.Str("id"), TicketID: d.Str("ticket_id"),
			TechnicianID: d.Str("technician_id"), Outcome: d.Str("outcome"), CalledAt: d.Time("called_at")})
	}

	// Money: sales collected, expenses reimbursed and liabilities charged, each in the month
	// its server stamp falls in; one an approved month did not settle goes to the next open
	// month, late. A parts sale without its cost is listed but settles nothing until the cost
	// is added.
	money := func(entity, stamp string) ([]schema.Doc, error) {
		return queryDocs(ctx, q, `SELECT data FROM records WHERE entity = ? AND deleted = 0 AND data ->> ? < ? ORDER BY data ->> ?, id`,
			entity, stamp, endStamp, stamp)
	}
	placeMoney := func(key string, at time.Time, countsNow bool) (bool, bool) {
		return ledger.place(month, schema.MonthOf(at, loc), ledger.settledMoney[key], false, countsNow)
	}
	docs, err := money(schema.EntSale, "collected_at")
	if err != nil {
		return f, nil, err
	}
	for _, d := range docs {
		if in, late := placeMoney(schema.CommissionKey(d.Str("id")), d.Time("collected_at"), d.Str("kind") == "software" || d.Int("cost_fen") > 0); in {
			used[d.Str("technician_id")] = true
			f.Sales = append(f.Sales, schema.SaleFact{ID: d.Str("id"), Kind: d.Str("kind"), TechnicianID: d.Str("technician_id"),
				TotalFen: d.Int("total_fen"), CostFen: d.Int("cost_fen"), CollectedAt: d.Time("collected_at"), Late: late})
		}
	}
	if docs, err = money(schema.EntExpense, "reimbursed_at"); err != nil {
		return f, nil, err
	}
	for _, d := range docs {
		if in, late := placeMoney(schema.ExpenseKey(d.Str("id")), d.Time("reimbursed_at"), true); in {
			used[d.Str("technician_id")] = true
			f.Expenses = append(f.Expenses, schema.ExpenseFact{ID: d.Str("id"), TechnicianID: d.Str("technician_id"), Kind: d.Str("kind"),
				AmountFen: d.Int("amount_fen"), ApprovalID: d.Str("approval_id"), ReimbursedAt: d.Time("reimbursed_at"), Late: late})
		}
	}
	if docs, err = money(schema.EntSale, "liability_at"); err != nil {
		return f, nil, err
	}
	for _, d := range docs {
		if in, late := placeMoney(schema.LiabilityKey(d.Str("id")), d.Time("liability_at"), true); in {
			used[d.Str("technician_id")] = true
			f.Liabilities = append(f.Liabilities, schema.LiabilityFact{SaleID: d.Str("id"), TechnicianID: d.Str("technician_id"),
				SharePct: d.Int("liability_share_pct"), AmountFen: d.Int("liability_fen"), At: d.Time("liability_at"), Late: late})
		}
	}
	if docs, err = money(schema.EntRepair, "collected_at"); err != nil {
		return f, nil, err
	}
	for _, d := range docs {
		if in, late := placeMoney(schema.RepairKey(d.Str("id")), d.Time("collected_at"), true); in {
			used[d.Str("technician_id")] = true
			f.Repairs = append(f.Repairs, schema.RepairFact{ID: d.Str("id"), TechnicianID: d.Str("technician_id"), AssetID: d.Str("asset_id"),
				InWarranty: d.Bool("in_warranty"), FeeFen: d.Int("quote_fen"), CollectedAt: d.Time("collected_at"), Late: late})
		}
	}
	if docs, err = money(schema.EntUnreported, "recorded_at"); err != nil {
		return f, nil, err
	}
	for _, d := range docs {
		if in, late := placeMoney(schema.UnreportedKey(d.Str("id")), d.Time("recorded_at"), true); in {
			used[d.Str("technician_id")] = true
			f.Unreported = append(f.Unreported, schema.UnreportedFact{ID: d.Str("id"), TechnicianID: d.Str("technician_id"), ComplaintID: d.Str("complaint_id"),
				AmountFen: d.Int("amount_fen"), PenaltyFen: d.Int("penalty_fen"), At: d.Time("recorded_at"), Late: late})
		}
	}

	// Technicians: every active one (a month without work still shows, and earns the
	// no-complaint reward), and inactive ones who have facts this month.
	users, err := queryDocs(ctx, q, `SELECT data FROM records WHERE entity = ? AND deleted = 0 AND data ->> 'role' = ? ORDER BY id`,
		schema.EntUser, schema.RoleTechnician)
	if err != nil {
		return f, nil, err
	}
	for _, u := range users {
		if !u.Bool("active") && !used[u.Str("id")] {
			continue
		}
		// The facts in force on the month's first day hold for the whole month (docs/month-end.md).
		first := start.In(s.Location()).Format(time.DateOnly)
		probation, dedicated := schema.EmploymentOn(u, first)
		f.Technicians = append(f.Technicians, schema.MonthTechnician{ID: u.Str("id"), Name: u.Str("name"),
			Probation: probation, Dedicated: dedicated, BaseSalaryFen: schema.BaseSalaryOn(u, first)})
	}
	return f, ledger, nil
}

// monthBounds validates a month against the settings' time zone and the engine's clock.
func (e *Engine) monthBounds(month string) (time.Time, time.Time, error) {
	return schema.ParseMonth(month, e.Settings().Location(), e.Now())
}

// MonthFactsPreview reads the facts of a month as they stand now, without storing anything
// (for a report of a month nobody compiled yet).
func (e *Engine) MonthFactsPreview(ctx context.Context, month string) (schema.MonthInput, error) {
	start, end, err := e.monthBounds(month)
	if err != nil {
		return schema.MonthInput{}, err
	}
	f, _, err := loadMonth(ctx, e.db.R, e.Settings(), month, start, end)
	return f, err
}

// CompileMonth compiles month's statistics table from the records, by compute, and stores
// it as the month's report in draft, replacing an earlier draft; the step joins the trail.
// Loading, computing and storing happen in one write transaction, so the facts cannot move
// underneath, and a month approved meanwhile is never overwritten.
func (e *Engine) CompileMonth(ctx context.Context, actor schema.Actor, month string, compute MonthComputer) (schema.Doc, error) {
	start, end, err := e.monthBounds(month)
	if err != nil {
		return nil, err
	}
	var out schema.Doc
	err = e.run(ctx, func(w *wtx) error {
		cur, _, err := w.get(schema.EntMonthReport, month)
		if se, ok := schema.AsError(err); ok && se.Code == schema.CodeNotFound {
			cur, err = nil, nil
		}
		if err != nil {
			return err
		}
		if err := schema.CanCompile(actor, month, cur); err != nil {
			return err
		}
		facts, _, err := loadMonth(ctx, w.tx, w.Settings(), month, start, end)
		if err != nil {
			return fmt.Errorf("load month %s: %w", month, err)
		}
		res, err := compute(facts)
		if err != nil {
			return err
		}
		sheetIDs := make([]string, 0, len(facts.Sheets))
		for _, s := range facts.Sheets {
			sheetIDs = append(sheetIDs, s.SheetID)
		}
		complaintIDs := make([]string, 0, len(facts.Complaints))
		for _, c := range facts.Complaints {
			complaintIDs = append(complaintIDs, c.ID)
		}
		fields := schema.Doc{
			"month": month, "status": schema.MonthDraft,
			"rows": res.Rows, "totals": res.Totals, "warnings": nonNil(res.Warnings),
			"sheet_ids": sheetIDs, "counted_sheet_ids": nonNil(res.CountedSheetIDs),
			"complaint_ids": complaintIDs, "upheld_complaint_ids": nonNil(res.UpheldComplaintIDs),
			"money_ids":   nonNil(res.MoneyIDs),
			"compiled_at": schema.Stamp(w.now), "compiled_by": actor.UserID,
			"reviewed_at": nil, "reviewed_by": nil,
		}
		// Round-trip through JSON so the stored record and the answer hold plain JSON values.
		fields, err = schema.DecodeDoc(schema.MustJSON(fields))
		if err != nil {
			return err
		}
		var trail []any
		if cur != nil {
			trail, _ = cur["trail"].([]any)
		}
		step, _ := schema.DecodeDoc(schema.MustJSON(schema.TrailStep(schema.MonthCompile, actor, w.now, "")))
		fields["trail"] = append(append([]any{}, trail...), map[string]any(step))
		if cur == nil {
			out, err = w.create(actor, schema.EntMonthReport, month, fields, "", nil)
			return err
		}
		next := cur.Clone()
		for k, v := range fields {
			next[k] = v
		}
		out, err = w.write(actor, schema.EntMonthReport, cur, next, "action", schema.MonthCompile, nil)
		return err
	})
	return out, err
}

// StepMonth takes a review, return or approve step on a compiled month (schema.MonthStep
// holds the rules), recording who took it, when, and the comment.
func (e *Engine) StepMonth(ctx context.Context, actor schema.Actor, month, action, comment string) (schema.Doc, error) {
	if _, _, err := e.monthBounds(month); err != nil {
		return nil, err
	}
	var out schema.Doc
	err := e.run(ctx, func(w *wtx) error {
		cur, _, err := w.get(schema.EntMonthReport, month)
		if se, ok := schema.AsError(err); ok && se.Code == schema.CodeNotFound {
			cur, err = nil, nil
		}
		if err != nil {
			return err
		}
		next, err := schema.MonthStep(actor, month, cur, action, comment, w.now)
		if err != nil {
			return err
		}
		out, err = w.write(actor, schema.EntMonthReport, cur, next, "action", action, nil)
		return err
	})
	return out, err
}

// MonthReport returns a compiled month's report, or not_found naming the month.
func (e *Engine) MonthReport(ctx context.Context, month string) (schema.Doc, error) {
	if _, _, err := e.monthBounds(month); err != nil {
		return nil, err
	}
	d, err := e.Get(ctx, schema.EntMonthReport, month)
	if se, ok := schema.AsError(err); ok && se.Code == schema.CodeNotFound {
		return nil, schema.FieldError(schema.CodeNotFound, "month", "month %s has not been compiled yet (POST /api/v1/months/%s/compile)", month, month)
	}
	return d, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
