package schema

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Ticket statuses.
const (
	StReported      = "reported"
	StRegistered    = "registered"
	StEscalated     = "escalated"
	StDispatched    = "dispatched"
	StAccepted      = "accepted"
	StEnRoute       = "en_route"
	StOnSite        = "on_site"
	StCompleted     = "completed"
	StSheetReceived = "sheet_received"
	StFollowedUp    = "followed_up"
	StClosed        = "closed"
	StCancelled     = "cancelled"
)

// Statuses lists every ticket status in workflow order.
var Statuses = []string{StReported, StRegistered, StEscalated, StDispatched, StAccepted, StEnRoute,
	StOnSite, StCompleted, StSheetReceived, StFollowedUp, StClosed, StCancelled}

// Actor is who makes a change: a user, with the device it came from if any.
type Actor struct {
	UserID   string
	Role     string
	Name     string
	DeviceID string // the server's device id, "" for the web and the CLI
}

// System is the actor of changes fieldsync makes itself (seeding, migrations of data).
var System = Actor{UserID: "system", Role: RoleAdmin, Name: "fieldsync"}

// Reader is what the rules may read while a change is being applied: records as of the
// transaction, the settings, and the server clock.
type Reader interface {
	Get(entity, id string) (Doc, error) // a *Error with CodeNotFound when missing
	Settings() *Settings
	Now() time.Time
}

// Effect is a further change a rule asks for, applied in the same transaction by the same
// actor (a received sheet moves its ticket; a follow-up call moves the ticket; reopening
// creates a linked ticket).
type Effect struct {
	Entity string
	ID     string
	Op     string // "create" or "action"
	Action string
	Fields Doc
	Params Doc
}

// Step is one workflow action of the ticket state machine.
type Step struct {
	Action string
	From   []string
	To     string   // "" leaves the status as it is
	Roles  []string // who may take it
	// OwnOnly: a technician may take it only on a ticket assigned to them.
	OwnOnly bool
	Params  []string // required parameters
	Stamp   string   // the time field set to the server time
}

var coord = []string{RoleCoordinator, RoleAdmin}
var coordMgr = []string{RoleCoordinator, RoleManager, RoleAdmin}
var fieldWork = []string{RoleTechnician, RoleCoordinator, RoleAdmin}

// TicketSteps is the ticket state machine and its permission table, the one place both are
// written. docs/workflow.md draws it.
var TicketSteps = []Step{
	{Action: "verify", From: []string{StReported}, To: StRegistered, Roles: coord, Stamp: "verified_at"},
	{Action: "reject", From: []string{StReported}, To: StCancelled, Roles: coord, Params: []string{"reason"}, Stamp: "cancelled_at"},
	{Action: "dispatch", From: []string{StRegistered, StEscalated, StDispatched, StAccepted, StEnRoute, StOnSite}, To: StDispatched, Roles: coordMgr, Params: []string{"technician_id"}, Stamp: "dispatched_at"},
	{Action: "escalate", From: []string{StRegistered, StDispatched, StAccepted}, To: StEscalated, Roles: coordMgr, Stamp: "escalated_at"},
	{Action: "accept", From: []string{StDispatched}, To: StAccepted, Roles: fieldWork, OwnOnly: true, Stamp: "accepted_at"},
	{Action: "en_route", From: []string{StAccepted}, To: StEnRoute, Roles: fieldWork, OwnOnly: true, Stamp: "en_route_at"},
	{Action: "arrive", From: []string{StEnRoute}, To: StOnSite, Roles: fieldWork, OwnOnly: true, Stamp: "arrived_at"},
	{Action: "start", From: []string{StAccepted, StOnSite}, Roles: fieldWork, OwnOnly: true, Stamp: "started_at"},
	{Action: "complete", From: []string{StAccepted, StOnSite}, To: StCompleted, Roles: fieldWork, OwnOnly: true, Params: []string{"service_mode"}, Stamp: "completed_at"},
	{Action: "cancel", From: []string{StReported, StRegistered, StEscalated, StDispatched, StAccepted, StEnRoute, StOnSite}, To: StCancelled, Roles: coordMgr, Params: []string{"reason"}, Stamp: "cancelled_at"},
	// receive_sheet follows the receipt of the ticket's sheet; without one, a manager records
	// that there is none with no_sheet_reason (sync checks which).
	{Action: "receive_sheet", From: []string{StCompleted}, To: StSheetReceived, Roles: coordMgr, Stamp: "sheet_received_at"},
	{Action: "follow_up", From: []string{StSheetReceived, StFollowedUp}, To: StFollowedUp, Roles: []string{RoleManager, RoleCoordinator, RoleAdmin}, Stamp: "followed_up_at"},
	{Action: "close", From: []string{StFollowedUp}, To: StClosed, Roles: coordMgr, Stamp: "closed_at"},
	{Action: "reopen", From: []string{StClosed}, Roles: coordMgr, Params: []string{"reason"}},
}

// TicketStep returns the named step.
func TicketStep(action string) (Step, bool) {
	for _, s := range TicketSteps {
		if s.Action == action {
			return s, true
		}
	}
	return Step{}, false
}

// CanAct reports whether actor may take step on ticket t, and why not.
func CanAct(actor Actor, s Step, t Doc) error {
	if !slices.Contains(s.Roles, actor.Role) {
		return Errorf(CodeForbidden, "a %s may not %s a ticket (allowed: %s)", actor.Role, s.Action, strings.Join(s.Roles, ", "))
	}
	if actor.Role == RoleTechnician && s.OwnOnly && t.Str("assignee_id") != actor.UserID {
		return Errorf(CodeForbidden, "ticket %s is not assigned to you", t.Str("number"))
	}
	return nil
}

// TicketAction applies a workflow step to ticket cur and returns the new state and any
// further effects. It checks the role, the state and the step's own rules.
func TicketAction(r Reader, actor Actor, cur Doc, action string, params Doc) (Doc, []Effect, error) {
	s, ok := TicketStep(action)
	if !ok {
		return nil, nil, FieldError(CodeValidation, "action", "unknown ticket action %q", action)
	}
	if err := CanAct(actor, s, cur); err != nil {
		return nil, nil, err
	}
	status := cur.Str("status")
	if !slices.Contains(s.From, status) {
		return nil, nil, &Error{Code: CodeInvalidTransition, Record: cur,
			Message: fmt.Sprintf("cannot %s ticket %s: it is %s (allowed from: %s)", action, cur.Str("number"), status, strings.Join(s.From, ", "))}
	}
	for _, p := range s.Params {
		if strings.TrimSpace(params.Str(p)) == "" {
			return nil, nil, FieldError(CodeValidation, p, "%s needs %s", action, p)
		}
	}
	now := Stamp(r.Now())
	next := cur.Clone()
	if s.To != "" {
		next["status"] = s.To
	}
	if s.Stamp != "" {
		next[s.Stamp] = now
	}
	mode := cur.Str("service_mode")
	remote := mode == "phone" || mode == "online"
	var effects []Effect
	switch action {
	case "verify":
		next["verified"] = true
	case "reject", "cancel":
		next["cancel_reason"] = params.Str("reason")
	case "dispatch":
		tech, err := r.Get(EntUser, params.Str("technician_id"))
		if err != nil || tech.Str("role") != RoleTechnician || !tech.Bool("active") {
			return nil, nil, FieldError(CodeValidation, "technician_id", "technician_id %q is not an active technician", params.Str("technician_id"))
		}
		next["assignee_id"] = tech.Str("id")
		for _, f := range []string{"accepted_at", "en_route_at", "arrived_at", "started_at", "device_times"} {
			next[f] = nil
		}
	case "escalate":
		next["assignee_id"] = nil
	case "en_route":
		if remote {
			return nil, nil, &Error{Code: CodeInvalidTransition, Field: "service_mode", Record: cur,
				Message: fmt.Sprintf("ticket %s is a %s service: it has no travel; start and complete it", cur.Str("number"), mode)}
		}
	case "start":
		if status == StAccepted && !remote {
			return nil, nil, &Error{Code: CodeInvalidTransition, Record: cur,
				Message: fmt.Sprintf("ticket %s is an on-site service: arrive before you start", cur.Str("number"))}
		}
	case "complete":
		m := params.Str("service_mode")
		if !slices.Contains(ServiceModes, m) {
			return nil, nil, FieldError(CodeValidation, "service_mode", "service_mode %q is not one of %s", m, strings.Join(ServiceModes, ", "))
		}
		if status == StAccepted && m == "onsite" {
			return nil, nil, &Error{Code: CodeInvalidTransition, Field: "service_mode", Record: cur,
				Message: fmt.Sprintf("ticket %s: an on-site service is completed on site; record arrival first", cur.Str("number"))}
		}
		next["actual_service_mode"] = m
		// The work is the assignee's even when the office records it on their behalf; who
		// recorded it is in the change log.
		next["completed_by"] = cur.Str("assignee_id")
		if next.Str("started_at") == "" {
			next["started_at"] = now
		}
	case "reopen":
		if cur.Str("reopened_as") != "" {
			return nil, nil, &Error{Code: CodeInvalidTransition, Record: cur,
				Message: fmt.Sprintf("ticket %s was already reopened as %s", cur.Str("number"), cur.Str("reopened_as"))}
		}
		newID := params.Str("new_id")
		next["reopened_as"] = newID
		fields := Doc{"reopened_from": cur.Str("id"), "fault_symptoms": params.Str("reason")}
		for _, k := range []string{"customer_id", "site_id", "asset_id", "contact_name", "contact_phone", "address", "urgency", "service_type", "service_mode", "chargeable", "agreed_handling"} {
			fields[k] = cur[k]
		}
		effects = append(effects, Effect{Entity: EntTicket, ID: newID, Op: "create", Fields: fields})
	}
	return next, effects, nil
}

// NewTicket fills the server-decided fields of a ticket being created from fields given by
// actor: status and verification by source, who reported it, warranty from the asset, the
// service commitment deadlines, and checks that site and asset belong to the customer.
func NewTicket(r Reader, actor Actor, t Doc, explicit map[string]bool) error {
	now := r.Now()
	switch {
	case actor.Role == RoleTechnician:
		if explicit["source"] && t.Str("source") != "technician_report" {
			return FieldError(CodeValidation, "source", "a technician reports requests with source technician_report")
		}
		t["source"] = "technician_report"
	case !explicit["source"] || t.Str("source") == "":
		if actor.Role == RoleLeader {
			t["source"] = "leadership"
		} else {
			t["source"] = "hotline"
		}
	}
	if t.Str("source") == "technician_report" {
		t["status"], t["verified"] = StReported, false
	} else {
		t["status"], t["verified"] = StRegistered, true
		t["verified_at"] = Stamp(now)
	}
	t["reported_by"] = actor.UserID
	if t.Str("received_at") == "" {
		t["received_at"] = Stamp(now)
	}
	if t.Str("urgency") == "" {
		t["urgency"] = "normal"
	}
	if t.Str("service_type") == "" {
		t["service_type"] = "repair"
	}
	if t.Str("service_mode") == "" {
		t["service_mode"] = "onsite"
	}
	if err := CheckTicketRefs(r, t); err != nil {
		return err
	}
	derived := "unknown"
	if id := t.Str("asset_id"); id != "" {
		a, _ := r.Get(EntAsset, id)
		derived = WarrantyAt(a.Str("warranty_until"), t.Time("received_at"), r.Settings().Location())
	}
	if !explicit["warranty"] || t.Str("warranty") == "" {
		t["warranty"] = derived
	} else if t.Str("warranty") != derived && strings.TrimSpace(t.Str("warranty_reason")) == "" {
		return FieldError(CodeValidation, "warranty_reason", "warranty %q differs from the asset's (%s): give warranty_reason", t.Str("warranty"), derived)
	}
	resp, arr := r.Settings().Deadlines(t.Str("urgency"), t.Time("received_at"))
	t["due_response_at"], t["due_arrival_at"] = Stamp(resp), Stamp(arr)
	return nil
}

// CheckTicketRefs checks that the ticket's customer exists and that its site and asset belong
// to that customer; it fills the address and contact from the site when they are empty.
func CheckTicketRefs(r Reader, t Doc) error {
	cust := t.Str("customer_id")
	if _, err := r.Get(EntCustomer, cust); err != nil {
		return FieldError(CodeValidation, "customer_id", "customer %q does not exist", cust)
	}
	if id := t.Str("site_id"); id != "" {
		s, err := r.Get(EntSite, id)
		if err != nil {
			return FieldError(CodeValidation, "site_id", "site %q does not exist", id)
		}
		if s.Str("customer_id") != cust {
			return FieldError(CodeValidation, "site_id", "site %q belongs to another customer", id)
		}
		if t.Str("address") == "" {
			t["address"] = s.Str("address")
		}
		if t.Str("contact_name") == "" {
			if cs, ok := s["contacts"].([]any); ok && len(cs) > 0 {
				if c, ok := cs[0].(map[string]any); ok {
					t["contact_name"], _ = c["name"].(string)
					t["contact_phone"], _ = c["phone"].(string)
				}
			}
		}
	}
	if id := t.Str("asset_id"); id != "" {
		a, err := r.Get(EntAsset, id)
		if err != nil {
			return FieldError(CodeValidation, "asset_id", "asset %q does not exist", id)
		}
		if a.Str("customer_id") != cust {
			return FieldError(CodeValidation, "asset_id", "asset %q belongs to another customer", id)
		}
	}
	return nil
}

// WarrantyAt says whether an asset whose warranty ends on until (YYYY-MM-DD, inclusive) was
// in warranty at t in the company's time zone.
func WarrantyAt(until string, t time.Time, loc *time.Location) string {
	if until == "" {
		return "unknown"
	}
	if t.In(loc).Format(time.DateOnly) <= until {
		return "in"
	}
	return "out"
}

// Deadline is one of a ticket's commitments not yet met: "response" (accept) or "arrival"
// (on site), due at Due.
type Deadline struct {
	Name string
	Due  time.Time
}

// PendingDeadlines returns the deadlines of an open ticket not yet met: the response
// deadline while it is not accepted, the arrival deadline of an on-site service while the
// technician has not arrived. A completed, closed or cancelled ticket has none.
func PendingDeadlines(t Doc) []Deadline {
	switch t.Str("status") {
	case StCompleted, StSheetReceived, StFollowedUp, StClosed, StCancelled:
		return nil
	}
	var out []Deadline
	if due := t.Time("due_response_at"); !due.IsZero() && t.Str("accepted_at") == "" {
		out = append(out, Deadline{"response", due})
	}
	if due := t.Time("due_arrival_at"); !due.IsZero() && t.Str("service_mode") == "onsite" && t.Str("arrived_at") == "" {
		out = append(out, Deadline{"arrival", due})
	}
	return out
}

// Overdue reports whether a ticket has missed its response or arrival deadline at now: not
// accepted by its response deadline, or (on-site) not arrived by its arrival deadline.
func Overdue(t Doc, now time.Time) bool {
	for _, d := range PendingDeadlines(t) {
		if now.After(d.Due) {
			return true
		}
	}
	return false
}

// Terminal reports whether a ticket in status st takes no more field work.
func Terminal(st string) bool {
	return st == StClosed || st == StCancelled
}

// WorkflowMeta is the workflow table and the enumerations as the web front ends read them
// (the console's and the field app's meta.json), so that neither keeps its own copy of the
// rules.
func WorkflowMeta() map[string]any {
	type step struct {
		Action string   `json:"action"`
		From   []string `json:"from"`
		To     string   `json:"to"`
		Roles  []string `json:"roles"`
		Params []string `json:"params"`
	}
	steps := make([]step, 0, len(TicketSteps))
	for _, s := range TicketSteps {
		steps = append(steps, step{s.Action, s.From, s.To, s.Roles, append([]string{}, s.Params...)})
	}
	return map[string]any{
		"steps":            steps,
		"statuses":         Statuses,
		"roles":            Roles,
		"urgencies":        Urgencies,
		"sources":          Sources,
		"warranties":       Warranties,
		"service_modes":    ServiceModes,
		"service_types":    ServiceTypes,
		"outcomes":         Outcomes,
		"sheet_status":     SheetStatuses,
		"sheet_requirable": SheetRequirable,
		"money_steps":      MoneySteps, // who takes which step on a money record (docs/money.md)
		// The words people read for codes and items, one source for every screen.
		"labels": map[string]any{"urgency": UrgencyLabels},
		"items":  ItemLabels(),
	}
}
