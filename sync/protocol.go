package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"fieldsync/schema"
)

// Close codes of the sync protocol.
const (
	CloseUnauthenticated = 4401
	CloseRevoked         = 4403
	CloseReplaced        = 4409
	CloseUnsupported     = 4426
	CloseRateLimited     = 4429
	CloseTooBig          = 1009
)

// Conversation is the protocol state of one connection: who it is, whether hello was
// accepted, and the live pull it serves. The transport owns the socket; the engine owns
// the conversation (a table of handlers keyed by message type).
type Conversation struct {
	Session  *Session
	Welcomed bool
	Live     bool
	LiveRe   string
	LiveCP   string
	Limits   Limits
	// Authenticate resolves a token given in hello; the transport sets it.
	Authenticate func(ctx context.Context, token string) (*Session, error)
	// ahead is the next page of a paged pull, read while the page before it travels.
	ahead *readAhead
}

// errNotAhead: no page was read ahead for this pull.
var errNotAhead = errors.New("not read ahead")

// readAhead is the page a device will ask for next while it catches up: the answer to a pull
// from checkpoint with limit, read by actor. Reading it while the page before it is sent and
// decoded on the device takes the server's read off the device's path; the page is what a
// pull at the time of the read would have answered, and changes made since follow it.
type readAhead struct {
	actor      schema.Actor
	checkpoint string
	limit      int
	done       chan struct{}
	page       Page
	err        error
}

// DecodeFrame parses one client frame strictly: one JSON object, valid UTF-8, known fields
// only, no key twice.
func DecodeFrame(b []byte) (*Frame, error) {
	if err := schema.CheckJSON(b); err != nil {
		return &Frame{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f Frame
	if err := dec.Decode(&f); err != nil {
		re := ""
		var probe struct {
			ID any `json:"id"`
		}
		if json.Unmarshal(b, &probe) == nil {
			re, _ = probe.ID.(string)
		}
		return &Frame{ID: re}, frameError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &f, schema.Errorf(schema.CodeBadRequest, "a frame holds exactly one JSON object")
	}
	return &f, nil
}

func frameError(err error) error {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return schema.Errorf(schema.CodeBadRequest, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return schema.FieldError(schema.CodeBadRequest, typ.Field, "%s has the wrong type (%s, expected %s)", typ.Field, typ.Value, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return schema.FieldError(schema.CodeBadRequest, name, "unknown field %q", name)
	}
	return schema.Errorf(schema.CodeBadRequest, "malformed frame: %v", err)
}

// ErrorFrame builds the error reply to a request.
func ErrorFrame(re string, err error) Frame {
	se, ok := schema.AsError(err)
	if !ok {
		se = schema.Errorf(schema.CodeInternal, "internal error")
	}
	return Frame{Type: MsgError, Re: re, Code: se.Code, Message: se.Message, Field: se.Field}
}

// CloseError asks the transport to close the connection with a code.
type CloseError struct {
	Code   int
	Reason string
}

func (c *CloseError) Error() string { return fmt.Sprintf("close %d: %s", c.Code, c.Reason) }

// Handle answers one client frame. A *CloseError means: send nothing more, close with that
// code.
func (e *Engine) Handle(ctx context.Context, cv *Conversation, f *Frame) ([]Frame, error) {
	if f.ID == "" && f.Type != MsgHello {
		return []Frame{ErrorFrame("", schema.FieldError(schema.CodeBadRequest, "id", "every request carries an id"))}, nil
	}
	if !cv.Welcomed && f.Type != MsgHello {
		return []Frame{ErrorFrame(f.ID, schema.Errorf(schema.CodeUnauthenticated, "send hello first"))}, nil
	}
	switch f.Type {
	case MsgHello:
		return e.hello(ctx, cv, f)
	case MsgPull:
		return e.pullFrame(ctx, cv, f)
	case MsgPush:
		return e.pushFrame(ctx, cv, f)
	case MsgVerify:
		n, h, err := e.Digest(ctx, cv.Session.Actor)
		if err != nil {
			return nil, err
		}
		return []Frame{{Type: MsgDigest, Re: f.ID, Count: &n, Hash: h, Checkpoint: f.Checkpoint}}, nil
	case "":
		return []Frame{ErrorFrame(f.ID, schema.FieldError(schema.CodeBadRequest, "type", "the frame has no type"))}, nil
	}
	return []Frame{ErrorFrame(f.ID, schema.FieldError(schema.CodeBadRequest, "type", "unknown message type %q (hello, pull, push, verify)", f.Type))}, nil
}

func (e *Engine) hello(ctx context.Context, cv *Conversation, f *Frame) ([]Frame, error) {
	if cv.Welcomed {
		return []Frame{ErrorFrame(f.ID, schema.Errorf(schema.CodeBadRequest, "hello was already accepted on this connection"))}, nil
	}
	if f.Protocol != ProtocolVersion {
		return nil, &CloseError{Code: CloseUnsupported, Reason: fmt.Sprintf("protocol %d is not supported (this server speaks %d)", f.Protocol, ProtocolVersion)}
	}
	if cv.Session == nil || f.Token != "" {
		s, err := cv.Authenticate(ctx, f.Token)
		if err != nil {
			return nil, &CloseError{Code: CloseUnauthenticated, Reason: "not authenticated"}
		}
		cv.Session = s
	}
	if cv.Session.Actor.DeviceID == "" {
		return nil, &CloseError{Code: CloseUnauthenticated, Reason: "sync needs a device token (POST /mobile/v1/auth/login)"}
	}
	if err := e.RecordHello(ctx, cv.Session.Actor.DeviceID, f); err != nil {
		if _, ok := schema.AsError(err); ok {
			return []Frame{ErrorFrame(f.ID, err)}, nil
		}
		return nil, err
	}
	cv.Welcomed = true
	u := cv.Session.User
	return []Frame{{Type: MsgWelcome, Re: f.ID, Protocol: ProtocolVersion, ServerTime: schema.Stamp(e.Now()),
		User: &User{ID: u.Str("id"), Role: u.Str("role"), Name: u.Str("name")}, Limits: &cv.Limits}}, nil
}

func (e *Engine) pullFrame(ctx context.Context, cv *Conversation, f *Frame) ([]Frame, error) {
	cp := ""
	if f.Checkpoint != nil {
		cp = *f.Checkpoint
	}
	if f.Limit < 0 {
		return []Frame{ErrorFrame(f.ID, schema.FieldError(schema.CodeValidation, "limit", "limit must not be negative"))}, nil
	}
	actor := cv.Session.Actor
	var page Page
	err := errNotAhead
	if a := cv.ahead; a != nil && a.checkpoint == cp && a.limit == f.Limit && a.actor.UserID == actor.UserID && a.actor.Role == actor.Role {
		select {
		case <-a.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if page, err = a.page, a.err; err == nil {
			e.metrics().Pulled(outcome(nil))
		}
	}
	// Any other pull (a page read ahead is then dropped), or a read ahead that failed (its
	// context may have ended), is read now.
	cv.ahead = nil
	if err != nil {
		page, err = e.Pull(ctx, actor, cp, f.Limit)
	}
	if err == nil && page.HasMore {
		a := &readAhead{actor: actor, checkpoint: page.Checkpoint, limit: f.Limit, done: make(chan struct{})}
		cv.ahead = a
		go func() {
			defer close(a.done)
			a.page, a.err = e.pullPage(ctx, a.actor, a.checkpoint, a.limit, false)
		}()
	}
	if err != nil {
		if _, ok := schema.AsError(err); ok {
			return []Frame{ErrorFrame(f.ID, err)}, nil
		}
		return nil, err
	}
	if f.Live && !page.HasMore {
		cv.Live, cv.LiveRe, cv.LiveCP = true, f.ID, page.Checkpoint
	}
	return []Frame{ChangesFrame(f.ID, page)}, nil
}

// ChangesFrame renders a pull page.
func ChangesFrame(re string, p Page) Frame {
	more := p.HasMore
	cp := p.Checkpoint
	ch := p.Changes
	if ch == nil {
		ch = []Change{}
	}
	return Frame{Type: MsgChanges, Re: re, Changes: ch, Checkpoint: &cp, HasMore: &more}
}

func (e *Engine) pushFrame(ctx context.Context, cv *Conversation, f *Frame) ([]Frame, error) {
	if len(f.Mutations) > cv.Limits.MaxBatch {
		return []Frame{ErrorFrame(f.ID, schema.FieldError(schema.CodeTooLarge, "mutations", "%d mutations in one push; at most %d", len(f.Mutations), cv.Limits.MaxBatch))}, nil
	}
	res, err := e.Push(ctx, cv.Session.Actor, f.Mutations)
	if err != nil {
		if _, ok := schema.AsError(err); ok {
			return []Frame{ErrorFrame(f.ID, err)}, nil
		}
		return nil, err
	}
	return []Frame{{Type: MsgResults, Re: f.ID, Results: res}}, nil
}

// Push applies a device's mutations with the protocol's rules: merged by ownership,
// exactly once per (device, mid).
func (e *Engine) Push(ctx context.Context, actor schema.Actor, muts []Mutation) (res []Result, err error) {
	defer func() { e.metrics().Pushed(outcome(err), res) }()
	seen := map[string]bool{}
	for i, m := range muts {
		if m.MID == "" || len(m.MID) > 64 {
			return nil, schema.FieldError(schema.CodeValidation, fmt.Sprintf("mutations[%d].mid", i), "every mutation needs a mid (a UUID, at most 64 characters)")
		}
		if seen[m.MID] {
			return nil, schema.FieldError(schema.CodeValidation, fmt.Sprintf("mutations[%d].mid", i), "mid %s appears twice in one push", m.MID)
		}
		seen[m.MID] = true
	}
	if len(muts) == 0 {
		return []Result{}, nil
	}
	if err := e.quotas.take(actor.UserID, len(muts), pushSize(muts), e.Settings(), e.Now()); err != nil {
		return nil, err
	}
	return e.Apply(ctx, actor, muts, Options{Merge: true, Device: actor.DeviceID})
}

// livePull is pull for a live connection's wake-up. The phones of one user are woken by the
// same commit and pull from the same checkpoint: calls for the same user, checkpoint and
// newest commit at the time of the call share one read (one read transaction and one page
// for all of them instead of one each). A call joins only a read that began after the
// commits it was woken for, so it misses nothing; the read does not end with the
// connection of the call that began it.
func (e *Engine) livePull(ctx context.Context, user schema.Actor, checkpoint string) (Page, error) {
	key := user.Role + "\n" + user.UserID + "\n" + checkpoint + "\n" + strconv.FormatInt(e.lastCommitted(), 10)
	v, err, _ := e.liveReads.Do(key, func() (any, error) {
		if e.beforeLiveRead != nil {
			e.beforeLiveRead()
		}
		return e.pull(context.WithoutCancel(ctx), user, checkpoint, DefaultPullLimit)
	})
	if err != nil {
		return Page{}, err
	}
	return v.(Page), nil
}

// LiveChanges returns the pages a live connection has not seen yet, moving its checkpoint.
func (e *Engine) LiveChanges(ctx context.Context, cv *Conversation) ([]Frame, error) {
	var out []Frame
	for range 100 {
		page, err := e.livePull(ctx, cv.Session.Actor, cv.LiveCP)
		if err != nil {
			return out, err
		}
		if len(page.Changes) == 0 {
			cv.LiveCP = page.Checkpoint
			return out, nil
		}
		cv.LiveCP = page.Checkpoint
		if len(out) == 0 {
			e.observeDelivery()
		}
		more := page.HasMore
		page.HasMore = false // a live stream keeps flowing; each frame carries its checkpoint
		out = append(out, ChangesFrame(cv.LiveRe, page))
		if !more {
			return out, nil
		}
	}
	return out, nil
}
