package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The policy's money (sections 4-6, P10-P13): approval requests, expenses, sales with their
// payments, and the receivables derived from sales. Every amount is integer fen. The rules
// here are pure; package sync applies them through the single write path. docs/money.md
// describes them with a worked month.

// RoleCommerce is the commerce department (商务部): warranty answers, costs, payments.
const RoleCommerce = "commerce"

// Money entities.
const (
	EntApproval = "approval"
	EntExpense  = "expense"
	EntSale     = "sale"
)

// Approval kinds: taxi and freight fares (P10), credit for a sale shipped unpaid (P12), and
// the company's consent to charge for software work (P13).
const (
	ApprTaxi     = "taxi"
	ApprFreight  = "freight"
	ApprCredit   = "credit"
	ApprSoftware = "software_charge"
)

// Approval statuses.
const (
	ApprPending  = "pending"
	ApprApproved = "approved"
	ApprDeclined = "declined"
)

var (
	ApprovalKinds    = []string{ApprTaxi, ApprFreight, ApprCredit, ApprSoftware}
	ApprovalStatuses = []string{ApprPending, ApprApproved, ApprDeclined}
	ExpenseKinds     = []string{"public_transport", "taxi", "freight", "other"}
	ExpenseStatuses  = []string{"submitted", "reimbursed", "refused"}
	SaleKinds        = []string{"parts", "software"}
)

// MoneyStep is one action on a money record and who may take it: the same kind of table as
// TicketSteps, for approvals, expenses and sales.
type MoneyStep struct {
	Entity string   `json:"entity"`
	Action string   `json:"action"`
	Roles  []string `json:"roles"`
	Params []string `json:"params"`
}

var moneyOffice = []string{RoleAdmin, RoleCoordinator, RoleManager, RoleLeader, RoleCommerce}
var payDesk = []string{RoleCommerce, RoleCoordinator, RoleManager, RoleAdmin}

// MoneySteps is the permission table of the money records. Who may decide an approval also
// depends on its kind and amount (ApprovalDecider).
var MoneySteps = []MoneyStep{
	{EntApproval, "approve", []string{RoleManager, RoleLeader}, nil},
	{EntApproval, "decline", []string{RoleManager, RoleLeader}, []string{"note"}},
	{EntExpense, "reimburse", []string{RoleManager, RoleCoordinator, RoleAdmin}, nil},
	{EntExpense, "refuse", []string{RoleManager, RoleAdmin}, []string{"note"}},
	{EntSale, "pay", payDesk, []string{"amount_fen"}},
	{EntSale, "ship", payDesk, nil},
	{EntSale, "invoice", payDesk, nil},
	{EntSale, "charge_liability", []string{RoleLeader}, []string{"share_pct"}},
}

// MoneyStepOf returns the step of entity named action.
func MoneyStepOf(entity, action string) (MoneyStep, bool) {
	for _, s := range MoneySteps {
		if s.Entity == entity && s.Action == action {
			return s, true
		}
	}
	return MoneyStep{}, false
}

func init() {
	all := append(slices.Clone(moneyOffice), RoleTechnician)
	register(&Entity{Name: EntApproval, CreateRoles: all, Fields: []Field{
		{Name: "technician_id", Kind: KRef, Ref: EntUser, Writers: SideOffice, CreateOnly: true},
		{Name: "kind", Kind: KEnum, Enum: ApprovalKinds, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "amount_fen", Kind: KMoney, Writers: SideBoth, CreateOnly: true},
		{Name: "reason", Kind: KText, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket, Writers: SideBoth, CreateOnly: true},
		{Name: "sale_id", Kind: KRef, Ref: EntSale, Writers: SideBoth, CreateOnly: true},
		{Name: "decider_role", Kind: KEnum, Enum: []string{RoleManager, RoleLeader}},
		{Name: "status", Kind: KEnum, Enum: ApprovalStatuses},
		{Name: "decided_by", Kind: KRef, Ref: EntUser},
		{Name: "decided_at", Kind: KTime},
		{Name: "decision_note", Kind: KText},
	}})
	register(&Entity{Name: EntExpense, CreateRoles: all, Fields: []Field{
		{Name: "technician_id", Kind: KRef, Ref: EntUser, Writers: SideOffice, CreateOnly: true},
		{Name: "kind", Kind: KEnum, Enum: ExpenseKinds, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "amount_fen", Kind: KMoney, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "spent_on", Kind: KDate, Writers: SideBoth, CreateOnly: true},
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket, Writers: SideBoth, CreateOnly: true},
		{Name: "approval_id", Kind: KRef, Ref: EntApproval, Writers: SideBoth, CreateOnly: true},
		{Name: "receipt_blob", Kind: KString, Writers: SideBoth, CreateOnly: true},
		{Name: "note", Kind: KText, Writers: SideBoth, CreateOnly: true},
		{Name: "status", Kind: KEnum, Enum: ExpenseStatuses},
		{Name: "reimbursed_at", Kind: KTime},
		{Name: "decided_by", Kind: KRef, Ref: EntUser},
		{Name: "decision_note", Kind: KText},
	}})
	register(&Entity{Name: EntSale, CreateRoles: all, UpdateRoles: moneyOffice, Fields: []Field{
		{Name: "technician_id", Kind: KRef, Ref: EntUser, Writers: SideOffice, CreateOnly: true}, // the handler
		{Name: "kind", Kind: KEnum, Enum: SaleKinds, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "customer_id", Kind: KRef, Ref: EntCustomer, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket, Writers: SideBoth, CreateOnly: true},
		{Name: "lines", Kind: KJSON, Required: true, Writers: SideBoth, CreateOnly: true, Check: checkSaleLines},
		{Name: "total_fen", Kind: KMoney},
		// The cost of what was sold, shipping included: the office (commerce) adds it.
		{Name: "cost_fen", Kind: KMoney, Writers: SideOffice, Owner: SideOffice},
		{Name: "paid_fen", Kind: KMoney},
		{Name: "payments", Kind: KJSON}, // [{amount_fen, at, by}]
		{Name: "collected_at", Kind: KTime},
		{Name: "shipped_at", Kind: KTime},
		{Name: "credit_approval_id", Kind: KRef, Ref: EntApproval},
		{Name: "charge_approval_id", Kind: KRef, Ref: EntApproval},
		{Name: "invoice_issued_at", Kind: KTime},
		{Name: "liability_fen", Kind: KMoney},
		{Name: "liability_share_pct", Kind: KInt},
		{Name: "liability_at", Kind: KTime},
		{Name: "liability_by", Kind: KRef, Ref: EntUser},
		// The last ageing threshold (ReceivableThresholds) its handler was reminded of.
		{Name: "reminded_days", Kind: KInt},
	}})
}

// checkSaleLines checks a sale's lines: [{item, qty, price_fen}], at least one, each with a
// positive quantity and a non-negative integer price in fen.
func checkSaleLines(v any) error {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return fmt.Errorf("must be a non-empty list of {item, qty, price_fen}")
	}
	if len(list) > 200 {
		return fmt.Errorf("has %d lines; at most 200 are allowed", len(list))
	}
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("line %d must be an object {item, qty, price_fen}", i+1)
		}
		for k := range m {
			if k != "item" && k != "qty" && k != "price_fen" {
				return fmt.Errorf("line %d has unknown field %q (allowed: item, qty, price_fen)", i+1, k)
			}
		}
		d := Doc(m)
		if item, ok := m["item"].(string); !ok || strings.TrimSpace(item) == "" || len([]rune(item)) > MaxString {
			return fmt.Errorf("line %d: item must be a name of 1 to %d characters", i+1, MaxString)
		}
		for _, k := range []string{"qty", "price_fen"} {
			n, ok := intOf(m[k])
			if !ok {
				return fmt.Errorf("line %d: %s must be an integer", i+1, k)
			}
			if n < 0 || (k == "qty" && n == 0) || n > MaxFen {
				return fmt.Errorf("line %d: %s %d is out of range", i+1, k, n)
			}
			d[k] = Num(n)
		}
	}
	return nil
}

// MaxFen is the largest amount any one money field takes: 100 million yuan. Larger is a
// typing error, refused.
const MaxFen = 100_000_000_00

func intOf(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case float64:
		return int64(x), x == float64(int64(x))
	case int:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// SaleTotal sums a sale's lines (qty × price_fen).
func SaleTotal(sale Doc) int64 {
	list, _ := sale["lines"].([]any)
	var total int64
	for _, x := range list {
		m, _ := x.(map[string]any)
		q, _ := intOf(m["qty"])
		p, _ := intOf(m["price_fen"])
		total += q * p
	}
	return total
}

// Owed is what the customer still owes on a sale.
func Owed(sale Doc) int64 { return max(0, sale.Int("total_fen")-sale.Int("paid_fen")) }

// ApprovalDecider returns the role that decides an approval of kind for amount: the
// department manager for fares and software charges, and for credit below
// credit_threshold_fen; leadership for credit at or above it.
func ApprovalDecider(s *Settings, kind string, amount int64) string {
	if kind == ApprCredit && amount >= s.Int("credit_threshold_fen") {
		return RoleLeader
	}
	return RoleManager
}

// NewApproval fills and checks an approval request being created.
func NewApproval(r Reader, actor Actor, d Doc) error {
	if err := ownTechnician(r, actor, d); err != nil {
		return err
	}
	amount := d.Int("amount_fen")
	if amount <= 0 || amount > MaxFen {
		return FieldError(CodeValidation, "amount_fen", "金额必须大于零且合理 amount_fen %d must be more than 0 and at most %d fen", amount, int64(MaxFen))
	}
	kind := d.Str("kind")
	if kind == ApprCredit || kind == ApprSoftware {
		sale, err := r.Get(EntSale, d.Str("sale_id"))
		if err != nil {
			return FieldError(CodeValidation, "sale_id", "%s 审批需要指明销售单 a %s approval names its sale (sale_id %q does not exist)", kind, kind, d.Str("sale_id"))
		}
		if kind == ApprSoftware && sale.Str("kind") != "software" {
			return FieldError(CodeValidation, "sale_id", "sale %s is a %s sale: software_charge approvals are for software sales", sale.Str("id"), sale.Str("kind"))
		}
		if kind == ApprCredit && amount < Owed(sale) {
			return FieldError(CodeValidation, "amount_fen", "赊销金额不足 credit of %d fen does not cover the %d fen still owed on sale %s", amount, Owed(sale), sale.Str("id"))
		}
	}
	d["status"] = ApprPending
	d["decider_role"] = ApprovalDecider(r.Settings(), kind, amount)
	return nil
}

// ownTechnician sets the record's technician: a technician records their own; the office
// names an active technician.
func ownTechnician(r Reader, actor Actor, d Doc) error {
	if actor.Role == RoleTechnician {
		d["technician_id"] = actor.UserID
		return nil
	}
	u, err := r.Get(EntUser, d.Str("technician_id"))
	if err != nil || u.Str("role") != RoleTechnician {
		return FieldError(CodeValidation, "technician_id", "请指明技术员 technician_id %q is not a technician", d.Str("technician_id"))
	}
	return nil
}

func checkStep(actor Actor, entity, action string, params Doc) error {
	s, ok := MoneyStepOf(entity, action)
	if !ok {
		var names []string
		for _, x := range MoneySteps {
			if x.Entity == entity {
				names = append(names, x.Action)
			}
		}
		return FieldError(CodeValidation, "action", "unknown %s action %q (one of %s)", entity, action, strings.Join(names, ", "))
	}
	if !slices.Contains(s.Roles, actor.Role) {
		return Errorf(CodeForbidden, "%s 无权 %s: a %s may not %s a %s (allowed: %s)", actor.Role, action, actor.Role, action, entity, strings.Join(s.Roles, ", "))
	}
	for _, p := range s.Params {
		if v, isStr := params[p].(string); params[p] == nil || isStr && strings.TrimSpace(v) == "" {
			return FieldError(CodeValidation, p, "%s 需要 %s: %s needs %s", action, p, action, p)
		}
	}
	return nil
}

// ApprovalAction approves or declines a pending approval. Only the role the request needs
// (ApprovalDecider, fixed when it was made) decides it; an admin never does.
func ApprovalAction(r Reader, actor Actor, cur Doc, action string, params Doc) (Doc, error) {
	if err := checkStep(actor, EntApproval, action, params); err != nil {
		return nil, err
	}
	if need := cur.Str("decider_role"); actor.Role != need {
		return nil, Errorf(CodeForbidden, "此审批须由 %s 决定 this %s approval of %d fen is decided by the %s, not a %s", need, cur.Str("kind"), cur.Int("amount_fen"), need, actor.Role)
	}
	if cur.Str("status") != ApprPending {
		return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: fmt.Sprintf("审批已%s the approval was already %s", cur.Str("status"), cur.Str("status"))}
	}
	next := cur.Clone()
	next["status"] = map[string]string{"approve": ApprApproved, "decline": ApprDeclined}[action]
	next["decided_by"], next["decided_at"], next["decision_note"] = actor.UserID, Stamp(r.Now()), params.Str("note")
	return next, nil
}

// usableApproval checks that approval id is an approved one of kind for the record's
// technician (and sale), naming what is wrong.
func usableApproval(r Reader, field, id, kind, tech, saleID string) (Doc, error) {
	if id == "" {
		return nil, FieldError(CodeValidation, field, "缺少已批准的%s审批 a %s approval is needed first: give %s (the approved request)", kind, kind, field)
	}
	a, err := r.Get(EntApproval, id)
	if err != nil {
		return nil, FieldError(CodeValidation, field, "审批 %s 不存在 approval %s does not exist", id, id)
	}
	switch {
	case a.Str("kind") != kind:
		return nil, FieldError(CodeValidation, field, "approval %s is for %s, not %s", id, a.Str("kind"), kind)
	case a.Str("status") != ApprApproved:
		return nil, FieldError(CodeValidation, field, "审批 %s 未批准 approval %s is %s, not approved", id, id, a.Str("status"))
	case tech != "" && a.Str("technician_id") != tech:
		return nil, FieldError(CodeValidation, field, "approval %s was given to another technician", id)
	case saleID != "" && a.Str("sale_id") != saleID:
		return nil, FieldError(CodeValidation, field, "approval %s is for another sale", id)
	}
	return a, nil
}

// NewExpense checks an expense being recorded: a kind that is not reimbursed without prior
// approval (expense_kinds_without_approval) rests on an approved request of its kind for
// this technician, and does not exceed it.
func NewExpense(r Reader, actor Actor, d Doc) error {
	if err := ownTechnician(r, actor, d); err != nil {
		return err
	}
	amount := d.Int("amount_fen")
	if amount <= 0 || amount > r.Settings().Int("expense_max_fen") {
		return FieldError(CodeValidation, "amount_fen", "金额不合理 amount_fen %d must be more than 0 and at most %d fen (expense_max_fen)", amount, r.Settings().Int("expense_max_fen"))
	}
	kind := d.Str("kind")
	if !slices.Contains(r.Settings().List("expense_kinds_without_approval"), kind) {
		want := map[string]string{"taxi": ApprTaxi, "freight": ApprFreight}[kind]
		if want == "" {
			return FieldError(CodeValidation, "kind", "%s expenses are not reimbursed (expense_kinds_without_approval: %s)", kind, strings.Join(r.Settings().List("expense_kinds_without_approval"), ", "))
		}
		a, err := usableApproval(r, "approval_id", d.Str("approval_id"), want, d.Str("technician_id"), "")
		if err != nil {
			return err
		}
		if amount > a.Int("amount_fen") {
			return FieldError(CodeValidation, "amount_fen", "超出批准金额 %d fen is more than the %d fen approved in %s", amount, a.Int("amount_fen"), a.Str("id"))
		}
	}
	d["status"] = "submitted"
	return nil
}

// ExpenseAction reimburses or refuses a submitted expense.
func ExpenseAction(r Reader, actor Actor, cur Doc, action string, params Doc) (Doc, error) {
	if err := checkStep(actor, EntExpense, action, params); err != nil {
		return nil, err
	}
	if cur.Str("status") != "submitted" {
		return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: fmt.Sprintf("the expense was already %s", cur.Str("status"))}
	}
	next := cur.Clone()
	if action == "reimburse" {
		next["status"], next["reimbursed_at"] = "reimbursed", Stamp(r.Now())
	} else {
		next["status"] = "refused"
	}
	next["decided_by"], next["decision_note"] = actor.UserID, params.Str("note")
	return next, nil
}

// NewSale fills a sale being recorded: its handler, its total from the lines, nothing paid.
func NewSale(r Reader, actor Actor, d Doc) error {
	if err := ownTechnician(r, actor, d); err != nil {
		return err
	}
	if _, err := r.Get(EntCustomer, d.Str("customer_id")); err != nil {
		return FieldError(CodeValidation, "customer_id", "customer %q does not exist", d.Str("customer_id"))
	}
	total := SaleTotal(d)
	if total <= 0 || total > MaxFen {
		return FieldError(CodeValidation, "lines", "销售金额不合理 the lines add up to %d fen: more than 0 and at most %d", total, int64(MaxFen))
	}
	d["total_fen"], d["paid_fen"], d["payments"] = Num(total), Num(0), []any{}
	return nil
}

// SaleAction takes a payment, ships, records the invoice or charges a year-old debt to the
// handler.
func SaleAction(r Reader, actor Actor, cur Doc, action string, params Doc) (Doc, error) {
	if err := checkStep(actor, EntSale, action, params); err != nil {
		return nil, err
	}
	s := r.Settings()
	now := r.Now()
	next := cur.Clone()
	id := cur.Str("id")
	switch action {
	case "pay":
		amount, ok := intOf(params["amount_fen"])
		if !ok || amount <= 0 {
			return nil, FieldError(CodeValidation, "amount_fen", "amount_fen must be a positive integer in fen")
		}
		if owed := Owed(cur); amount > owed {
			return nil, FieldError(CodeValidation, "amount_fen", "收款超过欠款 a payment of %d fen is more than the %d fen owed on sale %s", amount, owed, id)
		}
		if cur.Str("kind") == "software" {
			if _, err := usableApproval(r, "charge_approval_id", cmp(params.Str("charge_approval_id"), cur.Str("charge_approval_id")), ApprSoftware, "", id); err != nil {
				return nil, err
			}
			next["charge_approval_id"] = cmp(params.Str("charge_approval_id"), cur.Str("charge_approval_id"))
		}
		pays, _ := cur["payments"].([]any)
		next["payments"] = append(slices.Clone(pays), map[string]any{"amount_fen": Num(amount), "at": Stamp(now), "by": actor.UserID})
		next["paid_fen"] = Num(cur.Int("paid_fen") + amount)
		if cur.Int("paid_fen")+amount == cur.Int("total_fen") {
			next["collected_at"] = Stamp(now)
		}
	case "ship":
		if cur.Str("shipped_at") != "" {
			return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: fmt.Sprintf("sale %s was already shipped", id)}
		}
		if owed := Owed(cur); owed > 0 {
			aid := params.Str("credit_approval_id")
			a, err := usableApproval(r, "credit_approval_id", aid, ApprCredit, "", id)
			if err != nil {
				return nil, err
			}
			if need := ApprovalDecider(s, ApprCredit, owed); a.Int("amount_fen") < owed || (need == RoleLeader && a.Str("decider_role") != RoleLeader) {
				return nil, FieldError(CodeValidation, "credit_approval_id", "赊销 %d 分需%s批准 shipping %d fen unpaid needs credit approved by the %s for at least that amount", owed, need, owed, need)
			}
			next["credit_approval_id"] = aid
		}
		next["shipped_at"] = Stamp(now)
	case "invoice":
		next["invoice_issued_at"] = Stamp(now)
	case "charge_liability":
		if cur.Str("liability_at") != "" {
			return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: fmt.Sprintf("sale %s was already charged to its handler", id)}
		}
		owed := Owed(cur)
		age := AgeDays(cur, now)
		if owed == 0 || age < s.Int("liability_after_days") {
			return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: fmt.Sprintf("未满一年 sale %s owes %d fen, open %d days: a debt is charged to its handler once open %d days", id, owed, age, s.Int("liability_after_days"))}
		}
		pct, ok := intOf(params["share_pct"])
		lo, hi := s.Int("liability_min_pct"), s.Int("liability_max_pct")
		if !ok || pct < lo || pct > hi {
			return nil, FieldError(CodeValidation, "share_pct", "承担比例须在 %d-%d%% share_pct must be between %d and %d", lo, hi, lo, hi)
		}
		next["liability_share_pct"], next["liability_fen"] = Num(pct), Num(owed*pct/100)
		next["liability_at"], next["liability_by"] = Stamp(now), actor.UserID
	}
	return next, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// AgeDays is how many whole days a sale's debt has been open at now: from shipping (goods
// out, money not in). A sale not shipped, or paid, has age 0.
func AgeDays(sale Doc, now time.Time) int64 {
	at := sale.Time("shipped_at")
	if at.IsZero() || Owed(sale) == 0 {
		return 0
	}
	return int64(now.Sub(at) / (24 * time.Hour))
}

// Receivable is one sale still owed, with its age.
type Receivable struct {
	SaleID       string `json:"sale_id"`
	TechnicianID string `json:"technician_id"`
	CustomerID   string `json:"customer_id"`
	OwedFen      int64  `json:"owed_fen"`
	AgeDays      int64  `json:"age_days"`
	Bucket       string `json:"bucket"` // 0-30, 31-90, 91-180, 181-364, 365+
	LiabilityFen int64  `json:"liability_fen"`
}

// ReceivableThresholds are the ages (days) where a debt enters the next ageing bucket; the
// handler is reminded once at each (ReminderDue).
var ReceivableThresholds = []int64{31, 91, 181, 365}

// ReceivableOf derives the receivable of a shipped sale still owed, or false.
func ReceivableOf(sale Doc, now time.Time) (Receivable, bool) {
	if sale.Str("shipped_at") == "" || Owed(sale) == 0 {
		return Receivable{}, false
	}
	age := AgeDays(sale, now)
	bucket, from := "", int64(0)
	for _, t := range ReceivableThresholds {
		if age < t {
			bucket = fmt.Sprintf("%d-%d", from, t-1)
			break
		}
		from = t
	}
	if bucket == "" {
		bucket = fmt.Sprintf("%d+", from)
	}
	return Receivable{SaleID: sale.Str("id"), TechnicianID: sale.Str("technician_id"), CustomerID: sale.Str("customer_id"),
		OwedFen: Owed(sale), AgeDays: age, Bucket: bucket, LiabilityFen: sale.Int("liability_fen")}, true
}

// ReminderDue returns the highest ageing threshold a sale's open debt has reached at now and
// its handler was not yet reminded of, or 0. A debt that crossed several thresholds since the
// last look gets one reminder, at the highest.
func ReminderDue(sale Doc, now time.Time) int64 {
	if sale.Str("shipped_at") == "" || Owed(sale) == 0 {
		return 0
	}
	age, due := AgeDays(sale, now), int64(0)
	for _, t := range ReceivableThresholds {
		if age >= t && t > sale.Int("reminded_days") {
			due = t
		}
	}
	return due
}
