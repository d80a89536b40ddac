package sync

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"fieldsync/schema"
)

// The writer remembers who holds a ticket between notes; a note written after the ticket
// moved to another technician, in the same transaction or a later one, goes to the new
// holder only, and a rejected mutation leaves nothing of its scope moves behind.
func TestNotesFollowTheTicketsHolder(t *testing.T) {
	ctx := context.Background()
	e, techA, ids := benchScope(t, 1)
	ticket := ids[0]
	b, err := e.CreateUser(ctx, schema.System, NewUser{Username: "tech-b", Name: "Tech B", Role: schema.RoleTechnician, Password: "tech-b-password"})
	if err != nil {
		t.Fatal(err)
	}
	techB := schema.Actor{UserID: b.Str("id"), Role: schema.RoleTechnician}
	coord := schema.Actor{UserID: "bench-coord", Role: schema.RoleCoordinator}
	note := func() (Mutation, string) {
		id := uuid.NewString()
		return Mutation{Entity: schema.EntTicketEvent, ID: id, Op: "create", Fields: raw(map[string]any{"ticket_id": ticket, "note": "到场 on site"})}, id
	}
	apply := func(ms ...Mutation) []Result {
		t.Helper()
		res, err := e.Apply(ctx, coord, ms, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	holds := func(who schema.Actor, id string) bool {
		t.Helper()
		ok, err := e.InScope(ctx, who, schema.EntTicketEvent, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	n1, id1 := note()
	n2, id2 := note()
	apply(n1, Mutation{Entity: schema.EntTicket, ID: ticket, Op: "action", Action: "dispatch", Fields: raw(map[string]any{"technician_id": techB.UserID})}, n2)
	n3, id3 := note()
	apply(n3)
	for _, id := range []string{id1, id2, id3} {
		if holds(techA, id) || !holds(techB, id) {
			t.Errorf("note %s: held by A %v, by B %v; want B only", id, holds(techA, id), holds(techB, id))
		}
	}
	// A dispatch back to A that is rejected (an unknown technician in the same batch's
	// second dispatch is fine; here the dispatch names no one) moves nothing.
	res := apply(Mutation{Entity: schema.EntTicket, ID: ticket, Op: "action", Action: "dispatch", Fields: raw(map[string]any{"technician_id": "no-such-user"})})
	if res[0].Status != StatusRejected {
		t.Fatalf("dispatch to no one: %+v", res[0])
	}
	n4, id4 := note()
	apply(n4)
	if holds(techA, id4) || !holds(techB, id4) {
		t.Errorf("after a rejected dispatch, note held by A %v, by B %v; want B only", holds(techA, id4), holds(techB, id4))
	}
}
