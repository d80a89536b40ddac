package client

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	syncer "fieldsync/sync"
)

// DecodeFrame decodes a frame from the server. A changes frame, the big one, is checked whole
// by json.Valid (as json.Unmarshal checks it first) and then walked by hand: once a frame is
// known to be valid JSON, finding where each value ends needs no more than counting brackets
// outside strings, which is several times cheaper than encoding/json's second pass, and each
// record is taken from the frame as it is instead of being copied. Any frame the walk does not
// expect (another key, a null, a number that is not an integer) is decoded by encoding/json,
// so both give the same Frame.
func DecodeFrame(data []byte) (syncer.Frame, error) {
	if bytes.HasPrefix(data, []byte(`{"type":"changes",`)) && json.Valid(data) {
		if f, ok := walkChanges(data); ok {
			return f, nil
		}
	}
	var f syncer.Frame
	err := json.Unmarshal(data, &f)
	return f, err
}

// walker reads values out of JSON already known to be valid.
type walker struct {
	b    []byte
	i    int
	seen map[string]string
}

func (w *walker) unquote(v []byte) (string, bool) {
	var s string
	return s, len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil
}

func (w *walker) space() {
	for w.i < len(w.b) && (w.b[w.i] == ' ' || w.b[w.i] == '\t' || w.b[w.i] == '\n' || w.b[w.i] == '\r') {
		w.i++
	}
}

// next consumes c if it is the next byte after any space.
func (w *walker) next(c byte) bool {
	w.space()
	if w.i < len(w.b) && w.b[w.i] == c {
		w.i++
		return true
	}
	return false
}

// value returns the next value's bytes.
func (w *walker) value() []byte {
	w.space()
	start, depth := w.i, 0
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case '"':
			w.i++
			for w.i < len(w.b) && w.b[w.i] != '"' {
				if w.b[w.i] == '\\' {
					w.i++
				}
				w.i++
			}
			w.i++
			if depth == 0 {
				return w.b[start:w.i]
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // the end of a number or literal inside its container
				return bytes.TrimRight(w.b[start:w.i], " \t\r\n")
			}
			if depth--; depth == 0 {
				w.i++
				return w.b[start:w.i]
			}
		case ',':
			if depth == 0 {
				return bytes.TrimRight(w.b[start:w.i], " \t\r\n")
			}
		}
		w.i++
	}
	return bytes.TrimRight(w.b[start:w.i], " \t\r\n")
}

// raw reads a string value and returns what is between its quotes, when that needs no
// unquoting (no escape, valid UTF-8).
func (w *walker) raw() (in, v []byte, plain bool) {
	v = w.value()
	if len(v) < 2 || v[0] != '"' {
		return nil, v, false
	}
	in = v[1 : len(v)-1]
	return in, v, bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in)
}

// str reads a string value.
func (w *walker) str() (string, bool) {
	in, v, plain := w.raw()
	if plain {
		return string(in), true
	}
	return w.unquote(v)
}

// common reads a string value that is one of few (an entity, an op), made once per frame.
func (w *walker) common() (string, bool) {
	in, _, plain := w.raw()
	if !plain {
		return "", false
	}
	if s, ok := w.seen[string(in)]; ok {
		return s, true
	}
	if w.seen == nil {
		w.seen = map[string]string{}
	}
	s := string(in)
	w.seen[s] = s
	return s, true
}

func (w *walker) int() (int64, bool) {
	v := w.value()
	if len(v) == 0 || len(v) > 18 {
		n, err := strconv.ParseInt(string(v), 10, 64)
		return n, err == nil
	}
	neg := v[0] == '-'
	if neg {
		v = v[1:]
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, len(v) > 0
}

// object reads an object's members, calling member for each key; false if member or the
// object's shape says no.
func (w *walker) object(member func(key []byte) bool) bool {
	if !w.next('{') {
		return false
	}
	if w.next('}') {
		return true
	}
	for {
		k, v, plain := w.raw()
		if !plain {
			s, ok := w.unquote(v)
			if !ok {
				return false
			}
			k = []byte(s)
		}
		if !w.next(':') || !member(k) {
			return false
		}
		if w.next('}') {
			return true
		}
		if !w.next(',') {
			return false
		}
	}
}

func walkChanges(b []byte) (f syncer.Frame, ok bool) {
	w := &walker{b: b}
	ok = w.object(func(k []byte) (ok bool) {
		switch string(k) {
		case "type":
			f.Type, ok = w.str()
		case "re":
			f.Re, ok = w.str()
		case "checkpoint":
			var cp string
			cp, ok = w.str()
			f.Checkpoint = &cp
		case "has_more":
			v := string(w.value())
			more := v == "true"
			f.HasMore, ok = &more, more || v == "false"
		case "changes":
			f.Changes, ok = w.changes()
		}
		return ok
	})
	return f, ok && f.Type == syncer.MsgChanges
}

func (w *walker) changes() ([]syncer.Change, bool) {
	out := []syncer.Change{}
	if !w.next('[') {
		return nil, false
	}
	if w.next(']') {
		return out, true
	}
	for {
		var c syncer.Change
		ok := w.object(func(k []byte) (ok bool) {
			switch string(k) {
			case "seq":
				c.Seq, ok = w.int()
			case "entity":
				c.Entity, ok = w.common()
			case "id":
				c.ID, ok = w.str()
			case "op":
				c.Op, ok = w.common()
			case "version":
				c.Version, ok = w.int()
			case "record":
				v := w.value()
				c.Record, ok = v[:len(v):len(v)], string(v) != "null"
			}
			return ok
		})
		if !ok {
			return nil, false
		}
		out = append(out, c)
		if w.next(']') {
			return out, true
		}
		if !w.next(',') {
			return nil, false
		}
	}
}
