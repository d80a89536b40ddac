package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	gosync "sync"
	"time"

	"github.com/gorilla/websocket"

	syncer "fieldsync/sync"
	"fieldsync/sync/client"
)

// lean is a minimal protocol client: one WebSocket, hello, a live pull, pushes, verify. It
// keeps no local store, so thousands fit in the bench process. A reader goroutine decodes
// every frame and hands it to onFrame; requests wait for their answer by id.
type lean struct {
	ws      *websocket.Conn
	dev     device
	wmu     gosync.Mutex
	mu      gosync.Mutex
	waiting map[string]chan syncer.Frame
	next    int
	onFrame func(f *syncer.Frame, at time.Time) // changes of the live pull
	done    chan struct{}
	err     error
	cp      string // checkpoint of the live pull, after the last changes frame
	caught  chan struct{}
	caughtO gosync.Once
}

var leanDialer = websocket.Dialer{HandshakeTimeout: 30 * time.Second, Subprotocols: []string{syncer.Subprotocol},
	ReadBufferSize: 4096, WriteBufferSize: 4096}

// dialLean connects, says hello and waits for welcome.
func dialLean(ctx context.Context, wsURL string, dev device, onFrame func(*syncer.Frame, time.Time)) (*lean, error) {
	h := http.Header{"Authorization": {"Bearer " + dev.Token}}
	ws, _, err := leanDialer.DialContext(ctx, wsURL, h)
	if err != nil {
		return nil, err
	}
	l := &lean{ws: ws, dev: dev, waiting: map[string]chan syncer.Frame{}, onFrame: onFrame, done: make(chan struct{}), caught: make(chan struct{})}
	go l.read()
	f, err := l.request(ctx, syncer.Frame{Type: syncer.MsgHello, Protocol: syncer.ProtocolVersion, DeviceID: dev.DeviceID, AppVersion: "bench"})
	if err != nil {
		ws.Close()
		return nil, err
	}
	if f.Type != syncer.MsgWelcome {
		ws.Close()
		return nil, fmt.Errorf("hello answered with %s %s: %s", f.Type, f.Code, f.Message)
	}
	return l, nil
}

func (l *lean) read() {
	defer close(l.done)
	for {
		_, data, err := l.ws.ReadMessage()
		at := time.Now()
		if err != nil {
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			return
		}
		// Decoded as the SDK decodes: phones pay its cost, not encoding/json's.
		f, err := client.DecodeFrame(data)
		if err != nil {
			l.mu.Lock()
			l.err = fmt.Errorf("undecodable frame: %w", err)
			l.mu.Unlock()
			l.ws.Close()
			return
		}
		if f.Type == syncer.MsgChanges && f.Re == "live" {
			if l.onFrame != nil {
				l.onFrame(&f, at)
			}
			l.mu.Lock()
			if f.Checkpoint != nil {
				l.cp = *f.Checkpoint
			}
			l.mu.Unlock()
			if f.HasMore != nil && *f.HasMore && f.Checkpoint != nil {
				l.live(*f.Checkpoint) // a page of a long catch-up: ask for the next
			} else {
				l.caughtO.Do(func() { close(l.caught) })
			}
			continue
		}
		l.mu.Lock()
		ch := l.waiting[f.Re]
		delete(l.waiting, f.Re)
		l.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}

// send writes one frame.
func (l *lean) send(f syncer.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return l.ws.WriteMessage(websocket.TextMessage, b)
}

// request sends f with a fresh id and waits for the frame that answers it.
func (l *lean) request(ctx context.Context, f syncer.Frame) (syncer.Frame, error) {
	ch := make(chan syncer.Frame, 1)
	l.mu.Lock()
	l.next++
	f.ID = f.Type[:1] + strconv.Itoa(l.next)
	l.waiting[f.ID] = ch
	l.mu.Unlock()
	if err := l.send(f); err != nil {
		return syncer.Frame{}, err
	}
	t := time.NewTimer(60 * time.Second)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, nil
	case <-l.done:
		return syncer.Frame{}, l.readErr()
	case <-ctx.Done():
		return syncer.Frame{}, ctx.Err()
	case <-t.C:
		return syncer.Frame{}, errors.New("no answer within 60 s")
	}
}

func (l *lean) readErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		return errors.New("connection closed")
	}
	return l.err
}

// live starts the live pull from checkpoint cp; its frames go to onFrame, and caught is
// closed at the first frame with has_more false.
func (l *lean) live(cp string) error {
	return l.send(syncer.Frame{Type: syncer.MsgPull, ID: "live", Checkpoint: &cp, Limit: syncer.MaxPullLimit, Live: true})
}

// waitCaught waits until the live pull has caught up.
func (l *lean) waitCaught(ctx context.Context) error {
	select {
	case <-l.caught:
		return nil
	case <-l.done:
		return l.readErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *lean) checkpoint() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cp
}

// drop closes the TCP connection without a close frame, as a phone losing its network.
func (l *lean) drop() {
	l.ws.UnderlyingConn().Close()
	<-l.done
}

func (l *lean) close() {
	l.wmu.Lock()
	l.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	l.wmu.Unlock()
	l.ws.Close()
	<-l.done
}
