package port

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// TestPutKeepsEveryBlueprintWhenAMergeFails: a put whose JSON and runs
// are written but whose merge of one blueprint's runs fails (here an
// older run that no longer reads) returns the error and still holds every
// entity it wrote, of every blueprint: a blueprint after the failed one
// is not left out while the put's numbers and JSON stay taken.
func TestPutKeepsEveryBlueprintWhenAMergeFails(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	for i := range runFanout - 1 {
		if err := sp.put(ctx, []spooled{{bp: "a", id: fmt.Sprintf("k%02d", i), data: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	// The oldest run of a no longer reads: its first entry is garbled.
	if _, err := sp.jsonFile.WriteAt(bytes.Repeat([]byte{0xff}, 11), sp.runs["a"][0].off); err != nil {
		t.Fatal(err)
	}
	es := []spooled{{bp: "a", id: "x", data: []byte(`{"a":1}`)}, {bp: "b", id: "y", data: []byte(`{"b":1}`)}}
	if err := sp.put(ctx, es); err == nil {
		t.Fatal("a put whose merge read a garbled run succeeded")
	}
	for _, e := range es {
		got, err := sp.data(ctx, e.bp, e.id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, e.data) {
			t.Errorf("after the failed merge, %s/%s reads %q, want %q", e.bp, e.id, got, e.data)
		}
	}
}
