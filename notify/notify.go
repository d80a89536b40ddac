// Package notify delivers the alerts the write path put into the outbox (docs/alerts.md):
// WeCom and DingTalk group robots, email by SMTP with STARTTLS, SMS through an HTTP gateway,
// and a generic webhook signed with HMAC-SHA256. A bounded number of deliveries run at once,
// each with a timeout; a failed one is retried with a doubling delay, every attempt is
// recorded with the remote's answer, and a delivery still failing after the give-up time is
// marked failed for the admins (Failed). The sender never takes part in a write or a sync:
// a channel that is down only leaves rows pending.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	mail "github.com/wneessen/go-mail"

	"fieldsync/schema"
)

// Sender delivers the outbox.
type Sender struct {
	DB       *schema.DB
	Settings func() *schema.Settings
	Now      func() time.Time
	Log      *slog.Logger
	// TLS, when set, is the TLS configuration for SMTP (tests trust their own certificate);
	// nil uses the system's roots.
	TLS  *tls.Config
	HTTP *http.Client // nil: a client without redirects; the timeout comes from the settings

	mu gosync.Mutex // one tick at a time: a row is never delivered twice at once
}

// Batch bounds how many due rows one tick takes.
const Batch = 100

// MaxBackoff caps the retry delay.
const MaxBackoff = time.Hour

type message struct {
	ID         int64
	Kind       string
	Channel    string
	Target     string
	Mentions   []string
	Recipients []string
	Text       string
	Facts      json.RawMessage
	CreatedAt  time.Time
	Attempts   int
	nextAt     string // as read: the claim moves it only if no one else did
}

// claimMargin is how long past a delivery's timeout a claimed row waits before another
// sender may take it (the claimer stopped without recording an outcome).
const claimMargin = 30 * time.Second

// claim takes the row for this sender: it moves next_at beyond the delivery's timeout, if
// the row is still as read.
func (s *Sender) claim(ctx context.Context, m message, now time.Time, timeout time.Duration) (bool, error) {
	res, err := s.DB.W.ExecContext(ctx, `UPDATE outbox SET next_at = ? WHERE id = ? AND status = 'pending' AND attempts = ? AND next_at = ?`,
		schema.Stamp(now.Add(timeout+claimMargin)), m.ID, m.Attempts, m.nextAt)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Tick delivers the rows that are due at the sender's clock, at most alert_workers at once,
// and records each outcome. It returns how many were delivered and how many were given up.
func (s *Sender) Tick(ctx context.Context) (sent, failed int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now().UTC()
	rows, err := s.DB.R.QueryContext(ctx, `SELECT id, kind, channel, target, mentions, recipients, text, facts, created_at, attempts, next_at
		FROM outbox WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, schema.Stamp(now), Batch)
	if err != nil {
		return 0, 0, err
	}
	var due []message
	for rows.Next() {
		var m message
		var mentions, recipients, created string
		if err := rows.Scan(&m.ID, &m.Kind, &m.Channel, &m.Target, &mentions, &recipients, &m.Text, &m.Facts, &created, &m.Attempts, &m.nextAt); err != nil {
			rows.Close()
			return 0, 0, err
		}
		json.Unmarshal([]byte(mentions), &m.Mentions)
		json.Unmarshal([]byte(recipients), &m.Recipients)
		m.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
		due = append(due, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	set := s.Settings()
	workers := max(1, int(set.Int("alert_workers")))
	timeout := time.Duration(max(1, set.Int("alert_timeout_seconds"))) * time.Second
	sem := make(chan struct{}, workers)
	var wg gosync.WaitGroup
	var mu gosync.Mutex
	// A delivery under way finishes (within its timeout) and is recorded even when the
	// server is stopping: a message delivered but not recorded would be sent again. Once ctx
	// ends no new one starts.
	keep := context.WithoutCancel(ctx)
	for _, m := range due {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		// Another sender (another instance on the same database) may have read the same
		// row: only the one whose claim moves the row's next_at past the delivery's
		// timeout delivers it. A sender that stops after claiming leaves the row to be
		// delivered when the claim runs out, as a retry.
		if ok, cerr := s.claim(ctx, m, now, timeout); !ok || cerr != nil {
			<-sem
			if cerr != nil && err == nil {
				err = cerr
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			dctx, cancel := context.WithTimeout(keep, timeout)
			answer, derr := s.deliver(dctx, set, m)
			cancel()
			gaveUp, rerr := s.record(keep, set, m, answer, derr)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case rerr != nil:
				s.Log.Error("record an alert delivery", "id", m.ID, "err", rerr)
				if err == nil {
					err = rerr
				}
			case derr == nil:
				sent++
			case gaveUp:
				failed++
				s.Log.Warn("alert given up", "id", m.ID, "channel", m.Channel, "answer", answer)
			}
		}()
	}
	wg.Wait()
	return sent, failed, err
}

// Run ticks at start, whenever wake fires (the engine wrote outbox rows) and every interval,
// until ctx ends. Once an hour it prunes what was delivered or given up more than
// offline_days ago.
func (s *Sender) Run(ctx context.Context, wake <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var pruned time.Time
	for {
		if _, _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("alert delivery", "err", err)
		}
		if now := s.Now(); now.Sub(pruned) >= time.Hour {
			pruned = now
			keep := time.Duration(s.Settings().Int("offline_days")) * 24 * time.Hour
			if _, err := Prune(ctx, s.DB, now.Add(-keep)); err != nil && ctx.Err() == nil {
				s.Log.Warn("prune the alert outbox", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
	}
}

// record writes the attempt and the row's new state: sent, retried later, or failed once
// the give-up time has passed since the event.
func (s *Sender) record(ctx context.Context, set *schema.Settings, m message, answer string, derr error) (gaveUp bool, err error) {
	now := s.Now().UTC()
	n := m.Attempts + 1
	if derr != nil {
		answer = strings.TrimSpace(answer + " " + derr.Error())
	}
	if len(answer) > 1000 {
		answer = answer[:1000]
	}
	status, next, done := "pending", now, sql.NullString{}
	switch {
	case derr == nil:
		status, done = "sent", sql.NullString{String: schema.Stamp(now), Valid: true}
	case !now.Before(m.CreatedAt.Add(time.Duration(set.Int("alert_give_up_minutes")) * time.Minute)):
		status, done, gaveUp = "failed", sql.NullString{String: schema.Stamp(now), Valid: true}, true
	default:
		next = now.Add(Backoff(time.Duration(set.Int("alert_retry_seconds"))*time.Second, n))
	}
	tx, err := s.DB.W.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO outbox_attempts (outbox_id, n, at, ok, answer) VALUES (?, ?, ?, ?, ?)`,
		m.ID, n, schema.Stamp(now), derr == nil, answer); err != nil {
		return false, err
	}
	if _, err := tx.Exec(`UPDATE outbox SET attempts = ?, status = ?, next_at = ?, last_answer = ?, done_at = ? WHERE id = ?`,
		n, status, schema.Stamp(next), answer, done, m.ID); err != nil {
		return false, err
	}
	return gaveUp, tx.Commit()
}

// Backoff is the delay before retry n+1 after n failed attempts: base, doubling, at most
// MaxBackoff.
func Backoff(base time.Duration, n int) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	d := base
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// deliver sends one message on its channel and returns the remote's answer.
func (s *Sender) deliver(ctx context.Context, set *schema.Settings, m message) (string, error) {
	if !schema.ChannelConfigured(set, m.Channel) {
		return "", fmt.Errorf("channel %s is not configured", m.Channel)
	}
	switch m.Channel {
	case schema.ChanWeCom:
		body := map[string]any{"msgtype": "text", "text": map[string]any{"content": m.Text, "mentioned_mobile_list": m.Mentions}}
		return s.postRobot(ctx, set.String("alert_wecom_url"), body)
	case schema.ChanDingTalk:
		u, err := DingTalkURL(set.String("alert_dingtalk_url"), set.String("alert_dingtalk_secret"), s.Now())
		if err != nil {
			return "", err
		}
		// DingTalk shows an @ only when the content names the phone too.
		content := m.Text
		for _, p := range m.Mentions {
			content += " @" + p
		}
		body := map[string]any{"msgtype": "text", "text": map[string]any{"content": content},
			"at": map[string]any{"atMobiles": m.Mentions, "isAtAll": false}}
		return s.postRobot(ctx, u, body)
	case schema.ChanSMS:
		b := schema.MustJSON(map[string]string{"phone": m.Target, "text": m.Text})
		h := http.Header{"Content-Type": {"application/json"}}
		if tok := set.String("alert_sms_token"); tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
		return s.post(ctx, set.String("alert_sms_url"), b, h)
	case schema.ChanWebhook:
		b := schema.MustJSON(map[string]any{"id": m.ID, "kind": m.Kind, "text": m.Text, "facts": m.Facts,
			"recipients": m.Recipients, "created_at": schema.Stamp(m.CreatedAt)})
		ts := strconv.FormatInt(s.Now().Unix(), 10)
		h := http.Header{"Content-Type": {"application/json"}, "X-Fieldsync-Timestamp": {ts},
			"X-Fieldsync-Signature": {"sha256=" + WebhookSignature(set.String("alert_webhook_secret"), ts, b)}}
		return s.post(ctx, set.String("alert_webhook_url"), b, h)
	case schema.ChanEmail:
		return s.mail(ctx, set, m)
	}
	return "", fmt.Errorf("unknown channel %q", m.Channel)
}

// DingTalkURL adds DingTalk's signature to a robot's webhook address: timestamp in
// milliseconds, and sign = base64(HMAC-SHA256(secret, timestamp + "\n" + secret)). Without a
// secret the address is used as it is.
func DingTalkURL(raw, secret string, now time.Time) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("alert_dingtalk_url: %w", err)
	}
	if secret == "" {
		return raw, nil
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "\n" + secret))
	q := u.Query()
	q.Set("timestamp", ts)
	q.Set("sign", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// WebhookSignature is the hex HMAC-SHA256, keyed with the secret, of timestamp + "." + body:
// what X-Fieldsync-Signature carries after "sha256=".
func WebhookSignature(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// postRobot posts to a WeCom or DingTalk robot, which answers 200 with {"errcode": 0} on
// success and another errcode (a wrong key or signature, a keyword missing) otherwise.
func (s *Sender) postRobot(ctx context.Context, u string, body any) (string, error) {
	answer, err := s.post(ctx, u, schema.MustJSON(body), http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return answer, err
	}
	var r struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	_, raw, _ := strings.Cut(answer, ": ")
	if json.Unmarshal([]byte(raw), &r) != nil || r.ErrCode == nil {
		return answer, errors.New("the robot's answer is not {errcode, errmsg}")
	}
	if *r.ErrCode != 0 {
		return answer, fmt.Errorf("the robot refused: errcode %d %s", *r.ErrCode, r.ErrMsg)
	}
	return answer, nil
}

// post sends body and returns "HTTP <status>: <start of the answer>"; a status other than
// 2xx is an error.
func (s *Sender) post(ctx context.Context, u string, body []byte, h http.Header) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header = h
	c := s.HTTP
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	answer := fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	if resp.StatusCode/100 != 2 {
		return answer, errors.New("not delivered")
	}
	return answer, nil
}

var defaultClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// mail sends the message by SMTP; STARTTLS is required.
func (s *Sender) mail(ctx context.Context, set *schema.Settings, m message) (string, error) {
	msg := mail.NewMsg()
	if err := msg.From(set.String("alert_smtp_from")); err != nil {
		return "", fmt.Errorf("alert_smtp_from: %w", err)
	}
	if err := msg.To(m.Target); err != nil {
		return "", fmt.Errorf("recipient: %w", err)
	}
	subject, _, _ := strings.Cut(m.Text, "\n")
	msg.Subject(subject)
	msg.SetDateWithValue(s.Now())
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	host := set.String("alert_smtp_host")
	tlsConf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.TLS != nil {
		tlsConf = s.TLS.Clone()
	}
	opts := []mail.Option{mail.WithPort(int(set.Int("alert_smtp_port"))), mail.WithTLSPolicy(mail.TLSMandatory),
		mail.WithTLSConfig(tlsConf)}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, mail.WithTimeout(time.Until(dl)))
	}
	if user := set.String("alert_smtp_username"); user != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(user), mail.WithPassword(set.String("alert_smtp_password")))
	}
	c, err := mail.NewClient(host, opts...)
	if err != nil {
		return "", err
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return "", err
	}
	return "SMTP 250: accepted for " + m.Target, nil
}

// Prune deletes the messages delivered or given up before before, with their attempts.
func Prune(ctx context.Context, db *schema.DB, before time.Time) (int64, error) {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	cut := schema.Stamp(before)
	if _, err := tx.Exec(`DELETE FROM outbox_attempts WHERE outbox_id IN (SELECT id FROM outbox WHERE status <> 'pending' AND done_at < ?)`, cut); err != nil {
		return 0, err
	}
	res, err := tx.Exec(`DELETE FROM outbox WHERE status <> 'pending' AND done_at < ?`, cut)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}

// Failure is a delivery given up, as admins see it.
type Failure struct {
	ID         int64     `json:"id"`
	Kind       string    `json:"kind"`
	Channel    string    `json:"channel"`
	Target     string    `json:"target"`
	Text       string    `json:"text"`
	Source     string    `json:"source"`
	Status     string    `json:"status"` // failed (given up) or pending (failing, retried)
	CreatedAt  string    `json:"created_at"`
	GaveUpAt   string    `json:"gave_up_at"`
	Attempts   int       `json:"attempts"`
	LastAnswer string    `json:"last_answer"`
	Tries      []Attempt `json:"tries"`
}

// Attempt is one delivery attempt.
type Attempt struct {
	N      int    `json:"n"`
	At     string `json:"at"`
	OK     bool   `json:"ok"`
	Answer string `json:"answer"`
}

// Failed lists deliveries given up, newest first, with their attempts, and also those still
// pending whose last attempt failed (a misconfigured channel shows at once).
func Failed(ctx context.Context, db *schema.DB, limit int) ([]Failure, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT id, kind, channel, target, text, source, status, created_at, COALESCE(done_at, ''), attempts, last_answer
		FROM outbox WHERE status = 'failed' OR (status = 'pending' AND attempts > 0) ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	out := []Failure{}
	for rows.Next() {
		var f Failure
		if err := rows.Scan(&f.ID, &f.Kind, &f.Channel, &f.Target, &f.Text, &f.Source, &f.Status, &f.CreatedAt, &f.GaveUpAt, &f.Attempts, &f.LastAnswer); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		ar, err := db.R.QueryContext(ctx, `SELECT n, at, ok, answer FROM outbox_attempts WHERE outbox_id = ? ORDER BY n`, out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].Tries = []Attempt{}
		for ar.Next() {
			var a Attempt
			if err := ar.Scan(&a.N, &a.At, &a.OK, &a.Answer); err != nil {
				ar.Close()
				return nil, err
			}
			out[i].Tries = append(out[i].Tries, a)
		}
		ar.Close()
	}
	return out, nil
}
