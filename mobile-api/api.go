// Package mobileapi is what field apps talk to: the sync endpoint over WebSocket (with its
// HTTP fallback), blob upload and download, and the documents in a device's scope. It is
// transport only: the protocol, the scopes and the rules live in package sync and schema.
package mobileapi

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// API serves /mobile/v1.
type API struct {
	e      *syncer.Engine
	log    *slog.Logger
	Limits syncer.Limits
	// The heartbeat: a welcomed connection is pinged every PingEvery and closed when it sent
	// nothing, not even a pong, for IdleTimeout. Set before serving.
	PingEvery, IdleTimeout time.Duration

	mu    gosync.Mutex
	conns map[string]*conn // by device
	all   map[*conn]struct{}
}

// New builds the mobile API over an engine.
func New(e *syncer.Engine, log *slog.Logger) *API {
	return &API{e: e, log: log, Limits: syncer.Limits{MaxBatch: syncer.DefaultMaxBatch, MaxFrameBytes: syncer.DefaultMaxFrameBytes},
		PingEvery: PingEvery, IdleTimeout: IdleTimeout, conns: map[string]*conn{}, all: map[*conn]struct{}{}}
}

// Register adds the routes to app.
func (a *API) Register(app *fiber.App) {
	m := app.Group("/mobile/v1")
	KeepHijacked(app)
	m.Get("/sync", a.upgrade, a.websocket)
	dev := m.Group("", a.auth)
	dev.Post("/sync/pull", a.httpPull)
	dev.Post("/sync/push", a.httpPush)
	dev.Head("/blobs/:sha", a.blobHead)
	dev.Patch("/blobs/:sha", a.blobPatch)
	dev.Get("/blobs/:sha", a.blobGet)
	a.sheetRoutes(dev)
	a.monthRoutes(dev)
	a.appRoutes(app)
}

func (a *API) auth(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	token, _ := strings.CutPrefix(h, "Bearer ")
	s, err := a.e.Authenticate(c.UserContext(), strings.TrimSpace(token))
	if err != nil {
		return err
	}
	if s.Actor.DeviceID == "" {
		return schema.Errorf(schema.CodeUnauthenticated, "the mobile API needs a device token (POST /mobile/v1/auth/login)")
	}
	c.Locals("session", s)
	return c.Next()
}

func sess(c *fiber.Ctx) *syncer.Session {
	s, _ := c.Locals("session").(*syncer.Session)
	return s
}

func (a *API) httpPull(c *fiber.Ctx) error {
	f, err := syncer.DecodeFrame(bytes.Clone(c.Body()))
	if err != nil {
		return err
	}
	if f.Type != "" || f.Mutations != nil || f.Live {
		return schema.Errorf(schema.CodeBadRequest, "the pull body is {\"checkpoint\", \"limit\"}")
	}
	cp := ""
	if f.Checkpoint != nil {
		cp = *f.Checkpoint
	}
	if f.Limit < 0 {
		return schema.FieldError(schema.CodeValidation, "limit", "limit must not be negative")
	}
	page, err := a.e.Pull(c.UserContext(), sess(c).Actor, cp, f.Limit)
	if err != nil {
		return err
	}
	fr := syncer.ChangesFrame("", page)
	return c.JSON(fiber.Map{"changes": fr.Changes, "checkpoint": fr.Checkpoint, "has_more": fr.HasMore})
}

func (a *API) httpPush(c *fiber.Ctx) error {
	f, err := syncer.DecodeFrame(bytes.Clone(c.Body()))
	if err != nil {
		return err
	}
	if f.Type != "" || f.Checkpoint != nil {
		return schema.Errorf(schema.CodeBadRequest, "the push body is {\"mutations\": [...]}")
	}
	if len(f.Mutations) > a.Limits.MaxBatch {
		return schema.FieldError(schema.CodeTooLarge, "mutations", "%d mutations in one push; at most %d", len(f.Mutations), a.Limits.MaxBatch)
	}
	if err := a.e.RecordClock(c.UserContext(), sess(c).Actor.DeviceID, f.ClientTime); err != nil {
		return err
	}
	res, err := a.e.Push(c.UserContext(), sess(c).Actor, f.Mutations)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"results": res})
}

func (a *API) blobHead(c *fiber.Ctx) error {
	sum := strings.Clone(c.Params("sha"))
	complete, off, err := a.e.Blobs.Stat(sum)
	if err != nil {
		return err
	}
	c.Set("Upload-Offset", strconv.FormatInt(off, 10))
	c.Set("Cache-Control", "no-store")
	if !complete {
		return c.SendStatus(fiber.StatusNotFound)
	}
	c.Set("Upload-Length", strconv.FormatInt(off, 10))
	return c.SendStatus(fiber.StatusOK)
}

func (a *API) blobPatch(c *fiber.Ctx) error {
	return AppendBlob(c, a.e.Blobs, sess(c).Actor.DeviceID)
}

// AppendBlob answers a resumable upload's PATCH (Upload-Offset, optional Upload-Length, the
// bytes as body) into store for owner, whose unfinished uploads count against one quota: a
// device here, an office user on the coordinator API.
func AppendBlob(c *fiber.Ctx, store *syncer.BlobStore, owner string) error {
	sum := strings.Clone(c.Params("sha"))
	off, err := strconv.ParseInt(c.Get("Upload-Offset"), 10, 64)
	if err != nil || off < 0 {
		return schema.FieldError(schema.CodeValidation, "Upload-Offset", "Upload-Offset must be the number of bytes the server holds (HEAD tells)")
	}
	length := int64(-1)
	if v := c.Get("Upload-Length"); v != "" {
		if length, err = strconv.ParseInt(v, 10, 64); err != nil || length < 0 {
			return schema.FieldError(schema.CodeValidation, "Upload-Length", "Upload-Length must be the blob's size in bytes")
		}
	}
	n, complete, err := store.Append(owner, sum, off, length, bytes.NewReader(c.Body()))
	c.Set("Upload-Offset", strconv.FormatInt(n, 10))
	if err != nil {
		return err
	}
	if complete {
		return c.Status(fiber.StatusCreated).JSON(fiber.Map{"sha256": sum, "size": n, "complete": true})
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) blobGet(c *fiber.Ctx) error {
	sum := strings.Clone(c.Params("sha"))
	s := sess(c)
	if s.Actor.Role == schema.RoleTechnician {
		ok, err := a.e.BlobInScope(c.UserContext(), s.Actor, sum)
		if err != nil {
			return err
		}
		if !ok {
			return schema.Errorf(schema.CodeNotFound, "no blob %s in your scope", sum)
		}
	}
	r, size, typ, err := a.e.Blobs.Open(sum)
	if err != nil {
		return err
	}
	// A browser opening the address saves the file rather than showing it, and never
	// takes it for anything but the image type it was checked to be.
	c.Set(fiber.HeaderContentType, typ)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+sum+"."+typ[strings.LastIndex(typ, "/")+1:]+`"`)
	c.Set(fiber.HeaderCacheControl, "private, max-age=31536000, immutable")
	return c.SendStream(r, int(size))
}

// CloseAll closes every live connection with 1001 (going away), for shutdown.
func (a *API) CloseAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.all {
		c.shutdown()
	}
}
