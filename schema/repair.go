package schema

import (
	"fmt"
	"slices"
	"strings"
)

// Repairs sent back (policy 5, P11) and charges a technician took without reporting them
// (policy 6.2 B, P13). docs/money.md describes both.

// Entities of this file.
const (
	EntRepair     = "repair"
	EntUnreported = "unreported_charge"
)

// Repair statuses. A repair starts reported; commerce answers the warranty questions: in
// warranty with the manufacturer's on-site service it ends as manufacturer (the
// manufacturer comes on site); otherwise it goes quoted → confirmed (by the customer) →
// shipped (to commerce) → received → repaired → returned.
const (
	RepReported     = "reported"
	RepManufacturer = "manufacturer"
	RepAnswered     = "answered"
	RepQuoted       = "quoted"
	RepConfirmed    = "confirmed"
	RepShipped      = "shipped"
	RepReceived     = "received"
	RepRepaired     = "repaired"
	RepReturned     = "returned"
)

// RepairStatuses lists the statuses in their order.
var RepairStatuses = []string{RepReported, RepManufacturer, RepAnswered, RepQuoted, RepConfirmed, RepShipped, RepReceived, RepRepaired, RepReturned}

// repairSteps: for each action, the statuses it starts from and the status it leads to
// ("" for pay, which leaves the status as it is).
var repairSteps = map[string]struct {
	from []string
	to   string
}{
	"answer_warranty": {[]string{RepReported}, ""}, // to manufacturer or answered
	"quote":           {[]string{RepAnswered}, RepQuoted},
	"confirm":         {[]string{RepQuoted}, RepConfirmed},
	"ship":            {[]string{RepConfirmed}, RepShipped},
	"receive":         {[]string{RepShipped}, RepReceived},
	"repaired":        {[]string{RepReceived}, RepRepaired},
	"return":          {[]string{RepRepaired}, RepReturned},
	"pay":             {[]string{RepConfirmed, RepShipped, RepReceived, RepRepaired, RepReturned}, ""},
}

var repairDesk = []string{RoleCommerce, RoleAdmin}

func init() {
	MoneySteps = append(MoneySteps,
		MoneyStep{EntRepair, "answer_warranty", repairDesk, []string{"in_warranty", "manufacturer_onsite"}},
		MoneyStep{EntRepair, "quote", repairDesk, []string{"repair_fen", "shipping_fen"}},
		MoneyStep{EntRepair, "confirm", []string{RoleTechnician, RoleCoordinator, RoleManager, RoleCommerce, RoleAdmin}, []string{"confirmed_by"}},
		MoneyStep{EntRepair, "ship", []string{RoleTechnician, RoleCoordinator, RoleCommerce, RoleAdmin}, nil},
		MoneyStep{EntRepair, "receive", repairDesk, nil},
		MoneyStep{EntRepair, "repaired", repairDesk, nil},
		MoneyStep{EntRepair, "return", []string{RoleCommerce, RoleCoordinator, RoleAdmin}, nil},
		MoneyStep{EntRepair, "pay", payDesk, []string{"amount_fen"}},
	)
	all := append(slices.Clone(moneyOffice), RoleTechnician)
	register(&Entity{Name: EntRepair, CreateRoles: all, Fields: []Field{
		{Name: "technician_id", Kind: KRef, Ref: EntUser, Writers: SideOffice, CreateOnly: true}, // the handler
		{Name: "asset_id", Kind: KRef, Ref: EntAsset, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket, Writers: SideBoth, CreateOnly: true},
		{Name: "fault", Kind: KText, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "customer_id", Kind: KRef, Ref: EntCustomer}, // the asset's, set by the server
		{Name: "status", Kind: KEnum, Enum: RepairStatuses},
		{Name: "in_warranty", Kind: KBool},
		{Name: "manufacturer_onsite", Kind: KBool},
		{Name: "warranty_by", Kind: KRef, Ref: EntUser},
		{Name: "warranty_at", Kind: KTime},
		{Name: "repair_fen", Kind: KMoney},
		{Name: "shipping_fen", Kind: KMoney},
		{Name: "quote_fen", Kind: KMoney}, // repair_fen + shipping_fen: what the customer confirms
		{Name: "quoted_by", Kind: KRef, Ref: EntUser},
		{Name: "quoted_at", Kind: KTime},
		{Name: "confirmed_by", Kind: KText}, // the customer's person who accepted the quote
		{Name: "confirmed_at", Kind: KTime},
		{Name: "confirm_recorded_by", Kind: KRef, Ref: EntUser},
		{Name: "shipped_at", Kind: KTime},
		{Name: "received_at", Kind: KTime},
		{Name: "repaired_at", Kind: KTime},
		{Name: "returned_at", Kind: KTime},
		{Name: "paid_fen", Kind: KMoney},
		{Name: "payments", Kind: KJSON}, // [{amount_fen, at, by}]
		{Name: "collected_at", Kind: KTime},
	}})
	register(&Entity{Name: EntUnreported, CreateRoles: []string{RoleManager, RoleLeader}, Fields: []Field{
		{Name: "complaint_id", Kind: KRef, Ref: EntComplaint, Required: true, Writers: SideOffice, CreateOnly: true},
		{Name: "amount_fen", Kind: KMoney, Required: true, Writers: SideOffice, CreateOnly: true},
		{Name: "note", Kind: KText, Writers: SideOffice, CreateOnly: true},
		{Name: "technician_id", Kind: KRef, Ref: EntUser}, // the complaint's, set by the server
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket},
		{Name: "penalty_fen", Kind: KMoney}, // unreported_charge_penalty_fen when recorded
		{Name: "recorded_by", Kind: KRef, Ref: EntUser},
		{Name: "recorded_at", Kind: KTime},
	}})
}

// NewRepair fills and checks a repair being recorded: its handler, and the customer of the
// asset that goes back.
func NewRepair(r Reader, actor Actor, d Doc) error {
	if err := ownTechnician(r, actor, d); err != nil {
		return err
	}
	a, err := r.Get(EntAsset, d.Str("asset_id"))
	if err != nil {
		return FieldError(CodeValidation, "asset_id", "设备不存在 asset %q does not exist", d.Str("asset_id"))
	}
	d["customer_id"], d["status"], d["paid_fen"], d["payments"] = a.Str("customer_id"), RepReported, Num(0), []any{}
	return nil
}

// RepairAction takes one step of a repair (repairSteps): the warranty answer, the quote,
// the customer's confirmation, the trip through commerce and the fee.
func RepairAction(r Reader, actor Actor, cur Doc, action string, params Doc) (Doc, error) {
	if err := checkStep(actor, EntRepair, action, params); err != nil {
		return nil, err
	}
	step := repairSteps[action]
	id, st := cur.Str("id"), cur.Str("status")
	if !slices.Contains(step.from, st) {
		why := ""
		switch action {
		case "ship":
			why = "未经客户确认报价不得发回 nothing ships before the customer confirms the quote: "
		case "pay":
			why = "客户确认报价后才收费 the fee is collected once the customer confirmed the quote: "
		}
		return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: fmt.Sprintf("%s维修单 %s 状态为 %s / repair %s is %s; %s needs %s",
			why, id, st, id, st, action, strings.Join(step.from, " or "))}
	}
	now := Stamp(r.Now())
	next := cur.Clone()
	if step.to != "" {
		next["status"] = step.to
	}
	switch action {
	case "answer_warranty":
		in, ok1 := params["in_warranty"].(bool)
		onsite, ok2 := params["manufacturer_onsite"].(bool)
		if !ok1 || !ok2 {
			return nil, FieldError(CodeValidation, "in_warranty", "in_warranty and manufacturer_onsite must be true or false")
		}
		next["in_warranty"], next["manufacturer_onsite"], next["warranty_by"], next["warranty_at"] = in, onsite, actor.UserID, now
		next["status"] = RepAnswered
		if in && onsite {
			next["status"] = RepManufacturer // in warranty: the manufacturer serves on site
		}
	case "quote":
		rep, ok1 := intOf(params["repair_fen"])
		ship, ok2 := intOf(params["shipping_fen"])
		if !ok1 || !ok2 || rep < 0 || ship < 0 || rep+ship > MaxFen {
			return nil, FieldError(CodeValidation, "repair_fen", "repair_fen and shipping_fen must be integers in fen, 0 or more, together at most %d", int64(MaxFen))
		}
		if !cur.Bool("in_warranty") && rep+ship == 0 {
			return nil, FieldError(CodeValidation, "repair_fen", "保外维修须报价 an out-of-warranty repair needs a quote of more than 0 fen")
		}
		next["repair_fen"], next["shipping_fen"], next["quote_fen"] = Num(rep), Num(ship), Num(rep+ship)
		next["quoted_by"], next["quoted_at"] = actor.UserID, now
	case "confirm":
		who := strings.TrimSpace(params.Str("confirmed_by"))
		if who == "" || len([]rune(who)) > MaxString {
			return nil, FieldError(CodeValidation, "confirmed_by", "confirmed_by names the customer's person who accepted the quote")
		}
		next["confirmed_by"], next["confirmed_at"], next["confirm_recorded_by"] = who, now, actor.UserID
	case "ship":
		next["shipped_at"] = now
	case "receive":
		next["received_at"] = now
	case "repaired":
		next["repaired_at"] = now
	case "return":
		next["returned_at"] = now
	case "pay":
		amount, ok := intOf(params["amount_fen"])
		if !ok || amount <= 0 {
			return nil, FieldError(CodeValidation, "amount_fen", "amount_fen must be a positive integer in fen")
		}
		if owed := cur.Int("quote_fen") - cur.Int("paid_fen"); amount > owed {
			return nil, FieldError(CodeValidation, "amount_fen", "收款超过欠款 a payment of %d fen is more than the %d fen owed on repair %s", amount, owed, id)
		}
		pays, _ := cur["payments"].([]any)
		next["payments"] = append(slices.Clone(pays), map[string]any{"amount_fen": Num(amount), "at": now, "by": actor.UserID})
		next["paid_fen"] = Num(cur.Int("paid_fen") + amount)
		if cur.Int("paid_fen")+amount == cur.Int("quote_fen") {
			next["collected_at"] = now
		}
	}
	return next, nil
}

// NewUnreported fills and checks a charge the technician took from a customer without
// reporting it, found through a complaint: the complaint must be upheld; its technician
// bears the charge in full plus unreported_charge_penalty_fen, fixed when it is recorded.
func NewUnreported(r Reader, actor Actor, d Doc) error {
	c, err := r.Get(EntComplaint, d.Str("complaint_id"))
	if err != nil {
		return FieldError(CodeValidation, "complaint_id", "投诉不存在 complaint %q does not exist", d.Str("complaint_id"))
	}
	if c.Str("status") != "upheld" {
		return FieldError(CodeValidation, "complaint_id", "投诉尚未成立 complaint %s is %s: an unreported charge is recorded on an upheld complaint", c.Str("id"), c.Str("status"))
	}
	if c.Str("technician_id") == "" {
		return FieldError(CodeValidation, "complaint_id", "complaint %s names no technician", c.Str("id"))
	}
	amount := d.Int("amount_fen")
	if amount <= 0 || amount > MaxFen {
		return FieldError(CodeValidation, "amount_fen", "金额必须大于零且合理 amount_fen %d must be more than 0 and at most %d fen", amount, int64(MaxFen))
	}
	d["technician_id"], d["ticket_id"] = c.Str("technician_id"), c.Str("ticket_id")
	d["penalty_fen"] = Num(r.Settings().Int("unreported_charge_penalty_fen"))
	d["recorded_by"], d["recorded_at"] = actor.UserID, Stamp(r.Now())
	return nil
}
