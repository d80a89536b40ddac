// Package sync is fieldsync's sync engine and its single write path. Every change to
// business records, from the coordinator API, a technician's phone or the CLI, goes through
// Engine.Apply, which checks it against the rules in package schema, writes the record with
// its version incremented, appends to the change log (the audit trail and the feed phones
// pull) and updates the scopes of the devices that hold the record, all in one SQLite
// transaction. The package also answers pulls by scope, keeps pushed mutations exactly
// once, resolves conflicts by the ownership rules, and fans committed changes out to live
// connections. It knows no transport: the WebSocket and HTTP handlers live in mobile-api.
//
// The package shadows the standard library's sync: import it as syncer.
package sync

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"fieldsync/schema"
)

// Engine applies changes and serves pulls.
type Engine struct {
	db      *schema.DB
	Now     func() time.Time
	Log     *slog.Logger
	Metrics Metrics // nil: nothing is measured
	Hub     *Hub
	Blobs   *BlobStore
	Sealer  *schema.SealKey
	// Alerted, when set, is called after a commit that wrote outbox rows (it must not
	// block: the sender is woken, not waited for).
	Alerted   func()
	settings  atomic.Pointer[schema.Settings]
	quotas    quotas
	admission admission

	reqs chan *applyReq
	// The write path's position as of the last transaction: the last sequence number
	// handed out and the accounts counter (engine_state). Only the writer goroutine
	// touches them, and it reads them again inside every write transaction, since the
	// command line may have written in between.
	seq  int64
	auth int64
	// ticketHolders keeps, for tickets written lately, the users whose scope holds each
	// (the scope rows present = 1), so that a burst of notes on one ticket does not look
	// them up again for every note. Only the writer goroutine touches it; a scope row of a
	// ticket written drops its entry, and a rollback or another process's write drops all.
	ticketHolders map[string][]string
	// instance names this engine in its commit notifications (PostgreSQL; listen.go).
	instance   string
	listenOnce gosync.Once
	// pages holds a token for each page of a catch-up pull being read (PagesAtOnce).
	pages chan struct{}
	// liveReads lets the live wake-ups of one user's phones share a read (livePull);
	// beforeLiveRead, set by tests, runs at the start of each such read.
	liveReads      singleflight.Group
	beforeLiveRead func()
	closed         chan struct{}
	wg             gosync.WaitGroup
	once           gosync.Once
}

// Options says how a batch of mutations is judged.
type Options struct {
	// Merge: a mutation based on an older version is merged field by field by the ownership
	// rules (the sync protocol). Without it a stale base_version is a conflict (the API's
	// If-Match).
	Merge bool
	// Device: results are remembered per (device, mid) for exactly-once pushes.
	Device string
	// Whole: the batch stands or falls as a whole. When any mutation is rejected nothing of
	// the batch is written, and Apply answers every result (the rejected ones name why) with
	// an error saying so. An import uses it, so half a file is never written.
	Whole bool
	// DryRun judges the batch as Whole would and then writes nothing: the answer is what
	// applying it would do (a preview).
	DryRun bool
}

// ErrNotWritten is Apply's error for a Whole or DryRun batch that wrote nothing; the results
// come with it.
var ErrNotWritten = schema.Errorf(schema.CodeValidation, "nothing was written")

type applyReq struct {
	ctx   context.Context
	actor schema.Actor
	muts  []Mutation
	opts  Options
	res   []Result
	err   error
	done  chan struct{}
	fn    func(w *wtx) error // maintenance work instead of mutations
	off   int                // muts before off were applied in earlier transactions

	rejected map[string]bool // creates rejected earlier in this batch
}

// New starts the engine over db. Close stops it.
func New(db *schema.DB, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{db: db, Now: time.Now, Log: log, Hub: NewHub(), reqs: make(chan *applyReq, 256), closed: make(chan struct{}),
		pages: make(chan struct{}, PagesAtOnce())}
	if err := db.W.QueryRow(`SELECT seq, auth FROM engine_state`).Scan(&e.seq, &e.auth); err != nil {
		return nil, fmt.Errorf("read the write position: %w", err)
	}
	if err := e.ReloadSettings(context.Background()); err != nil {
		return nil, err
	}
	e.Hub.SetLast(e.seq)
	e.wg.Add(1)
	go e.writer()
	if db.Postgres {
		e.instance = newInstanceID()
	}
	return e, nil
}

// Listen starts receiving the other instances' commits on PostgreSQL (listen.go), for an
// engine that serves live connections; on SQLite it does nothing. Call it once the
// engine's fields (Now, Blobs, …) are set: the listener reloads settings and wakes feeds
// from its own goroutine.
func (e *Engine) Listen() {
	if !e.db.Postgres {
		return
	}
	e.listenOnce.Do(func() {
		e.wg.Add(1)
		go e.listen()
	})
}

// DB returns the store.
func (e *Engine) DB() *schema.DB { return e.db }

// Close stops the writer after the batches already queued.
func (e *Engine) Close() {
	e.once.Do(func() { close(e.closed) })
	e.wg.Wait()
}

// Settings returns the current settings.
func (e *Engine) Settings() *schema.Settings { return e.settings.Load() }

// ReloadSettings reads the settings records.
func (e *Engine) ReloadSettings(ctx context.Context) error {
	rows, err := e.db.R.QueryContext(ctx, `SELECT data FROM records WHERE entity = 'setting'`)
	if err != nil {
		return err
	}
	defer rows.Close()
	stored := map[string]any{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		d, err := schema.DecodeDoc(b)
		if err != nil {
			return err
		}
		stored[d.Str("key")] = d["value"]
	}
	s := schema.NewSettings(stored)
	for _, err := range s.Invalid {
		e.Log.Warn("setting refused, default used; fix it with PUT /api/v1/settings or fieldsync settings set", "err", err)
	}
	e.settings.Store(s)
	if e.Blobs != nil {
		e.Blobs.SetMaxBytes(s.Int("blob_max_bytes"))
	}
	return rows.Err()
}

var errClosed = schema.Errorf(schema.CodeUnavailable, "the server is shutting down")

// Apply runs a batch of mutations by actor and returns one result per mutation, in order.
// It returns only after the transaction committed: an applied result is durable.
// Concurrent calls are committed together (group commit). A batch runs in one transaction,
// except a device's push (opts.Device set, neither Whole nor DryRun), which the writer may
// take in slices between other callers' work (see SliceBudget): each mutation is judged
// and remembered on its own, so a slice committed before a failure is answered as a
// duplicate when the device sends the push again. The error is for the batch as a whole
// (the database failed, the server is closing, the caller's queue is full); judgements of
// single mutations are in the results, except for a Whole or DryRun batch that wrote
// nothing (ErrNotWritten, with the results).
func (e *Engine) Apply(ctx context.Context, actor schema.Actor, muts []Mutation, opts Options) ([]Result, error) {
	key, n := queueKey(actor, opts), max(1, len(muts))
	if err := e.admit(ctx, key, n); err != nil {
		return nil, err
	}
	defer e.release(key, n)
	r := &applyReq{ctx: ctx, actor: actor, muts: muts, opts: opts, done: make(chan struct{})}
	select {
	case e.reqs <- r:
	case <-e.closed:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-r.done
	return r.res, r.err
}

// Fairness of the write queue. Every caller's queued work is bounded: a device (by its
// server device id) or a web user may have at most MaxQueuedMutations mutations waiting
// for or inside the writer; more waits until its earlier work is done, and after
// QueueWait it is refused as rate_limited (retryable). A single batch is always admitted
// when the caller has nothing queued. The writer in turn gives each batch of a
// transaction an equal share of SliceBudget when other requests wait: a device push
// that used its share stops there, and its rest goes after the others, so a small
// write never waits behind a huge one.
var (
	MaxQueuedMutations = DefaultMaxBatch
	QueueWait          = 10 * time.Second
	SliceBudget        = 20 * time.Millisecond
)

// maxGroup bounds how many queued batches one transaction takes.
const maxGroup = 64

// queueKey names whose share of the write queue a batch uses: the device, else the user;
// the server's own work ("") is not bounded.
func queueKey(actor schema.Actor, opts Options) string {
	switch {
	case opts.Device != "":
		return "d/" + opts.Device
	case actor.DeviceID != "":
		return "d/" + actor.DeviceID
	case actor.UserID != "" && actor.UserID != schema.System.UserID:
		return "u/" + actor.UserID
	}
	return ""
}

type admission struct {
	mu     gosync.Mutex
	queued map[string]int           // mutations admitted and not yet answered, by key
	freed  map[string]chan struct{} // closed when the key's queued work shrinks
}

// admit waits until key may queue n more mutations.
func (e *Engine) admit(ctx context.Context, key string, n int) error {
	if key == "" {
		return nil
	}
	a := &e.admission
	var timeout <-chan time.Time
	for {
		a.mu.Lock()
		if a.queued == nil {
			a.queued, a.freed = map[string]int{}, map[string]chan struct{}{}
		}
		q := a.queued[key]
		if q == 0 || q+n <= MaxQueuedMutations {
			a.queued[key] = q + n
			a.mu.Unlock()
			return nil
		}
		ch := a.freed[key]
		if ch == nil {
			ch = make(chan struct{})
			a.freed[key] = ch
		}
		a.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(QueueWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ch:
		case <-timeout:
			return schema.Errorf(schema.CodeRateLimited, "服务器仍在处理此设备先前提交的 %d 项修改，请一秒后重试 / the server is still applying %d earlier mutations from this device or session: retry in 1 s", q, q)
		case <-ctx.Done():
			return ctx.Err()
		case <-e.closed:
			return errClosed
		}
	}
}

func (e *Engine) release(key string, n int) {
	if key == "" {
		return
	}
	a := &e.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.queued[key] -= n; a.queued[key] <= 0 {
		delete(a.queued, key)
	}
	if ch := a.freed[key]; ch != nil {
		close(ch)
		delete(a.freed, key)
	}
}

// WatchEvery is how often an idle writer looks for writes made by another process (the
// command line beside the server), so that live connections learn of them.
var WatchEvery = time.Second

func (e *Engine) writer() {
	defer e.wg.Done()
	watch := time.NewTicker(WatchEvery)
	defer watch.Stop()
	// pending holds the requests taken from the queue and not finished, in turn: a device
	// push larger than a slice goes back to the end after each of its slices.
	var pending []*applyReq
	for {
		if len(pending) == 0 {
			select {
			case <-watch.C:
				if e.db.Postgres { // other writers' commits arrive as notifications (listen.go)
					continue
				}
				seqMoved, authMoved, err := e.position(e.db.W, false)
				if err != nil {
					e.Log.Error("read the write position", "err", err)
					continue
				}
				e.announce(seqMoved, authMoved, nil, nil, false)
				continue
			case r := <-e.reqs:
				pending = append(pending, r)
			case <-e.closed:
				for {
					select {
					case r := <-e.reqs:
						r.err = errClosed
						close(r.done)
					default:
						return
					}
				}
			}
		}
	drain:
		for len(pending) < 4*maxGroup {
			select {
			case r := <-e.reqs:
				pending = append(pending, r)
			default:
				break drain
			}
		}
		// The group: up to maxGroup requests, in turn.
		n := min(len(pending), maxGroup)
		group := pending[:n:n]
		pending = pending[n:]
		e.commitGroup(group, len(group) > 1 || len(pending) > 0)
		for _, r := range group {
			if r.err == nil && r.off < len(r.muts) {
				pending = append(pending, r)
			} else {
				close(r.done)
			}
		}
	}
}

// commitGroup applies every request's current slice (from off) of the group in one
// transaction. A request whose own processing fails (an I/O error, not a rejection) is
// rolled back to its savepoint and answered with the error; the others commit. The writer
// answers the requests that are finished.
func (e *Engine) commitGroup(group []*applyReq, others bool) {
	defer e.observeCommit(len(group), time.Now())
	finish := func(err error) {
		for _, r := range group {
			if r.err == nil && err != nil {
				r.err, r.res = err, nil
			}
		}
	}
	tx, err := e.db.W.Begin()
	if err != nil {
		finish(fmt.Errorf("begin: %w", err))
		return
	}
	// The position is read under the write lock the transaction holds: another process may
	// have written since our last transaction. SQLite's lock is the database's, taken at
	// BEGIN IMMEDIATE; PostgreSQL's is this row's, held to the commit, so that writers on
	// every instance commit one at a time, in the order of the sequence numbers they hand
	// out: a reader never sees a later position committed before an earlier one.
	seqMoved, authMoved, err := e.position(tx, e.db.Postgres)
	if err != nil {
		tx.Rollback()
		finish(err)
		return
	}
	seqBefore, authBefore := e.seq, e.auth
	if seqMoved || e.ticketHolders == nil || len(e.ticketHolders) > maxHeldTickets {
		e.ticketHolders = map[string][]string{}
	}
	w := &wtx{e: e, tx: tx, now: e.Now().UTC(), users: map[string]bool{}, accounts: map[string]bool{}, others: others,
		budget: SliceBudget / time.Duration(len(group))}
	settingsChanged := false
	for _, r := range group {
		if r.ctx.Err() != nil {
			r.err = r.ctx.Err()
			continue
		}
		if _, err := tx.Exec(`SAVEPOINT req`); err != nil {
			r.err = err
			continue
		}
		seq, mark := e.seq, w.changeMark()
		w.settingsChanged = false
		var res []Result
		var err error
		if r.fn != nil {
			err = r.fn(w)
		} else {
			if r.rejected == nil {
				r.rejected = map[string]bool{}
			}
			w.rejectedCreates, w.start, w.applied = r.rejected, time.Now(), 0
			w.sliceable = r.opts.Device != "" && !r.opts.Whole && !r.opts.DryRun && len(r.muts) > maxUncut
			res, err = w.applyMuts(r.actor, r.muts[r.off:], r.opts)
		}
		if err == nil {
			err = w.flushChanges()
		}
		if err != nil {
			e.seq = seq
			w.dropChanges(mark)
			clear(e.ticketHolders)
			tx.Exec(`ROLLBACK TO req`)
			tx.Exec(`RELEASE req`)
			// A Whole batch refused answers its results too.
			r.err, r.res = err, res
			if _, refused := schema.AsError(err); !refused { // a refusal is the caller's answer, not a fault
				e.Log.Error("apply batch", "err", err, "actor", r.actor.UserID)
			}
			continue
		}
		tx.Exec(`RELEASE req`)
		if r.res == nil {
			r.res = make([]Result, 0, len(r.muts))
		}
		r.res = append(r.res, res...)
		r.off += len(res)
		settingsChanged = settingsChanged || w.settingsChanged
	}
	if len(w.accounts) > 0 {
		e.auth++
	}
	if e.seq != seqBefore || e.auth != authBefore {
		if _, err := tx.Exec(`UPDATE engine_state SET seq = ?, auth = ?`, e.seq, e.auth); err != nil {
			tx.Rollback()
			clear(e.ticketHolders)
			e.seq, e.auth = seqBefore, authBefore
			finish(fmt.Errorf("write the position: %w", err))
			return
		}
		if e.db.Postgres { // the other instances learn of it at the commit (listen.go)
			if _, err := tx.Exec(`SELECT pg_notify(?, ?)`, notifyChannel, e.note(w.users, w.accounts, w.global, settingsChanged)); err != nil {
				tx.Rollback()
				clear(e.ticketHolders)
				e.seq, e.auth = seqBefore, authBefore
				finish(fmt.Errorf("announce the commit: %w", err))
				return
			}
		}
	}
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		clear(e.ticketHolders)
		e.seq, e.auth = seqBefore, authBefore
		finish(fmt.Errorf("commit: %w", err))
		return
	}
	if e.db.Postgres { // another instance's commits were announced by its notification
		seqMoved, authMoved = false, false
	}
	if settingsChanged && !seqMoved { // an outside change reloads them in announce
		if err := e.ReloadSettings(context.Background()); err != nil {
			e.Log.Error("reload settings", "err", err)
		}
	}
	e.announce(seqMoved, authMoved, w.users, w.accounts, w.global)
	if w.alerted && e.Alerted != nil {
		e.Alerted()
	}
	finish(nil)
}

// position reads the write position from the database. It reports whether another process
// moved the sequence or the accounts counter since this engine last wrote.
func (e *Engine) position(q interface {
	QueryRow(string, ...any) *sql.Row
}, lock bool) (seqMoved, authMoved bool, err error) {
	var seq, auth int64
	query := `SELECT seq, auth FROM engine_state`
	if lock {
		query += ` FOR UPDATE`
	}
	if err := q.QueryRow(query).Scan(&seq, &auth); err != nil {
		return false, false, fmt.Errorf("read the write position: %w", err)
	}
	if seq > e.seq {
		e.seq, seqMoved = seq, true
	}
	if auth > e.auth {
		e.auth, authMoved = auth, true
	}
	return seqMoved, authMoved, nil
}

// announce tells live connections what was committed: the feeds that moved (every feed
// when the sequence moved outside this engine, whose changes it cannot attribute), and the
// accounts whose sessions must be checked again (all of them after an outside change).
func (e *Engine) announce(outside, outsideAccounts bool, users, accounts map[string]bool, global bool) {
	if outside {
		if err := e.ReloadSettings(context.Background()); err != nil {
			e.Log.Error("reload settings", "err", err)
		}
		users, global = map[string]bool{"*": true}, true
	}
	if e.seq > e.Hub.Last() {
		e.Hub.Publish(e.seq, users, global)
	}
	if outsideAccounts {
		e.Hub.Recheck(nil)
	} else if len(accounts) > 0 {
		e.Hub.Recheck(accounts)
	}
}

// wtx is one write transaction; it implements schema.Reader for the rules.
type wtx struct {
	e               *Engine
	tx              *sql.Tx
	now             time.Time
	users           map[string]bool // technicians whose scope feed moved
	global          bool            // a change every office device or every device sees
	settingsChanged bool
	alerted         bool // outbox rows were written
	rejectedCreates map[string]bool
	accounts        map[string]bool // users whose account, devices or tokens changed
	// Slicing of device pushes: whether other requests wait (in this group or after it),
	// each batch's share of SliceBudget, and of the batch being applied: whether it may
	// stop early, when it began and how many mutations it applied.
	others    bool
	budget    time.Duration
	sliceable bool
	start     time.Time
	applied   int
	// changes holds the change-log rows written since the last flush (changeCols values
	// each), inserted many to a statement by flushChanges; flushed counts the rows this
	// transaction inserted before them.
	changes []any
	flushed int
}

// maxHeldTickets bounds Engine.ticketHolders; past it the map starts again empty.
const maxHeldTickets = 10_000

// changeCols is the number of columns of a change-log row.
const changeCols = 11

// changeMark is the number of change-log rows this transaction has written so far.
func (w *wtx) changeMark() int { return w.flushed + len(w.changes)/changeCols }

// dropChanges forgets the change-log rows written after mark, when a savepoint taken at
// mark is rolled back (the rows already inserted after it are rolled back with it).
func (w *wtx) dropChanges(mark int) {
	if mark >= w.flushed {
		w.changes = w.changes[:(mark-w.flushed)*changeCols]
		return
	}
	w.changes, w.flushed = w.changes[:0], mark
}

// flushChanges inserts the buffered change-log rows, up to 90 a statement. It runs before
// anything in the transaction reads the change log and before each request's work is
// released, so the log is whole at every commit.
func (w *wtx) flushChanges() error {
	const rows = 90
	for len(w.changes) > 0 {
		n := min(len(w.changes)/changeCols, rows)
		q := changeInsert(n)
		if _, err := w.tx.Exec(q, w.changes[:n*changeCols]...); err != nil {
			return err
		}
		w.changes = w.changes[n*changeCols:]
		w.flushed += n
	}
	w.changes = w.changes[:0]
	return nil
}

// changeInserts caches the multi-row INSERT statements by row count (the statement text
// is also the key of the driver's prepared-statement cache).
var changeInserts gosync.Map

func changeInsert(n int) string {
	if q, ok := changeInserts.Load(n); ok {
		return q.(string)
	}
	q := "INSERT INTO changes(seq, entity, id, version, op, action, actor_id, device_id, at, fields, conflicts) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ", n), ", ")
	changeInserts.Store(n, q)
	return q
}

// maxUncut is the largest device push never sliced: a phone's usual push (up to 50) costs
// a few milliseconds of the writer, and cutting it would only cost it more turns through the
// queue and more commits (push throughput halved when every push was sliced); the large
// pushes a flooding device sends are sliced.
const maxUncut = 64

// yield reports whether the batch being applied stops here for this transaction: it is a
// device push larger than maxUncut that applied something and used its share of
// SliceBudget, and other requests wait.
func (w *wtx) yield() bool {
	return w.sliceable && w.applied > 0 && time.Since(w.start) > w.budget && (w.others || len(w.e.reqs) > 0)
}

var _ schema.Reader = (*wtx)(nil)

func (w *wtx) Now() time.Time             { return w.now }
func (w *wtx) Settings() *schema.Settings { return w.e.Settings() }

// Get reads a record as of this transaction.
func (w *wtx) Get(entity, id string) (schema.Doc, error) {
	d, _, err := w.get(entity, id)
	return d, err
}

func (w *wtx) get(entity, id string) (schema.Doc, int64, error) {
	var b []byte
	var version int64
	var deleted bool
	err := w.tx.QueryRow(`SELECT data, version, deleted FROM records WHERE entity = ? AND id = ?`, entity, id).Scan(&b, &version, &deleted)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && deleted) {
		return nil, 0, schema.Errorf(schema.CodeNotFound, "no %s with id %q", entity, id)
	}
	if err != nil {
		return nil, 0, err
	}
	d, err := schema.DecodeDoc(b)
	if err != nil {
		return nil, 0, fmt.Errorf("decode %s %s: %w", entity, id, err)
	}
	d["version"] = schema.Num(version)
	return d, version, nil
}

// exists reports whether a live record exists, without reading it.
func (w *wtx) exists(entity, id string) (bool, error) {
	var n int
	err := w.tx.QueryRow(`SELECT COUNT(*) FROM records WHERE entity = ? AND id = ? AND deleted = 0`, entity, id).Scan(&n)
	return n > 0, err
}

func (w *wtx) nextSeq() int64 {
	w.e.seq++
	return w.e.seq
}

// applyMuts judges each mutation on its own, inside its own savepoint, so that a rejection
// never leaves half a change behind and never blocks the mutations after it. The creates
// rejected earlier in the batch (its earlier slices included) are in w.rejectedCreates.
func (w *wtx) applyMuts(actor schema.Actor, muts []Mutation, opts Options) ([]Result, error) {
	out := make([]Result, len(muts))
	seen, err := w.remembered(opts.Device, muts)
	if err != nil {
		return nil, err
	}
	var keep []any // results to remember, written at the end of the slice
	stamp := schema.Stamp(w.now)
	for i, m := range muts {
		if w.yield() {
			return out[:i], w.remember(keep)
		}
		w.applied++
		if stored, ok := seen[m.MID]; ok {
			var r Result
			if err := json.Unmarshal(stored, &r); err != nil {
				return nil, err
			}
			if r.Status != StatusRejected {
				r.Status = StatusDuplicate
			}
			out[i] = r
			continue
		}
		if _, err := w.tx.Exec(`SAVEPOINT mut`); err != nil {
			return nil, err
		}
		seq, mark := w.e.seq, w.changeMark()
		res, err := w.applyOne(actor, m, opts)
		if err != nil {
			w.e.seq = seq
			w.dropChanges(mark)
			clear(w.e.ticketHolders)
			if _, rbErr := w.tx.Exec(`ROLLBACK TO mut`); rbErr != nil {
				return nil, rbErr
			}
			w.tx.Exec(`RELEASE mut`)
			se, ok := schema.AsError(err)
			if !ok {
				return nil, err // an I/O failure fails the batch
			}
			res = rejection(m, se)
			if m.Op == "create" {
				w.rejectedCreates[m.Entity+"/"+m.ID] = true
			}
			if se.Code == schema.CodeOutOfScope && actor.Role == schema.RoleTechnician {
				if kept := w.keepOrphanedWork(actor, m); kept != "" {
					res.Message += "; your input was kept on ticket " + kept + " for the coordinator"
				}
			}
		} else if _, err := w.tx.Exec(`RELEASE mut`); err != nil {
			return nil, err
		}
		if opts.Device != "" && m.MID != "" && !res.Retryable {
			keep = append(keep, opts.Device, m.MID, stamp, m.Entity, m.ID, m.Op, res.Status, schema.MustJSON(res))
		}
		out[i] = res
	}
	if err := w.remember(keep); err != nil {
		return nil, err
	}
	if opts.Whole || opts.DryRun {
		for _, r := range out {
			if r.Status == StatusRejected {
				return out, ErrNotWritten
			}
		}
		if opts.DryRun {
			return out, ErrNotWritten
		}
	}
	return out, nil
}

// rememberCols is the number of columns of a remembered result.
const rememberCols = 8

// remember stores the results of a batch's mutations (rememberCols values each), in
// multi-row inserts: one statement for up to 100 results instead of one each.
func (w *wtx) remember(vals []any) error {
	const rows = 100
	for len(vals) > 0 {
		n := min(len(vals)/rememberCols, rows)
		q := "INSERT INTO mutations(device, mid, at, entity, rid, op, status, result) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", n), ", ")
		if _, err := w.tx.Exec(q, vals[:n*rememberCols]...); err != nil {
			return err
		}
		vals = vals[n*rememberCols:]
	}
	return nil
}

// remembered returns the stored results of the batch's mutations this device already
// pushed, by mid, in one query.
func (w *wtx) remembered(device string, muts []Mutation) (map[string][]byte, error) {
	if device == "" {
		return nil, nil
	}
	mids := make([]string, 0, len(muts))
	for _, m := range muts {
		if m.MID != "" {
			mids = append(mids, m.MID)
		}
	}
	if len(mids) == 0 {
		return nil, nil
	}
	rows, err := w.tx.Query(`SELECT mid, result FROM mutations WHERE device = ? AND mid IN (SELECT value FROM json_each(?))`,
		device, schema.MustJSON(mids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var mid string
		var res []byte
		if err := rows.Scan(&mid, &res); err != nil {
			return nil, err
		}
		out[mid] = res
	}
	return out, rows.Err()
}

func rejection(m Mutation, se *schema.Error) Result {
	r := Result{MID: m.MID, Status: StatusRejected, Code: se.Code, Message: se.Message, Field: se.Field, Entity: m.Entity, ID: m.ID,
		Retryable: se.Code == schema.CodeMissingBlob || se.Code == schema.CodeUnavailable, Extra: se.Extra}
	if d, ok := se.Record.(schema.Doc); ok {
		r.Record = schema.MustJSON(d)
		r.Version = d.Int("version")
	}
	return r
}

// keepOrphanedWork records field work pushed for a ticket that left the technician's scope as
// an event on that ticket, where the coordinator sees it: field work is never silently lost.
func (w *wtx) keepOrphanedWork(actor schema.Actor, m Mutation) string {
	ticketID := ""
	switch m.Entity {
	case schema.EntTicket:
		ticketID = m.ID
	default:
		var t struct {
			TicketID string `json:"ticket_id"`
		}
		if raw, ok := m.Fields["ticket_id"]; ok {
			json.Unmarshal(raw, &t.TicketID)
		}
		if cur, err := w.Get(m.Entity, m.ID); err == nil {
			t.TicketID = cur.Str("ticket_id")
		}
		ticketID = t.TicketID
	}
	ticket, err := w.Get(schema.EntTicket, ticketID)
	if err != nil || len(m.Fields) == 0 && m.Op != "action" || len(m.At) > 64 {
		return ""
	}
	// Only work on a ticket that was in this technician's scope and left it is kept: a
	// forged or guessed id must not write on (or reveal) someone else's ticket.
	var left int
	if err := w.tx.QueryRow(`SELECT COUNT(*) FROM scope WHERE user_id = ? AND entity = ? AND id = ? AND present = 0`,
		actor.UserID, schema.EntTicket, ticketID).Scan(&left); err != nil || left == 0 {
		return ""
	}
	// What is kept is checked as the mutation would have been: known fields of the right
	// type and size that a technician may write; anything else is not kept.
	ent, ok := schema.LookupEntity(m.Entity)
	if !ok {
		return ""
	}
	var fields schema.Doc
	if m.Op == "action" {
		if !ValidID(m.Action) {
			return ""
		}
		fields, err = decodeParams(m.Fields)
		if err == nil && len(schema.MustJSON(fields)) > schema.MaxText {
			return ""
		}
	} else {
		fields, err = decodeFields(actor, ent, m.Fields, m.Op == "create")
	}
	if err != nil {
		return ""
	}
	details := schema.Doc{"entity": m.Entity, "id": m.ID, "op": m.Op, "action": m.Action, "fields": fields, "device_time": m.At}
	ev := schema.Doc{"ticket_id": ticketID, "kind": "orphaned_work", "actor_id": actor.UserID, "device_id": actor.DeviceID,
		"at": schema.Stamp(w.now), "note": "pushed after the ticket left this technician's scope", "details": details}
	// The server writes the event (the technician no longer may write on the ticket); the
	// event names the technician and the device.
	keeper := schema.System
	keeper.DeviceID = actor.DeviceID
	if _, err := w.create(keeper, schema.EntTicketEvent, uuid.Must(uuid.NewV7()).String(), ev, "", nil); err != nil {
		w.e.Log.Error("keep orphaned work", "err", err)
		return ""
	}
	return ticket.Str("number")
}

// ValidID reports whether id is acceptable as a record id: 1 to 64 letters, digits, '-' or
// '_' (device-made ids are UUIDv7).
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func decodeParams(fields map[string]json.RawMessage) (schema.Doc, error) {
	d := schema.Doc{}
	for k, raw := range fields {
		v, err := schema.DecodeDoc([]byte(`{"v":` + string(raw) + `}`))
		if err != nil {
			return nil, schema.FieldError(schema.CodeBadRequest, k, "%s: not valid JSON", k)
		}
		d[k] = v["v"]
	}
	return d, nil
}
