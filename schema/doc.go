package schema

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Doc is a record's state: a JSON object decoded with numbers kept as json.Number, so a
// record read from the database and written back is byte-for-byte what was stored.
type Doc map[string]any

// DecodeDoc parses a JSON object.
func DecodeDoc(b []byte) (Doc, error) {
	d := Doc{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	return d, nil
}

// Clone returns a shallow copy (values are treated as immutable).
func (d Doc) Clone() Doc {
	c := make(Doc, len(d))
	for k, v := range d {
		c[k] = v
	}
	return c
}

// Str returns the string field k, or "" when absent or not a string.
func (d Doc) Str(k string) string {
	s, _ := d[k].(string)
	return s
}

// Int returns the integer field k, or 0.
func (d Doc) Int(k string) int64 {
	switch v := d[k].(type) {
	case json.Number:
		n, _ := v.Int64()
		return n
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	}
	return 0
}

// Bool returns the boolean field k, or false.
func (d Doc) Bool(k string) bool {
	b, _ := d[k].(bool)
	return b
}

// Time returns the time field k (RFC 3339), or the zero time.
func (d Doc) Time(k string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, d.Str(k))
	if err != nil {
		return time.Time{}
	}
	return t
}

// Strings returns a list-of-strings field.
func (d Doc) Strings(k string) []string {
	switch v := d[k].(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Stamp formats a time the way every record stores it: RFC 3339 in UTC, millisecond
// precision, so that string order is time order.
func Stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// Equal reports whether two field values are the same JSON value.
func Equal(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch x := a.(type) { // the common scalar cases without encoding
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number:
		if y, ok := b.(json.Number); ok && x == y {
			return true
		}
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// Num makes a JSON number from an int.
func Num(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }
