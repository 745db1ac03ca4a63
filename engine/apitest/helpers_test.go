package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// startT starts a simulator and closes it when the test ends.
func startT(t testing.TB, f Fixture, opts ...Option) *Server {
	t.Helper()
	s, err := Start(f, opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func newReq(t testing.TB, method, url string, body any) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func get(t testing.TB, s *Server, path string) response {
	t.Helper()
	return do(t, s.Client(), newReq(t, "GET", s.URL()+path, nil))
}

func decode(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

func dig(v any, path string) any {
	got, _ := lookupPath(v, path)
	return got
}

// ids returns the "id" of every item of a JSON array.
func ids(t testing.TB, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("want a JSON array, got %T %v", v, v)
	}
	out := make([]string, 0, len(arr))
	for _, it := range arr {
		m, ok := it.(map[string]any)
		if !ok {
			t.Fatalf("want objects in the array, got %T", it)
		}
		out = append(out, fmt.Sprint(m["id"]))
	}
	return out
}

// numbered returns n items {"id": 0..n-1}.
func numbered(n int) []any {
	items := make([]any, n)
	for i := range items {
		items[i] = map[string]any{"id": i}
	}
	return items
}

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

// describe renders a recorded request as "METHOD /path?sorted-query body".
func describe(r Recorded) string {
	s := r.Method + " " + r.RawPath
	if q := r.Query.Encode(); q != "" {
		s += "?" + q
	}
	if len(r.Body) > 0 {
		s += " " + strings.TrimSpace(string(r.Body))
	}
	return s
}

func describeAll(rs []Recorded) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = describe(r)
	}
	return out
}

// nextLink returns the rel="next" target of a Link header.
func nextLink(h http.Header) string {
	for _, part := range strings.Split(h.Get("Link"), ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if ok && strings.Contains(params, `rel="next"`) {
			return strings.Trim(strings.TrimSpace(target), "<>")
		}
	}
	return ""
}
