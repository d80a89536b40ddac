package client

import (
	"context"
	"encoding/json"
	"errors"
	"fieldsync/schema"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	syncer "fieldsync/sync"
)

// request is something an app call waits for from a sync session: a full round (SyncNow) or
// a digest comparison (Verify).
type request struct {
	verify bool
	done   chan error // capacity 1; answered exactly once
	err    error      // first non-fatal error seen during a round (a blob that would not upload)
	minGen int        // a round is caught up once a pull started at this generation is
}

func newRequest(verify bool) *request { return &request{verify: verify, done: make(chan error, 1)} }

func (r *request) finish(err error) {
	if err == nil {
		err = r.err
	}
	r.done <- err
}

// Start runs the background sync loop in its own goroutine and returns at once: connect (or
// fall back to HTTP), pull live from the stored checkpoint, push the outbox as it fills,
// reconnect with backoff, until ctx ends, Close, or a stop error (see State.Stopped).
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.stopErr != nil:
		return c.stopErr
	case c.running:
		return errors.New("client: already started")
	}
	c.running = true
	c.loopDone = make(chan struct{})
	c.wg.Add(1)
	go c.loop(ctx, c.loopDone)
	return nil
}

// SyncNow does one full round and returns when it is done: connect if needed, push every
// mutation that is due (retryable rejections wait for their backoff), and pull until caught
// up. With Start running it asks the loop; otherwise it opens a connection for the round.
func (c *Client) SyncNow(ctx context.Context) error { return c.do(ctx, newRequest(false)) }

// Verify asks the server for the digest of the device's scope at the local checkpoint and
// returns an error unless it equals the local Digest. It needs the WebSocket.
func (c *Client) Verify(ctx context.Context) error { return c.do(ctx, newRequest(true)) }

func (c *Client) do(ctx context.Context, r *request) error {
	if err := c.alive(); err != nil {
		return err
	}
	if err := c.stopped(); err != nil {
		return err
	}
	c.mu.Lock()
	running, loopDone := c.running, c.loopDone
	c.mu.Unlock()
	if running {
		select {
		case c.reqs <- r:
			select {
			case err := <-r.done:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrClosed
		case <-loopDone:
			if err := c.stopped(); err != nil {
				return err
			}
			// The loop ended (its ctx did): run the round here instead.
		}
	}
	c.session.Lock()
	defer c.session.Unlock()
	if err := c.alive(); err != nil {
		return err
	}
	_, err := c.runSession(ctx, false, []*request{r}, nil)
	if err != nil {
		c.setError(err)
		return err
	}
	return <-r.done
}

// loop is the Start goroutine: sessions one after another, backing off between failures. A
// request arriving while it waits starts the next session at once.
func (c *Client) loop(ctx context.Context, done chan struct{}) {
	defer c.wg.Done()
	var pending []*request
	defer func() {
		c.mu.Lock()
		c.running = false
		close(done)
		c.mu.Unlock()
		// Answer whoever is still waiting or about to send.
		for _, r := range pending {
			r.finish(ErrClosed)
		}
		for {
			select {
			case r := <-c.reqs:
				r.finish(ErrClosed)
			default:
				return
			}
		}
	}()
	failures := 0
	for {
		c.session.Lock()
		connected, err := c.runSession(ctx, true, pending, c.reqs)
		c.session.Unlock()
		pending = nil
		if errors.Is(err, ErrClosed) || ctx.Err() != nil || c.stopped() != nil {
			return
		}
		if err != nil {
			c.setError(err)
			c.log.Info("fieldsync client: sync session ended", "err", err)
		}
		if connected {
			failures = 0
		} else {
			failures++
		}
		timer := time.NewTimer(backoff(failures, c.cfg.MinBackoff, c.cfg.MaxBackoff))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-c.closing:
			timer.Stop()
			return
		case <-timer.C:
		case r := <-c.reqs:
			timer.Stop()
			pending = append(pending, r)
		}
	}
}

// runSession runs one connection: the WebSocket unless it has failed FallbackAfter times in a
// row (or ForceHTTP), then the HTTP fallback for FallbackPeriod. With live false it returns
// once reqs are answered. Every request it took is answered before it returns, with err when
// the session failed. connected tells whether the server was reached.
func (c *Client) runSession(ctx context.Context, live bool, reqs []*request, more <-chan *request) (connected bool, err error) {
	s := &session{c: c, live: live, more: more}
	for _, r := range reqs {
		s.add(r)
	}
	defer func() {
		c.setConnected(false)
		s.failAll(err)
	}()
	if c.stopped() != nil {
		return false, c.stopped()
	}
	if c.useHTTP() {
		return s.runHTTP(ctx)
	}
	connected, err = s.runWS(ctx)
	if !connected && err != nil && c.stopped() == nil && ctx.Err() == nil && c.reachable(ctx) {
		// Only a server that answers HTTP but not the WebSocket counts towards the
		// fallback: a phone with no network, or a server restarting, keeps the WebSocket.
		c.wsFailures++
		c.log.Info("fieldsync client: WebSocket failed", "failures", c.wsFailures, "err", err)
		if c.useHTTP() {
			return s.runHTTP(ctx)
		}
	}
	if connected {
		c.wsFailures = 0
	}
	return connected, err
}

// reachable reports whether the server answers plain HTTP (GET /healthz).
func (c *Client) reachable(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.BaseURL+"/healthz", nil)
	if err != nil {
		return false
	}
	res, err := c.http.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// useHTTP tells whether the next session uses the HTTP fallback; the session lock is held.
func (c *Client) useHTTP() bool {
	if c.cfg.ForceHTTP {
		return true
	}
	if c.wsFailures < c.cfg.FallbackAfter {
		return false
	}
	now := time.Now()
	if c.fallbackSince.IsZero() {
		c.fallbackSince = now
	}
	if now.Sub(c.fallbackSince) > c.cfg.FallbackPeriod {
		c.wsFailures, c.fallbackSince = 0, time.Time{} // try the WebSocket again
		return false
	}
	return true
}

// session is the state one connection shares between its transport and the push logic.
type session struct {
	c     *Client
	live  bool
	more  <-chan *request
	reqs  []*request
	gen   int // pull generation: bumped by every new pull
	ready int // generation at which the pull was last caught up
}

func (s *session) add(r *request) { s.reqs = append(s.reqs, r) }

// answer removes r from the waiting requests and answers it.
func (s *session) answer(r *request, err error) {
	for i, x := range s.reqs {
		if x == r {
			s.reqs = append(s.reqs[:i], s.reqs[i+1:]...)
			r.done <- err
			return
		}
	}
}

// syncing tells whether the session pulls and pushes: always when live, else only for a round.
func (s *session) syncing() bool {
	if s.live {
		return true
	}
	for _, r := range s.reqs {
		if !r.verify {
			return true
		}
	}
	return false
}

// failAll answers every request still waiting with err (ErrClosed if err is nil).
func (s *session) failAll(err error) {
	if err == nil {
		err = ErrClosed
	}
	for _, r := range s.reqs {
		r.done <- err
	}
	s.reqs = nil
}

// finishRounds answers the rounds that are done: the pull is caught up at or after the
// generation they needed and nothing is left to push now.
func (s *session) finishRounds(pushIdle bool) {
	if !pushIdle {
		return
	}
	kept := s.reqs[:0]
	for _, r := range s.reqs {
		if !r.verify && s.ready >= r.minGen && s.ready > 0 {
			r.finish(nil)
			continue
		}
		kept = append(kept, r)
	}
	s.reqs = kept
}

// noteBlobError records a blob failure on the rounds in progress.
func (s *session) noteBlobError(err error) {
	for _, r := range s.reqs {
		if !r.verify && r.err == nil {
			r.err = err
		}
	}
}

// retryDelay is the wait before re-sending a mutation that failed attempts times.
func (c *Client) retryDelay(attempts int) time.Duration {
	return backoff(attempts, c.cfg.MinBackoff, c.cfg.MaxBackoff)
}

// backoff returns the delay before attempt n (1 for the first retry): min doubled n-1 times,
// capped at max, with jitter drawn from its upper half so that devices do not reconnect in
// step. It is always within [min/2, max].
func backoff(n int, minD, maxD time.Duration) time.Duration {
	d := maxD
	if n < 1 {
		n = 1
	}
	if n <= 32 {
		if x := minD << (n - 1); x > 0 && x < maxD {
			d = x
		}
	}
	return d/2 + rand.N(d/2+1)
}

// nextBatch returns the next mutations to push, their blobs uploaded: due mutations in
// outbox order, at most maxCount and about maxBytes of JSON. wake is when the next deferred
// mutation becomes due (zero if none). A mutation whose blob would not upload is deferred and
// ends the batch; blobErr says why.
func (c *Client) nextBatch(ctx context.Context, maxCount, maxBytes int) (batch []outboxRow, wake time.Time, blobErr error, err error) {
	rows, err := outbox(c.st.r, "", "")
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	now := c.cfg.Now()
	due, wake := dueRows(rows, now)
	batch = splitBatch(due, maxCount, maxBytes)
	for i, row := range batch {
		if err := c.uploadBlobsOf(ctx, row.m); err != nil {
			c.log.Info("fieldsync client: blob upload failed", "mid", row.m.MID, "err", err)
			if derr := c.st.deferMutations([]string{row.m.MID}, now, c.retryDelay, err.Error()); derr != nil {
				return nil, time.Time{}, nil, derr
			}
			if w := now.Add(c.cfg.MinBackoff / 2); wake.IsZero() || w.Before(wake) {
				wake = w
			}
			return batch[:i], wake, err, nil
		}
	}
	return batch, wake, nil, nil
}

// dueRows picks the mutations that may be sent now, in order: one waiting for its retry time
// holds back every later mutation on the same record, so that a record's mutations are never
// reordered. wake is the earliest retry time among those held back.
func dueRows(rows []outboxRow, now time.Time) (due []outboxRow, wake time.Time) {
	type key struct{ entity, id string }
	held := make(map[key]bool)
	nowMS := now.UnixMilli()
	for _, r := range rows {
		k := key{r.m.Entity, r.m.ID}
		if held[k] {
			continue
		}
		if r.nextAt > nowMS {
			held[k] = true
			if t := time.UnixMilli(r.nextAt); wake.IsZero() || t.Before(wake) {
				wake = t
			}
			continue
		}
		due = append(due, r)
	}
	return due, wake
}

// pushOverhead is a generous allowance for the push frame around its mutations.
const pushOverhead = 128

// splitBatch returns the first batch of rows: at most maxCount, and no more than maxBytes of
// encoded frame unless a single mutation is bigger (it is sent alone; the server judges it).
func splitBatch(rows []outboxRow, maxCount, maxBytes int) []outboxRow {
	maxCount = max(maxCount, 1)
	size := pushOverhead
	for i, r := range rows {
		if i == maxCount {
			return rows[:i]
		}
		b, _ := json.Marshal(r.m)
		size += len(b) + 1
		if maxBytes > 0 && size > maxBytes && i > 0 {
			return rows[:i]
		}
	}
	return rows
}

func mutations(rows []outboxRow) []syncer.Mutation {
	ms := make([]syncer.Mutation, len(rows))
	for i, r := range rows {
		ms[i] = r.m
	}
	return ms
}

// settle applies the results of a pushed batch and tells the listeners.
func (c *Client) settle(batch []outboxRow, results []syncer.Result) error {
	actions, notes, err := c.st.applyResults(batch, results, c.cfg.Now(), c.retryDelay)
	if err != nil {
		return err
	}
	for i, a := range actions {
		if a == resultMissing {
			c.log.Info("fieldsync client: no result for a pushed mutation; it will be re-sent", "mid", batch[i].m.MID)
		}
	}
	c.notify(notes)
	return nil
}

// transientCodes are error codes after which a refused push is simply retried later.
var transientCodes = map[string]bool{
	"internal": true, "unavailable": true, "rate_limited": true, "timeout": true, "busy": true,
}

// pushRefused handles a push answered by an error instead of results: a transient error
// defers the batch; otherwise the batch is halved, and a single mutation the server still
// refuses is moved to the rejections so that it cannot wedge the outbox.
func (c *Client) pushRefused(batch []outboxRow, code, message string) error {
	now := c.cfg.Now()
	switch {
	case transientCodes[code]:
		mids := make([]string, len(batch))
		for i, r := range batch {
			mids[i] = r.m.MID
		}
		return c.st.deferMutations(mids, now, c.retryDelay, code+": "+message)
	case len(batch) > 1:
		c.halveBatch(len(batch))
		return nil
	default:
		if err := c.st.rejectLocally(batch[0], code, message, now); err != nil {
			return err
		}
		c.notify([]change{{batch[0].m.Entity, batch[0].m.ID, ChangeRejected}})
		return nil
	}
}

// wipeMirror empties the mirror (keeping the outbox) for a resync from "".
func (c *Client) wipeMirror() error {
	c.log.Info("fieldsync client: checkpoint expired; resyncing from scratch")
	if err := c.st.wipeMirror(); err != nil {
		return err
	}
	c.notify([]change{{"", "", ChangeWiped}})
	return nil
}

// revoke wipes everything and stops for good.
func (c *Client) revoke() error {
	c.stop(ErrRevoked)
	if err := c.st.wipeAll(); err != nil {
		c.log.Error("fieldsync client: wiping a revoked device", "err", err)
	}
	c.notify([]change{{"", "", ChangeWiped}})
	return ErrRevoked
}

// blobRefs returns the blobs a mutation references: 64-hex values of fields named *_blob.
func blobRefs(fields map[string]json.RawMessage) []string {
	var refs []string
	for k, v := range fields {
		if !strings.HasSuffix(k, "_blob") {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil && schema.ValidBlobSum(s) {
			refs = append(refs, s)
		}
	}
	sort.Strings(refs)
	return refs
}

// remoteError is an error the server answered with.
type remoteError struct {
	Code    string
	Message string
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("client: server error %s: %s", e.Code, e.Message)
}
