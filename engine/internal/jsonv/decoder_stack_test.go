package jsonv

import (
	"reflect"
	"testing"
)

// A document cut inside an object (decode's stream tries every element in
// place first, and one cut by the buffer's end fails there) must not leave
// its members on the reused Decoder's stack: they would be kept, with the
// values they hold, for as long as the Decoder, one record's worth per
// buffer boundary of a long stream.
func TestDecoderErrorLeavesNoMembers(t *testing.T) {
	var s Decoder
	cut := []byte(`{"a":1,"b":{"c":"x","d":[1,{"e":2,`)
	for range 100 {
		if _, _, err := s.DecodePrefix(cut); err == nil {
			t.Fatal("DecodePrefix of a cut object: no error")
		}
	}
	if n := len(s.members); n > 0 {
		t.Errorf("after failed DecodePrefix calls the Decoder holds %d members", n)
	}
	for range 100 {
		if _, err := s.Decode(cut); err == nil {
			t.Fatal("Decode of a cut object: no error")
		}
	}
	if n := len(s.members); n > 0 {
		t.Errorf("after failed Decode calls the Decoder holds %d members", n)
	}
	v, err := s.Decode([]byte(`{"a":1,"a":2,"b":{"c":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Decode([]byte(`{"a":2,"b":{"c":"x"}}`))
	if !reflect.DeepEqual(v, want) {
		t.Errorf("after errors: got %v, want %v", v, want)
	}
	if n := len(s.members); n > 0 {
		t.Errorf("after a whole document the Decoder still holds %d members of failed ones", n)
	}
	for i, m := range s.members[:cap(s.members)] {
		if m.val != nil || m.key != "" {
			t.Errorf("the stack's slot %d still refers to %q: %v", i, m.key, m.val)
			break
		}
	}
}
