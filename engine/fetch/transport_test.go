package fetch

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// permanentErr is a transport error the same request would meet again.
type permanentErr struct{ permanent bool }

func (e permanentErr) Error() string   { return "not in the cassette" }
func (e permanentErr) Permanent() bool { return e.permanent }

type failingTransport struct {
	err   error
	calls atomic.Int64
}

func (f *failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.calls.Add(1)
	return nil, f.err
}

// TestPermanentTransportErrorNotRetried: a transport error that says it is
// permanent fails at once, with its message; any other is retried.
func TestPermanentTransportErrorNotRetried(t *testing.T) {
	for _, tc := range []struct {
		permanent bool
		attempts  int64
	}{{true, 1}, {false, 3}} {
		tr := &failingTransport{err: permanentErr{tc.permanent}}
		clk := newFakeClock()
		p := NewPool(Options{Transport: tr, Sleep: clk.Sleep, Now: clk.Now})
		c := mustClient(t, p, HostConfig{BaseURL: "http://api.test", Retry: Retry{Attempts: 3}})
		_, err := c.Do(t.Context(), &Request{URL: "/x"})
		if err == nil || !strings.Contains(err.Error(), "GET http://api.test/x: not in the cassette") {
			t.Errorf("permanent=%v: Do error = %v, want the transport's message after the request", tc.permanent, err)
		}
		var perm Permanent
		if !errors.As(err, &perm) {
			t.Errorf("permanent=%v: the transport error is not kept in the chain: %v", tc.permanent, err)
		}
		if got := tr.calls.Load(); got != tc.attempts {
			t.Errorf("permanent=%v: %d attempts, want %d", tc.permanent, got, tc.attempts)
		}
	}
}

// TestSecretsListed: Secrets lists every secret the pool redacts, fetched
// later or given up front, with escaped forms.
func TestSecretsListed(t *testing.T) {
	p := NewPool(Options{Secrets: []string{"given/secret"}})
	mustClient(t, p, HostConfig{BaseURL: "http://api.test", Auth: Auth{Type: AuthBearer, Token: "tok-1234"}})
	got := p.Secrets()
	for _, want := range []string{"given/secret", "given%2Fsecret", "tok-1234"} {
		if !slices.Contains(got, want) {
			t.Errorf("Secrets() = %q, want it to hold %q", got, want)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("Secrets() = %q, want them sorted", got)
	}
}
