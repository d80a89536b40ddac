package mobileapi

import (
	"context"
	"errors"
	"strings"
	gosync "sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// Timers of a sync connection.
const (
	PingEvery    = 25 * time.Second
	IdleTimeout  = 60 * time.Second
	HelloTimeout = 10 * time.Second
	writeTimeout = 10 * time.Second
	// floodFrames in floodWindow closes the connection with 4429.
	floodFrames = 500
	floodWindow = time.Second
)

// upgrade accepts only WebSocket upgrades; a bearer token on the upgrade is checked now,
// a token in hello later.
func (a *API) upgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return schema.Errorf(schema.CodeBadRequest, "GET /mobile/v1/sync is a WebSocket endpoint (subprotocol %s); HTTP clients use POST /mobile/v1/sync/pull and /push", syncer.Subprotocol)
	}
	if t, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer "); ok {
		s, err := a.e.Authenticate(c.UserContext(), strings.TrimSpace(t))
		if err != nil {
			return err
		}
		c.Locals("session", s)
	}
	return c.Next()
}

func (a *API) websocket() fiber.Handler {
	return websocket.New(func(ws *websocket.Conn) {
		cn := &conn{api: a, ws: ws, done: make(chan struct{}), replaced: make(chan struct{}), bye: make(chan struct{})}
		if s, ok := ws.Locals("session").(*syncer.Session); ok {
			cn.cv.Session = s
		}
		cn.run()
	}, websocket.Config{Subprotocols: []string{syncer.Subprotocol}, EnableCompression: true,
		// Small read buffers and pooled write buffers: thousands of phones sit idle on their
		// connections, and an idle connection then holds no write buffer at all.
		ReadBufferSize: 1024, WriteBufferSize: 4096, WriteBufferPool: writeBuffers})
}

// conn is one sync connection. Its owner goroutine (run) does every write and all protocol
// work; a reader goroutine only reads frames and hands them over.
type conn struct {
	api      *API
	ws       *websocket.Conn
	cv       syncer.Conversation
	sub      *syncer.Sub
	done     chan struct{} // reader ended
	replaced chan struct{} // a newer connection of this device took over
	bye      chan struct{} // server shutting down
	once     gosync.Once
	byeOnce  gosync.Once
}

type inFrame struct {
	data []byte
	err  error
}

func (c *conn) shutdown() { c.byeOnce.Do(func() { close(c.bye) }) }

func (c *conn) run() {
	a := c.api
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.cv.Limits = a.Limits
	c.cv.Authenticate = a.e.Authenticate
	a.mu.Lock()
	a.all[c] = struct{}{}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.all, c)
		if c.cv.Session != nil && a.conns[c.cv.Session.Actor.DeviceID] == c {
			delete(a.conns, c.cv.Session.Actor.DeviceID)
		}
		a.mu.Unlock()
		if c.sub != nil {
			a.e.Hub.Unsubscribe(c.sub)
		}
		c.ws.Close()
		// The reader must be gone before the handler returns: fasthttp then recycles the
		// connection's buffers for other connections.
		cancel()
		<-c.done
	}()

	c.ws.SetReadLimit(int64(a.Limits.MaxFrameBytes))
	c.ws.SetReadDeadline(time.Now().Add(IdleTimeout))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(IdleTimeout)) })
	in := make(chan inFrame, 8)
	go func() {
		defer close(c.done)
		for {
			typ, data, err := c.ws.ReadMessage()
			if err == nil && typ != websocket.TextMessage {
				err = errBinary
			}
			select {
			case in <- inFrame{data, err}:
			case <-ctx.Done():
				return
			}
			if err != nil && !errors.Is(err, errBinary) {
				return
			}
			c.ws.SetReadDeadline(time.Now().Add(IdleTimeout))
		}
	}()

	ping := time.NewTicker(PingEvery)
	defer ping.Stop()
	hello := time.NewTimer(HelloTimeout)
	defer hello.Stop()
	var wake <-chan struct{}
	var kicked <-chan struct{}
	frames, window := 0, time.Now()
	for {
		select {
		case f := <-in:
			if f.err != nil {
				if errors.Is(f.err, errBinary) {
					c.send(syncer.ErrorFrame("", schema.Errorf(schema.CodeBadRequest, "frames are JSON text frames")))
					continue
				}
				if errors.Is(f.err, websocket.ErrReadLimit) || strings.Contains(f.err.Error(), "read limit") {
					c.close(syncer.CloseTooBig, "frame over max_frame_bytes")
				}
				return
			}
			if time.Since(window) > floodWindow {
				frames, window = 0, time.Now()
			}
			if frames++; frames > floodFrames {
				c.close(syncer.CloseRateLimited, "too many frames; reconnect after a backoff")
				return
			}
			if !c.handle(ctx, f.data) {
				return
			}
			if c.sub != nil && wake == nil {
				wake, kicked = c.sub.Wake, c.sub.Kicked
				hello.Stop()
			}
			if c.cv.Live {
				if !c.flushLive(ctx) {
					return
				}
			}
		case <-wake:
			if c.cv.Live && !c.flushLive(ctx) {
				return
			}
		case <-kicked:
			c.close(syncer.CloseRevoked, "device revoked")
			return
		case <-c.replaced:
			c.close(syncer.CloseReplaced, "replaced by a newer connection of this device")
			return
		case <-c.bye:
			c.close(websocket.CloseGoingAway, "server shutting down")
			return
		case <-hello.C:
			if !c.cv.Welcomed {
				c.close(syncer.CloseUnauthenticated, "no valid hello within 10 s")
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				return
			}
		case <-c.done:
			return
		}
	}
}

var errBinary = errors.New("binary frame")

// writeBuffers is shared by every sync connection's writes.
var writeBuffers = &gosync.Pool{}

// welcomed registers the connection for its device (replacing an older one) and for live
// wake-ups.
func (c *conn) welcomed() {
	a := c.api
	s := c.cv.Session
	a.mu.Lock()
	if old := a.conns[s.Actor.DeviceID]; old != nil && old != c {
		old.once.Do(func() { close(old.replaced) })
	}
	a.conns[s.Actor.DeviceID] = c
	a.mu.Unlock()
	c.sub = a.e.Hub.Subscribe(s.Actor.UserID, s.Actor.DeviceID, s.Actor.Role != schema.RoleTechnician)
}

// handle answers one frame; false means the connection is over.
func (c *conn) handle(ctx context.Context, data []byte) bool {
	f, err := syncer.DecodeFrame(data)
	if err != nil {
		return c.send(syncer.ErrorFrame(f.ID, err))
	}
	replies, err := c.api.e.Handle(ctx, &c.cv, f)
	var ce *syncer.CloseError
	if errors.As(err, &ce) {
		c.close(ce.Code, ce.Reason)
		return false
	}
	if err != nil {
		c.api.log.Error("sync frame", "err", err, "type", f.Type)
		return c.send(syncer.ErrorFrame(f.ID, schema.Errorf(schema.CodeInternal, "internal error")))
	}
	if c.cv.Welcomed && c.sub == nil {
		// Registered before welcome goes out: once the app holds welcome, a newer
		// connection of the device finds this one and replaces it, never the reverse.
		c.welcomed()
	}
	for _, r := range replies {
		if !c.send(r) {
			return false
		}
	}
	return true
}

func (c *conn) flushLive(ctx context.Context) bool {
	frames, err := c.api.e.LiveChanges(ctx, &c.cv)
	for _, f := range frames {
		if !c.send(f) {
			return false
		}
	}
	if err != nil {
		if _, ok := schema.AsError(err); ok {
			return c.send(syncer.ErrorFrame(c.cv.LiveRe, err))
		}
		c.api.log.Error("live pull", "err", err)
		return false
	}
	return true
}

func (c *conn) send(f syncer.Frame) bool {
	b, err := syncer.EncodeFrame(f)
	if err != nil {
		c.api.log.Error("encode frame", "err", err)
		return false
	}
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b) == nil
}

func (c *conn) close(code int, reason string) {
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}
