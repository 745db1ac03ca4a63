package runner

import (
	"slices"
	"testing"
)

// changedTexts teaches what differs between a body_jq output and the one
// with the secret inputs changed: a changed value, a key only one run
// gave (with its value), the whole of a list whose length changed; never
// a boolean or an equal value.
func TestChangedTexts(t *testing.T) {
	v := map[string]any{"auth": "dG9rZW4=", "user": "me", "n": 12345, "set": true, "tags": []any{"a1", "b2"},
		"sec-abcd": "x-value", "same": []any{"keep-1"}}
	w := map[string]any{"auth": "dG9rZW5=", "user": "me", "n": 12345, "set": false, "tags": []any{"a1"},
		"tfd-bcde": "x-value", "same": []any{"keep-1"}}
	got := changedTexts(v, w, nil)
	slices.Sort(got)
	if want := []string{"a1", "b2", "dG9rZW4=", "sec-abcd", "x-value"}; !slices.Equal(got, want) {
		t.Errorf("changedTexts = %v, want %v", got, want)
	}
	// Changed, a secret keeps its kind: base64 and digits still decode.
	if got := shifted("aZz9-Q0"); got != "bAa0-R1" {
		t.Errorf("shifted = %q", got)
	}
	if _, ok := altered(map[string]any{"k": map[string]any{}}, []string{"k"}); ok {
		t.Error("altered changed a map input: it cannot, and every text must be taught instead")
	}
}
