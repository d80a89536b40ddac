package sync

import (
	gosync "sync"
	"sync/atomic"
	"time"
)

// Hub fans committed changes out to live connections. A subscriber is woken (never
// blocked on) when a change touches its user's scope, or any change for office feeds; it
// then pulls from its own checkpoint, so a slow connection coalesces many changes into one
// pull and never holds the writer back.
type Hub struct {
	mu   gosync.Mutex
	subs map[*Sub]struct{}
	last atomic.Int64
	at   atomic.Int64 // when last was published, Unix nanoseconds (for Metrics)
}

// Sub is one live subscription.
type Sub struct {
	user   string
	device string
	all    bool // an office feed: woken by every change
	wake   func()
	// recheck is called when the user's account, devices or tokens changed (disabled,
	// role changed, logged out, device revoked), here or in another process: the
	// connection checks its session again and closes if it no longer holds.
	recheck func()
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[*Sub]struct{}{}} }

// Subscribe registers a live subscription for a device of user; all is true for office
// feeds. The hub calls wake when a change concerns the subscriber and recheck when its
// session must be checked again; both are called with the hub locked, so they must not
// block (a connection waits for them on no goroutine of its own: see Signal).
func (h *Hub) Subscribe(user, device string, all bool, wake, recheck func()) *Sub {
	s := &Sub{user: user, device: device, all: all, wake: wake, recheck: recheck}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Unsubscribe removes s.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// Last is the newest committed sequence number published.
func (h *Hub) Last() int64 { return h.last.Load() }

// SetLast records the newest sequence number at start-up.
func (h *Hub) SetLast(seq int64) { h.last.Store(seq) }

// Publish wakes the subscribers a commit concerns: users whose scope feed moved, every
// technician when a shared record ('*', settings) moved, and office feeds for any change.
func (h *Hub) Publish(seq int64, users map[string]bool, global bool) {
	for { // last only grows: instances' notifications may arrive out of order
		old := h.last.Load()
		if seq <= old || h.last.CompareAndSwap(old, seq) {
			break
		}
	}
	h.at.Store(time.Now().UnixNano())
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.all && global || users[s.user] || users["*"] {
			s.wake()
		}
	}
}

// Recheck signals the subscriptions of users (of everyone when users is nil) to check their
// session again.
func (h *Hub) Recheck(users map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if users == nil || users[s.user] {
			s.recheck()
		}
	}
}

// Signal returns a wake or recheck function for Subscribe that signals ch (buffered, one)
// without blocking: for a subscriber whose goroutine waits on ch.
func Signal(ch chan struct{}) func() {
	return func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
