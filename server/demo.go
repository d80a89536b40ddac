package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// DemoPassword is the password of every demo account.
const DemoPassword = "demo-pass-2026"

// DemoUsers are the demo company's accounts: username, name, role, dedicated, probation.
var DemoUsers = []struct {
	Username, Name, Role string
	Dedicated, Probation bool
}{
	{"admin", "系统管理员 Admin", schema.RoleAdmin, true, false},
	{"coord", "王芳 Wang Fang", schema.RoleCoordinator, true, false},
	{"manager", "李强 Li Qiang", schema.RoleManager, true, false},
	{"leader", "赵总 Zhao Wei", schema.RoleLeader, true, false},
	{"tech1", "张伟 Zhang Wei", schema.RoleTechnician, true, false},
	{"tech2", "刘洋 Liu Yang", schema.RoleTechnician, true, true},
	{"tech3", "陈静 Chen Jing", schema.RoleTechnician, false, false},
}

// seedDemo creates the demo company: accounts, customers with sites and equipment, and
// tickets in every state, all through the write path like any other change.
func (s *Server) seedDemo(ctx context.Context) error {
	actors := map[string]schema.Actor{}
	for _, u := range DemoUsers {
		d, err := s.Engine.CreateUser(ctx, schema.System, syncer.NewUser{Username: u.Username, Name: u.Name, Role: u.Role,
			Phone: "138" + fmt.Sprintf("%08d", len(actors)*1111111), Dedicated: u.Dedicated, Probation: u.Probation, Password: DemoPassword})
		if err != nil {
			return fmt.Errorf("demo user %s: %w", u.Username, err)
		}
		actors[u.Username] = schema.Actor{UserID: d.Str("id"), Role: u.Role, Name: u.Name}
	}
	sd := &seeder{s: s, ctx: ctx}
	coord := actors["coord"]
	type cust struct{ name, phone, addr, site, contact, cphone, model, serial, warranty string }
	custs := []cust{
		{"华东精密仪器有限公司", "021-5080-1234", "上海市浦东新区张江路 88 号", "张江研发中心", "孙丽", "139-1234-5678", "PLC-X200 控制柜", "HX-2023-0001", "2027-06-30"},
		{"苏州“天工”自动化股份公司", "0512-6666-8888", "江苏省苏州市工业园区星湖街 328 号", "一号厂房", "周明", "137-0000-1111", "Model X-200 伺服驱动器", "TG-2021-0420", "2024-12-31"},
		{"杭州西溪数据中心", "0571-8888-0000", "浙江省杭州市西湖区文三路 90 号", "B 栋机房", "吴昊", "136-2222-3333", "UPS-60K 不间断电源", "XX-UPS-60K-77", ""},
	}
	var custIDs, siteIDs, assetIDs []string
	for _, c := range custs {
		cu := sd.create(coord, schema.EntCustomer, map[string]any{"name": c.name, "phone": c.phone, "address": c.addr})
		si := sd.create(coord, schema.EntSite, map[string]any{"customer_id": cu, "name": c.site, "address": c.addr,
			"contacts": []map[string]string{{"name": c.contact, "phone": c.cphone}}})
		a := map[string]any{"customer_id": cu, "site_id": si, "model": c.model, "serial": c.serial, "install_date": "2021-03-15",
			"manufacturer": "华东电气 East Electric", "manufacturer_onsite": c.warranty != ""}
		if c.warranty != "" {
			a["warranty_until"] = c.warranty
		}
		custIDs, siteIDs, assetIDs = append(custIDs, cu), append(siteIDs, si), append(assetIDs, sd.create(coord, schema.EntAsset, a))
	}
	ticket := func(i int, by schema.Actor, symptoms, urgency, mode string) string {
		f := map[string]any{"customer_id": custIDs[i], "site_id": siteIDs[i], "asset_id": assetIDs[i], "fault_symptoms": symptoms}
		if by.Role != schema.RoleTechnician { // the office sets what a technician reports
			f["urgency"], f["agreed_handling"], f["service_mode"] = urgency, "技术员上门检查 / technician visits", mode
		}
		return sd.create(by, schema.EntTicket, f)
	}
	t1, t2, t3 := actors["tech1"].UserID, actors["tech2"].UserID, actors["tech3"].UserID
	// registered, waiting for dispatch
	ticket(0, coord, "控制柜报警灯常亮 / alarm lamp stays on", "high", "onsite")
	// leadership instruction, escalated to the manager
	lt := ticket(2, actors["leader"], "领导指示：机房巡检 / inspect the machine room", "normal", "onsite")
	sd.act(coord, lt, "escalate", nil)
	// dispatched, accepted, en route, on site
	d := ticket(0, coord, "触摸屏无响应 / touch screen unresponsive", "critical", "onsite")
	sd.act(coord, d, "dispatch", map[string]any{"technician_id": t1})
	a := ticket(1, coord, "伺服报警 E-21 / servo alarm E-21", "high", "onsite")
	sd.act(coord, a, "dispatch", map[string]any{"technician_id": t2})
	sd.act(actors["tech2"], a, "accept", nil)
	e := ticket(2, coord, "UPS 电池告警 / UPS battery warning", "normal", "onsite")
	sd.act(coord, e, "dispatch", map[string]any{"technician_id": t1})
	sd.act(actors["tech1"], e, "accept", nil)
	sd.act(actors["tech1"], e, "en_route", nil)
	// reported by a technician at a customer he serves, not yet verified
	ticket(2, actors["tech1"], "现场发现另一台驱动器异响 / another drive makes noise", "normal", "onsite")
	o := ticket(0, coord, "通讯中断 / communication lost", "high", "onsite")
	sd.act(coord, o, "dispatch", map[string]any{"technician_id": t3})
	sd.act(actors["tech3"], o, "accept", nil)
	sd.act(actors["tech3"], o, "en_route", nil)
	sd.act(actors["tech3"], o, "arrive", nil)
	// phone service completed; then the rest of the workflow
	for i, end := range []string{schema.StCompleted, schema.StSheetReceived, schema.StFollowedUp, schema.StClosed} {
		p := ticket(i%3, coord, "参数设置咨询 / parameter settings question", "low", "phone")
		sd.act(coord, p, "dispatch", map[string]any{"technician_id": t1})
		sd.act(actors["tech1"], p, "accept", nil)
		sd.act(actors["tech1"], p, "start", nil)
		sd.act(actors["tech1"], p, "complete", map[string]any{"service_mode": "phone"})
		sd.demoSheet(actors, p, i, end) // signed; received (moving the ticket) past completed
		if end == schema.StCompleted {
			continue
		}
		if end == schema.StSheetReceived {
			continue
		}
		sd.create(actors["manager"], schema.EntFollowup, map[string]any{"ticket_id": p, "outcome": "satisfied", "notes": "客户满意 / customer satisfied"})
		if end == schema.StClosed {
			sd.act(coord, p, "close", nil)
		}
	}
	c := ticket(1, coord, "重复报修 / duplicate request", "low", "onsite")
	sd.act(coord, c, "cancel", map[string]any{"reason": "与前一单重复 / duplicate of an earlier ticket"})
	if sd.err != nil {
		return sd.err
	}
	if err := s.seedDemoSheets(ctx, actors); err != nil {
		return fmt.Errorf("demo sheets: %w", err)
	}
	var b strings.Builder
	b.WriteString("fieldsync demo company seeded. Logins (password " + DemoPassword + "):\n")
	for _, u := range DemoUsers {
		fmt.Fprintf(&b, "  %-8s %-12s %s\n", u.Username, u.Role, u.Name)
	}
	s.cfg.Out(strings.TrimRight(b.String(), "\n"))
	return nil
}

// seeder applies demo changes and keeps the first error.
type seeder struct {
	s   *Server
	ctx context.Context
	err error
}

func rawFields(m map[string]any) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range m {
		out[k] = schema.MustJSON(v)
	}
	return out
}

func (sd *seeder) apply(actor schema.Actor, m syncer.Mutation) string {
	if sd.err != nil {
		return ""
	}
	res, err := sd.s.Engine.Apply(sd.ctx, actor, []syncer.Mutation{m}, syncer.Options{})
	if err != nil {
		sd.err = err
		return ""
	}
	if res[0].Status == syncer.StatusRejected {
		sd.err = fmt.Errorf("demo %s %s %s: %s: %s", m.Op, m.Entity, m.Action, res[0].Code, res[0].Message)
		return ""
	}
	return res[0].ID
}

func (sd *seeder) create(actor schema.Actor, entity string, fields map[string]any) string {
	return sd.apply(actor, syncer.Mutation{Entity: entity, Op: "create", Fields: rawFields(fields)})
}

func (sd *seeder) act(actor schema.Actor, id, action string, params map[string]any) {
	sd.apply(actor, syncer.Mutation{Entity: schema.EntTicket, ID: id, Op: "action", Action: action, Fields: rawFields(params)})
}
