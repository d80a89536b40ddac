package sync

import (
	"context"
	"slices"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
)

func TestMonthLedgerPlace(t *testing.T) {
	l := &monthLedger{approved: map[string]bool{"2026-09": true, "2026-10": true}}
	for _, tc := range []struct {
		name                       string
		month, own                 string
		counted, listed, countsNow bool
		in, late                   bool
	}{
		{"own open month", "2026-11", "2026-11", false, false, true, true, false},
		{"a later month's record", "2026-11", "2026-12", false, false, true, false, false},
		{"an earlier open month keeps its own", "2026-12", "2026-11", false, false, true, false, false},
		{"arrived after its month was approved", "2026-11", "2026-10", false, false, true, true, true},
		{"late skips approved months to the next open one", "2026-11", "2026-09", false, false, true, true, true},
		{"late goes to the next open month only", "2026-12", "2026-10", false, false, true, false, false},
		{"settled by an approved month", "2026-11", "2026-10", true, true, true, false, false},
		{"listed as not counting, still not counting", "2026-11", "2026-10", false, true, false, false, false},
		{"listed as not counting, counts now", "2026-11", "2026-10", false, true, true, true, true},
		{"never seen, not counting: listed late", "2026-11", "2026-10", false, false, false, true, true},
	} {
		in, late := l.place(tc.month, tc.own, tc.counted, tc.listed, tc.countsNow)
		if in != tc.in || late != tc.late {
			t.Errorf("%s: in %v late %v, want %v %v", tc.name, in, late, tc.in, tc.late)
		}
	}
}

// monthTestEngine is an engine on a fresh store with a settable clock.
func monthTestEngine(t *testing.T) (*Engine, *time.Time) {
	t.Helper()
	dir := t.TempDir()
	db, err := schema.OpenStore(context.Background(), dir, testpg.For(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); db.Close() })
	now := new(time.Time)
	e.Now = func() time.Time { return *now }
	return e, now
}

// put stores fixture records as they would stand after their own write paths.
func put(t *testing.T, e *Engine, entity string, docs ...schema.Doc) {
	t.Helper()
	err := e.run(context.Background(), func(w *wtx) error {
		for _, d := range docs {
			cur, _, err := w.get(entity, d.Str("id"))
			if err != nil {
				cur = nil
			}
			if _, err := w.write(schema.System, entity, cur, d, "create", "", nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCompileMonthLoadsTheMonthAndLateRecords(t *testing.T) {
	e, now := monthTestEngine(t)
	ctx := context.Background()
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := func(s string) string {
		tm, _ := time.ParseInLocation("2006-01-02 15:04", s, sh)
		return schema.Stamp(tm)
	}
	put(t, e, schema.EntUser,
		schema.Doc{"id": "tech", "name": "张伟", "role": "technician", "dedicated": true, "active": true},
		schema.Doc{"id": "gone", "name": "离职", "role": "technician", "dedicated": true, "active": false},
		schema.Doc{"id": "coord", "name": "王芳", "role": "coordinator", "active": true})
	put(t, e, schema.EntCustomer, schema.Doc{"id": "cu", "name": "华东精密"})
	put(t, e, schema.EntTicket,
		schema.Doc{"id": "ta", "number": "SR-A", "customer_id": "cu", "status": "completed", "completed_at": at("2026-11-10 10:00"), "assignee_id": "tech"},
		schema.Doc{"id": "tb", "number": "SR-B", "customer_id": "cu", "status": "completed", "completed_at": at("2026-12-01 00:30"), "assignee_id": "tech"},
		schema.Doc{"id": "tc", "number": "SR-C", "customer_id": "cu", "status": "completed", "completed_at": at("2026-11-30 23:30"), "assignee_id": "tech"})
	sheet := func(id, ticket string, received bool) schema.Doc {
		st := "signed"
		if received {
			st = "received"
		}
		return schema.Doc{"id": id, "ticket_id": ticket, "technician_id": "tech", "service_mode": "phone", "status": st,
			"complete": true, "missing": []any{}, "rating": schema.Num(5), "seal": "seal-" + id}
	}
	put(t, e, schema.EntSheet, sheet("sa", "ta", true), sheet("sb", "tb", true), sheet("sc", "tc", true), sheet("sx", "ta", false),
		schema.Doc{"id": "sv", "ticket_id": "ta", "technician_id": "tech", "status": "void", "seal": "s"})

	var got schema.MonthInput
	capture := func(f schema.MonthInput) (MonthOutcome, error) {
		got = f
		out := MonthOutcome{Rows: []any{}, Totals: map[string]any{}}
		for _, s := range f.Sheets {
			if s.Received {
				out.CountedSheetIDs = append(out.CountedSheetIDs, s.SheetID)
			}
		}
		return out, nil
	}
	sheetIDs := func() []string {
		var out []string
		for _, s := range got.Sheets {
			out = append(out, s.SheetID+map[bool]string{true: "(late)"}[s.Late])
		}
		slices.Sort(out)
		return out
	}

	*now = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	coord := schema.Actor{UserID: "coord", Role: schema.RoleCoordinator, Name: "王芳"}
	if _, err := e.CompileMonth(ctx, coord, "2026-11", capture); err != nil {
		t.Fatal(err)
	}
	// sb was completed at 00:30 on 1 December in Shanghai: December's. The void sheet is
	// gone; the inactive technician without work has no row.
	if ids := sheetIDs(); !slices.Equal(ids, []string{"sa", "sc", "sx"}) {
		t.Errorf("November's sheets %v, want sa, sc, sx", ids)
	}
	if len(got.Technicians) != 1 || got.Technicians[0].ID != "tech" || !got.Technicians[0].Dedicated {
		t.Errorf("technicians %+v, want only the active one", got.Technicians)
	}
	if got.Sheets[0].TicketNumber != "SR-A" || got.Sheets[0].Customer != "华东精密" || got.Settings.AllowancePerServiceFen != 5000 {
		t.Errorf("sheet fact %+v, settings %+v", got.Sheets[0], got.Settings)
	}

	mgr := schema.Actor{UserID: "m", Role: schema.RoleManager, Name: "李强"}
	lead := schema.Actor{UserID: "l", Role: schema.RoleLeader, Name: "赵总"}
	if _, err := e.StepMonth(ctx, mgr, "2026-11", "review", ""); err != nil {
		t.Fatal(err)
	}
	approved, err := e.StepMonth(ctx, lead, "2026-11", "approve", "")
	if err != nil {
		t.Fatal(err)
	}
	if approved.Str("status") != "approved" || approved.Str("approved_by") != "l" || !slices.Equal(approved.Strings("counted_sheet_ids"), []string{"sa", "sc"}) {
		t.Errorf("approved month: %v", approved)
	}

	// After approval: a new sheet for November (sd), sx received at last, a complaint
	// received in November.
	put(t, e, schema.EntSheet, sheet("sd", "ta", true), sheet("sx", "ta", true))
	put(t, e, schema.EntComplaint, schema.Doc{"id": "cn", "ticket_id": "ta", "technician_id": "tech", "status": "upheld",
		"description": "迟到", "received_at": at("2026-11-20 09:00")})
	if _, err := e.CompileMonth(ctx, coord, "2026-11", capture); schema.ErrorCode(err) != schema.CodeInvalidTransition {
		t.Errorf("compiling the approved month: %v, want invalid_transition", err)
	}
	if _, err := e.CompileMonth(ctx, coord, "2026-12", capture); err != nil {
		t.Fatal(err)
	}
	if ids := sheetIDs(); !slices.Equal(ids, []string{"sb", "sd(late)", "sx(late)"}) {
		t.Errorf("December's sheets %v, want sb, and sd and sx late", ids)
	}
	if len(got.Complaints) != 1 || got.Complaints[0].ID != "cn" || !got.Complaints[0].Late {
		t.Errorf("December's complaints %+v, want cn, late", got.Complaints)
	}
	if _, err := e.CompileMonth(ctx, coord, "2027-01", capture); schema.ErrorCode(err) != schema.CodeValidation {
		t.Errorf("a future month: %v, want validation", err)
	}
	if _, err := e.MonthReport(ctx, "2026-10"); schema.ErrorCode(err) != schema.CodeNotFound {
		t.Errorf("a month never compiled: %v, want not_found", err)
	}
}
