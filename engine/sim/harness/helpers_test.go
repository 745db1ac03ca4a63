package harness

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fakeClock is an injectable clock for rate-limit tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sim is a simulator behind a loopback httptest server.
type sim struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server

	mu      sync.Mutex // guards schemas
	schemas map[string]*jsonschema.Schema
}

func newSim(t *testing.T, acct *Account, opts Options) *sim {
	t.Helper()
	srv := NewServer(acct, opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &sim{t: t, srv: srv, ts: ts}
}

// ngQuery returns the minimal valid query for NG/CCM calls plus extra pairs.
func (s *sim) ngQuery(kv ...string) url.Values {
	q := url.Values{"accountIdentifier": {s.srv.Options().AccountID}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

func (s *sim) authNG() map[string]string {
	return map[string]string{"x-api-key": s.srv.Options().Token}
}

func (s *sim) authSEI() map[string]string {
	return map[string]string{"Authorization": "ApiKey " + s.srv.Options().SEIKey, "Content-Type": "application/json"}
}

func (s *sim) do(method, path string, q url.Values, hdr map[string]string, body []byte) (*http.Response, []byte) {
	s.t.Helper()
	u := s.ts.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.ts.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if name := s.contractSchema(path, resp.StatusCode); name != "" {
		if err := validate(s.schema(name), b); err != nil {
			s.t.Errorf("%s %s answered %d outside the contract %s: %v\nbody: %s", method, path, resp.StatusCode, name, err, truncate(b))
		}
	}
	return resp, b
}

// contractSchema names the schema every answer to path with status must
// satisfy, so each test's answers are checked against the recorded shapes.
func (s *sim) contractSchema(path string, status int) string {
	sei := s.srv.isSEIPath(path)
	switch {
	case status == http.StatusTooManyRequests:
		return "ng_error.json" // Harness's edge answers for every service
	case sei && status == http.StatusOK:
		return "sei_mean_time.json"
	case sei:
		return "sei_error.json"
	case status == http.StatusBadRequest:
		return "ng_failure.json"
	case status >= 400:
		return "ng_error.json"
	}
	switch strings.TrimPrefix(path, "/gateway") {
	case "/ng/api/projects":
		return "ng_projects.json"
	case "/ng/api/connectors/catalogue":
		return "ng_catalogue.json"
	case "/ccm/api/budgets":
		return "ccm_budgets.json"
	}
	return ""
}

// schema compiles a schema once per sim.
func (s *sim) schema(name string) *jsonschema.Schema {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schemas == nil {
		s.schemas = map[string]*jsonschema.Schema{}
	}
	if sch, ok := s.schemas[name]; ok {
		return sch
	}
	sch := loadSchema(s.t, name)
	s.schemas[name] = sch
	return sch
}

func (s *sim) get(path string, q url.Values) (*http.Response, []byte) {
	s.t.Helper()
	return s.do(http.MethodGet, path, q, s.authNG(), nil)
}

func (s *sim) postSEI(body string) (*http.Response, []byte) {
	s.t.Helper()
	return s.do(http.MethodPost, s.srv.SEIPrefix()+"/v1/dora/mean-time", nil, s.authSEI(), []byte(body))
}

func loadSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(filepath.Join("testdata", "schemas", name))
	if err != nil {
		t.Fatalf("compile schema %s: %v", name, err)
	}
	return sch
}

func validate(sch *jsonschema.Schema, body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// decode parses a JSON body into generic values.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", truncate(b), err)
	}
	return m
}

func truncate(b []byte) string {
	s := string(b)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, truncate(body))
	}
}

func mustContain(t *testing.T, body []byte, sub string) {
	t.Helper()
	if !strings.Contains(string(body), sub) {
		t.Errorf("body %s does not contain %q", truncate(body), sub)
	}
}
