package schema

import (
	"time"
)

// PaySettings holds the deployment's pay rules. The policy masks every amount,
// so each one is a setting, never a constant; money is in integer fen so sums
// are exact.
type PaySettings struct {
	AllowancePerServiceFen int64 // paid to dedicated staff per counted service
	BonusRewardFen         int64 // paid when a month has no upheld complaint
	ComplaintPenaltyFen    int64 // deducted per upheld complaint
	LabourPerVisitFen      int64 // paid to non-dedicated staff per counted on-site visit
	// ComplaintForfeitThreshold is K: with K or more upheld complaints the
	// month's bonus is forfeited. K <= 0 disables forfeiting.
	ComplaintForfeitThreshold int
	// CommissionPartsPct and CommissionSoftwarePct are the handler's shares (percent) of a
	// collected parts sale's net profit and of collected software charges.
	CommissionPartsPct    int64
	CommissionSoftwarePct int64
	// Location is the company's time zone; calendar months are cut in it.
	Location *time.Location
}

// MonthTechnician is a person whose month is computed. Probation and Dedicated
// decide which pay rules apply to them.
type MonthTechnician struct {
	ID        string
	Name      string
	Probation bool // takes no part in the complaint bonus
	Dedicated bool // dedicated after-sales staff; false means per-visit labour instead of allowance
	// BaseSalaryFen is the monthly base salary in force on the month's first day
	// (BaseSalaryOn); 0 when none is recorded.
	BaseSalaryFen int64
}

// SheetFact is what the month needs to know about one service feedback sheet.
// Each flag is one of the policy's conditions for a service to count.
type SheetFact struct {
	SheetID      string
	TicketID     string
	TicketNumber string
	TechnicianID string
	Customer     string
	// ServiceMode is the ticket's mode (onsite, phone or online): what the ticket's
	// workflow recorded at completion, else what the office planned. It decides pay.
	ServiceMode string
	// SheetMode is what the technician wrote on the sheet; it never decides pay, and the
	// month warns where it differs from ServiceMode.
	SheetMode   string
	CompletedAt time.Time
	Sealed      bool     // the technician sealed it with the customer's signature
	Complete    bool     // every required field is filled in
	Missing     []string // what an incomplete sheet lacks, e.g. "signature", "stamp"
	// ExceptionAccepted is set when a manager accepted an incomplete sheet anyway;
	// ExceptionBy names them and ExceptionNote says why.
	ExceptionAccepted bool
	ExceptionBy       string
	ExceptionNote     string
	// Origin is "paper" for a sheet a coordinator entered from the signed and stamped
	// paper form (EnteredBy names them), else "device".
	Origin    string
	EnteredBy string
	// OnBehalf: the office recorded the ticket's completion on the technician's behalf.
	OnBehalf bool
	Received bool // a coordinator received the sheet
	Rating   int  // customer satisfaction 1-5; 0 when not rated
	// RespondedOnTime: its ticket was accepted by the response deadline; ArrivedOnTime: an
	// on-site service whose technician arrived by the arrival deadline (P5).
	RespondedOnTime bool
	ArrivedOnTime   bool
	// Late marks a sheet that arrived after its own month was approved and was
	// assigned to this month instead; it counts whatever its CompletedAt.
	Late bool
	// TicketSettled marks a sheet whose ticket an approved month already counted
	// (through another sheet): a ticket counts once.
	TicketSettled bool
	// ClockFlag says why the sheet's or its ticket's phone times are not credible ("" when
	// they are): the phone clock was off by more than the tolerance setting, a phone time
	// comes after the server received it, or an arrival before the dispatch.
	ClockFlag string
}

// NoSheetFact is a service completed in the month whose ticket moved on without a feedback
// sheet, because a manager recorded that there is none and why. It never counts (policy
// 4.2); the month lists it so the record is seen.
type NoSheetFact struct {
	TicketID     string
	TicketNumber string
	TechnicianID string
	Customer     string
	CompletedAt  time.Time
	Reason       string
	By           string // the manager's name
}

// ComplaintFact is one complaint recorded against a technician's ticket.
type ComplaintFact struct {
	ID           string
	TicketID     string
	TicketNumber string
	TechnicianID string
	Description  string
	Status       string // open, upheld or dismissed
	ReceivedAt   time.Time
	Late         bool // arrived after its own month was approved, assigned to this month
}

// FollowupFact is one follow-up call the department manager made (P7).
type FollowupFact struct {
	ID           string
	TicketID     string
	TechnicianID string
	Outcome      string // satisfied, unsatisfied or unreachable
	CalledAt     time.Time
}

// MonthInput is everything the month-end computation reads. The loader passes
// the facts that belong to the month, late arrivals included, so that
// ComputeMonth stays a pure function that tests can feed by hand.
type MonthInput struct {
	Month       string // "2026-11"
	Settings    PaySettings
	Technicians []MonthTechnician
	Sheets      []SheetFact
	NoSheets    []NoSheetFact
	Complaints  []ComplaintFact
	Followups   []FollowupFact
	Sales       []SaleFact
	Expenses    []ExpenseFact
	Liabilities []LiabilityFact
	Repairs     []RepairFact
	Unreported  []UnreportedFact
}

// SaleFact is a sale collected in full: its commission belongs to the month it was
// collected in.
type SaleFact struct {
	ID           string
	Kind         string // parts or software
	TechnicianID string // the handler
	TotalFen     int64
	CostFen      int64 // 0: commerce has not added the cost yet
	CollectedAt  time.Time
	Late         bool
}

// ExpenseFact is an expense reimbursed in the month (reimbursement is not pay).
type ExpenseFact struct {
	ID           string
	TechnicianID string
	Kind         string
	AmountFen    int64
	ApprovalID   string
	ReimbursedAt time.Time
	Late         bool
}

// LiabilityFact is a year-old debt leadership charged to its handler in the month.
type LiabilityFact struct {
	SaleID       string
	TechnicianID string
	SharePct     int64
	AmountFen    int64
	At           time.Time
	Late         bool
}

// RepairFact is a repair whose fee was collected in full in the month (shown, not pay).
type RepairFact struct {
	ID           string
	TechnicianID string
	AssetID      string
	InWarranty   bool
	FeeFen       int64
	CollectedAt  time.Time
	Late         bool
}

// UnreportedFact is a charge the technician took without reporting it, recorded on an upheld
// complaint in the month: deducted in full plus the penalty.
type UnreportedFact struct {
	ID           string
	TechnicianID string
	ComplaintID  string
	AmountFen    int64
	PenaltyFen   int64
	At           time.Time
	Late         bool
}

// Ledger keys of the money records a month settles: one record can be settled once for
// each purpose.
func CommissionKey(saleID string) string { return "commission:" + saleID }
func ExpenseKey(id string) string        { return "expense:" + id }
func LiabilityKey(saleID string) string  { return "liability:" + saleID }
func RepairKey(id string) string         { return "repair:" + id }
func UnreportedKey(id string) string     { return "unreported:" + id }
