package runner

import "testing"

// TestResultsDigests: the digests made once a listing are resultsDigest
// at each index (a checkpoint's Results), blind to the query, and tell
// the results' order apart.
func TestResultsDigests(t *testing.T) {
	urls := []string{"https://s3/a.json?sig=1", "https://s3/b.json?sig=2", "https://s3/c.json"}
	all := resultsDigests(urls)
	c := &chainRun{results: all}
	for w := range urls {
		if got, want := c.resultsAt(w), resultsDigest(urls, w); got != want || got == "" {
			t.Errorf("resultsAt(%d) = %q, want resultsDigest %q", w, got, want)
		}
	}
	if got, want := c.resultsAt(7), resultsDigest(urls, 7); got != want {
		t.Errorf("resultsAt past the last = %q, want %q", got, want)
	}
	if c.resultsAt(0) == c.resultsAt(1) || c.resultsAt(1) == c.resultsAt(2) {
		t.Errorf("digests %v: want one a prefix", all)
	}
	if got := resultsDigests([]string{"https://s3/a.json?sig=9", "https://s3/b.json"}); got[1] != all[1] {
		t.Errorf("links signed anew: %q, want %q", got[1], all[1])
	}
	if got := resultsDigests([]string{urls[1], urls[0]}); got[1] == all[1] {
		t.Errorf("results in another order: one digest %q", got[1])
	}
	if (&chainRun{}).resultsAt(0) != "" {
		t.Error("no downloads: want no digest")
	}
}
