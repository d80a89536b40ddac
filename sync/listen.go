package sync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// Several instances on one PostgreSQL database learn of each other's commits through
// LISTEN/NOTIFY. Every write transaction that changed something sends, before its commit,
// one notification on the channel below naming what it changed (PostgreSQL delivers it
// only if the transaction commits, and to every listening session). Each instance listens
// on a connection of its own and wakes its hub as its own writer would have: the feeds
// that moved, the sessions to check again, the settings to reload. A subscriber then
// pulls from its checkpoint, so a notification that names too much only costs a pull.
//
// While the listening connection is down nothing is missed for long: on every
// (re)connection the instance wakes every feed, checks every session and reloads the
// settings once, as it does for a change made outside it.

// notifyChannel is the PostgreSQL channel of commits.
const notifyChannel = "fieldsync_commits"

// commitNote is a notification's payload.
type commitNote struct {
	From     string   `json:"from"` // the instance that committed (it does not wake itself twice)
	Seq      int64    `json:"seq"`
	Users    []string `json:"users,omitempty"`    // feeds that moved ("*": every technician)
	Global   bool     `json:"global,omitempty"`   // office feeds move
	Accounts []string `json:"accounts,omitempty"` // sessions to check again
	AllAuth  bool     `json:"all_auth,omitempty"` // every session (the list was too long)
	Settings bool     `json:"settings,omitempty"`
}

// maxNote keeps a payload under PostgreSQL's 8,000-byte limit: a longer list of users or
// accounts is replaced by "everyone".
const maxNote = 7000

func newInstanceID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// note is the payload announcing a commit of this instance.
func (e *Engine) note(users, accounts map[string]bool, global, settings bool) string {
	n := commitNote{From: e.instance, Seq: e.seq, Global: global, Settings: settings}
	for u := range users {
		n.Users = append(n.Users, u)
	}
	for a := range accounts {
		n.Accounts = append(n.Accounts, a)
	}
	b, _ := json.Marshal(n)
	if len(b) > maxNote {
		n.Users, n.Accounts, n.Global, n.AllAuth = []string{"*"}, nil, true, len(accounts) > 0
		b, _ = json.Marshal(n)
	}
	return string(b)
}

// listen receives the other instances' commits until the engine closes.
func (e *Engine) listen() {
	defer e.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-e.closed; cancel() }()
	for ctx.Err() == nil {
		err := e.listenConn(ctx)
		if ctx.Err() != nil {
			return
		}
		e.Log.Error("listen for other instances' commits; connecting again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (e *Engine) listenConn(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, e.db.URL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	// Whatever was committed while no one listened is announced as an outside change.
	e.outsideChange()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var note commitNote
		if err := json.Unmarshal([]byte(n.Payload), &note); err != nil {
			e.Log.Error("a commit notification that is not fieldsync's", "payload", n.Payload)
			continue
		}
		if note.From == e.instance {
			continue
		}
		if note.Settings {
			if err := e.ReloadSettings(context.Background()); err != nil {
				e.Log.Error("reload settings", "err", err)
			}
		}
		users := map[string]bool{}
		for _, u := range note.Users {
			users[u] = true
		}
		e.Hub.Publish(note.Seq, users, note.Global)
		if note.AllAuth {
			e.Hub.Recheck(nil)
		} else if len(note.Accounts) > 0 {
			accounts := map[string]bool{}
			for _, a := range note.Accounts {
				accounts[a] = true
			}
			e.Hub.Recheck(accounts)
		}
	}
}

// outsideChange wakes every feed, checks every session again and reloads the settings, as
// for a change this instance cannot attribute.
func (e *Engine) outsideChange() {
	if err := e.ReloadSettings(context.Background()); err != nil {
		e.Log.Error("reload settings", "err", err)
	}
	var seq int64
	if err := e.db.R.QueryRow(`SELECT seq FROM engine_state`).Scan(&seq); err != nil {
		e.Log.Error("read the write position", "err", err)
	}
	e.Hub.Publish(seq, map[string]bool{"*": true}, true)
	e.Hub.Recheck(nil)
}
