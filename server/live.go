package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	gosync "sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// The office's live feed: GET /api/v1/live is a stream of server-sent events that tells an
// open console what changed (which records, and the ticket each concerns), woken by the same
// hub that wakes the phones' live pulls. It carries no record content: the console reads
// what it shows through the API, whose role checks apply as always. docs/console.md, "Live".

func init() {
	apiDoc = append(apiDoc, routeDoc{"GET", "/api/v1/live",
		"server-sent events for an open console (text/event-stream): hello {server_time, seq}, changes {seq, changes: [{seq, entity, id, op, action?, ticket_id?}], more}, ping {server_time} every 25 s, end {code, message} when the session ends; at most 4 a user",
		"office", false})
}

// LiveFeedsPerUser bounds the live feeds one user may hold open (console tabs).
const LiveFeedsPerUser = 4

// liveBatch bounds the changes one event names; past it the event says more and the console
// reads everything again.
const liveBatch = 200

// liveHeartbeat is how often a feed sends ping (a closed tab is noticed then, and proxies
// see traffic); tests lower it.
var liveHeartbeat = 25 * time.Second

// liveFeeds counts the open feeds per user.
type liveFeeds struct {
	mu gosync.Mutex
	n  map[string]int
}

func (l *liveFeeds) take(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[string]int{}
	}
	if l.n[user] >= LiveFeedsPerUser {
		return false
	}
	l.n[user]++
	return true
}

func (l *liveFeeds) give(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[user]--; l.n[user] <= 0 {
		delete(l.n, user)
	}
}

// live streams the feed until the client goes, the session ends (logout, disabled, role
// changed, expired: an end event, then the stream closes) or the server shuts down.
func (s *Server) live(c *fiber.Ctx) error {
	sess := session(c)
	user := sess.Actor.UserID
	if !s.feeds.take(user) {
		return schema.Errorf(schema.CodeRateLimited, "最多同时打开 %d 个实时连接，请关闭其他控制台标签页 at most %d live feeds per user: close another console tab", LiveFeedsPerUser, LiveFeedsPerUser)
	}
	eng := s.Engine
	wake, recheckC := make(chan struct{}, 1), make(chan struct{}, 1)
	sub := eng.Hub.Subscribe(user, "", true, syncer.Signal(wake), syncer.Signal(recheckC)) // before reading the sequence, so no commit falls between
	since := eng.Hub.Last()
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.feeds.give(user)
		defer eng.Hub.Unsubscribe(sub)
		ctx := context.Background()
		send := func(event string, v any) bool {
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
			return w.Flush() == nil
		}
		end := func(err error) {
			se, ok := schema.AsError(err)
			if !ok {
				s.log.Error("live feed: session check", "err", err)
				se = schema.Errorf(schema.CodeInternal, "internal error")
			}
			send("end", fiber.Map{"code": se.Code, "message": se.Message})
		}
		if !send("hello", fiber.Map{"server_time": schema.Stamp(eng.Now()), "seq": since, "heartbeat_seconds": liveHeartbeat.Seconds()}) {
			return
		}
		beat := time.NewTicker(liveHeartbeat)
		defer beat.Stop()
		expiry := time.NewTimer(time.Until(sess.ExpiresAt))
		defer expiry.Stop()
		// recheck checks the session again (its account changed, or its token reached its
		// expiry); false means it ended and the feed said so.
		recheck := func() bool {
			ns, err := eng.Revalidate(ctx, sess)
			if err != nil {
				end(err)
				return false
			}
			sess = ns
			expiry.Reset(time.Until(sess.ExpiresAt))
			return true
		}
		for {
			select {
			case <-wake:
				refs, more, err := eng.Changed(ctx, since, liveBatch)
				if err != nil {
					s.log.Error("live feed: changes", "err", err)
					return
				}
				if len(refs) == 0 {
					continue
				}
				since = refs[len(refs)-1].Seq
				if more {
					since = eng.Hub.Last()
				}
				if !send("changes", fiber.Map{"seq": since, "changes": refs, "more": more}) {
					return
				}
			case <-recheckC:
				if !recheck() {
					return
				}
			case <-expiry.C:
				if !recheck() {
					return
				}
			case <-beat.C:
				if !send("ping", fiber.Map{"server_time": schema.Stamp(eng.Now())}) {
					return
				}
			case <-s.stop:
				send("end", fiber.Map{"code": schema.CodeUnavailable, "message": "服务器正在停止 the server is shutting down"})
				return
			}
		}
	})
	return nil
}
