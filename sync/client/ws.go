package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	stdsync "sync"
	"time"

	"github.com/gorilla/websocket"

	syncer "fieldsync/sync"
)

// readIdle is how long the connection may stay silent before the client gives up on it; the
// server pings every 25 s.
const readIdle = 75 * time.Second

// inbound is one frame from the reader goroutine, or the head of a changes frame it is
// about to decode, or the error that ended the reads.
type inbound struct {
	f    syncer.Frame
	head *pageHead
	err  error
}

// pageHead is what a changes frame says before its changes: the pull it answers, its
// checkpoint and whether more follows (the server writes these first).
type pageHead struct {
	re, checkpoint string
	more           bool
}

// changesHead reads the head of a changes frame whose checkpoint and has_more come before
// its changes; ok is false for any other frame.
func changesHead(data []byte) (h pageHead, ok bool) {
	if !bytes.HasPrefix(data, []byte(`{"type":"changes",`)) {
		return h, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.Token() // {
	for range 4 {
		k, err := dec.Token()
		if err != nil {
			return h, false
		}
		var dst any
		switch k {
		case "type":
			var typ string
			dst = &typ
		case "re":
			dst = &h.re
		case "checkpoint":
			dst = &h.checkpoint
		case "has_more":
			dst = &h.more
		default:
			return h, false
		}
		if err := dec.Decode(dst); err != nil {
			return h, false
		}
	}
	return h, true
}

// wsConn is one WebSocket session: the owner goroutine (runWS) writes and decides; a reader
// goroutine decodes frames into in.
type wsConn struct {
	*session
	conn   *websocket.Conn
	in     chan inbound
	stop   chan struct{}
	reader stdsync.WaitGroup
	limits syncer.Limits
	nextID int

	pullID string
	// ahead is the pull whose page is still being decoded while the next pull (pullID),
	// asked for from its head, is already on its way; aheadCP is that head's checkpoint.
	ahead, aheadCP string
	push           *inflight
	verifies       map[string]verifyReq
}

// inflight is the push awaiting its results.
type inflight struct {
	id   string
	rows []outboxRow
}

// verifyReq is a Verify waiting for the server's digest, with the local one it must match.
type verifyReq struct {
	r          *request
	count      int64
	hash       string
	checkpoint string
}

// runWS dials, says hello, and runs the session until it ends.
func (s *session) runWS(ctx context.Context) (connected bool, err error) {
	c := s.c
	dialer := websocket.Dialer{
		HandshakeTimeout:  c.cfg.RequestTimeout,
		Subprotocols:      []string{syncer.Subprotocol},
		EnableCompression: true,
	}
	header := http.Header{"Authorization": {"Bearer " + c.token()}}
	conn, resp, err := dialer.DialContext(ctx, c.wsURL, header)
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				c.stop(ErrUnauthorized)
				return false, ErrUnauthorized
			case http.StatusUpgradeRequired:
				c.stop(ErrUpdateRequired)
				return false, ErrUpdateRequired
			}
			return false, fmt.Errorf("client: WebSocket upgrade refused: %s", resp.Status)
		}
		return false, fmt.Errorf("client: WebSocket dial: %w", err)
	}
	w := &wsConn{
		session:  s,
		conn:     conn,
		in:       make(chan inbound, 64),
		stop:     make(chan struct{}),
		verifies: make(map[string]verifyReq),
	}
	w.reader.Add(1)
	go w.read()
	defer func() {
		close(w.stop)
		conn.Close()
		w.reader.Wait()
	}()
	if err := w.hello(ctx); err != nil {
		return false, err
	}
	c.setConnected(true)
	return true, w.run(ctx)
}

// read is the reader goroutine: it decodes every text frame and hands it to the owner.
func (w *wsConn) read() {
	defer w.reader.Done()
	w.conn.SetReadDeadline(time.Now().Add(readIdle))
	w.conn.SetPingHandler(func(data string) error {
		w.conn.SetReadDeadline(time.Now().Add(readIdle))
		err := w.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			select {
			case w.in <- inbound{err: err}:
			case <-w.stop:
			}
			return
		}
		w.conn.SetReadDeadline(time.Now().Add(readIdle))
		// The head of a page goes to the owner first, so that it can ask for the next page
		// while this one is decoded.
		h, paged := changesHead(data)
		if paged {
			select {
			case w.in <- inbound{head: &h}:
			case <-w.stop:
				return
			}
		}
		f, err := DecodeFrame(data)
		if err != nil {
			if paged {
				// The next page may already be asked for on the strength of this one's
				// head: end the session, so that the pull starts again from what is stored.
				select {
				case w.in <- inbound{err: fmt.Errorf("client: undecodable changes frame: %w", err)}:
				case <-w.stop:
				}
				return
			}
			w.c.log.Warn("fieldsync client: undecodable frame", "err", err)
			continue
		}
		select {
		case w.in <- inbound{f: f}:
		case <-w.stop:
			return
		}
	}
}

func (w *wsConn) send(f syncer.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("client: encoding %s: %w", f.Type, err)
	}
	w.conn.SetWriteDeadline(time.Now().Add(w.c.cfg.RequestTimeout))
	if err := w.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return w.writeFailed(fmt.Errorf("client: sending %s: %w", f.Type, err))
	}
	return nil
}

// writeFailed returns why the connection ended when a write fails: usually the server closed
// it (with a close code that matters), which the reader is about to report.
func (w *wsConn) writeFailed(err error) error {
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		select {
		case in := <-w.in:
			if in.err != nil {
				return w.readFailed(in.err)
			}
		case <-timer.C:
			return err
		}
	}
}

func (w *wsConn) newID(prefix string) string {
	w.nextID++
	return prefix + strconv.Itoa(w.nextID)
}

// hello sends hello and waits for welcome.
func (w *wsConn) hello(ctx context.Context) error {
	c := w.c
	id := w.newID("h")
	pending, since, err := c.st.outboxReport()
	if err != nil {
		return err
	}
	err = w.send(syncer.Frame{
		Type: syncer.MsgHello, ID: id, Protocol: syncer.ProtocolVersion, DeviceID: c.cfg.DeviceID, ClientTime: c.cfg.Now().UTC().Format(time.RFC3339Nano),
		AppVersion: c.cfg.AppVersion, SchemaVersion: c.cfg.SchemaVersion, Token: c.token(), Pending: &pending, PendingSince: since,
	})
	if err != nil {
		return err
	}
	timer := time.NewTimer(c.cfg.RequestTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrClosed
		case <-timer.C:
			return errors.New("client: no welcome from the server")
		case in := <-w.in:
			if in.err != nil {
				return w.readFailed(in.err)
			}
			switch in.f.Type {
			case syncer.MsgWelcome:
				if in.f.Limits != nil {
					w.limits = *in.f.Limits
				}
				return nil
			case syncer.MsgError:
				return &remoteError{Code: in.f.Code, Message: in.f.Message}
			}
		}
	}
}

// run is the owner loop: pull, push whatever is due, answer requests, until the session ends.
func (w *wsConn) run(ctx context.Context) error {
	c := w.c
	if w.syncing() {
		if err := w.startPull(""); err != nil {
			return err
		}
	}
	for _, r := range w.reqs {
		if err := w.accept(r); err != nil {
			return err
		}
	}
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	pushTimer := time.NewTimer(time.Hour)
	defer pushTimer.Stop()
	for {
		pushIdle := w.push == nil
		if w.push == nil && w.syncing() {
			batch, wake, blobErr, err := c.nextBatch(ctx, c.batchCap(w.limits.MaxBatch), w.limits.MaxFrameBytes)
			if err != nil {
				return err
			}
			if blobErr != nil {
				w.noteBlobError(blobErr)
				c.setError(blobErr)
			}
			if len(batch) > 0 {
				w.push = &inflight{id: w.newID("m"), rows: batch}
				if err := w.send(syncer.Frame{Type: syncer.MsgPush, ID: w.push.id, Mutations: mutations(batch)}); err != nil {
					return err
				}
				pushTimer.Reset(c.cfg.RequestTimeout)
				pushIdle = false
			} else if !wake.IsZero() {
				// wake is on the client's clock (Config.Now), like the schedule it comes from.
				retry.Reset(max(wake.Sub(c.cfg.Now()), time.Millisecond))
			}
		}
		w.finishRounds(pushIdle)
		if !w.live && len(w.reqs) == 0 {
			w.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return nil
		}
		var pushTimeout <-chan time.Time
		if w.push != nil {
			pushTimeout = pushTimer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrClosed
		case <-c.kick:
		case <-retry.C:
		case <-pushTimeout:
			return errors.New("client: no results for a push; reconnecting")
		case r := <-w.more:
			w.add(r)
			if err := w.accept(r); err != nil {
				return err
			}
		case in := <-w.in:
			if in.err != nil {
				return w.readFailed(in.err)
			}
			if in.head != nil {
				if err := w.pullAhead(*in.head); err != nil {
					return err
				}
				continue
			}
			if err := w.handle(in.f); err != nil {
				return err
			}
		}
	}
}

// pullAhead asks for the next page as soon as the head of the current pull's page says
// more follows, before that page is decoded and applied. The page is still applied first,
// and the checkpoint is stored only with its changes.
func (w *wsConn) pullAhead(h pageHead) error {
	if h.re != w.pullID || !h.more || w.ahead != "" {
		return nil
	}
	re := w.pullID
	if err := w.startPull(h.checkpoint); err != nil {
		return err
	}
	w.ahead, w.aheadCP = re, h.checkpoint
	return nil
}

// accept starts what a new request needs: a round in a live session starts a fresh pull so
// that it sees everything committed before it; a verify sends verify.
func (w *wsConn) accept(r *request) error {
	if r.verify {
		count, hash, cp, err := w.c.st.digest()
		if err != nil {
			return err
		}
		id := w.newID("v")
		w.verifies[id] = verifyReq{r: r, count: count, hash: hash, checkpoint: cp}
		return w.send(syncer.Frame{Type: syncer.MsgVerify, ID: id, Checkpoint: &cp})
	}
	if w.live && w.ready == w.gen {
		// Caught up on a live stream: a fresh pull proves nothing newer was missed.
		if err := w.startPull(""); err != nil {
			return err
		}
	}
	r.minGen = w.gen
	return nil
}

// startPull sends a pull from checkpoint (the stored one when ""), superseding any earlier
// pull of this session: frames answering an older pull are ignored.
func (w *wsConn) startPull(checkpoint string) error {
	if checkpoint == "" {
		var err error
		if checkpoint, err = w.c.st.checkpoint(); err != nil {
			return err
		}
	}
	w.gen++
	w.pullID = w.newID("p")
	w.ahead = ""
	return w.send(syncer.Frame{Type: syncer.MsgPull, ID: w.pullID, Checkpoint: &checkpoint,
		Limit: w.c.cfg.PullLimit, Live: w.live})
}

// handle processes one frame from the server.
func (w *wsConn) handle(f syncer.Frame) error {
	c := w.c
	switch f.Type {
	case syncer.MsgChanges:
		ahead := f.Re != "" && f.Re == w.ahead
		if f.Re != w.pullID && !ahead {
			return nil // an earlier, superseded pull
		}
		more := f.HasMore != nil && *f.HasMore
		if ahead {
			// The next pull went out on this page's head: the page must say what its
			// head said.
			w.ahead = ""
			if !more || f.Checkpoint == nil || *f.Checkpoint != w.aheadCP {
				return errors.New("client: a changes frame differs from its head; reconnecting")
			}
		} else if more {
			// Ask for the next page before applying this one, so the server reads it while
			// the device writes: the checkpoint is still stored only with its changes.
			cp := ""
			if f.Checkpoint != nil {
				cp = *f.Checkpoint
			}
			if err := w.startPull(cp); err != nil {
				return err
			}
		}
		notes, err := c.st.applyChanges(f.Changes, f.Checkpoint)
		if err != nil {
			return err
		}
		c.notify(notes)
		if more {
			return nil
		}
		w.ready = w.gen
		c.synced()
	case syncer.MsgResults:
		if w.push == nil || f.Re != w.push.id {
			return nil
		}
		batch := w.push.rows
		w.push = nil
		if err := c.settle(batch, f.Results); err != nil {
			return err
		}
		c.setError(nil)
		if changedServer(f.Results) {
			// What the push made on the server (ticket events, a received sheet's ticket)
			// comes down by pull: a round waiting now waits for a pull started after it.
			if err := w.startPull(""); err != nil {
				return err
			}
			for _, r := range w.reqs {
				if !r.verify {
					r.minGen = w.gen
				}
			}
		}
	case syncer.MsgDigest:
		v, ok := w.verifies[f.Re]
		if !ok {
			return nil
		}
		delete(w.verifies, f.Re)
		var err error
		if f.Count == nil || *f.Count != v.count || f.Hash != v.hash {
			got := int64(-1)
			if f.Count != nil {
				got = *f.Count
			}
			err = fmt.Errorf("client: verify at checkpoint %q: local digest %d records %s, server %d records %s",
				v.checkpoint, v.count, v.hash, got, f.Hash)
		}
		w.answer(v.r, err)
	case syncer.MsgError:
		return w.handleError(f)
	}
	return nil
}

// handleError handles an error frame, by the request it answers.
func (w *wsConn) handleError(f syncer.Frame) error {
	c := w.c
	rerr := &remoteError{Code: f.Code, Message: f.Message}
	switch {
	case f.Re != "" && f.Re == w.pullID:
		if f.Code == "checkpoint_expired" {
			if err := c.wipeMirror(); err != nil {
				return err
			}
			cp := ""
			w.gen++
			w.pullID, w.ahead = w.newID("p"), ""
			return w.send(syncer.Frame{Type: syncer.MsgPull, ID: w.pullID, Checkpoint: &cp,
				Limit: c.cfg.PullLimit, Live: w.live})
		}
		return rerr
	case w.push != nil && f.Re == w.push.id:
		batch := w.push.rows
		w.push = nil
		c.setError(rerr)
		return c.pushRefused(batch, f.Code, f.Message)
	default:
		if v, ok := w.verifies[f.Re]; ok && f.Re != "" {
			delete(w.verifies, f.Re)
			w.answer(v.r, rerr)
			return nil
		}
		c.log.Warn("fieldsync client: server error", "re", f.Re, "code", f.Code, "message", f.Message)
		c.setError(rerr)
	}
	return nil
}

// readFailed turns the error that ended the reads into the session's end: a close code from
// the contract stops the client or adjusts it; anything else means reconnect.
func (w *wsConn) readFailed(err error) error {
	c := w.c
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return fmt.Errorf("client: connection lost: %w", err)
	}
	switch ce.Code {
	case 4401:
		c.stop(ErrUnauthorized)
		return ErrUnauthorized
	case 4403:
		return c.revoke()
	case 4409:
		c.stop(ErrReplaced)
		return ErrReplaced
	case 4426:
		c.stop(ErrUpdateRequired)
		return ErrUpdateRequired
	case websocket.CloseMessageTooBig:
		if w.push != nil {
			c.halveBatch(len(w.push.rows))
		} else {
			c.halveBatch(c.batchCap(0))
		}
	}
	return fmt.Errorf("client: connection closed by the server: %d %s", ce.Code, ce.Text)
}

// changedServer tells whether any result of a push changed the server's records.
func changedServer(results []syncer.Result) bool {
	for _, r := range results {
		if r.Status == syncer.StatusApplied || r.Status == syncer.StatusMerged {
			return true
		}
	}
	return false
}
