package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"fieldsync/internal/testpg"
	"fieldsync/sync/client"
)

// TestMigrateStoreDeviceContinues: a company served from SQLite moves to PostgreSQL with
// `fieldsync migrate-store`, and a phone synced before the move goes on from its
// checkpoint after it: the server on PostgreSQL (same data folder, same address) sends it
// only what changed since (no wipe, no full resync), its token still works, and a push it
// made before the move, sent again with the same mutation id, is answered from the
// remembered result, not applied a second time.
func TestMigrateStoreDeviceContinues(t *testing.T) {
	if !testpg.On() {
		t.Skip("needs FIELDSYNC_TEST_PG")
	}
	dir := t.TempDir()
	e := newEnvOn(t, nil, dir, "") // SQLite
	id := e.newTicket("migrate-store: a phone moves with its company")
	e.dispatch(id, "tech1")
	c, token := e.newClient("tech1", "moving-phone", clientOpts{})
	counted := map[string]int{} // by op: what the phone took in from the server
	c.OnChange(func(entity, id, op string) { counted[op]++ })
	syncNow(t, c)
	initial := counted["upsert"] + counted["delete"]
	if initial < 3 {
		t.Fatalf("the first sync brought %d records, want the ticket and its customer, site and asset", initial)
	}
	note := map[string]any{"mid": client.NewID(), "entity": "ticket_event", "id": client.NewID(), "op": "create",
		"fields": map[string]any{"ticket_id": id, "note": "written before the move"}}
	var first struct{ Results []map[string]any }
	e.must("POST", "/mobile/v1/sync/push", token, map[string]any{"mutations": []any{note}}, 200, &first)
	if len(first.Results) != 1 || first.Results[0]["status"] != "applied" {
		t.Fatalf("the push before the move: %v", first.Results)
	}
	syncNow(t, c)
	var seqBefore int64
	if err := e.srv.DB.R.QueryRow(`SELECT seq FROM engine_state`).Scan(&seqBefore); err != nil {
		t.Fatal(err)
	}
	cpBefore := c.State().Checkpoint
	e.stop()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	target := testpg.For(t, dir)
	out, err := exec.Command(crashBuild(t), "migrate-store", "--from", dir, "--to", target).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verified") {
		t.Fatalf("migrate-store: %v\n%s", err, out)
	}
	t.Logf("migrate-store:\n%s", out)
	e.db = target
	e.boot() // the same data folder and address, on PostgreSQL

	// The coordinator (whose session moved too) changes the phone's ticket once.
	tk := e.ticket(id)
	if st, raw := e.do("PATCH", "/api/v1/tickets/"+id, e.coord, map[string]any{"urgency": "critical"}, "If-Match", itoa(tk["version"])); st != 200 {
		t.Fatalf("PATCH on PostgreSQL: %d %s", st, raw)
	}
	var want int
	if err := e.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM scope WHERE user_id IN (?, '*') AND seq > ?`, e.users["tech1"], seqBefore).Scan(&want); err != nil {
		t.Fatal(err)
	}
	clear(counted)
	syncNow(t, c)
	got := counted["upsert"] + counted["delete"]
	t.Logf("checkpoint %s before the move; after it the phone pulled %d records (its first sync: %d)", cpBefore, got, initial)
	if counted[client.ChangeWiped] != 0 {
		t.Errorf("the phone wiped its store after the move (a full resync)")
	}
	if want < 1 || got != want {
		t.Errorf("after the move the phone pulled %d records; the server's scope changed %d since the move", got, want)
	}
	if r, _, _ := c.Record("ticket", id); !strings.Contains(string(r.Data), `"urgency":"critical"`) {
		t.Errorf("the change made after the move did not come down: %s", r.Data)
	}
	verify(t, c)

	// The push made before the move, again: answered from memory.
	var again struct{ Results []map[string]any }
	e.must("POST", "/mobile/v1/sync/push", token, map[string]any{"mutations": []any{note}}, 200, &again)
	if len(again.Results) != 1 || again.Results[0]["status"] != "duplicate" {
		t.Fatalf("the repeated push was answered %v, want duplicate", again.Results)
	}
	again.Results[0]["status"] = "applied" // else the remembered answer, word for word
	if a, f := toJSON(again.Results), toJSON(first.Results); a != f {
		t.Errorf("the repeated push was answered %s; the first time %s", a, f)
	}
	var records, creates, remembered int
	e.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM records WHERE entity = 'ticket_event' AND id = ?`, note["id"]).Scan(&records)
	e.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM changes WHERE entity = 'ticket_event' AND id = ?`, note["id"]).Scan(&creates)
	e.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM mutations WHERE mid = ?`, note["mid"]).Scan(&remembered)
	if records != 1 || creates != 1 || remembered != 1 {
		t.Errorf("the note pushed twice: %d records, %d changes, %d remembered mutations; want 1 each", records, creates, remembered)
	}
}
