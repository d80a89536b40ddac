package sync

import (
	"encoding/json"
	"strconv"
)

// Mutation is one change a client asks for: the push protocol's mutation, also what the
// coordinator API and the CLI build. For op "action", Fields carries the action's
// parameters (e.g. {"service_mode": "phone"} for complete, {"reason": "..."} for cancel).
type Mutation struct {
	MID         string                     `json:"mid"`
	Entity      string                     `json:"entity"`
	ID          string                     `json:"id"`
	Op          string                     `json:"op"`
	BaseVersion int64                      `json:"base_version"`
	Fields      map[string]json.RawMessage `json:"fields,omitempty"`
	Action      string                     `json:"action,omitempty"`
	At          string                     `json:"at,omitempty"`
}

// Result statuses.
const (
	StatusApplied   = "applied"
	StatusDuplicate = "duplicate"
	StatusMerged    = "merged"
	StatusRejected  = "rejected"
)

// Conflict names a field where the other side's value won a concurrent edit; the losing
// value stays in the record's history.
type Conflict struct {
	Field string `json:"field"`
	Lost  any    `json:"lost"`
	Kept  any    `json:"kept"`
	Owner string `json:"owner"`
}

// Result is the outcome of one mutation.
type Result struct {
	MID       string          `json:"mid"`
	Status    string          `json:"status"`
	Version   int64           `json:"version,omitempty"`
	Record    json.RawMessage `json:"record,omitempty"`
	Conflicts []Conflict      `json:"conflicts,omitempty"`
	Code      string          `json:"code,omitempty"`
	Message   string          `json:"message,omitempty"`
	Field     string          `json:"field,omitempty"`
	Retryable bool            `json:"retryable,omitempty"`
	// Extra is the rejection's further detail for the office API's answer (schema.Error's
	// Extra); phones are not sent it.
	Extra map[string]any `json:"-"`
	// Entity and ID echo the target, so a result can be read without its mutation.
	Entity string `json:"entity,omitempty"`
	ID     string `json:"id,omitempty"`
}

// Change is one entry of a pull: the record's full current state (upsert), a tombstone
// (delete), or its departure from the device's scope (evict).
type Change struct {
	Seq     int64           `json:"seq"`
	Entity  string          `json:"entity"`
	ID      string          `json:"id"`
	Op      string          `json:"op"`
	Version int64           `json:"version"`
	Record  json.RawMessage `json:"record,omitempty"`
}

// Change operations.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
	OpEvict  = "evict"
)

// Frame is every message of the sync protocol, client or server, in one struct: the type
// says which fields matter. Unknown fields are refused when a frame is decoded.
type Frame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Re   string `json:"re,omitempty"`

	// hello
	Protocol      int    `json:"protocol,omitempty"`
	DeviceID      string `json:"device_id,omitempty"`
	AppVersion    string `json:"app_version,omitempty"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	Token         string `json:"token,omitempty"`
	// ClientTime is the device's clock (RFC 3339) in hello and in an HTTP push: the
	// server records the device's offset (docs/feedback-sheets.md, "Device time").
	ClientTime string `json:"client_time,omitempty"`
	// Pending is how many mutations wait in the device's outbox as it says hello, and
	// PendingSince when the oldest of them was made (RFC 3339): the office sees a phone
	// whose work is not reaching the server. Both optional.
	Pending      *int   `json:"pending,omitempty"`
	PendingSince string `json:"pending_since,omitempty"`

	// welcome
	ServerTime string  `json:"server_time,omitempty"`
	User       *User   `json:"user,omitempty"`
	Limits     *Limits `json:"limits,omitempty"`

	// pull / changes / verify / digest
	Checkpoint *string  `json:"checkpoint,omitempty"`
	Limit      int      `json:"limit,omitempty"`
	Live       bool     `json:"live,omitempty"`
	Changes    []Change `json:"changes,omitempty"`
	HasMore    *bool    `json:"has_more,omitempty"`
	Count      *int64   `json:"count,omitempty"`
	Hash       string   `json:"hash,omitempty"`

	// push / results
	Mutations []Mutation `json:"mutations,omitempty"`
	Results   []Result   `json:"results,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
}

// User is the account a connection is authenticated as.
type User struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	Name string `json:"name"`
}

// Limits are announced in welcome.
type Limits struct {
	MaxBatch      int `json:"max_batch"`
	MaxFrameBytes int `json:"max_frame_bytes"`
}

// Message types.
const (
	MsgHello   = "hello"
	MsgWelcome = "welcome"
	MsgPull    = "pull"
	MsgChanges = "changes"
	MsgPush    = "push"
	MsgResults = "results"
	MsgVerify  = "verify"
	MsgDigest  = "digest"
	MsgError   = "error"
)

// ProtocolVersion is the only protocol version this server speaks.
const ProtocolVersion = 1

// Subprotocol is the WebSocket subprotocol name.
const Subprotocol = "fieldsync.v1"

// Default limits.
const (
	DefaultMaxBatch      = 500
	DefaultMaxFrameBytes = 4 << 20
	DefaultPullLimit     = 1000
	MaxPullLimit         = 5000
)

// EncodeFrame renders a frame as JSON. A changes frame, the big one, is written by hand:
// each record is already compact JSON made by the server, so it is copied as it is instead
// of being re-validated and re-compacted by encoding/json, once per device that gets it.
func EncodeFrame(f Frame) ([]byte, error) {
	if f.Type == MsgResults && len(f.Results) == 0 && f.Code == "" {
		// An empty push is answered with an empty list, not with no list.
		b, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		return append(b[:len(b)-1], `,"results":[]}`...), nil
	}
	if f.Type != MsgChanges || f.Checkpoint == nil || f.HasMore == nil || f.ID != "" || f.Code != "" {
		return json.Marshal(f)
	}
	size := 96
	for _, c := range f.Changes {
		size += len(c.Record) + len(c.Entity) + len(c.ID) + 64
	}
	b := make([]byte, 0, size)
	// The checkpoint and has_more come first: a client can ask for the next page as soon
	// as it has read them, before it decodes the changes.
	b = append(b, `{"type":"changes","re":`...)
	b = appendString(b, f.Re)
	b = append(b, `,"checkpoint":`...)
	b = appendString(b, *f.Checkpoint)
	b = append(b, `,"has_more":`...)
	b = strconv.AppendBool(b, *f.HasMore)
	b = append(b, `,"changes":[`...)
	for i, c := range f.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seq":`...)
		b = strconv.AppendInt(b, c.Seq, 10)
		b = append(b, `,"entity":`...)
		b = appendString(b, c.Entity)
		b = append(b, `,"id":`...)
		b = appendString(b, c.ID)
		b = append(b, `,"op":`...)
		b = appendString(b, c.Op)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, c.Version, 10)
		if len(c.Record) > 0 {
			b = append(b, `,"record":`...)
			b = append(b, c.Record...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendString appends s as a JSON string, as encoding/json writes it. Ids, entities and
// checkpoints are plain ASCII and are copied between quotes; anything else is escaped by
// encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
