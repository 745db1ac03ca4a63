package runner

import (
	"slices"
	"testing"
)

// TestPendingKeepsLaterRetries: a checkpoint written while a resumed chain
// is re-read keeps the saved retries of the pages not re-read yet (an
// interruption there must not forget them), drops those of the pages read
// again (they succeeded or are in failed), and adds this run's failures.
func TestPendingKeepsLaterRetries(t *testing.T) {
	saved := &pageState{Retry: []recordPos{{1, 0, "a"}, {2, 1, "a"}, {3, 4, "b"}}}
	got := pending([]recordPos{{2, 1, "a"}}, saved, 2)
	want := []recordPos{{2, 1, "a"}, {3, 4, "b"}}
	if !slices.Equal(got, want) {
		t.Errorf("pending = %v, want %v", got, want)
	}
	if got := pending(nil, nil, 5); len(got) != 0 {
		t.Errorf("pending without a checkpoint = %v", got)
	}
}
