package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"fieldsync/schema"
)

// The field app (/app/) in a real chromium driven by chromedp, against a real server on
// loopback, on a phone-sized viewport with touch emulation. "Offline" is the browser's own
// network emulation and, so that nothing can slip through (an open WebSocket, the service
// worker's fetches), a loopback proxy between the browser and the server that drops every
// connection and refuses new ones.

// appImages: `go test ./e2e -run FieldApp -app-images` refreshes the field app's screenshots in
// docs/images; a plain run only checks that they can be taken.
var appImages = flag.Bool("app-images", false, "write the field app's screenshots to docs/images")

// TestFieldAppServed: the app is served from the binary, compressed, with a service worker
// that carries the shell's version, and its shell fits the budget a phone downloads.
func TestFieldAppServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	get := func(path string, gz bool) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", e.base+path, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	if res, _ := get("/app", false); res.StatusCode != 301 || res.Header.Get("Location") != "/app/" {
		t.Errorf("GET /app: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := get("/app/", true)
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /app/: %d %q %q", res.StatusCode, res.Header.Get("Content-Encoding"), res.Header.Get("Content-Type"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(zr)
	if !strings.Contains(string(html), `rel="manifest"`) || strings.Contains(string(html), "http://") || strings.Contains(string(html), "https://") {
		t.Errorf("index.html: %s", html)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "ws://"+e.addr+" ") {
		t.Errorf("CSP %q", csp)
	}
	req, _ := http.NewRequest("GET", e.base+"/app/", nil)
	req.Host = "evil.example; script-src *"
	if res, err := http.DefaultClient.Do(req); err == nil {
		if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "evil") || strings.Contains(csp, "script-src *") {
			t.Errorf("a forged Host header reaches the CSP: %q", csp)
		}
		res.Body.Close()
	}
	if res, _ := get("/app/nope.js", false); res.StatusCode != 404 {
		t.Errorf("missing file: %d", res.StatusCode)
	}
	res, sw := get("/app/sw.js", false)
	if res.StatusCode != 200 || strings.Contains(string(sw), "__SHELL_VERSION__") || !strings.Contains(string(sw), `"main.js"`) {
		t.Errorf("sw.js is not filled in: %s", sw)
	}
	_, ver := get("/app/version.json", false)
	var v struct{ Version string }
	if json.Unmarshal(ver, &v); v.Version == "" || !strings.Contains(string(sw), v.Version) {
		t.Errorf("sw.js does not carry the shell version %q", v.Version)
	}
	var man map[string]any
	if _, b := get("/app/manifest.webmanifest", false); json.Unmarshal(b, &man) != nil || man["start_url"] == nil || len(man["icons"].([]any)) < 2 {
		t.Errorf("manifest: %s", b)
	}
	_, mb := get("/app/meta.json", false)
	var meta struct{ Steps []map[string]any }
	if json.Unmarshal(mb, &meta); len(meta.Steps) == 0 {
		t.Errorf("meta.json has no workflow steps: %s", mb)
	}
	// Nothing from another site in any file of the shell.
	total := 0
	var files []string
	json.Unmarshal([]byte(strings.SplitN(strings.SplitN(string(sw), "const SHELL = ", 2)[1], ";", 2)[0]), &files)
	for _, f := range files {
		res, b := get("/app/"+f, true)
		if res.StatusCode != 200 {
			t.Errorf("shell file %q: %d", f, res.StatusCode)
		}
		total += len(b)
		if !strings.HasSuffix(f, ".png") && (bytes.Contains(b, []byte("//cdn")) || bytes.Contains(b, []byte("googleapis"))) {
			t.Errorf("%s loads from another site", f)
		}
	}
	if total > 150<<10 {
		t.Errorf("the app shell is %d bytes compressed; the budget is 150 KB", total)
	}
	t.Logf("app shell: %d files, %d bytes as a phone downloads them", len(files), total)
}

// ---- the browser ----

func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium found on PATH: the field app tests need a real browser (apt-get install -y chromium; CI installs it)")
	return ""
}

// phone starts a headless chromium with a fresh profile (one phone) and returns its browser
// context; tabs are opened with tab.
func phone(t testing.TB, lang string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(360, 740),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, phoneViewport()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// phoneViewport is a 360x740 phone in portrait with touch.
func phoneViewport() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait, chromedp.EmulateScale(2))
}

// tab opens a new tab of the browser of ctx, with the phone's viewport.
func tab(t testing.TB, browser context.Context) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	if err := chromedp.Do(ctx, phoneViewport()); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	return ctx, cancel
}

func bodyText(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, _ := chromedp.Run(c, chromedp.Evaluate[string](`document.body.innerText`))
	return s
}

// do runs browser actions with their own deadline and names the step when it fails.
func do(t testing.TB, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v\npage text:\n%s", name, err, bodyText(ctx))
	}
}

// eval evaluates JavaScript (awaiting a promise) and returns its value.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("eval %s: %v\npage text:\n%s", expr, err, bodyText(ctx))
	}
	return v
}

// until waits (at most limit) for a JavaScript expression to be true.
func until(t testing.TB, ctx context.Context, what, expr string, limit time.Duration) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, limit+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(limit)))
	if err != nil {
		t.Fatalf("%s: not within %v: %v\npage text:\n%s", what, limit, err, bodyText(ctx))
	}
}

// setField types into an input or textarea as a person would end it: the value, then change.
func setField(t testing.TB, ctx context.Context, css, value string) {
	t.Helper()
	v, _ := json.Marshal(value)
	c, _ := json.Marshal(css)
	eval[bool](t, ctx, `(() => { const el = document.querySelector(`+string(c)+`); el.focus(); el.value = `+string(v)+`;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`)
}

// tap clicks an element (chromedp's click is a mouse press; with touch emulation the page
// receives pointer events either way).
func tap(t testing.TB, ctx context.Context, css string) {
	t.Helper()
	c, _ := json.Marshal(css)
	// A live screen may redraw between finding the element and pressing it: try again then.
	var err error
	for range 3 {
		do(t, ctx, "find "+css, chromedp.WaitVisible(chromedp.CSS(css)))
		eval[bool](t, ctx, `(() => { const el = document.querySelector(`+string(c)+`); el && el.scrollIntoView({block: 'center'}); return true; })()`)
		cc, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = chromedp.Do(cc, chromedp.Click(chromedp.CSS(css)))
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("tap %s: %v\npage text:\n%s", css, err, bodyText(ctx))
}

// drawOn synthesises a finger stroke on the element css with touch events: a zigzag across it.
func drawOn(t testing.TB, ctx context.Context, css string) {
	t.Helper()
	c, _ := json.Marshal(css)
	eval[bool](t, ctx, `(() => { document.querySelector(`+string(c)+`).scrollIntoView({block: 'center'}); return true; })()`)
	var box struct{ X, Y, W, H float64 }
	raw := eval[string](t, ctx, `JSON.stringify((() => { const r = document.querySelector(`+string(c)+`).getBoundingClientRect(); return {X: r.left, Y: r.top, W: r.width, H: r.height}; })())`)
	json.Unmarshal([]byte(raw), &box)
	id := 1.0
	point := func(fx, fy float64) []*input.TouchPoint {
		return []*input.TouchPoint{{X: box.X + fx*box.W, Y: box.Y + fy*box.H, ID: &id}}
	}
	do(t, ctx, "draw on "+css, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchStart, TouchPoints: point(0.1, 0.5)}); err != nil {
			return err
		}
		for i := 1; i <= 20; i++ {
			fx := 0.1 + 0.8*float64(i)/20
			fy := 0.5 + 0.3*float64(i%2*2-1)
			if _, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchMove, TouchPoints: point(fx, fy)}); err != nil {
				return err
			}
		}
		_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchEnd, TouchPoints: []*input.TouchPoint{}})
		return err
	}))
}

// browserOffline switches the tab's network emulation (navigator.onLine included).
func browserOffline(t testing.TB, ctx context.Context, off bool) {
	t.Helper()
	yes := true
	do(t, ctx, "network emulation", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &yes,
			MatchedNetworkConditions:    []*network.Conditions{{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}},
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
}

// proxy is a loopback TCP proxy to the server that can cut the phone off: while down it drops
// every connection and refuses new ones.
type proxy struct {
	ln     net.Listener
	target func() string
	mu     sync.Mutex
	down   bool
	noWS   bool // refuse WebSocket upgrades, as some networks do
	conns  map[net.Conn]bool
}

func newProxy(t testing.TB, target func() string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) base() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve(c net.Conn) {
	p.mu.Lock()
	down, noWS := p.down, p.noWS
	p.mu.Unlock()
	if down {
		c.Close()
		return
	}
	var head []byte
	if noWS {
		// Browsers open a WebSocket on a connection of its own: its first request tells.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		for !bytes.Contains(head, []byte("\r\n\r\n")) && len(head) < 64<<10 {
			n, err := c.Read(buf)
			head = append(head, buf[:n]...)
			if err != nil {
				break
			}
		}
		c.SetReadDeadline(time.Time{})
		if bytes.Contains(bytes.ToLower(head), []byte("upgrade: websocket")) {
			c.Close()
			return
		}
	}
	s, err := net.DialTimeout("tcp", p.target(), 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	s.Write(head)
	go func() { io.Copy(s, c); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done
	c.Close()
	s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// offline cuts the phone off (browser emulation and the proxy) or brings it back.
func offline(t testing.TB, ctx context.Context, p *proxy, off bool) {
	t.Helper()
	if off {
		p.setDown(true)
		browserOffline(t, ctx, true)
		return
	}
	browserOffline(t, ctx, false)
	p.setDown(false)
}

func shot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	eval[bool](t, ctx, `(() => { document.getElementById('toast').className = ''; return true; })()`) // not over the picture
	time.Sleep(300 * time.Millisecond)
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.CaptureScreenshot())
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot %s: %v (%d bytes)", name, err, len(png))
	}
	if *appImages {
		if err := os.WriteFile(filepath.Join("..", "docs", "images", name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// stampPNG is a photo of a stamp as a phone would hold it: a red ring on white.
func stampPNG(t testing.TB) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 240, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 240; x++ {
			dx, dy := x-120, y-120
			d := dx*dx + dy*dy
			c := color.NRGBA{255, 255, 255, 255}
			if d < 100*100 && d > 88*88 || (d < 30*30) {
				c = color.NRGBA{200, 20, 30, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// login logs a demo technician in on the app's login screen.
func appLogin(t testing.TB, ctx context.Context, base, user string) {
	t.Helper()
	do(t, ctx, "open the app", chromedp.Navigate(base+"/app/"), chromedp.WaitVisible(chromedp.CSS("#login")))
	setField(t, ctx, "#username", user)
	setField(t, ctx, "#password", demoPassword)
	tap(t, ctx, "#login button[type=submit]")
	until(t, ctx, "the ticket list after login", `!!document.querySelector('#ticket-list, #no-tickets')`, 30*time.Second)
}

// TestFieldAppOffline is the technician's day: log in, see the dispatched tickets, get a new
// dispatch live; then with no network a whole visit (steps, a note, the visit record with
// parts, the feedback sheet with a drawn signature and a stamp photo); reload and close the
// tab while offline; back online everything reaches the server exactly once, the sheet is
// sealed and verifies, the images are the phone's bytes.
func TestFieldAppOffline(t *testing.T) {
	e := newEnv(t)
	px := newProxy(t, func() string { return e.addr })
	browser := phone(t, "zh-CN")
	ctx, closeTab := tab(t, browser)
	appLogin(t, ctx, px.base(), "tech1")
	until(t, ctx, "the service worker controls the page", `!!navigator.serviceWorker.controller`, 30*time.Second)
	until(t, ctx, "the dispatched tickets", `document.querySelectorAll('#ticket-list a.ticket').length > 0`, 30*time.Second)

	// A dispatch made through the coordinator API appears without reload.
	id := e.newTicket("app: 冷水机组跳闸 chiller trips")
	number := e.ticket(id)["number"].(string)
	e.dispatch(id, "tech1")
	until(t, ctx, "the new dispatch in the list", `!!document.querySelector('a.ticket[data-number="`+number+`"]')`, 20*time.Second)
	if !strings.Contains(bodyText(ctx), "我的工单") {
		t.Errorf("a zh-CN phone does not get the Chinese screens:\n%s", bodyText(ctx))
	}

	// The completeness rule of the app agrees with the server's on every shared vector.
	vectors, err := os.ReadFile("../schema/testdata/sheet-completeness.json")
	if err != nil {
		t.Fatal(err)
	}
	bad := eval[[]string](t, ctx, `(async () => {
		const { sheetCompleteness } = await import('./completeness.js');
		const meta = await (await fetch('meta.json')).json();
		const v = `+string(vectors)+`;
		const bad = [];
		for (const c of v.cases) {
			const r = sheetCompleteness(c.sheet, c.required, meta.sheet_requirable);
			if (JSON.stringify(r.missing) !== JSON.stringify(c.missing) || r.complete !== (c.missing.length === 0)) bad.push(c.name + ': ' + JSON.stringify(r));
		}
		return bad;
	})()`)
	if len(bad) > 0 {
		t.Errorf("completeness.js disagrees with the shared vectors: %v", bad)
	}

	// The device signature of the app agrees with the Go code on every shared vector, and
	// the app's own key (made at login, not extractable) signs what the server verifies.
	checkDeviceVectors(t, ctx)

	// Offline from here.
	tap(t, ctx, `a.ticket[data-number="`+number+`"]`)
	until(t, ctx, "the ticket screen", `!!document.querySelector('#steps')`, 20*time.Second)
	offline(t, ctx, px, true)
	until(t, ctx, "the app notices it is offline", `document.querySelector('#sync-chip').classList.contains('off')`, 30*time.Second)
	for _, step := range []string{"accept", "en_route", "arrive"} {
		tap(t, ctx, `#steps button[data-action="`+step+`"]`)
		until(t, ctx, "the step after "+step, `!document.querySelector('#steps button[data-action="`+step+`"]')`, 20*time.Second)
	}
	shotTop(t, ctx, "app-ticket.png")
	setField(t, ctx, "#note", "客户要报价 customer asked for a quote")
	tap(t, ctx, "#add-note")
	until(t, ctx, "the note in the history", `document.querySelector('#events').innerText.includes('customer asked for a quote')`, 20*time.Second)

	tap(t, ctx, "#to-visit")
	until(t, ctx, "the visit record", `!!document.querySelector('#visit')`, 20*time.Second)
	setField(t, ctx, "#inspection", "压缩机轴承磨损 compressor bearing worn")
	setField(t, ctx, "#handling", "更换轴承并试机 bearing replaced, tested")
	tap(t, ctx, "#add-part")
	setField(t, ctx, "#parts [name=item]", "轴承 6204 bearing")
	setField(t, ctx, "#parts [name=serial_removed]", "OLD-6204-77")
	setField(t, ctx, "#parts [name=serial_fitted]", "NEW-6204-01")
	shotTop(t, ctx, "app-visit.png")
	tap(t, ctx, "#save-visit")
	until(t, ctx, "back on the ticket", `!!document.querySelector('#to-sheet')`, 20*time.Second)

	tap(t, ctx, "#to-sheet")
	until(t, ctx, "the feedback sheet", `!!document.querySelector('#sign-sheet')`, 20*time.Second)
	tap(t, ctx, `#rating button[data-rating="5"]`)
	setField(t, ctx, "#f-rating_comment", "很及时 prompt")
	setField(t, ctx, "#f-signer_name", "孙丽")
	drawOn(t, ctx, "#signature")
	tap(t, ctx, "#save-signature")
	until(t, ctx, "the signature saved", `document.querySelector('#has-signature_blob').classList.contains('ok')`, 20*time.Second)
	// Before the stamp: the app says plainly that the stamp is missing, and only the stamp.
	until(t, ctx, "the stamp reported missing", `document.querySelector('#completeness').innerText === '缺少：客户盖章'`, 20*time.Second)
	eval[bool](t, ctx, `(() => { const el = document.querySelector('#completeness'); window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 64); return true; })()`)
	time.Sleep(300 * time.Millisecond)
	shot(t, ctx, "app-sheet.png")
	stampFile := filepath.Join(t.TempDir(), "stamp.png")
	stamp := stampPNG(t)
	os.WriteFile(stampFile, stamp, 0o644)
	do(t, ctx, "photograph the stamp", chromedp.SetUploadFiles(chromedp.CSS("#stamp"), []string{stampFile}))
	until(t, ctx, "the sheet complete after the stamp", `document.querySelector('#completeness').classList.contains('complete')`, 20*time.Second)
	if txt := eval[string](t, ctx, `document.querySelector('#completeness').innerText`); strings.Contains(txt, "缺少") {
		t.Errorf("after the stamp the app still reports missing items: %q", txt)
	}
	drawOn(t, ctx, "#tech-signature")
	tap(t, ctx, "#save-tech-signature")
	until(t, ctx, "the technician's signature saved", `document.querySelector('#has-technician_signature_blob').classList.contains('ok')`, 20*time.Second)
	tap(t, ctx, "#sign-sheet")
	until(t, ctx, "the sheet signed on the phone", `!!document.querySelector('#sealed')`, 20*time.Second)
	do(t, ctx, "back to the ticket", chromedp.Navigate(px.base()+"/app/#/t/"+id))
	// (a navigation while offline: the service worker serves it)
	until(t, ctx, "the ticket screen offline", `!!document.querySelector('#steps button[data-action="complete"]')`, 30*time.Second)
	tap(t, ctx, `#steps button[data-action="complete"]`)
	until(t, ctx, "completed on the phone", `!document.querySelector('#steps button[data-action="complete"]')`, 20*time.Second)
	pending := eval[int](t, ctx, `fieldsync.state.pending`)
	if pending < 10 {
		t.Fatalf("only %d changes pending after a whole offline visit", pending)
	}

	// Reload while offline: the worker serves the shell, IndexedDB keeps the work.
	do(t, ctx, "reload offline", chromedp.Reload())
	until(t, ctx, "the app after an offline reload", `!!window.fieldsync && !!document.querySelector('#ticket-status')`, 30*time.Second)
	if got := eval[int](t, ctx, `fieldsync.state.pending`); got != pending {
		t.Fatalf("after an offline reload %d changes are pending, before %d", got, pending)
	}
	// Close the tab and open the app again, still offline.
	closeTab()
	ctx, closeTab = tab(t, browser)
	defer closeTab()
	browserOffline(t, ctx, true)
	do(t, ctx, "open the app again offline", chromedp.Navigate(px.base()+"/app/#/t/"+id))
	until(t, ctx, "the app in a new tab offline", `!!window.fieldsync && !!document.querySelector('#ticket-status')`, 30*time.Second)
	if got := eval[int](t, ctx, `fieldsync.state.pending`); got != pending {
		t.Fatalf("in a new tab %d changes are pending, before %d", got, pending)
	}
	shotTop(t, ctx, "app-offline.png")
	sheetID := eval[string](t, ctx, `fieldsync.records('feedback_sheet').then(a => a.find(s => s.data.ticket_id === '`+id+`').id)`)

	// Back online: everything goes up once.
	offline(t, ctx, px, false)
	until(t, ctx, "the outbox empty", `fieldsync.state.pending === 0 && fieldsync.state.connected`, 60*time.Second)
	// The hello that reconnected said which app it is and how much waited on the phone: the
	// office's device list shows it.
	var devs struct{ Items []map[string]any }
	e.must("GET", "/api/v1/devices", e.login("coord"), nil, 200, &devs)
	reported := false
	for _, d := range devs.Items {
		if d["app_version"] == "web-1" && d["pending"] != nil {
			reported = true
			if n, _ := d["pending"].(float64); int(n) > pending || (n > 0) != (d["pending_since"] != nil) {
				t.Errorf("the phone reported %v pending since %v; it had %d", d["pending"], d["pending_since"], pending)
			}
		}
	}
	if !reported {
		t.Errorf("no device reported the field app's version and outbox: %v", devs.Items)
	}
	do(t, ctx, "the sheet", chromedp.Navigate(px.base()+"/app/#/t/"+id+"/sheet"))
	until(t, ctx, "the sheet sealed on the phone", `!!document.querySelector('#sealed') && document.querySelector('#sealed').innerText.includes('已封存')`, 20*time.Second)
	shotTop(t, ctx, "app-sealed.png")
	if rej := eval[int](t, ctx, `fieldsync.rejections().then(r => r.length)`); rej != 0 {
		t.Errorf("%d rejections after the visit:\n%s", rej, eval[string](t, ctx, `fieldsync.rejections().then(r => JSON.stringify(r))`))
	}
	// The sheet's PDF, online, with the phone's token.
	if typ := eval[string](t, ctx, `fieldsync.fetch('/mobile/v1/sheets/`+sheetID+`.pdf').then(r => r.headers.get('content-type'))`); !strings.HasPrefix(typ, "application/pdf") {
		t.Errorf("the sheet's PDF comes as %q", typ)
	}

	tk := e.ticket(id)
	if tk["status"] != "completed" || tk["inspection_record"] != "压缩机轴承磨损 compressor bearing worn" {
		t.Errorf("ticket on the server: status %v, inspection %v", tk["status"], tk["inspection_record"])
	}
	counts := map[string]int{}
	for _, ev := range e.events(id) {
		switch ev["kind"] {
		case "action":
			counts[ev["action"].(string)]++
		case "note":
			counts["note:"+ev["note"].(string)]++
		}
	}
	for _, k := range []string{"accept", "en_route", "arrive", "complete", "note:客户要报价 customer asked for a quote"} {
		if counts[k] != 1 {
			t.Errorf("%s on the server %d times, want once (all: %v)", k, counts[k], counts)
		}
	}
	var sheets struct{ Items []map[string]any }
	e.must("GET", "/api/v1/sheets?ticket_id="+id, e.coord, nil, 200, &sheets)
	if len(sheets.Items) != 1 {
		t.Fatalf("%d sheets on the server, want 1", len(sheets.Items))
	}
	sh := sheets.Items[0]
	if sh["id"] != sheetID || sh["status"] != "signed" || sh["complete"] != true || sh["seal"] == "" || sh["signer_name"] != "孙丽" {
		t.Errorf("sheet on the server: %v", sh)
	}
	if a, _ := sh["arrived_at"].(string); a == "" || sh["departed_at"] == nil || sh["departed_at"].(string) < a {
		t.Errorf("the sheet's arrival and departure: %v, %v", sh["arrived_at"], sh["departed_at"])
	}
	parts, _ := sh["parts"].([]any)
	if len(parts) != 1 || parts[0].(map[string]any)["serial_fitted"] != "NEW-6204-01" {
		t.Errorf("parts on the server: %v", sh["parts"])
	}
	var ver map[string]any
	st, raw := e.do("GET", "/verify/"+sheetID, "", nil, "Accept", "application/json")
	if json.Unmarshal(raw, &ver); st != 200 || ver["valid"] != true {
		t.Errorf("verify: %d %s", st, raw)
	}
	// The images on the server are the phone's bytes; the stamp is the photo as taken.
	devToken, _ := e.device("tech1", "checker")
	for _, f := range []string{"signature_blob", "stamp_blob", "technician_signature_blob"} {
		sha, _ := sh[f].(string)
		_, server := e.do("GET", "/mobile/v1/blobs/"+sha, devToken, nil)
		local := eval[string](t, ctx, `fieldsync.getBlob('`+sha+`').then(b => btoa(String.fromCharCode(...b)))`)
		if got := b64(server); got != local {
			t.Errorf("%s: the server's %d bytes differ from the phone's", f, len(server))
		}
		if f == "stamp_blob" && !bytes.Equal(server, stamp) {
			t.Errorf("the stamp on the server (%d bytes) is not the photo (%d bytes)", len(server), len(stamp))
		}
	}
	// The JS client's verify agrees with the server.
	if ok := eval[bool](t, ctx, `fieldsync.verify().then(v => v.ok)`); !ok {
		t.Errorf("the app's verify disagrees with the server: %s", eval[string](t, ctx, `fieldsync.verify().then(v => JSON.stringify(v))`))
	}
	// Signed on the phone, offline: the verify page shows the device signature valid.
	if ver["device_signed"] != true || ver["device_valid"] != true || ver["device_chain_gap"] == true {
		t.Errorf("the sheet signed offline: device signature %v valid %v gap %v (%s)", ver["device_signed"], ver["device_valid"], ver["device_chain_gap"], raw)
	}
	do(t, ctx, "the verify page", chromedp.Navigate(px.base()+"/verify/"+sheetID+"/"+sh["fingerprint"].(string)))
	until(t, ctx, "the device signature on the verify page", `!!document.querySelector('#device-signature.ok') && document.querySelector('#device-signature').innerText.includes('设备签名有效')`, 20*time.Second)
}

// checkDeviceVectors runs the app's device signature code over schema/testdata/device-sign.json
// in the browser: canonical forms, fingerprints and messages equal the Go ones, the vectors'
// signatures verify in WebCrypto, and the app's own device key signs each message so that the
// server's verification (schema.VerifyDeviceSignature) accepts it.
func checkDeviceVectors(t *testing.T, ctx context.Context) {
	t.Helper()
	raw, err := os.ReadFile("../schema/testdata/device-sign.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct{ Name, Message string }
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	out := eval[string](t, ctx, `(async () => {
		const fs = await import('./fieldsync.js');
		const f = `+string(raw)+`;
		const dec = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
		const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b)));
		const alg = { name: 'ECDSA', hash: 'SHA-256' };
		const pub = await crypto.subtle.importKey('spki', dec(f.public_key), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
		const key = await fieldsync.deviceKey();
		const bad = [], sigs = [];
		for (const v of f.vectors) {
			const c = fs.sheetDeviceCanonical(v.sheet), fp = await fs.sheetDeviceFingerprint(v.sheet);
			const m = fs.deviceSignedMessage(fp, v.device_time, v.prev_signature);
			if (c !== v.canonical) bad.push(v.name + ': canonical ' + c);
			if (fp !== v.fingerprint) bad.push(v.name + ': fingerprint ' + fp);
			if (m !== v.message) bad.push(v.name + ': message ' + m);
			if (!(await crypto.subtle.verify(alg, pub, dec(v.signature), new TextEncoder().encode(v.message)))) bad.push(v.name + ': the Go signature does not verify');
			sigs.push(enc(await crypto.subtle.sign(alg, key.privateKey, new TextEncoder().encode(v.message))));
		}
		return JSON.stringify({ bad, sigs, spki: key.spki, extractable: key.privateKey.extractable, stored: !!(await fieldsync.deviceKey()) });
	})()`)
	var got struct {
		Bad         []string
		Sigs        []string
		SPKI        string
		Extractable bool
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got.Bad) > 0 {
		t.Errorf("fieldsync.js disagrees with the shared device signature vectors: %v", got.Bad)
	}
	if got.Extractable {
		t.Error("the app's private device key is extractable")
	}
	pub, err := schema.ParseDeviceKey(got.SPKI)
	if err != nil {
		t.Fatalf("the app's public key: %v", err)
	}
	for i, v := range f.Vectors {
		if i >= len(got.Sigs) || !schema.VerifyDeviceSignature(pub, []byte(v.Message), got.Sigs[i]) {
			t.Errorf("%s: the app's signature is not accepted by the server's verification", v.Name)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// note queues a note on a ticket through the app's own client (the screens do the same).
func appNote(t testing.TB, ctx context.Context, ticket, text string) {
	t.Helper()
	eval[string](t, ctx, `fieldsync.mutate('ticket_event', crypto.randomUUID(), 'create', 0, {ticket_id: '`+ticket+`', note: '`+text+`'})`)
}

// notesOn counts the notes on a ticket on the server by text.
func (e *env) notesOn(id string) map[string]int {
	n := map[string]int{}
	for _, ev := range e.events(id) {
		if ev["kind"] == "note" {
			n[ev["note"].(string)]++
		}
	}
	return n
}

// TestFieldAppReassignedAndReturned: a ticket reassigned while the phone was offline with
// pending notes; on reconnect the app says the ticket left and that the notes were kept, and
// the coordinator sees them. Then a sheet the coordinator returns shows its reason on the
// phone, and the correction made there is sealed. The phone speaks English (en-US).
func TestFieldAppReassignedAndReturned(t *testing.T) {
	e := newEnv(t)
	px := newProxy(t, func() string { return e.addr })
	id := e.newTicket("app: reassign me")
	e.dispatch(id, "tech1")
	browser := phone(t, "en-US")
	ctx, closeTab := tab(t, browser)
	defer closeTab()
	appLogin(t, ctx, px.base(), "tech1")
	number := e.ticket(id)["number"].(string)
	until(t, ctx, "the ticket", `!!document.querySelector('a.ticket[data-number="`+number+`"]')`, 20*time.Second)
	if !strings.Contains(bodyText(ctx), "My tickets") {
		t.Errorf("an en-US phone does not get the English screens:\n%s", bodyText(ctx))
	}
	tap(t, ctx, `a.ticket[data-number="`+number+`"]`)
	until(t, ctx, "the ticket screen", `!!document.querySelector('#steps')`, 20*time.Second)

	offline(t, ctx, px, true)
	until(t, ctx, "offline", `document.querySelector('#sync-chip').classList.contains('off')`, 30*time.Second)
	setField(t, ctx, "#note", "pump seal leaking, photo taken")
	tap(t, ctx, "#add-note")
	until(t, ctx, "the note queued", `fieldsync.state.pending === 1`, 20*time.Second)
	e.dispatch(id, "tech2") // meanwhile the office gives the ticket to tech2

	offline(t, ctx, px, false)
	until(t, ctx, "the app says the ticket left", `!!document.querySelector('#ticket-gone')`, 60*time.Second)
	until(t, ctx, "the app says the notes were kept", `!!document.querySelector('#rejections [data-code="out_of_scope"]')`, 20*time.Second)
	txt := eval[string](t, ctx, `document.querySelector('#rejections').innerText`)
	if !strings.Contains(txt, "reassigned") || !strings.Contains(txt, "kept") || !strings.Contains(txt, "pump seal leaking") {
		t.Errorf("the rejection does not tell what happened and what was kept: %q", txt)
	}
	shotTop(t, ctx, "app-reassigned.png")
	kept := false
	for _, ev := range e.events(id) {
		if ev["kind"] == "orphaned_work" && strings.Contains(toJSON(ev["details"]), "pump seal leaking") {
			kept = true
		}
	}
	if !kept {
		t.Errorf("the coordinator does not see the notes on the ticket: %v", e.events(id))
	}

	// A returned sheet: signed on the phone, returned by the coordinator, corrected, sealed.
	id2 := e.newTicket("app: return my sheet")
	e.dispatch(id2, "tech1")
	until(t, ctx, "the second ticket", `fieldsync.record('ticket', '`+id2+`').then(r => !!r)`, 20*time.Second)
	stamp := stampPNG(t)
	eval[bool](t, ctx, `(async () => {
		const tk = await fieldsync.record('ticket', '`+id2+`');
		await fieldsync.mutate('ticket', tk.id, 'action', tk.version, null, 'accept');
		const canvas = document.createElement('canvas'); canvas.width = 200; canvas.height = 80;
		const g = canvas.getContext('2d'); g.fillStyle = '#fff'; g.fillRect(0, 0, 200, 80); g.fillText('Sun Li', 20, 40);
		const sig = new Uint8Array(await (await new Promise(r => canvas.toBlob(r, 'image/png'))).arrayBuffer());
		const stamp = Uint8Array.from(atob('`+base64.StdEncoding.EncodeToString(stamp)+`'), c => c.charCodeAt(0));
		const sid = crypto.randomUUID();
		await fieldsync.mutate('feedback_sheet', sid, 'create', 0, {ticket_id: tk.id, fault_symptoms: 'pump noise', inspection_record: 'bearing', handling_result: 'replaced',
			rating: 4, signer_name: 'Sun Li', signature_blob: await fieldsync.putBlob(sig), stamp_blob: await fieldsync.putBlob(stamp)});
		await fieldsync.signSheet(sid); // signed on the phone (a plain sign from a phone with a key is refused)
		return true;
	})()`)
	until(t, ctx, "the first sheet up", `fieldsync.state.pending === 0`, 30*time.Second)
	var sheets struct{ Items []map[string]any }
	e.must("GET", "/api/v1/sheets?ticket_id="+id2, e.coord, nil, 200, &sheets)
	if len(sheets.Items) != 1 || sheets.Items[0]["status"] != "signed" {
		t.Fatalf("sheets of the second ticket: %v", sheets.Items)
	}
	first := sheets.Items[0]["id"].(string)
	e.must("POST", "/api/v1/sheets/"+first+"/actions/return", e.coord, map[string]any{"reason": "stamp unreadable"}, 200, nil)
	do(t, ctx, "open the sheet", chromedp.Navigate(px.base()+"/app/#/t/"+id2+"/sheet"))
	until(t, ctx, "the return reason on the phone", `!!document.querySelector('#returned-reason') && document.querySelector('#returned-reason').innerText.includes('stamp unreadable')`, 30*time.Second)
	shotTop(t, ctx, "app-returned.png")
	tap(t, ctx, "#correct-sheet")
	until(t, ctx, "the correction's form", `!!document.querySelector('#stamp')`, 20*time.Second)
	// A new photo of the stamp: not a picture at all first (refused on the phone), then a good one.
	bad := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(bad, []byte("this is not a photo"), 0o644)
	do(t, ctx, "a file that is not a photo", chromedp.SetUploadFiles(chromedp.CSS("#stamp"), []string{bad}))
	until(t, ctx, "the phone refuses it", `document.querySelector('#sheet-error').innerText.includes('not a photo')`, 20*time.Second)
	if n := eval[int](t, ctx, `fieldsync.localWork().then(w => w.blobs.length)`); n != 0 {
		t.Errorf("%d images queued after a refused file", n)
	}
	// An image over the server's limit (the synced blob_max_bytes) is refused by the client.
	code := eval[string](t, ctx, `(async () => {
		const big = new Uint8Array((await fieldsync.maxBlobBytes()) + 1);
		big.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
		try { await fieldsync.putBlob(big); return 'accepted'; } catch (e) { return e.code + (await fieldsync.localWork()).blobs.length; }
	})()`)
	if code != "too_large0" {
		t.Errorf("an image over the limit: %s, want too_large with nothing queued", code)
	}
	good := filepath.Join(t.TempDir(), "stamp2.png")
	os.WriteFile(good, stampVariant(t), 0o644)
	do(t, ctx, "a clear stamp photo", chromedp.SetUploadFiles(chromedp.CSS("#stamp"), []string{good}))
	until(t, ctx, "the correction complete", `document.querySelector('#completeness').classList.contains('complete')`, 20*time.Second)
	tap(t, ctx, "#sign-sheet")
	until(t, ctx, "the correction sealed", `!!document.querySelector('#sealed') && document.querySelector('#sealed').innerText.includes('/2 is sealed')`, 30*time.Second)
	e.must("GET", "/api/v1/sheets?ticket_id="+id2, e.coord, nil, 200, &sheets)
	status := map[string]string{}
	for _, s := range sheets.Items {
		status[s["id"].(string)] = s["status"].(string)
		if s["id"] != first {
			if s["supersedes_id"] != first || s["seal"] == "" {
				t.Errorf("the correction: %v", s)
			}
			var ver map[string]any
			st, raw := e.do("GET", "/verify/"+s["id"].(string), "", nil, "Accept", "application/json")
			if json.Unmarshal(raw, &ver); st != 200 || ver["valid"] != true {
				t.Errorf("verify the correction: %d %s", st, raw)
			}
		}
	}
	if len(status) != 2 || status[first] != "void" {
		t.Errorf("after the correction the sheets are %v; want the returned one void and one signed", status)
	}
}

// stampVariant is another stamp photo (a second take).
func stampVariant(t testing.TB) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 200, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 200; x++ {
			c := color.NRGBA{255, 255, 255, 255}
			if (x-100)*(x-100)+(y-100)*(y-100) < 80*80 && (x+y)%7 < 3 {
				c = color.NRGBA{210, 10, 10, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestFieldAppServerKilled: the server process is killed (SIGKILL) while the phone pushes a
// day of offline work, and started again: nothing is lost and nothing is applied twice.
func TestFieldAppServerKilled(t *testing.T) {
	e := newEnv(t)
	id := e.newTicket("app: kill the server")
	e.dispatch(id, "tech1")
	e.stop() // the demo company is in e.dir; from here a real process serves it
	logf, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	s := &crashServer{t: t, bin: crashBuild(t), dir: e.dir, db: e.db, addr: crashFreeAddr(t), log: logf}
	s.start()
	t.Cleanup(s.stop)
	px := newProxy(t, func() string { return s.addr })
	browser := phone(t, "zh-CN")
	ctx, closeTab := tab(t, browser)
	defer closeTab()
	appLogin(t, ctx, px.base(), "tech1")
	until(t, ctx, "the ticket", `fieldsync.record('ticket', '`+id+`').then(r => !!r)`, 30*time.Second)

	const n = 1200
	offline(t, ctx, px, true)
	eval[bool](t, ctx, `(async () => {
		for (let i = 0; i < `+strconv.Itoa(n)+`; i++) await fieldsync.mutate('ticket_event', crypto.randomUUID(), 'create', 0, {ticket_id: '`+id+`', note: 'reading ' + i});
		return true;
	})()`)
	offline(t, ctx, px, false)
	until(t, ctx, "the first batch acknowledged", `fieldsync.state.pending < `+strconv.Itoa(n), 60*time.Second)
	s.kill()
	left := eval[int](t, ctx, `fieldsync.state.pending`)
	t.Logf("killed the server with %d of %d changes still pending on the phone", left, n)
	s.start()
	until(t, ctx, "the outbox empty after the restart", `fieldsync.state.pending === 0`, 90*time.Second)
	if rej := eval[int](t, ctx, `fieldsync.rejections().then(r => r.length)`); rej != 0 {
		t.Errorf("%d rejections", rej)
	}
	var coord struct{ Token string }
	crashHTTP(t, "POST", "http://"+s.addr+"/api/v1/auth/login", "", map[string]string{"username": "coord", "password": demoPassword}, &coord)
	seen := map[string]int{}
	for offset := 0; offset < 10*n; offset += 500 { // every event, page by page
		var page struct{ Items []map[string]any }
		crashHTTP(t, "GET", "http://"+s.addr+"/api/v1/tickets/"+id+"/events?limit=500&offset="+strconv.Itoa(offset), coord.Token, nil, &page)
		for _, ev := range page.Items {
			if ev["kind"] == "note" {
				seen[ev["note"].(string)]++
			}
		}
		if len(page.Items) < 500 {
			break
		}
	}
	for i := range n {
		if c := seen["reading "+strconv.Itoa(i)]; c != 1 {
			t.Errorf("note %d is on the server %d times", i, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct notes on the server, want %d", len(seen), n)
	}
}

// TestFieldAppTwoPhones: the same technician on two phones (two browser profiles, two
// devices) working at once, one of them offline for a while, plus an office edit: both
// converge on the server's state, and each app's verify agrees with the server.
func TestFieldAppTwoPhones(t *testing.T) {
	e := newEnv(t)
	id := e.newTicket("app: two phones")
	e.dispatch(id, "tech1")
	pxA := newProxy(t, func() string { return e.addr })
	pxB := newProxy(t, func() string { return e.addr })
	a, closeA := tab(t, phone(t, "zh-CN"))
	defer closeA()
	b, closeB := tab(t, phone(t, "zh-CN"))
	defer closeB()
	appLogin(t, a, pxA.base(), "tech1")
	appLogin(t, b, pxB.base(), "tech1")
	if da, db := eval[string](t, a, `fieldsync.deviceID`), eval[string](t, b, `fieldsync.deviceID`); da == db {
		t.Fatalf("two profiles share the device id %s", da)
	}
	for _, c := range []context.Context{a, b} {
		until(t, c, "the ticket", `fieldsync.record('ticket', '`+id+`').then(r => !!r)`, 30*time.Second)
	}
	offline(t, a, pxA, true)
	for i := range 5 {
		appNote(t, a, id, "A"+strconv.Itoa(i))
		appNote(t, b, id, "B"+strconv.Itoa(i))
	}
	eval[string](t, a, `fieldsync.record('ticket', '`+id+`').then(r => fieldsync.mutate('ticket', r.id, 'update', r.version, {inspection_record: 'from phone A'}))`)
	var cur map[string]any
	e.must("GET", "/api/v1/tickets/"+id, e.coord, nil, 200, &cur)
	st, raw := e.do("PATCH", "/api/v1/tickets/"+id, e.coord, map[string]any{"agreed_handling": "office: replace the pump"}, "If-Match", itoa(cur["version"]))
	if st != 200 {
		t.Fatalf("office edit: %d %s", st, raw)
	}
	until(t, b, "phone B pushed", `fieldsync.state.pending === 0`, 30*time.Second)
	offline(t, a, pxA, false)
	until(t, a, "phone A pushed", `fieldsync.state.pending === 0 && fieldsync.state.connected`, 60*time.Second)
	// Both caught up with the server: the same records at the same versions, and verify agrees.
	for name, c := range map[string]context.Context{"A": a, "B": b} {
		until(t, c, "phone "+name+" holds every note", `fieldsync.records('ticket_event').then(evs => evs.filter(e => !e.pending && /^[AB][0-9]$/.test(e.data.note || '')).length === 10)`, 30*time.Second)
		until(t, c, "phone "+name+" holds the merged ticket", `fieldsync.record('ticket', '`+id+`').then(r => r.data.inspection_record === 'from phone A' && r.data.agreed_handling === 'office: replace the pump')`, 30*time.Second)
		if ok := eval[bool](t, c, `fieldsync.verify().then(v => v.ok)`); !ok {
			t.Errorf("phone %s: verify disagrees with the server: %s", name, eval[string](t, c, `fieldsync.verify().then(v => JSON.stringify(v))`))
		}
	}
	if ha, hb := eval[string](t, a, `fieldsync.digest().then(d => d.hash)`), eval[string](t, b, `fieldsync.digest().then(d => d.hash)`); ha != hb {
		t.Errorf("the two phones hold different stores: %s and %s", ha, hb)
	}
	notes := e.notesOn(id)
	for i := range 5 {
		for _, p := range []string{"A", "B"} {
			if notes[p+strconv.Itoa(i)] != 1 {
				t.Errorf("note %s%d on the server %d times", p, i, notes[p+strconv.Itoa(i)])
			}
		}
	}
}

// TestFieldAppTokenExpired: the phone's token expires while it holds unsent work. The app
// asks to log in again and says the work is kept; after the login the work goes up once,
// under the same device.
func TestFieldAppTokenExpired(t *testing.T) {
	e := newEnv(t)
	id := e.newTicket("app: token expiry")
	e.dispatch(id, "tech1")
	px := newProxy(t, func() string { return e.addr })
	ctx, closeTab := tab(t, phone(t, "zh-CN"))
	defer closeTab()
	appLogin(t, ctx, px.base(), "tech1")
	until(t, ctx, "the ticket", `fieldsync.record('ticket', '`+id+`').then(r => !!r)`, 30*time.Second)
	device := eval[string](t, ctx, `fieldsync.meta.server_device`)
	installID := eval[string](t, ctx, `fieldsync.deviceID`)

	offline(t, ctx, px, true)
	appNote(t, ctx, id, "written before the token expired")
	if _, err := e.srv.DB.W.Exec(`UPDATE tokens SET expires_at = '2000-01-01T00:00:00.000Z' WHERE device = ?`, device); err != nil {
		t.Fatal(err)
	}
	offline(t, ctx, px, false)
	until(t, ctx, "the app asks to log in again", `!!document.querySelector('#login') && document.body.innerText.includes('登录已过期')`, 60*time.Second)
	if txt := bodyText(ctx); !strings.Contains(txt, "1 条未上传记录仍在手机上") {
		t.Errorf("the login screen does not say the work is kept:\n%s", txt)
	}
	shotTop(t, ctx, "app-login.png")
	setField(t, ctx, "#password", demoPassword)
	tap(t, ctx, "#login button[type=submit]")
	until(t, ctx, "the work up after the login", `fieldsync.state.pending === 0 && fieldsync.state.connected`, 30*time.Second)
	if got := eval[string](t, ctx, `fieldsync.meta.server_device`); got != device {
		t.Errorf("after the new login the server device is %s, before %s", got, device)
	}
	if got := eval[string](t, ctx, `fieldsync.deviceID`); got != installID {
		t.Errorf("the install's device id changed from %s to %s", installID, got)
	}
	if n := e.notesOn(id)["written before the token expired"]; n != 1 {
		t.Errorf("the note is on the server %d times", n)
	}
}

// TestFieldAppScreens: the month, the fault report, the sync status, and signing out, which
// wipes the phone only after a warning that lists the unsent work.
func TestFieldAppScreens(t *testing.T) {
	e := newEnv(t)
	month := time.Now().UTC().Format("2006-01")
	e.must("POST", "/api/v1/months/"+month+"/compile", e.coord, map[string]any{}, 200, nil)
	// A critical ticket whose response deadline is already past: overdue, and first.
	e.must("PUT", "/api/v1/settings", e.login("admin"), map[string]any{"response_minutes_critical": 0}, 200, nil)
	var late map[string]any
	e.must("POST", "/api/v1/tickets", e.coord, map[string]any{"customer_id": e.cust, "site_id": e.site, "asset_id": e.asset,
		"fault_symptoms": "app: 生产线停机 line down", "urgency": "critical", "agreed_handling": "visit"}, 201, &late)
	e.dispatch(late["id"].(string), "tech1")
	px := newProxy(t, func() string { return e.addr })
	ctx, closeTab := tab(t, phone(t, "zh-CN"))
	defer closeTab()
	appLogin(t, ctx, px.base(), "tech1")
	until(t, ctx, "the tickets", `document.querySelectorAll('#ticket-list a.ticket').length >= 3`, 30*time.Second)
	shotTop(t, ctx, "app-tickets.png")
	// Nearest deadline first; the search narrows the list.
	dues := eval[[]string](t, ctx, `[...document.querySelectorAll('#ticket-list a.ticket')].map(a => a.dataset.due)`)
	for i := 1; i < len(dues); i++ {
		if dues[i] != "" && (dues[i-1] == "" || dues[i] < dues[i-1]) {
			t.Errorf("the list is not nearest deadline first: %v", dues)
		}
	}
	first := eval[string](t, ctx, `document.querySelector('#ticket-list a.ticket').dataset.number`)
	if first != late["number"] || !eval[bool](t, ctx, `document.querySelector('#ticket-list a.ticket').classList.contains('overdue') && document.querySelector('#ticket-list a.ticket').innerText.includes('已超时')`) {
		t.Errorf("the overdue ticket %v is not first and marked overdue: %v", late["number"], eval[string](t, ctx, `document.querySelector('#ticket-list').innerText`))
	}
	setField(t, ctx, "#search", first[len(first)-4:])
	until(t, ctx, "the search result", `[...document.querySelectorAll('#ticket-list a.ticket')].map(a => a.dataset.number).join() === '`+first+`'`, 20*time.Second)
	setField(t, ctx, "#search", "")

	tap(t, ctx, `#tabs a[href="#/month"]`)
	until(t, ctx, "my month", `!!document.querySelector('#month-row dl')`, 30*time.Second)
	if txt := eval[string](t, ctx, `document.querySelector('#month-row').innerText`); !strings.Contains(txt, "计数服务") {
		t.Errorf("month row: %q", txt)
	}
	shotTop(t, ctx, "app-month.png")

	// A fault noticed at a site arrives unverified for a coordinator.
	tap(t, ctx, `#tabs a[href="#/report"]`)
	until(t, ctx, "the report form", `!!document.querySelector('#report-customer option')`, 20*time.Second)
	setField(t, ctx, "#report-symptoms", "隔壁机组也有异响 the next unit hums too")
	shotTop(t, ctx, "app-report.png")
	tap(t, ctx, "#report button[type=submit]")
	until(t, ctx, "the report sent", `fieldsync.records('ticket').then(r => r.some(x => x.data.source === 'technician_report' && (x.data.fault_symptoms || '').startsWith('隔壁') && !x.pending))`, 30*time.Second)
	var list struct{ Items []map[string]any }
	e.must("GET", "/api/v1/tickets?status=reported", e.coord, nil, 200, &list)
	found := false
	for _, tk := range list.Items {
		if tk["fault_symptoms"] == "隔壁机组也有异响 the next unit hums too" {
			found = tk["verified"] == false && tk["source"] == "technician_report"
		}
	}
	if !found {
		t.Errorf("the report is not on the server as an unverified technician report: %v", list.Items)
	}

	// Signing out with unsent work: a warning lists it; keeping it keeps it.
	var tickets struct{ Items []map[string]any }
	e.must("GET", "/api/v1/tickets?assignee_id="+e.users["tech1"], e.coord, nil, 200, &tickets)
	id := tickets.Items[0]["id"].(string)
	offline(t, ctx, px, true)
	appNote(t, ctx, id, "do not lose me")
	tap(t, ctx, `#tabs a[href="#/status"]`)
	until(t, ctx, "the sync status", `!!document.querySelector('#sync-state') && !!document.querySelector('#outbox')`, 20*time.Second)
	shotTop(t, ctx, "app-status.png")
	tap(t, ctx, "#sign-out")
	until(t, ctx, "the warning", `!!document.querySelector('.dialog .lost')`, 20*time.Second)
	if txt := eval[string](t, ctx, `document.querySelector('.dialog').innerText`); !strings.Contains(txt, "do not lose me") {
		t.Errorf("the warning does not list the unsent note: %q", txt)
	}
	tap(t, ctx, "#dialog-no")
	if n := eval[int](t, ctx, `fieldsync.state.pending`); n != 1 || !eval[bool](t, ctx, `fieldsync.loggedIn`) {
		t.Fatalf("keeping the work: %d pending", n)
	}
	tap(t, ctx, "#sign-out")
	tap(t, ctx, "#dialog-yes")
	until(t, ctx, "the login screen after signing out", `!!document.querySelector('#login')`, 20*time.Second)
	if n := eval[int](t, ctx, `fieldsync.records('ticket').then(r => r.length)`); n != 0 {
		t.Errorf("%d tickets left on the phone after signing out", n)
	}
}

// shotTop takes a screenshot from the top of the page.
func shotTop(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	eval[bool](t, ctx, `(() => { window.scrollTo(0, 0); return true; })()`)
	time.Sleep(300 * time.Millisecond) // let the scroll settle
	shot(t, ctx, name)
}

func chromedpReload() chromedp.Action[chromedp.Void] { return chromedp.Reload() }

// TestFieldAppHTTPFallback: a network that refuses WebSocket upgrades. The app falls back to
// the HTTP endpoints by itself (the server answers HTTP, so it is not simply offline), syncs
// the tickets, and pushes work done offline exactly once.
func TestFieldAppHTTPFallback(t *testing.T) {
	e := newEnv(t)
	id := e.newTicket("app: no websockets here")
	e.dispatch(id, "tech1")
	px := newProxy(t, func() string { return e.addr })
	px.mu.Lock()
	px.noWS = true
	px.mu.Unlock()
	ctx, closeTab := tab(t, phone(t, "zh-CN"))
	defer closeTab()
	appLogin(t, ctx, px.base(), "tech1")
	until(t, ctx, "the tickets over HTTP", `fieldsync.record('ticket', '`+id+`').then(r => !!r) && fieldsync.state.transport === 'http'`, 60*time.Second)
	offline(t, ctx, px, true)
	appNote(t, ctx, id, "sent over the fallback")
	offline(t, ctx, px, false)
	until(t, ctx, "the note up over HTTP", `fieldsync.state.pending === 0 && fieldsync.state.connected`, 60*time.Second)
	if n := e.notesOn(id)["sent over the fallback"]; n != 1 {
		t.Errorf("the note is on the server %d times", n)
	}
	e.dispatch(e.newTicket("app: polled dispatch"), "tech1")
	until(t, ctx, "a dispatch by polling", `fieldsync.records('ticket').then(r => r.some(x => x.data.fault_symptoms === 'app: polled dispatch'))`, 30*time.Second)
}

// TestFieldAppWithoutServiceWorker: a browser without service workers (WeChat's on iOS, some
// WebViews). The app works while the page stays open: offline work is kept in IndexedDB and
// goes up once when the network returns, even after a reload made with the network back.
func TestFieldAppWithoutServiceWorker(t *testing.T) {
	e := newEnv(t)
	id := e.newTicket("app: no service worker")
	e.dispatch(id, "tech1")
	px := newProxy(t, func() string { return e.addr })
	ctx, closeTab := tab(t, phone(t, "zh-CN"))
	defer closeTab()
	do(t, ctx, "a browser without service workers", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `delete Navigator.prototype.serviceWorker;`})
		return err
	}))
	appLogin(t, ctx, px.base(), "tech1")
	if eval[bool](t, ctx, `'serviceWorker' in navigator`) {
		t.Fatal("the browser still has service workers")
	}
	until(t, ctx, "the ticket", `fieldsync.record('ticket', '`+id+`').then(r => !!r)`, 30*time.Second)
	offline(t, ctx, px, true)
	do(t, ctx, "open the ticket", chromedp.Navigate(px.base()+"/app/#/t/"+id)) // a hash change: no load
	until(t, ctx, "the ticket screen offline", `!!document.querySelector('#steps button[data-action="accept"]')`, 20*time.Second)
	tap(t, ctx, `#steps button[data-action="accept"]`)
	setField(t, ctx, "#note", "kept without a service worker")
	tap(t, ctx, "#add-note")
	until(t, ctx, "two changes kept", `fieldsync.state.pending === 2`, 20*time.Second)
	offline(t, ctx, px, false)
	do(t, ctx, "reload with the network back", chromedp.Reload())
	until(t, ctx, "the work up", `!!window.fieldsync && fieldsync.state.pending === 0 && fieldsync.state.connected`, 60*time.Second)
	if n := e.notesOn(id)["kept without a service worker"]; n != 1 {
		t.Errorf("the note is on the server %d times", n)
	}
	if st := e.ticket(id)["status"]; st != "accepted" {
		t.Errorf("the ticket is %v on the server", st)
	}
}

// TestFieldAppMoney: offline, tech1 asks to take a taxi, records a bus fare and a parts sale
// on the phone; back online they reach the server; the manager approves the taxi and the
// phone records the fare against the approval. A malformed amount is refused on the phone.
func TestFieldAppMoney(t *testing.T) {
	e := newEnv(t)
	id := e.newTicket("money on the phone")
	e.dispatch(id, "tech1")
	px := newProxy(t, func() string { return e.addr })
	ctx, closeTab := tab(t, phone(t, "zh-CN"))
	defer closeTab()
	appLogin(t, ctx, px.base(), "tech1")
	until(t, ctx, "the customer on the phone", `fieldsync.records('customer').then(r => r.length > 0)`, 30*time.Second)
	offline(t, ctx, px, true)
	tap(t, ctx, `#tabs a[href="#/money"]`)
	until(t, ctx, "the money screen", `!!document.querySelector('#money-request')`, 20*time.Second)
	setField(t, ctx, "#req-amount", "50.001")
	setField(t, ctx, "#req-reason", "配件太重 heavy part")
	tap(t, ctx, "#money-request button[type=submit]")
	until(t, ctx, "the amount refused on the phone", `document.querySelector('#req-error').textContent.includes('12.50')`, 10*time.Second)
	setField(t, ctx, "#req-amount", "50")
	tap(t, ctx, "#money-request button[type=submit]")
	until(t, ctx, "the request saved and listed", `document.querySelectorAll('#money-mine li').length === 1`, 10*time.Second)
	setField(t, ctx, "#exp-amount", "6")
	tap(t, ctx, "#money-expense button[type=submit]")
	until(t, ctx, "the bus fare saved and listed", `document.querySelectorAll('#money-mine li').length === 2`, 10*time.Second)
	setField(t, ctx, "#money-sale .sale-line .item", "硬盘 2TB drive")
	setField(t, ctx, "#money-sale .sale-line .qty", "2")
	setField(t, ctx, "#money-sale .sale-line .price", "500")
	shotTop(t, ctx, "app-money.png")
	tap(t, ctx, "#money-sale button[type=submit]")
	until(t, ctx, "the sale saved and listed", `document.querySelectorAll('#money-mine li').length === 3`, 10*time.Second)

	offline(t, ctx, px, false)
	until(t, ctx, "everything sent", `fieldsync.state.pending === 0`, 30*time.Second)
	var approvals, expenses, sales struct{ Items []map[string]any }
	e.must("GET", "/api/v1/approvals?technician_id="+e.users["tech1"], e.coord, nil, 200, &approvals)
	e.must("GET", "/api/v1/expenses?technician_id="+e.users["tech1"], e.coord, nil, 200, &expenses)
	e.must("GET", "/api/v1/sales?technician_id="+e.users["tech1"], e.coord, nil, 200, &sales)
	if len(approvals.Items) != 1 || fmt.Sprint(approvals.Items[0]["amount_fen"]) != "5000" || approvals.Items[0]["kind"] != "taxi" {
		t.Fatalf("approvals on the server %v", approvals.Items)
	}
	if len(expenses.Items) != 1 || fmt.Sprint(expenses.Items[0]["amount_fen"]) != "600" || len(sales.Items) != 1 || fmt.Sprint(sales.Items[0]["total_fen"]) != "100000" {
		t.Fatalf("expenses %v sales %v", expenses.Items, sales.Items)
	}
	taxi := approvals.Items[0]["id"].(string)
	e.must("POST", "/api/v1/approvals/"+taxi+"/actions/approve", e.login("manager"), map[string]any{"note": "同意"}, 200, nil)
	until(t, ctx, "the approval on the phone", `fieldsync.record('approval', '`+taxi+`').then(r => r && r.data.status === 'approved')`, 30*time.Second)
	tap(t, ctx, `#tabs a[href="#/"]`)
	tap(t, ctx, `#tabs a[href="#/money"]`)
	until(t, ctx, "the approval to choose", `!!document.querySelector('#exp-approval option[value="`+taxi+`"]')`, 20*time.Second)
	eval[bool](t, ctx, `(() => { document.querySelector('#exp-kind').value = 'taxi'; document.querySelector('#exp-approval').value = '`+taxi+`'; return true; })()`)
	setField(t, ctx, "#exp-amount", "45")
	tap(t, ctx, "#money-expense button[type=submit]")
	until(t, ctx, "the taxi fare sent", `fieldsync.records('expense').then(r => r.length === 2 && r.every(x => !x.pending))`, 30*time.Second)
	if rej := eval[int](t, ctx, `fieldsync.rejections().then(r => r.length)`); rej != 0 {
		t.Fatalf("%d rejections", rej)
	}
	e.must("GET", "/api/v1/expenses?kind=taxi&technician_id="+e.users["tech1"], e.coord, nil, 200, &expenses)
	if len(expenses.Items) != 1 || expenses.Items[0]["approval_id"] != taxi || fmt.Sprint(expenses.Items[0]["amount_fen"]) != "4500" {
		t.Fatalf("the taxi fare on the server %v", expenses.Items)
	}
}
