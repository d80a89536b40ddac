package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
)

func TestLoginAndMe(t *testing.T) {
	env := newEnv(t, false)
	tok := env.login("admin", "admin-pass-1")
	if len(tok) < 32 {
		t.Fatalf("token %q is shorter than 128 bits of randomness", tok)
	}
	r := env.must(env.do("GET", "/api/v1/me", tok, nil), 200)
	u := r.Body["user"].(map[string]any)
	if str(u, "username") != "admin" || str(u, "role") != "admin" {
		t.Errorf("me = %v", u)
	}
	if r.Header["X-Request-Id"] == "" {
		t.Error("no X-Request-Id header")
	}
	// The token is stored hashed: the raw token is nowhere in the database.
	var n int
	env.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM tokens WHERE hash = ?`, tok).Scan(&n)
	if n != 0 {
		t.Error("the raw token is stored in the database")
	}
	env.must(env.do("POST", "/api/v1/auth/logout", tok, nil), 204)
	if r := env.do("GET", "/api/v1/me", tok, nil); r.Status != 401 || r.errCode() != schema.CodeUnauthenticated {
		t.Errorf("after logout: %d %s", r.Status, r.Raw)
	}
}

func TestLoginFailuresDoNotRevealUsers(t *testing.T) {
	env := newEnv(t, true)
	admin := env.login("admin", DemoPassword)
	env.must(env.do("POST", "/api/v1/users", admin, map[string]any{"username": "gone", "name": "离职 Gone", "role": "technician", "password": "password-123"}), 201)
	if err := env.srv.Engine.SetActive(context.Background(), schema.System, "gone", false); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, c := range []struct{ user, pw string }{
		{"coord", "wrong-password"},
		{"nobody-here", "wrong-password"},
		{"gone", "password-123"},
	} {
		r := env.do("POST", "/api/v1/auth/login", "", map[string]string{"username": c.user, "password": c.pw})
		if r.Status != 401 || r.errCode() != schema.CodeUnauthenticated {
			t.Errorf("%s: %d %s", c.user, r.Status, r.Raw)
		}
		bodies = append(bodies, string(r.Raw))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("login failures differ, revealing which usernames exist:\n%s", strings.Join(bodies, "\n"))
	}
}

func TestLoginRateLimited(t *testing.T) {
	env := newEnv(t, false)
	var last resp
	for range 12 {
		last = env.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "nope-nope"})
	}
	if last.Status != 429 || last.errCode() != schema.CodeRateLimited || last.Header["Retry-After"] == "" {
		t.Fatalf("12th failed attempt: %d %s", last.Status, last.Raw)
	}
	// Even the right password is refused while limited.
	if r := env.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-pass-1"}); r.Status != 429 {
		t.Errorf("right password while limited: %d", r.Status)
	}
}

func TestSuccessfulLoginsAreNotLimited(t *testing.T) {
	env := newEnv(t, false)
	for range 30 {
		env.login("admin", "admin-pass-1")
	}
}

func TestTokenExpiry(t *testing.T) {
	// The server's clock is given at its start (setting Engine.Now on a running server
	// races with its writer) and moved on by ahead.
	var ahead atomic.Int64
	env := newEnv(t, false, func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	})
	tok := env.login("admin", "admin-pass-1")
	env.must(env.do("GET", "/api/v1/me", tok, nil), 200)
	ahead.Store(int64(13 * time.Hour))
	if r := env.do("GET", "/api/v1/me", tok, nil); r.Status != 401 {
		t.Errorf("13 h after login: %d %s", r.Status, r.Raw)
	}
}

func TestDeviceLoginAndRevocation(t *testing.T) {
	env := newEnv(t, true)
	dtok := env.deviceLogin("tech1", DemoPassword, "phone-a")
	if r := env.do("POST", "/mobile/v1/sync/pull", dtok, map[string]any{"checkpoint": ""}); r.Status != 200 {
		t.Fatalf("pull with a device token: %d %s", r.Status, r.Raw)
	}
	// A web token is not a device token.
	web := env.login("tech1", DemoPassword)
	if r := env.do("POST", "/mobile/v1/sync/pull", web, map[string]any{"checkpoint": ""}); r.Status != 401 {
		t.Errorf("pull with a web token: %d", r.Status)
	}
	// Technicians cannot use the coordinator API.
	if r := env.do("GET", "/api/v1/tickets", web, nil); r.Status != 403 || r.errCode() != schema.CodeForbidden {
		t.Errorf("technician on the coordinator API: %d %s", r.Status, r.Raw)
	}
	coord := env.login("coord", DemoPassword)
	devs := env.must(env.do("GET", "/api/v1/devices", coord, nil), 200).Body["items"].([]any)
	var id string
	for _, d := range devs {
		if m := d.(map[string]any); str(m, "device_id") == "phone-a" {
			id = str(m, "id")
		}
	}
	if id == "" {
		t.Fatalf("device phone-a not listed: %v", devs)
	}
	env.must(env.do("POST", "/api/v1/devices/"+id+"/revoke", coord, nil), 200)
	if r := env.do("POST", "/mobile/v1/sync/pull", dtok, map[string]any{"checkpoint": ""}); r.Status != 401 {
		t.Errorf("revoked device still pulls: %d", r.Status)
	}
	// The revoked device cannot log in again either.
	r := env.do("POST", "/mobile/v1/auth/login", "", map[string]string{"username": "tech1", "password": DemoPassword, "device_id": "phone-a"})
	if r.Status != 403 {
		t.Errorf("revoked device logging in again: %d %s", r.Status, r.Raw)
	}
	if r := env.do("POST", "/api/v1/devices/nope/revoke", coord, nil); r.Status != 404 || r.errField() != "id" {
		t.Errorf("revoking an unknown device: %d %s", r.Status, r.Raw)
	}
}

func TestErrorShapes(t *testing.T) {
	env := newEnv(t, false)
	tok := env.login("admin", "admin-pass-1")
	big := strings.Repeat("x", DefaultBodyLimit+10)
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"malformed JSON", "POST", "/api/v1/customers", `{"name": `, 400, schema.CodeBadRequest, ""},
		{"not an object", "POST", "/api/v1/customers", `[1,2]`, 400, schema.CodeBadRequest, ""},
		{"wrong type", "POST", "/api/v1/customers", `{"name": 12}`, 400, schema.CodeValidation, "name"},
		{"unknown field", "POST", "/api/v1/customers", `{"name": "x", "colour": "red"}`, 400, schema.CodeBadRequest, "colour"},
		{"missing required", "POST", "/api/v1/customers", `{"phone": "1"}`, 400, schema.CodeValidation, "name"},
		{"trailing data", "POST", "/api/v1/customers", `{"name": "x"} {}`, 400, schema.CodeBadRequest, ""},
		{"unknown route", "GET", "/api/v1/nowhere", "", 404, schema.CodeNotFound, ""},
		{"wrong method", "DELETE", "/api/v1/customers", "", 405, schema.CodeMethodNotAllowed, ""},
		{"login wrong type", "POST", "/api/v1/auth/login", `{"username": 5}`, 400, schema.CodeBadRequest, "username"},
		{"no token", "GET", "/api/v1/customers", "", 401, schema.CodeUnauthenticated, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token := tok
			if c.code == schema.CodeUnauthenticated {
				token = ""
			}
			var body any
			if c.body != "" {
				body = c.body
			}
			r := env.do(c.method, c.path, token, body)
			if r.Status != c.status || r.errCode() != c.code || r.errField() != c.field {
				t.Fatalf("got %d %s, want %d %s field %q", r.Status, r.Raw, c.status, c.code, c.field)
			}
			e := r.Body["error"].(map[string]any)
			if str(e, "message") == "" {
				t.Error("error without a message")
			}
		})
	}
	t.Run("body over limit", func(t *testing.T) {
		// fasthttp answers as soon as it reads a Content-Length over the limit, so the
		// request is written by hand and the answer read before the body is sent.
		base := env.start()
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", tok, len(big))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Error struct{ Code string } }
		json.NewDecoder(res.Body).Decode(&body)
		if res.StatusCode != 413 || body.Error.Code != schema.CodeTooLarge {
			t.Errorf("got %d %q, want 413 too_large", res.StatusCode, body.Error.Code)
		}
	})
	// Nothing was created by any of the bad requests.
	r := env.must(env.do("GET", "/api/v1/customers", tok, nil), 200)
	if n := r.Body["total"].(float64); n != 0 {
		t.Errorf("%v customers after only bad requests", n)
	}
}

func TestPanicBecomesInternalWithRequestID(t *testing.T) {
	env := newEnv(t, false)
	env.srv.App.Get("/boom", func(c *fiber.Ctx) error { panic("kaboom") })
	r := env.do("GET", "/boom", "", nil)
	if r.Status != 500 || r.errCode() != schema.CodeInternal {
		t.Fatalf("panic: %d %s", r.Status, r.Raw)
	}
	msg := str(r.Body["error"].(map[string]any), "message")
	if strings.Contains(msg, "kaboom") || !strings.Contains(msg, r.Header["X-Request-Id"]) {
		t.Errorf("internal error message %q leaks the panic or lacks the request id %s", msg, r.Header["X-Request-Id"])
	}
}

func TestHealthAndReady(t *testing.T) {
	env := newEnv(t, false)
	env.must(env.do("GET", "/healthz", "", nil), 200)
	env.must(env.do("GET", "/readyz", "", nil), 200)
}

func TestChineseTextAndQuotesRoundTrip(t *testing.T) {
	env := newEnv(t, false)
	tok := env.login("admin", "admin-pass-1")
	name := `上海“精工”仪器 'Quote' "双引号" ; DROP TABLE records; --`
	r := env.must(env.do("POST", "/api/v1/customers", tok, map[string]any{"name": name, "address": "浙江省杭州市西湖区文三路 90 号"}), 201)
	id := str(r.Body, "id")
	got := env.must(env.do("GET", "/api/v1/customers/"+id, tok, nil), 200)
	if str(got.Body, "name") != name || str(got.Body, "address") != "浙江省杭州市西湖区文三路 90 号" {
		t.Errorf("round trip changed the text: %q", got.Body["name"])
	}
	list := env.must(env.do("GET", "/api/v1/customers?q=精工", tok, nil), 200)
	if list.Body["total"].(float64) != 1 {
		t.Errorf("search by Chinese text found %v", list.Body["total"])
	}
}

// loginFrom posts a login from the loopback address local (127.0.0.x) to the server at base,
// so that tests can play several client addresses.
func loginFrom(t *testing.T, base, local, path string, body map[string]string) resp {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	j, _ := json.Marshal(body)
	res, err := c.Post(base+path, "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatalf("login from %s: %v", local, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{Status: res.StatusCode, Raw: raw, Header: map[string]string{"Retry-After": res.Header.Get("Retry-After")}}
	json.Unmarshal(raw, &out.Body)
	return out
}

// Every string of both logins is bounded before anything is kept or hashed: huge values are
// refused as validation errors naming the field, never become rate-limiter keys, and are not
// stored.
func TestLoginBoundsEveryString(t *testing.T) {
	env := newEnv(t, true)
	huge := strings.Repeat("x", 4<<20)
	web, mobile := "/api/v1/auth/login", "/mobile/v1/auth/login"
	for _, c := range []struct {
		name, path string
		body       map[string]string
		field      string
	}{
		{"web huge username", web, map[string]string{"username": huge, "password": "wrong-password"}, "username"},
		{"web 65-character username", web, map[string]string{"username": strings.Repeat("好", 65), "password": "wrong-password"}, "username"},
		{"web control character", web, map[string]string{"username": "coord\x00", "password": "wrong-password"}, "username"},
		{"web huge password", web, map[string]string{"username": "coord", "password": huge}, "password"},
		{"mobile huge username", mobile, map[string]string{"username": huge, "password": "wrong-password", "device_id": "p1"}, "username"},
		{"mobile huge device_id", mobile, map[string]string{"username": "tech1", "password": DemoPassword, "device_id": huge}, "device_id"},
		{"mobile huge device_name", mobile, map[string]string{"username": "tech1", "password": DemoPassword, "device_id": "p1", "device_name": huge}, "device_name"},
		{"mobile device_name with a newline", mobile, map[string]string{"username": "tech1", "password": DemoPassword, "device_id": "p1", "device_name": "a\nb"}, "device_name"},
	} {
		r := env.do("POST", c.path, "", c.body)
		if r.Status != 400 || r.errCode() != schema.CodeValidation || r.errField() != c.field {
			t.Errorf("%s: %d %.200s; want 400 validation on %s", c.name, r.Status, r.Raw, c.field)
		}
	}
	if n := env.srv.gate.size(); n != 0 {
		t.Errorf("the rate limiter keeps %d entries after refused input", n)
	}
	var devs int
	env.srv.DB.R.QueryRow(`SELECT COUNT(*) FROM devices`).Scan(&devs)
	if devs != 0 {
		t.Errorf("%d devices stored from refused logins", devs)
	}
}

// The limiter's memory is bounded however many distinct usernames and addresses fail, and
// what it keeps is released once the window has passed.
func TestLoginLimiterMemoryIsBounded(t *testing.T) {
	g := newLoginGate(50)
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	for i := range 5000 {
		g.admit(fmt.Sprintf("user-%d", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
	}
	if n := g.size(); n > 3*50 {
		t.Fatalf("%d limiter entries after 5000 distinct failures; the bound is %d", n, 3*50)
	}
	g.admit("one-more", "10.9.9.9", now.Add(2*loginWindow))
	if n := g.size(); n != 3 {
		t.Errorf("%d limiter entries a window later; want only the 3 of the last failure", n)
	}
}

// A stranger cannot lock someone else out: failures are counted per (username, address)
// pair, and over a username's or an address's limit the password is still checked, at a
// slower pace, so the right password gets in.
func TestLoginLimitDoesNotLockOutOthers(t *testing.T) {
	var mu gosync.Mutex
	offset := time.Duration(0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	advance := func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() }
	dir := t.TempDir()
	srv, err := New(context.Background(), Config{DataDir: dir, DB: testpg.For(t, dir), Demo: true, Now: clock,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	env := &testEnv{t: t, srv: srv, dir: dir}
	base := env.start()
	login := "/api/v1/auth/login"

	// A stranger at 127.0.0.2 guesses the manager's password.
	var last resp
	for range 12 {
		last = loginFrom(t, base, "127.0.0.2", login, map[string]string{"username": "manager", "password": "guess-guess"})
	}
	if last.Status != 429 {
		t.Fatalf("12th guess from one address: %d %s; want 429", last.Status, last.Raw)
	}
	// The manager at another address gets in, at the latest after the wait the server
	// names, while the stranger keeps guessing.
	r := loginFrom(t, base, "127.0.0.3", login, map[string]string{"username": "manager", "password": DemoPassword})
	if r.Status == 429 {
		wait, err := time.ParseDuration(r.Header["Retry-After"] + "s")
		if err != nil || wait > 60*time.Second {
			t.Fatalf("manager limited with Retry-After %q", r.Header["Retry-After"])
		}
		advance(wait)
		if g := loginFrom(t, base, "127.0.0.2", login, map[string]string{"username": "manager", "password": "guess-again"}); g.Status != 429 {
			t.Errorf("the stranger's guess after %v: %d; want 429", wait, g.Status)
		}
		r = loginFrom(t, base, "127.0.0.3", login, map[string]string{"username": "manager", "password": DemoPassword})
	}
	if r.Status != 200 {
		t.Fatalf("the manager with the right password, another address: %d %s", r.Status, r.Raw)
	}

	// 50 unknown usernames from one address do not lock out the office behind it.
	advance(2 * time.Minute)
	for i := range 50 {
		loginFrom(t, base, "127.0.0.4", login, map[string]string{"username": fmt.Sprintf("nobody-%d", i), "password": "guess-guess"})
	}
	r = loginFrom(t, base, "127.0.0.4", login, map[string]string{"username": "coord", "password": DemoPassword})
	if r.Status == 429 {
		wait, err := time.ParseDuration(r.Header["Retry-After"] + "s")
		if err != nil || wait > 60*time.Second {
			t.Fatalf("coord limited with Retry-After %q", r.Header["Retry-After"])
		}
		advance(wait)
		r = loginFrom(t, base, "127.0.0.4", login, map[string]string{"username": "coord", "password": DemoPassword})
	}
	if r.Status != 200 {
		t.Fatalf("coord with the right password behind a spraying address: %d %s", r.Status, r.Raw)
	}
	// Guessing stays slow: the sprayer's next guesses are refused.
	if r := loginFrom(t, base, "127.0.0.4", login, map[string]string{"username": "nobody-x", "password": "guess-guess"}); r.Status != 429 {
		t.Errorf("a guess right after: %d; want 429", r.Status)
	}
}

// Failed logins are logged with the client address and the username.
func TestFailedLoginsAreLogged(t *testing.T) {
	var buf syncBuffer
	dir := t.TempDir()
	srv, err := New(context.Background(), Config{DataDir: dir, DB: testpg.For(t, dir), AdminPassword: "admin-pass-1",
		Log: slog.New(slog.NewJSONHandler(&buf, nil)), Out: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	env := &testEnv{t: t, srv: srv, dir: dir}
	base := env.start()
	loginFrom(t, base, "127.0.0.5", "/api/v1/auth/login", map[string]string{"username": "admin", "password": "not-it-at-all"})
	var found bool
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		if m["msg"] == "login failed" && m["username"] == "admin" && m["address"] == "127.0.0.5" {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line {msg: login failed, username: admin, address: 127.0.0.5} in:\n%s", buf.String())
	}
}

type syncBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The commonest passwords and the username itself are refused, wherever a password is set.
func TestWeakPasswordsRefused(t *testing.T) {
	env := newEnv(t, false)
	admin := env.login("admin", "admin-pass-1")
	for _, pw := range []string{"12345678", "password", "Password1", "qwerty123", "88888888", "iloveyou", "woaini1314", "wang.fang", "WANG.FANG"} {
		r := env.do("POST", "/api/v1/users", admin, map[string]any{"username": "wang.fang", "name": "王芳", "role": "coordinator", "password": pw})
		if r.Status != 400 || r.errCode() != schema.CodeValidation || r.errField() != "password" {
			t.Errorf("password %q: %d %s; want 400 validation on password", pw, r.Status, r.Raw)
		}
	}
	env.must(env.do("POST", "/api/v1/users", admin, map[string]any{"username": "wang.fang", "name": "王芳", "role": "coordinator", "password": "Cang-Shan-Er-Hai-7"}), 201)
	if r := env.do("POST", "/api/v1/auth/password", admin, map[string]any{"current_password": "admin-pass-1", "new_password": "11111111"}); r.Status != 400 || r.errField() != "new_password" {
		t.Errorf("changing to a common password: %d %s", r.Status, r.Raw)
	}
}

// The first admin's random password (printed once at first start) must be changed at the
// first login: until then the token only reaches /me, logout and the password change, and
// no device may log in with it. Demo accounts are exempt.
func TestFirstAdminMustChangePassword(t *testing.T) {
	var printed string
	srv, err := New(context.Background(), Config{DataDir: t.TempDir(), DB: testpg.For(t, t.TempDir()), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Out: func(s string) { printed += s }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	env := &testEnv{t: t, srv: srv}
	_, first, ok := strings.Cut(printed, "password ")
	first, _, _ = strings.Cut(first, " ")
	if !ok || len(first) < 12 {
		t.Fatalf("no password printed: %q", printed)
	}
	r := env.must(env.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": first}), 200)
	if r.Body["must_change_password"] != true {
		t.Fatalf("first login does not ask for a new password: %s", r.Raw)
	}
	tok := str(r.Body, "token")
	if r := env.do("GET", "/api/v1/users", tok, nil); r.Status != 403 || r.errField() != "password" {
		t.Errorf("API before the change: %d %s; want 403 on password", r.Status, r.Raw)
	}
	if r := env.must(env.do("GET", "/api/v1/me", tok, nil), 200); r.Body["must_change_password"] != true {
		t.Errorf("/me does not say the password must change: %s", r.Raw)
	}
	if r := env.do("POST", "/mobile/v1/auth/login", "", map[string]string{"username": "admin", "password": first, "device_id": "p1"}); r.Status != 403 {
		t.Errorf("device login before the change: %d %s", r.Status, r.Raw)
	}
	if r := env.do("POST", "/api/v1/auth/password", tok, map[string]any{"current_password": "wrong-one-here", "new_password": "Cang-Shan-Er-Hai-7"}); r.Status != 400 || r.errField() != "current_password" {
		t.Errorf("wrong current password: %d %s", r.Status, r.Raw)
	}
	if r := env.do("POST", "/api/v1/auth/password", tok, map[string]any{"current_password": first, "new_password": first}); r.Status != 400 || r.errField() != "new_password" {
		t.Errorf("the same password again: %d %s", r.Status, r.Raw)
	}
	r = env.must(env.do("POST", "/api/v1/auth/password", tok, map[string]any{"current_password": first, "new_password": "Cang-Shan-Er-Hai-7"}), 200)
	fresh := str(r.Body, "token")
	if fresh == "" || r.Body["must_change_password"] == true {
		t.Fatalf("password change answer: %s", r.Raw)
	}
	env.must(env.do("GET", "/api/v1/users", fresh, nil), 200)
	if r := env.do("GET", "/api/v1/me", tok, nil); r.Status != 401 {
		t.Errorf("the token from before the change still works: %d", r.Status)
	}
	if r := env.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": first}); r.Status != 401 {
		t.Errorf("the printed password still logs in: %d", r.Status)
	}
	r = env.must(env.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "Cang-Shan-Er-Hai-7"}), 200)
	if r.Body["must_change_password"] == true {
		t.Errorf("asked again after the change: %s", r.Raw)
	}

	demo := newEnv(t, true)
	if r := demo.must(demo.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": DemoPassword}), 200); r.Body["must_change_password"] == true {
		t.Errorf("a demo account must change its password: %s", r.Raw)
	}
}

// A token in use slides forward, its expiry written at most once an hour; an unused one
// still expires.
func TestTokensSlideWhileInUse(t *testing.T) {
	var mu gosync.Mutex
	var offset time.Duration
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	advance := func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() }
	dir := t.TempDir()
	srv, err := New(context.Background(), Config{DataDir: dir, DB: testpg.For(t, dir), AdminPassword: "admin-pass-1", Now: clock,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	env := &testEnv{t: t, srv: srv, dir: dir}
	tok := env.login("admin", "admin-pass-1")
	stored := func() string {
		var exp string
		env.srv.DB.R.QueryRow(`SELECT expires_at FROM tokens`).Scan(&exp)
		return exp
	}
	first := stored()
	advance(30 * time.Minute)
	env.must(env.do("GET", "/api/v1/me", tok, nil), 200)
	if got := stored(); got != first {
		t.Errorf("expiry written after 30 minutes (%s → %s); want at most one write an hour", first, got)
	}
	advance(40 * time.Minute)
	r := env.must(env.do("GET", "/api/v1/me", tok, nil), 200)
	if got := stored(); got == first || str(r.Body, "expires_at") != got {
		t.Errorf("expiry after 70 minutes in use: stored %s (was %s), answered %s", got, first, str(r.Body, "expires_at"))
	}
	advance(11*time.Hour + 50*time.Minute) // 13 h after login, 11 h 50 min after the last use
	env.must(env.do("GET", "/api/v1/me", tok, nil), 200)
	advance(12*time.Hour + time.Minute) // unused for longer than a web token lasts
	if r := env.do("GET", "/api/v1/me", tok, nil); r.Status != 401 {
		t.Errorf("a token unused for 12 h 1 min: %d", r.Status)
	}
}

// Guesses sent in parallel cannot all slip under the limit while the first ones are being
// checked: an attempt counts as soon as it is let through.
func TestParallelGuessesAreLimited(t *testing.T) {
	env := newEnv(t, false)
	base := env.start()
	var wg gosync.WaitGroup
	var mu gosync.Mutex
	checked := 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := loginFrom(t, base, "127.0.0.6", "/api/v1/auth/login", map[string]string{"username": "admin", "password": fmt.Sprintf("guess-%02d-guess", i)})
			if r.Status == 401 {
				mu.Lock()
				checked++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if checked > gateRules[0].max {
		t.Errorf("%d of 40 parallel guesses were checked; the limit is %d", checked, gateRules[0].max)
	}
}

// An admin changes a user's role, disables them (their token stops at once) and resets a
// password (the old one stops working); nobody else may.
func TestAdminManagesUsers(t *testing.T) {
	env := newEnv(t, true)
	admin := env.login("admin", DemoPassword)
	coord := env.login("coord", DemoPassword)
	var mgr map[string]any
	for _, u := range env.must(env.do("GET", "/api/v1/users", admin, nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "manager" {
			mgr = m
		}
	}
	if mgr == nil {
		t.Fatal("no demo manager")
	}
	id, ver := str(mgr, "id"), fmt.Sprint(mgr["version"])
	mtok := env.login("manager", DemoPassword)
	if r := env.do("PATCH", "/api/v1/users/"+id, coord, map[string]any{"active": false}, "If-Match", ver); r.Status != 403 {
		t.Errorf("a coordinator disabled a user: %d %s", r.Status, r.Raw)
	}
	u := env.must(env.do("PATCH", "/api/v1/users/"+id, admin, map[string]any{"role": "leader"}, "If-Match", ver), 200).Body
	if u["role"] != "leader" {
		t.Errorf("role change: %v", u)
	}
	env.must(env.do("PATCH", "/api/v1/users/"+id, admin, map[string]any{"active": false}, "If-Match", fmt.Sprint(u["version"])), 200)
	if r := env.do("GET", "/api/v1/me", mtok, nil); r.Status != 401 {
		t.Errorf("a disabled user's token still works: %d", r.Status)
	}
	if r := env.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "manager", "password": DemoPassword}); r.Status != 401 {
		t.Errorf("a disabled user logs in: %d", r.Status)
	}

	ctok := env.login("tech1", DemoPassword)
	var tech string
	for _, u := range env.must(env.do("GET", "/api/v1/users", admin, nil), 200).Body["items"].([]any) {
		if m := u.(map[string]any); m["username"] == "tech1" {
			tech = str(m, "id")
		}
	}
	if r := env.do("POST", "/api/v1/users/"+tech+"/password", admin, map[string]string{"password": "x"}); r.Status != 400 {
		t.Errorf("a too short password: %d %s", r.Status, r.Raw)
	}
	env.must(env.do("POST", "/api/v1/users/"+tech+"/password", admin, map[string]string{"password": "a-new-password-1"}), 200)
	if r := env.do("GET", "/api/v1/me", ctok, nil); r.Status != 401 {
		t.Errorf("the old session survived a password reset: %d", r.Status)
	}
	env.login("tech1", "a-new-password-1")
}
