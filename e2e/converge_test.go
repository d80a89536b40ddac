package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"fieldsync/sync/client"
)

// TestConvergeRandomized: two technicians' phones and a coordinator edit the same tickets
// while the phones are offline, then the phones reconnect in a random order, round after
// round (fixed seed). After every round each phone holds exactly its server scope (the
// verify digest agrees), and every ticket is what the ownership rules say: the technician's
// fields are the technician's last value, a field both sides changed keeps the office's
// value, a field only one side changed takes that change, workflow steps go through the
// state machine, and every note is there once.
func TestConvergeRandomized(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(20260415, 7))
	techs := []string{"tech1", "tech2"}
	phones := map[string]*client.Client{}
	type model struct {
		owner  string
		fields map[string]any // expected values
		status string
		notes  int
	}
	tickets := map[string]*model{}
	var ids []string
	for _, tech := range techs {
		phones[tech], _ = e.newClient(tech, "phone-"+tech, clientOpts{})
		for i := range 3 {
			id := e.newTicket(fmt.Sprintf("converge %s #%d", tech, i))
			e.dispatch(id, tech)
			tickets[id] = &model{owner: tech, status: "dispatched", fields: map[string]any{"contact_name": "", "urgency": "high"}}
			ids = append(ids, id)
		}
	}
	for _, tech := range techs {
		syncNow(t, phones[tech])
	}
	next := map[string]map[string]string{ // the state machine, for the steps the phones take
		"accept": {"dispatched": "accepted"}, "en_route": {"accepted": "en_route"},
		"arrive": {"en_route": "on_site"}, "start": {"accepted": "accepted", "on_site": "on_site"},
	}
	steps := []string{"accept", "en_route", "arrive", "start"}
	techFields := []string{"tech_notes", "inspection_record", "handling_result", "time_spent_min"}

	for round := range 5 {
		// 1. The phones work offline, on the versions they hold.
		pendingActions := map[string][]string{}
		techContact := map[string]any{}
		for _, tech := range techs {
			c := phones[tech]
			for _, id := range ids {
				m := tickets[id]
				if m.owner != tech {
					continue
				}
				r, ok, err := c.Record("ticket", id)
				if err != nil || !ok {
					t.Fatalf("round %d: %s does not hold %s: %v", round, tech, id, err)
				}
				for range 1 + rng.IntN(4) {
					switch k := rng.IntN(6); {
					case k < 2:
						f := techFields[rng.IntN(len(techFields))]
						var v any = fmt.Sprintf("%s r%d %d", f, round, rng.IntN(1000))
						if f == "time_spent_min" {
							v = float64(rng.IntN(600))
						}
						mutate(t, c, "ticket", id, "update", r.Version, map[string]any{f: v}, "")
						m.fields[f] = v
					case k == 2:
						v := fmt.Sprintf("contact by %s r%d %d", tech, round, rng.IntN(1000))
						mutate(t, c, "ticket", id, "update", r.Version, map[string]any{"contact_name": v}, "")
						techContact[id] = v
					case k == 3:
						s := steps[rng.IntN(len(steps))]
						mutate(t, c, "ticket", id, "action", r.Version, nil, s)
						pendingActions[id] = append(pendingActions[id], s)
					default:
						mutate(t, c, "ticket_event", client.NewID(), "create", 0, map[string]any{"ticket_id": id, "note": fmt.Sprintf("note r%d", round)}, "")
						m.notes++
					}
				}
			}
		}
		// 2. Meanwhile the coordinator edits some of the same tickets.
		coordContact := map[string]any{}
		for _, id := range ids {
			if rng.IntN(2) == 0 {
				continue
			}
			body := map[string]any{}
			if rng.IntN(2) == 0 {
				body["urgency"] = []string{"critical", "high", "normal", "low"}[rng.IntN(4)]
			}
			if rng.IntN(2) == 0 {
				body["contact_name"] = fmt.Sprintf("contact by coord r%d %d", round, rng.IntN(1000))
			}
			if len(body) == 0 {
				continue
			}
			tk := e.ticket(id)
			st, raw := e.do("PATCH", "/api/v1/tickets/"+id, e.coord, body, "If-Match", itoa(tk["version"]))
			if st != 200 {
				t.Fatalf("round %d: coordinator PATCH: %d %s", round, st, raw)
			}
			for k, v := range body {
				tickets[id].fields[k] = v
				if k == "contact_name" {
					coordContact[id] = v
				}
			}
		}
		// Ownership: a contact both sides changed keeps the office's value.
		for id, v := range techContact {
			if _, both := coordContact[id]; !both {
				tickets[id].fields["contact_name"] = v
			}
		}
		// The phones' steps go through the state machine in order.
		for id, acts := range pendingActions {
			m := tickets[id]
			for _, a := range acts {
				if to, ok := next[a][m.status]; ok {
					m.status = to
				}
			}
		}
		// 3. The phones come back in a random order, some twice.
		order := slices.Clone(techs)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if rng.IntN(2) == 0 {
			order = append(order, order[0])
		}
		for _, tech := range order {
			syncNow(t, phones[tech])
		}
		for _, tech := range techs {
			syncNow(t, phones[tech]) // catch up with what the phones that synced after it pushed
			if rej, _ := phones[tech].Rejections(); len(rej) > 0 {
				for _, x := range rej {
					if x.Code != "invalid_transition" {
						t.Errorf("round %d: %s: unexpected rejection %s %s %s: %s", round, tech, x.Op, x.Action, x.Code, x.Message)
					}
					phones[tech].DismissRejection(x.MID)
				}
			}
			e.sameStore(phones[tech], tech)
			verify(t, phones[tech])
		}
		// 4. The server holds what the rules say.
		for _, id := range ids {
			m := tickets[id]
			tk := e.ticket(id)
			if tk["status"] != m.status {
				t.Errorf("round %d: ticket %s status %v, want %s", round, id, tk["status"], m.status)
			}
			for k, v := range m.fields {
				if fmt.Sprint(tk[k]) != fmt.Sprint(v) {
					t.Errorf("round %d: ticket %s %s = %v, want %v", round, id, k, tk[k], v)
				}
			}
			notes := 0
			for _, ev := range e.events(id) {
				if ev["kind"] == "note" {
					notes++
				}
			}
			if notes != m.notes {
				t.Errorf("round %d: ticket %s has %d notes, want %d", round, id, notes, m.notes)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}
