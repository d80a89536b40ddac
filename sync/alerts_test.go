package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
)

// alertWorld is a store with an office, a technician and a customer, and group and SMS
// channels configured (nothing is delivered here: package notify delivers).
type alertWorld struct {
	t   *testing.T
	dir string
	e   *Engine
	db  *schema.DB
	now time.Time
}

func openAlertWorld(t *testing.T, dir string, now time.Time) *alertWorld {
	t.Helper()
	db, err := schema.OpenStore(context.Background(), dir, testpg.For(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &alertWorld{t: t, dir: dir, e: e, db: db, now: now}
	e.Now = func() time.Time { return w.now }
	return w
}

func (w *alertWorld) close() { w.e.Close(); w.db.Close() }

func (w *alertWorld) apply(actor schema.Actor, m Mutation) Result {
	w.t.Helper()
	res, err := w.e.Apply(context.Background(), actor, []Mutation{m}, Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	if res[0].Status != StatusApplied {
		w.t.Fatalf("%s %s %s: %s %s", m.Op, m.Entity, m.Action, res[0].Code, res[0].Message)
	}
	return res[0]
}

func fields(kv ...string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = schema.MustJSON(kv[i+1])
	}
	return out
}

var (
	alertCoord = schema.Actor{UserID: "coord", Role: schema.RoleCoordinator, Name: "王芳"}
	alertTech  = schema.Actor{UserID: "tech", Role: schema.RoleTechnician, Name: "张伟"}
)

func seedAlertWorld(t *testing.T, w *alertWorld) {
	if err := w.e.PutSettings(context.Background(), schema.System, map[string]json.RawMessage{
		"alert_wecom_url": schema.MustJSON("http://127.0.0.1:9/wecom"),
		"alert_sms_url":   schema.MustJSON("http://127.0.0.1:9/sms"),
	}); err != nil {
		t.Fatal(err)
	}
	put(t, w.e, schema.EntUser,
		schema.Doc{"id": "coord", "name": "王芳", "role": "coordinator", "phone": "13800000001", "active": true},
		schema.Doc{"id": "mgr", "name": "李强", "role": "manager", "phone": "13800000002", "active": true},
		schema.Doc{"id": "tech", "name": "张伟", "role": "technician", "phone": "13900000003", "active": true},
		schema.Doc{"id": "tech2", "name": "刘洋", "role": "technician", "phone": "13900000004", "active": true})
	put(t, w.e, schema.EntCustomer, schema.Doc{"id": "cu", "name": "华东精密"})
}

func (w *alertWorld) events(ticket string) []schema.Doc {
	w.t.Helper()
	docs, err := queryDocs(context.Background(), w.db.R, `SELECT data FROM records WHERE entity = 'ticket_event' AND ticket_id = ?
		AND data ->> 'kind' LIKE 'deadline%' ORDER BY data ->> 'at', data ->> 'kind'`, ticket)
	if err != nil {
		w.t.Fatal(err)
	}
	return docs
}

type outboxRow struct {
	Source, Kind, Channel, Target, Text string
	Mentions                            []string
}

func (w *alertWorld) outbox() []outboxRow {
	w.t.Helper()
	rows, err := w.db.R.Query(`SELECT source, kind, channel, target, text, mentions FROM outbox ORDER BY id`)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var m string
		if err := rows.Scan(&r.Source, &r.Kind, &r.Channel, &r.Target, &r.Text, &m); err != nil {
			w.t.Fatal(err)
		}
		json.Unmarshal([]byte(m), &r.Mentions)
		out = append(out, r)
	}
	return out
}

func TestDeadlineCrossedWhileDownIsRecordedOnceAfterStart(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)
	w := openAlertWorld(t, dir, t0)
	seedAlertWorld(t, w)
	// A critical on-site ticket: respond within 30 minutes, arrive within 4 hours.
	w.apply(alertCoord, Mutation{Entity: schema.EntTicket, ID: "tk", Op: "create", Fields: fields("customer_id", "cu", "urgency", "critical", "fault_symptoms", "停机")})
	w.apply(alertCoord, Mutation{Entity: schema.EntTicket, ID: "tk", Op: "action", Action: "dispatch", Fields: fields("technician_id", "tech")})
	ctx := context.Background()
	tick := func(want int) {
		t.Helper()
		n, err := w.e.WatchDeadlines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("at %s the watcher recorded %d events, want %d", w.now.Format(time.TimeOnly), n, want)
		}
	}
	tick(0)
	w.now = t0.Add(20 * time.Minute) // 10 minutes before the response deadline (warning: 15)
	tick(1)
	tick(0)
	w.close()

	// The server is down when the response deadline passes; it comes back 3 hours later.
	w = openAlertWorld(t, dir, t0.Add(3*time.Hour))
	tick(1)
	tick(0)
	// Arrival was due at t0+4h; the server is down from t0+3h to t0+5h: one missed deadline
	// on the first tick after start, and no warning after the fact.
	w.close()
	w = openAlertWorld(t, dir, t0.Add(5*time.Hour))
	tick(1)
	tick(0)
	w.close()
	w = openAlertWorld(t, dir, t0.Add(6*time.Hour))
	defer w.close()
	tick(0)

	var got []string
	for _, ev := range w.events("tk") {
		got = append(got, ev.Str("kind")+" "+schema.Doc(ev["details"].(map[string]any)).Str("deadline"))
	}
	want := []string{"deadline_warning response", "deadline_missed response", "deadline_missed arrival"}
	if !slices.Equal(got, want) {
		t.Errorf("ticket events %q, want %q", got, want)
	}
	// The outbox: the dispatch and the warning reach the technician by SMS; the group robot
	// names the coordinator for the warning, and the coordinator and the manager for each
	// missed deadline. The other technician hears nothing.
	var rows []string
	for _, r := range w.outbox() {
		rows = append(rows, r.Kind+" "+r.Channel+" "+r.Target+" "+fmt.Sprint(r.Mentions))
	}
	wantRows := []string{
		"dispatched sms 13900000003 []",
		"deadline_warning sms 13900000003 []",
		"deadline_warning wecom  [13800000001]",
		"deadline_missed wecom  [13800000001 13800000002]",
		"deadline_missed wecom  [13800000001 13800000002]",
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("outbox:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(wantRows, "\n"))
	}
}

// Each event reaches the people whose preferences name it: the coordinator hears of a
// technician's report, the manager of an escalation and a complaint, the technician of a
// returned sheet; a technician hears nothing of another's work.
func TestAlertsReachThoseWhoChoseThem(t *testing.T) {
	w := openAlertWorld(t, t.TempDir(), time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC))
	defer w.close()
	seedAlertWorld(t, w)
	// A technician's report as it stands after its own write path (the phone's scope is
	// not what this test is about).
	put(t, w.e, schema.EntTicket, schema.Doc{"id": "rep", "number": "SR-REP", "customer_id": "cu", "status": "reported", "source": "technician_report", "reported_by": "tech"})
	w.apply(alertCoord, Mutation{Entity: schema.EntTicket, ID: "tk", Op: "create", Fields: fields("customer_id", "cu", "fault_symptoms", "停机")})
	w.apply(alertCoord, Mutation{Entity: schema.EntTicket, ID: "tk", Op: "action", Action: "escalate"})
	w.apply(alertCoord, Mutation{Entity: schema.EntComplaint, ID: "co", Op: "create", Fields: fields("ticket_id", "tk", "description", "态度差", "technician_id", "tech2")})
	put(t, w.e, schema.EntSheet, schema.Doc{"id": "sh", "number": "FS-1", "ticket_id": "tk", "technician_id": "tech2", "status": "signed", "seal": "s"})
	w.apply(alertCoord, Mutation{Entity: schema.EntSheet, ID: "sh", Op: "action", Action: "return", Fields: fields("reason", "缺盖章")})
	var rows []string
	for _, r := range w.outbox() {
		rows = append(rows, r.Kind+" "+r.Channel+" "+r.Target+" "+fmt.Sprint(r.Mentions)+" "+r.Text)
	}
	tk, _ := w.e.Get(context.Background(), schema.EntTicket, "tk")
	rep, _ := w.e.Get(context.Background(), schema.EntTicket, "rep")
	want := []string{
		"report_waiting wecom  [13800000001] 【待核实】张伟报修工单" + rep.Str("number") + "，请核实\n张伟 reported ticket " + rep.Str("number") + ": please verify",
		"escalated wecom  [13800000002] 【升级】工单" + tk.Str("number") + "已升级，请安排人员\nTicket " + tk.Str("number") + " escalated: please staff it",
		"complaint wecom  [13800000002] 【投诉】工单" + tk.Str("number") + "收到投诉，请调查\nComplaint on ticket " + tk.Str("number") + ": please investigate",
		"sheet_returned sms 13900000004 [] 【退回】工单" + tk.Str("number") + "的服务单被退回：缺盖章",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("outbox:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// The channel secrets never leave the server except to an admin: not in a technician's
// feed, not in the whole-store feed of other office roles.
func TestSecretSettingsStayOffDevices(t *testing.T) {
	w := openAlertWorld(t, t.TempDir(), time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC))
	defer w.close()
	seedAlertWorld(t, w)
	has := func(actor schema.Actor) bool {
		t.Helper()
		cp, found := "", false
		for range 100 {
			page, err := w.e.Pull(context.Background(), actor, cp, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Changes {
				if c.Entity == schema.EntSetting && schema.SecretSetting(c.ID) {
					found = true
				}
			}
			if cp = page.Checkpoint; !page.HasMore {
				return found
			}
		}
		t.Fatal("the feed did not end")
		return false
	}
	if has(alertCoord) || has(alertTech) || has(schema.Actor{UserID: "mgr", Role: schema.RoleManager}) {
		t.Errorf("a secret setting reached a coordinator's, technician's or manager's feed")
	}
	if !has(schema.Actor{UserID: "admin", Role: schema.RoleAdmin}) {
		t.Errorf("the admin's feed lacks the secret settings")
	}
}
