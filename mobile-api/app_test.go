package mobileapi

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gofiber/fiber/v2"
)

// TestAppUpdateOffered: a phone that has the app installed (its service worker controls the
// page) is offered "new version, reload" when the server's app changes, and after the reload
// it runs the new shell, with the old cache gone. No network is needed but loopback.
func TestAppUpdateOffered(t *testing.T) {
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Fatal("no chromium found on PATH: the app tests need a real browser (apt-get install -y chromium; CI installs it)")
	}
	old := appShell.Load()
	t.Cleanup(func() { appShell.Store(old) })
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	(&API{}).appRoutes(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.Shutdown() })
	base := "http://" + ln.Addr().String()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile, chromedp.EmulateTouch)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	wait := func(what, expr string) {
		t.Helper()
		var err error
		for range 3 { // a reload under way ends a poll: poll the new page
			c, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err = chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
			cancel()
			if err == nil || !(strings.Contains(err.Error(), "navigated") || strings.Contains(err.Error(), "context with specified id")) {
				break
			}
		}
		if err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v\n%s", what, err, text)
		}
	}
	run := func(what string, a ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(c, a...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("open the app", chromedp.Navigate(base+"/app/"))
	wait("the login screen", `!!document.querySelector('#login')`)
	wait("the service worker in control", `!!navigator.serviceWorker.controller`)
	wait("the shell cached under its version", `caches.keys().then(k => k.length === 1 && k[0] === 'fieldsync-app-`+old.Version+`')`)
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('#update')`)); got {
		t.Fatal("a new version is offered before there is one")
	}

	// The server gets a new app: a changed stylesheet.
	css := old.Files["app.css"].Body
	appShell.Store(buildAppShell(map[string][]byte{"app.css": append(append([]byte{}, css...), "\n/* v2 */\n"...)}))
	next := appShell.Load().Version
	if next == old.Version {
		t.Fatal("a changed file did not change the shell's version")
	}
	run("check for an update", chromedp.Evaluate[chromedp.Void](`navigator.serviceWorker.getRegistration().then(r => r.update())`, chromedp.EvalAwaitPromise))
	wait("the offer to reload", `!!document.querySelector('#update button')`)
	if txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#update').innerText`)); !strings.Contains(txt, "new version") {
		t.Errorf("the offer says %q", txt)
	}
	run("reload", chromedp.Click(chromedp.CSS("#update button")))
	wait("the new shell after the reload", `!!document.querySelector('#login') && !document.querySelector('#update')`)
	wait("only the new version cached", `caches.keys().then(k => k.length === 1 && k[0] === 'fieldsync-app-`+next+`')`)
	wait("the new stylesheet in use", `caches.open('fieldsync-app-`+next+`').then(c => c.match('app.css')).then(r => r.text()).then(s => s.includes('/* v2 */'))`)
}
