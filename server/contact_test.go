package server

import (
	"strconv"
	"strings"
	"testing"
)

// TestContactDetailsEditable: the email and phone the alert channels use can be changed on an
// existing user, by an admin (PATCH /users/{id}) and by the user for themselves (PATCH /me).
// A bad address or number is refused naming the field, in Chinese and English, and changes
// nothing; through /me a user changes nothing else, and no one else's.
func TestContactDetailsEditable(t *testing.T) {
	e := newEnv(t, false)
	admin := e.login("admin", "admin-pass-1")
	u := e.must(e.do("POST", "/api/v1/users", admin, map[string]any{"username": "wangfang", "name": "王芳", "role": "coordinator",
		"phone": "13800000001", "email": "wangfang@example.com", "password": "coordinator-pw-1"}), 201).Body
	id := u["id"].(string)
	version := func() string {
		t.Helper()
		for _, it := range e.must(e.do("GET", "/api/v1/users", admin, nil), 200).Body["items"].([]any) {
			if m := it.(map[string]any); m["id"] == id {
				return strconv.Itoa(int(m["version"].(float64)))
			}
		}
		t.Fatalf("no user %s", id)
		return ""
	}
	user := func() map[string]any {
		t.Helper()
		for _, it := range e.must(e.do("GET", "/api/v1/users", admin, nil), 200).Body["items"].([]any) {
			if m := it.(map[string]any); m["id"] == id {
				return m
			}
		}
		return nil
	}
	refused := func(r resp, field string) {
		t.Helper()
		er, _ := r.Body["error"].(map[string]any)
		msg, _ := er["message"].(string)
		if r.Status != 400 || r.errField() != field || !strings.ContainsFunc(msg, func(c rune) bool { return c >= 0x4e00 && c <= 0x9fff }) || !strings.Contains(msg, field) {
			t.Errorf("want 400 naming %s in Chinese and English, got %d %s", field, r.Status, r.Raw)
		}
	}

	// The admin.
	r := e.must(e.do("PATCH", "/api/v1/users/"+id, admin, map[string]any{"email": "fang.wang@example.com", "phone": "+86 138-0000-0009"}, "If-Match", version()), 200)
	if r.Body["email"] != "fang.wang@example.com" || r.Body["phone"] != "+8613800000009" {
		t.Errorf("after the admin's change: email %v phone %v", r.Body["email"], r.Body["phone"])
	}
	refused(e.do("PATCH", "/api/v1/users/"+id, admin, map[string]any{"email": "fang at example"}, "If-Match", version()), "email")
	refused(e.do("PATCH", "/api/v1/users/"+id, admin, map[string]any{"phone": "call me", "email": "ok@example.com"}, "If-Match", version()), "phone")
	if got := user(); got["email"] != "fang.wang@example.com" || got["phone"] != "+8613800000009" {
		t.Errorf("refused changes changed the user: %v %v", got["email"], got["phone"])
	}

	// The user, for themselves.
	ct := e.login("wangfang", "coordinator-pw-1")
	r = e.must(e.do("PATCH", "/api/v1/me", ct, map[string]any{"email": "me@example.com", "phone": "13911112222"}), 200)
	if r.Body["email"] != "me@example.com" || r.Body["phone"] != "13911112222" {
		t.Errorf("PATCH /me answered %s", r.Raw)
	}
	refused(e.do("PATCH", "/api/v1/me", ct, map[string]any{"phone": "12"}), "phone")
	refused(e.do("PATCH", "/api/v1/me", ct, map[string]any{"email": "<me@example.com>"}), "email")
	refused(e.do("PATCH", "/api/v1/me", ct, map[string]any{"role": "admin", "email": "x@example.com"}), "role")
	if got := user(); got["role"] != "coordinator" || got["email"] != "me@example.com" || got["phone"] != "13911112222" {
		t.Errorf("refused changes through /me changed the user: %v", got)
	}
	// Clearing a value is allowed.
	if r := e.must(e.do("PATCH", "/api/v1/me", ct, map[string]any{"phone": ""}), 200); r.Body["phone"] != "" {
		t.Errorf("clearing the phone: %s", r.Raw)
	}
	// No one else's: a coordinator may not patch a user.
	adminID := e.must(e.do("GET", "/api/v1/me", admin, nil), 200).Body["user"].(map[string]any)["id"].(string)
	if r := e.do("PATCH", "/api/v1/users/"+adminID, ct, map[string]any{"email": "evil@example.com"}, "If-Match", "1"); r.Status != 403 {
		t.Errorf("a coordinator patching the admin: %d %s", r.Status, r.Raw)
	}
}
