// Package server is fieldsync's composition root: configuration, the Fiber app, middleware,
// the one error handler, and the coordinator API under /api/v1. It wires the sync engine,
// the mobile API and the reports together; nothing imports it.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	gosync "sync"
	"time"

	"github.com/gofiber/fiber/v2"

	mobileapi "fieldsync/mobile-api"
	"fieldsync/notify"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// Config is what a deployment sets.
type Config struct {
	Addr    string // listen address, e.g. :8080
	DataDir string // database, blobs, keys
	// DB is the store: "" for SQLite in DataDir, or a postgres:// URL shared by several
	// instances (docs/operations.md, "Several instances").
	DB        string
	Demo      bool // seed the demo company on an empty database
	BodyLimit int  // largest request body in bytes
	Log       *slog.Logger
	Now       func() time.Time
	// AdminPassword, when set, is the first admin's password instead of a random one
	// (tests); the random one is printed once.
	AdminPassword string
	// VerifyPerMinute is how many requests one client address may make to the public
	// /verify pages a minute; 0 means DefaultVerifyPerMinute.
	VerifyPerMinute int
	// Out receives the one-time messages for the person starting the server (the admin
	// password, the demo logins).
	Out func(string)
	// TLSCert and TLSKey are PEM files: with both the server speaks only HTTPS (and wss);
	// with neither, plain HTTP (behind a reverse proxy that terminates TLS).
	TLSCert, TLSKey string
	// SealKeyFile (--seal-key) or SealKey (FIELDSYNC_SEAL_KEY, the key's text) gives the
	// key sealing feedback sheets, which every instance on one database must share; with
	// neither it is DataDir/seal.key, made at the first start (docs/operations.md).
	SealKeyFile, SealKey string
	// MetricsAddr, when set, is where Listen serves /metrics (Prometheus), apart from the
	// API's port.
	MetricsAddr string
}

// Server is a running fieldsync.
type Server struct {
	App     *fiber.App
	Engine  *syncer.Engine
	DB      *schema.DB
	Mobile  *mobileapi.API
	Sealer  *schema.SealKey
	cfg     Config
	log     *slog.Logger
	gate    *loginGate // failed logins per username, address and both
	stop    chan struct{}
	sender  *notify.Sender
	bg      gosync.WaitGroup // the alerting goroutines
	stopBg  context.CancelFunc
	tls     *tls.Config // nil: plain HTTP
	metrics *metrics
	feeds   liveFeeds // the consoles' open live feeds per user
}

// DefaultBodyLimit bounds request bodies (blob chunks included).
const DefaultBodyLimit = 8 << 20

// New opens the data folder, brings the database up to date, and builds the app. On an
// empty database it creates the first admin (or the demo company with Demo).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.VerifyPerMinute <= 0 {
		cfg.VerifyPerMinute = DefaultVerifyPerMinute
	}
	if cfg.Out == nil {
		cfg.Out = func(s string) { fmt.Fprintln(os.Stderr, s) }
	}
	tlsConf, err := loadTLS(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, err
	}
	db, err := schema.OpenStore(ctx, cfg.DataDir, cfg.DB)
	if err != nil {
		return nil, err
	}
	eng, err := syncer.New(db, cfg.Log)
	if err != nil {
		db.Close()
		return nil, err
	}
	if cfg.Now != nil {
		eng.Now = cfg.Now
	}
	fail := func(err error) (*Server, error) {
		eng.Close()
		db.Close()
		return nil, err
	}
	blobs, err := syncer.OpenBlobStoreIn(db, filepath.Join(cfg.DataDir, "blobs"), eng.Settings().Int("blob_max_bytes"))
	if err != nil {
		return fail(err)
	}
	eng.Blobs = blobs
	fail = func(err error) (*Server, error) {
		blobs.Close()
		eng.Close()
		db.Close()
		return nil, err
	}
	sealer, err := schema.OpenSealKey(ctx, db, cfg.DataDir, cfg.SealKeyFile, cfg.SealKey)
	if err != nil {
		return fail(err)
	}
	eng.Sealer = sealer
	s := &Server{Engine: eng, DB: db, Sealer: sealer, cfg: cfg, log: cfg.Log, gate: newLoginGate(loginGateKeys),
		stop: make(chan struct{}), tls: tlsConf, metrics: newMetrics(eng)}
	eng.Metrics = s.metrics
	if err := s.bootstrap(ctx); err != nil {
		return fail(err)
	}
	if err := eng.EnsureSettings(ctx); err != nil {
		return fail(err)
	}
	if eng.Settings().String("public_url") == "" {
		cfg.Log.Warn("public_url is not set: printed feedback sheets carry the ticket number in their QR code instead of a verify link; set public_url to the address customers reach this server at")
	}
	s.App = fiber.New(fiber.Config{
		AppName:               "fieldsync",
		BodyLimit:             cfg.BodyLimit,
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
		ReadTimeout:           60 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	s.App.Use(s.recoverPanics, s.requestLog)
	s.routes()
	s.metrics.learnRoutes(s.App)
	go s.maintenance()
	wake := make(chan struct{}, 1)
	eng.Alerted = func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	s.sender = &notify.Sender{DB: db, Settings: eng.Settings, Now: func() time.Time { return eng.Now() }, Log: cfg.Log}
	bgCtx, stopBg := context.WithCancel(context.Background())
	s.stopBg = stopBg
	s.alerting(bgCtx, wake)
	eng.Listen()
	return s, nil
}

// Bind opens the configured listeners (the metrics one too, when set) without serving yet,
// so that the caller can say where the server listens once it does.
func (s *Server) Bind() (net.Listener, error) {
	if s.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", s.cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
		go func() {
			if err := s.ServeMetrics(mln); err != nil {
				s.log.Error("metrics listener", "err", err)
			}
		}()
	}
	return net.Listen("tcp", s.cfg.Addr)
}

// Serve serves on ln until Shutdown, over TLS when a certificate is configured.
func (s *Server) Serve(ln net.Listener) error {
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	return s.App.Listener(ln)
}

// loadTLS reads the certificate and key named by --tls-cert and --tls-key: both or neither.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case keyFile == "":
		return nil, errors.New("--tls-cert is set but --tls-key is not: give both, or neither for plain HTTP")
	case certFile == "":
		return nil, errors.New("--tls-key is set but --tls-cert is not: give both, or neither for plain HTTP")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Shutdown stops accepting connections, lets in-flight requests finish, closes WebSockets
// cleanly (close frame 1001), then stops the engine and closes the database.
func (s *Server) Shutdown(ctx context.Context) error {
	close(s.stop)
	if s.Mobile != nil {
		s.Mobile.CloseAll()
	}
	err := s.App.ShutdownWithContext(ctx)
	s.stopBg()
	s.bg.Wait()
	s.metrics.close(ctx)
	s.Engine.Close()
	s.Engine.Blobs.Close()
	if cerr := s.DB.Close(); err == nil {
		err = cerr
	}
	return err
}

// maintenance sweeps scopes, prunes old history and deletes abandoned blob uploads once at
// start and then hourly.
func (s *Server) maintenance() {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.Engine.Sweep(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("sweep", "err", err)
		}
		if n, err := s.Engine.Blobs.SweepPartial(time.Now()); err != nil { // file times are the wall clock
			s.log.Warn("sweep unfinished blob uploads", "err", err)
		} else if n > 0 {
			s.log.Info("deleted unfinished blob uploads", "count", n, "older_than", syncer.PartialUploadMaxAge.String())
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// bootstrap creates the first admin on an empty database, or the demo company.
func (s *Server) bootstrap(ctx context.Context) error {
	users, err := s.Engine.Users(ctx)
	if err != nil || len(users) > 0 {
		return err
	}
	if s.cfg.Demo {
		return s.seedDemo(ctx)
	}
	// A password the machine chose must be changed at the first login.
	pw, random := s.cfg.AdminPassword, s.cfg.AdminPassword == ""
	if random {
		b := make([]byte, 9)
		rand.Read(b)
		pw = hex.EncodeToString(b)
	}
	if _, err := s.Engine.CreateUser(ctx, schema.System, syncer.NewUser{Username: "admin", Name: "Administrator", Role: schema.RoleAdmin,
		Password: pw, MustChangePassword: random}); err != nil {
		return err
	}
	s.cfg.Out("fieldsync: created the first account: username admin, password " + pw + " (shown once; the first login must change it)")
	return nil
}

// httpStatus is the one place where an error code becomes an HTTP status.
var httpStatus = map[string]int{
	schema.CodeBadRequest:         fiber.StatusBadRequest,
	schema.CodeValidation:         fiber.StatusBadRequest,
	schema.CodeUnauthenticated:    fiber.StatusUnauthorized,
	schema.CodeForbidden:          fiber.StatusForbidden,
	schema.CodeOutOfScope:         fiber.StatusForbidden,
	schema.CodeNotFound:           fiber.StatusNotFound,
	schema.CodeMethodNotAllowed:   fiber.StatusMethodNotAllowed,
	schema.CodeConflict:           fiber.StatusConflict,
	schema.CodePreconditionFailed: fiber.StatusPreconditionFailed,
	schema.CodeInvalidTransition:  fiber.StatusConflict,
	schema.CodeSealed:             fiber.StatusConflict,
	schema.CodeTicketCancelled:    fiber.StatusConflict,
	schema.CodeAlreadySigned:      fiber.StatusConflict,
	schema.CodeMissingBlob:        fiber.StatusConflict,
	schema.CodeDependsOnRejected:  fiber.StatusConflict,
	schema.CodeTooLarge:           fiber.StatusRequestEntityTooLarge,
	schema.CodeUnsupportedMedia:   fiber.StatusUnsupportedMediaType,
	schema.CodeHashMismatch:       fiber.StatusUnprocessableEntity,
	schema.CodeDeviceSignature:    fiber.StatusUnprocessableEntity,
	schema.CodeRateLimited:        fiber.StatusTooManyRequests,
	schema.CodeCheckpointExpired:  fiber.StatusGone,
	schema.CodeUnavailable:        fiber.StatusServiceUnavailable,
	schema.CodeInternal:           fiber.StatusInternalServerError,
}

// HTTPStatus returns the status for an error code.
func HTTPStatus(code string) int {
	if st, ok := httpStatus[code]; ok {
		return st
	}
	return fiber.StatusInternalServerError
}

// handleError renders every error as {"error": {code, message, field?, record?}}. Errors that
// are not *schema.Error are logged with the request id and shown only as internal.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	se, ok := schema.AsError(err)
	var fe *fiber.Error
	switch {
	case ok:
	case errors.As(err, &fe):
		se = fiberError(c, fe)
	default:
		rid := requestID(c)
		s.log.Error("internal error", "err", err, "request_id", rid, "method", c.Method(), "path", c.Path())
		se = schema.Errorf(schema.CodeInternal, "internal error (request id %s)", rid)
	}
	msg, item := localize(se, answerLang(c.Get(fiber.HeaderAcceptLanguage)))
	body := fiber.Map{"code": se.Code, "message": msg}
	if se.Field != "" {
		body["field"] = se.Field
		body["item"] = item
	}
	if se.Record != nil {
		body["record"] = se.Record
	}
	for k, v := range se.Extra {
		if _, taken := body[k]; !taken {
			body[k] = v
		}
	}
	if se.Code == schema.CodeRateLimited && len(c.Response().Header.Peek(fiber.HeaderRetryAfter)) == 0 {
		c.Set(fiber.HeaderRetryAfter, "60")
	}
	return c.Status(HTTPStatus(se.Code)).JSON(fiber.Map{"error": body})
}

// fiberError translates the router's own errors (no route, wrong method, body too large).
func fiberError(c *fiber.Ctx, fe *fiber.Error) *schema.Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return schema.Errorf(schema.CodeNotFound, "no route %s %s", c.Method(), c.Path())
	case fiber.StatusMethodNotAllowed:
		return schema.Errorf(schema.CodeMethodNotAllowed, "%s is not allowed on %s", c.Method(), c.Path())
	case fiber.StatusRequestEntityTooLarge:
		return schema.Errorf(schema.CodeTooLarge, "the request body is over the limit of %d bytes", c.App().Config().BodyLimit)
	case fiber.StatusBadRequest:
		return schema.Errorf(schema.CodeBadRequest, "%s", fe.Message)
	case fiber.StatusUnsupportedMediaType:
		return schema.Errorf(schema.CodeUnsupportedMedia, "%s", fe.Message)
	}
	if fe.Code >= 500 {
		return schema.Errorf(schema.CodeInternal, "internal error (request id %s)", requestID(c))
	}
	return schema.Errorf(schema.CodeBadRequest, "%s", fe.Message)
}

func requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals("request_id").(string); ok {
		return id
	}
	return ""
}

// recoverPanics turns a panic into an internal error with the request id.
func (s *Server) recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic", "panic", r, "request_id", requestID(c), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Next()
}

// requestLog gives every request an id (echoed in X-Request-Id) and logs one line for it.
func (s *Server) requestLog(c *fiber.Ctx) error {
	start := time.Now()
	b := make([]byte, 8)
	rand.Read(b)
	rid := hex.EncodeToString(b)
	c.Locals("request_id", rid)
	c.Set("X-Request-Id", rid)
	err := c.Next()
	if err != nil {
		if herr := s.handleError(c, err); herr != nil {
			s.log.Error("write error response", "err", herr)
		}
	}
	s.metrics.request(c, err)
	user := ""
	if sess := session(c); sess != nil {
		user = sess.Actor.UserID
	}
	if !strings.HasPrefix(c.Path(), "/healthz") {
		s.log.Info("request", "method", c.Method(), "path", c.Path(), "status", c.Response().StatusCode(),
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "request_id", rid, "user", user)
	}
	return nil
}
