package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"reflect"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"fieldsync/internal/testpg"
	"fieldsync/notify"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// world is a store with a coordinator and a technician, a customer, and a sender whose clock
// the test moves.
type world struct {
	t      *testing.T
	e      *syncer.Engine
	db     *schema.DB
	s      *notify.Sender
	now    time.Time
	coord  schema.Actor
	techID string
	n      int
}

func newWorld(t *testing.T, settings map[string]any) *world {
	t.Helper()
	dir := t.TempDir()
	db, err := schema.OpenStore(context.Background(), dir, testpg.For(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	e, err := syncer.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); db.Close() })
	w := &world{t: t, e: e, db: db, now: time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)}
	e.Now = func() time.Time { return w.now }
	ctx := context.Background()
	vals := map[string]json.RawMessage{}
	for k, v := range settings {
		vals[k] = schema.MustJSON(v)
	}
	if err := e.PutSettings(ctx, schema.System, vals); err != nil {
		t.Fatal(err)
	}
	c, err := e.CreateUser(ctx, schema.System, syncer.NewUser{Username: "wangfang", Name: "王芳", Role: schema.RoleCoordinator, Phone: "13800000001", Password: "coordinator-pw-1"})
	if err != nil {
		t.Fatal(err)
	}
	w.coord = schema.Actor{UserID: c.Str("id"), Role: schema.RoleCoordinator, Name: "王芳"}
	tech, err := e.CreateUser(ctx, schema.System, syncer.NewUser{Username: "zhangwei", Name: "张伟", Role: schema.RoleTechnician,
		Phone: "13900000003", Email: "zhangwei@example.com", Password: "technician-pw-1"})
	if err != nil {
		t.Fatal(err)
	}
	w.techID = tech.Str("id")
	// The technician hears of a dispatch on every channel, in Chinese.
	if err := e.SetAlertPrefs(ctx, w.techID, schema.AlertPrefs{Lang: "zh", Events: map[string][]string{schema.AlertDispatched: schema.AlertChannels}}); err != nil {
		t.Fatal(err)
	}
	w.apply(schema.System, syncer.Mutation{Entity: schema.EntCustomer, ID: "cu", Op: "create", Fields: map[string]json.RawMessage{"name": schema.MustJSON("华东精密")}})
	w.s = &notify.Sender{DB: db, Settings: e.Settings, Now: func() time.Time { return w.now }, Log: slog.New(slog.DiscardHandler)}
	return w
}

func (w *world) apply(actor schema.Actor, m syncer.Mutation) {
	w.t.Helper()
	res, err := w.e.Apply(context.Background(), actor, []syncer.Mutation{m}, syncer.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	if res[0].Status != syncer.StatusApplied {
		w.t.Fatalf("%s %s: %s", m.Entity, m.Action, res[0].Message)
	}
}

// dispatch registers a critical ticket and dispatches it to the technician; it returns the
// ticket number.
func (w *world) dispatch() string {
	w.n++
	id := "tk" + strconv.Itoa(w.n)
	w.apply(w.coord, syncer.Mutation{Entity: schema.EntTicket, ID: id, Op: "create", Fields: map[string]json.RawMessage{
		"customer_id": schema.MustJSON("cu"), "urgency": schema.MustJSON("critical"), "fault_symptoms": schema.MustJSON("停机")}})
	w.apply(w.coord, syncer.Mutation{Entity: schema.EntTicket, ID: id, Op: "action", Action: "dispatch", Fields: map[string]json.RawMessage{
		"technician_id": schema.MustJSON(w.techID)}})
	t, err := w.e.Get(context.Background(), schema.EntTicket, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return t.Str("number")
}

func (w *world) tick() (int, int) {
	w.t.Helper()
	sent, failed, err := w.s.Tick(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return sent, failed
}

// robot is an HTTP server standing in for a WeCom or DingTalk robot (or a gateway): it
// hands each request to check and answers what check returns.
func robot(t *testing.T, check func(r *http.Request, body []byte) (int, string)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		code, answer := check(r, b)
		rw.WriteHeader(code)
		io.WriteString(rw, answer)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func jsonEqual(t *testing.T, what string, got []byte, want any) {
	t.Helper()
	var g, w2 any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: body is not JSON: %s", what, got)
		return
	}
	json.Unmarshal(schema.MustJSON(want), &w2)
	if !reflect.DeepEqual(g, w2) {
		t.Errorf("%s: body %s, want %s", what, got, schema.MustJSON(want))
	}
}

// selfSigned returns a TLS certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

type mailBox struct {
	mu   gosync.Mutex
	msgs []string // "from -> to: data"
	tls  []bool
}

type smtpSession struct {
	box      *mailBox
	conn     *smtp.Conn
	from, to string
	authed   bool
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "alerts" || pass != "smtp-secret" {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = to; return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.from+" -> "+s.to+": "+string(b))
	s.box.tls = append(s.box.tls, isTLS)
	s.box.mu.Unlock()
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// smtpServer is an SMTP server on loopback that offers STARTTLS and PLAIN authentication
// (only after STARTTLS).
func smtpServer(t *testing.T) (*mailBox, int, *x509.CertPool) {
	cert, pool := selfSigned(t)
	box := &mailBox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &smtpSession{box: box, conn: c}, nil }))
	srv.Domain = "127.0.0.1"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return box, l.Addr().(*net.TCPAddr).Port, pool
}

func TestEveryChannelDeliversTheExactMessage(t *testing.T) {
	const dingSecret = "SEC0123456789abcdef"
	const hookSecret = "webhook-secret"
	var wecomBody, dingBody, smsBody, hookBody []byte
	var dingQuery, smsAuth string
	var hookHeaders http.Header
	wecom := robot(t, func(r *http.Request, b []byte) (int, string) {
		wecomBody = b
		return 200, `{"errcode":0,"errmsg":"ok"}`
	})
	ding := robot(t, func(r *http.Request, b []byte) (int, string) {
		dingBody, dingQuery = b, r.URL.RawQuery
		// DingTalk's check: sign = base64(HMAC-SHA256(secret, timestamp "\n" secret)), and
		// the timestamp within an hour of now.
		ts := r.URL.Query().Get("timestamp")
		mac := hmac.New(sha256.New, []byte(dingSecret))
		mac.Write([]byte(ts + "\n" + dingSecret))
		if r.URL.Query().Get("access_token") != "tok123" || r.URL.Query().Get("sign") != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			return 200, `{"errcode":310000,"errmsg":"sign not match"}`
		}
		return 200, `{"errcode":0,"errmsg":"ok"}`
	})
	sms := robot(t, func(r *http.Request, b []byte) (int, string) {
		smsBody, smsAuth = b, r.Header.Get("Authorization")
		return 200, `{"ok":true}`
	})
	hook := robot(t, func(r *http.Request, b []byte) (int, string) {
		hookBody, hookHeaders = b, r.Header.Clone()
		// The receiver's check, as docs/alerts.md tells it.
		ts := r.Header.Get("X-Fieldsync-Timestamp")
		mac := hmac.New(sha256.New, []byte(hookSecret))
		mac.Write([]byte(ts + "."))
		mac.Write(b)
		if !hmac.Equal([]byte(r.Header.Get("X-Fieldsync-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
			return 401, "bad signature"
		}
		return 204, ""
	})
	box, port, pool := smtpServer(t)
	w := newWorld(t, map[string]any{
		"alert_wecom_url": wecom.URL + "/cgi-bin/webhook/send?key=k1", "alert_dingtalk_url": ding.URL + "/robot/send?access_token=tok123",
		"alert_dingtalk_secret": dingSecret, "alert_sms_url": sms.URL + "/send", "alert_sms_token": "gw-token",
		"alert_webhook_url": hook.URL + "/in", "alert_webhook_secret": hookSecret, "alert_lang": "zh",
		"alert_smtp_host": "127.0.0.1", "alert_smtp_port": port, "alert_smtp_username": "alerts", "alert_smtp_password": "smtp-secret",
		"alert_smtp_from": "fieldsync@example.com",
	})
	w.s.TLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	num := w.dispatch()
	text := "【派单】工单" + num + "（特急）已派给您，客户：华东精密" // critical: schema.UrgencyLabels, as on screen and paper
	if sent, failed := w.tick(); sent != 5 || failed != 0 {
		fails, _ := notify.Failed(context.Background(), w.db, 10)
		t.Fatalf("sent %d, failed %d, want 5 and 0: %+v", sent, failed, fails)
	}
	jsonEqual(t, "WeCom", wecomBody, map[string]any{"msgtype": "text", "text": map[string]any{"content": text, "mentioned_mobile_list": []string{"13900000003"}}})
	jsonEqual(t, "DingTalk", dingBody, map[string]any{"msgtype": "text", "text": map[string]any{"content": text + " @13900000003"},
		"at": map[string]any{"atMobiles": []string{"13900000003"}, "isAtAll": false}})
	if want := strconv.FormatInt(w.now.UnixMilli(), 10); !strings.Contains(dingQuery, "timestamp="+want) {
		t.Errorf("DingTalk query %q lacks timestamp=%s", dingQuery, want)
	}
	jsonEqual(t, "SMS", smsBody, map[string]any{"phone": "13900000003", "text": text})
	if smsAuth != "Bearer gw-token" {
		t.Errorf("SMS gateway Authorization %q", smsAuth)
	}
	if hookHeaders.Get("X-Fieldsync-Timestamp") != strconv.FormatInt(w.now.Unix(), 10) {
		t.Errorf("webhook timestamp %q", hookHeaders.Get("X-Fieldsync-Timestamp"))
	}
	var hb map[string]any
	json.Unmarshal(hookBody, &hb)
	if hb["kind"] != "dispatched" || hb["text"] != text || hb["facts"].(map[string]any)["ticket_number"] != num {
		t.Errorf("webhook body %s", hookBody)
	}
	if len(box.msgs) != 1 || !box.tls[0] {
		t.Fatalf("mail box %q (over TLS: %v), want one message over STARTTLS", box.msgs, box.tls)
	}
	envelope, raw, _ := strings.Cut(box.msgs[0], ": ")
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if envelope != "fieldsync@example.com -> zhangwei@example.com" || subject != text || strings.TrimSpace(string(body)) != text {
		t.Errorf("mail %s: subject %q, body %q; want %q", envelope, subject, body, text)
	}
	// Nothing is sent twice.
	w.now = w.now.Add(time.Hour)
	if sent, _ := w.tick(); sent != 0 {
		t.Errorf("a second tick sent %d more", sent)
	}
}

func TestChannelFailingFiveTimesThenRecoveringDeliversOnce(t *testing.T) {
	var mu gosync.Mutex
	calls, delivered := 0, 0
	sms := robot(t, func(r *http.Request, b []byte) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 5 {
			return 503, "gateway busy"
		}
		delivered++
		return 200, "queued"
	})
	w := newWorld(t, map[string]any{"alert_sms_url": sms.URL})
	w.dispatch()
	for i := 0; i < 12; i++ {
		w.tick()
		w.now = w.now.Add(time.Hour) // past any backoff (at most an hour)
	}
	if calls != 6 || delivered != 1 {
		t.Fatalf("gateway called %d times, delivered %d; want 6 and 1", calls, delivered)
	}
	var status, answer string
	var attempts, logged int
	w.db.R.QueryRow(`SELECT status, attempts, last_answer FROM outbox`).Scan(&status, &attempts, &answer)
	w.db.R.QueryRow(`SELECT COUNT(*) FROM outbox_attempts WHERE ok = 0 AND answer LIKE 'HTTP 503: gateway busy%'`).Scan(&logged)
	if status != "sent" || attempts != 6 || answer != "HTTP 200: queued" || logged != 5 {
		t.Errorf("row %s after %d attempts (%q), %d failures logged with the answer", status, attempts, answer, logged)
	}
	// Delivered rows are kept for a while, then pruned with their attempts.
	if n, err := notify.Prune(context.Background(), w.db, w.now.Add(-24*time.Hour)); err != nil || n != 0 {
		t.Errorf("pruned %d recent rows (%v)", n, err)
	}
	if n, err := notify.Prune(context.Background(), w.db, w.now); err != nil || n != 1 {
		t.Errorf("pruned %d old rows (%v), want 1", n, err)
	}
	w.db.R.QueryRow(`SELECT COUNT(*) FROM outbox_attempts`).Scan(&logged)
	if logged != 0 {
		t.Errorf("%d attempts left after pruning", logged)
	}
}

func TestMisconfiguredChannelIsGivenUpAndListedForAdmins(t *testing.T) {
	wecom := robot(t, func(r *http.Request, b []byte) (int, string) {
		return 200, `{"errcode":93000,"errmsg":"invalid webhook url"}`
	})
	w := newWorld(t, map[string]any{"alert_wecom_url": wecom.URL, "alert_give_up_minutes": 120})
	w.dispatch()
	if sent, failed := w.tick(); sent != 0 || failed != 0 {
		t.Fatalf("first tick: sent %d failed %d", sent, failed)
	}
	fails, err := notify.Failed(context.Background(), w.db, 10)
	if err != nil || len(fails) != 1 || fails[0].Status != "pending" || !strings.Contains(fails[0].LastAnswer, "errcode 93000 invalid webhook url") {
		t.Fatalf("after one failure admins see %+v (%v)", fails, err)
	}
	gaveUp := 0
	for i := 0; i < 10; i++ {
		w.now = w.now.Add(30 * time.Minute)
		_, f := w.tick()
		gaveUp += f
	}
	fails, _ = notify.Failed(context.Background(), w.db, 10)
	if gaveUp != 1 || len(fails) != 1 || fails[0].Status != "failed" || fails[0].Channel != "wecom" || len(fails[0].Tries) != fails[0].Attempts {
		t.Fatalf("given up %d; admins see %+v", gaveUp, fails)
	}
}

// A target that does not answer holds at most alert_workers deliveries, each for at most
// alert_timeout_seconds, and never a write.
func TestSlowTargetIsBoundedAndBlocksNoWrite(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hook.Close()
	defer close(release)
	w := newWorld(t, map[string]any{"alert_webhook_url": hook.URL, "alert_webhook_secret": "s", "alert_workers": 2, "alert_timeout_seconds": 1})
	counter := &countingTransport{next: http.DefaultTransport}
	w.s.HTTP = &http.Client{Transport: counter}
	for i := 0; i < 5; i++ {
		w.dispatch()
	}
	done := make(chan struct{})
	go func() { defer close(done); w.s.Tick(context.Background()) }()
	// While deliveries hang, writes go on.
	w.dispatch()
	<-done
	var failedAttempts int
	w.db.R.QueryRow(`SELECT COUNT(*) FROM outbox_attempts WHERE ok = 0 AND answer LIKE '%deadline exceeded%'`).Scan(&failedAttempts)
	counter.mu.Lock()
	defer counter.mu.Unlock()
	if counter.most > 2 || failedAttempts < 5 {
		t.Errorf("at most %d deliveries in flight (want <= 2); %d timed out (want >= 5)", counter.most, failedAttempts)
	}
}

// countingTransport counts the requests in flight.
type countingTransport struct {
	next           http.RoundTripper
	mu             gosync.Mutex
	inFlight, most int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.inFlight++
	c.most = max(c.most, c.inFlight)
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.inFlight--; c.mu.Unlock() }()
	return c.next.RoundTrip(r)
}
