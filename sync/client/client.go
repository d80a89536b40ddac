// Package client is the Go SDK a fieldsync field app embeds: a local SQLite mirror of the
// device's scope, a durable outbox of the technician's mutations, and the sync loop that
// speaks protocol v1 (docs/sync-protocol.md) over a WebSocket, or over HTTP where WebSockets
// are blocked, reconnecting with backoff, uploading blobs before the mutations that need them.
// It is also what the tests and `fieldsync bench` drive.
//
// The app reads Records (its own pending edits applied on top of the server state), writes
// through Mutate (durable before it returns), and either runs Start for a connected,
// live-updating device or calls SyncNow for one round. The exported API sticks to strings,
// integers and JSON bytes where it can, so that gomobile bind could expose it.
package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	stdsync "sync"
	"time"

	"github.com/google/uuid"

	syncer "fieldsync/sync"
)

// Config configures a Client. BaseURL, DBPath, Token and DeviceID are required.
type Config struct {
	BaseURL       string // the server, e.g. http://127.0.0.1:8080
	DBPath        string // the local SQLite file; created if missing
	Token         string // the device token (Bearer)
	DeviceID      string
	AppVersion    string
	SchemaVersion int // sent in hello; default 1

	Now    func() time.Time // clock for mutation times and retry schedules; default time.Now
	Logger *slog.Logger     // default: discard

	// ForceHTTP uses the HTTP fallback only; otherwise the client falls back on its own after
	// FallbackAfter WebSocket failures in a row (default 3) while the server answers HTTP,
	// and tries the WebSocket again after FallbackPeriod (default 2 min).
	ForceHTTP      bool
	FallbackAfter  int
	FallbackPeriod time.Duration
	PollInterval   time.Duration // HTTP fallback poll interval; default 5 s

	PullLimit      int           // changes per pull; default syncer.DefaultPullLimit
	MaxBatch       int           // mutations per push, also capped by welcome; default syncer.DefaultMaxBatch
	MinBackoff     time.Duration // first reconnect delay; default 200 ms
	MaxBackoff     time.Duration // reconnect delay cap; default 30 s
	RequestTimeout time.Duration // one HTTP request, handshake, or wait for an answer; default 30 s
	BlobChunkSize  int           // bytes per PATCH; default 256 KiB
	HTTPClient     *http.Client  // default: a client with RequestTimeout
}

// Record is one record as the app sees it. Data is the record's JSON object. Pending is true
// when the device has mutations on it not yet settled by the server (Data shows them applied).
type Record struct {
	Entity  string
	ID      string
	Version int64
	Data    json.RawMessage
	Pending bool
}

// Rejection is a mutation the server refused for good, kept for the app to show the
// technician (Message is written for them) until DismissRejection.
type Rejection struct {
	MID     string
	Entity  string
	ID      string
	Op      string
	Action  string
	Fields  json.RawMessage // the fields that were sent, nil if none
	Code    string          // e.g. invalid_transition, out_of_scope, sealed, validation
	Message string
	Field   string          // the offending field, if any
	Record  json.RawMessage // the server's current record, when it sent one
	At      string          // when the rejection arrived, RFC 3339
}

// State is a snapshot of the sync state, for the app's status line.
type State struct {
	Connected  bool
	Pending    int // mutations in the outbox
	LastSync   time.Time
	LastError  string
	Checkpoint string
	Stopped    string // why syncing stopped for good: "", unauthorized, revoked, replaced, update_required
}

// Change ops passed to OnChange listeners besides syncer.OpUpsert, OpDelete and OpEvict.
const (
	ChangeRejected = "rejected" // a mutation on (entity, id) was rejected for good
	ChangeWiped    = "wiped"    // the local mirror was wiped (entity and id are "")
)

// Errors that stop syncing for good; State.Stopped names them.
var (
	ErrUnauthorized   = errors.New("client: the server refused the device token (4401): log in again")
	ErrRevoked        = errors.New("client: this device was revoked (4403); local data wiped")
	ErrReplaced       = errors.New("client: replaced by a newer connection of this device (4409)")
	ErrUpdateRequired = errors.New("client: the server does not speak this protocol version (4426): update the app")
	ErrClosed         = errors.New("client: closed")
)

// stopNames names the stop errors for State.Stopped.
var stopNames = map[error]string{
	ErrUnauthorized:   "unauthorized",
	ErrRevoked:        "revoked",
	ErrReplaced:       "replaced",
	ErrUpdateRequired: "update_required",
}

// Client is one device's SDK instance. Its methods are safe for concurrent use.
type Client struct {
	cfg   Config
	log   *slog.Logger
	st    *store
	http  *http.Client
	wsURL string

	kick    chan struct{} // capacity 1: the outbox changed
	reqs    chan *request // requests to the running loop
	closing chan struct{}
	wg      stdsync.WaitGroup
	session stdsync.Mutex // one session at a time; guards the two fields below

	wsFailures    int       // WebSocket sessions that failed in a row
	fallbackSince time.Time // when the HTTP fallback began

	mu        stdsync.Mutex // guards the fields below
	closed    bool
	running   bool
	loopDone  chan struct{} // closed when the Start loop has ended
	stopErr   error
	connected bool
	lastSync  time.Time
	lastError string
	batch     int // current push batch cap; halved on 1009
	listeners []func(entity, id, op string)
}

// Open opens the local store at cfg.DBPath (creating it) and returns a client that is not
// syncing yet: call Start or SyncNow.
func Open(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" || cfg.Token == "" || cfg.DeviceID == "" {
		return nil, errors.New("client: Config needs BaseURL, Token and DeviceID")
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("client: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	cfg.BaseURL = base.String()
	applyDefaults(&cfg)
	st, err := openStore(cfg.DBPath)
	if err != nil {
		return nil, err
	}
	ws := *base
	ws.Scheme = "ws"
	if base.Scheme == "https" {
		ws.Scheme = "wss"
	}
	ws.Path += "/mobile/v1/sync"
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger,
		st:      st,
		http:    cfg.HTTPClient,
		wsURL:   ws.String(),
		kick:    make(chan struct{}, 1),
		reqs:    make(chan *request),
		closing: make(chan struct{}),
		batch:   cfg.MaxBatch,
	}
	return c, nil
}

func applyDefaults(cfg *Config) {
	if cfg.SchemaVersion == 0 {
		cfg.SchemaVersion = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FallbackAfter <= 0 {
		cfg.FallbackAfter = 3
	}
	if cfg.FallbackPeriod <= 0 {
		cfg.FallbackPeriod = 2 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.PullLimit <= 0 {
		cfg.PullLimit = syncer.DefaultPullLimit
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = syncer.DefaultMaxBatch
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.BlobChunkSize <= 0 {
		cfg.BlobChunkSize = 256 << 10
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.RequestTimeout}
	}
}

// Close stops the background loop, waits for it, and closes the local store. Everything
// Mutate returned for is already on disk.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closing)
	c.mu.Unlock()
	c.wg.Wait()
	c.session.Lock() // wait for a SyncNow session to end
	defer c.session.Unlock()
	return c.st.close()
}

// NewID returns a new UUIDv7, the id of a record created on the device.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Mutate queues a mutation and returns its mid once it is durably in the local outbox. op is
// create, update, delete or action; fields are the record's fields (create, update) or the
// action's parameters (action); action names the workflow step for op action. baseVersion is
// the version of the record the app last saw (0 for create).
func (c *Client) Mutate(entity, id, op string, baseVersion int64, fields map[string]any, action string) (string, error) {
	var raw []byte
	if len(fields) > 0 {
		var err error
		if raw, err = json.Marshal(fields); err != nil {
			return "", fmt.Errorf("client: encoding the fields of %s/%s: %w", entity, id, err)
		}
	}
	return c.MutateJSON(entity, id, op, baseVersion, raw, action)
}

// MutateJSON is Mutate with the fields as a JSON object (nil or empty for none), for callers
// that cannot pass a map.
func (c *Client) MutateJSON(entity, id, op string, baseVersion int64, fieldsJSON []byte, action string) (string, error) {
	m := syncer.Mutation{
		MID:         uuid.NewString(),
		Entity:      entity,
		ID:          id,
		Op:          op,
		BaseVersion: baseVersion,
		Action:      action,
		At:          c.cfg.Now().UTC().Format(time.RFC3339Nano),
	}
	if len(fieldsJSON) > 0 {
		if err := json.Unmarshal(fieldsJSON, &m.Fields); err != nil {
			return "", fmt.Errorf("client: the fields of %s/%s are not a JSON object: %w", entity, id, err)
		}
	}
	if err := checkMutation(m); err != nil {
		return "", err
	}
	if err := c.alive(); err != nil {
		return "", err
	}
	if err := c.st.addMutation(m); err != nil {
		return "", err
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	c.notify([]change{{entity, id, opOf(op)}})
	return m.MID, nil
}

// checkMutation refuses what the server would refuse for its shape alone.
func checkMutation(m syncer.Mutation) error {
	switch {
	case m.Entity == "" || m.ID == "":
		return errors.New("client: a mutation needs an entity and an id")
	case m.Op == "create" || m.Op == "update" || m.Op == "delete":
		if m.Action != "" {
			return fmt.Errorf("client: op %s takes no action (got %q)", m.Op, m.Action)
		}
	case m.Op == "action":
		if m.Action == "" {
			return errors.New("client: op action needs the action's name")
		}
	default:
		return fmt.Errorf("client: unknown op %q: want create, update, delete or action", m.Op)
	}
	return nil
}

// Records returns every record of entity in the app's view (pending edits applied), by id.
func (c *Client) Records(entity string) ([]Record, error) {
	if err := c.alive(); err != nil {
		return nil, err
	}
	return c.st.records(entity, "")
}

// Record returns one record in the app's view, and false if the device does not hold it.
func (c *Client) Record(entity, id string) (Record, bool, error) {
	if err := c.alive(); err != nil {
		return Record{}, false, err
	}
	if id == "" {
		return Record{}, false, nil
	}
	rs, err := c.st.records(entity, id)
	if err != nil || len(rs) == 0 {
		return Record{}, false, err
	}
	return rs[0], true, nil
}

// Rejections lists the mutations the server refused for good, oldest first.
func (c *Client) Rejections() ([]Rejection, error) {
	if err := c.alive(); err != nil {
		return nil, err
	}
	return c.st.rejections()
}

// DismissRejection forgets a rejection the technician has seen.
func (c *Client) DismissRejection(mid string) error {
	if err := c.alive(); err != nil {
		return err
	}
	return c.st.dismissRejection(mid)
}

// OnChange registers fn to be told of every change to the app-visible state, after it is
// committed locally and with no lock held: op is upsert, delete, evict (server changes and
// local mutations alike), rejected or wiped.
func (c *Client) OnChange(fn func(entity, id, op string)) {
	c.mu.Lock()
	c.listeners = append(c.listeners, fn)
	c.mu.Unlock()
}

func (c *Client) notify(changes []change) {
	if len(changes) == 0 {
		return
	}
	c.mu.Lock()
	ls := append([]func(string, string, string){}, c.listeners...)
	c.mu.Unlock()
	for _, ch := range changes {
		for _, fn := range ls {
			fn(ch.entity, ch.id, ch.op)
		}
	}
}

// State returns the current sync state.
func (c *Client) State() State {
	c.mu.Lock()
	s := State{Connected: c.connected, LastSync: c.lastSync, LastError: c.lastError, Stopped: stopNames[c.stopErr]}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		s.LastError = ErrClosed.Error()
		return s
	}
	s.Pending, _ = c.st.pending()
	s.Checkpoint, _ = c.st.checkpoint()
	return s
}

// Digest returns the verify digest of the local mirror: the number of records held and the
// lower-case hex SHA-256 over "entity\nid\nversion\n" for each, sorted by entity then id.
func (c *Client) Digest() (count int64, hash string, err error) {
	if err := c.alive(); err != nil {
		return 0, "", err
	}
	count, hash, _, err = c.st.digest()
	return count, hash, err
}

// PutBlob stores data locally (durably) under its SHA-256 and queues it for upload; a
// mutation then references it by putting the returned hex under a field named *_blob.
func (c *Client) PutBlob(data []byte) (string, error) {
	if len(data) == 0 {
		return "", errors.New("client: an empty blob")
	}
	if err := c.alive(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	if err := c.st.putBlob(sha, data, false); err != nil {
		return "", err
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return sha, nil
}

func (c *Client) alive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

func (c *Client) setConnected(v bool) {
	c.mu.Lock()
	c.connected = v
	c.mu.Unlock()
}

func (c *Client) setError(err error) {
	c.mu.Lock()
	if err == nil {
		c.lastError = ""
	} else {
		c.lastError = err.Error()
	}
	c.mu.Unlock()
}

func (c *Client) synced() {
	now := c.cfg.Now()
	c.mu.Lock()
	c.lastSync = now
	c.mu.Unlock()
}

// stop makes err (one of the stop errors) final.
func (c *Client) stop(err error) {
	c.mu.Lock()
	if c.stopErr == nil {
		c.stopErr = err
	}
	c.lastError = err.Error()
	c.mu.Unlock()
}

// SetToken gives the client a new device token, after the app logged in again: the old
// one expired (a device offline longer than its token lasts) or was ended by a password
// change. Log in with the same device_id: the server keeps the device, so the outbox and
// the local mirror carry on, and mutations already pushed are not applied twice. It lifts
// an ErrUnauthorized stop; call Start or SyncNow again. Other stops stay.
func (c *Client) SetToken(token string) error {
	if token == "" {
		return errors.New("client: SetToken needs a token")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.Token = token
	if c.stopErr == ErrUnauthorized {
		c.stopErr = nil
		c.lastError = ""
	}
	return nil
}

// token is the device token in use.
func (c *Client) token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Token
}

func (c *Client) stopped() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopErr
}

// batchCap returns how many mutations a push may carry, given the server's limit.
func (c *Client) batchCap(serverMax int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.batch
	if serverMax > 0 && serverMax < n {
		n = serverMax
	}
	return max(n, 1)
}

// halveBatch halves the push batch cap, after the server found a frame too big.
func (c *Client) halveBatch(current int) {
	c.mu.Lock()
	c.batch = max(min(c.batch, current)/2, 1)
	c.log.Info("fieldsync client: push batch halved", "batch", c.batch)
	c.mu.Unlock()
}
