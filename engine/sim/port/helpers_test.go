package port

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// client is a minimal Port client for tests.
type client struct {
	t     *testing.T
	srv   *Server
	token string
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func newClient(t *testing.T, srv *Server) *client {
	t.Helper()
	c := &client{t: t, srv: srv}
	r := c.do(http.MethodPost, "/v1/auth/access_token", map[string]any{"clientId": srv.ClientID(), "clientSecret": srv.ClientSecret()})
	if r.status != http.StatusOK {
		t.Fatalf("auth: status %d: %s", r.status, r.raw)
	}
	c.token = r.body["accessToken"].(string)
	return c
}

func (c *client) do(method, path string, body any) resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.srv.URL()+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out.body); err != nil {
			c.t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
		}
	}
	return out
}

func (c *client) must(method, path string, body any, want int) resp {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.raw)
	}
	return r
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// catalogFixture creates the small blueprint set most tests use.
func catalogFixture(t *testing.T, c *client) {
	t.Helper()
	c.must("POST", "/v1/blueprints", map[string]any{
		"identifier": "app", "title": "App",
		"schema": map[string]any{"properties": map[string]any{
			"name":    map[string]any{"type": "string"},
			"created": map[string]any{"type": "string", "format": "date-time"},
			"home":    map[string]any{"type": "string", "format": "url"},
			"mail":    map[string]any{"type": "string", "format": "email"},
			"size":    map[string]any{"type": "number"},
			"on":      map[string]any{"type": "boolean"},
			"meta":    map[string]any{"type": "object"},
			"tags":    map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"tier":    map[string]any{"type": "string", "enum": []any{"gold", "silver"}},
		}},
	}, http.StatusCreated)
	c.must("POST", "/v1/blueprints", map[string]any{
		"identifier": "env", "title": "Env",
		"schema": map[string]any{"properties": map[string]any{"kind": map[string]any{"type": "string"}}, "required": []any{"kind"}},
		"relations": map[string]any{
			"app":  map[string]any{"target": "app", "required": true, "many": false},
			"deps": map[string]any{"target": "env", "many": true},
		},
	}, http.StatusCreated)
}

// with returns a copy of c that reports to t (for subtests).
func (c *client) with(t *testing.T) *client {
	cc := *c
	cc.t = t
	return &cc
}
