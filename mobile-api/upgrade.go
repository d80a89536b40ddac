package mobileapi

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gorilla/websocket"

	"fieldsync/schema"
)

// Upgrade answers a WebSocket upgrade and hands the connection to serve, which runs on the
// connection's own goroutine. The handshake is gorilla's (net/http) Upgrader, answered on
// the raw connection once fasthttp has let go of it: fasthttp would otherwise keep the
// request's context and its 4 KB read buffer for as long as the handler runs, that is for
// the whole life of a phone's connection, and a goroutine waiting on it. The fasthttp server
// must keep hijacked connections open after the hijack handler returns
// (KeepHijackedConns, see KeepHijacked); the connection is then serve's to close.
func Upgrade(up *websocket.Upgrader, serve func(*websocket.Conn)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !c.App().Server().KeepHijackedConns {
			return schema.Errorf(schema.CodeInternal, "internal error: the server closes hijacked connections (mobileapi.KeepHijacked)")
		}
		// What the handshake needs, copied: Fiber reuses the request's buffers.
		r := &http.Request{Method: c.Method(), Host: string(c.Request().Host()), Header: http.Header{},
			RequestURI: string(c.Request().RequestURI())}
		c.Request().Header.VisitAll(func(k, v []byte) { r.Header.Add(string(k), string(v)) })
		ctx := c.Context()
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(hc net.Conn) {
			raw := hc
			if u, ok := hc.(interface{ UnsafeConn() net.Conn }); ok {
				raw = u.UnsafeConn()
			}
			if sentEarly(hc, raw) {
				// A client must wait for the handshake's answer before it sends frames.
				raw.Close()
				return
			}
			w := &hijacker{conn: raw, header: http.Header{}}
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				if !w.hijacked {
					w.reply()
				}
				raw.Close()
				return
			}
			go serve(ws)
		})
		return nil
	}
}

// KeepHijacked makes app's server leave hijacked connections open when their hijack handler
// returns, as Upgrade needs.
func KeepHijacked(app *fiber.App) { app.Server().KeepHijackedConns = true }

// sentEarly tells whether the client sent bytes after its upgrade request before it had the
// answer: they would sit in fasthttp's read buffer, which goes back to its pool. Reading
// through hc with a deadline in the past returns what is buffered at once, and otherwise
// fails at once without reading the socket.
func sentEarly(hc, raw net.Conn) bool {
	if raw.SetReadDeadline(time.Unix(1, 0)) != nil {
		return true
	}
	var b [1]byte
	n, _ := hc.Read(b[:])
	return n > 0 || raw.SetReadDeadline(time.Time{}) != nil
}

// hijacker is the http.ResponseWriter gorilla's Upgrader writes its answer to: the raw
// connection once hijacked, or an HTTP error it refused the handshake with.
type hijacker struct {
	conn     net.Conn
	header   http.Header
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (h *hijacker) Header() http.Header         { return h.header }
func (h *hijacker) WriteHeader(status int)      { h.status = status }
func (h *hijacker) Write(b []byte) (int, error) { return h.body.Write(b) }

// Hijack hands over the connection with small buffers: nothing was read ahead, and the
// Upgrader writes its 101 answer through a buffer it then drops.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return h.conn, bufio.NewReadWriter(bufio.NewReaderSize(h.conn, 16), bufio.NewWriterSize(h.conn, 256)), nil
}

// reply writes the error the Upgrader refused the handshake with, and the connection closes.
func (h *hijacker) reply() {
	if h.status == 0 {
		h.status = http.StatusBadRequest
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", h.status, http.StatusText(h.status))
	h.header.Set("Connection", "close")
	h.header.Set("Content-Length", strconv.Itoa(h.body.Len()))
	h.header.Write(&b)
	b.WriteString("\r\n")
	b.Write(h.body.Bytes())
	h.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	h.conn.Write(b.Bytes())
}
