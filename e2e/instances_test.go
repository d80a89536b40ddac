package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	gosync "sync"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/sync/client"
)

// Two fieldsync instances on one PostgreSQL database behind a load balancer
// (docs/operations.md, "Several instances"): phones on either receive, live, what a
// coordinator does on the other, and when an instance dies mid-push its phones go on
// through the other from their checkpoints, nothing lost, nothing applied twice.

// balancer is a TCP load balancer on 127.0.0.1 that sends every new connection to the
// current backend; cut closes every connection it carries, as a dead instance's would be.
type balancer struct {
	ln      net.Listener
	mu      gosync.Mutex
	backend string
	conns   map[net.Conn]bool
}

func newBalancer(t *testing.T, backend string) *balancer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); b.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			target := b.backend
			b.mu.Unlock()
			out, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				in.Close()
				continue
			}
			b.mu.Lock()
			b.conns[in], b.conns[out] = true, true
			b.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return b
}

// switchTo sends new connections to backend and closes the ones open.
func (b *balancer) switchTo(backend string) {
	b.mu.Lock()
	b.backend = backend
	b.mu.Unlock()
	b.cut()
}

func (b *balancer) cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
	clear(b.conns)
}

// secondInstance starts another server on e's database, on its own port.
func (e *env) secondInstance() *env {
	e.t.Helper()
	b := &env{t: e.t, dir: e.dir, db: e.db, addr: "127.0.0.1:0", coord: e.coord, users: e.users, cust: e.cust, site: e.site, asset: e.asset}
	b.boot()
	e.t.Cleanup(b.stop)
	return b
}

func TestTwoInstances(t *testing.T) {
	if !testpg.On() {
		t.Skip("several instances need PostgreSQL: set " + testpg.Env + " (bash .ci/postgres)")
	}
	a := newEnv(t)
	b := a.secondInstance()
	lb := newBalancer(t, a.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// tech1's phone reaches the company through the balancer (instance A for now); tech2's
	// is on instance B.
	viaLB := &env{t: t, dir: a.dir, base: "http://" + lb.ln.Addr().String(), coord: a.coord, users: a.users}
	c1, _ := viaLB.newClient("tech1", "phone-lb-1", clientOpts{})
	c2, _ := b.newClient("tech2", "phone-b-2", clientOpts{})
	for _, c := range []*client.Client{c1, c2} {
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []*client.Client{c1, c2} {
		eventually(t, 10*time.Second, fmt.Sprintf("phone %d connected and caught up", i+1), func() bool {
			st := c.State()
			return st.Connected && !st.LastSync.IsZero()
		})
	}

	// A coordinator on B dispatches to tech1, whose phone is on A; one on A to tech2 on B.
	t1 := b.newTicket("instances: dispatched on B")
	b.dispatch(t1, "tech1")
	eventually(t, 10*time.Second, "B's dispatch reaches the phone on A", func() bool {
		_, ok, _ := c1.Record("ticket", t1)
		return ok
	})
	t2 := a.newTicket("instances: dispatched on A")
	a.dispatch(t2, "tech2")
	eventually(t, 10*time.Second, "A's dispatch reaches the phone on B", func() bool {
		_, ok, _ := c2.Record("ticket", t2)
		return ok
	})

	// tech1 writes notes while instance A dies under the pushes: the balancer moves the
	// phone to B, which takes over from its checkpoint.
	const notes = 150
	for i := range notes {
		mutate(t, c1, "ticket_event", client.NewID(), "create", 0, map[string]any{"ticket_id": t1, "note": fmt.Sprintf("note %03d", i)}, "")
		if i == notes/3 {
			eventually(t, 10*time.Second, "instance A took some of the notes", func() bool { return len(a.events(t1)) > 2 })
			lb.switchTo(b.addr)
			a.stop()
		}
	}
	eventually(t, 30*time.Second, "the phone's outbox is empty after the move", func() bool {
		return c1.State().Pending == 0
	})
	if rej, _ := c1.Rejections(); len(rej) != 0 {
		t.Fatalf("rejections: %+v", rej)
	}
	count := map[string]int{}
	for _, ev := range b.events(t1) {
		if n, _ := ev["note"].(string); n != "" {
			count[n]++
		}
	}
	for i := range notes {
		if n := count[fmt.Sprintf("note %03d", i)]; n != 1 {
			t.Errorf("note %03d is on the server %d times, want once", i, n)
		}
	}
	// Both phones hold exactly their scope, as B has it.
	eventually(t, 10*time.Second, "phone 1 matches its scope", func() bool { return diffStores(b.scopeOf("tech1"), localOf(t, c1)) == "" })
	eventually(t, 10*time.Second, "phone 2 matches its scope", func() bool { return diffStores(b.scopeOf("tech2"), localOf(t, c2)) == "" })
	verify(t, c1)
	verify(t, c2)
}
