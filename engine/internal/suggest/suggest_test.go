package suggest

import "testing"

func TestClosest(t *testing.T) {
	cands := []string{"records", "request", "streams", "GET", "language", "link_header", "on", "description"}
	tests := []struct{ name, want string }{
		{"recrods", "records"}, // adjacent transposition: one edit
		{"stream", "streams"},  // one insertion
		{"get", "GET"},         // case only
		{"lang", "language"},   // a prefix
		{"on_status", "on"},    // starts with a candidate
		{"destination", ""},    // four edits from description: no guess
		{"records", ""},        // the name itself is not a suggestion
		{"zzzzzz", ""},         // nothing close
	}
	for _, tc := range tests {
		if got := Closest(tc.name, cands); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
