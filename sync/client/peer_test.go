package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	syncer "fieldsync/sync"
)

// peer is a scripted protocol peer: a tiny fieldsync server on 127.0.0.1 that follows the
// wire contract over a real WebSocket and the HTTP fallback, with hooks a test uses to
// misbehave. Checkpoints are the index into its change log.
type peer struct {
	t   *testing.T
	srv *httptest.Server

	mu        stdsync.Mutex
	log       []syncer.Change
	records   map[string]syncer.Change // entity/id → latest upsert
	results   map[string]syncer.Result // mid → stored result
	applies   map[string]int           // mid → times applied
	pushes    [][]string               // mids of every push received, in order
	pulls     []string                 // checkpoints of every pull
	hellos    []syncer.Frame
	auth      []string // Authorization headers seen
	protos    []string // subprotocols negotiated
	conns     int
	live      map[*peerConn]string // connection → re of its live pull
	pageSize  int
	refuseWS  bool
	blobs     map[string][]byte // held whole
	partial   map[string][]byte
	patches   []string // "offset/length" of every PATCH
	httpCalls []string

	// Hooks, read under mu.
	afterWelcome func(pc *peerConn) bool                        // true: the session is over
	decide       func(m syncer.Mutation) *syncer.Result         // nil: apply
	onPush       func(pc *peerConn, f syncer.Frame) bool        // true: handled
	onPull       func(pc *peerConn, f syncer.Frame) bool        // true: handled
	failPatch    func(offset int64) bool                        // true: answer 500
	tamper       func(count int64, hash string) (int64, string) // changes the digest
}

type peerConn struct {
	ws *websocket.Conn
	mu stdsync.Mutex // one writer at a time: the handler and live fan-out both write
}

func (pc *peerConn) send(f syncer.Frame) error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	b, err := syncer.EncodeFrame(f) // as the server writes them (a page's head first)
	if err != nil {
		return err
	}
	return pc.ws.WriteMessage(websocket.TextMessage, b)
}

func (pc *peerConn) closeWith(code int, text string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	pc.ws.Close()
}

func newPeer(t *testing.T) *peer {
	p := &peer{
		t: t, records: map[string]syncer.Change{}, results: map[string]syncer.Result{},
		applies: map[string]int{}, live: map[*peerConn]string{}, pageSize: 1000,
		blobs: map[string][]byte{}, partial: map[string][]byte{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("GET /mobile/v1/sync", p.serveWS)
	mux.HandleFunc("POST /mobile/v1/sync/pull", p.servePull)
	mux.HandleFunc("POST /mobile/v1/sync/push", p.servePush)
	mux.HandleFunc("/mobile/v1/blobs/{sha}", p.serveBlob)
	p.srv = httptest.NewUnstartedServer(mux)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.srv.Listener = l
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

// open opens a client of this peer with quick backoffs.
func (p *peer) open(cfg Config) *Client {
	p.t.Helper()
	cfg.BaseURL = p.srv.URL
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(p.t.TempDir(), "device.db")
	}
	cfg.Token, cfg.DeviceID, cfg.AppVersion = "tok-1", "dev-1", "1.0.0"
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	}
	cfg.RequestTimeout = 5 * time.Second
	c, err := Open(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return c
}

// commit appends a change to the log and sends it to every live pull.
func (p *peer) commit(ch syncer.Change) {
	p.mu.Lock()
	ch.Seq = int64(len(p.log) + 1)
	p.log = append(p.log, ch)
	key := ch.Entity + "/" + ch.ID
	if ch.Op == syncer.OpUpsert {
		p.records[key] = ch
	} else {
		delete(p.records, key)
	}
	cp := strconv.Itoa(len(p.log))
	live := make(map[*peerConn]string, len(p.live))
	for pc, re := range p.live {
		live[pc] = re
	}
	p.mu.Unlock()
	for pc, re := range live {
		pc.send(syncer.Frame{Type: syncer.MsgChanges, Re: re, Changes: []syncer.Change{ch}, Checkpoint: &cp, HasMore: ptr(false)})
	}
}

func (p *peer) page(checkpoint string, limit int) (changes []syncer.Change, cp string, more bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pulls = append(p.pulls, checkpoint)
	from, _ := strconv.Atoi(checkpoint)
	n := min(limit, p.pageSize, len(p.log)-from)
	changes = append(changes, p.log[from:from+n]...)
	return changes, strconv.Itoa(from + n), from+n < len(p.log)
}

// apply judges a batch the way the contract says: duplicates by mid, else decide (default:
// applied, version bumped, committed to the log).
func (p *peer) apply(ms []syncer.Mutation) []syncer.Result {
	p.mu.Lock()
	mids := make([]string, len(ms))
	for i, m := range ms {
		mids[i] = m.MID
	}
	p.pushes = append(p.pushes, mids)
	decide := p.decide
	p.mu.Unlock()
	out := make([]syncer.Result, len(ms))
	for i, m := range ms {
		p.mu.Lock()
		stored, dup := p.results[m.MID]
		p.mu.Unlock()
		if dup {
			stored.Status = syncer.StatusDuplicate
			out[i] = stored
			continue
		}
		if decide != nil {
			if r := decide(m); r != nil {
				r.MID = m.MID
				if !r.Retryable {
					p.mu.Lock()
					p.results[m.MID] = *r
					p.mu.Unlock()
				}
				out[i] = *r
				continue
			}
		}
		p.mu.Lock()
		prev := p.records[m.Entity+"/"+m.ID]
		data := map[string]json.RawMessage{}
		if prev.Record != nil {
			json.Unmarshal(prev.Record, &data)
		}
		for k, v := range m.Fields {
			data[k] = v
		}
		data["id"], _ = json.Marshal(m.ID)
		record, _ := json.Marshal(data)
		version := prev.Version + 1
		p.applies[m.MID]++
		res := syncer.Result{MID: m.MID, Status: syncer.StatusApplied, Version: version, Record: record}
		p.results[m.MID] = res
		p.mu.Unlock()
		p.commit(syncer.Change{Entity: m.Entity, ID: m.ID, Op: syncer.OpUpsert, Version: version, Record: record})
		out[i] = res
	}
	return out
}

// digest computes the verify digest of the peer's records, as the server does.
func (p *peer) digest() (int64, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.records))
	for k := range p.records {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := p.records[keys[i]], p.records[keys[j]]
		if a.Entity != b.Entity {
			return a.Entity < b.Entity
		}
		return a.ID < b.ID
	})
	h := sha256.New()
	for _, k := range keys {
		r := p.records[k]
		fmt.Fprintf(h, "%s\n%s\n%d\n", r.Entity, r.ID, r.Version)
	}
	return int64(len(keys)), hex.EncodeToString(h.Sum(nil))
}

func (p *peer) serveWS(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	refuse := p.refuseWS
	p.auth = append(p.auth, r.Header.Get("Authorization"))
	p.mu.Unlock()
	if refuse {
		http.Error(w, "websockets blocked here", http.StatusForbidden)
		return
	}
	up := websocket.Upgrader{Subprotocols: []string{syncer.Subprotocol}}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	pc := &peerConn{ws: ws}
	defer func() {
		p.mu.Lock()
		delete(p.live, pc)
		p.mu.Unlock()
		ws.Close()
	}()
	var hello syncer.Frame
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != syncer.MsgHello {
		pc.closeWith(4401, "hello first")
		return
	}
	p.mu.Lock()
	p.conns++
	p.hellos = append(p.hellos, hello)
	p.protos = append(p.protos, ws.Subprotocol())
	after := p.afterWelcome
	p.mu.Unlock()
	pc.send(syncer.Frame{Type: syncer.MsgWelcome, Re: hello.ID, Protocol: 1, ServerTime: time.Now().UTC().Format(time.RFC3339),
		User: &syncer.User{ID: "u1", Role: "technician", Name: "Li"}, Limits: &syncer.Limits{MaxBatch: 500, MaxFrameBytes: 1 << 20}})
	if after != nil && after(pc) {
		return
	}
	for {
		var f syncer.Frame
		if err := ws.ReadJSON(&f); err != nil {
			return
		}
		p.mu.Lock()
		onPush, onPull, tamper := p.onPush, p.onPull, p.tamper
		p.mu.Unlock()
		switch f.Type {
		case syncer.MsgPull:
			if onPull != nil && onPull(pc, f) {
				continue
			}
			cp := ""
			if f.Checkpoint != nil {
				cp = *f.Checkpoint
			}
			changes, next, more := p.page(cp, f.Limit)
			p.mu.Lock()
			delete(p.live, pc)
			if f.Live && !more {
				p.live[pc] = f.ID
			}
			p.mu.Unlock()
			pc.send(syncer.Frame{Type: syncer.MsgChanges, Re: f.ID, Changes: changes, Checkpoint: &next, HasMore: &more})
		case syncer.MsgPush:
			if onPush != nil && onPush(pc, f) {
				continue
			}
			pc.send(syncer.Frame{Type: syncer.MsgResults, Re: f.ID, Results: p.apply(f.Mutations)})
		case syncer.MsgVerify:
			count, hash := p.digest()
			if tamper != nil {
				count, hash = tamper(count, hash)
			}
			pc.send(syncer.Frame{Type: syncer.MsgDigest, Re: f.ID, Count: &count, Hash: hash})
		default:
			pc.send(syncer.Frame{Type: syncer.MsgError, Re: f.ID, Code: "unknown_type", Message: f.Type})
		}
	}
}

func (p *peer) servePull(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Checkpoint string `json:"checkpoint"`
		Limit      int    `json:"limit"`
	}
	p.note("pull " + r.Header.Get("Authorization"))
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	changes, next, more := p.page(body.Checkpoint, body.Limit)
	json.NewEncoder(w).Encode(map[string]any{"changes": changes, "checkpoint": next, "has_more": more})
}

func (p *peer) servePush(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Mutations []syncer.Mutation `json:"mutations"`
	}
	p.note("push " + r.Header.Get("Authorization"))
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"results": p.apply(body.Mutations)})
}

func (p *peer) note(call string) {
	p.mu.Lock()
	p.httpCalls = append(p.httpCalls, call)
	p.mu.Unlock()
}

// serveBlob is a resumable blob store: HEAD, PATCH with Upload-Offset/Upload-Length, GET.
func (p *peer) serveBlob(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r.Method {
	case http.MethodHead:
		if _, ok := p.blobs[sha]; ok {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Upload-Offset", strconv.Itoa(len(p.partial[sha])))
		w.WriteHeader(http.StatusNotFound)
	case http.MethodGet:
		data, ok := p.blobs[sha]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	case http.MethodPatch:
		offset, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		length, _ := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64)
		p.patches = append(p.patches, fmt.Sprintf("%d/%d", offset, length))
		if r.Header.Get("Content-Type") != "application/offset+octet-stream" {
			http.Error(w, "content type", http.StatusUnsupportedMediaType)
			return
		}
		if p.failPatch != nil && p.failPatch(offset) {
			http.Error(w, "disk full", http.StatusInternalServerError)
			return
		}
		held := p.partial[sha]
		if offset != int64(len(held)) {
			w.Header().Set("Upload-Offset", strconv.Itoa(len(held)))
			http.Error(w, "offset", http.StatusConflict)
			return
		}
		chunk, _ := io.ReadAll(r.Body)
		held = append(held, chunk...)
		if int64(len(held)) == length {
			sum := sha256.Sum256(held)
			if hex.EncodeToString(sum[:]) != sha {
				delete(p.partial, sha)
				http.Error(w, "hash", http.StatusUnprocessableEntity)
				return
			}
			p.blobs[sha] = held
			delete(p.partial, sha)
		} else {
			p.partial[sha] = held
		}
		w.Header().Set("Upload-Offset", strconv.Itoa(len(held)))
		w.WriteHeader(http.StatusNoContent)
	}
}

func (p *peer) set(fn func()) {
	p.mu.Lock()
	fn()
	p.mu.Unlock()
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func seed(p *peer, n int) {
	for i := range n {
		id := fmt.Sprintf("t%02d", i)
		p.commit(upsert("ticket", id, 1, `{"id":"`+id+`"}`))
	}
}

func TestHelloAndPagedPull(t *testing.T) {
	p := newPeer(t)
	p.pageSize = 2
	seed(p, 5)
	c := p.open(Config{})
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rs, _ := c.Records("ticket")
	if len(rs) != 5 || c.State().Checkpoint != "5" {
		t.Fatalf("records %d checkpoint %q, want 5 and 5", len(rs), c.State().Checkpoint)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if got := strings.Join(p.pulls, ","); got != ",2,4" {
		t.Errorf("pulls from %q, want from \"\", 2, 4", got)
	}
	h := p.hellos[0]
	if h.Token != "tok-1" || h.DeviceID != "dev-1" || h.Protocol != 1 || h.AppVersion != "1.0.0" || h.ID == "" {
		t.Errorf("hello = %+v", h)
	}
	if p.auth[0] != "Bearer tok-1" || p.protos[0] != syncer.Subprotocol {
		t.Errorf("upgrade auth %q subprotocol %q", p.auth[0], p.protos[0])
	}
}

// The next page is asked for as soon as a page's head (checkpoint, has_more) is read, before
// the page is decoded; a page that then turns out undecodable ends the session, and the pull
// starts again from the checkpoint stored with the last page applied: nothing is skipped.
func TestUndecodablePageAfterItsHead(t *testing.T) {
	p := newPeer(t)
	p.pageSize = 2
	seed(p, 5)
	broken := false
	p.set(func() {
		p.onPull = func(pc *peerConn, f syncer.Frame) bool {
			if *f.Checkpoint != "2" || broken {
				return false
			}
			broken = true
			pc.mu.Lock()
			defer pc.mu.Unlock()
			pc.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"changes","re":"`+f.ID+`","checkpoint":"4","has_more":true,"changes":[{"seq":3,"entity":"ticket","id":"t02","op":"upsert","version":1,"record":{"id":`))
			return true
		}
	})
	c := p.open(Config{})
	if err := c.SyncNow(ctxT(t)); err == nil || !strings.Contains(err.Error(), "undecodable changes frame") {
		t.Fatalf("a sync meeting a broken page answered %v", err)
	}
	rs, _ := c.Records("ticket")
	if len(rs) != 2 || c.State().Checkpoint != "2" {
		t.Fatalf("after the broken page: records %d checkpoint %q, want 2 and 2", len(rs), c.State().Checkpoint)
	}
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rs, _ = c.Records("ticket")
	if len(rs) != 5 || c.State().Checkpoint != "5" {
		t.Fatalf("records %d checkpoint %q, want 5 and 5", len(rs), c.State().Checkpoint)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Answered by the page (the broken answer to the pull from 2 is not counted): from "",
	// from 4 if the pull asked on the broken page's head got through before the session
	// ended, then from 2 and 4 again.
	if got := strings.Join(p.pulls, ","); got != ",4,2,4" && got != ",2,4" {
		t.Errorf("pulls from %q, want \",4,2,4\" or \",2,4\"", got)
	}
}

func TestLiveChanges(t *testing.T) {
	p := newPeer(t)
	seed(p, 1)
	c := p.open(Config{})
	got := make(chan string, 10)
	c.OnChange(func(entity, id, op string) { got <- entity + "/" + id + " " + op })
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	<-got // the seeded ticket
	p.commit(upsert("ticket", "dispatched", 1, `{"id":"dispatched"}`))
	select {
	case ch := <-got:
		if ch != "ticket/dispatched upsert" {
			t.Errorf("change = %q", ch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("live change not delivered")
	}
	if _, ok, _ := c.Record("ticket", "dispatched"); !ok || !c.State().Connected {
		t.Error("live record not stored, or not connected")
	}
}

// testClock is a clock a test moves by hand, for the client's retry schedule: a retryable
// mutation becomes due when the test says so, not when a loaded machine gets round to it.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestPushResults(t *testing.T) {
	p := newPeer(t)
	seed(p, 1)
	clock := newTestClock()
	c := p.open(Config{Now: clock.now})
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	midApplied, _ := c.Mutate("ticket", "t00", "update", 1, map[string]any{"notes": "ok"}, "")
	midRejected, _ := c.Mutate("ticket", "t00", "action", 1, nil, "arrive")
	midRetry, _ := c.Mutate("ticket", "t01", "create", 0, map[string]any{"title": "x"}, "")
	midDup, _ := c.Mutate("ticket", "t02", "create", 0, map[string]any{"title": "y"}, "")
	p.set(func() {
		p.results[midDup] = syncer.Result{MID: midDup, Status: syncer.StatusApplied, Version: 1, Record: json.RawMessage(`{"id":"t02","title":"y"}`)}
		p.decide = func(m syncer.Mutation) *syncer.Result {
			switch m.MID {
			case midRejected:
				return &syncer.Result{Status: syncer.StatusRejected, Code: "invalid_transition", Message: "accept the ticket first", Field: "status"}
			case midRetry:
				return &syncer.Result{Status: syncer.StatusRejected, Code: "missing_blob", Retryable: true}
			}
			return nil
		}
	})
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rows, _ := outbox(c.st.r, "", "")
	if len(rows) != 1 || rows[0].m.MID != midRetry || rows[0].attempts != 1 {
		t.Fatalf("outbox = %+v, want only the retryable one", rows)
	}
	rej, _ := c.Rejections()
	if len(rej) != 1 || rej[0].MID != midRejected || rej[0].Code != "invalid_transition" || rej[0].Field != "status" || rej[0].Message == "" {
		t.Fatalf("rejections = %+v", rej)
	}
	if r, _, _ := c.Record("ticket", "t00"); r.Version != 2 || r.Pending {
		t.Errorf("applied record = %+v", r)
	}
	if r, ok, _ := c.Record("ticket", "t02"); !ok || r.Version != 1 || r.Pending {
		t.Errorf("duplicate's record = %+v", r)
	}
	// Not before its backoff has passed: a round now leaves it alone.
	p.set(func() { p.decide = nil })
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if rows, _ := outbox(c.st.r, "", ""); len(rows) != 1 || rows[0].attempts != 1 {
		t.Fatalf("outbox = %+v, want the retryable one still waiting, sent once", rows)
	}
	// The retryable one goes again, with the same mid, once its backoff has passed.
	clock.advance(50*time.Millisecond + time.Millisecond) // MaxBackoff, the longest a first retry waits
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := c.State().Pending; n != 0 {
		t.Errorf("pending = %d after retry", n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.pushes[len(p.pushes)-1]
	if len(last) != 1 || last[0] != midRetry || p.applies[midApplied] != 1 {
		t.Errorf("retry push = %v, want [%s]", last, midRetry)
	}
}

func TestReconnectMidPushResendsSameMids(t *testing.T) {
	p := newPeer(t)
	dropped := false
	p.set(func() {
		p.onPush = func(pc *peerConn, f syncer.Frame) bool {
			p.mu.Lock()
			first := !dropped
			dropped = true
			p.mu.Unlock()
			if !first {
				return false
			}
			p.apply(f.Mutations) // committed, but the acknowledgement is lost
			pc.ws.Close()
			return true
		}
	})
	c := p.open(Config{})
	var mids []string
	for i := range 3 {
		mid, _ := c.Mutate("ticket", NewID(), "create", 0, map[string]any{"n": i}, "")
		mids = append(mids, mid)
	}
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the outbox to drain", func() bool { return c.State().Pending == 0 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pushes) < 2 || strings.Join(p.pushes[0], ",") != strings.Join(mids, ",") || strings.Join(p.pushes[1], ",") != strings.Join(mids, ",") {
		t.Fatalf("pushes = %v, want the same batch %v twice", p.pushes, mids)
	}
	for _, mid := range mids {
		if p.applies[mid] != 1 {
			t.Errorf("mid %s applied %d times", mid, p.applies[mid])
		}
	}
	if p.conns < 2 {
		t.Errorf("connections = %d, want a reconnect", p.conns)
	}
}

func TestRevokedDeviceIsWiped(t *testing.T) {
	p := newPeer(t)
	seed(p, 3)
	c := p.open(Config{})
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c.Mutate("ticket", "t00", "update", 1, map[string]any{"notes": "x"}, "")
	p.set(func() {
		p.afterWelcome = func(pc *peerConn) bool { pc.closeWith(4403, "revoked"); return true }
	})
	if err := c.SyncNow(ctxT(t)); err != ErrRevoked {
		t.Fatalf("SyncNow = %v, want ErrRevoked", err)
	}
	rs, _ := c.Records("ticket")
	st := c.State()
	if len(rs) != 0 || st.Pending != 0 || st.Checkpoint != "" || st.Stopped != "revoked" {
		t.Errorf("after 4403: %d records, state %+v", len(rs), st)
	}
	if err := c.SyncNow(ctxT(t)); err != ErrRevoked {
		t.Errorf("SyncNow after revocation = %v", err)
	}
}

func TestReplacedConnectionStops(t *testing.T) {
	p := newPeer(t)
	c := p.open(Config{})
	p.set(func() {
		p.afterWelcome = func(pc *peerConn) bool {
			time.Sleep(20 * time.Millisecond)
			pc.closeWith(4409, "replaced")
			return true
		}
	})
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stop", func() bool { return c.State().Stopped == "replaced" })
	time.Sleep(200 * time.Millisecond) // many backoffs long
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns != 1 {
		t.Errorf("connections = %d, want 1 (no reconnect after 4409)", p.conns)
	}
}

func TestFrameTooBigHalvesBatch(t *testing.T) {
	p := newPeer(t)
	p.set(func() {
		p.onPush = func(pc *peerConn, f syncer.Frame) bool {
			if len(f.Mutations) > 2 {
				pc.closeWith(websocket.CloseMessageTooBig, "too big")
				return true
			}
			return false
		}
	})
	c := p.open(Config{MaxBatch: 8})
	for i := range 5 {
		c.Mutate("ticket", NewID(), "create", 0, map[string]any{"n": i}, "")
	}
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the outbox to drain", func() bool { return c.State().Pending == 0 })
	p.mu.Lock()
	defer p.mu.Unlock()
	var sizes []int
	for _, ms := range p.pushes {
		sizes = append(sizes, len(ms))
	}
	if fmt.Sprint(sizes) != "[2 2 1]" {
		t.Errorf("accepted push sizes = %v, want [2 2 1] after halving 8 → 4 → 2", sizes)
	}
}

func TestCheckpointExpiredResyncs(t *testing.T) {
	p := newPeer(t)
	seed(p, 2)
	c := p.open(Config{})
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c.Mutate("ticket", "t00", "update", 1, map[string]any{"notes": "keep me"}, "")
	// The server forgot everything before; t00 is gone and t09 is new.
	p.set(func() {
		p.log, p.records = nil, map[string]syncer.Change{}
		p.onPull = func(pc *peerConn, f syncer.Frame) bool {
			if *f.Checkpoint != "" {
				pc.send(syncer.Frame{Type: syncer.MsgError, Re: f.ID, Code: "checkpoint_expired", Message: "too old"})
				return true
			}
			return false
		}
		p.decide = func(m syncer.Mutation) *syncer.Result {
			return &syncer.Result{Status: syncer.StatusRejected, Code: "missing_blob", Retryable: true}
		}
	})
	p.commit(upsert("ticket", "t09", 1, `{"id":"t09"}`))
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rs, _ := c.Records("ticket")
	if len(rs) != 1 || rs[0].ID != "t09" || c.State().Checkpoint != "1" {
		t.Errorf("after resync: %+v checkpoint %q", rs, c.State().Checkpoint)
	}
	if c.State().Pending != 1 {
		t.Error("the outbox was not kept")
	}
}

func TestVerify(t *testing.T) {
	p := newPeer(t)
	seed(p, 4)
	c := p.open(Config{})
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctxT(t)); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	p.set(func() { p.tamper = func(n int64, h string) (int64, string) { return n + 1, h } })
	if err := c.Verify(ctxT(t)); err == nil {
		t.Fatal("Verify passed with a different server digest")
	}
}

func TestHTTPFallback(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"forced", Config{ForceHTTP: true}},
		{"after upgrade failures", Config{FallbackAfter: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t)
			p.pageSize = 2
			p.refuseWS = true
			seed(p, 3)
			c := p.open(tc.cfg)
			mid, _ := c.Mutate("ticket", "t00", "update", 1, map[string]any{"notes": "via http"}, "")
			if err := c.SyncNow(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			r, _, _ := c.Record("ticket", "t00")
			if c.State().Pending != 0 || r.Version != 2 || r.Pending {
				t.Errorf("after HTTP round: pending %d record %+v", c.State().Pending, r)
			}
			rs, _ := c.Records("ticket")
			if len(rs) != 3 {
				t.Errorf("records = %d, want 3", len(rs))
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.applies[mid] != 1 || len(p.httpCalls) < 3 || p.httpCalls[0] != "pull Bearer tok-1" {
				t.Errorf("http calls %v, applies %d", p.httpCalls, p.applies[mid])
			}
		})
	}
}

func TestBlobUploadResumes(t *testing.T) {
	p := newPeer(t)
	data := make([]byte, 600<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	p.partial[sha] = append([]byte(nil), data[:100000]...) // from an earlier, cut upload
	failures := 1
	p.set(func() {
		p.failPatch = func(offset int64) bool {
			if offset > 100000 && failures > 0 { // the second chunk fails once
				failures--
				return true
			}
			return false
		}
		p.decide = func(m syncer.Mutation) *syncer.Result {
			if _, ok := p.blobs[sha]; !ok { // called without p.mu: p.blobs is only written under it by PATCH
				return &syncer.Result{Status: syncer.StatusRejected, Code: "missing_blob", Retryable: true}
			}
			return nil
		}
	})
	clock := newTestClock()
	c := p.open(Config{MinBackoff: 300 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Now: clock.now})
	got, err := c.PutBlob(data)
	if err != nil || got != sha {
		t.Fatalf("PutBlob = %s, %v", got, err)
	}
	c.Mutate("sheet", NewID(), "create", 0, map[string]any{"signature_blob": sha}, "")
	if err := c.SyncNow(ctxT(t)); err == nil {
		t.Fatal("SyncNow passed although an upload chunk failed")
	}
	if st := c.State(); st.Pending != 1 {
		t.Fatalf("the mutation left the outbox without its blob: %+v %v", st, p.patches)
	}
	clock.advance(310 * time.Millisecond) // its retry backoff (at most MaxBackoff)
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	whole := string(p.blobs[sha]) == string(data)
	patches := strings.Join(p.patches, " ")
	pushes := len(p.pushes)
	p.mu.Unlock()
	if !whole || c.State().Pending != 0 {
		t.Fatalf("blob whole %v, pending %d", whole, c.State().Pending)
	}
	// 100000 held → PATCH at 100000 (ok), at 362144 (fails), resume from HEAD at 362144.
	if !strings.HasPrefix(patches, "100000/614400 362144/614400 362144/614400") {
		t.Errorf("patches = %s", patches)
	}
	if pushes != 1 {
		t.Errorf("pushes = %d, want 1 (only after the blob was whole)", pushes)
	}
	if b, err := c.GetBlob(sha); err != nil || len(b) != len(data) {
		t.Errorf("GetBlob = %d bytes, %v", len(b), err)
	}
}

func TestGetBlobDownloads(t *testing.T) {
	p := newPeer(t)
	data := []byte("\x89PNG\r\n\x1a\n signature")
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	p.blobs[sha] = data
	c := p.open(Config{})
	got, err := c.GetBlob(sha)
	if err != nil || string(got) != string(data) {
		t.Fatalf("GetBlob = %q, %v", got, err)
	}
	p.set(func() { delete(p.blobs, sha) })
	if got, err := c.GetBlob(sha); err != nil || string(got) != string(data) {
		t.Errorf("cached GetBlob = %q, %v", got, err)
	}
}

func TestSyncNowAfterLoopEnded(t *testing.T) {
	p := newPeer(t)
	seed(p, 2)
	c := p.open(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if rs, _ := c.Records("ticket"); len(rs) != 2 {
		t.Errorf("records = %d, want 2", len(rs))
	}
}

func TestUnauthorizedStops(t *testing.T) {
	p := newPeer(t)
	p.set(func() {
		p.afterWelcome = func(pc *peerConn) bool { pc.closeWith(4401, "bad token"); return true }
	})
	c := p.open(Config{})
	if err := c.SyncNow(ctxT(t)); err != ErrUnauthorized {
		t.Fatalf("SyncNow = %v, want ErrUnauthorized", err)
	}
	if st := c.State(); st.Stopped != "unauthorized" || st.LastError == "" {
		t.Errorf("state = %+v", st)
	}
}

// TestHelloReportsOutbox: hello carries how many mutations wait in the outbox and when the
// oldest was made, so the office sees a phone whose work is stuck.
func TestHelloReportsOutbox(t *testing.T) {
	p := newPeer(t)
	seed(p, 1)
	clock := newTestClock()
	c := p.open(Config{Now: clock.now})
	first := clock.now().UTC().Format(time.RFC3339Nano)
	c.Mutate("ticket", "t00", "update", 1, map[string]any{"notes": "one"}, "")
	clock.advance(time.Minute)
	c.Mutate("ticket", "t00", "update", 1, map[string]any{"notes": "two"}, "")
	p.set(func() { p.decide = func(syncer.Mutation) *syncer.Result { return nil } })
	if err := c.SyncNow(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	h := p.hellos[0]
	p.mu.Unlock()
	if h.Pending == nil || *h.Pending != 2 || h.PendingSince != first {
		t.Fatalf("hello pending %v since %q, want 2 since %s", h.Pending, h.PendingSince, first)
	}
}
