package schema

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// jsonStrings holds plain text and every kind of character encoding/json escapes or mends.
var jsonStrings = []string{"", "ok", "华东精密仪器有限公司", "SR-202611-0042", `q"uote`, `back\slash`, "<b>&amp;", "tab\tnl\ncr\r",
	"\x00\x1f\x7f", "line\u2028para\u2029", "bad\xffutf8", "\xe4\xb8", "emoji 🙂", "é", "2026-11-29T18:00:00Z"}

// randomValue builds the shapes records, change entries and results have, and some others.
func randomValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(14); {
	case k < 3:
		return jsonStrings[r.IntN(len(jsonStrings))]
	case k == 3:
		return []json.Number{"0", "42", "-7", "3.25", "1e3", "", "007", "-0", "12345678901234567890"}[r.IntN(9)]
	case k == 4:
		return []float64{0, 1.5, -2, 1e-7, 1e21, 123456789, 0.000001, math.Copysign(0, -1), 1e20}[r.IntN(9)]
	case k == 5:
		return r.IntN(2) == 0
	case k == 6:
		return nil
	case k == 7:
		return r.Int64N(1<<40) - 1<<39
	case k < 10 && depth < 4:
		m := Doc{}
		for range r.IntN(6) {
			m[jsonStrings[r.IntN(len(jsonStrings))]] = randomValue(r, depth+1)
		}
		if k == 9 {
			return map[string]any(m)
		}
		return m
	case k < 12 && depth < 4:
		var a []any
		for range r.IntN(5) {
			a = append(a, randomValue(r, depth+1))
		}
		return a
	case k == 12 && r.IntN(2) == 0:
		return [2]any{randomValue(r, depth+1), randomValue(r, depth+1)}
	case k == 12:
		d := map[string][2]any{}
		for range r.IntN(4) {
			d[jsonStrings[r.IntN(len(jsonStrings))]] = [2]any{randomValue(r, depth+1), randomValue(r, depth+1)}
		}
		return d
	default:
		return map[string]string{"a": "<x>", "b": "华"} // a shape handed to encoding/json
	}
}

// TestMustJSONAsEncodingJSON: the write path's encoder gives encoding/json's bytes exactly,
// for 20,000 random documents built from strings it escapes, numbers of every form and
// nested maps and lists.
func TestMustJSONAsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		v := Doc{"id": "x", "v": randomValue(r, 0), "w": randomValue(r, 0)}
		want, err := json.Marshal(v)
		if err != nil {
			// NaN-free, so only an invalid json.Number fails; MustJSON must refuse it too.
			func() {
				defer func() { recover() }()
				MustJSON(v)
				t.Fatalf("document %d: encoding/json refuses it (%v), MustJSON encoded it", i, err)
			}()
			continue
		}
		if got := MustJSON(v); !bytes.Equal(got, want) {
			t.Fatalf("document %d:\nMustJSON      %s\nencoding/json %s", i, got, want)
		}
	}
}

func FuzzMustJSONString(f *testing.F) {
	for _, s := range jsonStrings {
		f.Add(s, "12", 1.5)
	}
	f.Fuzz(func(t *testing.T, s, n string, x float64) {
		v := map[string]any{s: []any{s, json.Number(n), x}}
		want, err := json.Marshal(v)
		if err != nil {
			return // an invalid number or NaN: encoding/json's refusal, which MustJSON shares
		}
		if got := MustJSON(v); !bytes.Equal(got, want) {
			t.Fatalf("MustJSON %s, encoding/json %s", got, want)
		}
	})
}
