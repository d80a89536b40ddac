package reports

import (
	"cmp"
	"fieldsync/schema"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Service modes of policy section 1, as recorded on a sheet.
const (
	ModeOnsite = "onsite"
	ModePhone  = "phone"
	ModeOnline = "online"
)

// Complaint statuses. Only an upheld complaint counts against a technician's
// bonus; open ones are still under investigation and dismissed ones were unfounded.
const (
	ComplaintOpen      = "open"
	ComplaintUpheld    = "upheld"
	ComplaintDismissed = "dismissed"
)

// Follow-up call outcomes the department manager records (P7).
const (
	FollowupSatisfied   = "satisfied"
	FollowupUnsatisfied = "unsatisfied"
	FollowupUnreachable = "unreachable"
)

// Exclusion reasons shown on the report, so a coordinator can tell a technician
// exactly why a service did not count.
const (
	ReasonNotSigned       = "not signed"
	ReasonIncomplete      = "incomplete"
	ReasonNotReceived     = "not received by a coordinator"
	ReasonOutsideMonth    = "outside the month"
	ReasonNoCompletedTime = "no completion time"
	// A ticket counts once, whatever number of sheets its technician wrote.
	ReasonTicketCounted = "another sheet of the same ticket counted"
	ReasonTicketSettled = "the ticket counted in an approved month"
)

// The month's inputs are declared in package schema, beside the records they are loaded
// from, so the loader in package sync and this computation share one definition.
type (
	PaySettings   = schema.PaySettings
	Technician    = schema.MonthTechnician
	SheetFact     = schema.SheetFact
	ComplaintFact = schema.ComplaintFact
	FollowupFact  = schema.FollowupFact
	MonthInput    = schema.MonthInput
	SaleFact      = schema.SaleFact
	ExpenseFact   = schema.ExpenseFact
	LiabilityFact = schema.LiabilityFact
)

// TechnicianRef names the technician a row belongs to.
type TechnicianRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ServiceLine is one counted service, kept so every figure in a row can be
// traced back to the sheets behind it.
type ServiceLine struct {
	SheetID      string    `json:"sheet_id"`
	TicketNumber string    `json:"ticket_number"`
	Customer     string    `json:"customer"`
	Mode         string    `json:"mode"`
	CompletedAt  time.Time `json:"completed_at"`
	Rating       int       `json:"rating"`
	Late         bool      `json:"late"`
	ClockFlag    string    `json:"clock_flag,omitempty"` // why its phone times are not credible
	// Origin is "paper" when a coordinator entered the sheet from the paper form
	// (EnteredBy names them), else "device".
	Origin    string `json:"origin,omitempty"`
	EnteredBy string `json:"entered_by,omitempty"`
	// OnBehalf: the office recorded the completion on the technician's behalf.
	OnBehalf bool `json:"recorded_by_office,omitempty"`
	// Exception is set when the sheet was incomplete and counted because a manager
	// accepted the exception.
	Exception *ExceptionLine `json:"exception,omitempty"`
}

// ExceptionLine says who accepted an incomplete sheet, why, and what it lacked.
type ExceptionLine struct {
	By      string   `json:"by"`
	Note    string   `json:"note"`
	Missing []string `json:"missing"`
}

// NoSheetLine is a service whose ticket moved on without a sheet: a manager recorded that
// there is none (By) and why. It is not counted.
type NoSheetLine struct {
	TicketNumber string    `json:"ticket_number"`
	Customer     string    `json:"customer"`
	CompletedAt  time.Time `json:"completed_at"`
	Reason       string    `json:"reason"`
	By           string    `json:"by"`
}

// Exclusion is a sheet that did not count, with the reason the report shows.
type Exclusion struct {
	SheetID      string `json:"sheet_id"`
	TicketNumber string `json:"ticket_number"`
	Reason       string `json:"reason"`
	Origin       string `json:"origin,omitempty"` // "paper" or "device", as the loader says
}

// ComplaintLine is one complaint against the technician, whatever its status,
// so the report can show the open and dismissed ones beside the upheld ones.
type ComplaintLine struct {
	ID           string `json:"id"`
	TicketNumber string `json:"ticket_number"`
	Status       string `json:"status"`
	Description  string `json:"description"`
	Late         bool   `json:"late"`
}

// ModeCounts is the mix of service modes among counted services (P1).
type ModeCounts struct {
	Onsite int `json:"onsite"`
	Phone  int `json:"phone"`
	Online int `json:"online"`
}

// FollowupCounts tallies the follow-up calls by outcome (P7).
type FollowupCounts struct {
	Satisfied   int `json:"satisfied"`
	Unsatisfied int `json:"unsatisfied"`
	Unreachable int `json:"unreachable"`
}

// Row is one technician's line in the month's statistics table: the counts
// the policy's pay depends on, the pay itself, and the ids behind each figure.
type Row struct {
	Technician       TechnicianRef `json:"technician"`
	Probation        bool          `json:"probation"`
	Dedicated        bool          `json:"dedicated"`
	CountedServices  int           `json:"counted_services"`
	ExcludedServices int           `json:"excluded_services"`
	// PaperServices and ExceptionServices count the counted services whose sheet came from
	// paper, and those counted through a manager's exception; NoSheetServices the services
	// listed in NoSheet (never counted).
	PaperServices     int           `json:"paper_services"`
	ExceptionServices int           `json:"exception_services"`
	NoSheetServices   int           `json:"no_sheet_services"`
	NoSheet           []NoSheetLine `json:"no_sheet"`
	// Complaints counts upheld complaints only, the ones that affect pay.
	Complaints     int   `json:"complaints"`
	BonusEligible  bool  `json:"bonus_eligible"`
	BonusForfeited bool  `json:"bonus_forfeited"`
	AllowanceFen   int64 `json:"allowance_fen"`
	BonusFen       int64 `json:"bonus_fen"` // negative when penalties exceed the reward
	LabourFen      int64 `json:"labour_fen"`
	// CommissionFen is paid (30% of a collected parts sale's net profit, 40% of collected
	// software charges); CommissionForfeitedFen is what K upheld complaints withheld.
	CommissionFen          int64 `json:"commission_fen"`
	CommissionForfeitedFen int64 `json:"commission_forfeited_fen"`
	LiabilityFen           int64 `json:"liability_fen"` // year-old debts charged to the handler
	// UnreportedFen is what charges taken without reporting them cost the technician: each
	// charge in full plus the penalty per case (policy 6.2 B).
	UnreportedFen int64 `json:"unreported_fen"`
	// BaseSalaryFen is the base salary in force on the month's first day (policy 4.1).
	BaseSalaryFen int64 `json:"base_salary_fen"`
	// TotalFen is the month's pay: base salary + allowance + bonus + labour + commission −
	// liability − unreported charges and penalties. Expenses are not pay.
	TotalFen      int64 `json:"total_fen"`
	ExpensesFen   int64 `json:"expenses_fen"`    // reimbursed, kept apart from pay
	RepairFeesFen int64 `json:"repair_fees_fen"` // repair fees collected, the company's, not pay

	Commissions []CommissionLine `json:"commissions"`
	Liabilities []LiabilityLine  `json:"liabilities"`
	Expenses    []ExpenseLine    `json:"expenses"`
	Repairs     []RepairLine     `json:"repairs"`
	Unreported  []UnreportedLine `json:"unreported"`
	// MoneyIDs are the ledger keys of the money this row settles (schema.CommissionKey...).
	MoneyIDs []string `json:"money_ids"`

	CountedSheetIDs []string        `json:"counted_sheet_ids"`
	Counted         []ServiceLine   `json:"counted"`
	Excluded        []Exclusion     `json:"excluded"`
	ComplaintIDs    []string        `json:"complaint_ids"` // upheld complaints
	ComplaintList   []ComplaintLine `json:"complaint_list"`
	Modes           ModeCounts      `json:"modes"`
	RatedServices   int             `json:"rated_services"`
	// OnTimeResponses and OnTimeArrivals count the counted services whose ticket was
	// accepted by its response deadline, and (on-site) arrived by its arrival deadline (P5).
	OnTimeResponses int `json:"on_time_responses"`
	OnTimeArrivals  int `json:"on_time_arrivals"`
	// AverageRating is the mean rating of the rated counted services, rounded
	// to two decimals; 0 when none was rated.
	AverageRating float64        `json:"average_rating"`
	Followups     FollowupCounts `json:"followups"`
	Notes         []string       `json:"notes"`
}

// CommissionLine is one collected sale behind a commission.
type CommissionLine struct {
	SaleID        string `json:"sale_id"`
	Kind          string `json:"kind"`
	CollectedFen  int64  `json:"collected_fen"`
	CostFen       int64  `json:"cost_fen"`
	BaseFen       int64  `json:"base_fen"` // net profit (parts) or the charge (software)
	Pct           int64  `json:"pct"`
	CommissionFen int64  `json:"commission_fen"`
	Forfeited     bool   `json:"forfeited"`
	Late          bool   `json:"late"`
}

// LiabilityLine is one year-old debt charged to the handler.
type LiabilityLine struct {
	SaleID    string `json:"sale_id"`
	SharePct  int64  `json:"share_pct"`
	AmountFen int64  `json:"amount_fen"`
	Late      bool   `json:"late"`
}

// ExpenseLine is one reimbursed expense.
type ExpenseLine struct {
	ExpenseID  string `json:"expense_id"`
	Kind       string `json:"kind"`
	AmountFen  int64  `json:"amount_fen"`
	ApprovalID string `json:"approval_id"`
	Late       bool   `json:"late"`
}

// RepairLine is one repair whose fee was collected.
type RepairLine struct {
	RepairID   string `json:"repair_id"`
	AssetID    string `json:"asset_id"`
	InWarranty bool   `json:"in_warranty"`
	FeeFen     int64  `json:"fee_fen"`
	Late       bool   `json:"late"`
}

// UnreportedLine is one unreported charge found through a complaint: the charge and the
// penalty, both deducted.
type UnreportedLine struct {
	ID          string `json:"id"`
	ComplaintID string `json:"complaint_id"`
	AmountFen   int64  `json:"amount_fen"`
	PenaltyFen  int64  `json:"penalty_fen"`
	Late        bool   `json:"late"`
}

// Totals sums the rows, for the table's last line.
type Totals struct {
	Technicians       int   `json:"technicians"`
	CountedServices   int   `json:"counted_services"`
	ExcludedServices  int   `json:"excluded_services"`
	PaperServices     int   `json:"paper_services"`
	ExceptionServices int   `json:"exception_services"`
	NoSheetServices   int   `json:"no_sheet_services"`
	Complaints        int   `json:"complaints"`
	AllowanceFen      int64 `json:"allowance_fen"`
	BonusFen          int64 `json:"bonus_fen"`
	LabourFen         int64 `json:"labour_fen"`
	CommissionFen     int64 `json:"commission_fen"`
	// CommissionForfeitedFen sums the commissions K upheld complaints withheld.
	CommissionForfeitedFen int64 `json:"commission_forfeited_fen"`
	LiabilityFen           int64 `json:"liability_fen"`
	UnreportedFen          int64 `json:"unreported_fen"`
	BaseSalaryFen          int64 `json:"base_salary_fen"`
	TotalFen               int64 `json:"total_fen"`
	ExpensesFen            int64 `json:"expenses_fen"`
	RepairFeesFen          int64 `json:"repair_fees_fen"`
	OnTimeResponses        int   `json:"on_time_responses"`
	OnTimeArrivals         int   `json:"on_time_arrivals"`
}

// MonthResult is the computed statistics table of one month.
type MonthResult struct {
	Month  string `json:"month"`
	Rows   []Row  `json:"rows"`
	Totals Totals `json:"totals"`
	// Warnings lists facts the computation could not place (an unknown
	// technician, an unknown service mode, a malformed month), so nothing is
	// dropped silently.
	Warnings []string `json:"warnings,omitempty"`
}

// ComputeMonth computes the month's statistics table and performance pay
// (policy P7-P9) from plain facts, with no database and no clock, so every
// figure can be checked by hand. One row per technician in in.Technicians,
// activity or not, so the reward for a month without complaints shows.
// Facts for technicians not in the list are left out and reported in
// Warnings. Complaints and follow-ups are taken as the loader assigned them;
// sheets are checked against the month's bounds, as the policy counts only
// services completed in the month. A malformed month or missing time zone is also a warning: then
// only late sheets can count, so callers validate the month with
// schema.ParseMonth first.
func ComputeMonth(in MonthInput) MonthResult {
	res := MonthResult{Month: in.Month, Rows: make([]Row, 0, len(in.Technicians))}
	var start, end time.Time
	boundsErr := fmt.Errorf("month %q: no time zone given", in.Month)
	if in.Settings.Location != nil {
		start, end, boundsErr = schema.ParseMonth(in.Month, in.Settings.Location, time.Time{})
	}
	if boundsErr != nil {
		res.Warnings = append(res.Warnings, boundsErr.Error())
	}

	index := make(map[string]int, len(in.Technicians)) // technician id -> row
	for _, t := range in.Technicians {
		if _, dup := index[t.ID]; dup {
			res.Warnings = append(res.Warnings, fmt.Sprintf("technician %s listed twice; the first entry is used", t.ID))
			continue
		}
		index[t.ID] = len(res.Rows)
		res.Rows = append(res.Rows, Row{
			Technician:    TechnicianRef{ID: t.ID, Name: t.Name},
			Probation:     t.Probation,
			Dedicated:     t.Dedicated,
			BaseSalaryFen: t.BaseSalaryFen,
			// Empty, not nil, so the JSON shows [] rather than null.
			Excluded:      []Exclusion{},
			NoSheet:       []NoSheetLine{},
			ComplaintIDs:  []string{},
			ComplaintList: []ComplaintLine{},
			Notes:         []string{},
			Commissions:   []CommissionLine{},
			Liabilities:   []LiabilityLine{},
			Expenses:      []ExpenseLine{},
			Repairs:       []RepairLine{},
			Unreported:    []UnreportedLine{},
			MoneyIDs:      []string{},
		})
	}
	rowOf := func(kind, id, techID string) (int, bool) {
		i, ok := index[techID]
		if !ok {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s: technician %q is not in this month's list; left out", kind, id, techID))
		}
		return i, ok
	}

	// Size each row's sheet lists up front: a big month has thousands of
	// sheets, and growing the slices one append at a time dominated the cost.
	sheetsPerRow := make([]int, len(res.Rows))
	for _, s := range in.Sheets {
		if i, ok := index[s.TechnicianID]; ok {
			sheetsPerRow[i]++
		}
	}
	for i, n := range sheetsPerRow {
		res.Rows[i].CountedSheetIDs = make([]string, 0, n)
		res.Rows[i].Counted = make([]ServiceLine, 0, n)
	}

	// A ticket counts once: its first sheet (in the loader's order, by signing) that meets
	// every condition. Its other sheets are listed as not counting.
	inMonth := func(s SheetFact) bool {
		return boundsErr == nil && !s.CompletedAt.Before(start) && s.CompletedAt.Before(end)
	}
	countedFor := map[string]string{} // ticket -> the sheet that counts
	for _, s := range in.Sheets {
		if _, known := index[s.TechnicianID]; !known || s.TicketID == "" {
			continue
		}
		if _, done := countedFor[s.TicketID]; !done && len(sheetExclusionReasons(s, inMonth(s))) == 0 {
			countedFor[s.TicketID] = s.SheetID
		}
	}
	res.Warnings = append(res.Warnings, sheetWarnings(in.Sheets, countedFor)...)

	ratingSum := make([]int, len(res.Rows))
	for _, s := range in.Sheets {
		i, ok := rowOf("sheet", s.SheetID, s.TechnicianID)
		if !ok {
			continue
		}
		r := &res.Rows[i]
		if s.ClockFlag != "" {
			zh, en, ok := strings.Cut(s.ClockFlag, " / ")
			if !ok {
				en = zh
			}
			res.Warnings = append(res.Warnings, fmt.Sprintf("反馈单 %s（%s）时间存疑：%s / sheet %s (%s), times not credible: %s",
				s.SheetID, s.TicketNumber, zh, s.SheetID, s.TicketNumber, en))
		}
		reasons := sheetExclusionReasons(s, inMonth(s))
		if c, ok := countedFor[s.TicketID]; ok && c != s.SheetID {
			reasons = append(reasons, ReasonTicketCounted)
		}
		if len(reasons) > 0 {
			r.Excluded = append(r.Excluded, Exclusion{SheetID: s.SheetID, TicketNumber: s.TicketNumber, Reason: strings.Join(reasons, "; "), Origin: s.Origin})
			continue
		}
		r.CountedSheetIDs = append(r.CountedSheetIDs, s.SheetID)
		line := ServiceLine{
			SheetID: s.SheetID, TicketNumber: s.TicketNumber, Customer: s.Customer,
			Mode: s.ServiceMode, CompletedAt: s.CompletedAt, Rating: s.Rating, Late: s.Late, ClockFlag: s.ClockFlag,
			Origin: s.Origin, EnteredBy: s.EnteredBy, OnBehalf: s.OnBehalf,
		}
		if line.Origin == schema.OriginPaper {
			r.PaperServices++
		}
		if !s.Complete {
			line.Exception = &ExceptionLine{By: s.ExceptionBy, Note: s.ExceptionNote, Missing: append([]string{}, s.Missing...)}
			r.ExceptionServices++
		}
		r.Counted = append(r.Counted, line)
		switch s.ServiceMode {
		case ModeOnsite:
			r.Modes.Onsite++
		case ModePhone:
			r.Modes.Phone++
		case ModeOnline:
			r.Modes.Online++
		default:
			res.Warnings = append(res.Warnings, fmt.Sprintf("sheet %s: unknown service mode %q; counted, but in no mode column", s.SheetID, s.ServiceMode))
		}
		if s.RespondedOnTime {
			r.OnTimeResponses++
		}
		if s.ArrivedOnTime && s.ServiceMode == ModeOnsite {
			r.OnTimeArrivals++
		}
		if s.Rating >= 1 && s.Rating <= 5 {
			r.RatedServices++
			ratingSum[i] += s.Rating
		}
	}

	for _, n := range in.NoSheets {
		if i, ok := rowOf("no-sheet ticket", n.TicketNumber, n.TechnicianID); ok {
			r := &res.Rows[i]
			r.NoSheet = append(r.NoSheet, NoSheetLine{TicketNumber: n.TicketNumber, Customer: n.Customer, CompletedAt: n.CompletedAt, Reason: n.Reason, By: n.By})
			r.NoSheetServices++
		}
	}

	openComplaints := make([]int, len(res.Rows))
	for _, c := range in.Complaints {
		i, ok := rowOf("complaint", c.ID, c.TechnicianID)
		if !ok {
			continue
		}
		r := &res.Rows[i]
		r.ComplaintList = append(r.ComplaintList, ComplaintLine{
			ID: c.ID, TicketNumber: c.TicketNumber, Status: c.Status, Description: c.Description, Late: c.Late,
		})
		switch c.Status {
		case ComplaintUpheld:
			r.Complaints++
			r.ComplaintIDs = append(r.ComplaintIDs, c.ID)
		case ComplaintOpen:
			openComplaints[i]++
		case ComplaintDismissed:
		default:
			res.Warnings = append(res.Warnings, fmt.Sprintf("complaint %s: unknown status %q; not counted", c.ID, c.Status))
		}
	}

	for _, f := range in.Followups {
		i, ok := rowOf("follow-up", f.ID, f.TechnicianID)
		if !ok {
			continue
		}
		r := &res.Rows[i]
		switch f.Outcome {
		case FollowupSatisfied:
			r.Followups.Satisfied++
		case FollowupUnsatisfied:
			r.Followups.Unsatisfied++
		case FollowupUnreachable:
			r.Followups.Unreachable++
		default:
			res.Warnings = append(res.Warnings, fmt.Sprintf("follow-up %s: unknown outcome %q; not tallied", f.ID, f.Outcome))
		}
	}

	for _, sf := range in.Sales {
		i, ok := rowOf("sale", sf.ID, sf.TechnicianID)
		if !ok {
			continue
		}
		r := &res.Rows[i]
		line := CommissionLine{SaleID: sf.ID, Kind: sf.Kind, CollectedFen: sf.TotalFen, CostFen: sf.CostFen, Late: sf.Late}
		switch sf.Kind {
		case "software":
			line.BaseFen, line.Pct = sf.TotalFen, in.Settings.CommissionSoftwarePct
		case "parts":
			if sf.CostFen == 0 {
				r.Notes = append(r.Notes, fmt.Sprintf("sale %s: collected, but commerce has not added its cost: no commission until it does", sf.ID))
				continue
			}
			line.BaseFen, line.Pct = max(0, sf.TotalFen-sf.CostFen), in.Settings.CommissionPartsPct
		default:
			res.Warnings = append(res.Warnings, fmt.Sprintf("sale %s: unknown kind %q; no commission", sf.ID, sf.Kind))
			continue
		}
		line.CommissionFen = line.BaseFen * line.Pct / 100 // rounded down to the fen
		r.Commissions = append(r.Commissions, line)
		r.MoneyIDs = append(r.MoneyIDs, schema.CommissionKey(sf.ID))
	}
	for _, l := range in.Liabilities {
		if i, ok := rowOf("liability", l.SaleID, l.TechnicianID); ok {
			r := &res.Rows[i]
			r.Liabilities = append(r.Liabilities, LiabilityLine{SaleID: l.SaleID, SharePct: l.SharePct, AmountFen: l.AmountFen, Late: l.Late})
			r.LiabilityFen += l.AmountFen
			r.MoneyIDs = append(r.MoneyIDs, schema.LiabilityKey(l.SaleID))
		}
	}
	for _, x := range in.Expenses {
		if i, ok := rowOf("expense", x.ID, x.TechnicianID); ok {
			r := &res.Rows[i]
			r.Expenses = append(r.Expenses, ExpenseLine{ExpenseID: x.ID, Kind: x.Kind, AmountFen: x.AmountFen, ApprovalID: x.ApprovalID, Late: x.Late})
			r.ExpensesFen += x.AmountFen
			r.MoneyIDs = append(r.MoneyIDs, schema.ExpenseKey(x.ID))
		}
	}
	for _, x := range in.Repairs {
		if i, ok := rowOf("repair", x.ID, x.TechnicianID); ok {
			r := &res.Rows[i]
			r.Repairs = append(r.Repairs, RepairLine{RepairID: x.ID, AssetID: x.AssetID, InWarranty: x.InWarranty, FeeFen: x.FeeFen, Late: x.Late})
			r.RepairFeesFen += x.FeeFen
			r.MoneyIDs = append(r.MoneyIDs, schema.RepairKey(x.ID))
		}
	}
	for _, x := range in.Unreported {
		if i, ok := rowOf("unreported charge", x.ID, x.TechnicianID); ok {
			r := &res.Rows[i]
			r.Unreported = append(r.Unreported, UnreportedLine{ID: x.ID, ComplaintID: x.ComplaintID, AmountFen: x.AmountFen, PenaltyFen: x.PenaltyFen, Late: x.Late})
			r.UnreportedFen += x.AmountFen + x.PenaltyFen
			r.MoneyIDs = append(r.MoneyIDs, schema.UnreportedKey(x.ID))
		}
	}

	for i := range res.Rows {
		r := &res.Rows[i]
		if r.RatedServices > 0 {
			r.AverageRating = math.Round(float64(ratingSum[i])/float64(r.RatedServices)*100) / 100
		}
		if n := openComplaints[i]; n > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%d complaint(s) still open: not counted until upheld", n))
		}
		applyMonthPay(r, in.Settings)
	}

	slices.SortFunc(res.Rows, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.Technician.Name, b.Technician.Name), strings.Compare(a.Technician.ID, b.Technician.ID))
	})
	res.Totals.Technicians = len(res.Rows)
	for _, r := range res.Rows {
		res.Totals.CountedServices += r.CountedServices
		res.Totals.ExcludedServices += r.ExcludedServices
		res.Totals.PaperServices += r.PaperServices
		res.Totals.ExceptionServices += r.ExceptionServices
		res.Totals.NoSheetServices += r.NoSheetServices
		res.Totals.Complaints += r.Complaints
		res.Totals.AllowanceFen += r.AllowanceFen
		res.Totals.BonusFen += r.BonusFen
		res.Totals.LabourFen += r.LabourFen
		res.Totals.CommissionFen += r.CommissionFen
		res.Totals.CommissionForfeitedFen += r.CommissionForfeitedFen
		res.Totals.LiabilityFen += r.LiabilityFen
		res.Totals.UnreportedFen += r.UnreportedFen
		res.Totals.BaseSalaryFen += r.BaseSalaryFen
		res.Totals.TotalFen += r.TotalFen
		res.Totals.ExpensesFen += r.ExpensesFen
		res.Totals.RepairFeesFen += r.RepairFeesFen
		res.Totals.OnTimeResponses += r.OnTimeResponses
		res.Totals.OnTimeArrivals += r.OnTimeArrivals
	}
	return res
}

// sheetExclusionReasons lists every policy condition a sheet fails, so the report
// tells the whole story at once rather than one problem per month-end.
func sheetExclusionReasons(s SheetFact, inMonth bool) []string {
	var reasons []string
	if !s.Sealed {
		reasons = append(reasons, ReasonNotSigned)
	}
	if !s.Complete && !s.ExceptionAccepted {
		if len(s.Missing) > 0 {
			reasons = append(reasons, ReasonIncomplete+": missing "+strings.Join(s.Missing, ", "))
		} else {
			reasons = append(reasons, ReasonIncomplete)
		}
	}
	if !s.Received {
		reasons = append(reasons, ReasonNotReceived)
	}
	switch {
	case s.Late:
		// Assigned to this month after its own month was approved.
	case s.CompletedAt.IsZero():
		reasons = append(reasons, ReasonNoCompletedTime)
	case !inMonth:
		reasons = append(reasons, ReasonOutsideMonth)
	}
	if s.TicketSettled {
		reasons = append(reasons, ReasonTicketSettled)
	}
	return reasons
}

// modeNames are the service modes as the warnings name them, Chinese and English.
var modeNames = map[string][2]string{ModeOnsite: {"现场维修", "on site"}, ModePhone: {"电话服务", "phone"}, ModeOnline: {"在线服务", "online"}}

func modeName(m string) (zh, en string) {
	if n, ok := modeNames[m]; ok {
		return n[0], n[1]
	}
	return m, m
}

// sheetWarnings tells the office where a technician's sheets disagree with the ticket they
// belong to: a sheet whose service mode is not the ticket's (the ticket's counts), a ticket
// with several sheets in the month (it counts once), a ticket an approved month already
// counted. Each warning is in Chinese and English and names the ticket and the sheets.
func sheetWarnings(sheets []SheetFact, countedFor map[string]string) []string {
	var out []string
	perTicket := map[string][]SheetFact{}
	var order []string
	for _, s := range sheets {
		if s.SheetMode != "" && s.ServiceMode != "" && s.SheetMode != s.ServiceMode {
			szh, sen := modeName(s.SheetMode)
			tzh, ten := modeName(s.ServiceMode)
			out = append(out, fmt.Sprintf("工单 %s：反馈单 %s 写的服务方式是%s，工单记录的是%s，按工单计 / ticket %s: sheet %s says %s, the ticket says %s; the ticket's mode counts",
				ticketName(s), s.SheetID, szh, tzh, ticketName(s), s.SheetID, sen, ten))
		}
		if s.TicketID == "" {
			continue
		}
		if _, seen := perTicket[s.TicketID]; !seen {
			order = append(order, s.TicketID)
		}
		perTicket[s.TicketID] = append(perTicket[s.TicketID], s)
	}
	for _, id := range order {
		list := perTicket[id]
		ids := make([]string, len(list))
		settled := false
		for i, s := range list {
			ids[i] = s.SheetID
			settled = settled || s.TicketSettled
		}
		name := ticketName(list[0])
		switch {
		case settled:
			out = append(out, fmt.Sprintf("工单 %s 已在已批准的月份计入，反馈单 %s 不再计入 / ticket %s counted in an approved month: sheet(s) %s do not count again",
				name, strings.Join(ids, ", "), name, strings.Join(ids, ", ")))
		case len(list) > 1:
			zh, en := "均未计入", "none counts"
			if c := countedFor[id]; c != "" {
				zh, en = "只计 "+c, "only "+c+" counts"
			}
			out = append(out, fmt.Sprintf("工单 %s 有 %d 张反馈单（%s），只计一次：%s / ticket %s has %d sheets (%s) and counts once: %s",
				name, len(list), strings.Join(ids, ", "), zh, name, len(list), strings.Join(ids, ", "), en))
		}
	}
	return out
}

func ticketName(s SheetFact) string { return cmp.Or(s.TicketNumber, s.TicketID) }

// WarningIn returns a warning in one language: a warning written "中文 / English" (as
// sheetWarnings writes them) is split, lang "zh" or "en" keeps its side; any other warning,
// or any other lang, is returned whole.
func WarningIn(w string, lang string) string {
	zh, en, ok := strings.Cut(w, " / ")
	if !ok || !strings.ContainsFunc(zh, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
		return w
	}
	switch lang {
	case "zh":
		return zh
	case "en":
		return en
	}
	return w
}

// applyMonthPay fills in a row's pay from its counts, following policy section 4:
// allowance for dedicated staff, per-visit labour for the others, and the
// complaint bonus only for dedicated staff past probation.
func applyMonthPay(r *Row, s PaySettings) {
	r.CountedServices = len(r.CountedSheetIDs)
	r.ExcludedServices = len(r.Excluded)

	if r.Dedicated {
		r.AllowanceFen = int64(r.CountedServices) * s.AllowancePerServiceFen
	} else {
		r.LabourFen = int64(r.Modes.Onsite) * s.LabourPerVisitFen
		r.Notes = append(r.Notes, fmt.Sprintf("not dedicated after-sales staff: labour fee for %d on-site visit(s) instead of the allowance; no complaint bonus", r.Modes.Onsite))
	}
	if r.Probation {
		r.Notes = append(r.Notes, "on probation: no complaint bonus (no reward, no penalty)")
	}

	r.BonusEligible = r.Dedicated && !r.Probation
	if r.BonusEligible {
		n := r.Complaints
		k := s.ComplaintForfeitThreshold
		switch {
		case n == 0:
			r.BonusFen = s.BonusRewardFen
		case k > 0 && n >= k:
			r.BonusForfeited = true
			r.BonusFen = -int64(n) * s.ComplaintPenaltyFen
			r.Notes = append(r.Notes, fmt.Sprintf("bonus forfeited: %d upheld complaints, threshold %d; penalties still apply", n, k))
		default:
			r.BonusFen = -int64(n) * s.ComplaintPenaltyFen
		}
	}
	// Commissions are paid "as bonus" (作为奖金, 提取奖金, policy 6): K or more upheld
	// complaints forfeit the month's bonus (扣除当月奖金), commissions included, whatever the
	// technician's status. docs/month-end.md gives the reading.
	forfeit := s.ComplaintForfeitThreshold > 0 && r.Complaints >= s.ComplaintForfeitThreshold
	for i := range r.Commissions {
		c := &r.Commissions[i]
		if forfeit {
			c.Forfeited = true
			r.CommissionForfeitedFen += c.CommissionFen
		} else {
			r.CommissionFen += c.CommissionFen
		}
	}
	if forfeit && r.CommissionForfeitedFen > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("commissions of %d fen forfeited: %d upheld complaints, threshold %d", r.CommissionForfeitedFen, r.Complaints, s.ComplaintForfeitThreshold))
	}
	r.TotalFen = r.BaseSalaryFen + r.AllowanceFen + r.BonusFen + r.LabourFen + r.CommissionFen - r.LiabilityFen - r.UnreportedFen
}
