package schema

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// data is the little a workflow rule reads: users and the settings, held in memory.
type data struct {
	docs map[string]Doc
	now  time.Time
}

func (d data) Get(entity, id string) (Doc, error) {
	if doc, ok := d.docs[entity+"/"+id]; ok {
		return doc, nil
	}
	return nil, Errorf(CodeNotFound, "no %s %s", entity, id)
}
func (d data) Settings() *Settings { return NewSettings(nil) }
func (d data) Now() time.Time      { return d.now }

// expected lists, for each action, the statuses it may start from and the roles that may
// take it; it is written out independently of TicketSteps so that a change to either shows.
var expected = map[string]struct {
	from  []string
	roles []string
}{
	"verify":        {[]string{StReported}, []string{RoleCoordinator, RoleAdmin}},
	"reject":        {[]string{StReported}, []string{RoleCoordinator, RoleAdmin}},
	"dispatch":      {[]string{StRegistered, StEscalated, StDispatched, StAccepted, StEnRoute, StOnSite}, []string{RoleCoordinator, RoleManager, RoleAdmin}},
	"escalate":      {[]string{StRegistered, StDispatched, StAccepted}, []string{RoleCoordinator, RoleManager, RoleAdmin}},
	"accept":        {[]string{StDispatched}, []string{RoleTechnician, RoleCoordinator, RoleAdmin}},
	"en_route":      {[]string{StAccepted}, []string{RoleTechnician, RoleCoordinator, RoleAdmin}},
	"arrive":        {[]string{StEnRoute}, []string{RoleTechnician, RoleCoordinator, RoleAdmin}},
	"start":         {[]string{StOnSite}, []string{RoleTechnician, RoleCoordinator, RoleAdmin}},
	"complete":      {[]string{StOnSite}, []string{RoleTechnician, RoleCoordinator, RoleAdmin}},
	"cancel":        {[]string{StReported, StRegistered, StEscalated, StDispatched, StAccepted, StEnRoute, StOnSite}, []string{RoleCoordinator, RoleManager, RoleAdmin}},
	"receive_sheet": {[]string{StCompleted}, []string{RoleCoordinator, RoleManager, RoleAdmin}},
	"follow_up":     {[]string{StSheetReceived, StFollowedUp}, []string{RoleManager, RoleCoordinator, RoleAdmin}},
	"close":         {[]string{StFollowedUp}, []string{RoleCoordinator, RoleManager, RoleAdmin}},
	"reopen":        {[]string{StClosed}, []string{RoleCoordinator, RoleManager, RoleAdmin}},
}

var params = Doc{"reason": "customer asked", "technician_id": "tech-1", "service_mode": "onsite", "new_id": "new-ticket"}

// TestEveryTransitionForEveryRole walks every action from every status for every role on an
// on-site ticket assigned to tech-1 and checks allowed steps succeed and others are refused
// with the right code.
func TestEveryTransitionForEveryRole(t *testing.T) {
	d := data{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), docs: map[string]Doc{
		"user/tech-1": {"id": "tech-1", "role": RoleTechnician, "active": true},
	}}
	for action, want := range expected {
		for _, st := range Statuses {
			for _, role := range Roles {
				t.Run(fmt.Sprintf("%s/%s/%s", action, st, role), func(t *testing.T) {
					ticket := Doc{"id": "t1", "number": "SR-1", "status": st, "service_mode": "onsite", "assignee_id": "tech-1"}
					actor := Actor{UserID: "someone", Role: role}
					if role == RoleTechnician {
						actor.UserID = "tech-1"
					}
					next, _, err := TicketAction(d, actor, ticket, action, params.Clone())
					roleOK := slices.Contains(want.roles, role)
					fromOK := slices.Contains(want.from, st)
					switch {
					case !roleOK:
						if ErrorCode(err) != CodeForbidden {
							t.Fatalf("got %v, want forbidden", err)
						}
					case !fromOK:
						if ErrorCode(err) != CodeInvalidTransition {
							t.Fatalf("got %v, want invalid_transition", err)
						}
						if e, _ := AsError(err); e.Record == nil {
							t.Error("invalid_transition without the current record")
						}
					default:
						if err != nil {
							t.Fatalf("allowed step refused: %v", err)
						}
						if next["version"] != ticket["version"] || next.Str("id") != "t1" {
							t.Error("the step changed the identity of the ticket")
						}
					}
				})
			}
		}
	}
	if len(expected) != len(TicketSteps) {
		t.Errorf("TicketSteps has %d steps, the test expects %d: update both", len(TicketSteps), len(expected))
	}
}

func TestTechnicianOnlyOnOwnTicket(t *testing.T) {
	d := data{now: time.Now(), docs: map[string]Doc{}}
	ticket := Doc{"id": "t1", "number": "SR-1", "status": StDispatched, "service_mode": "onsite", "assignee_id": "tech-1"}
	_, _, err := TicketAction(d, Actor{UserID: "tech-2", Role: RoleTechnician}, ticket, "accept", Doc{})
	if ErrorCode(err) != CodeForbidden {
		t.Fatalf("another technician accepted: %v", err)
	}
}

func TestRemoteServicesSkipTravel(t *testing.T) {
	d := data{now: time.Now(), docs: map[string]Doc{}}
	tech := Actor{UserID: "tech-1", Role: RoleTechnician}
	phone := Doc{"id": "t1", "number": "SR-1", "status": StAccepted, "service_mode": "phone", "assignee_id": "tech-1"}
	if _, _, err := TicketAction(d, tech, phone, "en_route", Doc{}); ErrorCode(err) != CodeInvalidTransition {
		t.Errorf("en_route on a phone ticket: %v", err)
	}
	next, _, err := TicketAction(d, tech, phone, "start", Doc{})
	if err != nil || next.Str("status") != StAccepted || next.Str("started_at") == "" {
		t.Fatalf("start a phone service: %v %v", err, next)
	}
	done, _, err := TicketAction(d, tech, next, "complete", Doc{"service_mode": "phone"})
	if err != nil || done.Str("status") != StCompleted || done.Str("actual_service_mode") != "phone" || done.Str("completed_by") != "tech-1" {
		t.Fatalf("complete a phone service: %v %v", err, done)
	}
	if _, _, err := TicketAction(d, tech, phone, "complete", Doc{"service_mode": "onsite"}); ErrorCode(err) != CodeInvalidTransition {
		t.Errorf("completing on site without arriving: %v", err)
	}
	if _, _, err := TicketAction(d, tech, phone, "complete", Doc{"service_mode": "carrier-pigeon"}); ErrorCode(err) != CodeValidation {
		t.Errorf("unknown service mode: %v", err)
	}
}

func TestWarrantyAtUsesCompanyDay(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	// 16:30 UTC on 30 June is already 1 July in Shanghai: one day past a warranty ending 30 June.
	at := time.Date(2026, 6, 30, 16, 30, 0, 0, time.UTC)
	if got := WarrantyAt("2026-06-30", at, sh); got != "out" {
		t.Errorf("WarrantyAt = %s, want out", got)
	}
	if got := WarrantyAt("2026-06-30", at, time.UTC); got != "in" {
		t.Errorf("WarrantyAt in UTC = %s, want in", got)
	}
	if got := WarrantyAt("", at, sh); got != "unknown" {
		t.Errorf("no warranty date: %s", got)
	}
}

func TestOverdue(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	past, future := Stamp(now.Add(-time.Minute)), Stamp(now.Add(time.Hour))
	cases := []struct {
		name string
		t    Doc
		want bool
	}{
		{"not accepted after the response deadline", Doc{"status": StDispatched, "due_response_at": past, "due_arrival_at": future, "service_mode": "onsite"}, true},
		{"accepted in time, not arrived after the arrival deadline", Doc{"status": StEnRoute, "accepted_at": past, "due_response_at": past, "due_arrival_at": past, "service_mode": "onsite"}, true},
		{"phone service has no arrival deadline", Doc{"status": StAccepted, "accepted_at": past, "due_response_at": past, "due_arrival_at": past, "service_mode": "phone"}, false},
		{"within deadlines", Doc{"status": StDispatched, "due_response_at": future, "due_arrival_at": future, "service_mode": "onsite"}, false},
		{"completed late is no longer overdue", Doc{"status": StCompleted, "due_response_at": past, "due_arrival_at": past, "service_mode": "onsite"}, false},
	}
	for _, c := range cases {
		if got := Overdue(c.t, now); got != c.want {
			t.Errorf("%s: overdue=%v, want %v", c.name, got, c.want)
		}
	}
}

func TestMetDeadlinesAndPendingDeadlines(t *testing.T) {
	tk := Doc{"status": StOnSite, "service_mode": "onsite", "due_response_at": "2026-11-10T02:30:00.000Z", "due_arrival_at": "2026-11-10T06:00:00.000Z",
		"accepted_at": "2026-11-10T02:30:00.000Z", "arrived_at": "2026-11-10T06:00:01.000Z"}
	if r, a, _ := MetDeadlines(tk, 300); !r || a {
		t.Errorf("accepted at the deadline, arrived a second late: responded %v arrived %v", r, a)
	}
	if p := PendingDeadlines(tk); len(p) != 0 {
		t.Errorf("a ticket accepted and arrived has pending deadlines %v", p)
	}
	tk["arrived_at"] = nil
	if p := PendingDeadlines(tk); len(p) != 1 || p[0].Name != "arrival" {
		t.Errorf("not arrived: pending %v", p)
	}
	tk["service_mode"], tk["status"] = "phone", StAccepted
	if p := PendingDeadlines(tk); len(p) != 0 {
		t.Errorf("a phone service has no arrival deadline: %v", p)
	}
}
