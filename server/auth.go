package server

import (
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// Login limits. Login attempts are counted per (username, address) pair, per username and
// per client address over loginWindow; an attempt counts from the moment it is let through
// (so parallel guesses cannot all slip under a limit) and is taken back if it succeeds.
// Below its limit a key does not hold a login back; over it, a login is not refused for
// good: its password is checked at most once per the key's pace, so guessing slows to a
// trickle while the right password still gets in. A stranger's failures land on their own
// pair and address: they cannot lock out an account used from elsewhere, and only slow the
// people behind their own address.
const (
	loginWindow = time.Minute
	// loginGateKeys bounds the entries of each of the three tables.
	loginGateKeys = 10_000
)

// loginRule is the limit of one kind of key: failures in the window before the key is
// slowed, and the pace of checks once it is.
type loginRule struct {
	name string
	max  int
	pace time.Duration
}

// gateRules are the rules of the pair, username and address tables, in that order.
var gateRules = [3]loginRule{
	{"username+address", 10, 30 * time.Second},
	{"username", 10, 10 * time.Second},
	{"address", 50, 5 * time.Second},
}

// gateEntry is what is kept of one key: its latest attempts not known to have succeeded
// (at most twice its rule's max) and, once over the limit, when its next check may run.
type gateEntry struct {
	fails []time.Time
	next  time.Time
}

// loginGate holds the login counts. Its memory is bounded: at most maxKeys entries per
// table, each holding at most 2×max timestamps; entries whose attempts have aged out are
// dropped.
type loginGate struct {
	mu      gosync.Mutex
	maxKeys int
	tables  [3]map[string]*gateEntry // pair, username, address
	swept   time.Time
}

func newLoginGate(maxKeys int) *loginGate {
	g := &loginGate{maxKeys: maxKeys}
	for i := range g.tables {
		g.tables[i] = map[string]*gateEntry{}
	}
	return g
}

func gateKeys(username, addr string) [3]string {
	return [3]string{username + "\x00" + addr, username, addr}
}

// recent counts e's attempts within the window before now.
func (e *gateEntry) recent(now time.Time) int {
	n := 0
	for _, t := range e.fails {
		if now.Sub(t) < loginWindow {
			n++
		}
	}
	return n
}

// expired tells whether e holds nothing that still matters at now.
func (e *gateEntry) expired(now time.Time) bool {
	return e.recent(now) == 0 && !now.Before(e.next)
}

// admit reports whether a login of username from addr may check its password now. If so
// the attempt is counted (succeed takes it back), a key over its limit gives its slot for
// one pace, and reached names the kinds of key that this attempt brought to their limit.
// If not, wait says how long until the next check; nothing is recorded.
func (g *loginGate) admit(username, addr string, now time.Time) (ok bool, wait time.Duration, reached []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	keys := gateKeys(username, addr)
	for i, k := range keys {
		e := g.tables[i][k]
		if e != nil && e.recent(now) >= gateRules[i].max && now.Before(e.next) {
			wait = max(wait, e.next.Sub(now))
		}
	}
	if wait > 0 {
		return false, wait, nil
	}
	if now.Sub(g.swept) >= loginWindow {
		g.sweep(now)
	}
	for i, k := range keys {
		t, rule := g.tables[i], gateRules[i]
		e := t[k]
		if e == nil {
			if len(t) >= g.maxKeys {
				g.evict(t, now)
			}
			e = &gateEntry{}
			t[k] = e
		}
		if len(e.fails) >= 2*rule.max { // room for the attempts in flight over the limit
			e.fails = append(e.fails[:0], e.fails[1:]...)
		}
		e.fails = append(e.fails, now)
		if n := e.recent(now); n >= rule.max {
			e.next = now.Add(rule.pace)
			if n == rule.max {
				reached = append(reached, rule.name)
			}
		}
	}
	return true, 0, reached
}

// succeed takes back the attempt admitted at `at`: the person at addr knows the password,
// so the pair's count is cleared; the username's and the address's counts lose this one
// attempt but keep the others, someone else may be guessing.
func (g *loginGate) succeed(username, addr string, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	keys := gateKeys(username, addr)
	delete(g.tables[0], keys[0])
	for i := 1; i < len(keys); i++ {
		e := g.tables[i][keys[i]]
		if e == nil {
			continue
		}
		if j := slices.Index(e.fails, at); j >= 0 {
			e.fails = slices.Delete(e.fails, j, j+1)
		}
		if len(e.fails) == 0 && !at.Before(e.next) {
			delete(g.tables[i], keys[i])
		}
	}
}

// sweep drops the entries that no longer matter. The caller holds g.mu.
func (g *loginGate) sweep(now time.Time) {
	g.swept = now
	for _, t := range g.tables {
		for k, e := range t {
			if e.expired(now) {
				delete(t, k)
			}
		}
	}
}

// evict makes room in a full table: expired entries go first, else the entry whose latest
// attempt is the oldest. The caller holds g.mu.
func (g *loginGate) evict(t map[string]*gateEntry, now time.Time) {
	g.sweep(now)
	if len(t) < g.maxKeys {
		return
	}
	var oldest string
	var at time.Time
	for k, e := range t {
		last := e.next
		if len(e.fails) > 0 {
			last = e.fails[len(e.fails)-1]
		}
		if oldest == "" || last.Before(at) {
			oldest, at = k, last
		}
	}
	delete(t, oldest)
}

// size counts the entries kept (tests).
func (g *loginGate) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.tables[0]) + len(g.tables[1]) + len(g.tables[2])
}

// session returns the authenticated session of a request, if any.
func session(c *fiber.Ctx) *syncer.Session {
	s, _ := c.Locals("session").(*syncer.Session)
	return s
}

func bearer(c *fiber.Ctx) string {
	h := c.Get(fiber.HeaderAuthorization)
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

// authenticate requires a valid bearer token.
func (s *Server) authenticate(c *fiber.Ctx) error {
	sess, err := s.Engine.Authenticate(c.UserContext(), bearer(c))
	if err != nil {
		return err
	}
	c.Locals("session", sess)
	if sess.MustChangePassword && !passwordChangeRoutes[c.Path()] {
		return schema.FieldError(schema.CodeForbidden, "password", "请先修改密码（POST /api/v1/auth/password） change your password first (POST /api/v1/auth/password)")
	}
	return c.Next()
}

// passwordChangeRoutes are what a session whose password must change may reach.
var passwordChangeRoutes = map[string]bool{"/api/v1/auth/password": true, "/api/v1/auth/logout": true, "/api/v1/me": true}

// officeOnly keeps technicians out of the coordinator API.
func officeOnly(c *fiber.Ctx) error {
	if session(c).Actor.Role == schema.RoleTechnician {
		return schema.Errorf(schema.CodeForbidden, "the coordinator API is for office roles; technicians use the field app")
	}
	return c.Next()
}

// roles allows only the listed roles.
func roles(allowed ...string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		r := session(c).Actor.Role
		for _, a := range allowed {
			if a == r {
				return c.Next()
			}
		}
		return schema.Errorf(schema.CodeForbidden, "a %s may not do this (allowed: %s)", r, strings.Join(allowed, ", "))
	}
}

type loginBody struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	DeviceID   string `json:"device_id"`
	DeviceName string `json:"device_name"`
	PublicKey  string `json:"public_key"`
}

// Login handles both logins: the web's and, with device fields, the phone's.
func (s *Server) login(device bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var b loginBody
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		if !device && (b.DeviceID != "" || b.DeviceName != "" || b.PublicKey != "") {
			return schema.FieldError(schema.CodeBadRequest, "device_id", "device_id belongs to the mobile login (/mobile/v1/auth/login)")
		}
		var dev *syncer.DeviceLogin
		if device {
			dev = &syncer.DeviceLogin{DeviceID: b.DeviceID, Name: b.DeviceName, PublicKey: b.PublicKey}
		}
		if err := syncer.CheckLogin(b.Username, b.Password, dev); err != nil {
			return err
		}
		now, addr := s.Engine.Now(), c.IP()
		ok, wait, reached := s.gate.admit(b.Username, addr, now)
		if !ok {
			secs := int((wait + time.Second - 1) / time.Second) // rounded up
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
			return schema.Errorf(schema.CodeRateLimited, "登录失败次数过多，请 %d 秒后再试 too many failed login attempts; try again in %d s", secs, secs)
		}
		token, sess, err := s.Engine.Login(c.UserContext(), b.Username, b.Password, dev)
		if schema.ErrorCode(err) == schema.CodeUnauthenticated {
			s.log.Warn("login failed", "username", b.Username, "address", addr, "device", device)
			if len(reached) > 0 {
				s.log.Warn("login limit reached: checks slowed", "username", b.Username, "address", addr, "keys", reached)
			}
		} else {
			s.gate.succeed(b.Username, addr, now) // right password, or refused for another reason
		}
		if err != nil {
			return err
		}
		return c.JSON(loginAnswer(token, sess))
	}
}

// loginAnswer is the answer to a login and to a password change.
func loginAnswer(token string, sess *syncer.Session) fiber.Map {
	out := fiber.Map{"token": token, "expires_at": schema.Stamp(sess.ExpiresAt), "user": sess.User}
	if sess.Actor.DeviceID != "" {
		out["device"] = sess.Actor.DeviceID
	}
	if sess.MustChangePassword {
		out["must_change_password"] = true
	}
	return out
}

type passwordBody struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword changes the caller's own password and answers with a fresh web session:
// every earlier token of the user stops working.
func (s *Server) changePassword(c *fiber.Ctx) error {
	var b passwordBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	sess := session(c)
	if err := s.Engine.ChangePassword(c.UserContext(), sess, b.CurrentPassword, b.NewPassword); err != nil {
		return err
	}
	s.log.Info("password changed", "username", sess.User.Str("username"), "address", c.IP())
	token, fresh, err := s.Engine.Login(c.UserContext(), sess.User.Str("username"), b.NewPassword, nil)
	if err != nil {
		return err
	}
	return c.JSON(loginAnswer(token, fresh))
}

func (s *Server) logout(c *fiber.Ctx) error {
	if err := s.Engine.Logout(c.UserContext(), session(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) me(c *fiber.Ctx) error {
	sess := session(c)
	out := fiber.Map{"user": sess.User, "expires_at": schema.Stamp(sess.ExpiresAt), "device": sess.Actor.DeviceID}
	if sess.MustChangePassword {
		out["must_change_password"] = true
	}
	return c.JSON(out)
}

// patchMe changes the caller's own email and phone: {email?, phone?}.
func (s *Server) patchMe(c *fiber.Ctx) error {
	fields, err := bodyFields(c)
	if err != nil {
		return err
	}
	u, err := s.Engine.SetOwnContact(c.UserContext(), session(c).Actor, fields)
	if err != nil {
		return err
	}
	return c.JSON(u)
}

type newUserBody struct {
	Username  string `json:"username"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Phone     string `json:"phone"`
	Email     string `json:"email"`
	Dedicated *bool  `json:"dedicated"`
	Probation bool   `json:"probation"`
	Password  string `json:"password"`
}

func (s *Server) createUser(c *fiber.Ctx) error {
	var b newUserBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	dedicated := b.Dedicated == nil || *b.Dedicated
	u, err := s.Engine.CreateUser(c.UserContext(), session(c).Actor, syncer.NewUser{Username: b.Username, Name: b.Name, Role: b.Role,
		Phone: b.Phone, Email: b.Email, Dedicated: dedicated, Probation: b.Probation, Password: b.Password})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(u)
}

func (s *Server) listUsers(c *fiber.Ctx) error {
	users, err := s.Engine.Users(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": users})
}

func (s *Server) listDevices(c *fiber.Ctx) error {
	devs, err := s.Engine.Devices(c.UserContext(), c.Query("user_id"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": devs})
}

func (s *Server) revokeDevice(c *fiber.Ctx) error {
	if err := s.Engine.RevokeDevice(c.UserContext(), strings.Clone(c.Params("id"))); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"revoked": true})
}

// deviceClock is a device's clock history: {device, items: [{at, offset_ms}], total, limit,
// offset}, newest first.
func (s *Server) deviceClock(c *fiber.Ctx) error {
	limit, offset, err := page(c)
	if err != nil {
		return err
	}
	d, items, total, err := s.Engine.DeviceClock(c.UserContext(), strings.Clone(c.Params("id")), limit, offset)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"device": d, "items": items, "total": total, "limit": limit, "offset": offset})
}

// resetPassword sets a user's password (admin): {password}. Their sessions end.
func (s *Server) resetPassword(c *fiber.Ctx) error {
	var b struct {
		Password string `json:"password"`
	}
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	u, err := s.Engine.Get(c.UserContext(), schema.EntUser, strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	if err := s.Engine.SetPassword(c.UserContext(), u.Str("username"), b.Password); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"reset": true})
}
