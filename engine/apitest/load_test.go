package apitest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadHumanitecYAML(t *testing.T) {
	f, err := Load("testdata/humanitec.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if f.Routes[3].Paginate.MaxSize != 100 || f.Routes[4].Latency.Duration != time.Millisecond {
		t.Fatalf("decoded fixture lost fields: %+v", f.Routes[3].Paginate)
	}
	s := startT(t, f)
	call := func(method, path string) response {
		t.Helper()
		req := newReq(t, method, s.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer test-token")
		return do(t, s.Client(), req)
	}

	if r := get(t, s, "/orgs/acme/apps"); r.status != 401 {
		t.Errorf("without token: status %d, want 401", r.status)
	}
	r := call("GET", "/orgs/acme/apps")
	want := `[{"created_at":"2024-05-01T10:00:00Z","id":"web","name":"Web","org_id":"acme"},` +
		`{"created_at":"2024-05-02","id":"api","name":"API","org_id":"acme"}]`
	if string(r.body) != want {
		t.Errorf("apps =\n%s\nwant\n%s", r.body, want)
	}
	if r.header.Get("X-Ratelimit-Limit") != "1000" {
		t.Errorf("rate_limit from the fixture not applied: %v", r.header)
	}

	r = call("GET", "/orgs/acme/apps/web/envs")
	want = `[{"id":"env-1","index":1,"name":"web environment 1","type":"development"},` +
		`{"id":"env-2","index":2,"name":"web environment 2","type":"development"}]`
	if string(r.body) != want {
		t.Errorf("envs =\n%s\nwant\n%s", r.body, want)
	}

	// Pipelines: three Link pages of 50, 50, 20.
	var sizes []int
	var all []string
	for next := s.URL() + "/orgs/acme/pipelines"; next != ""; {
		req := newReq(t, "GET", next, nil)
		req.Header.Set("Authorization", "Bearer test-token")
		r := do(t, s.Client(), req)
		got := ids(t, decode(t, r.body))
		sizes = append(sizes, len(got))
		all = append(all, got...)
		next = nextLink(r.header)
	}
	if diff := cmp.Diff([]int{50, 50, 20}, sizes); diff != "" {
		t.Errorf("pipeline pages (-want +got):\n%s", diff)
	}
	if all[0] != "pl-1" || all[119] != "pl-120" {
		t.Errorf("pipelines run %s..%s, want pl-1..pl-120", all[0], all[119])
	}

	// Resources: 429, then a truncated body, then the data.
	res := "/orgs/acme/apps/web/envs/env-1/resources"
	if r := call("GET", res); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Errorf("first call: %d Retry-After=%q, want 429 and 1", r.status, r.header.Get("Retry-After"))
	}
	req := newReq(t, "GET", s.URL()+res, nil)
	req.Header.Set("Authorization", "Bearer test-token")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("second call: read error %v, want unexpected EOF", err)
	}
	r = call("GET", res)
	if !strings.Contains(string(r.body), `"env_id":"env-1"`) || !strings.Contains(string(r.body), `"app_id":"web"`) {
		t.Errorf("third call: %s, want the templated resources", r.body)
	}

	r = call("POST", "/orgs/acme/apps/web/envs/env-1/resources/graph")
	if got := dig(decode(t, r.body), "params.env"); got != "env-1" {
		t.Errorf("echo params.env = %v, want env-1", got)
	}
}

func TestLoadHarnessJSON(t *testing.T) {
	s, err := StartFile("testdata/harness.json")
	if err != nil {
		t.Fatalf("StartFile: %v", err)
	}
	t.Cleanup(s.Close)

	r := get(t, s, "/ng/api/projects?accountIdentifier=acc")
	if r.status != 401 || dig(decode(t, r.body), "code") != "INVALID_TOKEN" {
		t.Errorf("without key: %d %s, want the fixture's 401 body", r.status, r.body)
	}
	req := newReq(t, "GET", s.URL()+"/ng/api/projects?accountIdentifier=acc&pageSize=5&pageIndex=1", nil)
	req.Header.Set("x-api-key", "pat.test")
	r = do(t, s.Client(), req)
	doc := decode(t, r.body)
	want := map[string]any{
		"status": "SUCCESS", "metaData": nil, "correlationId": "c-1",
		"data": map[string]any{
			"totalPages": jsonNum(2), "totalItems": jsonNum(7), "pageIndex": jsonNum(1), "pageSize": jsonNum(5),
			"pageItemCount": jsonNum(2), "empty": false,
			"content": []any{
				map[string]any{"project": map[string]any{"orgIdentifier": "default", "identifier": "p5", "name": "Project 5"}, "createdAt": jsonNum(1700000000000)},
				map[string]any{"project": map[string]any{"orgIdentifier": "default", "identifier": "p6", "name": "Project 6"}, "createdAt": jsonNum(1700000000000)},
			},
		},
	}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("projects page 1 (-want +got):\n%s", diff)
	}
	// The route needs accountIdentifier.
	req = newReq(t, "GET", s.URL()+"/ng/api/projects", nil)
	req.Header.Set("x-api-key", "pat.test")
	if r := do(t, s.Client(), req); r.status != 404 {
		t.Errorf("without accountIdentifier: %d, want 404", r.status)
	}
	r = do(t, s.Client(), newReq(t, "POST", s.URL()+"/v1/dora/mean-time", map[string]any{"page": 0, "page_size": 10}))
	if got := dig(decode(t, r.body), "_metadata.has_next"); got != false {
		t.Errorf("SEI has_next = %v, want false", got)
	}
}

func jsonNum(n int64) any { return json.Number(strconv.FormatInt(n, 10)) }

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, file, src, want string
	}{
		{"unknown key", "f.yaml", "routes:\n  - path: /x\n    paginat: {type: page}\n", "line 3: field paginat not found"},
		{"bad duration", "f.yaml", "latency: fast\nroutes: []\n", `line 1: duration: time: invalid duration "fast"`},
		{"numeric duration", "f.yaml", "latency: 20\nroutes: []\n", "duration"},
		{"invalid route", "f.yaml", "routes:\n  - path: /x\n    paginate: {type: cursor}\n", "routes[0]: paginate: cursor needs token_path"},
		{"auth without carrier", "f.yaml", "auth: {value: x}\n", "auth: set header or query"},
		{"json unknown key", "f.json", `{"routes": [{"path": "/x", "stauts": 200}]}`, `unknown field "stauts"`},
		{"json duration", "f.json", `{"latency": 5}`, "duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Load() error = %v, want one naming the file and containing %q", err, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestRunFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.yaml")
	if err := os.WriteFile(path, []byte("routes:\n  - path: /hello\n    body: {hi: there}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- RunFromFile(ctx, path, func(u string) { urls <- u }) }()
	base := <-urls
	resp, err := http.Get(base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"hi":"there"}` {
		t.Errorf("body = %s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunFromFile = %v, want nil after cancel", err)
	}

	called := false
	err = RunFromFile(t.Context(), filepath.Join(dir, "nope.yaml"), func(string) { called = true })
	if err == nil || called {
		t.Errorf("missing fixture: err %v, ready called %v; want an error and no call", err, called)
	}
}

// TestDocFixture keeps the fixture example in the package documentation valid.
func TestDocFixture(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(src), "// # Fixture file\n//\n")
	block, _, ok2 := strings.Cut(block, "\n//\n")
	if !ok || !ok2 {
		t.Fatal("fixture example not found in doc.go")
	}
	var yml strings.Builder
	for _, line := range strings.Split(block, "\n") {
		yml.WriteString(strings.TrimPrefix(line, "//\t") + "\n")
	}
	f, err := Parse([]byte(yml.String()))
	if err != nil {
		t.Fatalf("doc example: %v\n%s", err, yml.String())
	}
	if len(f.Routes) != 4 {
		t.Errorf("doc example has %d routes, want 4", len(f.Routes))
	}
}
