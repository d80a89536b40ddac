package schema

import (
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
	// One set of keys per open object; arrays push nil.
	var stack []map[string]bool
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, map[string]bool{})
		case '[':
			stack = append(stack, nil)
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
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
			keys := (map[string]bool)(nil)
			if len(stack) > 0 {
				keys = stack[len(stack)-1]
			}
			if keys == nil || !isKey(b, i+1) {
				continue
			}
			key := string(b[start+1 : i])
			if escaped {
				if json.Unmarshal(b[start:i+1], &key) != nil {
					return nil
				}
			}
			if keys[key] {
				return FieldError(CodeBadRequest, key, "the key %q appears twice in one object", key)
			}
			keys[key] = true
		}
	}
	return nil
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
