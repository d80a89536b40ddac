package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fieldsync/internal/testpg"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	syncer "fieldsync/sync"
)

func TestMain(m *testing.M) {
	syncer.PasswordCost = bcrypt.MinCost // real bcrypt, cheap cost: the tests log in a lot
	os.Exit(m.Run())
}

// testEnv is a server on a fresh data folder, driven through app.Test (no listener) or
// through a real loopback listener (start).
type testEnv struct {
	t   *testing.T
	srv *Server
	dir string
}

// newEnv starts a server on a temporary data folder. demo seeds the demo company; without
// it there is one admin with password "admin-pass-1".
// opts change the configuration before the server is built.
func newEnv(t *testing.T, demo bool, opts ...func(*Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, DB: testpg.For(t, dir), Demo: demo, AdminPassword: "admin-pass-1",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &testEnv{t: t, srv: srv, dir: dir}
}

// start serves the app on a loopback port and returns its base URL.
func (e *testEnv) start() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go e.srv.App.Listener(ln)
	return "http://" + ln.Addr().String()
}

// resp is a decoded JSON answer.
type resp struct {
	Status int
	Body   map[string]any
	Raw    []byte
	Header map[string]string
}

// errCode returns the error code of an error answer.
func (r resp) errCode() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r resp) errField() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["field"].(string)
	return c
}

// do sends a request through app.Test. body may be nil, a string (sent as is) or any value
// (encoded as JSON). headers are pairs.
func (e *testEnv) do(method, path, token string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.srv.App.Test(req, 30_000)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{Status: res.StatusCode, Raw: raw, Header: map[string]string{}}
	for k := range res.Header {
		out.Header[k] = res.Header.Get(k)
	}
	if len(raw) > 0 && raw[0] == '{' {
		json.Unmarshal(raw, &out.Body)
	}
	return out
}

// login returns a web token.
func (e *testEnv) login(username, password string) string {
	e.t.Helper()
	r := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": username, "password": password})
	if r.Status != 200 {
		e.t.Fatalf("login %s: %d %s", username, r.Status, r.Raw)
	}
	return r.Body["token"].(string)
}

// deviceLogin returns a device token.
func (e *testEnv) deviceLogin(username, password, deviceID string) string {
	e.t.Helper()
	r := e.do("POST", "/mobile/v1/auth/login", "", map[string]string{"username": username, "password": password, "device_id": deviceID, "device_name": "phone " + deviceID})
	if r.Status != 200 {
		e.t.Fatalf("device login %s: %d %s", username, r.Status, r.Raw)
	}
	return r.Body["token"].(string)
}

// must fails the test unless the answer has the wanted status.
func (e *testEnv) must(r resp, status int) resp {
	e.t.Helper()
	if r.Status != status {
		e.t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	return r
}

// str reads a string field of a JSON object.
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
