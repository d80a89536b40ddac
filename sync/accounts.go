package sync

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	_ "embed" // the common password list
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"runtime"
	"slices"
	"strings"
	gosync "sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"fieldsync/schema"
)

// NewUser is an account to create.
type NewUser struct {
	Username  string
	Name      string
	Role      string
	Phone     string
	Email     string // where alert mail goes
	Dedicated bool
	Probation bool
	Password  string
	// MustChangePassword makes the first login change the password (a password the
	// machine chose and printed).
	MustChangePassword bool
}

// Token lifetimes, counted from the token's last use (see Authenticate).
const (
	WebTokenTTL    = 12 * time.Hour
	DeviceTokenTTL = 30 * 24 * time.Hour
)

// tokenSlideStep is how far a token's expiry must move before a use writes it forward.
const tokenSlideStep = time.Hour

// MinPassword is the shortest password accepted.
const MinPassword = 8

// maxPassword is the longest: bcrypt reads no more than 72 bytes.
const maxPassword = 72

// PasswordCost is the bcrypt cost of new password hashes. Hashing is slow on purpose; test
// binaries lower it (the race detector makes each hash take over a second).
var PasswordCost = bcrypt.DefaultCost

// passwordChecks bounds the bcrypt comparisons running at once to the processors: when
// many phones log in at once (the start of a working day), the first logins finish in
// their own time and the rest wait their turn, instead of every login sharing the
// processors and all of them finishing late together.
var passwordChecks = make(chan struct{}, runtime.GOMAXPROCS(0))

// comparePassword is bcrypt.CompareHashAndPassword within passwordChecks.
func comparePassword(hash []byte, password string) error {
	passwordChecks <- struct{}{}
	defer func() { <-passwordChecks }()
	return bcrypt.CompareHashAndPassword(hash, []byte(password))
}

// dummyHash is compared against when a username does not exist, so a failed login takes as
// long for an unknown user as for a wrong password.
var dummyHash = gosync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("fieldsync-no-such-user"), PasswordCost)
	return h
})

func checkUsername(u string) error {
	if u == "" || utf8.RuneCountInString(u) > 64 {
		return schema.FieldError(schema.CodeValidation, "username", "username must be 1 to 64 characters")
	}
	for _, r := range u {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return schema.FieldError(schema.CodeValidation, "username", "username %q contains white space or control characters", u)
		}
	}
	return nil
}

//go:embed common-passwords.txt
var commonPasswordList string

// commonPasswords is the set of passwords refused for being among the commonest.
var commonPasswords = gosync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for line := range strings.Lines(commonPasswordList) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[strings.ToLower(line)] = true
		}
	}
	return m
})

// checkPassword checks a new password of username: 8 characters to 72 bytes, not one of
// the commonest passwords and not the username, both compared ignoring case. field names
// the request field in the error.
func checkPassword(field, username, p string) error {
	if utf8.RuneCountInString(p) < MinPassword {
		return schema.FieldError(schema.CodeValidation, field, "密码至少 %d 个字符 password must be at least %d characters", MinPassword, MinPassword)
	}
	if len(p) > maxPassword {
		return schema.FieldError(schema.CodeValidation, field, "密码最多 %d 字节 password must be at most %d bytes", maxPassword, maxPassword)
	}
	if strings.EqualFold(p, username) {
		return schema.FieldError(schema.CodeValidation, field, "密码不能与用户名相同 the password must not be the username")
	}
	if commonPasswords()[strings.ToLower(p)] {
		return schema.FieldError(schema.CodeValidation, field, "这是最常见的密码之一，请另选 this is one of the commonest passwords: choose another")
	}
	return nil
}

// CreateUser creates an account: its credentials and its user record (through the write
// path, so the creation is in the change log).
func (e *Engine) CreateUser(ctx context.Context, actor schema.Actor, u NewUser) (schema.Doc, error) {
	if err := checkUsername(u.Username); err != nil {
		return nil, err
	}
	if !slices.Contains(schema.Roles, u.Role) {
		return nil, schema.FieldError(schema.CodeValidation, "role", "role %q is not one of %s", u.Role, strings.Join(schema.Roles, ", "))
	}
	if strings.TrimSpace(u.Name) == "" {
		return nil, schema.FieldError(schema.CodeValidation, "name", "name is required")
	}
	if err := checkPassword("password", u.Username, u.Password); err != nil {
		return nil, err
	}
	contact := schema.Doc{"email": u.Email, "phone": u.Phone}
	if err := schema.CheckContact(contact); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), PasswordCost)
	if err != nil {
		return nil, err
	}
	var out schema.Doc
	err = e.run(ctx, func(w *wtx) error {
		id := uuid.Must(uuid.NewV7()).String()
		if _, err := w.tx.Exec(`INSERT INTO credentials(user_id, username, password_hash, must_change_password) VALUES (?, ?, ?, ?)`,
			id, u.Username, string(hash), u.MustChangePassword); err != nil {
			if isUnique(err) {
				return schema.FieldError(schema.CodeConflict, "username", "username %q is taken", u.Username)
			}
			return err
		}
		d, err := w.create(actor, schema.EntUser, id, schema.Doc{"username": u.Username, "name": u.Name, "role": u.Role,
			"phone": contact.Str("phone"), "email": contact.Str("email"), "dedicated": u.Dedicated, "probation": u.Probation, "active": true}, "", nil)
		out = d
		return err
	})
	return out, err
}

// SetOwnContact changes the actor's own email and phone (schema.CheckContact), the one edit
// of their user record anyone may make for themselves; any other field is refused, naming it.
func (e *Engine) SetOwnContact(ctx context.Context, actor schema.Actor, fields map[string]json.RawMessage) (schema.Doc, error) {
	if len(fields) == 0 {
		return nil, schema.FieldError(schema.CodeValidation, "fields", "请填写 email 或 phone / send email or phone")
	}
	names := slices.Sorted(maps.Keys(fields))
	vals := schema.Doc{}
	for _, k := range names {
		if !slices.Contains(schema.ContactFields, k) {
			return nil, schema.FieldError(schema.CodeValidation, k, "这里只能修改自己的邮箱和电话，不能修改 %s / here you change only your own email and phone, not %s", k, k)
		}
		var v *string
		if err := json.Unmarshal(fields[k], &v); err != nil {
			return nil, schema.FieldError(schema.CodeValidation, k, "%s 须为文字 / %s must be a string", k, k)
		}
		vals[k] = ""
		if v != nil {
			vals[k] = *v
		}
	}
	if err := schema.CheckContact(vals, names...); err != nil {
		return nil, err
	}
	var out schema.Doc
	err := e.run(ctx, func(w *wtx) error {
		cur, _, err := w.get(schema.EntUser, actor.UserID)
		if err != nil {
			return err
		}
		next := cur.Clone()
		maps.Copy(next, vals)
		out, err = w.write(actor, schema.EntUser, cur, next, "update", "", nil)
		return err
	})
	return out, err
}

// SetPassword replaces a user's password and ends their sessions (the command line's reset:
// the password is the one the admin chose, so no change is asked at the next login).
func (e *Engine) SetPassword(ctx context.Context, username, password string) error {
	if err := checkPassword("password", username, password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return err
	}
	return e.run(ctx, func(w *wtx) error {
		var id string
		if err := w.tx.QueryRow(`UPDATE credentials SET password_hash = ?, must_change_password = 0 WHERE username = ? RETURNING user_id`, string(hash), username).Scan(&id); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return schema.FieldError(schema.CodeNotFound, "username", "no user %q", username)
			}
			return err
		}
		w.accounts[id] = true
		_, err := w.tx.Exec(`UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, schema.Stamp(w.now), id)
		return err
	})
}

// ChangePassword is a user changing their own password: current must be right and next a
// good password different from it. It ends every session of the user (the caller issues a
// fresh one) and clears a pending must-change.
func (e *Engine) ChangePassword(ctx context.Context, s *Session, current, next string) error {
	var username, hash string
	if err := e.db.R.QueryRowContext(ctx, `SELECT username, password_hash FROM credentials WHERE user_id = ?`, s.Actor.UserID).Scan(&username, &hash); err != nil {
		return err
	}
	if len(current) > maxPassword || comparePassword([]byte(hash), current) != nil {
		return schema.FieldError(schema.CodeValidation, "current_password", "当前密码不对 the current password is wrong")
	}
	if err := checkPassword("new_password", username, next); err != nil {
		return err
	}
	if next == current {
		return schema.FieldError(schema.CodeValidation, "new_password", "新密码须与当前密码不同 the new password must differ from the current one")
	}
	newHash, err := bcrypt.GenerateFromPassword([]byte(next), PasswordCost)
	if err != nil {
		return err
	}
	return e.run(ctx, func(w *wtx) error {
		if _, err := w.tx.Exec(`UPDATE credentials SET password_hash = ?, must_change_password = 0 WHERE user_id = ?`, string(newHash), s.Actor.UserID); err != nil {
			return err
		}
		w.accounts[s.Actor.UserID] = true // the user's open connections are checked again and close
		_, err := w.tx.Exec(`UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, schema.Stamp(w.now), s.Actor.UserID)
		return err
	})
}

// SetActive enables or disables an account; disabling ends its sessions and closes its
// devices' connections (4401: the phone keeps what it holds, nothing pending is lost).
func (e *Engine) SetActive(ctx context.Context, actor schema.Actor, username string, active bool) error {
	var userID string
	err := e.run(ctx, func(w *wtx) error {
		if err := w.tx.QueryRow(`SELECT user_id FROM credentials WHERE username = ?`, username).Scan(&userID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return schema.FieldError(schema.CodeNotFound, "username", "no user %q", username)
			}
			return err
		}
		cur, err := w.Get(schema.EntUser, userID)
		if err != nil {
			return err
		}
		next := cur.Clone()
		next["active"] = active
		if _, err := w.write(actor, schema.EntUser, cur, next, "update", "", nil); err != nil {
			return err
		}
		if !active {
			_, err = w.tx.Exec(`UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, schema.Stamp(w.now), userID)
		}
		return err
	})
	return err
}

// DeviceLogin names the device a mobile login binds its token to.
type DeviceLogin struct {
	DeviceID string
	Name     string
	// PublicKey is the device's signing key (base64 SubjectPublicKeyInfo, ECDSA P-256); an
	// app without keys sends none. A new key replaces the last and restarts the chain.
	PublicKey string
}

// Session is an authenticated token.
type Session struct {
	Actor     schema.Actor
	User      schema.Doc
	ExpiresAt time.Time
	TokenHash string
	// MustChangePassword: the account's password was chosen by the machine; until it is
	// changed the session may only change it (the web API enforces this).
	MustChangePassword bool
}

// MaxDeviceName bounds the name a phone gives itself at login.
const MaxDeviceName = 64

// CheckLogin bounds every string of a login before anything is looked up, hashed or kept:
// a username as accounts have them, a password no longer than bcrypt reads, a device id and
// name of sane length without control characters. Its errors name the field; they say
// nothing about whether the account exists.
func CheckLogin(username, password string, dev *DeviceLogin) error {
	if err := checkUsername(username); err != nil {
		return schema.FieldError(schema.CodeValidation, "username", "用户名须为 1 到 64 个字符，不含空格或控制字符 username must be 1 to 64 characters without spaces or control characters")
	}
	if len(password) > maxPassword {
		return schema.FieldError(schema.CodeValidation, "password", "密码最多 %d 字节 password must be at most %d bytes", maxPassword, maxPassword)
	}
	if dev == nil {
		return nil
	}
	if dev.DeviceID == "" || len(dev.DeviceID) > 128 || strings.IndexFunc(dev.DeviceID, unicode.IsControl) >= 0 || !utf8.ValidString(dev.DeviceID) {
		return schema.FieldError(schema.CodeValidation, "device_id", "device_id is required: at most 128 characters, no control characters")
	}
	if utf8.RuneCountInString(dev.Name) > MaxDeviceName || strings.IndexFunc(dev.Name, unicode.IsControl) >= 0 || !utf8.ValidString(dev.Name) {
		return schema.FieldError(schema.CodeValidation, "device_name", "设备名称最多 %d 个字符，不含控制字符 device_name must be at most %d characters without control characters", MaxDeviceName, MaxDeviceName)
	}
	if dev.PublicKey != "" {
		if _, err := schema.ParseDeviceKey(dev.PublicKey); err != nil {
			return err
		}
	}
	return nil
}

// Login checks a username and password and issues a token (bound to a device when dev is
// given). Every failure is the same unauthenticated error, so it does not tell whether the
// username exists.
func (e *Engine) Login(ctx context.Context, username, password string, dev *DeviceLogin) (string, *Session, error) {
	if err := CheckLogin(username, password, dev); err != nil {
		return "", nil, err
	}
	fail := schema.Errorf(schema.CodeUnauthenticated, "用户名或密码错误 wrong username or password")
	var userID, hash string
	var mustChange bool
	err := e.db.R.QueryRowContext(ctx, `SELECT user_id, password_hash, must_change_password FROM credentials WHERE username = ?`, username).Scan(&userID, &hash, &mustChange)
	if errors.Is(err, sql.ErrNoRows) {
		comparePassword(dummyHash(), password)
		return "", nil, fail
	} else if err != nil {
		return "", nil, err
	}
	if comparePassword([]byte(hash), password) != nil {
		return "", nil, fail
	}
	user, err := e.Get(ctx, schema.EntUser, userID)
	if err != nil {
		return "", nil, err
	}
	if !user.Bool("active") {
		return "", nil, fail
	}
	if dev != nil && mustChange {
		return "", nil, schema.FieldError(schema.CodeForbidden, "password", "请先在网页控制台修改密码 change the password in the web console first")
	}
	if dev != nil && dev.Name == "" {
		dev.Name = dev.DeviceID
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := e.Now().UTC()
	ttl := WebTokenTTL
	if dev != nil {
		ttl = DeviceTokenTTL
	}
	s := &Session{User: user, ExpiresAt: now.Add(ttl), TokenHash: hashToken(token), MustChangePassword: mustChange,
		Actor: schema.Actor{UserID: userID, Role: user.Str("role"), Name: user.Str("name")}}
	err = e.run(ctx, func(w *wtx) error {
		var device any
		if dev != nil {
			var id string
			var revoked sql.NullString
			err := w.tx.QueryRow(`SELECT id, revoked_at FROM devices WHERE user_id = ? AND device_id = ?`, userID, dev.DeviceID).Scan(&id, &revoked)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				var held int64
				if err := w.tx.QueryRow(`SELECT COUNT(*) FROM devices WHERE user_id = ? AND revoked_at IS NULL`, userID).Scan(&held); err != nil {
					return err
				}
				if most := w.Settings().Int("max_devices_per_user"); held >= most {
					return schema.FieldError(schema.CodeForbidden, "device_id",
						"已登记 %d 台设备（上限 %d），请协调员注销不再使用的设备 / %d devices are registered for you (at most %d): ask a coordinator to revoke one you no longer use", held, most, held, most)
				}
				id = uuid.Must(uuid.NewV7()).String()
				if _, err := w.tx.Exec(`INSERT INTO devices(id, user_id, device_id, name, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`,
					id, userID, dev.DeviceID, dev.Name, schema.Stamp(now), schema.Stamp(now)); err != nil {
					return err
				}
			case err != nil:
				return err
			case revoked.Valid:
				return schema.FieldError(schema.CodeForbidden, "device_id", "this device was revoked on %s; ask a coordinator", revoked.String)
			default:
				if _, err := w.tx.Exec(`UPDATE devices SET name = ?, last_seen_at = ? WHERE id = ?`, dev.Name, schema.Stamp(now), id); err != nil {
					return err
				}
			}
			if dev.PublicKey != "" {
				if _, err := w.tx.Exec(`UPDATE devices SET public_key = ?, key_at = ?, last_signature = NULL
					WHERE id = ? AND COALESCE(public_key, '') != ?`, dev.PublicKey, schema.Stamp(now), id, dev.PublicKey); err != nil {
					return err
				}
			}
			device = id
			s.Actor.DeviceID = id
		}
		_, err := w.tx.Exec(`INSERT INTO tokens(hash, user_id, device, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			s.TokenHash, userID, device, schema.Stamp(now), schema.Stamp(s.ExpiresAt))
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return token, s, nil
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// Authenticate resolves a bearer token to its session. Expired, revoked, unknown tokens, a
// revoked device and a disabled user all give the same unauthenticated error.
func (e *Engine) Authenticate(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 200 {
		return nil, errNoSession
	}
	s, _, err := e.session(ctx, hashToken(token), true)
	return s, err
}

var errNoSession = schema.Errorf(schema.CodeUnauthenticated, "the token is missing, expired or revoked: log in again")

// ErrDeviceRevoked is Revalidate's answer for a session whose device was revoked: the
// device must wipe what it holds.
var ErrDeviceRevoked = schema.Errorf(schema.CodeForbidden, "this device was revoked: its local data is wiped")

// Revalidate checks an open session again (its account, device or token changed, or its
// token reached its expiry): it returns the session as it now stands, ErrDeviceRevoked, or
// an unauthenticated error when the token expired or was revoked, the user was disabled,
// or the user's role changed (a role decides the scope: log in again).
func (e *Engine) Revalidate(ctx context.Context, old *Session) (*Session, error) {
	s, deviceRevoked, err := e.session(ctx, old.TokenHash, false)
	if deviceRevoked {
		return nil, ErrDeviceRevoked
	}
	if err != nil {
		return nil, err
	}
	if s.Actor.Role != old.Actor.Role {
		return nil, schema.Errorf(schema.CodeUnauthenticated, "your role changed to %s: log in again", s.Actor.Role)
	}
	return s, nil
}

// session resolves a token's hash; deviceRevoked tells a revoked device apart. use says the
// token is being used (a request, a new connection), which slides its expiry forward;
// checking an open connection again is not a use, so a connection left open past its
// token's lifetime still closes.
func (e *Engine) session(ctx context.Context, h string, use bool) (s *Session, deviceRevoked bool, err error) {
	var userID, expires string
	var device sql.NullString
	var revoked, mustChange bool
	err = e.db.R.QueryRowContext(ctx, `SELECT t.user_id, t.expires_at, t.device, t.revoked_at IS NOT NULL,
		EXISTS (SELECT 1 FROM devices d WHERE d.id = t.device AND d.revoked_at IS NOT NULL),
		COALESCE((SELECT must_change_password FROM credentials c WHERE c.user_id = t.user_id), 0)
		FROM tokens t WHERE t.hash = ?`, h).Scan(&userID, &expires, &device, &revoked, &deviceRevoked, &mustChange)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, errNoSession
	} else if err != nil {
		return nil, false, err
	}
	exp, _ := time.Parse(time.RFC3339Nano, expires)
	now := e.Now().UTC()
	if revoked || deviceRevoked || !now.Before(exp) {
		return nil, deviceRevoked, errNoSession
	}
	user, err := e.Get(ctx, schema.EntUser, userID)
	if err != nil || !user.Bool("active") {
		return nil, false, errNoSession
	}
	// A token in use slides forward to a full lifetime from now, written at most once per
	// tokenSlideStep so that requests do not each cost a write. The token is valid either
	// way: a failed write only means the next use tries again.
	ttl := WebTokenTTL
	if device.Valid {
		ttl = DeviceTokenTTL
	}
	if next := now.Add(ttl); use && next.Sub(exp) >= tokenSlideStep {
		err := e.run(ctx, func(w *wtx) error {
			_, err := w.tx.Exec(`UPDATE tokens SET expires_at = ? WHERE hash = ? AND revoked_at IS NULL`, schema.Stamp(next), h)
			return err
		})
		if err == nil {
			exp = next
		} else if ctx.Err() == nil {
			e.Log.Warn("extend token", "err", err)
		}
	}
	return &Session{User: user, ExpiresAt: exp, TokenHash: h, MustChangePassword: mustChange,
		Actor: schema.Actor{UserID: userID, Role: user.Str("role"), Name: user.Str("name"), DeviceID: device.String}}, false, nil
}

// Logout revokes the session's token; a connection that uses it closes.
func (e *Engine) Logout(ctx context.Context, s *Session) error {
	return e.run(ctx, func(w *wtx) error {
		w.accounts[s.Actor.UserID] = true
		_, err := w.tx.Exec(`UPDATE tokens SET revoked_at = ? WHERE hash = ?`, schema.Stamp(w.now), s.TokenHash)
		return err
	})
}

// Device is a registered field device.
type Device struct {
	ID         string  `json:"id"`
	UserID     string  `json:"user_id"`
	DeviceID   string  `json:"device_id"`
	Name       string  `json:"name"`
	CreatedAt  string  `json:"created_at"`
	LastSeenAt string  `json:"last_seen_at"`
	RevokedAt  *string `json:"revoked_at"`
	// PublicKey is the device's signing key (base64 SPKI, P-256), nil for an app without keys;
	// ClockOffsetMS its clock minus the server's as it last reported it.
	PublicKey     *string `json:"public_key"`
	ClockOffsetMS *int64  `json:"clock_offset_ms"`
	// AppVersion, Pending and PendingSince are what the device said in its last hello
	// (ReportedAt): its app's version, the mutations waiting in its outbox and when the
	// oldest of them was made. Pending is nil until a hello reported it.
	AppVersion   string  `json:"app_version"`
	Pending      *int64  `json:"pending"`
	PendingSince *string `json:"pending_since"`
	ReportedAt   *string `json:"reported_at"`
}

// Devices lists the devices of a user ("" for all).
func (e *Engine) Devices(ctx context.Context, userID string) ([]Device, error) {
	rows, err := e.db.R.QueryContext(ctx, `SELECT id, user_id, device_id, name, created_at, last_seen_at, revoked_at, public_key, clock_offset_ms,
		app_version, pending, pending_since, reported_at FROM devices
		WHERE ? = '' OR user_id = ? ORDER BY created_at`, userID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		var d Device
		if err := rows.Scan(&d.ID, &d.UserID, &d.DeviceID, &d.Name, &d.CreatedAt, &d.LastSeenAt, &d.RevokedAt, &d.PublicKey, &d.ClockOffsetMS,
			&d.AppVersion, &d.Pending, &d.PendingSince, &d.ReportedAt); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClockReading is one entry of a device's clock history: when the server measured it and the
// device clock minus the server's.
type ClockReading struct {
	At       string `json:"at"`
	OffsetMS int64  `json:"offset_ms"`
}

// DeviceClock returns device id's registration and its clock history, newest first, limit
// readings from offset, with their total. An unknown device is not_found.
func (e *Engine) DeviceClock(ctx context.Context, id string, limit, offset int) (Device, []ClockReading, int, error) {
	var d Device
	err := e.db.R.QueryRowContext(ctx, `SELECT id, user_id, device_id, name, created_at, last_seen_at, revoked_at, public_key, clock_offset_ms
		FROM devices WHERE id = ?`, id).Scan(&d.ID, &d.UserID, &d.DeviceID, &d.Name, &d.CreatedAt, &d.LastSeenAt, &d.RevokedAt, &d.PublicKey, &d.ClockOffsetMS)
	if errors.Is(err, sql.ErrNoRows) {
		return d, nil, 0, schema.FieldError(schema.CodeNotFound, "id", "没有设备 %q / no device %q", id, id)
	} else if err != nil {
		return d, nil, 0, err
	}
	var total int
	if err := e.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM device_clock WHERE device = ?`, id).Scan(&total); err != nil {
		return d, nil, 0, err
	}
	rows, err := e.db.R.QueryContext(ctx, `SELECT at, offset_ms FROM device_clock WHERE device = ? ORDER BY at DESC, rowid DESC LIMIT ? OFFSET ?`, id, limit, offset)
	if err != nil {
		return d, nil, 0, err
	}
	defer rows.Close()
	out := []ClockReading{}
	for rows.Next() {
		var r ClockReading
		if err := rows.Scan(&r.At, &r.OffsetMS); err != nil {
			return d, nil, 0, err
		}
		out = append(out, r)
	}
	return d, out, total, rows.Err()
}

// RevokeDevice revokes a device: its tokens stop working at once and its open connections
// are closed (the transport closes them with 4403).
func (e *Engine) RevokeDevice(ctx context.Context, id string) error {
	return e.run(ctx, func(w *wtx) error {
		var user string
		err := w.tx.QueryRow(`UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING user_id`, schema.Stamp(w.now), id).Scan(&user)
		if errors.Is(err, sql.ErrNoRows) {
			return schema.FieldError(schema.CodeNotFound, "id", "no device %q", id)
		} else if err != nil {
			return err
		}
		w.accounts[user] = true
		_, err = w.tx.Exec(`UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE device = ?`, schema.Stamp(w.now), id)
		return err
	})
}

// RecordClock records a device's clock as it reported it (clientTime, RFC 3339; "" reports
// nothing): its offset from the server's clock, kept on the device and, when it moved by
// more than a second, in the device's clock history.
func (e *Engine) RecordClock(ctx context.Context, device, clientTime string) error {
	if clientTime == "" || device == "" {
		return nil
	}
	t, err := parseClientTime(clientTime)
	if err != nil {
		return err
	}
	return e.run(ctx, func(w *wtx) error { return w.recordClock(device, t) })
}

func parseClientTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, schema.FieldError(schema.CodeValidation, "client_time", "client_time %q is not an RFC 3339 time (e.g. 2026-11-26T09:30:00.000Z)", s)
	}
	return t, nil
}

func (w *wtx) recordClock(device string, t time.Time) error {
	offset := t.Sub(w.now).Milliseconds()
	var last sql.NullInt64
	if err := w.tx.QueryRow(`SELECT clock_offset_ms FROM devices WHERE id = ?`, device).Scan(&last); err != nil {
		return err
	}
	if _, err := w.tx.Exec(`UPDATE devices SET clock_offset_ms = ?, clock_at = ? WHERE id = ?`, offset, schema.Stamp(w.now), device); err != nil {
		return err
	}
	if !last.Valid || max(offset-last.Int64, last.Int64-offset) > 1000 {
		_, err := w.tx.Exec(`INSERT INTO device_clock (device, at, offset_ms) VALUES (?, ?, ?)`, device, schema.Stamp(w.now), offset)
		return err
	}
	return nil
}

// MaxAppVersion bounds the app version a hello may report.
const MaxAppVersion = 64

// RecordHello records what a device reports in its hello: its clock (RecordClock), its app's
// version and its outbox (pending, pending_since). A report that breaks a rule is a
// validation error naming the field, and nothing is recorded.
func (e *Engine) RecordHello(ctx context.Context, device string, f *Frame) error {
	if device == "" {
		return nil
	}
	if len(f.AppVersion) > MaxAppVersion || !utf8.ValidString(f.AppVersion) {
		return schema.FieldError(schema.CodeValidation, "app_version", "app_version is at most %d bytes of text", MaxAppVersion)
	}
	var since any
	if f.Pending != nil && *f.Pending < 0 {
		return schema.FieldError(schema.CodeValidation, "pending", "pending is a count of outbox mutations, not negative (got %d)", *f.Pending)
	}
	if f.PendingSince != "" {
		t, err := time.Parse(time.RFC3339Nano, f.PendingSince)
		if err != nil {
			return schema.FieldError(schema.CodeValidation, "pending_since", "pending_since %q is not an RFC 3339 time (e.g. 2026-11-26T09:30:00Z)", f.PendingSince)
		}
		since = schema.Stamp(t)
		if f.Pending == nil || *f.Pending == 0 {
			since = nil
		}
	}
	var clock time.Time
	if f.ClientTime != "" {
		t, err := parseClientTime(f.ClientTime)
		if err != nil {
			return err
		}
		clock = t
	}
	return e.run(ctx, func(w *wtx) error {
		var pending any
		if f.Pending != nil {
			pending = *f.Pending
		}
		if _, err := w.tx.Exec(`UPDATE devices SET app_version = ?, pending = ?, pending_since = ?, reported_at = ? WHERE id = ?`,
			f.AppVersion, pending, since, schema.Stamp(w.now), device); err != nil {
			return err
		}
		if clock.IsZero() {
			return nil
		}
		return w.recordClock(device, clock)
	})
}

func isUnique(err error) bool { return schema.IsUniqueViolation(err) }

// PutSettings sets settings (key → JSON value) in one transaction: every value is checked,
// and one bad value changes nothing.
func (e *Engine) PutSettings(ctx context.Context, actor schema.Actor, values map[string]json.RawMessage) error {
	if actor.Role != schema.RoleAdmin {
		return schema.Errorf(schema.CodeForbidden, "only an admin changes settings")
	}
	return e.run(ctx, func(w *wtx) error {
		for _, k := range slices.Sorted(maps.Keys(values)) {
			var v any
			dec := json.NewDecoder(strings.NewReader(string(values[k])))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				return schema.FieldError(schema.CodeBadRequest, k, "%s: not valid JSON", k)
			}
			v, err := schema.CheckSetting(k, v)
			if err != nil {
				return err
			}
			cur, err := w.Get(schema.EntSetting, k)
			if err != nil {
				ent, _ := schema.LookupEntity(schema.EntSetting)
				d := ent.Blank(k)
				d["key"], d["value"], d["created_at"] = k, v, schema.Stamp(w.now)
				_, err = w.write(actor, schema.EntSetting, nil, d, "create", "", nil)
			} else {
				next := cur.Clone()
				next["value"] = v
				_, err = w.write(actor, schema.EntSetting, cur, next, "update", "", nil)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// EnsureSettings stores every setting not stored yet with its default, so that the values
// in force are records: listed, audited, and on every field device.
func (e *Engine) EnsureSettings(ctx context.Context) error {
	have, err := e.List(ctx, Query{Entity: schema.EntSetting})
	if err != nil {
		return err
	}
	stored := map[string]bool{}
	for _, d := range have {
		stored[d.Str("key")] = true
	}
	missing := map[string]json.RawMessage{}
	for _, def := range schema.SettingDefs {
		if !stored[def.Key] {
			missing[def.Key] = schema.MustJSON(def.Default)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return e.PutSettings(ctx, schema.System, missing)
}
