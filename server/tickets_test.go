package server

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	gosync "sync"
	"testing"

	"fieldsync/schema"
)

// office is a coordinator session on a fresh demo company with its own customer.
type office struct {
	*testEnv
	coord, manager, admin string
	cust, site, asset     string
	users                 map[string]string // username → id
}

func newOffice(t *testing.T) *office {
	env := newEnv(t, true)
	o := &office{testEnv: env, coord: env.login("coord", DemoPassword), manager: env.login("manager", DemoPassword),
		admin: env.login("admin", DemoPassword), users: map[string]string{}}
	for _, u := range env.must(env.do("GET", "/api/v1/users", o.coord, nil), 200).Body["items"].([]any) {
		m := u.(map[string]any)
		o.users[str(m, "username")] = str(m, "id")
	}
	o.cust = str(env.must(env.do("POST", "/api/v1/customers", o.coord, map[string]any{"name": "宁波港口机械厂", "phone": "0574-1234", "address": "宁波市北仑区"}), 201).Body, "id")
	o.site = str(env.must(env.do("POST", "/api/v1/customers/"+o.cust+"/sites", o.coord, map[string]any{"name": "二号码头", "address": "北仑区港口路 1 号",
		"contacts": []map[string]string{{"name": "钱工", "phone": "135-0000-0001"}}}), 201).Body, "id")
	o.asset = str(env.must(env.do("POST", "/api/v1/assets", o.coord, map[string]any{"customer_id": o.cust, "site_id": o.site, "model": "QC-9 起重机控制器",
		"serial": "NB-QC9-0001", "warranty_until": "2099-12-31"}), 201).Body, "id")
	return o
}

func (o *office) intake(extra map[string]any) map[string]any {
	body := map[string]any{"customer_id": o.cust, "site_id": o.site, "asset_id": o.asset, "fault_symptoms": "吊具无法锁定 / spreader will not lock", "urgency": "high"}
	for k, v := range extra {
		body[k] = v
	}
	return o.must(o.do("POST", "/api/v1/tickets", o.coord, body), 201).Body
}

func (o *office) act(token, id, action string, params any) resp {
	return o.do("POST", "/api/v1/tickets/"+id+"/actions/"+action, token, params)
}

func TestIntakeFillsTheServiceLog(t *testing.T) {
	o := newOffice(t)
	tk := o.intake(map[string]any{"chargeable": true, "agreed_handling": "明早上门", "service_type": "repair"})
	if !regexp.MustCompile(`^SR-\d{6}-\d{4}$`).MatchString(str(tk, "number")) {
		t.Errorf("number %q", tk["number"])
	}
	want := map[string]any{"status": "registered", "source": "hotline", "verified": true, "warranty": "in", "address": "北仑区港口路 1 号",
		"contact_name": "钱工", "contact_phone": "135-0000-0001", "urgency": "high", "chargeable": true, "agreed_handling": "明早上门", "overdue": false}
	for k, v := range want {
		if tk[k] != v {
			t.Errorf("%s = %v, want %v", k, tk[k], v)
		}
	}
	if str(tk, "due_response_at") == "" || str(tk, "due_arrival_at") <= str(tk, "due_response_at") {
		t.Errorf("deadlines %v / %v", tk["due_response_at"], tk["due_arrival_at"])
	}
	if str(tk, "reported_by") != o.users["coord"] {
		t.Errorf("reported_by %v", tk["reported_by"])
	}
	// Numbers are unique and increase.
	tk2 := o.intake(nil)
	if str(tk2, "number") <= str(tk, "number") {
		t.Errorf("second number %v not after %v", tk2["number"], tk["number"])
	}
	// The asset is found by serial with its warranty state.
	a := o.must(o.do("GET", "/api/v1/assets?serial=NB-QC9-0001", o.coord, nil), 200).Body["items"].([]any)
	if len(a) != 1 || str(a[0].(map[string]any), "warranty_now") != "in" {
		t.Errorf("asset by serial: %v", a)
	}
	// Asset lists page like every list: total counts them all.
	o.must(o.do("POST", "/api/v1/assets", o.coord, map[string]any{"customer_id": o.cust, "model": "QC-9 备用", "serial": "NB-QC9-0002", "warranty_until": "2020-01-31"}), 201)
	page := o.must(o.do("GET", "/api/v1/assets?customer_id="+o.cust+"&limit=1&offset=1", o.coord, nil), 200).Body
	if page["total"].(float64) != 2 || len(page["items"].([]any)) != 1 {
		t.Errorf("asset page: total %v, %d items", page["total"], len(page["items"].([]any)))
	}
	if w := str(page["items"].([]any)[0].(map[string]any), "warranty_now"); w != "in" && w != "out" {
		t.Errorf("warranty_now %q on a listed asset", w)
	}
}

func TestIntakeRefusesBadInput(t *testing.T) {
	o := newOffice(t)
	other := str(o.must(o.do("POST", "/api/v1/customers", o.coord, map[string]any{"name": "别家公司"}), 201).Body, "id")
	otherSite := str(o.must(o.do("POST", "/api/v1/customers/"+other+"/sites", o.coord, map[string]any{"name": "别处"}), 201).Body, "id")
	cases := []struct {
		name  string
		extra map[string]any
		field string
	}{
		{"site of another customer", map[string]any{"site_id": otherSite}, "site_id"},
		{"unknown urgency", map[string]any{"urgency": "yesterday"}, "urgency"},
		{"unknown customer", map[string]any{"customer_id": "nope"}, "customer_id"},
		{"missing symptoms", map[string]any{"fault_symptoms": ""}, "fault_symptoms"},
		{"warranty override without reason", map[string]any{"warranty": "out"}, "warranty_reason"},
		{"server-owned field", map[string]any{"status": "closed"}, "status"},
		{"wrong type", map[string]any{"chargeable": "yes"}, "chargeable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"customer_id": o.cust, "site_id": o.site, "fault_symptoms": "x"}
			for k, v := range c.extra {
				body[k] = v
			}
			r := o.do("POST", "/api/v1/tickets", o.coord, body)
			if r.Status != 400 && r.Status != 403 || r.errField() != c.field {
				t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Raw, c.field)
			}
		})
	}
	r := o.must(o.do("GET", "/api/v1/tickets?customer_id="+o.cust, o.coord, nil), 200)
	if r.Body["total"].(float64) != 0 {
		t.Errorf("refused intakes left %v tickets", r.Body["total"])
	}
}

func TestWorkflowThroughTheAPI(t *testing.T) {
	o := newOffice(t)
	tech1, tech2 := o.users["tech1"], o.users["tech2"]
	tk := o.intake(nil)
	id := str(tk, "id")
	o.must(o.act(o.coord, id, "dispatch", map[string]any{"technician_id": tech1}), 200)
	o.must(o.act(o.coord, id, "escalate", nil), 200)
	r := o.must(o.act(o.manager, id, "dispatch", map[string]any{"technician_id": tech2}), 200)
	if str(r.Body, "assignee_id") != tech2 || str(r.Body, "status") != "dispatched" {
		t.Fatalf("after reassignment: %v", r.Body)
	}
	if r := o.act(o.coord, id, "dispatch", map[string]any{"technician_id": o.users["coord"]}); r.Status != 400 || r.errField() != "technician_id" {
		t.Errorf("dispatch to a coordinator: %d %s", r.Status, r.Raw)
	}
	o.must(o.act(o.coord, id, "cancel", map[string]any{"reason": "客户自行解决"}), 200)
	r = o.act(o.coord, id, "arrive", nil)
	if r.Status != 409 || r.errCode() != schema.CodeInvalidTransition {
		t.Fatalf("arrive on a cancelled ticket: %d %s", r.Status, r.Raw)
	}
	if rec := r.Body["error"].(map[string]any)["record"].(map[string]any); str(rec, "status") != "cancelled" {
		t.Errorf("the refusal does not carry the current state: %v", rec)
	}
	if r := o.act(o.coord, id, "teleport", nil); r.Status != 400 || r.errField() != "action" {
		t.Errorf("unknown action: %d %s", r.Status, r.Raw)
	}
	if r := o.act(o.coord, id, "cancel", nil); r.Status != 409 {
		t.Errorf("cancel twice: %d", r.Status)
	}
	// The ticket shows its whole history: both assignments and the cancellation.
	full := o.must(o.do("GET", "/api/v1/tickets/"+id, o.coord, nil), 200).Body
	var actions []string
	for _, e := range full["events"].([]any) {
		ev := e.(map[string]any)
		actions = append(actions, str(ev, "action"))
	}
	if fmt.Sprint(actions) != "[dispatch escalate dispatch cancel]" {
		t.Errorf("events %v", actions)
	}
	hist := o.must(o.do("GET", "/api/v1/tickets/"+id+"/history", o.coord, nil), 200).Body["items"].([]any)
	var assignments []string
	for _, h := range hist {
		e := h.(map[string]any)
		if e["entity"] != "ticket" {
			continue
		}
		if f, ok := e["fields"].(map[string]any)["assignee_id"].([]any); ok {
			assignments = append(assignments, fmt.Sprintf("%v>%v", f[0], f[1]))
		}
		if str(e, "actor_id") == "" || str(e, "at") == "" {
			t.Errorf("history entry without actor or time: %v", e)
		}
	}
	want := fmt.Sprintf("[<nil>>%s %s><nil> <nil>>%s]", tech1, tech1, tech2)
	if fmt.Sprint(assignments) != want {
		t.Errorf("assignment history %v, want %s", assignments, want)
	}
}

func TestFullLifecycleToClosedAndReopen(t *testing.T) {
	o := newOffice(t)
	id := str(o.intake(map[string]any{"service_mode": "phone"}), "id")
	steps := []struct {
		token, action string
		params        any
		status        string
	}{
		{o.coord, "dispatch", map[string]any{"technician_id": o.users["tech1"]}, "dispatched"},
		{o.coord, "accept", nil, "accepted"},
		{o.coord, "start", nil, "accepted"},
		{o.coord, "complete", map[string]any{"service_mode": "phone"}, "completed"},
		{o.manager, "receive_sheet", map[string]any{"no_sheet_reason": "客户不愿签字"}, "sheet_received"},
	}
	for _, s := range steps {
		r := o.must(o.act(s.token, id, s.action, s.params), 200)
		if str(r.Body, "status") != s.status {
			t.Fatalf("%s: status %v, want %s", s.action, r.Body["status"], s.status)
		}
	}
	if r := o.act(o.coord, id, "close", nil); r.Status != 409 {
		t.Errorf("close before the follow-up call: %d", r.Status)
	}
	f := o.must(o.do("POST", "/api/v1/tickets/"+id+"/followups", o.manager, map[string]any{"outcome": "satisfied", "notes": "客户很满意"}), 201).Body
	if str(f, "called_by") != o.users["manager"] || str(f, "technician_id") != o.users["tech1"] {
		t.Errorf("follow-up %v", f)
	}
	if r := o.do("POST", "/api/v1/tickets/"+id+"/followups", o.manager, map[string]any{"outcome": "ecstatic"}); r.errField() != "outcome" {
		t.Errorf("bad outcome: %s", r.Raw)
	}
	tk := o.must(o.do("GET", "/api/v1/tickets/"+id, o.coord, nil), 200).Body
	if str(tk, "status") != "followed_up" {
		t.Fatalf("after the follow-up: %v", tk["status"])
	}
	o.must(o.act(o.coord, id, "close", nil), 200)
	r := o.must(o.act(o.coord, id, "reopen", map[string]any{"reason": "故障复发 / fault came back"}), 200)
	newID := str(r.Body, "reopened_as")
	if str(r.Body, "status") != "closed" || newID == "" {
		t.Fatalf("reopen changed the closed ticket's status or linked nothing: %v", r.Body)
	}
	nt := o.must(o.do("GET", "/api/v1/tickets/"+newID, o.coord, nil), 200).Body
	if str(nt, "reopened_from") != id || str(nt, "status") != "registered" || str(nt, "customer_id") != o.cust {
		t.Errorf("the linked ticket: %v", nt)
	}
	if r := o.act(o.coord, id, "reopen", map[string]any{"reason": "again"}); r.Status != 409 {
		t.Errorf("reopened twice: %d", r.Status)
	}
}

func TestStaleIfMatchIsAConflict(t *testing.T) {
	o := newOffice(t)
	tk := o.intake(nil)
	id, v := str(tk, "id"), strconv.Itoa(int(tk["version"].(float64)))
	r := o.must(o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"urgency": "critical"}, "If-Match", v), 200)
	if r.Body["urgency"] != "critical" || r.Body["due_response_at"] == tk["due_response_at"] {
		t.Errorf("urgency change did not move the deadlines: %v", r.Body)
	}
	r = o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"agreed_handling": "电话指导"}, "If-Match", v)
	if r.Status != 412 || r.errCode() != schema.CodePreconditionFailed {
		t.Fatalf("stale If-Match: %d %s", r.Status, r.Raw)
	}
	if rec := r.Body["error"].(map[string]any)["record"].(map[string]any); rec["urgency"] != "critical" {
		t.Errorf("the conflict does not carry the current record: %v", rec)
	}
	if r := o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"urgency": "low"}); r.errField() != "If-Match" {
		t.Errorf("PATCH without If-Match: %s", r.Raw)
	}
	if r := o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"number": "SR-X"}, "If-Match", "2"); r.errField() != "number" {
		t.Errorf("editing the number: %s", r.Raw)
	}
}

// TestEveryWriteLogsExactlyOneChange checks the audit trail: each accepted write is one
// change entry with the right actor and the fields it changed, old and new.
func TestEveryWriteLogsExactlyOneChange(t *testing.T) {
	o := newOffice(t)
	var before int
	o.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM changes`).Scan(&before)
	tk := o.intake(nil)
	id := str(tk, "id")
	o.must(o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"agreed_handling": "下午上门"}, "If-Match", "1"), 200)
	o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{"agreed_handling": "stale"}, "If-Match", "1") // refused
	var after int
	o.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM changes`).Scan(&after)
	if after-before != 2 {
		t.Fatalf("%d change entries for 2 accepted writes", after-before)
	}
	var actor, fields string
	var version int
	o.srv.DB.R.QueryRow(`SELECT actor_id, fields, version FROM changes WHERE entity = 'ticket' AND id = ? ORDER BY seq DESC LIMIT 1`, id).Scan(&actor, &fields, &version)
	var diff map[string][2]any
	json.Unmarshal([]byte(fields), &diff)
	if actor != o.users["coord"] || version != 2 || len(diff) != 1 || diff["agreed_handling"][0] != "" || diff["agreed_handling"][1] != "下午上门" {
		t.Errorf("change entry actor=%s version=%d fields=%s", actor, version, fields)
	}
	// The record's version equals the number of its change entries.
	var n, v int
	o.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM changes WHERE entity = 'ticket' AND id = ?`, id).Scan(&n)
	o.srv.DB.R.QueryRow(`SELECT version FROM records WHERE entity = 'ticket' AND id = ?`, id).Scan(&v)
	if n != v {
		t.Errorf("version %d but %d change entries", v, n)
	}
}

// TestConcurrentEditsLoseNothing runs writers that each set their own field with optimistic
// retries; every accepted change must be in the final record and in the history.
func TestConcurrentEditsLoseNothing(t *testing.T) {
	o := newOffice(t)
	id := str(o.intake(nil), "id")
	fields := []string{"agreed_handling", "contact_name", "contact_phone", "address", "warranty_reason", "fault_symptoms"}
	var wg gosync.WaitGroup
	var mu gosync.Mutex
	accepted := map[string]string{}
	for i, f := range fields {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				val := fmt.Sprintf("%s-%d-%d 值", f, i, round)
				for range 50 {
					cur := o.do("GET", "/api/v1/tickets/"+id, o.coord, nil)
					v := strconv.Itoa(int(cur.Body["version"].(float64)))
					r := o.do("PATCH", "/api/v1/tickets/"+id, o.coord, map[string]any{f: val}, "If-Match", v)
					if r.Status == 200 {
						mu.Lock()
						accepted[f] = val
						mu.Unlock()
						break
					}
					if r.errCode() != schema.CodePreconditionFailed {
						t.Errorf("%s: %d %s", f, r.Status, r.Raw)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	final := o.must(o.do("GET", "/api/v1/tickets/"+id, o.coord, nil), 200).Body
	for f, v := range accepted {
		if final[f] != v {
			t.Errorf("%s = %v, want the last accepted %v", f, final[f], v)
		}
	}
	if len(accepted) != len(fields) {
		t.Errorf("only %d of %d writers got through", len(accepted), len(fields))
	}
	var n int
	o.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM changes WHERE entity = 'ticket' AND id = ?`, id).Scan(&n)
	if n != 1+len(fields)*5 {
		t.Errorf("%d change entries, want %d (create + every accepted edit)", n, 1+len(fields)*5)
	}
}

func TestListsAndFilters(t *testing.T) {
	o := newOffice(t)
	a := o.intake(nil)
	b := o.intake(map[string]any{"fault_symptoms": "液压泄漏 / hydraulic leak"})
	o.must(o.act(o.coord, str(b, "id"), "dispatch", map[string]any{"technician_id": o.users["tech1"]}), 200)
	get := func(q string) []string {
		r := o.must(o.do("GET", "/api/v1/tickets?customer_id="+o.cust+"&"+q, o.coord, nil), 200)
		var ids []string
		for _, it := range r.Body["items"].([]any) {
			ids = append(ids, str(it.(map[string]any), "id"))
		}
		return ids
	}
	if got := get("status=dispatched"); len(got) != 1 || got[0] != str(b, "id") {
		t.Errorf("status filter: %v", got)
	}
	if got := get("assignee=" + o.users["tech1"]); len(got) != 1 {
		t.Errorf("assignee filter: %v", got)
	}
	if got := get("q=液压"); len(got) != 1 || got[0] != str(b, "id") {
		t.Errorf("text search: %v", got)
	}
	if got := get("q=" + str(a, "number")); len(got) != 1 || got[0] != str(a, "id") {
		t.Errorf("search by number: %v", got)
	}
	if got := get("overdue=true"); len(got) != 0 {
		t.Errorf("fresh tickets overdue: %v", got)
	}
	if r := o.do("GET", "/api/v1/tickets?status=lost", o.coord, nil); r.errField() != "status" {
		t.Errorf("bad status filter: %s", r.Raw)
	}
	if r := o.do("GET", "/api/v1/tickets?limit=0", o.coord, nil); r.errField() != "limit" {
		t.Errorf("bad limit: %s", r.Raw)
	}
	// The demo holds overdue tickets? A ticket received long ago is.
	old := o.intake(map[string]any{"received_at": "2026-01-05T08:00:00Z"})
	if got := get("overdue=true"); len(got) != 1 || got[0] != str(old, "id") {
		t.Errorf("overdue filter: %v", got)
	}
	if got := get("from=2026-01-01&to=2026-02-01"); len(got) != 1 {
		t.Errorf("date range: %v", got)
	}
}

func TestComplaints(t *testing.T) {
	o := newOffice(t)
	id := str(o.intake(nil), "id")
	if r := o.do("POST", "/api/v1/tickets/"+id+"/complaints", o.coord, map[string]any{"description": "迟到两小时"}); r.Status != 400 || r.errField() != "technician_id" {
		t.Errorf("complaint on an unassigned ticket without a technician: %d %s", r.Status, r.Raw)
	}
	o.must(o.act(o.coord, id, "dispatch", map[string]any{"technician_id": o.users["tech1"]}), 200)
	c := o.must(o.do("POST", "/api/v1/tickets/"+id+"/complaints", o.coord, map[string]any{"description": "迟到两小时 / two hours late"}), 201).Body
	if str(c, "technician_id") != o.users["tech1"] || str(c, "status") != "open" {
		t.Fatalf("complaint %v", c)
	}
	cid := str(c, "id")
	if r := o.do("POST", "/api/v1/complaints/"+cid+"/actions/uphold", o.coord, nil); r.Status != 403 {
		t.Errorf("a coordinator upheld a complaint: %d", r.Status)
	}
	o.must(o.do("POST", "/api/v1/complaints/"+cid+"/actions/uphold", o.manager, map[string]any{"note": "属实"}), 200)
	if r := o.do("POST", "/api/v1/complaints/"+cid+"/actions/dismiss", o.manager, nil); r.Status != 409 {
		t.Errorf("deciding twice: %d", r.Status)
	}
	month := str(c, "received_at")[:7]
	list := o.must(o.do("GET", "/api/v1/complaints?month="+month, o.coord, nil), 200).Body
	if list["total"].(float64) < 1 {
		t.Errorf("complaints of %s: %v", month, list)
	}
	if r := o.do("GET", "/api/v1/complaints?month=2026-13", o.coord, nil); r.errField() != "month" {
		t.Errorf("bad month: %s", r.Raw)
	}
}

func TestSettings(t *testing.T) {
	o := newOffice(t)
	if r := o.do("PUT", "/api/v1/settings", o.coord, map[string]any{"hotline": "1"}); r.Status != 403 {
		t.Errorf("coordinator changed settings: %d", r.Status)
	}
	r := o.do("PUT", "/api/v1/settings", o.admin, map[string]any{"allowance_per_service_fen": 6000, "timezone": "Mars/Olympus"})
	if r.Status != 400 || r.errField() != "timezone" {
		t.Fatalf("bad timezone: %d %s", r.Status, r.Raw)
	}
	if got := o.srv.Engine.Settings().Int("allowance_per_service_fen"); got != 5000 {
		t.Errorf("a refused PUT changed a setting: %d", got)
	}
	o.must(o.do("PUT", "/api/v1/settings", o.admin, map[string]any{"allowance_per_service_fen": 6000, "response_minutes_high": 15}), 200)
	if got := o.srv.Engine.Settings().Int("allowance_per_service_fen"); got != 6000 {
		t.Errorf("allowance %d after PUT", got)
	}
	tk := o.intake(nil)
	if tk["due_response_at"] == nil {
		t.Fatal("no deadline")
	}
	if r := o.do("PUT", "/api/v1/settings", o.admin, map[string]any{"bogus": 1}); r.errField() != "bogus" {
		t.Errorf("unknown setting: %s", r.Raw)
	}
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	env := newEnv(t, false)
	r := env.must(env.do("GET", "/api/v1/openapi.json", "", nil), 200)
	paths := r.Body["paths"].(map[string]any)
	for _, rt := range env.srv.App.GetRoutes(true) {
		if rt.Method == "HEAD" && rt.Path != "/mobile/v1/blobs/:sha" || rt.Path == "/" || rt.Method == "USE" {
			continue
		}
		p := OpenAPIPath(rt.Path)
		p = regexp.MustCompile(`\{sha\}`).ReplaceAllString(p, "{sha256}")
		ops, ok := paths[p].(map[string]any)
		if !ok || ops[strings.ToLower(rt.Method)] == nil {
			t.Errorf("route %s %s is missing from openapi.json", rt.Method, rt.Path)
		}
	}
}
