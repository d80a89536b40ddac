package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Roles. One role per account.
const (
	RoleAdmin       = "admin"
	RoleCoordinator = "coordinator"
	RoleTechnician  = "technician"
	RoleManager     = "manager"
	RoleLeader      = "leader"
)

// Roles lists every role.
var Roles = []string{RoleAdmin, RoleCoordinator, RoleTechnician, RoleManager, RoleLeader, RoleCommerce}

// Side says which side of the company a role works on. It decides who may write a field and
// who wins when both sides changed it concurrently.
type Side int

const (
	SideServer Side = iota // only the server sets it (numbers, statuses, step times)
	SideOffice             // coordinators, managers, leaders, admins
	SideField              // technicians
	SideBoth
)

// SideOf returns the side a role works on.
func SideOf(role string) Side {
	if role == RoleTechnician {
		return SideField
	}
	return SideOffice
}

func (s Side) String() string {
	return [...]string{"server", "office", "technician", "both"}[s]
}

// Kind is a field's value type.
type Kind int

const (
	KString Kind = iota
	KText        // long free text
	KInt
	KMoney // integer fen, never negative
	KBool
	KTime // RFC 3339, stored in UTC
	KDate // YYYY-MM-DD
	KEnum
	KRef  // the id of a record of entity Ref
	KJSON // any JSON value, checked by Check
)

// Field describes one field of an entity: its type, who may write it, and who owns it when
// both sides edit it at once.
type Field struct {
	Name       string
	Kind       Kind
	Enum       []string
	Ref        string
	Required   bool // on create
	Writers    Side // who may set it in create/update; SideServer: nobody but the rules
	CreateOnly bool // may be set on create, never changed by update
	Owner      Side // conflict winner; SideServer: whoever writes last
	Check      func(v any) error
}

// Entity describes a record type.
type Entity struct {
	Name        string
	Fields      []Field
	CreateRoles []string // roles that may create it directly
	UpdateRoles []string // roles that may edit its fields
	DeleteRoles []string
	byName      map[string]*Field
}

// Field returns the named field.
func (e *Entity) Field(name string) (*Field, bool) {
	f, ok := e.byName[name]
	return f, ok
}

// Entity names, as they appear on the sync feed.
const (
	EntTicket      = "ticket"
	EntTicketEvent = "ticket_event"
	EntCustomer    = "customer"
	EntSite        = "site"
	EntAsset       = "asset"
	EntComplaint   = "complaint"
	EntFollowup    = "followup"
	EntUser        = "user"
	EntSetting     = "setting"
	EntSheet       = "feedback_sheet"
)

var entities = map[string]*Entity{}

// Entities returns every entity, by name.
func Entities() map[string]*Entity { return entities }

// LookupEntity returns the named entity.
func LookupEntity(name string) (*Entity, bool) {
	e, ok := entities[name]
	return e, ok
}

func register(e *Entity) {
	e.byName = map[string]*Field{}
	for i := range e.Fields {
		e.byName[e.Fields[i].Name] = &e.Fields[i]
	}
	entities[e.Name] = e
}

var office = []string{RoleAdmin, RoleCoordinator, RoleManager, RoleLeader}

// Enumerations.
var (
	Urgencies    = []string{"critical", "high", "normal", "low"}
	Sources      = []string{"hotline", "technician_report", "leadership"}
	Warranties   = []string{"in", "out", "unknown"}
	ServiceModes = []string{"onsite", "phone", "online"}
	ServiceTypes = []string{"repair", "maintenance", "installation", "inspection", "consultation", "software", "other"}
	Outcomes     = []string{"satisfied", "unsatisfied", "unreachable"}
)

func init() {
	register(&Entity{Name: EntUser, UpdateRoles: []string{RoleAdmin}, Fields: []Field{
		{Name: "username", Kind: KString},
		{Name: "name", Kind: KString, Required: true, Writers: SideOffice},
		{Name: "role", Kind: KEnum, Enum: Roles, Required: true, Writers: SideOffice},
		{Name: "phone", Kind: KString, Writers: SideOffice},
		{Name: "email", Kind: KString, Writers: SideOffice}, // where alert mail goes
		{Name: "dedicated", Kind: KBool, Writers: SideOffice},
		{Name: "probation", Kind: KBool, Writers: SideOffice},
		{Name: "active", Kind: KBool, Writers: SideOffice},
		// The dated history of probation and dedicated (EmploymentOn); with it, those two
		// flags are today's entry and change only through it.
		{Name: "employment", Kind: KJSON, Writers: SideOffice, Check: checkEmployment},
	}})
	register(&Entity{Name: EntSetting, UpdateRoles: []string{RoleAdmin}, Fields: []Field{
		{Name: "key", Kind: KString},
		{Name: "value", Kind: KJSON, Writers: SideOffice},
	}})
	register(&Entity{Name: EntCustomer, CreateRoles: office, UpdateRoles: office, Fields: []Field{
		{Name: "code", Kind: KString, Writers: SideOffice}, // the company's own customer number, unique when given
		{Name: "name", Kind: KString, Required: true, Writers: SideOffice},
		{Name: "phone", Kind: KString, Writers: SideOffice},
		{Name: "address", Kind: KText, Writers: SideOffice},
		{Name: "notes", Kind: KText, Writers: SideOffice},
	}})
	register(&Entity{Name: EntSite, CreateRoles: office, UpdateRoles: office, Fields: []Field{
		{Name: "customer_id", Kind: KRef, Ref: EntCustomer, Required: true, Writers: SideOffice, CreateOnly: true},
		{Name: "name", Kind: KString, Required: true, Writers: SideOffice},
		{Name: "address", Kind: KText, Writers: SideOffice},
		{Name: "contacts", Kind: KJSON, Writers: SideOffice, Check: checkContacts},
	}})
	register(&Entity{Name: EntAsset, CreateRoles: office, UpdateRoles: office, Fields: []Field{
		{Name: "customer_id", Kind: KRef, Ref: EntCustomer, Required: true, Writers: SideOffice, CreateOnly: true},
		{Name: "site_id", Kind: KRef, Ref: EntSite, Writers: SideOffice},
		{Name: "model", Kind: KString, Required: true, Writers: SideOffice},
		{Name: "serial", Kind: KString, Required: true, Writers: SideOffice},
		{Name: "install_date", Kind: KDate, Writers: SideOffice},
		{Name: "warranty_until", Kind: KDate, Writers: SideOffice},
		{Name: "manufacturer", Kind: KString, Writers: SideOffice},
		{Name: "manufacturer_onsite", Kind: KBool, Writers: SideOffice},
	}})
	register(&Entity{Name: EntTicket, CreateRoles: []string{RoleAdmin, RoleCoordinator, RoleManager, RoleLeader, RoleTechnician},
		UpdateRoles: Roles, Fields: []Field{
			{Name: "number", Kind: KString},
			{Name: "status", Kind: KEnum, Enum: Statuses},
			{Name: "source", Kind: KEnum, Enum: Sources, Writers: SideOffice, CreateOnly: true},
			{Name: "verified", Kind: KBool},
			{Name: "reported_by", Kind: KRef, Ref: EntUser},
			{Name: "received_at", Kind: KTime, Writers: SideOffice, CreateOnly: true},
			{Name: "customer_id", Kind: KRef, Ref: EntCustomer, Required: true, Writers: SideBoth, Owner: SideOffice},
			{Name: "site_id", Kind: KRef, Ref: EntSite, Writers: SideBoth, Owner: SideOffice},
			{Name: "asset_id", Kind: KRef, Ref: EntAsset, Writers: SideBoth, Owner: SideOffice},
			{Name: "contact_name", Kind: KString, Writers: SideBoth, Owner: SideOffice},
			{Name: "contact_phone", Kind: KString, Writers: SideBoth, Owner: SideOffice},
			{Name: "address", Kind: KText, Writers: SideBoth, Owner: SideOffice},
			{Name: "fault_symptoms", Kind: KText, Required: true, Writers: SideBoth, Owner: SideOffice},
			{Name: "urgency", Kind: KEnum, Enum: Urgencies, Writers: SideOffice, Owner: SideOffice},
			{Name: "service_type", Kind: KEnum, Enum: ServiceTypes, Writers: SideOffice, Owner: SideOffice},
			{Name: "warranty", Kind: KEnum, Enum: Warranties, Writers: SideOffice, Owner: SideOffice},
			{Name: "warranty_reason", Kind: KText, Writers: SideOffice, Owner: SideOffice},
			{Name: "chargeable", Kind: KBool, Writers: SideOffice, Owner: SideOffice},
			{Name: "agreed_handling", Kind: KText, Writers: SideOffice, Owner: SideOffice},
			{Name: "service_mode", Kind: KEnum, Enum: ServiceModes, Writers: SideOffice, Owner: SideOffice}, // it decides pay (month-end): the office sets it
			{Name: "actual_service_mode", Kind: KEnum, Enum: ServiceModes},
			{Name: "assignee_id", Kind: KRef, Ref: EntUser},
			{Name: "due_response_at", Kind: KTime},
			{Name: "due_arrival_at", Kind: KTime},
			{Name: "tech_notes", Kind: KText, Writers: SideField, Owner: SideField},
			{Name: "inspection_record", Kind: KText, Writers: SideField, Owner: SideField},
			{Name: "handling_result", Kind: KText, Writers: SideField, Owner: SideField},
			{Name: "time_spent_min", Kind: KInt, Writers: SideField, Owner: SideField},
			{Name: "cancel_reason", Kind: KText},
			{Name: "no_sheet_reason", Kind: KText},          // a manager's record that there is no sheet
			{Name: "no_sheet_by", Kind: KRef, Ref: EntUser}, // (receive_sheet without one)
			{Name: "reopened_from", Kind: KRef, Ref: EntTicket},
			{Name: "reopened_as", Kind: KRef, Ref: EntTicket},
			{Name: "verified_at", Kind: KTime},
			{Name: "dispatched_at", Kind: KTime},
			{Name: "escalated_at", Kind: KTime},
			{Name: "accepted_at", Kind: KTime},
			{Name: "en_route_at", Kind: KTime},
			{Name: "arrived_at", Kind: KTime},
			{Name: "started_at", Kind: KTime},
			{Name: "completed_at", Kind: KTime},
			{Name: "completed_by", Kind: KRef, Ref: EntUser},
			{Name: "sheet_received_at", Kind: KTime},
			{Name: "followed_up_at", Kind: KTime},
			{Name: "closed_at", Kind: KTime},
			{Name: "cancelled_at", Kind: KTime},
			{Name: "device_times", Kind: KJSON}, // the phone's times of accept and arrive (schema.StepTime)
		}})
	register(&Entity{Name: EntTicketEvent, CreateRoles: Roles, Fields: []Field{
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket, Required: true, Writers: SideBoth, CreateOnly: true},
		{Name: "kind", Kind: KEnum, Enum: []string{"action", "note", "orphaned_work", AlertDeadlineWarning, AlertDeadlineMissed}},
		{Name: "action", Kind: KString},
		{Name: "from_status", Kind: KString},
		{Name: "to_status", Kind: KString},
		{Name: "actor_id", Kind: KRef, Ref: EntUser},
		{Name: "device_id", Kind: KString},
		{Name: "at", Kind: KTime},
		{Name: "note", Kind: KText, Writers: SideBoth, CreateOnly: true},
		{Name: "details", Kind: KJSON},
	}})
	register(&Entity{Name: EntComplaint, CreateRoles: office, Fields: []Field{
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket, Required: true, Writers: SideOffice, CreateOnly: true},
		{Name: "technician_id", Kind: KRef, Ref: EntUser, Writers: SideOffice, CreateOnly: true},
		{Name: "received_at", Kind: KTime, Writers: SideOffice, CreateOnly: true},
		{Name: "description", Kind: KText, Required: true, Writers: SideOffice, CreateOnly: true},
		{Name: "status", Kind: KEnum, Enum: []string{"open", "upheld", "dismissed"}},
		{Name: "decided_by", Kind: KRef, Ref: EntUser},
		{Name: "decided_at", Kind: KTime},
		{Name: "decision_note", Kind: KText},
	}})
	register(&Entity{Name: EntFollowup, CreateRoles: []string{RoleAdmin, RoleManager, RoleCoordinator}, Fields: []Field{
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket, Required: true, Writers: SideOffice, CreateOnly: true},
		{Name: "called_by", Kind: KRef, Ref: EntUser},
		{Name: "called_at", Kind: KTime, Writers: SideOffice, CreateOnly: true},
		{Name: "outcome", Kind: KEnum, Enum: Outcomes, Required: true, Writers: SideOffice, CreateOnly: true},
		{Name: "notes", Kind: KText, Writers: SideOffice, CreateOnly: true},
		{Name: "technician_id", Kind: KRef, Ref: EntUser},
	}})
}

// checkEmployment accepts [{from: "YYYY-MM-DD", probation: bool, dedicated: bool,
// base_salary_fen: int (optional)}, ...], dates strictly increasing.
func checkEmployment(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("must be a list of {from, probation, dedicated, base_salary_fen}")
	}
	if len(list) > 100 {
		return fmt.Errorf("has %d entries, at most 100", len(list))
	}
	prev := ""
	for i, x := range list {
		m, ok := x.(map[string]any)
		_, salary := m["base_salary_fen"]
		if !ok || len(m) != 3 && !(len(m) == 4 && salary) {
			return fmt.Errorf("item %d must be exactly {from, probation, dedicated} and optionally base_salary_fen", i)
		}
		from, _ := m["from"].(string)
		if _, err := time.Parse(time.DateOnly, from); err != nil {
			return fmt.Errorf("item %d: from must be a date YYYY-MM-DD", i)
		}
		if from <= prev {
			return fmt.Errorf("item %d: from %s must come after %s (one entry per date, in order)", i, from, prev)
		}
		prev = from
		for _, k := range []string{"probation", "dedicated"} {
			if _, ok := m[k].(bool); !ok {
				return fmt.Errorf("item %d: %s must be true or false", i, k)
			}
		}
		if salary {
			n, ok := intOf(m["base_salary_fen"])
			if !ok || n < 0 || n > MaxFen {
				return fmt.Errorf("item %d: base_salary_fen must be an integer number of fen from 0 to %d", i, int64(MaxFen))
			}
			m["base_salary_fen"] = Num(n)
		}
	}
	return nil
}

// EmploymentOn returns a user's probation and dedicated facts in force on day (YYYY-MM-DD):
// the last entry of their employment history dated on or before it (before the first
// entry, the first entry: it is where the record starts). Without a history, the flags.
func EmploymentOn(u Doc, day string) (probation, dedicated bool) {
	e := employmentEntry(u, day)
	if e == nil {
		return u.Bool("probation"), u.Bool("dedicated")
	}
	p, _ := e["probation"].(bool)
	d, _ := e["dedicated"].(bool)
	return p, d
}

// BaseSalaryOn returns a user's monthly base salary (fen) in force on day, from the same
// entry of the employment history as EmploymentOn; 0 without one.
func BaseSalaryOn(u Doc, day string) int64 {
	n, _ := intOf(employmentEntry(u, day)["base_salary_fen"])
	return n
}

func employmentEntry(u Doc, day string) map[string]any {
	list, _ := u["employment"].([]any)
	if len(list) == 0 {
		return nil
	}
	e, _ := list[0].(map[string]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		if from, _ := m["from"].(string); from <= day {
			e = m
		}
	}
	return e
}

func checkContacts(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("must be a list of {name, phone}")
	}
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("item %d must be an object {name, phone}", i)
		}
		for k, val := range m {
			if k != "name" && k != "phone" {
				return fmt.Errorf("item %d has unknown field %q (allowed: name, phone)", i, k)
			}
			s, ok := val.(string)
			if !ok {
				return fmt.Errorf("item %d: %s must be a string", i, k)
			}
			if _, r, bad := controlChar(s, false); bad {
				return fmt.Errorf("item %d: %s has the control character U+%04X", i, k, r)
			}
		}
		if strings.TrimSpace(fmt.Sprint(m["name"])) == "" || m["name"] == nil {
			return fmt.Errorf("item %d: name is required", i)
		}
	}
	return nil
}

// Length limits for text, in characters (not bytes: Chinese text counts as written).
const (
	MaxString = 200
	MaxText   = 8000
)

// DecodeValue checks one raw JSON field value against its Field and returns it in the form
// records store (strings, json.Number, bool, nil, or decoded JSON for KJSON). Every error
// names the field and says what was expected.
func DecodeValue(f *Field, raw json.RawMessage) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, FieldError(CodeBadRequest, f.Name, "%s: not valid JSON", f.Name)
	}
	if v == nil {
		if f.Required {
			return nil, FieldError(CodeValidation, f.Name, "%s is required", f.Name)
		}
		return zeroOf(f), nil
	}
	bad := func(want string) error {
		return FieldError(CodeValidation, f.Name, "%s must be %s", f.Name, want)
	}
	switch f.Kind {
	case KString, KText, KRef, KEnum, KTime, KDate:
		s, ok := v.(string)
		if !ok {
			return nil, bad(map[Kind]string{KString: "a string", KText: "a string", KRef: "an id (string)",
				KEnum: "one of " + strings.Join(f.Enum, ", "), KTime: "an RFC 3339 time", KDate: "a date YYYY-MM-DD"}[f.Kind])
		}
		if !utf8.ValidString(s) {
			return nil, bad("valid UTF-8")
		}
		switch f.Kind {
		case KString, KText:
			limit := MaxString
			if f.Kind == KText {
				limit = MaxText
			}
			if n := utf8.RuneCountInString(s); n > limit {
				return nil, FieldError(CodeValidation, f.Name, "%s is %d characters long; at most %d are allowed", f.Name, n, limit)
			}
			if i, r, bad := controlChar(s, f.Kind == KText); bad {
				return nil, FieldError(CodeValidation, f.Name, "%s has the control character U+%04X at position %d; remove it", f.Name, r, i+1)
			}
			if f.Required && strings.TrimSpace(s) == "" {
				return nil, FieldError(CodeValidation, f.Name, "%s is required", f.Name)
			}
		case KRef:
			if s == "" {
				if f.Required {
					return nil, FieldError(CodeValidation, f.Name, "%s is required", f.Name)
				}
				return nil, nil
			}
			if len(s) > 64 {
				return nil, bad("an id of at most 64 characters")
			}
		case KEnum:
			if !slices.Contains(f.Enum, s) {
				return nil, FieldError(CodeValidation, f.Name, "%s %q is not one of %s", f.Name, s, strings.Join(f.Enum, ", "))
			}
		case KTime:
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, FieldError(CodeValidation, f.Name, "%s %q is not an RFC 3339 time (e.g. 2026-11-26T09:30:00Z)", f.Name, s)
			}
			if y := t.UTC().Year(); y < 1970 || y > 9999 {
				return nil, FieldError(CodeValidation, f.Name, "%s %q is outside the years 1970 to 9999", f.Name, s)
			}
			return Stamp(t), nil
		case KDate:
			if _, err := time.Parse(time.DateOnly, s); err != nil {
				return nil, FieldError(CodeValidation, f.Name, "%s %q is not a date YYYY-MM-DD", f.Name, s)
			}
		}
		return s, nil
	case KInt, KMoney:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad("an integer")
		}
		i, err := n.Int64()
		if err != nil {
			if fl, ferr := n.Float64(); ferr == nil && fl == math.Trunc(fl) && math.Abs(fl) < 1<<53 {
				i = int64(fl)
			} else {
				return nil, bad("an integer")
			}
		}
		if i < 0 && f.Kind == KMoney {
			return nil, bad("a non-negative amount in fen")
		}
		if i < 0 || i > 1<<40 {
			return nil, FieldError(CodeValidation, f.Name, "%s %d is out of range", f.Name, i)
		}
		return Num(i), nil
	case KBool:
		b, ok := v.(bool)
		if !ok {
			return nil, bad("true or false")
		}
		return b, nil
	case KJSON:
		if f.Check != nil {
			if err := f.Check(v); err != nil {
				return nil, FieldError(CodeValidation, f.Name, "%s: %v", f.Name, err)
			}
		}
		return v, nil
	}
	return nil, bad("a known type")
}

// controlChar finds the first control character in s (C0, DEL, C1), which a name or any
// one-line text never needs and which can hide text or break a printed or exported line;
// multiline text (KText) keeps its line breaks and tabs. It returns the character's
// position in characters, from 0.
func controlChar(s string, multiline bool) (int, rune, bool) {
	i := 0
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return i, r, true
		}
		i++
	}
	return 0, 0, false
}

func zeroOf(f *Field) any {
	switch f.Kind {
	case KString, KText:
		return ""
	case KInt, KMoney:
		return Num(0)
	case KBool:
		return false
	}
	return nil
}

// Blank returns a new record of entity e with every declared field at its empty value, so
// clients always see the whole shape.
func (e *Entity) Blank(id string) Doc {
	d := Doc{"id": id}
	for i := range e.Fields {
		d[e.Fields[i].Name] = zeroOf(&e.Fields[i])
	}
	return d
}

// SheetRequirable lists the feedback sheet items the sheet_required setting may name.
var SheetRequirable = []string{"fault_symptoms", "inspection_record", "handling_result", "rating", "signer_name", "signature_blob", "stamp_blob", "technician_signature_blob", "arrived_at", "departed_at"}
