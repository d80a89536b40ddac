package mobileapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gorilla/websocket"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// Timers of a sync connection. PingEvery and IdleTimeout are the defaults of API.PingEvery
// and API.IdleTimeout.
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
	if !isUpgrade(c) {
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

// isUpgrade tells whether the request asks for a WebSocket (Connection: upgrade, Upgrade:
// websocket).
func isUpgrade(c *fiber.Ctx) bool {
	return hasToken(c.Get(fiber.HeaderConnection), "upgrade") && hasToken(c.Get(fiber.HeaderUpgrade), "websocket")
}

func hasToken(header, token string) bool {
	for _, t := range strings.Split(header, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// syncUpgrader answers the sync endpoint's handshakes. Small read buffers and pooled write
// buffers: thousands of phones sit idle on their connections, and an idle connection then
// holds no write buffer at all.
var syncUpgrader = websocket.Upgrader{
	HandshakeTimeout: writeTimeout,
	ReadBufferSize:   1024, WriteBufferSize: 4096, WriteBufferPool: writeBuffers,
	Subprotocols:      []string{syncer.Subprotocol},
	EnableCompression: true,
	// Phones are no browsers, and the field app authenticates in hello, never by cookie:
	// any origin may connect.
	CheckOrigin: func(*http.Request) bool { return true },
	// A refused handshake says why, as the API's errors do.
	Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
		b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": schema.CodeBadRequest, "message": reason.Error()}})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Sec-WebSocket-Version", "13")
		w.WriteHeader(status)
		w.Write(b)
	},
}

func (a *API) websocket(c *fiber.Ctx) error {
	s, _ := c.Locals("session").(*syncer.Session)
	return Upgrade(&syncUpgrader, func(ws *websocket.Conn) {
		cn := &conn{api: a, ws: ws}
		cn.ctx, cn.cancel = context.WithCancel(context.Background())
		cn.cv.Session = s
		cn.serve()
	})(c)
}

// conn is one sync connection. Its one goroutine (serve) reads frames and answers each in
// turn; what happens while it waits on the socket (a change to send, the session to check
// again, a ping, the session's expiry, a newer connection of the device, shutdown) is done
// by whichever goroutine it comes on, holding mu, so an idle connection costs one goroutine.
type conn struct {
	api *API
	ws  *websocket.Conn
	// ctx ends when the connection does: work still running for it (a page read ahead
	// for its next pull) stops.
	ctx    context.Context
	cancel context.CancelFunc

	// mu is held for everything but reading: the conversation, the subscription and every
	// write.
	mu    gosync.Mutex
	cv    syncer.Conversation
	sub   *syncer.Sub
	ended bool        // closing or closed: nothing more is answered or sent
	timer *time.Timer // from welcome: the next ping or the session's expiry, whichever is due first
	ping  time.Time   // when the next ping is due
	// frames counts the frames since window began (floodFrames a floodWindow at most).
	frames int
	window time.Time

	woken, rechecking atomic.Bool // a wake-up or a session check is on its way

	// dl guards the read deadline: once closing, nothing extends it again.
	dl      gosync.Mutex
	closing bool
	welcome atomic.Bool // hello accepted: pongs and frames keep the connection alive
}

// serve reads and answers frames until the connection ends, then lets go of it.
func (c *conn) serve() {
	a := c.api
	c.cv.Limits = a.Limits
	c.cv.Authenticate = a.e.Authenticate
	a.mu.Lock()
	a.all[c] = struct{}{}
	a.mu.Unlock()
	defer c.release()

	// A connection says hello within HelloTimeout, whatever it sends before. Pongs keep a
	// connection alive only once it said hello: a stranger's pongs do not hold a socket open.
	c.ws.SetReadDeadline(time.Now().Add(HelloTimeout))
	c.ws.SetPongHandler(func(string) error {
		if c.welcome.Load() {
			c.extendRead()
		}
		return nil
	})
	c.window = time.Now()
	for {
		data, err := c.readFrame()
		var more bool
		if err == nil {
			// A frame is answered on a goroutine of its own: answering grows a stack
			// (decoding, the store, encoding) that the reader would keep while the phone
			// idles.
			ch := make(chan bool, 1)
			go func() { ch <- c.answer(data, nil) }()
			more = <-ch
		} else {
			more = c.answer(nil, err)
		}
		if !more {
			return
		}
		if c.welcome.Load() {
			c.extendRead()
		}
	}
}

// answer handles what one read returned; false means reading is over.
func (c *conn) answer(data []byte, err error) (more bool) {
	defer c.locked()()
	if c.ended {
		// Closing: frames are dropped until the peer answers the close (or the closing
		// deadline). After a frame too big the next read skips the rest of that frame as
		// it is on the wire, without inflating it.
		return err == nil || errors.Is(err, errBinary) || errors.Is(err, errTooBig)
	}
	switch {
	case errors.Is(err, errBinary):
		c.send(syncer.ErrorFrame("", schema.Errorf(schema.CodeBadRequest, "frames are JSON text frames")))
	case errors.Is(err, errTooBig) || errors.Is(err, websocket.ErrReadLimit):
		c.end(syncer.CloseTooBig, "frame over max_frame_bytes (decompressed)")
	case err != nil:
		if !c.cv.Welcomed && isTimeout(err) {
			c.end(syncer.CloseUnauthenticated, "no valid hello within 10 s")
		}
		return false
	default:
		if time.Since(c.window) > floodWindow {
			c.frames, c.window = 0, time.Now()
		}
		if c.frames++; c.frames > floodFrames {
			c.end(syncer.CloseRateLimited, "too many frames; reconnect after a backoff")
		} else if !c.handle(data) || c.cv.Live && !c.flushLive() {
			c.end(0, "")
		}
	}
	return true
}

// locked takes mu and returns what lets it go, for defer: a panic in between is logged and
// ends the connection, as a panicking request does not take the server down.
func (c *conn) locked() func() {
	c.mu.Lock()
	return func() {
		if r := recover(); r != nil {
			c.api.log.Error("panic", "panic", r, "stack", string(debug.Stack()))
			c.end(0, "")
		}
		c.mu.Unlock()
	}
}

// release ends the connection for good once its reader is done: nothing more wakes it, its
// device no longer finds it, and the socket closes.
func (c *conn) release() {
	a := c.api
	c.mu.Lock()
	c.ended = true
	if c.timer != nil {
		c.timer.Stop()
	}
	sub, s := c.sub, c.cv.Session
	c.mu.Unlock()
	if sub != nil {
		a.e.Hub.Unsubscribe(sub)
	}
	a.mu.Lock()
	delete(a.all, c)
	if s != nil && a.conns[s.Actor.DeviceID] == c {
		delete(a.conns, s.Actor.DeviceID)
	}
	a.mu.Unlock()
	c.cancel()
	c.ws.NetConn().Close()
}

// end closes the conversation (c.mu held): a close frame with code unless it is 0, then
// the reader waits closeGrace at most for the peer's answer.
func (c *conn) end(code int, reason string) {
	if c.ended {
		return
	}
	c.ended = true
	if c.timer != nil {
		c.timer.Stop()
	}
	if code != 0 {
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	}
	c.dl.Lock()
	defer c.dl.Unlock()
	c.closing = true
	c.ws.SetReadDeadline(time.Now().Add(closeGrace))
}

// endLater ends the connection from another goroutine without waiting for it (a newer
// connection of the device, shutdown): it may be answering a frame.
func (c *conn) endLater(code int, reason string) {
	go func() {
		defer c.locked()()
		c.end(code, reason)
	}()
}

func (c *conn) shutdown() { c.endLater(websocket.CloseGoingAway, "server shutting down") }

// wake is the hub's call when a change concerns the connection's user: the live pull sends
// it, on a goroutine of its own (the hub does not wait). Wake-ups coalesce: one is on its
// way at most, and it pulls everything new.
func (c *conn) wake() {
	c.coalesce(&c.woken, func() {
		if c.cv.Live && !c.flushLive() {
			c.end(0, "")
		}
	})
}

// recheck is the hub's call when the user's account changed: the session is checked again.
func (c *conn) recheck() { c.coalesce(&c.rechecking, func() { c.revalidate() }) }

// coalesce runs fn on a goroutine of its own, holding mu, unless the connection ended meanwhile,
// and unless a run is already on its way (pending marks it): calls coalesce into one run.
func (c *conn) coalesce(pending *atomic.Bool, fn func()) {
	if !pending.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.locked()()
		pending.Store(false)
		if !c.ended {
			fn()
		}
	}()
}

// tick sends the ping that is due and checks the session at its expiry.
func (c *conn) tick() {
	defer c.locked()()
	if c.ended {
		return
	}
	now := time.Now()
	if !now.Before(c.cv.Session.ExpiresAt) && !c.revalidate() {
		return
	}
	if !now.Before(c.ping) {
		if err := c.ws.WriteControl(websocket.PingMessage, nil, now.Add(writeTimeout)); err != nil {
			c.end(0, "")
			return
		}
		c.ping = now.Add(c.api.PingEvery)
	}
	c.arm()
}

// arm sets the timer for the next ping or the session's expiry, whichever comes first.
func (c *conn) arm() {
	d := min(time.Until(c.ping), time.Until(c.cv.Session.ExpiresAt))
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.tick)
	} else {
		c.timer.Reset(d)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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

// extendRead moves the read deadline on, unless the connection is closing.
func (c *conn) extendRead() {
	c.dl.Lock()
	defer c.dl.Unlock()
	if !c.closing {
		c.ws.SetReadDeadline(time.Now().Add(c.api.IdleTimeout))
	}
}

// revalidate checks the session again after its account changed or its token reached its
// expiry; false means the connection was closed (4403 for a revoked device, else 4401).
func (c *conn) revalidate() bool {
	s, err := c.api.e.Revalidate(c.ctx, c.cv.Session)
	switch {
	case errors.Is(err, syncer.ErrDeviceRevoked):
		c.end(syncer.CloseRevoked, "device revoked")
		return false
	case err != nil:
		if se, ok := schema.AsError(err); ok {
			c.end(syncer.CloseUnauthenticated, se.Message)
		} else {
			c.api.log.Error("revalidate session", "err", err)
			c.end(0, "")
		}
		return false
	}
	c.cv.Session = held(s)
	c.arm()
	return true
}

// held is what a welcomed connection keeps of its session: not the user's record, which
// only the welcome shows.
func held(s *syncer.Session) *syncer.Session {
	h := *s
	h.User = nil
	return &h
}

// writeBuffers is shared by every sync connection's writes.
var writeBuffers = &gosync.Pool{}

// welcomed registers the connection for its device (replacing an older one) and for live
// wake-ups.
func (c *conn) welcomed() {
	a := c.api
	s := held(c.cv.Session)
	c.cv.Session = s
	a.mu.Lock()
	if old := a.conns[s.Actor.DeviceID]; old != nil && old != c {
		old.endLater(syncer.CloseReplaced, "replaced by a newer connection of this device")
	}
	a.conns[s.Actor.DeviceID] = c
	a.mu.Unlock()
	c.sub = a.e.Hub.Subscribe(s.Actor.UserID, s.Actor.DeviceID, s.Actor.Role != schema.RoleTechnician, c.wake, c.recheck)
	c.welcome.Store(true)
	c.ping = time.Now().Add(a.PingEvery)
	c.arm()
}

// handle answers one frame; false means the connection is over.
func (c *conn) handle(data []byte) bool {
	ctx := c.ctx
	f, err := syncer.DecodeFrame(data)
	if err != nil {
		return c.send(syncer.ErrorFrame(f.ID, err))
	}
	replies, err := c.api.e.Handle(ctx, &c.cv, f)
	var ce *syncer.CloseError
	if errors.As(err, &ce) {
		c.end(ce.Code, ce.Reason)
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
	for i, r := range replies {
		replies[i] = syncer.Frame{} // a page is not kept while the socket takes its encoding
		if !c.send(r) {
			return false
		}
	}
	return true
}

func (c *conn) flushLive() bool {
	frames, err := c.api.e.LiveChanges(c.ctx, &c.cv)
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
