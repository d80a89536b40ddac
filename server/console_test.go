package server

import (
	"context"
	"fieldsync/internal/testpg"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestConsoleRoutes(t *testing.T) {
	env := newEnv(t, true)
	if r := env.do("GET", "/", "", nil); r.Status != 302 || r.Header["Location"] != "/console/" {
		t.Errorf("GET /: %d to %q", r.Status, r.Header["Location"])
	}
	if r := env.do("GET", "/console", "", nil); r.Status != 301 || r.Header["Location"] != "/console/" {
		t.Errorf("GET /console: %d to %q", r.Status, r.Header["Location"])
	}
	r := env.must(env.do("GET", "/console/", "", nil), 200)
	if !strings.HasPrefix(r.Header["Content-Type"], "text/html; charset=utf-8") || !strings.Contains(string(r.Raw), `<meta charset="utf-8">`) ||
		!strings.Contains(string(r.Raw), "售后服务") {
		t.Errorf("index: %s\n%s", r.Header["Content-Type"], r.Raw)
	}
	if r.Header["Content-Security-Policy"] == "" {
		t.Error("the console is served without a Content-Security-Policy")
	}
	js := env.must(env.do("GET", "/console/app.js", "", nil), 200)
	if !strings.HasPrefix(js.Header["Content-Type"], "text/javascript") {
		t.Errorf("app.js served as %q", js.Header["Content-Type"])
	}
	if r := env.do("GET", "/console/app.js", "", nil, "If-None-Match", js.Header["Etag"]); r.Status != 304 {
		t.Errorf("conditional GET: %d", r.Status)
	}
	if r := env.do("GET", "/console/nope.js", "", nil); r.Status != 404 || r.errCode() != "not_found" {
		t.Errorf("missing file: %d %s", r.Status, r.Raw)
	}
	meta := env.must(env.do("GET", "/console/meta.json", "", nil), 200).Body
	if steps, _ := meta["steps"].([]any); len(steps) == 0 {
		t.Errorf("meta.json has no workflow steps: %s", r.Raw)
	}
	demo := env.must(env.do("GET", "/api/v1/demo", "", nil), 200).Body
	if demo["demo"] != true || demo["password"] != DemoPassword || len(demo["users"].([]any)) != len(DemoUsers) {
		t.Errorf("demo info: %v", demo)
	}

	plain := newEnv(t, false)
	if r := plain.do("GET", "/api/v1/demo", "", nil); r.Status != 404 {
		t.Errorf("a server without --demo answers /api/v1/demo with %d, want 404 (as documented): %s", r.Status, r.Raw)
	}
	plain.must(plain.do("GET", "/console/", "", nil), 200)
}

// chromium finds the browser the console tests drive; CI installs Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	// Without a CJK font chromium draws Chinese as boxes, and the screenshots show them.
	if out, err := exec.Command("fc-list", ":lang=zh").Output(); err == nil && len(strings.TrimSpace(string(out))) == 0 {
		t.Fatal("no Chinese font for chromium: apt-get install -y fonts-noto-cjk (CI installs it)")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium found on PATH: the console tests need a real browser (apt-get install -y chromium; CI installs it)")
	return ""
}

// browser starts a headless chromium with a fresh profile and returns its context, bounded by
// limit overall.
func browser(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(cancelCtx)
	ctx, cancel := context.WithTimeout(ctx, limit)
	t.Cleanup(cancel)
	// The first action starts the browser and ties it to the context it runs on, so it runs
	// on ctx itself (bounded by limit), not on a shorter-lived child.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// logIn opens the console at base and logs in as username with the demo password, then
// waits for the ticket list every role lands on.
func logIn(t *testing.T, ctx context.Context, base, username string) {
	t.Helper()
	step(t, ctx, "log in as "+username,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("input[name=username]"), username),
		chromedp.SendKeys(chromedp.CSS("input[name=password]"), DemoPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("table.tickets")),
	)
}

// pageText is the page's visible text, for failure messages.
func pageText(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, _ := chromedp.Run(c, chromedp.Text(chromedp.CSS("body")))
	return s
}

// step runs browser actions with their own deadline and names the step when it fails.
func step(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v\npage text:\n%s", name, err, pageText(ctx))
	}
}

// read runs one browser action that returns a value, with its own deadline.
func read[T any](t *testing.T, ctx context.Context, name string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v\npage text:\n%s", name, err, pageText(ctx))
	}
	return v
}

// text reads the visible text of the first element matching a CSS selector.
func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	return read(t, ctx, "text of "+css, chromedp.Text(chromedp.CSS(css)))
}

// waitJS waits until a JavaScript expression is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))
}

// consoleImages: `go test ./server -run Console -images` refreshes the screenshots in
// docs/images; a plain test run only checks that they can be taken.
var consoleImages = flag.Bool("images", false, "write console screenshots to docs/images")

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := read(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if len(png) < 1000 {
		t.Fatalf("screenshot %s is only %d bytes", name, len(png))
	}
	if !*consoleImages {
		return
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "images", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// demoLater is a demo server whose clock runs ahead by skew after seeding, so the demo's
// critical and high tickets have missed their response deadlines and show as overdue.
func demoLater(t *testing.T, skew time.Duration) *testEnv {
	t.Helper()
	dir := t.TempDir()
	var seeded atomic.Bool
	now := func() time.Time {
		if seeded.Load() {
			return time.Now().Add(skew)
		}
		return time.Now()
	}
	srv, err := New(context.Background(), Config{DataDir: dir, DB: testpg.For(t, dir), Demo: true, Now: now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	seeded.Store(true)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &testEnv{t: t, srv: srv, dir: dir}
}

func TestConsoleInBrowser(t *testing.T) {
	env := demoLater(t, 2*time.Hour)
	base := env.start()
	var tech1 string
	for _, u := range env.must(env.do("GET", "/api/v1/users", env.login("admin", DemoPassword), nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "tech1" {
			tech1 = str(m, "id")
		}
	}
	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// A wrong password: the API's message shows on the login page, which hints the demo logins.
	step(t, ctx, "wrong password",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.WaitVisible(css("#demo-title")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), "not-the-password"),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("#login-form .error")),
	)
	if got := text(t, ctx, "#login-form .error"); !strings.Contains(got, "wrong username or password") {
		t.Errorf("login error shown: %q", got)
	}
	if hint := text(t, ctx, ".demo"); !strings.Contains(hint, DemoPassword) || !strings.Contains(hint, "王芳 Wang Fang") {
		t.Errorf("demo hint: %q", hint)
	}
	// The technicians' demo logins are listed with a link to the field app.
	if n := read(t, ctx, "field app links", chromedp.Evaluate[int](`document.querySelectorAll('#demo-technicians a[href="/app/"]').length`)); n != 3 ||
		!strings.Contains(text(t, ctx, "#demo-technicians"), "tech1") {
		t.Errorf("the demo hint lists %d technicians with a link to /app/: %q", n, text(t, ctx, ".demo"))
	}

	// The coordinator picks the demo login from the hint, logs in and sees the demo tickets
	// with the customers' Chinese names.
	step(t, ctx, "log in",
		chromedp.Click(chromedp.Search(`//aside[contains(@class, 'demo')]//button[code[text()='coord']]`)),
		waitJS(`document.querySelector('input[name=password]').value !== 'not-the-password'`),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
	)
	list := text(t, ctx, "main")
	for _, want := range []string{"华东精密仪器有限公司", "苏州“天工”自动化股份公司", "杭州西溪数据中心", "控制柜报警灯常亮", "张伟 Zhang Wei", "已登记"} {
		if !strings.Contains(list, want) {
			t.Errorf("the ticket list does not show %q:\n%s", want, list)
		}
	}
	if who := text(t, ctx, "#who"); !strings.Contains(who, "王芳 Wang Fang") {
		t.Errorf("the header does not name the coordinator: %q", who)
	}
	overdue := read(t, ctx, "overdue rows", chromedp.Evaluate[int](`document.querySelectorAll('tr.overdue').length`))
	if overdue == 0 || !strings.Contains(list, "超时 Overdue") {
		t.Errorf("no overdue ticket stands out (%d rows marked)", overdue)
	}
	screenshot(t, ctx, "console-tickets.png")

	// Search narrows the list.
	step(t, ctx, "search",
		chromedp.SendKeys(css("input[name=q]"), "天工"),
		chromedp.Click(css("form.filters button[type=submit]")),
		waitJS(`location.hash.includes('q=') && document.querySelectorAll('table.tickets tbody tr').length > 0 &&
			[...document.querySelectorAll('table.tickets tbody tr')].every(r => r.textContent.includes('天工'))`),
	)

	// Open the registered ticket waiting for dispatch and dispatch it to 张伟.
	step(t, ctx, "open ticket",
		chromedp.Navigate(base+"/console/#/tickets"),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Click(chromedp.Search(`//tr[td[contains(., '控制柜报警灯常亮')]]//a`)),
		chromedp.WaitVisible(css(`form[data-action="dispatch"]`)),
	)
	if head := text(t, ctx, ".page-head"); !strings.Contains(head, "已登记 Registered") || !strings.Contains(head, "华东精密仪器有限公司") {
		t.Errorf("ticket header: %q", head)
	}
	step(t, ctx, "dispatch",
		chromedp.SetValue(css(`form[data-action="dispatch"] select[name=technician_id]`), tech1),
		chromedp.Click(css(`form[data-action="dispatch"] button[type=submit]`)),
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已派工 Dispatched')`),
		chromedp.WaitVisible(css(".events")),
	)
	events := text(t, ctx, ".events")
	if !strings.Contains(events, "派工 Dispatch") || !strings.Contains(events, "→ 张伟 Zhang Wei") || !strings.Contains(events, "王芳 Wang Fang") ||
		!strings.Contains(events, "网页 Web") {
		t.Errorf("the history does not show the dispatch by whom, to whom, from where:\n%s", events)
	}
	// The history begins with the registration (its source) and takes in every complaint, newest first.
	if reg, disp := strings.Index(events, "登记 Registered"), strings.Index(events, "派工 Dispatch"); reg < 0 || reg < disp ||
		!strings.Contains(events[reg:], "服务热线 Hotline") {
		t.Errorf("the history does not end with the registration from the hotline:\n%s", events)
	}
	step(t, ctx, "complaint",
		chromedp.SendKeys(css(`form[data-form=complaint] textarea[name=description]`), "到场太晚 came late"),
		chromedp.Click(css(`form[data-form=complaint] button[type=submit]`)),
		waitJS(`document.querySelector('.events')?.textContent.includes('到场太晚 came late')`),
	)
	if events := text(t, ctx, ".events"); !strings.HasPrefix(strings.TrimSpace(events), "投诉 Complaint") || !strings.Contains(events, "登记 Registered") {
		t.Errorf("the new complaint is not the newest entry of the history:\n%s", events)
	}
	if a := read(t, ctx, "assignee", chromedp.Text(chromedp.Search(`//dt[contains(., '技术员')]/following-sibling::dd[1]`))); !strings.Contains(a, "张伟 Zhang Wei") {
		t.Errorf("assignee shown: %q", a)
	}
	screenshot(t, ctx, "console-ticket.png")
}

func TestConsoleSheetsIntakeAndMonth(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	logIn(t, ctx, base, "coord")

	// The completed demo ticket has a signed sheet without the customer's stamp.
	step(t, ctx, "completed ticket",
		chromedp.Navigate(base+"/console/#/tickets?status=completed"),
		waitJS(`location.hash.includes('completed') && document.querySelectorAll('table.tickets tbody tr').length === 1`),
		chromedp.Click(css("table.tickets tbody a")),
		chromedp.WaitVisible(css(".sheet")),
	)
	sheet := text(t, ctx, ".sheet")
	for _, want := range []string{"不完整 Incomplete：缺 missing 客户盖章", "孙丽", "反馈单 PDF", "公开验证页"} {
		if !strings.Contains(sheet, want) {
			t.Errorf("the sheet does not show %q:\n%s", want, sheet)
		}
	}
	if strings.Contains(sheet, "stamp_blob") {
		t.Errorf("the sheet names an item by its field name:\n%s", sheet)
	}
	// Accepting the exception is the manager's decision: the coordinator is not offered it.
	if n := read(t, ctx, "exception form", chromedp.Evaluate[int](`document.querySelectorAll('form[data-sheet-action="accept_exception"]').length`)); n != 0 {
		t.Error("the coordinator is offered to accept an incomplete sheet")
	}
	step(t, ctx, "receive the sheet",
		chromedp.Click(css(`form[data-sheet-action="receive"] button`)),
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已收反馈单')`),
	)

	// Intake: the equipment found by serial shows its warranty at once.
	step(t, ctx, "intake",
		chromedp.Navigate(base+"/console/#/intake"),
		chromedp.WaitVisible(css("#serial-q")),
		chromedp.SendKeys(css("#serial-q"), "TG-2021-0420"),
		chromedp.Click(chromedp.Search(`//button[contains(., '查找')]`)),
		waitJS(`document.querySelector('.serial-out')?.textContent.includes('已过保 Out of warranty') &&
			document.querySelector('.chosen')?.textContent.includes('苏州“天工”自动化股份公司')`),
		chromedp.SendKeys(css("textarea[name=fault_symptoms]"), "伺服驱动器过热 / servo drive overheats"),
		chromedp.SetValue(css("select[name=urgency]"), "high"),
		chromedp.SetValue(css("select[name=service_mode]"), "onsite"),
		chromedp.Click(css("input[name=chargeable]")),
	)
	read(t, ctx, "scroll up", chromedp.Evaluate[bool](`window.scrollTo(0, 0), document.getElementById('flash').replaceChildren(), true`))
	screenshot(t, ctx, "console-intake.png")
	step(t, ctx, "register",
		chromedp.Click(css("#intake-form button[type=submit]")),
		waitJS(`location.hash.startsWith('#/tickets/') && document.querySelector('.head-badges')?.textContent.includes('已登记')`),
	)
	if log := text(t, ctx, "dl.fields"); !strings.Contains(log, "伺服驱动器过热") || !strings.Contains(log, "已过保 Out of warranty") ||
		!strings.Contains(log, "收费 Chargeable") || !strings.Contains(log, "周明") {
		t.Errorf("the registered ticket shows:\n%s", log)
	}

	// Month-end: the coordinator compiles this month and sees the table per technician.
	step(t, ctx, "month",
		chromedp.Navigate(base+"/console/#/months"),
		chromedp.WaitVisible(css(".month-actions button")),
		chromedp.Click(css(".month-actions button")),
		chromedp.WaitVisible(css(".month-actions .confirm")), // the month is not over: asked first
		chromedp.Click(css(".month-actions .confirm-yes")),
		chromedp.WaitVisible(css("table.month")),
	)
	if m := text(t, ctx, "main"); !strings.Contains(m, "张伟 Zhang Wei") || !strings.Contains(m, "草稿 Draft") {
		t.Errorf("the month page shows:\n%s", m)
	}
	screenshot(t, ctx, "console-month.png")
}

// The alerts page: the admin sees every event and channel, chooses, saves, and sees the
// deliveries that failed with the remote's answer.
func TestConsoleAlertsPage(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(403)
		io.WriteString(rw, "signature mismatch")
	}))
	defer hook.Close()
	env := newEnv(t, true)
	base := env.start()
	admin := env.login("admin", DemoPassword)
	env.must(env.do("PUT", "/api/v1/settings", admin, map[string]any{"alert_webhook_url": hook.URL, "alert_webhook_secret": "s"}), 200)
	env.must(env.do("PUT", "/api/v1/me/alerts", admin, map[string]any{"events": map[string]any{"escalated": []string{"webhook"}}}), 200)
	// An escalation raises an alert the webhook refuses.
	tickets := env.must(env.do("GET", "/api/v1/tickets?status=registered", admin, nil), 200).Body["items"].([]any)
	env.must(env.do("POST", "/api/v1/tickets/"+str(tickets[0].(map[string]any), "id")+"/actions/escalate", admin, map[string]any{}), 200)
	if _, _, err := env.srv.sender.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}

	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "log in",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "admin"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Navigate(base+"/console/#/alerts"),
		chromedp.WaitVisible(css("#alerts-form")),
		chromedp.WaitVisible(css("#alerts-failed")),
	)
	page := text(t, ctx, "main")
	for _, want := range []string{"超过时限 Deadline missed", "企业微信 WeCom", "钉钉 DingTalk", "短信 SMS", "HTTP 403: signature mismatch", "已升级"} {
		if !strings.Contains(page, want) {
			t.Errorf("the alerts page does not show %q:\n%s", want, page)
		}
	}
	step(t, ctx, "choose and save",
		chromedp.Click(css(`input[name="deadline_missed:sms"]`)),
		chromedp.SetValue(css(`select[name=lang]`), "en"),
		chromedp.Click(css("#alerts-form button[type=submit]")),
		waitJS(`document.getElementById('flash').textContent.includes('Saved')`),
	)
	p := env.must(env.do("GET", "/api/v1/me/alerts", admin, nil), 200).Body
	ev := p["events"].(map[string]any)
	if p["lang"] != "en" || fmt.Sprint(ev["deadline_missed"]) != "[sms]" || fmt.Sprint(ev["escalated"]) != "[webhook]" {
		t.Errorf("saved preferences %v", p)
	}
	screenshot(t, ctx, "console-alerts.png")
}

// The first admin logs in to the console with the password printed at first start, is
// led to the change-password form, cannot keep a common password, and once changed reaches
// the console with the new one.
func TestConsoleFirstLoginChangesPassword(t *testing.T) {
	var printed string
	dir := t.TempDir()
	srv, err := New(context.Background(), Config{DataDir: dir, DB: testpg.For(t, dir), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Out: func(s string) { printed += s }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	env := &testEnv{t: t, srv: srv, dir: dir}
	base := env.start()
	_, first, _ := strings.Cut(printed, "password ")
	first, _, _ = strings.Cut(first, " ")
	ctx := browser(t, time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "log in with the printed password",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "admin"),
		chromedp.SendKeys(css("input[name=password]"), first),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("#password-form")),
	)
	step(t, ctx, "a common password is refused",
		chromedp.SendKeys(css("input[name=new_password]"), "12345678"),
		chromedp.SendKeys(css("input[name=new_password_again]"), "12345678"),
		chromedp.Click(css("#password-form button[type=submit]")),
		chromedp.WaitVisible(css("#password-form .error")),
	)
	if got := text(t, ctx, "#password-form .error"); !strings.Contains(got, "commonest passwords") {
		t.Errorf("error shown for a common password: %q", got)
	}
	step(t, ctx, "a good password is taken and the console opens",
		waitJS(`(document.querySelector('input[name=new_password]').value = document.querySelector('input[name=new_password_again]').value = '') === ''`),
		chromedp.SendKeys(css("input[name=new_password]"), "Cang-Shan-Er-Hai-7"),
		chromedp.SendKeys(css("input[name=new_password_again]"), "Cang-Shan-Er-Hai-7"),
		chromedp.Click(css("#password-form button[type=submit]")),
		chromedp.WaitVisible(css("#who")),
		waitJS(`!document.querySelector('#password-form')`),
	)
	if who := text(t, ctx, "#who"); !strings.Contains(who, "Administrator") {
		t.Errorf("header after the change: %q", who)
	}
	env.login("admin", "Cang-Shan-Er-Hai-7")
	if r := env.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": first}); r.Status != 401 {
		t.Errorf("the printed password still logs in: %d", r.Status)
	}
}

func TestConsoleCustomersAndImport(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	ctx := browser(t, 3*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	logIn(t, ctx, base, "coord")

	// A hotline call from a new customer: customer, site and equipment are created without
	// leaving intake, and the request is registered against them.
	step(t, ctx, "new customer during intake",
		chromedp.Navigate(base+"/console/#/intake"),
		chromedp.WaitVisible(css("#new-customer-open")),
		chromedp.Click(css("#new-customer-open")),
		chromedp.WaitVisible(css("#new-customer-form")),
		chromedp.SendKeys(css("#new-customer-form input[name=name]"), "宁波海曙新材料有限公司"),
		chromedp.SendKeys(css("#new-customer-form input[name=phone]"), "0574-88886666"),
		chromedp.SendKeys(css("#new-customer-form input[name=site_name]"), "二号厂房"),
		chromedp.SendKeys(css("#new-customer-form input[name=model]"), "S7-1500"),
		chromedp.SendKeys(css("#new-customer-form input[name=serial]"), "NB-2026-0001"),
		chromedp.SetValue(css("#new-customer-form input[name=warranty_until]"), "2030-06-30"),
		chromedp.Click(css("#new-customer-form button[type=submit]")),
		waitJS(`document.querySelector('.chosen')?.textContent.includes('宁波海曙新材料有限公司') &&
			document.querySelector('select[name=asset_id]').selectedOptions[0]?.textContent.includes('NB-2026-0001') &&
			document.querySelector('select[name=site_id]').selectedOptions[0]?.textContent.includes('二号厂房') &&
			document.getElementById('new-customer-form').hidden`),
		chromedp.SendKeys(css("textarea[name=fault_symptoms]"), "PLC 通讯中断 / PLC link down"),
		chromedp.SetValue(css("select[name=service_mode]"), "phone"),
		chromedp.Click(css("#intake-form button[type=submit]")),
		waitJS(`location.hash.startsWith('#/tickets/') && document.querySelector('.page-head')?.textContent.includes('宁波海曙新材料有限公司')`),
	)
	if log := text(t, ctx, "dl.fields"); !strings.Contains(log, "NB-2026-0001") && !strings.Contains(log, "S7-1500") {
		t.Errorf("the ticket does not show the new equipment:\n%s", log)
	}

	// The customer list finds the customer; its page edits it and adds equipment.
	step(t, ctx, "customer list",
		chromedp.Navigate(base+"/console/#/customers"),
		chromedp.WaitVisible(css("table.customers")),
		chromedp.SendKeys(css("form.filters input[name=q]"), "宁波"),
		chromedp.Click(css("form.filters button[type=submit]")),
		waitJS(`document.querySelectorAll('table.customers tbody tr').length === 1`),
		chromedp.Click(css("table.customers tbody a")),
		chromedp.WaitVisible(css("#customer-edit")),
		chromedp.SetValue(css("#customer-edit input[name=code]"), "NB001"),
		chromedp.Click(css("#customer-edit button[type=submit]")),
		waitJS(`document.querySelector('.page-head')?.textContent.includes('NB001')`),
		chromedp.Click(css("#asset-new")),
		chromedp.WaitVisible(css("#asset-form")),
		chromedp.SendKeys(css("#asset-form input[name=model]"), "G120"),
		chromedp.SendKeys(css("#asset-form input[name=serial]"), "NB-2026-0002"),
		chromedp.SetValue(css("#asset-form input[name=warranty_until]"), "2020-01-31"),
		chromedp.Click(css("#asset-form input[name=manufacturer_onsite]")),
		chromedp.Click(css("#asset-form button[type=submit]")),
		waitJS(`document.querySelector('table.assets')?.textContent.includes('NB-2026-0002')`),
	)
	assets := text(t, ctx, "table.assets")
	if !strings.Contains(assets, "已过保 Out of warranty") || !strings.Contains(assets, "保修期内 In warranty") || !strings.Contains(assets, "厂家上门") {
		t.Errorf("the equipment table shows:\n%s", assets)
	}
	read(t, ctx, "scroll up", chromedp.Evaluate[bool](`window.scrollTo(0, 0), document.getElementById('flash').replaceChildren(), true`))
	screenshot(t, ctx, "console-customer.png")

	// A serial already taken is refused with the reason, on the form.
	step(t, ctx, "duplicate serial",
		chromedp.Click(css("#asset-new")),
		chromedp.WaitVisible(css("#asset-form")),
		chromedp.SendKeys(css("#asset-form input[name=model]"), "G120"),
		chromedp.SendKeys(css("#asset-form input[name=serial]"), "NB-2026-0002"),
		chromedp.Click(css("#asset-form button[type=submit]")),
		chromedp.WaitVisible(css("#asset-form .error")),
	)
	if e := text(t, ctx, "#asset-form .error"); !strings.Contains(e, "NB-2026-0002") || !strings.Contains(e, "taken") {
		t.Errorf("duplicate serial error: %q", e)
	}

	// Import: a file with a bad row is previewed with the row named and cannot be imported;
	// the fixed file imports.
	dir := t.TempDir()
	bad, good := filepath.Join(dir, "bad.csv"), filepath.Join(dir, "good.csv")
	csvText := customersCSV(50)
	os.WriteFile(bad, []byte(strings.Replace(csvText, "K0020,客户 20 有限公司,", "K0020,,", 1)), 0o644)
	os.WriteFile(good, []byte(csvText), 0o644)
	step(t, ctx, "import preview with a bad row",
		chromedp.Navigate(base+"/console/#/import"),
		chromedp.WaitVisible(css("#import-form")),
		chromedp.SetUploadFiles(css("#import-form input[type=file]"), []string{bad}),
		chromedp.Click(css("#import-form button[type=submit]")),
		chromedp.WaitVisible(css("table.import-errors")),
	)
	if e := text(t, ctx, "table.import-errors"); !strings.Contains(e, "22") || !strings.Contains(e, "name is missing") {
		t.Errorf("the bad row is not named:\n%s", e)
	}
	if dis := read(t, ctx, "import button", chromedp.Evaluate[bool](`document.getElementById('import-commit').disabled`)); !dis {
		t.Error("a file with errors can be imported")
	}
	read(t, ctx, "clear flash", chromedp.Evaluate[bool](`document.getElementById('flash').replaceChildren(), true`))
	screenshot(t, ctx, "console-import.png")
	step(t, ctx, "import the fixed file",
		chromedp.SetUploadFiles(css("#import-form input[type=file]"), []string{good}),
		chromedp.Click(css("#import-form button[type=submit]")),
		waitJS(`document.querySelector('#import-report .counts')?.textContent.includes('create 50') && !document.getElementById('import-commit').disabled`),
		chromedp.Click(css("#import-commit")),
		waitJS(`document.querySelector('#import-report h2')?.textContent.includes('已导入')`),
	)
	tok := env.login("coord", DemoPassword)
	if r := env.must(env.do("GET", "/api/v1/customers?q=K00", tok, nil), 200).Body; r["total"] != float64(50) {
		t.Errorf("%v customers with code K00.. after the import", r["total"])
	}
}

func TestConsolePeople(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	mtok := env.login("manager", DemoPassword)
	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "log in as admin",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "admin"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.WaitVisible(css("[data-nav=users]")),
		chromedp.Click(css("[data-nav=users]")),
		chromedp.WaitVisible(css("#user-new")),
	)
	// A new technician on probation; then the manager is disabled: their open session ends.
	step(t, ctx, "add a user",
		chromedp.SendKeys(css("#user-new input[name=username]"), "tech9"),
		chromedp.SendKeys(css("#user-new input[name=name]"), "赵六 Zhao Liu"),
		chromedp.SendKeys(css("#user-new input[name=password]"), "initial-pass-9"),
		chromedp.Click(css("#user-new input[name=probation]")),
		chromedp.Click(css("#user-new button[type=submit]")),
		chromedp.WaitVisible(css(`form[data-user="tech9"]`)),
		chromedp.Click(css(`form[data-user="manager"] .toggle-active`)),
		waitJS(`document.querySelector('form[data-user="manager"]')?.textContent.includes('已停用')`),
	)
	if r := env.do("GET", "/api/v1/me", mtok, nil); r.Status != 401 {
		t.Errorf("the disabled manager's session still works: %d", r.Status)
	}
	if p := text(t, ctx, `form[data-user="tech9"] .employment`); !strings.Contains(p, "试用期 Probation") {
		t.Error("the new technician is not shown on probation")
	}
	step(t, ctx, "reset a password",
		chromedp.SendKeys(css(`form[data-user="tech9"] input[name=new_password]`), "second-pass-9"),
		chromedp.Click(css(`form[data-user="tech9"] .reset-password`)),
		waitJS(`document.getElementById('flash').textContent.includes('password reset')`),
	)
	env.login("tech9", "second-pass-9")
	// tech2's probation ends from a date: the history shows both entries.
	step(t, ctx, "end a probation",
		chromedp.SetValue(css(`form[data-user="tech2"] input[name=from]`), "2026-12-01"),
		chromedp.Click(css(`form[data-user="tech2"] input[name=e_probation]`)),
		chromedp.Click(css(`form[data-user="tech2"] .record-employment`)),
		waitJS(`document.querySelector('form[data-user="tech2"] .employment')?.textContent.includes('2026-12-01 起 from: 非 not 试用 probation')`),
	)
	if e := text(t, ctx, `form[data-user="tech2"] .employment`); !strings.Contains(e, "起 from: 试用 probation") {
		t.Errorf("tech2's history does not keep the probation before the change: %q", e)
	}
	read(t, ctx, "scroll up", chromedp.Evaluate[bool](`window.scrollTo(0, 0), document.getElementById('flash').replaceChildren(), true`))
	screenshot(t, ctx, "console-people.png")

	// Other roles do not see the menu item.
	step(t, ctx, "coordinator",
		chromedp.Click(css("#logout")),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
	)
	if hidden := read(t, ctx, "menu", chromedp.Evaluate[bool](`document.querySelector('[data-nav=users]').hidden`)); !hidden {
		t.Error("a coordinator sees the People menu")
	}
}

func TestConsoleSettings(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "log in as admin",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "admin"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Click(css("[data-nav=settings]")),
		chromedp.WaitVisible(css("#settings-form")),
	)
	if d := text(t, ctx, `tr[data-key="response_minutes_high"]`); !strings.Contains(d, "response deadline") {
		t.Errorf("the setting has no description: %q", d)
	}
	// A bad value is refused, named, and nothing is saved, not even the good one beside it.
	step(t, ctx, "bad value",
		chromedp.SetValue(css("#set-response_minutes_high"), "45"),
		chromedp.SetValue(css("#set-timezone"), "Mars/Olympus"),
		chromedp.Click(css("#settings-form button[type=submit]")),
		chromedp.WaitVisible(css("#settings-form .error")),
		waitJS(`document.getElementById('set-timezone').getAttribute('aria-invalid') === 'true'`),
	)
	tok := env.login("coord", DemoPassword)
	value := func(key string) any {
		for _, it := range env.must(env.do("GET", "/api/v1/settings", tok, nil), 200).Body["items"].([]any) {
			if m := it.(map[string]any); m["key"] == key {
				return m["value"]
			}
		}
		return nil
	}
	if v := value("response_minutes_high"); v != float64(60) {
		t.Fatalf("a refused value changed the setting to %v", v)
	}
	step(t, ctx, "save",
		chromedp.SetValue(css("#set-timezone"), "Asia/Shanghai"),
		chromedp.Click(css("#settings-form button[type=submit]")),
		waitJS(`[...document.querySelectorAll('table.settings-history tbody tr')].some(r => r.textContent.includes('response_minutes_high') && r.textContent.includes('45') && r.textContent.includes('Admin'))`),
	)
	if v := value("response_minutes_high"); v != float64(45) {
		t.Errorf("the saved setting is %v", v)
	}
	read(t, ctx, "clear flash", chromedp.Evaluate[bool](`document.getElementById('flash').replaceChildren(), true`))
	screenshot(t, ctx, "console-settings.png")

	// A coordinator sees the settings but cannot change them.
	step(t, ctx, "coordinator",
		chromedp.Click(css("#logout")),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Navigate(base+"/console/#/settings"),
		chromedp.WaitVisible(css("#settings-form")),
	)
	if dis := read(t, ctx, "disabled", chromedp.Evaluate[bool](`document.getElementById('set-response_minutes_high').disabled && !document.querySelector('#settings-form button')`)); !dis {
		t.Error("a coordinator can edit settings")
	}
}

// A leader's request is registered as leadership's, and intake asks for the service mode
// instead of assuming an on-site visit (the policy prefers phone and online service).
func TestConsoleLeaderIntake(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "log in as leader",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "leader"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Navigate(base+"/console/#/intake"),
		chromedp.WaitVisible(css("#cust-q")),
		chromedp.SendKeys(css("#cust-q"), "华东"),
		chromedp.WaitVisible(css(".results button")),
		chromedp.Click(css(".results button")),
		waitJS(`document.querySelector('.chosen')?.textContent.includes('华东精密仪器有限公司')`),
		chromedp.SendKeys(css("textarea[name=fault_symptoms]"), "领导指示：巡检一号线 / inspect line 1"),
		chromedp.Click(css("#intake-form button[type=submit]")),
		chromedp.WaitVisible(css("#intake-form .error")),
	)
	if e := text(t, ctx, "#intake-form .error"); !strings.Contains(e, "服务方式") || !strings.Contains(e, "service mode") {
		t.Errorf("registering without a service mode: %q", e)
	}
	step(t, ctx, "register",
		chromedp.SetValue(css("select[name=service_mode]"), "phone"),
		chromedp.Click(css("#intake-form button[type=submit]")),
		waitJS(`location.hash.startsWith('#/tickets/') && !!document.querySelector('dl.fields')`),
	)
	if f := text(t, ctx, "dl.fields"); !strings.Contains(f, "领导指示 Leadership") || strings.Contains(f, "服务热线") || !strings.Contains(f, "电话服务 Phone") {
		t.Errorf("the leader's request is registered as:\n%s", f)
	}
}

// Cancelling a ticket asks first; going back changes nothing.
func TestConsoleAsksBeforeCancelling(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	tok := env.login("coord", DemoPassword)
	tk := demoTicket(t, env, "控制柜报警灯常亮")
	status := func() string {
		return str(env.must(env.do("GET", "/api/v1/tickets/"+tk.Str("id"), tok, nil), 200).Body, "status")
	}
	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "open the ticket",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Navigate(base+"/console/#/tickets/"+tk.Str("id")),
		chromedp.WaitVisible(css(`form[data-action="cancel"]`)),
		chromedp.SendKeys(css(`form[data-action="cancel"] textarea[name=reason]`), "客户已自行解决"),
		chromedp.Click(css(`form[data-action="cancel"] button[type=submit]`)),
		chromedp.WaitVisible(css(`form[data-action="cancel"] .confirm`)),
	)
	if q := text(t, ctx, `form[data-action="cancel"] .confirm`); !strings.Contains(q, "cannot be undone") || !strings.Contains(q, tk.Str("number")) {
		t.Errorf("the question: %q", q)
	}
	if st := status(); st != "registered" {
		t.Fatalf("the ticket is %s before the confirmation", st)
	}
	step(t, ctx, "go back, then confirm",
		chromedp.Click(css(`form[data-action="cancel"] .confirm-no`)),
		waitJS(`!document.querySelector('form[data-action="cancel"] .confirm')`),
		chromedp.Click(css(`form[data-action="cancel"] button[type=submit]`)),
		chromedp.WaitVisible(css(`form[data-action="cancel"] .confirm-yes`)),
		chromedp.Click(css(`form[data-action="cancel"] .confirm-yes`)),
		waitJS(`document.querySelector('.head-badges')?.textContent.includes('已取消')`),
	)
	if st := status(); st != "cancelled" {
		t.Errorf("after the confirmation the ticket is %s", st)
	}
}

// The work queues under the menu count what waits and open the list of it.
func TestConsoleWorkQueues(t *testing.T) {
	env := demoLater(t, 2*time.Hour)
	base := env.start()
	tok := env.login("coord", DemoPassword)
	total := func(q string) int {
		return int(env.must(env.do("GET", "/api/v1/tickets?limit=1&"+q, tok, nil), 200).Body["total"].(float64))
	}
	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "log in",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.WaitVisible(css(`[data-queue=dispatch] .count`)),
	)
	for q, query := range map[string]string{"dispatch": "status=registered,escalated", "overdue": "overdue=true", "sheets": "status=completed", "followup": "status=sheet_received"} {
		want := total(query)
		if got := text(t, ctx, `[data-queue=`+q+`] .count`); got != fmt.Sprint(want) {
			t.Errorf("queue %s shows %s, the list has %d", q, got, want)
		}
	}
	if total("overdue=true") == 0 {
		t.Error("the demo two hours later has no overdue ticket")
	}
	step(t, ctx, "open the dispatch queue",
		chromedp.Click(css(`[data-queue=dispatch]`)),
		waitJS(`location.hash.includes('registered') && document.querySelectorAll('table.tickets tbody tr').length > 0 &&
			[...document.querySelectorAll('table.tickets tbody tr')].every(r => r.textContent.includes('已登记') || r.textContent.includes('已转经理'))`),
	)
	screenshot(t, ctx, "console-queues.png")
}

// TestConsoleContactDetails: an admin changes a user's phone and email on the People page (a
// bad number is refused naming the phone, in Chinese and English, and changes nothing); a
// coordinator changes their own on the Alerts page.
func TestConsoleContactDetails(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	admin := env.login("admin", DemoPassword)
	ctx := browser(t, 2*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	userOf := func(username string) map[string]any {
		for _, it := range env.must(env.do("GET", "/api/v1/users", admin, nil), 200).Body["items"].([]any) {
			if m := it.(map[string]any); m["username"] == username {
				return m
			}
		}
		t.Fatalf("no user %s", username)
		return nil
	}
	before := userOf("tech1")
	step(t, ctx, "log in as admin",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "admin"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Navigate(base+"/console/#/users"),
		chromedp.WaitVisible(css(`form[data-user="tech1"] .save-contact`)),
	)
	step(t, ctx, "a bad phone",
		chromedp.SetValue(css(`form[data-user="tech1"] input[name=phone]`), "call me"),
		chromedp.Click(css(`form[data-user="tech1"] .save-contact`)),
		waitJS(`document.querySelector('form[data-user="tech1"]').textContent.includes('not a phone number')`),
	)
	if msg := text(t, ctx, `form[data-user="tech1"]`); !strings.Contains(msg, "不是有效号码") {
		t.Errorf("the refusal is not in Chinese: %q", msg)
	}
	if got := userOf("tech1"); got["phone"] != before["phone"] || got["version"] != before["version"] {
		t.Errorf("a refused phone changed the user: %v", got)
	}
	step(t, ctx, "a good phone and email",
		chromedp.SetValue(css(`form[data-user="tech1"] input[name=phone]`), "139 0000 0042"),
		chromedp.SetValue(css(`form[data-user="tech1"] input[name=email]`), "zhangwei@example.com"),
		chromedp.Click(css(`form[data-user="tech1"] .save-contact`)),
		waitJS(`document.getElementById('flash').textContent.includes('contact saved')`),
	)
	if got := userOf("tech1"); got["phone"] != "13900000042" || got["email"] != "zhangwei@example.com" {
		t.Errorf("after saving: phone %v email %v", got["phone"], got["email"])
	}

	read(t, ctx, "scroll up", chromedp.Evaluate[bool](`window.scrollTo(0, 0), document.getElementById('flash').replaceChildren(), true`))
	step(t, ctx, "the coordinator's own",
		chromedp.Click(css("#logout")),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Navigate(base+"/console/#/alerts"),
		chromedp.WaitVisible(css("#contact-form")),
		chromedp.SetValue(css(`#contact-form input[name=email]`), "wangfang@example.com"),
		chromedp.Click(css("#contact-form button[type=submit]")),
		waitJS(`document.getElementById('flash').textContent.includes('Contact saved')`),
	)
	if got := userOf("coord"); got["email"] != "wangfang@example.com" {
		t.Errorf("the coordinator's email: %v", got["email"])
	}
}

// TestConsoleMoney: the manager approves a taxi from the approvals queue; commerce sees the
// receivables by ageing bucket, takes a payment typed in yuan (a malformed amount is refused
// in the page, an overpayment by the server with its reason) and answers a repair's warranty
// questions; the manager reimburses the taxi fare.
func TestConsoleMoney(t *testing.T) {
	env := demoLater(t, 0)
	base := env.start()
	admin := env.login("admin", DemoPassword)
	ids := map[string]string{}
	for _, u := range env.must(env.do("GET", "/api/v1/users", admin, nil), 200).Body["items"].([]any) {
		m := u.(map[string]any)
		ids[str(m, "username")] = str(m, "id")
	}
	env.must(env.do("POST", "/api/v1/users", admin, map[string]any{"username": "commerce1", "name": "孙丽 商务部", "role": "commerce", "password": DemoPassword}), 201)
	coord, mgr := env.login("coord", DemoPassword), env.login("manager", DemoPassword)
	asset := env.must(env.do("GET", "/api/v1/assets?limit=1", coord, nil), 200).Body["items"].([]any)[0].(map[string]any)
	cust := str(asset, "customer_id")

	taxi := str(env.must(env.do("POST", "/api/v1/approvals", coord, map[string]any{"kind": "taxi", "technician_id": ids["tech1"], "amount_fen": 5000, "reason": "配件太重 heavy part"}), 201).Body, "id")
	sale := str(env.must(env.do("POST", "/api/v1/sales", coord, map[string]any{"kind": "parts", "technician_id": ids["tech1"], "customer_id": cust,
		"lines": []any{map[string]any{"item": "硬盘 drive", "qty": 1, "price_fen": 10000}}}), 201).Body, "id")
	credit := str(env.must(env.do("POST", "/api/v1/approvals", coord, map[string]any{"kind": "credit", "technician_id": ids["tech1"], "amount_fen": 10000, "sale_id": sale, "reason": "老客户 regular"}), 201).Body, "id")
	env.must(env.do("POST", "/api/v1/approvals/"+credit+"/actions/approve", mgr, map[string]any{}), 200)
	env.must(env.do("POST", "/api/v1/sales/"+sale+"/actions/ship", coord, map[string]any{"credit_approval_id": credit}), 200)
	repair := str(env.must(env.do("POST", "/api/v1/repairs", coord, map[string]any{"asset_id": str(asset, "id"), "technician_id": ids["tech1"], "fault": "电源损坏 power supply failed"}), 201).Body, "id")

	ctx := browser(t, 3*time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	login := func(user string) {
		step(t, ctx, "open the console", chromedp.Navigate(base+"/console/"))
		read(t, ctx, "log out", chromedp.Evaluate[bool](`sessionStorage.clear(), true`))
		step(t, ctx, "log in as "+user,
			chromedp.Navigate(base+"/console/#/login"),
			chromedp.Reload(),
			chromedp.WaitVisible(css("#login-form")),
			chromedp.SendKeys(css("input[name=username]"), user),
			chromedp.SendKeys(css("input[name=password]"), DemoPassword),
			chromedp.Click(css("#login-form button[type=submit]")),
			chromedp.WaitVisible(css("table.tickets")),
		)
	}
	login("manager")
	row := `#money-approvals tr[data-id="` + taxi + `"]`
	step(t, ctx, "the manager's queue",
		chromedp.Navigate(base+"/console/#/money/approvals"),
		chromedp.WaitVisible(css(row+` form[data-action=approve] button`)),
		chromedp.SendKeys(css(row+` form[data-action=approve] input[name=note]`), "同意 agreed"),
		chromedp.Click(css(row+` form[data-action=approve] button`)),
		waitJS(`!document.querySelector('#money-approvals tr[data-id="`+taxi+`"]')`), // left the pending queue
	)
	if a := env.must(env.do("GET", "/api/v1/approvals/"+taxi, mgr, nil), 200).Body; a["status"] != "approved" || a["decision_note"] != "同意 agreed" {
		t.Fatalf("approval after the click: %v", a)
	}
	screenshot(t, ctx, "console-money-approvals.png")

	login("commerce1")
	srow := `#money-sales tr[data-id="` + sale + `"]`
	step(t, ctx, "receivables and a payment",
		chromedp.Navigate(base+"/console/#/money/sales"),
		chromedp.WaitVisible(css(`#receivables tr[data-receivable="`+sale+`"]`)),
		chromedp.SendKeys(css(srow+` form[data-action=pay] input[name=amount_fen]`), "12.345"),
		chromedp.Click(css(srow+` form[data-action=pay] button`)),
		waitJS(`document.querySelector('`+srow+` form[data-action=pay] .error')?.textContent.includes('not an amount')`),
	)
	if got := text(t, ctx, `#receivables tr[data-receivable="`+sale+`"]`); !strings.Contains(got, "0-30") || !strings.Contains(got, "100.00") {
		t.Errorf("receivable row %q", got)
	}
	step(t, ctx, "an overpayment is refused by the server",
		chromedp.SetValue(css(srow+` form[data-action=pay] input[name=amount_fen]`), "100.01"),
		chromedp.Click(css(srow+` form[data-action=pay] button`)),
		waitJS(`document.querySelector('`+srow+` form[data-action=pay] .error')?.textContent.includes('more than the 10000 fen owed')`),
	)
	step(t, ctx, "a payment in yuan",
		chromedp.SetValue(css(srow+` form[data-action=pay] input[name=amount_fen]`), "12.5"),
		chromedp.Click(css(srow+` form[data-action=pay] button`)),
		waitJS(`document.querySelector('`+srow+`')?.textContent.includes('12.50')`),
	)
	if s := env.must(env.do("GET", "/api/v1/sales/"+sale, mgr, nil), 200).Body; fmt.Sprint(s["paid_fen"]) != "1250" {
		t.Fatalf("paid_fen %v after paying 12.5 yuan", s["paid_fen"])
	}
	screenshot(t, ctx, "console-money-sales.png")
	rrow := `#money-repairs tr[data-id="` + repair + `"]`
	step(t, ctx, "a repair's warranty answer",
		chromedp.Navigate(base+"/console/#/money/repairs"),
		chromedp.WaitVisible(css(rrow+` form[data-action=answer_warranty] button`)),
		chromedp.Click(css(rrow+` form[data-action=answer_warranty] button`)), // out of warranty, no on-site service
		chromedp.WaitVisible(css(rrow+` form[data-action=quote] button`)),
	)
	if r := env.must(env.do("GET", "/api/v1/repairs/"+repair, mgr, nil), 200).Body; r["status"] != "answered" || r["in_warranty"] != false {
		t.Fatalf("repair after the answer: %v", r)
	}

	// The technician's taxi fare against the approval; the manager reimburses it.
	exp := str(env.must(env.do("POST", "/api/v1/expenses", coord, map[string]any{"kind": "taxi", "technician_id": ids["tech1"], "amount_fen": 4500, "approval_id": taxi}), 201).Body, "id")
	login("manager")
	step(t, ctx, "reimburse",
		chromedp.Navigate(base+"/console/#/money/expenses"),
		chromedp.WaitVisible(css(`#money-expenses tr[data-id="`+exp+`"] form[data-action=reimburse] button`)),
		chromedp.Click(css(`#money-expenses tr[data-id="`+exp+`"] form[data-action=reimburse] button`)),
		waitJS(`!document.querySelector('#money-expenses tr[data-id="`+exp+`"]')`),
	)
	if e := env.must(env.do("GET", "/api/v1/expenses/"+exp, mgr, nil), 200).Body; e["status"] != "reimbursed" {
		t.Fatalf("expense %v", e)
	}
	// Leadership charges a debt to its handler only once it is a year old: the server says so.
	login("leader")
	lrow := `#money-sales tr[data-id="` + sale + `"] form[data-action=charge_liability]`
	step(t, ctx, "a debt too young to charge",
		chromedp.Navigate(base+"/console/#/money/sales"),
		chromedp.WaitVisible(css(lrow+` button`)),
		chromedp.SendKeys(css(lrow+` input[name=share_pct]`), "90"),
		chromedp.Click(css(lrow+` button`)),
		waitJS(`document.querySelector('`+lrow+` .error')?.textContent.includes('once open 365 days')`),
	)

	// The month shows the money with the record ids behind it.
	month := env.srv.Engine.Now().In(env.srv.Engine.Settings().Location()).Format("2006-01")
	env.must(env.do("POST", "/api/v1/months/"+month+"/compile", coord, nil), 200)
	step(t, ctx, "the month's money",
		chromedp.Navigate(base+"/console/#/months/"+month),
		chromedp.WaitVisible(css("#month-money")),
	)
	if got := text(t, ctx, "#month-money"); !strings.Contains(got, "¥45.00") || !strings.Contains(got, "expense:"+exp) {
		t.Errorf("the month's money table:\n%s", got)
	}
}
