package notify_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	gosync "sync"
	"testing"
	"time"

	"fieldsync/notify"
)

// Two senders on one database (two instances of the server) deliver each message once:
// each row is claimed by one of them before it is sent.
func TestTwoSendersDeliverEachMessageOnce(t *testing.T) {
	var mu gosync.Mutex
	got := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[string(b)]++
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // both senders are at work at once
	}))
	defer hook.Close()
	w := newWorld(t, map[string]any{"alert_webhook_url": hook.URL, "alert_webhook_secret": "s", "alert_workers": 4})
	const tickets = 12
	for range tickets {
		w.dispatch()
	}
	var due int
	if err := w.db.R.QueryRow(`SELECT COUNT(*) FROM outbox WHERE status = 'pending'`).Scan(&due); err != nil || due < tickets {
		t.Fatalf("%d messages due (%v), want at least %d", due, err, tickets)
	}
	other := &notify.Sender{DB: w.db, Settings: w.e.Settings, Now: func() time.Time { return w.now }, Log: slog.New(slog.DiscardHandler)}
	var wg gosync.WaitGroup
	for _, s := range []*notify.Sender{w.s, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Tick(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != due {
		t.Errorf("%d different messages reached the webhook, want %d", len(got), due)
	}
	for body, n := range got {
		if n != 1 {
			t.Errorf("delivered %d times, want once: %.80s", n, body)
		}
	}
	var sent int
	w.db.R.QueryRow(`SELECT COUNT(*) FROM outbox WHERE status = 'sent'`).Scan(&sent)
	if sent != due {
		t.Errorf("%d rows marked sent, want %d", sent, due)
	}
}
