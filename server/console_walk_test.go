package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleWalkthrough walks the office's whole flow in the browser, each step taken by
// the role that takes it: a hotline call from a new customer is registered by the
// coordinator with the customer, site and equipment created during the call; the
// coordinator dispatches it while the manager, on another desk, watches the ticket follow
// without reload; the technician does the work (through the API, as from the phone); the
// coordinator enters the signed and stamped paper form with its scan; the manager logs the
// follow-up call from the follow-up queue; the month is compiled, reviewed and approved,
// and the month page and its PDF show the service counted from paper.
func TestConsoleWalkthrough(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	var tech1 string
	for _, u := range env.must(env.do("GET", "/api/v1/users", env.login("admin", DemoPassword), nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "tech1" {
			tech1 = str(m, "id")
		}
	}
	scan := filepath.Join(t.TempDir(), "form-scan.png")
	if err := os.WriteFile(scan, testPNG(13), 0o644); err != nil {
		t.Fatal(err)
	}
	month := time.Now().Format("2006-01")

	// Two desks: the coordinator's browser, and the manager's in a browser context of its own
	// (its own storage and session).
	desk := browser(t, 3*time.Minute)
	other, cancelOther := chromedp.NewContext(desk, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelOther)
	// The first action opens the tab and ties it to the context it runs on: other itself.
	if err := chromedp.Do(other, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("open the second browser context: %v", err)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	logIn(t, desk, base, "coord")
	if who := text(t, desk, "#who"); !strings.Contains(who, "王芳 Wang Fang") {
		t.Errorf("the coordinator's header: %q", who)
	}

	// 1. The hotline rings: a customer the company has never served. The coordinator creates
	// customer, site and equipment without leaving intake and registers the request.
	step(t, desk, "a new customer during the call",
		chromedp.Navigate(base+"/console/#/intake"),
		chromedp.WaitVisible(css("#new-customer-open")),
		chromedp.Click(css("#new-customer-open")),
		chromedp.WaitVisible(css("#new-customer-form")),
		chromedp.SendKeys(css("#new-customer-form input[name=name]"), "温州瓯江机电有限公司"),
		chromedp.SendKeys(css("#new-customer-form input[name=phone]"), "0577-8801 2345"),
		chromedp.SendKeys(css("#new-customer-form input[name=site_name]"), "三号车间"),
		chromedp.SendKeys(css("#new-customer-form input[name=model]"), "ACS880"),
		chromedp.SendKeys(css("#new-customer-form input[name=serial]"), "WZ-WALK-0613"),
		chromedp.SetValue(css("#new-customer-form input[name=warranty_until]"), "2031-03-31"),
		chromedp.Click(css("#new-customer-form button[type=submit]")),
		waitJS(`document.querySelector('.chosen')?.textContent.includes('温州瓯江机电有限公司') &&
			document.querySelector('select[name=asset_id]').selectedOptions[0]?.textContent.includes('WZ-WALK-0613') &&
			document.querySelector('select[name=site_id]').selectedOptions[0]?.textContent.includes('三号车间') &&
			document.getElementById('new-customer-form').hidden`),
	)
	step(t, desk, "register the call",
		chromedp.SendKeys(css("textarea[name=fault_symptoms]"), "变频器报过流故障 / drive trips on overcurrent"),
		chromedp.SetValue(css("select[name=urgency]"), "high"),
		chromedp.SetValue(css("select[name=service_mode]"), "phone"),
		chromedp.Click(css("#intake-form button[type=submit]")),
		waitJS(`location.hash.startsWith('#/tickets/') && document.querySelector('.head-badges')?.textContent.includes('已登记 Registered') &&
			document.querySelector('.page-head')?.textContent.includes('温州瓯江机电有限公司')`),
	)
	id := strings.TrimPrefix(read(t, desk, "ticket id", chromedp.Evaluate[string](`location.hash`)), "#/tickets/")
	number := text(t, desk, "#ticket-title")
	number = strings.Fields(number)[0]
	fields := text(t, desk, "dl.fields")
	for _, want := range []string{"三号车间", "ACS880 · WZ-WALK-0613", "变频器报过流故障", "保修期内 In warranty", "电话服务 Phone", "服务热线"} {
		if !strings.Contains(fields, want) {
			t.Errorf("the registered ticket does not show %q:\n%s", want, fields)
		}
	}

	// 2. The manager, on another desk, has the new ticket open; the coordinator dispatches it
	// to 张伟 and the manager's page follows without reload.
	logIn(t, other, base, "manager")
	step(t, other, "the manager opens the ticket from the list",
		chromedp.WaitVisible(css(`tr[data-id="`+id+`"] a`)),
		chromedp.Click(css(`tr[data-id="`+id+`"] a`)),
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已登记 Registered')`),
		chromedp.WaitVisible(css("#live")),
		chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`),
	)
	step(t, desk, "dispatch",
		chromedp.WaitVisible(css(`form[data-action="dispatch"]`)),
		chromedp.SetValue(css(`form[data-action="dispatch"] select[name=technician_id]`), tech1),
		chromedp.Click(css(`form[data-action="dispatch"] button[type=submit]`)),
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已派工 Dispatched')`),
	)
	if ev := text(t, desk, ".events"); !strings.Contains(ev, "→ 张伟 Zhang Wei") || !strings.Contains(ev, "王芳 Wang Fang") {
		t.Errorf("the coordinator's history of the dispatch:\n%s", ev)
	}
	step(t, other, "the manager sees the dispatch without reload",
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已派工 Dispatched') &&
			document.querySelector('.events')?.textContent.includes('张伟 Zhang Wei') && window.notReloaded === true`),
	)

	// 3. The coordinator turns to the month page meanwhile. The technician takes the call,
	// advises the customer by phone and records the completion: his own steps, sent as his
	// phone sends them. The coordinator's count of sheets to receive goes up without reload.
	coord := env.login("coord", DemoPassword)
	toReceive := int(env.must(env.do("GET", "/api/v1/tickets?limit=1&status=completed", coord, nil), 200).Body["total"].(float64))
	step(t, desk, "the coordinator turns to other work",
		chromedp.Navigate(base+"/console/#/months/"+month),
		chromedp.WaitVisible(css(".month-actions button")),
		waitJS(`document.querySelector('[data-queue=sheets] .count')?.textContent === '`+fmt.Sprint(toReceive)+`'`),
	)
	phone := env.deviceLogin("tech1", DemoPassword, "walk-phone")
	for i, action := range []string{"accept", "start", "complete"} {
		m := map[string]any{"mid": fmt.Sprintf("walk-%d", i), "entity": "ticket", "id": id, "op": "action", "action": action}
		if action == "complete" {
			m["fields"] = map[string]any{"service_mode": "phone"}
		}
		r := env.must(env.do("POST", "/mobile/v1/sync/push", phone, map[string]any{"mutations": []any{m}}), 200).Body
		if res := r["results"].([]any)[0].(map[string]any); res["status"] != "applied" {
			t.Fatalf("the technician's %s: %v", action, res)
		}
	}
	step(t, desk, "a sheet to receive appears",
		waitJS(`document.querySelector('[data-queue=sheets] .count')?.textContent === '`+fmt.Sprint(toReceive+1)+`'`))
	step(t, other, "the manager's open ticket follows the technician",
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已完成 Completed') && window.notReloaded === true`))
	if ev := text(t, other, ".events"); !strings.Contains(ev, "接单 Accept") || !strings.Contains(ev, "设备 Device") {
		t.Errorf("the technician's steps in the manager's history:\n%s", ev)
	}

	// 4. The technician hands in the paper form the customer signed and stamped. The
	// coordinator finds its ticket by the form's number (what its QR code carries), uploads
	// the scan and types it in.
	step(t, desk, "find the ticket by the form's number",
		chromedp.Navigate(base+"/console/#/tickets"),
		chromedp.WaitVisible(css("#lookup-form input[name=code]")),
		chromedp.SendKeys(css("#lookup-form input[name=code]"), number),
		chromedp.Click(css("#lookup-form button[type=submit]")),
		chromedp.WaitVisible(css("#paper-form input[name=signer_name]")),
	)
	step(t, desk, "type in the paper sheet",
		chromedp.SendKeys(css("#paper-form input[name=signer_name]"), "林国栋"),
		chromedp.SetUploadFiles(css("#paper-form input[name=scan_blobs]"), []string{scan}),
		chromedp.Click(css("#paper-form input[name=signature_present]")),
		chromedp.Click(css("#paper-form input[name=stamp_present]")),
		chromedp.Click(css("#paper-form input[name=technician_signature_present]")),
		chromedp.SetValue(css("#paper-form select[name=rating]"), "5"),
		chromedp.SendKeys(css("#paper-form textarea[name=inspection_record]"), "电机电缆绝缘下降"),
		chromedp.SendKeys(css("#paper-form textarea[name=handling_result]"), "电话指导更换电缆，运行正常"),
		chromedp.Click(css("#paper-form button[type=submit]")),
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已收反馈单') && !!document.querySelector('.sheet .badge.paper')`),
	)
	if sh := text(t, desk, ".sheet"); !strings.Contains(sh, "纸质反馈单，由 王芳 Wang Fang 录入") || !strings.Contains(sh, "完整 Complete") ||
		!strings.Contains(sh, "林国栋") || !strings.Contains(sh, "第 1 页 Page 1") {
		t.Errorf("the entered paper sheet shows:\n%s", sh)
	}

	// 5. The manager's open ticket shows the received sheet; the follow-up queue lists the
	// ticket; the manager calls the customer back and logs the call.
	step(t, other, "the manager sees the sheet arrive",
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已收反馈单') && !!document.querySelector('.sheet .badge.paper') && window.notReloaded === true`))
	step(t, other, "the follow-up queue",
		chromedp.Click(css(`[data-queue=followup]`)),
		waitJS(`location.hash.includes('sheet_received') && !!document.querySelector('tr[data-id="`+id+`"]')`),
		chromedp.Click(css(`tr[data-id="`+id+`"] a`)),
		chromedp.WaitVisible(css(`form[data-form=followup]`)),
		chromedp.SetValue(css(`form[data-form=followup] select[name=outcome]`), "satisfied"),
		chromedp.SendKeys(css(`form[data-form=followup] textarea[name=notes]`), "客户确认设备运行正常"),
		chromedp.Click(css(`form[data-form=followup] button[type=submit]`)),
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已回访 Followed up')`),
	)
	if f := text(t, other, `section[aria-labelledby=followups-title]`); !strings.Contains(f, "满意 Satisfied") || !strings.Contains(f, "客户确认设备运行正常") ||
		!strings.Contains(f, "李强 Li Qiang") {
		t.Errorf("the follow-up calls show:\n%s", f)
	}

	// 6. Month-end: the coordinator compiles (asked first: the month is not over), the
	// manager reviews, the leader approves (asked first: it cannot be undone).
	step(t, desk, "compile the month",
		chromedp.Navigate(base+"/console/#/months/"+month),
		chromedp.WaitVisible(css(".month-actions button")),
		chromedp.Click(css(".month-actions button")),
		chromedp.WaitVisible(css(".month-actions .confirm")),
		chromedp.Click(css(".month-actions .confirm-yes")),
		waitJS(`document.querySelector('.page-head')?.textContent.includes('草稿 Draft') && !!document.querySelector('#month-special')`),
	)
	special := func(ctx context.Context, who string) {
		t.Helper()
		m := text(t, ctx, "#month-special")
		var line string
		for _, l := range strings.Split(m, "\n") {
			if strings.Contains(l, number) {
				line += l + "\n"
			}
		}
		if !strings.Contains(line, "纸质反馈单 Paper sheet") || !strings.Contains(line, "张伟 Zhang Wei") || !strings.Contains(line, "王芳 Wang Fang") {
			t.Errorf("the month page (%s) does not show %s counted from paper:\n%s", who, number, m)
		}
		if strings.Contains(line, "代技术员记录") {
			t.Errorf("the month page (%s) says the office recorded the technician's own steps:\n%s", who, line)
		}
	}
	special(desk, "coordinator")
	step(t, other, "the manager reviews",
		chromedp.Navigate(base+"/console/#/months/"+month),
		chromedp.WaitVisible(css(".month-actions button.primary")),
		chromedp.Click(css(".month-actions button.primary")),
		waitJS(`document.querySelector('.page-head')?.textContent.includes('已审核 Reviewed')`),
	)
	step(t, desk, "log out", chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#login-form")))
	logIn(t, desk, base, "leader")
	step(t, desk, "the leader approves",
		chromedp.Navigate(base+"/console/#/months/"+month),
		waitJS(`document.querySelector('.page-head')?.textContent.includes('已审核 Reviewed')`),
		chromedp.WaitVisible(css(".month-actions button.primary")),
		chromedp.Click(css(".month-actions button.primary")),
		chromedp.WaitVisible(css(".month-actions .confirm")),
	)
	if q := text(t, desk, ".month-actions .confirm"); !strings.Contains(q, month) || !strings.Contains(q, "locked") {
		t.Errorf("the approval question: %q", q)
	}
	step(t, desk, "confirm the approval",
		chromedp.Click(css(".month-actions .confirm-yes")),
		waitJS(`document.querySelector('.page-head')?.textContent.includes('已批准 Approved') && !document.querySelector('.month-actions button.primary')`),
	)
	special(desk, "leader")
	trail := text(t, desk, "ol.events")
	for _, who := range []string{"王芳 Wang Fang", "李强 Li Qiang", "赵总 Zhao Wei"} {
		if !strings.Contains(trail, who) {
			t.Errorf("the month's trail does not name %q:\n%s", who, trail)
		}
	}
	read(t, desk, "scroll up", chromedp.Evaluate[bool](`window.scrollTo(0, 0), document.getElementById('flash').replaceChildren(), true`))
	screenshot(t, desk, "console-walk-month.png")

	// The month report PDF, as the leader downloads it, names the service and its paper origin.
	leader := env.login("leader", DemoPassword)
	pdf := squash(pdfText(t, env.must(env.do("GET", "/api/v1/months/"+month+"/report.pdf?lang=zh", leader, nil), 200).Raw))
	for _, want := range []string{number, "纸质反馈单", "张伟"} {
		if !strings.Contains(pdf, want) {
			t.Errorf("the month PDF does not show %q:\n%s", want, pdf)
		}
	}
}
