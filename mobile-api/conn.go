package mobileapi

import (
	"context"
	"errors"
	"io"
	"strings"
	gosync "sync"
	"sync/atomic"
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
	// closeGrace is how long a closing connection waits for the peer's close frame before
	// the TCP connection is dropped.
	closeGrace = time.Second
	// helloFrameBytes bounds a frame before hello, after decompression: a stranger gets no
	// more than this, whatever the frame inflates to.
	helloFrameBytes = 64 << 10
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
		cn := &conn{api: a, ws: ws, done: make(chan struct{}), replaced: make(chan struct{}), bye: make(chan struct{}),
			handled: make(chan struct{}, 1)}
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

	// dl guards the read deadline: once closing, nothing extends it again.
	dl      gosync.Mutex
	closing bool
	welcome atomic.Bool   // hello accepted: pongs and frames keep the connection alive
	handled chan struct{} // the owner handled a frame (the reader waits for it before hello)
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
		// Closing a hijacked connection is left to the server once the handler returns, and
		// the handler waits for the reader (fasthttp then recycles the connection's
		// buffers): the reader gets a short deadline that nothing extends.
		cancel()
		c.stopReading(closeGrace)
		<-c.done
	}()

	// Pongs keep a connection alive only once it said hello: a stranger's pongs do not
	// hold a socket open.
	c.ws.SetReadDeadline(time.Now().Add(IdleTimeout))
	c.ws.SetPongHandler(func(string) error {
		if c.welcome.Load() {
			c.extendRead()
		}
		return nil
	})
	in := make(chan inFrame, 8)
	go func() {
		defer close(c.done)
		for {
			data, err := c.readFrame()
			select {
			case in <- inFrame{data, err}:
			case <-ctx.Done():
				return
			}
			if err != nil && !errors.Is(err, errBinary) && !errors.Is(err, errTooBig) {
				return
			}
			// After a frame too big the reader goes on: the next read skips the rest of
			// that frame as it is on the wire, without inflating it, and then meets the
			// peer's answer to the close (or the closing deadline).
			if !c.welcome.Load() {
				// Before hello a frame is read only once the one before it was handled:
				// the next one's size limit depends on whether that was a good hello.
				select {
				case <-c.handled:
				case <-ctx.Done():
					return
				}
			}
			c.extendRead()
		}
	}()

	ping := time.NewTicker(PingEvery)
	defer ping.Stop()
	hello := time.NewTimer(HelloTimeout)
	defer hello.Stop()
	var wake <-chan struct{}
	var recheck <-chan struct{}
	expiry := time.NewTimer(time.Hour)
	expiry.Stop()
	defer expiry.Stop()
	frames, window := 0, time.Now()
	for {
		select {
		case f := <-in:
			if f.err != nil {
				if errors.Is(f.err, errBinary) {
					c.send(syncer.ErrorFrame("", schema.Errorf(schema.CodeBadRequest, "frames are JSON text frames")))
					c.frameDone()
					continue
				}
				if errors.Is(f.err, errTooBig) || errors.Is(f.err, websocket.ErrReadLimit) {
					c.close(syncer.CloseTooBig, "frame over max_frame_bytes (decompressed)")
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
			c.frameDone()
			if c.sub != nil && wake == nil {
				wake, recheck = c.sub.Wake, c.sub.Recheck
				hello.Stop()
				expiry.Reset(time.Until(c.cv.Session.ExpiresAt))
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
		case <-recheck:
			if !c.revalidate(ctx, expiry) {
				return
			}
		case <-expiry.C:
			if !c.revalidate(ctx, expiry) {
				return
			}
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

var (
	errBinary = errors.New("binary frame")
	errTooBig = errors.New("frame too big")
)

// readFrame reads one message, bounded by what it decodes to: a compressed frame is
// inflated only up to the limit (before hello, a small one).
func (c *conn) readFrame() ([]byte, error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	limit := int64(helloFrameBytes)
	if c.welcome.Load() {
		limit = int64(c.api.Limits.MaxFrameBytes)
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooBig
	}
	if typ != websocket.TextMessage {
		return nil, errBinary
	}
	return data, nil
}

// frameDone tells a reader waiting before hello that its frame was handled.
func (c *conn) frameDone() {
	select {
	case c.handled <- struct{}{}:
	default:
	}
}

// extendRead moves the read deadline on, unless the connection is closing.
func (c *conn) extendRead() {
	c.dl.Lock()
	defer c.dl.Unlock()
	if !c.closing {
		c.ws.SetReadDeadline(time.Now().Add(IdleTimeout))
	}
}

// stopReading gives the reader a last deadline that nothing extends.
func (c *conn) stopReading(grace time.Duration) {
	c.dl.Lock()
	defer c.dl.Unlock()
	c.closing = true
	c.ws.SetReadDeadline(time.Now().Add(grace))
}

// revalidate checks the session again after its account changed or its token reached its
// expiry; false means the connection was closed (4403 for a revoked device, else 4401).
func (c *conn) revalidate(ctx context.Context, expiry *time.Timer) bool {
	s, err := c.api.e.Revalidate(ctx, c.cv.Session)
	switch {
	case errors.Is(err, syncer.ErrDeviceRevoked):
		c.close(syncer.CloseRevoked, "device revoked")
		return false
	case err != nil:
		if se, ok := schema.AsError(err); ok {
			c.close(syncer.CloseUnauthenticated, se.Message)
		} else {
			c.api.log.Error("revalidate session", "err", err)
		}
		return false
	}
	c.cv.Session = s
	expiry.Reset(time.Until(s.ExpiresAt))
	return true
}

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
	c.welcome.Store(true)
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
