package fetch

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
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

// countingConn counts the writes and reads a connection is asked for.
type countingConn struct {
	net.Conn
	writes, reads *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) { c.writes.Add(1); return c.Conn.Write(b) }
func (c countingConn) Read(b []byte) (int, error)  { c.reads.Add(1); return c.Conn.Read(b) }

// TestRequestGoesOutInOneWrite: a host's transport sends a request of
// 40 KB (headers and body) in one write to its connection, and reads an
// answer of 40 KB in few reads, instead of a system call for every 4 KiB
// of Go's default buffers.
func TestRequestGoesOutInOneWrite(t *testing.T) {
	answer := strings.Repeat("a", 40_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Error(err)
		}
		// The whole answer in one write, so that how the client reads it
		// depends on its buffer, not on how the server's writes arrive.
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if buf.Reader.Buffered() > 0 {
			t.Error("the client sent more than one request")
		}
		if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "+strconv.Itoa(len(answer))+"\r\n\r\n"+answer); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	var writes, reads atomic.Int64
	tr := NewPool(Options{}).hostTransport(1)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes, reads: &reads}, nil
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for i := range 3 {
		writes.Store(0)
		resp, err := hc.Post(srv.URL, "application/json", strings.NewReader(strings.Repeat("b", 40_000)))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(body) != len(answer) {
			t.Fatalf("request %d: read %d bytes (%v), want %d", i, len(body), err, len(answer))
		}
		if got := writes.Load(); got != 1 {
			t.Errorf("request %d went out in %d writes, want 1", i, got)
		}
	}
	// Each answer arrives in one piece: a read for it, one that meets the
	// closed connection, and maybe one for a piece handed over late. Go's
	// 4 KiB buffer takes at least ten reads for each.
	if got := reads.Load(); got > 3*4 {
		t.Errorf("3 answers of 40 KB took %d reads, want at most 12", got)
	}
}
