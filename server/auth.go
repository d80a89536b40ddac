package server

import (
	"strings"
	gosync "sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// limiter counts failed attempts per key in a sliding window (failed logins per username
// and per client address): a key with max failures in the window is refused until they age
// out. Successful logins do not count, so an office behind one address is not locked out.
type limiter struct {
	mu     gosync.Mutex
	max    int
	window time.Duration
	hits   map[string][]time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, hits: map[string][]time.Time{}}
}

// recent drops the failures of key older than the window and returns the rest. The caller
// holds l.mu.
func (l *limiter) recent(key string, now time.Time) []time.Time {
	kept := l.hits[key][:0]
	for _, t := range l.hits[key] {
		if now.Sub(t) < l.window {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		delete(l.hits, key)
		return nil
	}
	l.hits[key] = kept
	return kept
}

// allow reports whether key has fewer than max failures in the window.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(key, now)) < l.max
}

// fail records a failure for key.
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) > 100_000 { // bound memory under a flood of distinct keys
		clear(l.hits)
	}
	l.hits[key] = append(l.recent(key, now), now)
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
	return c.Next()
}

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
}

// Login handles both logins: the web's and, with device fields, the phone's.
func (s *Server) login(device bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var b loginBody
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		if b.Username == "" {
			return schema.FieldError(schema.CodeValidation, "username", "username is required")
		}
		if !device && (b.DeviceID != "" || b.DeviceName != "") {
			return schema.FieldError(schema.CodeBadRequest, "device_id", "device_id belongs to the mobile login (/mobile/v1/auth/login)")
		}
		now := time.Now()
		userKey, ipKey := "u:"+b.Username, "ip:"+c.IP()
		if !s.logins.allow(userKey, now) || !s.ipLogins.allow(ipKey, now) {
			return schema.Errorf(schema.CodeRateLimited, "too many failed login attempts; wait a minute")
		}
		var dev *syncer.DeviceLogin
		if device {
			dev = &syncer.DeviceLogin{DeviceID: b.DeviceID, Name: b.DeviceName}
		}
		token, sess, err := s.Engine.Login(c.UserContext(), b.Username, b.Password, dev)
		if schema.ErrorCode(err) == schema.CodeUnauthenticated {
			s.logins.fail(userKey, now)
			s.ipLogins.fail(ipKey, now)
		}
		if err != nil {
			return err
		}
		out := fiber.Map{"token": token, "expires_at": schema.Stamp(sess.ExpiresAt), "user": sess.User}
		if device {
			out["device"] = sess.Actor.DeviceID
		}
		return c.JSON(out)
	}
}

func (s *Server) logout(c *fiber.Ctx) error {
	if err := s.Engine.Logout(c.UserContext(), session(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) me(c *fiber.Ctx) error {
	sess := session(c)
	return c.JSON(fiber.Map{"user": sess.User, "expires_at": schema.Stamp(sess.ExpiresAt), "device": sess.Actor.DeviceID})
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
