package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func readSpool(t *testing.T, resp *Response) string {
	t.Helper()
	if resp.Spool == nil {
		t.Fatal("no spool")
	}
	defer resp.Spool.Close()
	b, err := io.ReadAll(resp.Spool.Reader())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A body larger than MaxBodyBytes downloads whole: Download has its own,
// larger limit, and a body beyond the memory threshold goes to an
// unlinked file, which leaves nothing in the temporary directory.
func TestDownloadLargeBody(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	big := strings.Repeat("0123456789", (spillBytes+100_000)/10)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, MaxBodyBytes: 1000})
	if _, err := c.Do(t.Context(), &Request{URL: "/export"}); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("Do = %v, want the body cap", err)
	}
	resp, err := c.Download(t.Context(), &Request{URL: "/export"}, Download{})
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if resp.Spool.file == nil {
		t.Error("a body over the memory threshold is not in a file")
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("temporary directory holds %v: the spool file must be unlinked", entries)
	}
	if got := readSpool(t, resp); got != big {
		t.Errorf("body = %d bytes, want the %d sent", len(got), len(big))
	}
	if resp.Body != nil {
		t.Error("a downloaded 2xx body is also in memory")
	}
}

// A body over Download.MaxBytes fails, is not retried and is never cut
// short.
func TestDownloadCap(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, strings.Repeat("x", 5000))
	})
	clk := newFakeClock()
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: srv.URL, Auth: Auth{Type: AuthQuery, Param: "key", Token: "s3cret-key"}})
	resp, err := c.Download(t.Context(), &Request{URL: "/big"}, Download{MaxBytes: 4096})
	want := "GET " + srv.URL + "/big?key=REDACTED: response body too large: over the limit of 4096 bytes"
	if !errors.Is(err, ErrBodyTooLarge) || err.Error() != want {
		t.Fatalf("Download error = %v, want %q", err, want)
	}
	if resp != nil || n.Load() != 1 || len(clk.Sleeps()) != 0 {
		t.Errorf("response %v, %d requests, %d waits: want none, 1, 0", resp, n.Load(), len(clk.Sleeps()))
	}
}

// A body cut short is retried: nothing of it was delivered yet.
func TestDownloadCutShortIsRetried(t *testing.T) {
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\": 1}\n")
			buf.Flush()
			conn.Close()
			return
		}
		io.WriteString(w, "{\"id\": 1}\n{\"id\": 2}\n")
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
	resp, err := c.Download(t.Context(), &Request{URL: "/x"}, Download{})
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if got := readSpool(t, resp); resp.Attempts < 2 || got != "{\"id\": 1}\n{\"id\": 2}\n" {
		t.Errorf("attempts %d, body %q: want 2 and the full body", resp.Attempts, got)
	}
}

// The timeout bounds the waits for data, not the transfer: a body that
// keeps coming, taking longer than the timeout in all, downloads; one that stops
// for longer fails as a timeout, and is retried.
func TestDownloadIdleTimeout(t *testing.T) {
	var n atomic.Int32
	done := make(chan struct{})
	defer close(done)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		attempt := n.Add(1)
		for i := range 20 {
			fmt.Fprintf(w, "{\"i\": %d}\n", i)
			w.(http.Flusher).Flush()
			wait := 20 * time.Millisecond
			if attempt == 1 && i == 2 {
				wait = time.Minute // the first attempt stalls
			}
			select {
			case <-time.After(wait):
			case <-r.Context().Done():
				return
			case <-done:
				return
			}
		}
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, Timeout: 300 * time.Millisecond})
	resp, err := c.Download(t.Context(), &Request{URL: "/slow"}, Download{})
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if got := readSpool(t, resp); resp.Attempts < 2 || strings.Count(got, "\n") != 20 {
		t.Errorf("attempts %d, body %q: want the second attempt's whole body (taking longer than the timeout)", resp.Attempts, got)
	}

	c1 := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, Timeout: 300 * time.Millisecond, Retry: Retry{Attempts: 1}})
	n.Store(0)
	_, err = c1.Download(t.Context(), &Request{URL: "/slow"}, Download{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "attempt timed out") {
		t.Errorf("a stalled body: %v, want an attempt timeout", err)
	}

	// An answer that never starts times out the same way, and is retried.
	var m atomic.Int32
	late := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if m.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-done:
			}
			return
		}
		io.WriteString(w, "{}\n")
	})
	c2 := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: late.URL, Timeout: 200 * time.Millisecond})
	resp, err = c2.Download(t.Context(), &Request{URL: "/late"}, Download{})
	if err != nil || resp.Attempts < 2 {
		t.Fatalf("Download = %v, %v; want success after a retry", resp, err)
	}
	resp.Spool.Close()
}

// Statuses and response rules decide as for Do; a body predicate reads a
// downloaded body up to MaxBodyBytes, and a larger one fails the request
// rather than being guessed, unless the body is not JSON.
func TestDownloadRules(t *testing.T) {
	big := `{"ok": true, "pad": "` + strings.Repeat("x", 2000) + `"}`
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/error":
			io.WriteString(w, `{"ok": false, "error": "nope"}`)
		case "/big":
			io.WriteString(w, big)
		case "/missing":
			w.WriteHeader(404)
			io.WriteString(w, `{"message": "no such export"}`)
		case "/conflict":
			w.WriteHeader(409)
			io.WriteString(w, "a,b\n1,2\n")
		}
	})
	okFalse := func(ctx context.Context, body any) (any, bool, error) {
		m, _ := body.(map[string]any)
		return m["ok"] == false, true, nil
	}
	rules := []Rule{
		{Name: "r0", Body: okFalse, Action: ActionFail},
		{Name: "r1", Statuses: []StatusRange{{409, 409}}, Action: ActionOK},
	}
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, MaxBodyBytes: 1000, Rules: rules})
	if _, err := c.Download(t.Context(), &Request{URL: "/error"}, Download{}); err == nil || !strings.Contains(err.Error(), "rule r0 (fail)") {
		t.Errorf("/error: %v, want the fail rule", err)
	}
	if _, err := c.Download(t.Context(), &Request{URL: "/big"}, Download{}); err == nil || !strings.Contains(err.Error(), "more than the 1000 a response rule's body predicate reads") {
		t.Errorf("/big: %v, want a failure: the predicate cannot read it", err)
	}
	resp, err := c.Download(t.Context(), &Request{URL: "/big"}, Download{NotJSON: true})
	if err != nil || len(readSpool(t, resp)) != len(big) {
		t.Errorf("/big, not JSON: %v, want the body", err)
	}
	var se *StatusError
	if _, err := c.Download(t.Context(), &Request{URL: "/missing"}, Download{}); !errors.As(err, &se) || se.Status != 404 || !strings.Contains(se.Body, "no such export") {
		t.Errorf("/missing: %v, want a 404 StatusError with its body", err)
	}
	resp, err = c.Download(t.Context(), &Request{URL: "/conflict"}, Download{NotJSON: true})
	if err != nil || readSpool(t, resp) != "a,b\n1,2\n" {
		t.Errorf("/conflict: %v, want the 409 body as data (rule ok)", err)
	}
}

// Spool files go where TMPDIR says, and Close releases them.
func TestSpoolFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f, name, err := spillFile([]byte("head"))
	if err != nil {
		t.Fatal(err)
	}
	if name != "" {
		t.Skipf("this system cannot unlink an open file (%s)", filepath.Base(name))
	}
	s := &Spool{file: f, size: 4}
	if b, ok := s.bytes(10); !ok || string(b) != "head" {
		t.Errorf("bytes = %q, %v", b, ok)
	}
	if _, ok := s.bytes(3); ok {
		t.Error("bytes over the limit were returned")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// chunkReader hands out its data at most n bytes a read, as a network
// connection does.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, len(r.data))
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

// receive keeps every byte whatever the announced length says (none, the
// right one, too small, too large), keeps a body in memory up to
// spillBytes and in a file past it, never lets the memory buffer grow
// far past spillBytes, and refuses a body over its limit.
func TestReceiveSizes(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	lend := &chunks{} // shared by every body, as a Pool's is
	for _, size := range []int{0, 1, 700, 32 << 10, 32<<10 + 1, spillBytes - 1, spillBytes, spillBytes + 1, spillBytes + 50_000} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte('a' + i%26)
		}
		for _, hint := range []int64{-1, int64(size), int64(size / 2), int64(size) + 9000} {
			t.Run(fmt.Sprintf("size=%d/hint=%d", size, hint), func(t *testing.T) {
				idle := &idleTimer{t: time.NewTimer(time.Hour), d: time.Hour}
				defer idle.stop()
				s, err := receive(&chunkReader{data: data, n: 7001}, DefaultMaxDownloadBytes, hint, spillBytes, idle, lend)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if (s.file != nil) != (size > spillBytes) {
					t.Errorf("in a file: %v, want %v", s.file != nil, size > spillBytes)
				}
				if s.file == nil && cap(s.mem) > spillBytes+1 {
					t.Errorf("memory buffer of %d bytes for a %d-byte body: past the spill threshold", cap(s.mem), size)
				}
				if exact := hint == -1 || hint == int64(size); s.file == nil && exact && cap(s.mem) > size+1 {
					t.Errorf("memory buffer of %d bytes for a %d-byte body whose length was known or not announced: want its size", cap(s.mem), size)
				}
				got, err := io.ReadAll(s.Reader())
				if err != nil {
					t.Fatal(err)
				}
				if s.Size() != int64(size) || string(got) != string(data) {
					t.Errorf("kept %d bytes (size %d), want the %d sent, equal", len(got), s.Size(), size)
				}
			})
		}
	}
	idle := &idleTimer{t: time.NewTimer(time.Hour), d: time.Hour}
	defer idle.stop()
	for _, hint := range []int64{-1, 5000} {
		if _, err := receive(&chunkReader{data: make([]byte, 5000), n: 512}, 4999, hint, spillBytes, idle, lend); !errors.Is(err, ErrBodyTooLarge) {
			t.Errorf("hint %d: a body one byte over the limit: %v, want ErrBodyTooLarge", hint, err)
		}
	}
}

// A body whose length is announced is read into one buffer of that
// length (and a byte for EOF), not into chunks copied out at the end: what
// receive's hint is for. A chunked body, its length unknown, ends in a
// buffer of its own size whatever came before it on the client.
func TestReceiveSizedByHint(t *testing.T) {
	idle := &idleTimer{t: time.NewTimer(time.Hour), d: time.Hour}
	defer idle.stop()
	data := bytes.Repeat([]byte("x"), 200_000)
	s, err := receive(&chunkReader{data: data, n: 7001}, DefaultMaxDownloadBytes, int64(len(data)), spillBytes, idle, &chunks{})
	if err != nil {
		t.Fatal(err)
	}
	if cap(s.mem) != len(data)+1 {
		t.Errorf("a %d-byte body announced as such: buffer of %d bytes, want one of %d (read in place)", len(data), cap(s.mem), len(data)+1)
	}

	body := strings.Repeat("y", 300_000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush() // no Content-Length: chunked
		if r.URL.Path == "/short" {
			io.WriteString(w, "short")
			return
		}
		io.WriteString(w, body)
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
	for _, path := range []string{"/a", "/short", "/b"} {
		resp, err := c.Download(t.Context(), &Request{URL: path}, Download{})
		if err != nil {
			t.Fatal(err)
		}
		want := body
		if path == "/short" {
			want = "short"
		}
		if got := cap(resp.Spool.mem); got != len(want) {
			t.Errorf("%s: a chunked body of %d bytes in a buffer of %d, want its size", path, len(want), got)
		}
		if got := readSpool(t, resp); got != want {
			t.Errorf("%s: %d bytes kept, want the %d sent", path, len(got), len(want))
		}
	}
}

// TestDoUnpacksGzipItAskedFor: a host whose headers ask for gzip gets it
// compressed (the transport unpacks only what it asked for itself); Do's
// body is the JSON, as resty gave it, and counts against MaxBodyBytes
// unpacked.
func TestDoUnpacksGzipItAskedFor(t *testing.T) {
	const doc = `{"items":[1,2,3],"note":"unpacked"}`
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			t.Errorf("Accept-Encoding = %q, want the host's gzip", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		io.WriteString(gz, doc)
		gz.Close()
	})
	for _, tc := range []struct {
		maxBody int64
		want    string
	}{{0, doc}, {int64(len(doc)) - 1, ""}} {
		c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, MaxBodyBytes: tc.maxBody, Headers: map[string]string{"Accept-Encoding": "gzip"}})
		resp, err := c.Do(t.Context(), &Request{URL: "/doc"})
		if tc.want == "" {
			if !errors.Is(err, ErrBodyTooLarge) {
				t.Errorf("limit %d: Do = %v, want the body cap on the unpacked body", tc.maxBody, err)
			}
			continue
		}
		if err != nil || string(resp.Body) != tc.want {
			t.Fatalf("Do = %q, %v; want %q", resp.Body, err, tc.want)
		}
	}
}

// TestDoKeepsLargeBodiesInMemory: Do's body is returned in memory, so one
// over the few MiB a Download keeps in memory is read there too, never
// through a temporary file: a page of 5 MiB is fetched where no temporary
// file can be made (a read-only file system), as it was when resty read it,
// with an announced length and without one.
func TestDoKeepsLargeBodiesInMemory(t *testing.T) {
	doc := bytes.Repeat([]byte("x"), spillBytes+1<<20)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", fmt.Sprint(len(doc)))
		}
		w.Write(doc)
	})
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
	for _, path := range []string{"/sized", "/chunked"} {
		resp, err := c.Do(t.Context(), &Request{URL: path})
		if err != nil || !bytes.Equal(resp.Body, doc) {
			n := -1
			if resp != nil {
				n = len(resp.Body)
			}
			t.Errorf("%s: Do = %d bytes, %v; want the %d bytes", path, n, err, len(doc))
		}
	}
}
