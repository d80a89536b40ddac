package schema

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// CheckJSON refuses what encoding/json lets through silently: text that is not valid
// UTF-8 (it would be stored as U+FFFD) and an object with the same key twice (the last one
// would win, unseen). It does not check the syntax otherwise: the decoder that follows does.
func CheckJSON(b []byte) error {
	if !utf8.Valid(b) {
		for i := 0; i < len(b); {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return Errorf(CodeBadRequest, "the JSON is not valid UTF-8 (byte %d)", i)
			}
			i += n
		}
	}
	// The keys of each open object; an array's level is marked as such. Levels are reused
	// as the depth goes up and down, so a frame costs few allocations.
	var stack []jsonLevel
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			if depth == len(stack) {
				stack = append(stack, jsonLevel{})
			}
			stack[depth].reset(b[i] == '[')
			depth++
		case '}', ']':
			if depth > 0 {
				depth--
			}
		case '"':
			start := i
			escaped := false
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					escaped = true
					i++
				}
			}
			if i >= len(b) {
				return nil // unterminated: the decoder reports it
			}
			if depth == 0 || stack[depth-1].array || !isKey(b, i+1) {
				continue
			}
			key := b[start+1 : i]
			if escaped {
				var k string
				if json.Unmarshal(b[start:i+1], &k) != nil {
					return nil
				}
				key = []byte(k)
			}
			if !stack[depth-1].add(key) {
				return FieldError(CodeBadRequest, string(key), "the key %q appears twice in one object", key)
			}
		}
	}
	return nil
}

// jsonLevel holds the keys seen in one open object: a short list while it is small, a set
// once it is large.
type jsonLevel struct {
	array bool
	keys  [][]byte
	set   map[string]bool
}

func (l *jsonLevel) reset(array bool) {
	l.array, l.keys, l.set = array, l.keys[:0], nil
}

// add records key and reports false if the object already had it.
func (l *jsonLevel) add(key []byte) bool {
	if l.set != nil {
		if l.set[string(key)] {
			return false
		}
		l.set[string(key)] = true
		return true
	}
	for _, k := range l.keys {
		if bytes.Equal(k, key) {
			return false
		}
	}
	l.keys = append(l.keys, key)
	if len(l.keys) > 16 {
		l.set = make(map[string]bool, 2*len(l.keys))
		for _, k := range l.keys {
			l.set[string(k)] = true
		}
	}
	return true
}

// isKey reports whether the string that ended just before b[i] is followed by a colon.
func isKey(b []byte, i int) bool {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}
