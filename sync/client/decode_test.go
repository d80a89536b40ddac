package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	syncer "fieldsync/sync"
)

// DecodeFrame gives what encoding/json gives, for the frames the server writes and for
// the shapes it does not (each of those falls back to encoding/json).
var decodeSeeds = []string{
	`{"type":"changes","re":"p\"1\\","checkpoint":"t42","has_more":true,"changes":[{"seq":40,"entity":"ticket","id":"a-1","op":"upsert","version":3,"record":{"id":"a-1","name":"华东 \"精密\"","n":1.5,"l":[1,{"x":"]}"}]}},{"seq":41,"entity":"customer","id":"c\u2028","op":"evict","version":2}]}`,
	`{"type":"changes","re":"p2","checkpoint":"t9","has_more":false,"changes":[]}`,
	"{\"type\":\"changes\" , \"re\" : \"p3\",\n \"checkpoint\":\"t1\",\"has_more\": false , \"changes\" : [ { \"seq\" : 1 , \"entity\":\"site\",\"id\":\"s\",\"op\":\"upsert\",\"version\":7,\"record\": {\"a\" : [ ] } } ] }",
	`{"type":"changes","re":"p4","checkpoint":"t1","has_more":false,"changes":[{"seq":1,"entity":"site","id":"s","op":"upsert","version":1,"record":null}]}`,
	`{"type":"changes","re":"p5","checkpoint":"t1","has_more":false,"changes":[{"seq":1.5,"entity":"site","id":"s","op":"upsert","version":1,"record":{}}]}`,
	`{"type":"changes","re":"p6","checkpoint":"t1","has_more":false,"code":"x","changes":[]}`,
	`{"type":"changes","re":"p7","checkpoint":"t1","has_more":null,"changes":[{"seq":1,"Entity":"site","id":"s","op":"upsert","version":1,"record":"x"}]}`,
	`{"type":"changes","re":"p8","checkpoint":"t1","has_more":true,"changes":[{"seq":1,"entity":"si` + "\xff" + `te","id":"s","op":"upsert","version":1,"record":{}}]}`,
	`{"type":"changes","re":"p9","checkpoint":"t1","has_more":true,"changes":[{"seq":1,"entity":"site"`,
	`{"type":"changes","re":"p10","checkpoint":"t1","has_more":true,"changes":[]} {}`,
	`{"type":"results","re":"m1","results":[{"mid":"a","status":"applied","version":2}]}`,
	`{"type":"changes","changes":[{"seq":99999999999999999999}]}`,
}

func sameAsEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := DecodeFrame(data)
	var want syncer.Frame
	wantErr := json.Unmarshal(data, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: DecodeFrame error %v, encoding/json %v", data, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nDecodeFrame   %+v\nencoding/json %+v", data, got, want)
	}
}

func TestDecodeFrameAsEncodingJSON(t *testing.T) {
	for _, s := range decodeSeeds {
		sameAsEncodingJSON(t, []byte(s))
	}
	page := pageFrame(t, 50)
	sameAsEncodingJSON(t, page)
	var indented bytes.Buffer
	json.Indent(&indented, page, "", "  ")
	sameAsEncodingJSON(t, indented.Bytes())
	// The frames the server writes take the walk, not the fallback.
	for _, b := range [][]byte{page, []byte(decodeSeeds[0]), []byte(decodeSeeds[1]), []byte(decodeSeeds[2])} {
		if _, ok := walkChanges(b); !ok {
			t.Errorf("%.80q... was not walked", b)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameAsEncodingJSON(t, data) })
}
