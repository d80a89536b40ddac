package server

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldsync/schema"
)

// monthClock is a settable clock for the engine: month-end depends on when services were
// completed and on what month it is now.
type monthClock struct{ ns atomic.Int64 }

func (c *monthClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *monthClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func shanghai(s string) time.Time     { t, _ := time.ParseInLocation("2006-01-02 15:04", s, cst); return t }

var cst = time.FixedZone("CST", 8*3600)

// monthFixture drives the demo company through a month.
type monthFixture struct {
	env     *testEnv
	clock   *monthClock
	users   map[string]string // username -> user id
	cust    string
	seq     int
	tokens  map[string]string    // username -> web token
	devices map[string]*sheetEnv // technician -> their phone (device token, uploaded images)
}

// monthTechs are the demo company's technicians: tech1 dedicated, tech2 on probation, tech3
// not dedicated.
var monthTechs = []string{"tech1", "tech2", "tech3"}

func newMonthFixture(t *testing.T) *monthFixture {
	clock := &monthClock{}
	clock.set(time.Now())
	// The server reads the test's clock from its start: setting Engine.Now on a running
	// server races with its writer.
	env := newEnv(t, true, func(c *Config) { c.Now = clock.now })
	f := &monthFixture{env: env, clock: clock, users: map[string]string{}}
	admin := env.login("admin", DemoPassword) // a write through the engine before the clock changes hands
	r := env.must(env.do("GET", "/api/v1/users?limit=100", admin, nil), 200)
	for _, it := range r.Body["items"].([]any) {
		u := it.(map[string]any)
		f.users[str(u, "username")] = str(u, "id")
	}
	// Log everyone in once, at the latest time the test reaches: a web token lasts 12
	// hours from its issue (a device token 30 days), so it stays valid while the clock is
	// set back to earlier days.
	f.clock.set(shanghai("2026-10-02 20:00"))
	f.tokens = map[string]string{}
	for _, u := range []string{"coord", "manager", "leader", "tech1"} {
		f.tokens[u] = env.login(u, DemoPassword)
	}
	// Each technician's phone logs in and uploads the images its sheets carry: the
	// customer's signature, the company stamp and the technician's own signature.
	f.devices = map[string]*sheetEnv{}
	for i, u := range monthTechs {
		d := &sheetEnv{testEnv: env}
		d.t1 = env.deviceLogin(u, DemoPassword, "month-phone-"+u)
		d.sig, d.stamp, d.ts = d.upload(d.t1, testPNG(3*i+1)), d.upload(d.t1, testPNG(3*i+2)), d.upload(d.t1, testPNG(3*i+3))
		f.devices[u] = d
	}
	return f
}

func (f *monthFixture) tok(user string) string { return f.tokens[user] }

// completed makes a phone ticket for tech completed at the given Shanghai time and returns
// its id.
func (f *monthFixture) completed(tech, at string) string { return f.completedAs(tech, "phone", at) }

// completedAs makes a ticket of the given service mode for tech, taken through its workflow
// (an on-site one travels and arrives) and completed at the given Shanghai time.
func (f *monthFixture) completedAs(tech, mode, at string) string {
	e := f.env
	f.clock.set(shanghai(at))
	coord := f.tok("coord")
	if f.cust == "" {
		f.cust = str(e.must(e.do("POST", "/api/v1/customers", coord, map[string]any{"name": "上海月结测试有限公司"}), 201).Body, "id")
	}
	f.seq++
	id := str(e.must(e.do("POST", "/api/v1/tickets", coord, map[string]any{"customer_id": f.cust,
		"fault_symptoms": fmt.Sprintf("故障 %d", f.seq), "urgency": "normal", "service_mode": mode}), 201).Body, "id")
	type step struct {
		action string
		params map[string]any
	}
	steps := []step{{"dispatch", map[string]any{"technician_id": f.users[tech]}}, {"accept", nil}}
	if mode == "onsite" {
		steps = append(steps, step{"en_route", nil}, step{"arrive", nil})
	}
	steps = append(steps, step{"start", nil}, step{"complete", map[string]any{"service_mode": mode}})
	for _, step := range steps {
		var body any
		if step.params != nil {
			body = step.params
		}
		e.must(e.do("POST", "/api/v1/tickets/"+id+"/actions/"+step.action, coord, body), 200)
	}
	return id
}

// sheet has tech's phone write and sign feedback sheet id for a ticket at the clock's time,
// through the write path every phone uses (one push: create, then sign), leaving out the
// items named in missing (the customer could not give them; the sheet records why). The
// server works out completeness; the fixture checks that it agrees with complete and
// missing. Then the coordinator accepts the exception (accepted) and receives the sheet
// (received) through the office API.
func (f *monthFixture) sheet(id, ticket, tech, mode string, complete, accepted, received bool, missing ...string) {
	t := f.env.t
	t.Helper()
	d := f.devices[tech]
	fields := d.fullSheet(ticket)
	now := f.clock.now()
	fields["service_mode"], fields["rating"] = mode, 4
	fields["arrived_at"], fields["departed_at"] = schema.Stamp(now.Add(-90*time.Minute)), schema.Stamp(now.Add(-10*time.Minute))
	for _, m := range missing {
		fields[m] = ""
	}
	if len(missing) > 0 {
		fields["absent_reason"] = "客户无法提供 " + strings.Join(missing, ", ")
	}
	res := d.push(d.t1,
		map[string]any{"entity": "feedback_sheet", "id": id, "op": "create", "base_version": 0, "fields": fields, "at": schema.Stamp(now.Add(-5 * time.Minute))},
		map[string]any{"entity": "feedback_sheet", "id": id, "op": "action", "action": "sign", "at": schema.Stamp(now)})
	applied(t, res[0])
	s := applied(t, res[1])
	if s["status"] != "signed" || s["complete"] != complete || fmt.Sprint(s["missing"]) != fmt.Sprint(append([]string{}, missing...)) {
		t.Fatalf("sheet %s as signed: status %v complete %v missing %v; want signed, %v, %v", id, s["status"], s["complete"], s["missing"], complete, missing)
	}
	coord := f.tok("coord")
	if accepted {
		f.env.must(f.env.do("POST", "/api/v1/sheets/"+id+"/actions/accept_exception", f.tok("manager"), nil), 200)
	}
	if received {
		f.env.must(f.env.do("POST", "/api/v1/sheets/"+id+"/actions/receive", coord, nil), 200)
	}
}

// complaint records an upheld complaint against tech on a ticket, received at the given time.
func (f *monthFixture) complaint(ticket, tech, receivedAt string) string {
	e := f.env
	id := str(e.must(e.do("POST", "/api/v1/tickets/"+ticket+"/complaints", f.tok("coord"), map[string]any{"description": "服务态度差",
		"technician_id": f.users[tech], "received_at": shanghai(receivedAt).Format(time.RFC3339)}), 201).Body, "id")
	e.must(e.do("POST", "/api/v1/complaints/"+id+"/actions/uphold", f.tok("manager"), map[string]any{"note": "属实"}), 200)
	return id
}

// row finds a technician's row in a month answer.
func monthRow(t *testing.T, body map[string]any, techID string) map[string]any {
	t.Helper()
	for _, r := range body["rows"].([]any) {
		row := r.(map[string]any)
		if row["technician"].(map[string]any)["id"] == techID {
			return row
		}
	}
	t.Fatalf("no row for technician %s in %v", techID, body["rows"])
	return nil
}

func num(m map[string]any, k string) int64 {
	v, _ := m[k].(float64)
	return int64(v)
}

func ids(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	slices.Sort(out)
	return out
}

func TestMonthEndWorkflow(t *testing.T) {
	f := newMonthFixture(t)
	e := f.env

	// September 2026 (Shanghai time), before the demo company's own services (which are
	// seeded at the real time). Default settings: allowance ¥50, reward ¥200,
	// penalty ¥50, forfeit at 3, labour ¥80.
	t1 := f.completed("tech1", "2026-09-10 10:00")
	f.sheet("s1", t1, "tech1", "phone", true, false, true) // counts
	t2 := f.completed("tech1", "2026-09-11 10:00")
	f.sheet("s2", t2, "tech1", "phone", false, false, true, "stamp_blob") // incomplete: excluded
	t3 := f.completedAs("tech1", "onsite", "2026-09-12 10:00")
	f.sheet("s3", t3, "tech1", "onsite", false, true, true, "signature_blob") // exception accepted: counts
	t4 := f.completed("tech2", "2026-09-13 10:00")
	f.sheet("s4", t4, "tech2", "phone", true, false, true) // probation
	t5 := f.completedAs("tech3", "onsite", "2026-09-14 10:00")
	f.sheet("s5", t5, "tech3", "onsite", true, false, true) // non-dedicated: labour
	t6 := f.completed("tech1", "2026-09-15 10:00")
	f.sheet("s6", t6, "tech1", "phone", true, false, false) // not received: excluded
	t7 := f.completed("tech1", "2026-09-30 23:30")          // still September in Shanghai
	f.sheet("s7", t7, "tech1", "phone", true, false, true)
	t8 := f.completed("tech1", "2026-10-01 00:30") // 30 September in UTC, October in Shanghai
	f.sheet("s8", t8, "tech1", "phone", true, false, true)
	f.complaint(t1, "tech1", "2026-09-20 09:00")
	f.complaint(t4, "tech2", "2026-09-21 09:00")

	f.clock.set(shanghai("2026-10-01 10:00"))
	coord, manager, leader := f.tok("coord"), f.tok("manager"), f.tok("leader")

	// Bad months and wrong roles.
	for _, m := range []string{"2026-13", "2026-1", "26-11", "2027-01"} {
		r := e.do("POST", "/api/v1/months/"+m+"/compile", coord, nil)
		if r.Status != 400 || r.errField() != "month" {
			t.Errorf("compile %s: %d %s, want 400 naming month", m, r.Status, r.Raw)
		}
	}
	if r := e.do("GET", "/api/v1/months/2026-09", coord, nil); r.Status != 404 || r.errField() != "month" {
		t.Errorf("month never compiled: %d %s, want 404 naming month", r.Status, r.Raw)
	}
	if r := e.do("POST", "/api/v1/months/2026-09/actions/approve", leader, nil); r.Status != 409 || r.errCode() != "invalid_transition" {
		t.Errorf("approve before compile: %d %s, want 409 invalid_transition", r.Status, r.Raw)
	}
	if r := e.do("POST", "/api/v1/months/2026-09/compile", manager, nil); r.Status != 403 {
		t.Errorf("manager compiles: %d, want 403", r.Status)
	}

	// Compile, and check the figures by hand.
	r := e.must(e.do("POST", "/api/v1/months/2026-09/compile", coord, nil), 200)
	if str(r.Body, "status") != "draft" || str(r.Body, "month") != "2026-09" {
		t.Fatalf("compiled month: %s", r.Raw)
	}
	// tech1: counted s1, s3, s7 (3 × ¥50 = ¥150); excluded s2 (incomplete), s6 (not
	// received); one upheld complaint: -¥50. Total ¥100.
	row := monthRow(t, r.Body, f.users["tech1"])
	if got, want := ids(row["counted_sheet_ids"]), []string{"s1", "s3", "s7"}; !slices.Equal(got, want) {
		t.Errorf("tech1 counted %v, want %v (s8 is October in Shanghai)", got, want)
	}
	for k, want := range map[string]int64{"counted_services": 3, "excluded_services": 2, "complaints": 1, "allowance_fen": 15000, "bonus_fen": -5000, "labour_fen": 0, "total_fen": 10000} {
		if got := num(row, k); got != want {
			t.Errorf("tech1 %s = %d, want %d", k, got, want)
		}
	}
	if row["bonus_eligible"] != true || row["bonus_forfeited"] != false {
		t.Errorf("tech1 bonus flags: %v %v", row["bonus_eligible"], row["bonus_forfeited"])
	}
	reasons := map[string]string{}
	for _, x := range r.Body["excluded"].([]any) {
		xm := x.(map[string]any)
		reasons[str(xm, "sheet_id")] = str(xm, "reason")
	}
	if !strings.Contains(reasons["s2"], "incomplete: missing stamp_blob") || !strings.Contains(reasons["s6"], "not received") || len(reasons) != 2 {
		t.Errorf("excluded reasons: %v", reasons)
	}
	// tech2 on probation: ¥50 allowance, the upheld complaint costs nothing, no reward.
	row = monthRow(t, r.Body, f.users["tech2"])
	if num(row, "total_fen") != 5000 || num(row, "bonus_fen") != 0 || row["bonus_eligible"] != false || num(row, "complaints") != 1 {
		t.Errorf("tech2 (probation): %v", row)
	}
	// tech3 not dedicated: ¥80 labour for the on-site visit, no allowance, no reward.
	row = monthRow(t, r.Body, f.users["tech3"])
	if num(row, "labour_fen") != 8000 || num(row, "allowance_fen") != 0 || num(row, "total_fen") != 8000 {
		t.Errorf("tech3 (non-dedicated): %v", row)
	}
	totals := r.Body["totals"].(map[string]any)
	if num(totals, "counted_services") != 5 || num(totals, "total_fen") != 23000 {
		t.Errorf("totals %v, want 5 counted and ¥230.00", totals)
	}

	// Out of order, and the return with its comment.
	if r := e.do("POST", "/api/v1/months/2026-09/actions/approve", leader, nil); r.Status != 409 || r.errCode() != "invalid_transition" {
		t.Errorf("approve a draft: %d %s, want 409", r.Status, r.Raw)
	}
	if r := e.do("POST", "/api/v1/months/2026-09/actions/review", coord, nil); r.Status != 403 {
		t.Errorf("coordinator reviews: %d, want 403", r.Status)
	}
	if r := e.do("POST", "/api/v1/months/2026-09/actions/return", manager, map[string]any{}); r.Status != 400 || r.errField() != "comment" {
		t.Errorf("return without comment: %d %s, want 400 naming comment", r.Status, r.Raw)
	}
	if r := e.do("POST", "/api/v1/months/2026-09/actions/publish", manager, nil); r.Status != 400 || r.errField() != "action" {
		t.Errorf("unknown action: %d %s", r.Status, r.Raw)
	}
	r = e.must(e.do("POST", "/api/v1/months/2026-09/actions/return", manager, map[string]any{"comment": "请核对 s6"}), 200)
	trail := r.Body["trail"].([]any)
	last := trail[len(trail)-1].(map[string]any)
	if str(r.Body, "status") != "draft" || str(last, "step") != "return" || str(last, "comment") != "请核对 s6" ||
		str(last, "by_name") != "李强 Li Qiang" || str(last, "at") != schema.Stamp(shanghai("2026-10-01 10:00")) {
		t.Errorf("after return: status %s, last step %v", str(r.Body, "status"), last)
	}
	e.must(e.do("POST", "/api/v1/months/2026-09/compile", coord, nil), 200) // a returned month is compiled again
	f.clock.set(shanghai("2026-10-02 09:00"))
	r = e.must(e.do("POST", "/api/v1/months/2026-09/actions/review", manager, nil), 200)
	if str(r.Body, "status") != "reviewed" {
		t.Fatalf("after review: %s", r.Raw)
	}
	if r := e.do("POST", "/api/v1/months/2026-09/compile", coord, nil); r.Status != 409 {
		t.Errorf("compile a reviewed month: %d, want 409", r.Status)
	}
	f.clock.set(shanghai("2026-10-02 15:00"))
	r = e.must(e.do("POST", "/api/v1/months/2026-09/actions/approve", leader, nil), 200)
	var steps []string
	for _, s := range r.Body["trail"].([]any) {
		sm := s.(map[string]any)
		steps = append(steps, str(sm, "step")+" by "+str(sm, "by_name")+" at "+str(sm, "at"))
	}
	want := []string{
		"compile by 王芳 Wang Fang at 2026-10-01T02:00:00.000Z",
		"return by 李强 Li Qiang at 2026-10-01T02:00:00.000Z",
		"compile by 王芳 Wang Fang at 2026-10-01T02:00:00.000Z",
		"review by 李强 Li Qiang at 2026-10-02T01:00:00.000Z",
		"approve by 赵总 Zhao Wei at 2026-10-02T07:00:00.000Z",
	}
	if !slices.Equal(steps, want) {
		t.Errorf("trail:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	approved := e.must(e.do("GET", "/api/v1/months/2026-09", coord, nil), 200)

	// Approved is locked.
	for _, step := range []struct{ path, tok string }{{"compile", coord}, {"actions/review", manager}, {"actions/approve", leader}, {"actions/return", leader}} {
		r := e.do("POST", "/api/v1/months/2026-09/"+step.path, step.tok, map[string]any{"comment": "再看看"})
		if step.path == "compile" {
			r = e.do("POST", "/api/v1/months/2026-09/compile", step.tok, nil)
		}
		if r.Status != 409 || r.errCode() != "invalid_transition" {
			t.Errorf("%s on an approved month: %d %s, want 409", step.path, r.Status, r.Raw)
		}
	}

	// A complaint and a sheet about September that arrive after September was approved go
	// into October, marked late; September does not change.
	lateC := f.complaint(t1, "tech1", "2026-09-25 09:00")
	f.sheet("s9", t6, "tech1", "phone", true, false, true) // a second visit's sheet, completed in September
	r = e.must(e.do("POST", "/api/v1/months/2026-10/compile", coord, nil), 200)
	row = monthRow(t, r.Body, f.users["tech1"])
	if got, want := ids(row["counted_sheet_ids"]), []string{"s8", "s9"}; !slices.Equal(got, want) {
		t.Errorf("October tech1 counted %v, want %v", got, want)
	}
	if got := ids(row["complaint_ids"]); !slices.Equal(got, []string{lateC}) {
		t.Errorf("October tech1 complaints %v, want the late one %s", got, lateC)
	}
	lateFlags := map[string]bool{}
	for _, s := range row["counted"].([]any) {
		sm := s.(map[string]any)
		lateFlags[str(sm, "sheet_id")] = sm["late"] == true
	}
	if !lateFlags["s9"] || lateFlags["s8"] {
		t.Errorf("late flags %v: s9 arrived after September was approved, s8 is October's own", lateFlags)
	}
	if cl := row["complaint_list"].([]any); len(cl) != 1 || cl[0].(map[string]any)["late"] != true {
		t.Errorf("October complaint list %v, want one late complaint", cl)
	}
	if num(row, "total_fen") != 2*5000-5000 {
		t.Errorf("October tech1 total %d, want ¥50.00", num(row, "total_fen"))
	}
	after := e.must(e.do("GET", "/api/v1/months/2026-09", coord, nil), 200)
	if string(after.Raw) != string(approved.Raw) {
		t.Errorf("the approved month changed:\nbefore %s\nafter  %s", approved.Raw, after.Raw)
	}

	// Reports: PDF and CSV for office roles.
	pdf := e.must(e.do("GET", "/api/v1/months/2026-09/report.pdf", leader, nil), 200)
	if pdf.Header["Content-Type"] != "application/pdf" || !strings.HasPrefix(string(pdf.Raw), "%PDF-") {
		t.Errorf("report.pdf: %s, %.20q", pdf.Header["Content-Type"], pdf.Raw)
	}
	csv := e.must(e.do("GET", "/api/v1/months/2026-09/report.csv?lang=zh", manager, nil), 200)
	if !strings.HasPrefix(string(csv.Raw), "\uFEFF技术员编号") || !strings.Contains(string(csv.Raw), "张伟 Zhang Wei") || !strings.Contains(string(csv.Raw), "230.00") {
		t.Errorf("report.csv: %s", csv.Raw)
	}
	if r := e.do("GET", "/api/v1/months/2026-09/report.pdf?lang=fr", leader, nil); r.Status != 400 || r.errField() != "lang" {
		t.Errorf("lang=fr: %d %s", r.Status, r.Raw)
	}

	// Technicians: 403 on the office API, their own row on the phone.
	tech := f.tok("tech1")
	for _, p := range []string{"/api/v1/months/2026-09", "/api/v1/months/2026-09/report.pdf", "/api/v1/months/2026-09/report.csv"} {
		if r := e.do("GET", p, tech, nil); r.Status != 403 {
			t.Errorf("technician GET %s: %d, want 403", p, r.Status)
		}
	}
	if r := e.do("POST", "/api/v1/months/2026-09/compile", tech, nil); r.Status != 403 {
		t.Errorf("technician compiles: %d, want 403", r.Status)
	}
	dev := e.deviceLogin("tech2", DemoPassword, "phone-tech2")
	me := e.must(e.do("GET", "/mobile/v1/months/2026-09/me", dev, nil), 200)
	mine := me.Body["row"].(map[string]any)
	if mine["technician"].(map[string]any)["id"] != f.users["tech2"] || num(mine, "total_fen") != 5000 || str(me.Body, "status") != "approved" {
		t.Errorf("tech2's own row: %s", me.Raw)
	}
	if strings.Contains(string(me.Raw), f.users["tech1"]) {
		t.Errorf("tech2's answer mentions tech1: %s", me.Raw)
	}
	if r := e.do("GET", "/mobile/v1/months/2026-13/me", dev, nil); r.Status != 400 || r.errField() != "month" {
		t.Errorf("mobile bad month: %d %s", r.Status, r.Raw)
	}
	if r := e.do("GET", "/mobile/v1/months/2026-08/me", dev, nil); r.Status != 404 {
		t.Errorf("mobile month never compiled: %d %s", r.Status, r.Raw)
	}
}

// TestMonthDemoReady checks that the demo company's current month compiles with counted
// services, so a newcomer can walk the month-end: tech1's three received phone services
// count, the sheet whose customer had no stamp at hand is listed as excluded.
func TestMonthDemoReady(t *testing.T) {
	e := newEnv(t, true)
	month := schema.MonthOf(e.srv.Engine.Now(), e.srv.Engine.Settings().Location())
	coord := e.login("coord", DemoPassword)
	r := e.must(e.do("POST", "/api/v1/months/"+month+"/compile", coord, nil), 200)
	users := e.must(e.do("GET", "/api/v1/users?limit=100", coord, nil), 200)
	var tech1 string
	for _, it := range users.Body["items"].([]any) {
		if u := it.(map[string]any); str(u, "username") == "tech1" {
			tech1 = str(u, "id")
		}
	}
	row := monthRow(t, r.Body, tech1)
	if num(row, "counted_services") != 3 || num(row, "allowance_fen") != 15000 {
		t.Errorf("demo tech1: counted %d, allowance %d; want 3 and ¥150.00", num(row, "counted_services"), num(row, "allowance_fen"))
	}
	found := false
	for _, x := range row["excluded"].([]any) {
		found = found || strings.Contains(str(x.(map[string]any), "reason"), "missing stamp_blob")
	}
	if !found {
		t.Errorf("demo tech1's sheet without a stamp is not listed as excluded: %v", row["excluded"])
	}
	if n := len(r.Body["rows"].([]any)); n != 3 {
		t.Errorf("demo month has %d rows, want the 3 technicians", n)
	}
}

// Probation kept as dated history: a month is computed with the facts in force on its first
// day, so ending a probation changes the next month's bonus and not an approved month.
func TestProbationHistoryDecidesTheMonth(t *testing.T) {
	clock := &monthClock{}
	clock.set(time.Now())
	env := newEnv(t, true, func(c *Config) { c.Now = clock.now })
	admin := env.login("admin", DemoPassword)
	var tech2 map[string]any
	for _, u := range env.must(env.do("GET", "/api/v1/users", admin, nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "tech2" {
			tech2 = m
		}
	}
	clock.set(shanghai("2026-10-15 10:00"))
	tok := map[string]string{}
	for _, u := range []string{"admin", "coord", "manager", "leader"} {
		tok[u] = env.login(u, DemoPassword)
	}
	id := str(tech2, "id")
	eligible := func(month string) any {
		r := env.must(env.do("POST", "/api/v1/months/"+month+"/compile", tok["coord"], nil), 200)
		return monthRow(t, r.Body, id)["bonus_eligible"]
	}
	if e := eligible("2026-09"); e != false {
		t.Fatalf("tech2 on probation is bonus eligible in September: %v", e)
	}
	env.must(env.do("POST", "/api/v1/months/2026-09/actions/review", tok["manager"], map[string]any{}), 200)
	env.must(env.do("POST", "/api/v1/months/2026-09/actions/approve", tok["leader"], map[string]any{}), 200)

	version := fmt.Sprint(tech2["version"])
	patch := func(hist []map[string]any) map[string]any {
		r := env.must(env.do("PATCH", "/api/v1/users/"+id, tok["admin"], map[string]any{"employment": hist}, "If-Match", version), 200).Body
		version = fmt.Sprint(r["version"])
		return r
	}
	// Probation ends mid-October: October is still a probation month.
	u := patch([]map[string]any{{"from": "2026-01-01", "probation": true, "dedicated": true}, {"from": "2026-10-16", "probation": false, "dedicated": true}})
	if u["probation"] != true {
		t.Errorf("on 15 October the flag shows %v, want the entry in force (probation)", u["probation"])
	}
	if e := eligible("2026-10"); e != false {
		t.Errorf("probation ending on 16 October made October bonus eligible: %v", e)
	}
	// Dated from 1 October instead: October counts without probation; September stays.
	u = patch([]map[string]any{{"from": "2026-01-01", "probation": true, "dedicated": true}, {"from": "2026-10-01", "probation": false, "dedicated": true}})
	if u["probation"] != false {
		t.Errorf("the flag after the change: %v", u["probation"])
	}
	if e := eligible("2026-10"); e != true {
		t.Errorf("probation ended on 1 October, October bonus eligible: %v", e)
	}
	sep := env.must(env.do("GET", "/api/v1/months/2026-09", tok["coord"], nil), 200)
	if e := monthRow(t, sep.Body, id)["bonus_eligible"]; e != false {
		t.Errorf("the approved September changed: %v", e)
	}

	// With a history the flags change only through it; a bad history is refused.
	if r := env.do("PATCH", "/api/v1/users/"+id, tok["admin"], map[string]any{"probation": true}, "If-Match", version); r.Status != 400 || r.errField() != "probation" {
		t.Errorf("a direct probation edit over a history: %d %s", r.Status, r.Raw)
	}
	if r := env.do("PATCH", "/api/v1/users/"+id, tok["admin"], map[string]any{"employment": []map[string]any{{"from": "2026-10-01", "probation": false, "dedicated": true}, {"from": "2026-09-01", "probation": true, "dedicated": true}}}, "If-Match", version); r.Status != 400 || !strings.Contains(string(r.Raw), "must come after") {
		t.Errorf("an unordered history: %d %s", r.Status, r.Raw)
	}

	// The base salary is part of the same history: the entry in force on the month's first
	// day is the month's; a salary that is not whole fen, or negative, is refused.
	for _, bad := range []any{-1, 1.5, "5000"} {
		if r := env.do("PATCH", "/api/v1/users/"+id, tok["admin"], map[string]any{"employment": []map[string]any{{"from": "2026-01-01", "probation": false, "dedicated": true, "base_salary_fen": bad}}}, "If-Match", version); r.Status != 400 || !strings.Contains(string(r.Raw), "base_salary_fen must be an integer") {
			t.Errorf("base_salary_fen %v: %d %s", bad, r.Status, r.Raw)
		}
	}
	patch([]map[string]any{{"from": "2026-01-01", "probation": true, "dedicated": true, "base_salary_fen": 500000},
		{"from": "2026-10-01", "probation": false, "dedicated": true, "base_salary_fen": 550000}, {"from": "2026-10-16", "probation": false, "dedicated": true, "base_salary_fen": 600000}})
	row := monthRow(t, env.must(env.do("POST", "/api/v1/months/2026-10/compile", tok["coord"], nil), 200).Body, id)
	if fmt.Sprint(row["base_salary_fen"]) != "550000" || fmt.Sprint(row["total_fen"]) != fmt.Sprint(550000+int(row["allowance_fen"].(float64))+int(row["bonus_fen"].(float64))) {
		t.Errorf("October's base salary %v total %v, want the 550000 in force on 1 October in the total", row["base_salary_fen"], row["total_fen"])
	}
}

// TestMonthTicketCountsOnceAtTheTicketsMode: the month pays a ticket once, at the mode the
// ticket records, whatever the technician writes on the sheets; where sheets and ticket
// disagree, or a ticket has several sheets, the month says so in the API, the PDF and the
// CSV.
func TestMonthTicketCountsOnceAtTheTicketsMode(t *testing.T) {
	f := newMonthFixture(t)
	e := f.env

	// tech3 is not dedicated: paid per on-site visit. The ticket is a phone job; the sheet
	// says on site.
	phoneJob := f.completed("tech3", "2026-09-10 10:00")
	f.sheet("m1", phoneJob, "tech3", "onsite", true, false, true)
	// Nor can the technician make the phone job an on-site one: the office sets the mode.
	open := str(e.must(e.do("POST", "/api/v1/tickets", f.tok("coord"), map[string]any{"customer_id": f.cust,
		"fault_symptoms": "电话可解决", "urgency": "normal", "service_mode": "phone"}), 201).Body, "id")
	tk := e.must(e.do("POST", "/api/v1/tickets/"+open+"/actions/dispatch", f.tok("coord"), map[string]any{"technician_id": f.users["tech3"]}), 200).Body
	d := f.devices["tech3"]
	rejected(t, d.push(d.t1, map[string]any{"entity": "ticket", "id": open, "op": "update", "base_version": tk["version"],
		"fields": map[string]any{"service_mode": "onsite"}})[0], "forbidden", "service_mode")

	// tech1 writes four sheets for one phone ticket before the office receives any; the
	// office then receives three.
	multi := f.completed("tech1", "2026-09-11 10:00")
	for _, id := range []string{"m2", "m3", "m4", "m5"} {
		f.sheet(id, multi, "tech1", "phone", true, false, false)
	}
	for _, id := range []string{"m2", "m3", "m4"} {
		e.must(e.do("POST", "/api/v1/sheets/"+id+"/actions/receive", f.tok("coord"), nil), 200)
	}

	f.clock.set(shanghai("2026-10-01 10:00"))
	coord, manager, leader := f.tok("coord"), f.tok("manager"), f.tok("leader")
	r := e.must(e.do("POST", "/api/v1/months/2026-09/compile", coord, nil), 200)
	phoneNo := str(e.must(e.do("GET", "/api/v1/tickets/"+phoneJob, coord, nil), 200).Body, "number")
	multiNo := str(e.must(e.do("GET", "/api/v1/tickets/"+multi, coord, nil), 200).Body, "number")

	row := monthRow(t, r.Body, f.users["tech3"])
	if num(row, "labour_fen") != 0 || num(row, "counted_services") != 1 {
		t.Errorf("tech3's phone job written up as on site: labour %d, counted %d; want no labour, 1 counted", num(row, "labour_fen"), num(row, "counted_services"))
	}
	if m := row["modes"].(map[string]any); num(m, "phone") != 1 || num(m, "onsite") != 0 {
		t.Errorf("tech3's modes %v, want the ticket's: 1 phone", m)
	}
	row = monthRow(t, r.Body, f.users["tech1"])
	if got := ids(row["counted_sheet_ids"]); len(got) != 1 || num(row, "counted_services") != 1 || num(row, "allowance_fen") != 5000 {
		t.Errorf("tech1's three sheets on one ticket: counted %v (%d), allowance %d; want one, ¥50.00", got, num(row, "counted_services"), num(row, "allowance_fen"))
	}
	if num(row, "excluded_services") != 3 {
		t.Errorf("tech1 excluded %d, want the three other sheets: %v", num(row, "excluded_services"), row["excluded"])
	}
	warnings := fmt.Sprint(r.Body["warnings"])
	for _, want := range []string{phoneNo, "m1", multiNo, "4"} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings %s do not mention %q", warnings, want)
		}
	}

	csv := string(e.must(e.do("GET", "/api/v1/months/2026-09/report.csv?lang=en", coord, nil), 200).Raw)
	pdf := pdfText(t, e.must(e.do("GET", "/api/v1/months/2026-09/report.pdf?lang=en", coord, nil), 200).Raw)
	for name, doc := range map[string]string{"CSV": csv, "PDF": pdf} {
		for _, want := range []string{phoneNo, multiNo} {
			if !strings.Contains(doc, want) {
				t.Errorf("the month's %s does not warn about ticket %s:\n%s", name, want, doc)
			}
		}
		if strings.Contains(doc, "工单") {
			t.Errorf("the month's English %s has the Chinese warnings too:\n%s", name, doc)
		}
	}

	// After the month is approved, the fourth sheet is received: it never counts, the
	// ticket was paid.
	e.must(e.do("POST", "/api/v1/months/2026-09/actions/review", manager, nil), 200)
	e.must(e.do("POST", "/api/v1/months/2026-09/actions/approve", leader, nil), 200)
	e.must(e.do("POST", "/api/v1/sheets/m5/actions/receive", coord, nil), 200)
	f.clock.set(shanghai("2026-10-02 10:00"))
	r = e.must(e.do("POST", "/api/v1/months/2026-10/compile", coord, nil), 200)
	row = monthRow(t, r.Body, f.users["tech1"])
	if got := ids(row["counted_sheet_ids"]); len(got) != 0 {
		t.Errorf("October counts %v for a ticket September already paid", got)
	}
	if !strings.Contains(fmt.Sprint(r.Body["warnings"]), multiNo) {
		t.Errorf("October's warnings %v do not mention ticket %s", r.Body["warnings"], multiNo)
	}
}
