package server

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The coordinator finds a handed-in paper form's ticket by its number (what the QR code
// carries), uploads the scan, types the sheet in and ticks signature and stamp; the sheet is
// sealed as paper and the ticket moves on. Then the ticket list finds it by phone and serial.
func TestConsolePaperSheetAndFilters(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	coord := env.login("coord", DemoPassword)
	var tech1 string
	for _, u := range env.must(env.do("GET", "/api/v1/users", coord, nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "tech1" {
			tech1 = str(m, "id")
		}
	}
	cust := str(env.must(env.do("POST", "/api/v1/customers", coord, map[string]any{"name": "宁波纸质测试厂", "phone": "0574-6666 5555"}), 201).Body, "id")
	asset := str(env.must(env.do("POST", "/api/v1/assets", coord, map[string]any{"customer_id": cust, "model": "PLC-7", "serial": "NB-PAPER-0077"}), 201).Body, "id")
	tk := env.must(env.do("POST", "/api/v1/tickets", coord, map[string]any{"customer_id": cust, "asset_id": asset, "fault_symptoms": "面板黑屏",
		"service_mode": "phone", "urgency": "high"}), 201).Body
	id, number := str(tk, "id"), str(tk, "number")
	for _, s := range []struct {
		action string
		body   any
	}{{"dispatch", map[string]any{"technician_id": tech1}}, {"accept", nil}, {"start", nil}, {"complete", map[string]any{"service_mode": "phone"}}} {
		env.must(env.do("POST", "/api/v1/tickets/"+id+"/actions/"+s.action, coord, s.body), 200)
	}
	scan := filepath.Join(t.TempDir(), "scan.png")
	if err := os.WriteFile(scan, testPNG(5), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	logIn(t, ctx, base, "coord")
	step(t, ctx, "an unknown form number",
		chromedp.SendKeys(css("#lookup-form input[name=code]"), "SR-000000-0000"),
		chromedp.Click(css("#lookup-form button[type=submit]")),
		chromedp.WaitVisible(css("#lookup-form .error")),
	)
	if e := text(t, ctx, "#lookup-form .error"); !strings.Contains(e, "no ticket numbered") || !strings.Contains(e, "没有工单号") {
		t.Errorf("the lookup's error: %q", e)
	}
	step(t, ctx, "find the ticket by the form's number",
		waitJS(`(document.querySelector('#lookup-form input[name=code]').value = '', true)`),
		chromedp.SendKeys(css("#lookup-form input[name=code]"), number),
		chromedp.Click(css("#lookup-form button[type=submit]")),
		chromedp.WaitVisible(css("#paper-form")),
	)
	step(t, ctx, "type in the paper sheet",
		chromedp.SetUploadFiles(css("#paper-form input[name=scan_blobs]"), []string{scan}),
		chromedp.Click(css("#paper-form input[name=signature_present]")),
		chromedp.Click(css("#paper-form input[name=stamp_present]")),
		chromedp.Click(css("#paper-form input[name=technician_signature_present]")),
		chromedp.SendKeys(css("#paper-form input[name=signer_name]"), "钱立"),
		chromedp.SetValue(css("#paper-form select[name=rating]"), "5"),
		chromedp.SendKeys(css("#paper-form textarea[name=inspection_record]"), "电源板电容鼓包"),
		chromedp.SendKeys(css("#paper-form textarea[name=handling_result]"), "电话指导更换电源板，已恢复"),
	)
	read(t, ctx, "scroll to the form", chromedp.Evaluate[bool](`document.getElementById('paper-entry').scrollIntoView(), true`))
	screenshot(t, ctx, "console-paper.png")
	step(t, ctx, "enter and seal",
		chromedp.Click(css("#paper-form button[type=submit]")),
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已收反馈单') && !!document.querySelector('.sheet .badge.paper')`),
	)
	if sh := text(t, ctx, ".sheet"); !strings.Contains(sh, "纸质反馈单，由 王芳 Wang Fang 录入") || !strings.Contains(sh, "完整 Complete") || !strings.Contains(sh, "第 1 页 Page 1") {
		t.Errorf("the entered sheet shows:\n%s", sh)
	}
	if n := read(t, ctx, "paper form gone", chromedp.Evaluate[int](`document.querySelectorAll('#paper-form').length`)); n != 0 {
		t.Error("the paper form is still offered on a ticket with a sealed sheet")
	}
	sheets := env.must(env.do("GET", "/api/v1/sheets?ticket_id="+id, coord, nil), 200).Body["items"].([]any)
	if len(sheets) != 1 || sheets[0].(map[string]any)["origin"] != "paper" || sheets[0].(map[string]any)["signer_name"] != "钱立" {
		t.Fatalf("sheets of the ticket: %v", sheets)
	}

	// The month page names the service as counted from paper, recorded for the technician.
	step(t, ctx, "month",
		chromedp.Navigate(base+"/console/#/months"),
		chromedp.WaitVisible(css(".month-actions button")),
		chromedp.Click(css(".month-actions button")),
		chromedp.WaitVisible(css(".month-actions .confirm")),
		chromedp.Click(css(".month-actions .confirm-yes")),
		chromedp.WaitVisible(css("#month-special")),
	)
	if m := text(t, ctx, "#month-special"); !strings.Contains(m, number) || !strings.Contains(m, "纸质反馈单 Paper sheet") || !strings.Contains(m, "王芳 Wang Fang") ||
		!strings.Contains(m, "代技术员记录") {
		t.Errorf("the month page's special services:\n%s", m)
	}

	// The list finds the ticket by the customer's phone as said on the phone, and by serial.
	for _, f := range []struct{ name, value string }{{"phone", "66665555"}, {"serial", "paper-0077"}} {
		step(t, ctx, "filter by "+f.name,
			chromedp.Navigate(base+"/console/#/tickets"),
			// The unfiltered list is drawn anew (the previous filter's form, still on screen
			// for a moment, would swallow the typing).
			waitJS(`location.hash === '#/tickets' && document.querySelector('form.filters input[name=phone]')?.value === '' &&
				document.querySelectorAll('table.tickets tbody tr').length > 1`),
			chromedp.SendKeys(css("form.filters input[name="+f.name+"]"), f.value),
			waitJS(`document.querySelector('form.filters input[name=`+f.name+`]')?.value === '`+f.value+`'`),
			chromedp.Click(css("form.filters button[type=submit]")),
			waitJS(`location.hash.includes('`+f.name+`=') && document.querySelectorAll('table.tickets tbody tr').length === 1 &&
				document.querySelector('table.tickets tbody').textContent.includes('`+number+`')`),
		)
	}
	step(t, ctx, "sort by urgency",
		chromedp.Navigate(base+"/console/#/tickets?sort=urgency"),
		waitJS(`location.hash.includes('sort=urgency') && document.querySelector('form.filters select[name=sort]').value === 'urgency'
			&& document.querySelectorAll('table.tickets tbody tr').length > 1`),
	)
	first := read(t, ctx, "first row", chromedp.Evaluate[string](`document.querySelector('table.tickets tbody tr').textContent`))
	if !strings.Contains(first, "特急 Critical") {
		t.Errorf("sorted by urgency, the first row is %q", first)
	}
}

// Two people edit one ticket: the second save is refused, and the console shows the other
// person's value beside the user's and lets the user choose.
func TestConsoleTicketEditConflict(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	coord, mgr := env.login("coord", DemoPassword), env.login("manager", DemoPassword)
	tk := demoTicket(t, env, "控制柜报警灯常亮")
	id := tk.Str("id")

	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "open the edit form",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Navigate(base+"/console/#/tickets/"+id),
		chromedp.WaitVisible(css("#ticket-edit summary")),
		chromedp.Click(css("#ticket-edit summary")),
		chromedp.WaitVisible(css("#edit-form")),
		chromedp.SetValue(css("#edit-form input[name=contact_phone]"), "138-0000-1111"),
		chromedp.SetValue(css("#edit-form textarea[name=agreed_handling]"), "明早九点上门"),
	)
	// Meanwhile the manager changes the phone and the urgency.
	cur := env.must(env.do("GET", "/api/v1/tickets/"+id, coord, nil), 200).Body
	env.must(env.do("PATCH", "/api/v1/tickets/"+id, mgr, map[string]any{"contact_phone": "139-2222-3333", "urgency": "critical"},
		"If-Match", strconv.Itoa(int(cur["version"].(float64)))), 200)

	step(t, ctx, "save: refused, the conflict shown",
		chromedp.Click(css("#edit-form button[type=submit]")),
		chromedp.WaitVisible(css("#edit-conflict table")),
	)
	c := text(t, ctx, "#edit-conflict")
	for _, want := range []string{"他人已修改此工单", "139-2222-3333", "138-0000-1111", "联系电话 Phone", "特急 Critical"} {
		if !strings.Contains(c, want) {
			t.Errorf("the conflict does not show %q:\n%s", want, c)
		}
	}
	if got := str(env.must(env.do("GET", "/api/v1/tickets/"+id, coord, nil), 200).Body, "agreed_handling"); got == "明早九点上门" {
		t.Fatal("the refused edit was written")
	}
	read(t, ctx, "scroll to the conflict", chromedp.Evaluate[bool](`document.getElementById('edit-conflict').scrollIntoView(), true`))
	screenshot(t, ctx, "console-conflict.png")
	step(t, ctx, "keep mine for the phone",
		chromedp.Click(css(`#edit-conflict input[name="pick-contact_phone"][value=mine]`)),
		chromedp.Click(css("#conflict-save")),
		waitJS(`!document.querySelector('#edit-conflict:not([hidden])') && document.querySelector('dl.fields')?.textContent.includes('138-0000-1111')`),
	)
	final := env.must(env.do("GET", "/api/v1/tickets/"+id, coord, nil), 200).Body
	if final["contact_phone"] != "138-0000-1111" || final["agreed_handling"] != "明早九点上门" || final["urgency"] != "critical" {
		t.Errorf("after choosing: phone %v, handling %v, urgency %v", final["contact_phone"], final["agreed_handling"], final["urgency"])
	}
}
