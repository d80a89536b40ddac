package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MustJSON encodes v as encoding/json does, byte for byte; it panics only on values that
// cannot be JSON (a programming error).
//
// The write path encodes every record it writes, its change-log entry and its result: the
// shapes of those (maps of strings, json.Number, booleans, nested maps and lists) are
// written here directly, which costs a fraction of encoding/json's reflection and key
// sorting; any other value is handed to encoding/json.
func MustJSON(v any) []byte {
	b, err := appendJSON(make([]byte, 0, 256), v)
	if err != nil {
		panic(fmt.Sprintf("schema: encode %T: %v", v, err))
	}
	return b
}

func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case json.Number:
		if plainInt(string(x)) {
			return append(b, x...), nil
		}
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case float64:
		// encoding/json's format for this range; exponents and NaN are left to it.
		if a := math.Abs(x); a == 0 || a >= 1e-6 && a < 1e21 {
			return strconv.AppendFloat(b, x, 'f', -1, 64), nil
		}
	case Doc:
		return appendJSONObject(b, x)
	case map[string]any:
		return appendJSONObject(b, x)
	case map[string][2]any: // a change-log entry's fields: name -> [before, after]
		if x == nil {
			return append(b, "null"...), nil
		}
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[k] = v
		}
		return appendJSONObject(b, m)
	case []any:
		return appendJSONArray(b, x)
	case [2]any:
		return appendJSONArray(b, x[:])
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	return append(b, j...), err
}

func appendJSONObject(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendJSONString(b, k), ':')
		if b, err = appendJSON(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendJSONArray(b []byte, a []any) ([]byte, error) {
	if a == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	var err error
	for i, v := range a {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendJSON(b, v); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// appendJSONString writes s between quotes as it is when encoding/json would not change
// it: no character it escapes (quote, backslash, control characters, <, >, &, U+2028,
// U+2029) and valid UTF-8 (Chinese text included). Otherwise encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return appendMarshalled(b, s)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r == '\u2028' || r == '\u2029' {
			return appendMarshalled(b, s)
		}
		i += n
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendMarshalled(b []byte, s string) []byte {
	j, _ := json.Marshal(s)
	return append(b, j...)
}

// plainInt reports whether n is an integer as JSON writes it: an optional minus, then 0 or
// digits not starting with 0.
func plainInt(n string) bool {
	if n != "" && n[0] == '-' {
		n = n[1:]
	}
	if n == "" || n[0] == '0' && len(n) > 1 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}
