package e2e

import (
	"strings"
	"testing"

	"fieldsync/sync/client"
)

// TestReassignment: tech1 works offline on a ticket the coordinator meanwhile gives to
// tech2. When tech1's phone syncs, the ticket is evicted from it, its pending notes are
// rejected out_of_scope with a message for the technician, and the notes are kept on the
// ticket where the coordinator sees them; tech2's phone gets the ticket with its customer,
// site and asset; neither loses or gains anything else.
func TestReassignment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("reassign: chiller trips")
	e.dispatch(id, "tech1")
	c1, _ := e.newClient("tech1", "phone-1", clientOpts{})
	c2, _ := e.newClient("tech2", "phone-2", clientOpts{})
	syncNow(t, c1)
	syncNow(t, c2)
	r, ok, _ := c1.Record("ticket", id)
	if !ok {
		t.Fatal("tech1 does not hold its ticket")
	}
	if _, ok, _ := c2.Record("ticket", id); ok {
		t.Fatal("tech2 holds tech1's ticket")
	}

	// Offline on tech1's phone.
	mutate(t, c1, "ticket", id, "update", r.Version, map[string]any{"inspection_record": "compressor overheats", "time_spent_min": 25}, "")
	noteID := client.NewID()
	mutate(t, c1, "ticket_event", noteID, "create", 0, map[string]any{"ticket_id": id, "note": "needs a new relay"}, "")
	// Meanwhile the coordinator reassigns it.
	e.dispatch(id, "tech2")

	syncNow(t, c1)
	if _, ok, _ := c1.Record("ticket", id); ok {
		t.Error("the reassigned ticket was not evicted from tech1's phone")
	}
	rej, err := c1.Rejections()
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 2 {
		t.Fatalf("rejections on tech1's phone: %+v", rej)
	}
	for _, x := range rej {
		if x.Code != "out_of_scope" || !strings.Contains(x.Message, "kept on ticket") {
			t.Errorf("rejection %s %s: %s %q", x.Entity, x.Op, x.Code, x.Message)
		}
	}
	// The coordinator sees the field work on the ticket.
	kept := map[string]bool{}
	for _, ev := range e.events(id) {
		if ev["kind"] != "orphaned_work" {
			continue
		}
		d := ev["details"].(map[string]any)
		f := d["fields"].(map[string]any)
		if ev["actor_id"] != e.users["tech1"] {
			t.Errorf("orphaned work by %v", ev["actor_id"])
		}
		for k, v := range f {
			kept[k+"="+itoa(v)] = true
		}
	}
	for _, want := range []string{"inspection_record=compressor overheats", "time_spent_min=25", "note=needs a new relay"} {
		if !kept[want] {
			t.Errorf("the coordinator does not see %q among the orphaned work %v", want, kept)
		}
	}
	tk := e.ticket(id)
	if tk["inspection_record"] != "" || tk["assignee_id"] != e.users["tech2"] {
		t.Errorf("the ticket took tech1's late input: inspection %q assignee %v", tk["inspection_record"], tk["assignee_id"])
	}

	syncNow(t, c2)
	for _, ref := range [][2]string{{"ticket", id}, {"customer", e.cust}, {"site", e.site}, {"asset", e.asset}} {
		if _, ok, _ := c2.Record(ref[0], ref[1]); !ok {
			t.Errorf("tech2's phone lacks %s %s", ref[0], ref[1])
		}
	}
	syncNow(t, c1)
	e.sameStore(c1, "tech1")
	e.sameStore(c2, "tech2")
	verify(t, c1)
	verify(t, c2)
}

// TestForgedIDsKeepNothing: a technician pushing to a ticket that was never in their scope
// (a guessed or forged id) is rejected out_of_scope, learns nothing about that ticket, and
// writes nothing on it.
func TestForgedIDsKeepNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newTicket("forged: not tech1's")
	e.dispatch(id, "tech2")
	number := e.ticket(id)["number"].(string)
	before := len(e.events(id))
	c1, _ := e.newClient("tech1", "phone-1", clientOpts{})
	syncNow(t, c1)
	mutate(t, c1, "ticket", id, "update", 1, map[string]any{"tech_notes": "forged"}, "")
	mutate(t, c1, "ticket", id, "action", 1, nil, "accept")
	mutate(t, c1, "ticket_event", client.NewID(), "create", 0, map[string]any{"ticket_id": id, "note": "forged note"}, "")
	syncNow(t, c1)
	rej, _ := c1.Rejections()
	if len(rej) != 3 {
		t.Fatalf("rejections: %+v", rej)
	}
	for _, x := range rej {
		if x.Code != "out_of_scope" {
			t.Errorf("%s %s: %s %s", x.Entity, x.Op, x.Code, x.Message)
		}
		if strings.Contains(x.Message, number) || len(x.Record) > 0 {
			t.Errorf("the rejection reveals the foreign ticket: %q %s", x.Message, x.Record)
		}
	}
	if after := len(e.events(id)); after != before {
		t.Errorf("forged pushes wrote %d events on a ticket outside the scope", after-before)
	}
	if _, ok, _ := c1.Record("ticket", id); ok {
		t.Error("the forged ticket reached the device")
	}
	e.sameStore(c1, "tech1")
}
