package reports

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Shanghai must load on machines without a zoneinfo database
)

// shanghai is the company's default time zone; month boundaries are cut in it.
func shanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// testSettings are the amounts every hand-checked figure below is computed
// from: allowance 50 yuan, reward 200 yuan, penalty 50 yuan per complaint,
// forfeit at 3 complaints, labour 80 yuan per on-site visit.
func testSettings(t testing.TB) PaySettings {
	return PaySettings{
		AllowancePerServiceFen:    5000,
		BonusRewardFen:            20000,
		ComplaintPenaltyFen:       5000,
		LabourPerVisitFen:         8000,
		ComplaintForfeitThreshold: 3,
		Location:                  shanghai(t),
	}
}

// midNovember is a completion time well inside November 2026 in Shanghai.
var midNovember = time.Date(2026, 11, 15, 2, 0, 0, 0, time.UTC)

// goodSheet is a sheet that meets every condition to count in November 2026.
func goodSheet(id, tech, mode string) SheetFact {
	return SheetFact{
		SheetID: id, TicketID: "tk-" + id, TicketNumber: "2026-11-" + id, TechnicianID: tech,
		Customer: "客户 " + id, ServiceMode: mode, CompletedAt: midNovember,
		Sealed: true, Complete: true, Received: true, Rating: 5,
	}
}

// modify returns a copy of s changed by f, to break one rule at a time.
func modify(s SheetFact, f func(*SheetFact)) SheetFact {
	f(&s)
	return s
}

// sheets returns n good on-site sheets for a technician.
func sheets(tech string, n int) []SheetFact {
	var out []SheetFact
	for i := range n {
		out = append(out, goodSheet(fmt.Sprintf("%s-s%d", tech, i), tech, ModeOnsite))
	}
	return out
}

// complaints returns n complaints with the given status against a technician.
func complaints(tech, status string, n int) []ComplaintFact {
	var out []ComplaintFact
	for i := range n {
		out = append(out, ComplaintFact{
			ID: fmt.Sprintf("%s-%s-c%d", tech, status, i), TechnicianID: tech, Status: status,
			TicketNumber: "2026-11-0001", ReceivedAt: midNovember,
		})
	}
	return out
}

// pay is the part of a row the policy's pay depends on, compared as a whole.
type pay struct {
	Counted, Excluded, Complaints int
	Eligible, Forfeited           bool
	Allowance, Bonus, Labour      int64
	Total                         int64
}

func payOf(r Row) pay {
	return pay{
		Counted: r.CountedServices, Excluded: r.ExcludedServices, Complaints: r.Complaints,
		Eligible: r.BonusEligible, Forfeited: r.BonusForfeited,
		Allowance: r.AllowanceFen, Bonus: r.BonusFen, Labour: r.LabourFen, Total: r.TotalFen,
	}
}

// onlyRow computes a month with one technician and returns that row.
func onlyRow(t *testing.T, in MonthInput) Row {
	t.Helper()
	res := ComputeMonth(in)
	if len(res.Rows) != 1 {
		t.Fatalf("got %d rows, want 1 (warnings %v)", len(res.Rows), res.Warnings)
	}
	return res.Rows[0]
}

func TestComputeMonthPay(t *testing.T) {
	dedicated := Technician{ID: "t1", Name: "张伟", Dedicated: true}
	upheld := func(n int) []ComplaintFact { return complaints("t1", ComplaintUpheld, n) }
	tests := []struct {
		name       string
		tech       Technician
		sheets     []SheetFact
		complaints []ComplaintFact
		noForfeit  bool // K=0 instead of the test settings' K=3
		want       pay
		wantNote   string // a note that must be present, "" for none
	}{
		{
			name: "no complaints: reward", tech: dedicated, sheets: sheets("t1", 2),
			// allowance 2 × 50 = 100 yuan, reward 200 yuan.
			want: pay{Counted: 2, Eligible: true, Allowance: 10000, Bonus: 20000, Total: 30000},
		},
		{
			name: "one upheld complaint: penalty, no reward", tech: dedicated, sheets: sheets("t1", 2), complaints: upheld(1),
			// 100 yuan allowance − 1 × 50 yuan penalty.
			want: pay{Counted: 2, Complaints: 1, Eligible: true, Allowance: 10000, Bonus: -5000, Total: 5000},
		},
		{
			name: "K-1 upheld complaints: penalties, not forfeited", tech: dedicated, sheets: sheets("t1", 2), complaints: upheld(2),
			// 100 − 2 × 50 = 0.
			want: pay{Counted: 2, Complaints: 2, Eligible: true, Allowance: 10000, Bonus: -10000, Total: 0},
		},
		{
			name: "K upheld complaints: forfeited, penalties still apply", tech: dedicated, sheets: sheets("t1", 2), complaints: upheld(3),
			// 100 − 3 × 50 = −50 yuan.
			want:     pay{Counted: 2, Complaints: 3, Eligible: true, Forfeited: true, Allowance: 10000, Bonus: -15000, Total: -5000},
			wantNote: "bonus forfeited: 3 upheld complaints, threshold 3; penalties still apply",
		},
		{
			name: "K+1 upheld complaints: forfeited", tech: dedicated, sheets: sheets("t1", 2), complaints: upheld(4),
			// 100 − 4 × 50 = −100 yuan.
			want:     pay{Counted: 2, Complaints: 4, Eligible: true, Forfeited: true, Allowance: 10000, Bonus: -20000, Total: -10000},
			wantNote: "bonus forfeited: 4 upheld complaints, threshold 3; penalties still apply",
		},
		{
			name: "K of 0 never forfeits", tech: dedicated, sheets: sheets("t1", 1), complaints: upheld(5), noForfeit: true,
			// 50 − 5 × 50 = −200 yuan.
			want: pay{Counted: 1, Complaints: 5, Eligible: true, Allowance: 5000, Bonus: -25000, Total: -20000},
		},
		{
			name: "dismissed and open complaints do not count", tech: dedicated, sheets: sheets("t1", 1),
			complaints: append(complaints("t1", ComplaintDismissed, 3), complaints("t1", ComplaintOpen, 1)...),
			// 50 yuan allowance + 200 yuan reward.
			want:     pay{Counted: 1, Eligible: true, Allowance: 5000, Bonus: 20000, Total: 25000},
			wantNote: "1 complaint(s) still open: not counted until upheld",
		},
		{
			name: "probation: allowance, but neither reward nor penalty",
			tech: Technician{ID: "t1", Name: "李娜", Dedicated: true, Probation: true}, sheets: sheets("t1", 3), complaints: upheld(3),
			// 3 × 50 = 150 yuan, no bonus.
			want:     pay{Counted: 3, Complaints: 3, Allowance: 15000, Total: 15000},
			wantNote: "on probation: no complaint bonus (no reward, no penalty)",
		},
		{
			name: "probation with no complaints: no reward either",
			tech: Technician{ID: "t1", Name: "李娜", Dedicated: true, Probation: true}, sheets: sheets("t1", 1),
			want:     pay{Counted: 1, Allowance: 5000, Total: 5000},
			wantNote: "on probation: no complaint bonus (no reward, no penalty)",
		},
		{
			name: "non-dedicated: labour per on-site visit only, no bonus",
			tech: Technician{ID: "t1", Name: "王芳"},
			sheets: []SheetFact{
				goodSheet("a", "t1", ModeOnsite), goodSheet("b", "t1", ModeOnsite),
				goodSheet("c", "t1", ModePhone), goodSheet("d", "t1", ModeOnline),
			},
			complaints: upheld(1),
			// 2 on-site visits × 80 yuan; phone and online earn nothing; no allowance, no penalty.
			want:     pay{Counted: 4, Complaints: 1, Labour: 16000, Total: 16000},
			wantNote: "not dedicated after-sales staff: labour fee for 2 on-site visit(s) instead of the allowance; no complaint bonus",
		},
		{
			name: "no activity: a row with the reward", tech: dedicated,
			want: pay{Eligible: true, Bonus: 20000, Total: 20000},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			settings := testSettings(t)
			if tc.noForfeit {
				settings.ComplaintForfeitThreshold = 0
			}
			row := onlyRow(t, MonthInput{
				Month: "2026-11", Settings: settings, Technicians: []Technician{tc.tech},
				Sheets: tc.sheets, Complaints: tc.complaints,
			})
			if got := payOf(row); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if tc.wantNote != "" && !contains(row.Notes, tc.wantNote) {
				t.Errorf("notes %q lack %q", row.Notes, tc.wantNote)
			}
			if tc.wantNote == "" && len(row.Notes) != 0 {
				t.Errorf("got notes %q, want none", row.Notes)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestComputeMonthSheetRules(t *testing.T) {
	loc := shanghai(t)
	with := func(f func(*SheetFact)) SheetFact { return modify(goodSheet("s1", "t1", ModeOnsite), f) }
	tests := []struct {
		name       string
		month      string
		sheet      SheetFact
		wantReason string // "" means the sheet counts
	}{
		{"a good sheet counts", "2026-11", goodSheet("s1", "t1", ModeOnsite), ""},
		{"unsealed sheet excluded", "2026-11", with(func(s *SheetFact) { s.Sealed = false }), "not signed"},
		{
			"incomplete sheet excluded with what is missing", "2026-11",
			with(func(s *SheetFact) { s.Complete, s.Missing = false, []string{"signature", "stamp"} }),
			"incomplete: missing signature, stamp",
		},
		{
			"accepted exception counts", "2026-11",
			with(func(s *SheetFact) { s.Complete, s.Missing, s.ExceptionAccepted = false, []string{"stamp"}, true }),
			"",
		},
		{"unreceived sheet excluded", "2026-11", with(func(s *SheetFact) { s.Received = false }), "not received by a coordinator"},
		{
			"every failed condition is listed", "2026-11",
			with(func(s *SheetFact) { s.Sealed, s.Received = false, false }),
			"not signed; not received by a coordinator",
		},
		{
			"late sheet from October counts in November", "2026-11",
			with(func(s *SheetFact) { s.CompletedAt, s.Late = time.Date(2026, 10, 20, 9, 0, 0, 0, loc), true }),
			"",
		},
		{
			"late sheet still needs a complete sheet", "2026-11",
			with(func(s *SheetFact) {
				s.CompletedAt, s.Late, s.Complete = time.Date(2026, 10, 20, 9, 0, 0, 0, loc), true, false
			}),
			"incomplete",
		},
		{
			"October sheet not marked late is outside the month", "2026-11",
			with(func(s *SheetFact) { s.CompletedAt = time.Date(2026, 10, 20, 9, 0, 0, 0, loc) }),
			"outside the month",
		},
		{"no completion time", "2026-11", with(func(s *SheetFact) { s.CompletedAt = time.Time{} }), "no completion time"},
		// 2026-11-30T16:30Z is 00:30 on 1 December in Shanghai.
		{
			"00:30 on 1 Dec Shanghai is outside November", "2026-11",
			with(func(s *SheetFact) { s.CompletedAt = time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC) }),
			"outside the month",
		},
		{
			"00:30 on 1 Dec Shanghai counts in December", "2026-12",
			with(func(s *SheetFact) { s.CompletedAt = time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC) }),
			"",
		},
		// 2026-11-30T15:30Z is 23:30 on 30 November in Shanghai.
		{
			"23:30 on 30 Nov Shanghai counts in November", "2026-11",
			with(func(s *SheetFact) { s.CompletedAt = time.Date(2026, 11, 30, 15, 30, 0, 0, time.UTC) }),
			"",
		},
		{
			"23:30 on 30 Nov Shanghai is outside December", "2026-12",
			with(func(s *SheetFact) { s.CompletedAt = time.Date(2026, 11, 30, 15, 30, 0, 0, time.UTC) }),
			"outside the month",
		},
		{
			"midnight opening the month is inside it", "2026-11",
			with(func(s *SheetFact) { s.CompletedAt = time.Date(2026, 11, 1, 0, 0, 0, 0, loc) }),
			"",
		},
		{
			"midnight closing the month is outside it", "2026-11",
			with(func(s *SheetFact) { s.CompletedAt = time.Date(2026, 12, 1, 0, 0, 0, 0, loc) }),
			"outside the month",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			row := onlyRow(t, MonthInput{
				Month: tc.month, Settings: testSettings(t),
				Technicians: []Technician{{ID: "t1", Name: "张伟", Dedicated: true}},
				Sheets:      []SheetFact{tc.sheet},
			})
			wantCounted, wantExcluded := []string{"s1"}, []Exclusion{}
			if tc.wantReason != "" {
				wantCounted = []string{}
				wantExcluded = []Exclusion{{SheetID: "s1", TicketNumber: "2026-11-s1", Reason: tc.wantReason}}
			}
			if !reflect.DeepEqual(row.Excluded, wantExcluded) {
				t.Errorf("excluded: got %+v, want %+v", row.Excluded, wantExcluded)
			}
			if !reflect.DeepEqual(row.CountedSheetIDs, wantCounted) {
				t.Errorf("counted: got %v, want %v", row.CountedSheetIDs, wantCounted)
			}
			// Allowance follows the count: 50 yuan per counted sheet.
			if got, want := row.AllowanceFen, int64(len(wantCounted))*5000; got != want {
				t.Errorf("allowance: got %d, want %d", got, want)
			}
		})
	}
}

func TestComputeMonthStatistics(t *testing.T) {
	in := MonthInput{
		Month: "2026-11", Settings: testSettings(t),
		Technicians: []Technician{{ID: "t1", Name: "张伟", Dedicated: true}},
		Sheets: []SheetFact{
			goodSheet("a", "t1", ModeOnsite),
			goodSheet("b", "t1", ModePhone),
			goodSheet("c", "t1", ModePhone),
			goodSheet("d", "t1", ModeOnline),
			modify(goodSheet("e", "t1", ModeOnline), func(s *SheetFact) { s.Received = false }), // excluded: not in the mix
		},
		Complaints: []ComplaintFact{
			{ID: "c1", TechnicianID: "t1", Status: ComplaintUpheld, TicketNumber: "N1", Description: "迟到"},
			{ID: "c2", TechnicianID: "t1", Status: ComplaintDismissed, TicketNumber: "N2"},
		},
		Followups: []FollowupFact{
			{ID: "f1", TechnicianID: "t1", Outcome: FollowupSatisfied},
			{ID: "f2", TechnicianID: "t1", Outcome: FollowupSatisfied},
			{ID: "f3", TechnicianID: "t1", Outcome: FollowupUnsatisfied},
			{ID: "f4", TechnicianID: "t1", Outcome: FollowupUnreachable},
		},
	}
	// Ratings 5, 4, 4, 0 (unrated): average of the rated three = 13/3 = 4.33.
	in.Sheets[1].Rating, in.Sheets[2].Rating, in.Sheets[3].Rating = 4, 4, 0

	row := onlyRow(t, in)
	if got, want := row.Modes, (ModeCounts{Onsite: 1, Phone: 2, Online: 1}); got != want {
		t.Errorf("modes: got %+v, want %+v", got, want)
	}
	if got, want := row.AverageRating, 4.33; got != want {
		t.Errorf("average rating: got %v, want %v", got, want)
	}
	if got, want := row.RatedServices, 3; got != want {
		t.Errorf("rated services: got %d, want %d", got, want)
	}
	if got, want := row.Followups, (FollowupCounts{Satisfied: 2, Unsatisfied: 1, Unreachable: 1}); got != want {
		t.Errorf("follow-ups: got %+v, want %+v", got, want)
	}
	if got, want := row.ComplaintIDs, []string{"c1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("complaint ids: got %v, want %v", got, want)
	}
	if got, want := len(row.ComplaintList), 2; got != want {
		t.Errorf("complaint list: got %d entries, want %d", got, want)
	}
	if got, want := row.CountedSheetIDs, []string{"a", "b", "c", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("counted: got %v, want %v", got, want)
	}
}

func TestComputeMonthNoRatingAverageIsZero(t *testing.T) {
	s := goodSheet("a", "t1", ModeOnsite)
	s.Rating = 0
	row := onlyRow(t, MonthInput{
		Month: "2026-11", Settings: testSettings(t),
		Technicians: []Technician{{ID: "t1", Name: "张伟", Dedicated: true}}, Sheets: []SheetFact{s},
	})
	if row.AverageRating != 0 || row.RatedServices != 0 {
		t.Errorf("got average %v over %d, want 0 over 0", row.AverageRating, row.RatedServices)
	}
}

func TestComputeMonthRowsAndTotals(t *testing.T) {
	in := MonthInput{
		Month: "2026-11", Settings: testSettings(t),
		Technicians: []Technician{
			{ID: "t3", Name: "王芳", Dedicated: true},
			{ID: "t2", Name: "王芳", Dedicated: true},
			{ID: "t4", Name: "李娜", Dedicated: true, Probation: true},
			{ID: "t5", Name: "Zhang Wei"},
		},
		Sheets: append(append(sheets("t2", 2), sheets("t4", 1)...),
			goodSheet("p", "t5", ModePhone), goodSheet("o", "t5", ModeOnsite),
			goodSheet("x", "ghost", ModeOnsite)),
		Complaints: append(complaints("t3", ComplaintUpheld, 1), complaints("nobody", ComplaintUpheld, 1)...),
	}
	res := ComputeMonth(in)

	var gotOrder []string
	for _, r := range res.Rows {
		gotOrder = append(gotOrder, r.Technician.ID)
	}
	// By name (byte order: Latin before CJK, 李 U+674E before 王 U+738B), then id.
	if want := []string{"t5", "t4", "t2", "t3"}; !reflect.DeepEqual(gotOrder, want) {
		t.Errorf("row order: got %v, want %v", gotOrder, want)
	}

	// t2: 2 × 50 + 200 = 300 yuan; t3: 0 − 50 = −50; t4 (probation): 50;
	// t5 (non-dedicated): 1 on-site × 80 = 80.
	want := Totals{
		Technicians: 4, CountedServices: 5, Complaints: 1,
		AllowanceFen: 10000 + 5000, BonusFen: 20000 - 5000, LabourFen: 8000,
		TotalFen: 30000 - 5000 + 5000 + 8000,
	}
	if got := res.Totals; got != want {
		t.Errorf("totals: got %+v\nwant %+v", got, want)
	}

	wantWarnings := []string{
		`sheet x: technician "ghost" is not in this month's list; left out`,
		`complaint nobody-upheld-c0: technician "nobody" is not in this month's list; left out`,
	}
	if !reflect.DeepEqual(res.Warnings, wantWarnings) {
		t.Errorf("warnings: got %q\nwant %q", res.Warnings, wantWarnings)
	}
}

func TestComputeMonthMalformedMonth(t *testing.T) {
	late := goodSheet("late", "t1", ModeOnsite)
	late.Late = true
	res := ComputeMonth(MonthInput{
		Month: "2026-13", Settings: testSettings(t),
		Technicians: []Technician{{ID: "t1", Name: "张伟", Dedicated: true}},
		Sheets:      []SheetFact{goodSheet("a", "t1", ModeOnsite), late},
	})
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "out of range") {
		t.Errorf("warnings: got %q, want one about the month", res.Warnings)
	}
	// Without bounds nothing can be placed in the month, except the late sheet.
	if got, want := res.Rows[0].CountedSheetIDs, []string{"late"}; !reflect.DeepEqual(got, want) {
		t.Errorf("counted: got %v, want %v", got, want)
	}
}

// BenchmarkComputeMonth computes a large month: 100 technicians, 5,000 sheets
// (one in ten excluded), 300 complaints and 1,000 follow-up calls.
func BenchmarkComputeMonth(b *testing.B) {
	in := MonthInput{Month: "2026-11", Settings: testSettings(b)}
	for i := range 100 {
		in.Technicians = append(in.Technicians, Technician{
			ID: fmt.Sprintf("t%03d", i), Name: fmt.Sprintf("技术员 %03d", i),
			Dedicated: i%10 != 0, Probation: i%7 == 0,
		})
	}
	modes := []string{ModeOnsite, ModePhone, ModeOnline}
	for i := range 5000 {
		s := goodSheet(fmt.Sprintf("s%04d", i), fmt.Sprintf("t%03d", i%100), modes[i%3])
		s.Rating = i%5 + 1
		if i%10 == 0 {
			s.Complete, s.Missing = false, []string{"stamp"}
		}
		in.Sheets = append(in.Sheets, s)
	}
	statuses := []string{ComplaintUpheld, ComplaintDismissed, ComplaintOpen}
	for i := range 300 {
		in.Complaints = append(in.Complaints, ComplaintFact{
			ID: fmt.Sprintf("c%03d", i), TechnicianID: fmt.Sprintf("t%03d", i%100), Status: statuses[i%3],
		})
	}
	outcomes := []string{FollowupSatisfied, FollowupUnsatisfied, FollowupUnreachable}
	for i := range 1000 {
		in.Followups = append(in.Followups, FollowupFact{
			ID: fmt.Sprintf("f%04d", i), TechnicianID: fmt.Sprintf("t%03d", i%100), Outcome: outcomes[i%3],
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		res := ComputeMonth(in)
		if res.Totals.CountedServices != 4500 {
			b.Fatalf("counted %d services, want 4500", res.Totals.CountedServices)
		}
	}
}

// The month counts the counted services that met their response and arrival deadlines (P5);
// an excluded sheet adds nothing, and only an on-site service has an arrival to count.
func TestComputeMonthOnTimeCounts(t *testing.T) {
	onTime := func(s *SheetFact) { s.RespondedOnTime, s.ArrivedOnTime = true, true }
	row := onlyRow(t, MonthInput{
		Month: "2026-11", Settings: testSettings(t),
		Technicians: []Technician{{ID: "t1", Name: "张伟", Dedicated: true}},
		Sheets: []SheetFact{
			modify(goodSheet("a", "t1", ModeOnsite), onTime),
			modify(goodSheet("b", "t1", ModeOnsite), func(s *SheetFact) { s.RespondedOnTime = true }), // arrived late
			modify(goodSheet("c", "t1", ModePhone), func(s *SheetFact) { s.RespondedOnTime = true }),
			goodSheet("d", "t1", ModeOnsite), // late on both
			modify(goodSheet("e", "t1", ModeOnsite), func(s *SheetFact) { onTime(s); s.Received = false }),
		},
	})
	if row.CountedServices != 4 || row.OnTimeResponses != 3 || row.OnTimeArrivals != 1 {
		t.Errorf("counted %d, on-time responses %d (want 3), on-time arrivals %d (want 1)", row.CountedServices, row.OnTimeResponses, row.OnTimeArrivals)
	}
}

// TestComputeMonthTicketCountsOnce: of a ticket's sheets the first that meets every
// condition counts; the ticket's mode pays, not the sheet's; a ticket an approved month
// counted never counts again; each case is a warning naming the ticket.
func TestComputeMonthTicketCountsOnce(t *testing.T) {
	onSheet := func(id, ticket string, f func(*SheetFact)) SheetFact {
		s := goodSheet(id, "t1", ModePhone)
		s.TicketID, s.TicketNumber = ticket, "SR-"+ticket
		if f != nil {
			f(&s)
		}
		return s
	}
	in := MonthInput{Month: "2026-11", Settings: testSettings(t),
		Technicians: []Technician{{ID: "t1", Name: "陈静"}}, // not dedicated: paid per on-site visit
		Sheets: []SheetFact{
			onSheet("a", "T1", func(s *SheetFact) { s.Received = false }),
			onSheet("b", "T1", nil),
			onSheet("c", "T1", nil),
			onSheet("d", "T2", func(s *SheetFact) { s.SheetMode = ModeOnsite }),
			onSheet("e", "T3", func(s *SheetFact) { s.TicketSettled = true }),
		}}
	res := ComputeMonth(in)
	r := res.Rows[0]
	if got := strings.Join(r.CountedSheetIDs, ","); got != "b,d" {
		t.Errorf("counted %s, want b (T1's first complete sheet) and d", got)
	}
	if r.LabourFen != 0 || r.Modes.Phone != 2 || r.Modes.Onsite != 0 {
		t.Errorf("labour %d, modes %+v: want the tickets' mode (phone), no labour", r.LabourFen, r.Modes)
	}
	reasons := map[string]string{}
	for _, x := range r.Excluded {
		reasons[x.SheetID] = x.Reason
	}
	want := map[string]string{
		"a": ReasonNotReceived + "; " + ReasonTicketCounted,
		"c": ReasonTicketCounted,
		"e": ReasonTicketSettled,
	}
	if !reflect.DeepEqual(reasons, want) {
		t.Errorf("excluded %v, want %v", reasons, want)
	}
	all := strings.Join(res.Warnings, "\n")
	for _, w := range []string{"SR-T1 has 3 sheets (a, b, c) and counts once: only b counts", "SR-T2: sheet d says on site, the ticket says phone",
		"SR-T3 counted in an approved month", "工单 SR-T1 有 3 张反馈单"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings do not say %q:\n%s", w, all)
		}
	}
	if len(res.Warnings) != 3 {
		t.Errorf("%d warnings, want 3:\n%s", len(res.Warnings), all)
	}
}
