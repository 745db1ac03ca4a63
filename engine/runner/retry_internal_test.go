package runner

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestPendingKeepsLaterRetries: a checkpoint written while a resumed chain
// is re-read keeps the saved retries of the pages not re-read yet (an
// interruption there must not forget them), drops those of the pages read
// again (they succeeded or are in failed), and adds this run's failures.
func TestPendingKeepsLaterRetries(t *testing.T) {
	saved := &pageState{Retry: []recordPos{{0, 1, 0, "a", ""}, {0, 2, 1, "a", ""}, {0, 3, 4, "b", ""}, {1, 1, 0, "c", ""}}}
	got := pending([]recordPos{{0, 2, 1, "a", ""}}, saved, position{0, 2}, nil)
	want := []recordPos{{0, 2, 1, "a", ""}, {0, 3, 4, "b", ""}, {1, 1, 0, "c", ""}}
	if !slices.Equal(got, want) {
		t.Errorf("pending = %v, want %v", got, want)
	}
	// Past the first window, only the later window's retry is left.
	if got := pending(nil, saved, position{1, 0}, nil); !slices.Equal(got, []recordPos{{1, 1, 0, "c", ""}}) {
		t.Errorf("pending after window 0 = %v", got)
	}
	if got := pending(nil, nil, position{0, 5}, nil); len(got) != 0 {
		t.Errorf("pending without a checkpoint = %v", got)
	}
	// A saved retry with a key that this run tried again (found at another
	// place) is not kept for its page.
	keyed := &pageState{Retry: []recordPos{{0, 3, 0, "a", "x"}, {0, 3, 1, "a", "y"}}}
	if got := pending(nil, keyed, position{0, 1}, map[retryKey]bool{{"x", "a"}: true}); !slices.Equal(got, []recordPos{{0, 3, 1, "a", "y"}}) {
		t.Errorf("pending with x tried again = %v", got)
	}
}

// TestPollRetryAfter: an export job's Retry-After is read as a wait that
// is never negative: an absurd number of seconds overflowed Duration into
// a negative wait, and the poll loop asked again at once until its timeout.
func TestPollRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{"9999999999", 24 * time.Hour, true}, // times 1e9 wraps negative
		{"99999999999", 24 * time.Hour, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(9 * time.Second).Format(http.TimeFormat), 9 * time.Second, true},
	} {
		if d, ok := retryAfter(tc.v, now); d != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.v, d, ok, tc.want, tc.ok)
		}
	}
}
