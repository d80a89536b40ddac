package sync

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestEncodeFrameMatchesEncodingJSON: the hand-written changes frame decodes to the same
// frame as the one encoding/json writes, escapes included.
func TestEncodeFrameMatchesEncodingJSON(t *testing.T) {
	cp, more := "t42", true
	f := Frame{Type: MsgChanges, Re: `p"1\`, Checkpoint: &cp, HasMore: &more, Changes: []Change{
		{Seq: 40, Entity: "ticket", ID: "a-1", Op: OpUpsert, Version: 3, Record: json.RawMessage(`{"id":"a-1","name":"华东 \"精密\"","n":1.5}`)},
		{Seq: 41, Entity: "customer", ID: "c\u2028", Op: OpEvict, Version: 2},
	}}
	got, err := EncodeFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(got) {
		t.Fatalf("not JSON: %s", got)
	}
	want, _ := json.Marshal(f)
	var a, b map[string]any
	json.Unmarshal(got, &a)
	json.Unmarshal(want, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("hand-written frame\n%s\ndiffers from\n%s", got, want)
	}
	empty := Frame{Type: MsgChanges, Checkpoint: &cp, HasMore: new(bool), Changes: []Change{}}
	got, _ = EncodeFrame(empty)
	var back Frame
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("empty page %s: %v", got, err)
	}
	if back.Type != MsgChanges || len(back.Changes) != 0 || *back.Checkpoint != cp || *back.HasMore {
		t.Errorf("empty page decodes to %+v", back)
	}
}

// TestAppendStringAsEncodingJSON: the frame writer's strings are byte for byte what
// encoding/json writes, for plain ids and for every character it escapes.
func TestAppendStringAsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "t42", "tk-01J9Z", "a b", `q"uote`, `back\slash`, "<a>&b", "tab\there", "nl\n", "\x00\x1f\x7f",
		"华东精密", "line\u2028sep", "bad\xffutf8", "é"} {
		want, _ := json.Marshal(s)
		if got := appendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("appendString(%q) = %s, encoding/json writes %s", s, got[1:], want)
		}
	}
}
