package decode

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzStream: a streamed body gives exactly the records of the program
// run on the whole document, or fails where jq fails (or where the body
// repeats a key on the path, which jq would silently resolve to the last).
func FuzzStream(f *testing.F) {
	for _, s := range []string{`[1,{"a":[2]}]`, `{"data":[{"id":1}],"next":"x"}`, `{"data":null}`, `{"data":{"b":1,"a":2}}`, `null`, `[1 2]`, `{"data":[1],"data":[2]}`, `{"data":[0],"data":[]}`, "[\"\\u00e9\"]", `{"a":{"data":[]}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		for _, program := range []string{"", ".[]", ".data[]", ".data[] | .id"} {
			jq := program
			if jq == "" {
				jq = defaultRecords
			}
			want, werr := whole(t, doc, jq)
			got, gerr := streamed(t, doc, program)
			if gerr != nil && (strings.Contains(gerr.Error(), "appears twice") || keyTwice(t, doc, program)) {
				// The stream refuses a key it follows twice; the program
				// may fail on an element first (the whole document keeps
				// the last list, which may not hold that element).
				continue
			}
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("%q on %q: whole document gives %v (%v), streamed %v (%v)", program, doc, want, werr, got, gerr)
			}
			if werr == nil && !cmp.Equal(want, got) {
				t.Fatalf("%q on %q: whole %v, streamed %v", program, doc, want, got)
			}
		}
	})
}

// keyTwice tells whether streaming doc by the path part of program (before
// its first pipe) fails on a key that appears twice.
func keyTwice(t *testing.T, doc, program string) bool {
	path, _, _ := strings.Cut(program, "|")
	_, err := streamed(t, doc, strings.TrimSpace(path))
	return err != nil && strings.Contains(err.Error(), "appears twice")
}
