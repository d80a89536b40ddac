package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
	"fieldsync/server"
	syncer "fieldsync/sync"
	"fieldsync/sync/client"
)

// hostileRaw dials the sync endpoint with a device token, optionally saying hello.
func hostileRaw(addr, token string, hello bool) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{syncer.Subprotocol}}
	c, _, err := d.Dial("ws://"+addr+"/mobile/v1/sync", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil || !hello {
		return c, err
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","id":"h","protocol":1,"device_id":"x"}`)); err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}

// TestHostileClientsDoNotHurtOthers: while three phones (the SDK) push notes and receive a
// coordinator's edits live, hostile clients send malformed frames, oversized frames, floods
// of pushes, open connections that never upgrade or never say hello, and a live pull that
// never reads. The phones keep syncing (each edit reaches them, every note they push is
// applied, their stores equal their scopes), and the server's heap stays bounded.
func TestHostileClientsDoNotHurtOthers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir(), DB: testpg.For(t, t.TempDir()), AdminPassword: "hostile-admin-1",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.App.Listener(ln)
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}()
	addr := ln.Addr().String()
	e := srv.Engine
	coord := schema.Actor{UserID: "hostile-coord", Role: schema.RoleCoordinator, Name: "coord"}
	apply := func(m syncer.Mutation) syncer.Result {
		t.Helper()
		res, err := e.Apply(ctx, coord, []syncer.Mutation{m}, syncer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Status == syncer.StatusRejected {
			t.Fatalf("%s %s: %s %s", m.Op, m.Entity, res[0].Code, res[0].Message)
		}
		return res[0]
	}
	raw := func(m map[string]any) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for k, v := range m {
			out[k] = schema.MustJSON(v)
		}
		return out
	}
	// The flooder is a device with a generous quota: the hourly quota is not what keeps it
	// from slowing the others.
	if err := e.PutSettings(ctx, schema.System, map[string]json.RawMessage{"push_mutations_per_hour": json.RawMessage("1000000"),
		"push_bytes_per_hour": json.RawMessage("1073741824")}); err != nil {
		t.Fatal(err)
	}
	cust := apply(syncer.Mutation{Entity: "customer", Op: "create", Fields: raw(map[string]any{"name": "Hostile Test Co."})}).ID

	type phone struct {
		c       *client.Client
		ticket  string
		version int64
		notes   []string
	}
	var phones []*phone
	var tokens []string // device tokens of the hostile clients
	var floodTicket string
	for i := range 5 {
		name := fmt.Sprintf("hostile-tech-%d", i)
		u, err := e.CreateUser(ctx, schema.System, syncer.NewUser{Username: name, Name: name, Role: schema.RoleTechnician, Password: "hostile-pass-1"})
		if err != nil {
			t.Fatal(err)
		}
		tk := apply(syncer.Mutation{Entity: "ticket", Op: "create", Fields: raw(map[string]any{"customer_id": cust, "fault_symptoms": "hostile " + name, "urgency": "high", "service_mode": "onsite"})}).ID
		v := apply(syncer.Mutation{Entity: "ticket", ID: tk, Op: "action", Action: "dispatch", Fields: raw(map[string]any{"technician_id": u.Str("id")})}).Version
		token, _, err := e.Login(ctx, name, "hostile-pass-1", &syncer.DeviceLogin{DeviceID: "dev-" + name})
		if err != nil {
			t.Fatal(err)
		}
		if i >= 3 {
			tokens = append(tokens, token)
			floodTicket = tk
			continue
		}
		c, err := client.Open(client.Config{BaseURL: "http://" + addr, DBPath: filepath.Join(t.TempDir(), "p.db"), Token: token, DeviceID: "dev-" + name,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, RequestTimeout: 10 * time.Second, FallbackAfter: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		phones = append(phones, &phone{c: c, ticket: tk, version: v})
	}

	stop := make(chan struct{})
	begin := make(chan struct{}) // the hostile clients start once the baseline is measured
	var wg gosync.WaitGroup
	var hostileFrames atomic.Int64
	loop := func(fn func(n int) bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-begin:
			case <-stop:
				return
			}
			for n := 0; n < 100_000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if !fn(n) {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// Malformed frames on an authenticated connection (reconnecting when closed).
	var bad *websocket.Conn
	garbage := []string{"{", "[1,2,3]", "null", `{"type":"push","id":"x","mutations":"no"}`, `{"type":"nope","id":"y"}`,
		`{"type":"pull","id":"z","checkpoint":"t-5","limit":-1}`, "\x00\x01\x02", `{"type":"hello","id":"h2","protocol":1}{"x":1}`,
		strings.Repeat("[", 10000), `{"type":"push","id":"q","mutations":[{"mid":"","entity":"ticket"}]}`}
	loop(func(n int) bool {
		if bad == nil {
			c, err := hostileRaw(addr, tokens[0], n%2 == 0) // err of its own: loops run beside the test
			if err != nil {
				return false
			}
			bad = c
			go func(c *websocket.Conn) {
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}(bad)
		}
		if bad.WriteMessage(websocket.TextMessage, []byte(garbage[n%len(garbage)])) != nil {
			bad.Close()
			bad = nil
			return false
		}
		hostileFrames.Add(1)
		return n%50 != 0
	})
	// Oversized frames: over max_frame_bytes, each closes its connection with 1009.
	big := []byte(`{"type":"push","id":"big","mutations":[],"x":"` + strings.Repeat("a", syncer.DefaultMaxFrameBytes+1024) + `"}`)
	var tooBig atomic.Int64
	loop(func(n int) bool {
		c, err := hostileRaw(addr, tokens[1], true)
		if err != nil {
			return false
		}
		defer c.Close()
		c.WriteMessage(websocket.TextMessage, big)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if asClose(err, &ce) && ce.Code == websocket.CloseMessageTooBig {
					tooBig.Add(1)
				}
				break
			}
		}
		return false
	})
	// A flood of maximum-size pushes of real work (notes on the flooder's own ticket),
	// pipelined without waiting for the results, on its WebSocket and over HTTP at once.
	floodBatch := func() []syncer.Mutation {
		muts := make([]syncer.Mutation, syncer.DefaultMaxBatch)
		for k := range muts {
			muts[k] = syncer.Mutation{MID: uuid.NewString(), Entity: "ticket_event", ID: client.NewID(), Op: "create",
				Fields: raw(map[string]any{"ticket_id": floodTicket, "note": "flood " + strings.Repeat("x", 200)})}
		}
		return muts
	}
	var floodApplied atomic.Int64
	for range 3 {
		loop(func(n int) bool {
			b, _ := json.Marshal(map[string]any{"mutations": floodBatch()})
			req, _ := http.NewRequest("POST", "http://"+addr+"/mobile/v1/sync/push", strings.NewReader(string(b)))
			req.Header.Set("Authorization", "Bearer "+tokens[1])
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			var out struct{ Results []syncer.Result }
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			for _, r := range out.Results {
				if r.Status == syncer.StatusApplied {
					floodApplied.Add(1)
				}
			}
			hostileFrames.Add(1)
			return resp.StatusCode == 200
		})
	}
	var flood *websocket.Conn
	loop(func(n int) bool {
		if flood == nil {
			c, err := hostileRaw(addr, tokens[1], true)
			if err != nil {
				return false
			}
			flood = c
			go func(c *websocket.Conn) {
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}(flood)
		}
		b, _ := json.Marshal(syncer.Frame{Type: "push", ID: fmt.Sprint("f", n), Mutations: floodBatch()})
		if flood.WriteMessage(websocket.TextMessage, b) != nil {
			flood.Close()
			flood = nil
			return false
		}
		hostileFrames.Add(1)
		return true
	})
	// Half-open connections: TCP without an upgrade, upgrades without hello.
	var halfOpen []net.Conn
	var silent []*websocket.Conn
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Write([]byte("GET /mobile/v1/sync HTTP/1.1\r\nHost: x\r\n"))
			halfOpen = append(halfOpen, c)
		}
		if c, err := hostileRaw(addr, tokens[0], false); err == nil {
			silent = append(silent, c)
		}
	}
	// A live pull that never reads while its ticket keeps changing.
	slow, err := hostileRaw(addr, tokens[1], true)
	if err != nil {
		t.Fatal(err)
	}
	slow.WriteMessage(websocket.TextMessage, []byte(`{"type":"pull","id":"live","checkpoint":"","live":true}`))

	// Meanwhile the phones work: notes pushed, the coordinator edits their tickets.
	var edits atomic.Int64
	// edit times one round of coordinator edits (one per phone's ticket).
	edit := func(label string) time.Duration {
		t0 := time.Now()
		for _, p := range phones {
			p.version = apply(syncer.Mutation{Entity: "ticket", ID: p.ticket, Op: "update", BaseVersion: p.version, Fields: raw(map[string]any{"agreed_handling": label})}).Version
			edits.Add(1)
		}
		return time.Since(t0) / time.Duration(len(phones))
	}
	for pi, p := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 10_000; n++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				id := client.NewID()
				if _, err := p.c.Mutate("ticket_event", id, "create", 0, map[string]any{"ticket_id": p.ticket, "note": fmt.Sprintf("phone %d note %d", pi, n)}, ""); err != nil {
					t.Errorf("Mutate: %v", err)
					return
				}
				p.notes = append(p.notes, id)
			}
		}()
	}
	// The coordinator's edits first without the hostile clients (the same run's baseline on
	// this machine, whatever else runs on it), then with them.
	var calm, loaded []time.Duration
	deadline := time.Now().Add(2 * time.Second)
	for n := 0; time.Now().Before(deadline) || len(calm) < 20; n++ {
		calm = append(calm, edit(fmt.Sprintf("calm %d", n)))
		time.Sleep(30 * time.Millisecond)
	}
	close(begin)
	time.Sleep(300 * time.Millisecond) // the flood gets going
	deadline = time.Now().Add(4 * time.Second)
	for n := 0; time.Now().Before(deadline) || len(loaded) < 20; n++ {
		loaded = append(loaded, edit(fmt.Sprintf("edit %d", n)))
		time.Sleep(30 * time.Millisecond)
	}
	// Heap while the hostile clients are still connected.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	during := ms.HeapInuse
	close(stop)
	wg.Wait()

	// A last edit per phone must arrive promptly (generously: within 10 s).
	for pi, p := range phones {
		want := apply(syncer.Mutation{Entity: "ticket", ID: p.ticket, Op: "update", BaseVersion: p.version, Fields: raw(map[string]any{"agreed_handling": "final"})}).Version
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, ok, err := p.c.Record("ticket", p.ticket)
			if err != nil {
				t.Fatal(err)
			}
			if ok && r.Version >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("phone %d: the coordinator's last edit (version %d) did not arrive within 10 s (holds %d; %s)", pi, want, r.Version, p.c.State().LastError)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// PostgreSQL takes about a quarter of SQLite's writes a second on this kind of machine
	// (docs/BENCHMARKS.md): the backlog the hostile phones left drains longer there.
	drain := 30 * time.Second
	if testpg.On() {
		drain = 120 * time.Second
	}
	for pi, p := range phones {
		deadline := time.Now().Add(drain)
		for p.c.State().Pending > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("phone %d: %d notes still unsent after %v", pi, p.c.State().Pending, drain)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if rej, _ := p.c.Rejections(); len(rej) > 0 {
			t.Fatalf("phone %d: rejection %s: %s", pi, rej[0].Code, rej[0].Message)
		}
		vctx, vcancel := context.WithTimeout(ctx, 20*time.Second)
		err := p.c.Verify(vctx)
		vcancel()
		if err != nil {
			t.Fatalf("phone %d: %v", pi, err)
		}
		notes, _ := p.c.Records("ticket_event")
		held := map[string]bool{}
		for _, r := range notes {
			held[r.ID] = true
		}
		for _, id := range p.notes {
			if !held[id] {
				t.Fatalf("phone %d: note %s missing after sync", pi, id)
			}
		}
	}
	for _, c := range halfOpen {
		c.Close()
	}
	for _, c := range silent {
		c.Close()
	}
	slow.Close()
	if bad != nil {
		bad.Close()
	}
	if flood != nil {
		flood.Close()
	}
	t.Logf("%d hostile frames, %d flood mutations applied, %d oversized closed with 1009, %d coordinator edits; heap in use %d MiB with the hostile clients connected",
		hostileFrames.Load(), floodApplied.Load(), tooBig.Load(), edits.Load(), during>>20)
	// Fairness: the flood is slowed, not the coordinator. Her edits' 90th percentile under
	// the flood stays within a generous bound of the same run's calm one (a shared, loaded
	// machine, -race, other packages' tests beside it: before the write queue was fair it was
	// 100 to 700 times it; fair, 5 to 17 times, the high end in a full parallel run).
	cm, c90 := percentile(calm, 50), percentile(calm, 90)
	lm, l90 := percentile(loaded, 50), percentile(loaded, 90)
	t.Logf("coordinator edit: calm p50 %v p90 %v (%d); under the flood p50 %v p90 %v (%d)", cm, c90, len(calm), lm, l90, len(loaded))
	if bound := 25*c90 + 500*time.Millisecond; l90 > bound {
		t.Errorf("the flood slowed the coordinator's edits: p90 %v under the flood, %v calm (bound %v)", l90, c90, bound)
	}
	if floodApplied.Load() == 0 {
		t.Error("no flood push was applied: the flood did not load the writer")
	}
	if tooBig.Load() == 0 {
		t.Error("no oversized frame was answered with close 1009")
	}
	const limit = 512 << 20
	if during > limit {
		t.Errorf("heap in use %d MiB with hostile clients, over %d MiB", during>>20, limit>>20)
	}
}

// percentile returns the p-th percentile of ds (sorted in place).
func percentile(ds []time.Duration, p int) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

func asClose(err error, ce **websocket.CloseError) bool {
	c, ok := err.(*websocket.CloseError)
	if ok {
		*ce = c
	}
	return ok
}
