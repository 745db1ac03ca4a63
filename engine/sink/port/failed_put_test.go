package port

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestAmongAfterFailedPuts: a put whose data file write fails and one
// whose context is done leave the spool as it was: among says no for
// their keys (as reading the run says), before and after a later put and
// settle, and the JSON of the entities put around them reads back as put.
func TestAmongAfterFailedPuts(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	batch := func(prefix string) []spooled {
		var es []spooled
		for i := range 20 {
			es = append(es, spooled{bp: "app", id: fmt.Sprintf("%s%02d", prefix, i), data: fmt.Appendf(nil, `{"v":"%s%02d"}`, prefix, i)})
		}
		return es
	}
	var ids []string
	check := func(when string) {
		t.Helper()
		for _, done := range []bool{false, true} {
			got, err := sp.among(ctx, "app", done, ids)
			if err != nil {
				t.Fatal(err)
			}
			if want := amongByScan(t, sp, "app", done, ids); !maps.Equal(got, want) {
				t.Fatalf("%s: among(done=%v) = %s, reading the run says %s", when, done, quoted(got), quoted(want))
			}
		}
	}
	put := func(prefix string, c context.Context) error {
		es := batch(prefix)
		for _, e := range es {
			ids = append(ids, e.id)
		}
		return sp.put(c, es)
	}
	if err := put("a", ctx); err != nil {
		t.Fatal(err)
	}
	check("after a put")

	// The data file refuses the write.
	ro, err := os.Open(filepath.Join(t.TempDir(), "."))
	if err != nil {
		t.Fatal(err)
	}
	data := sp.jsonFile
	sp.jsonFile = ro
	if err := put("b", ctx); err == nil {
		t.Fatal("a put into a read-only data file succeeded")
	}
	sp.jsonFile = data
	ro.Close()
	check("after a put whose write failed")

	// The context is done before the put.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := put("c", cancelled); err == nil {
		t.Fatal("a put with its context done succeeded")
	}
	check("after a put whose transaction failed")

	if err := put("d", ctx); err != nil {
		t.Fatal(err)
	}
	check("after a put after the failed ones")
	for _, id := range ids {
		raw, err := sp.data(ctx, "app", id)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if id[0] == 'a' || id[0] == 'd' {
			want = `{"v":"` + id + `"}`
		}
		if string(raw) != want {
			t.Errorf("%s: data %q, want %q", id, raw, want)
		}
	}
}
