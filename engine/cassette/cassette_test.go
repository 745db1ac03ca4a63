package cassette

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

const (
	token   = "s3cr3t-t0ken"
	fetched = "fetched-access-token-77"
)

// api is a small API: a list with a Link to its second page (an absolute
// URL on the server itself), a form token call answering a fetched token,
// an answer that echoes the token, and a flaky endpoint (500, then 200).
func api(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var flaky, echoes atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
		w.Header().Set("X-Request-Id", fmt.Sprint(flaky.Load()))
		switch r.URL.Path {
		case "/items":
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Query().Get("page") == "2" {
				fmt.Fprint(w, `[{"id": 3}]`)
				return
			}
			w.Header().Set("Link", "<"+srv.URL+"/items?page=2&key="+url.QueryEscape(r.URL.Query().Get("key"))+`>; rel="next"`)
			fmt.Fprint(w, `[{"id": 1, "b": "x"}, {"id": 2, "a": 12345678901234567890}]`)
		case "/token":
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, `{"access_token": %q, "form": %q}`, fetched, body)
		case "/echo":
			// A per-response id, new each time, as Harness sends.
			fmt.Fprintf(w, `{"you_sent": %q, "self": %q, "correlationId": "%d"}`, r.Header.Get("Authorization"), srv.URL+"/echo", echoes.Add(1))
		case "/flaky":
			if flaky.Add(1) == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprint(w, "try again")
				return
			}
			fmt.Fprint(w, "fine, plain text")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &flaky
}

func values(base, secret string, known ...string) Values {
	return Values{
		Secrets: map[string]string{"api_token": secret},
		URLs:    map[string]string{"api_url": base},
		Known:   func() []string { return known },
	}
}

type call struct {
	method, url, body, contentType string
	header                         http.Header
}

func (c call) send(t *testing.T, rt http.RoundTripper) (int, http.Header, string, error) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), c.method, c.url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	req.Header.Set("User-Agent", "ferry")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b), nil
}

// session is what a run sends: the token in a header and a query, a form
// with the secret, a request repeated after a 500.
func session(base, secret string) []call {
	auth := http.Header{"Authorization": {"Bearer " + secret}}
	return []call{
		{method: "GET", url: base + "/items?key=" + url.QueryEscape(secret) + "&size=2", header: auth},
		{method: "GET", url: base + "/items?page=2&key=" + url.QueryEscape(secret), header: auth},
		{method: "POST", url: base + "/token", body: "grant_type=client_credentials&client_secret=" + url.QueryEscape(secret), contentType: "application/x-www-form-urlencoded"},
		{method: "GET", url: base + "/echo", header: http.Header{"Authorization": {"Bearer " + fetched}}},
		{method: "GET", url: base + "/flaky", header: auth},
		{method: "GET", url: base + "/flaky", header: auth},
		{method: "POST", url: base + "/missing", body: `{"b": 1, "a": "` + secret + `"}`, contentType: "application/json", header: auth},
	}
}

func record(t *testing.T, dir string) (*httptest.Server, []string) {
	t.Helper()
	srv, _ := api(t)
	rec := NewRecorder(dir, nil, values(srv.URL, token, fetched))
	var got []string
	for _, c := range session(srv.URL, token) {
		status, _, body, err := c.send(t, rec)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(status, " ", body))
	}
	st, err := rec.Save(true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Exchanges != 7 || st.Files != 6 {
		t.Errorf("Save stats = %+v, want 7 exchanges in 6 files (the repeated request once)", st)
	}
	return srv, got
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestNoSecretInCassette: neither the config secret (raw or escaped) nor a
// fetched token nor the recording host is in any file; placeholders are.
func TestNoSecretInCassette(t *testing.T) {
	dir := t.TempDir()
	srv, _ := record(t, dir)
	files := readDir(t, dir)
	var all strings.Builder
	for name, text := range files {
		all.WriteString(name + "\n" + text)
	}
	for _, leak := range []string{token, url.QueryEscape(token), fetched, strings.TrimPrefix(srv.URL, "http://")} {
		if strings.Contains(all.String(), leak) {
			t.Errorf("cassette holds %q:\n%s", leak, all.String())
		}
	}
	for _, want := range []string{
		`"url": "<config:api_url>/items?key=<secret:api_token>&size=2"`,
		`"Authorization": "Bearer <secret:api_token>"`,
		`"body_text": "grant_type=client_credentials&client_secret=<secret:api_token>"`,
		`"access_token": "<secret>"`,
		`"you_sent": "Bearer <secret>"`,
		`"correlationId": "<volatile>"`,
		`"Link": "<<config:api_url>/items?page=2&key=<secret:api_token>>; rel=\"next\""`,
		`"a": 12345678901234567890`,
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("cassette lacks %s:\n%s", want, all.String())
		}
	}
	for _, noise := range []string{`"Date"`, `"X-Request-Id"`, `"User-Agent"`} {
		if strings.Contains(all.String(), noise) {
			t.Errorf("cassette keeps the per-response header %s", noise)
		}
	}
}

// TestReRecordingGivesNoDiff: the same exchanges in another order give the
// same files, byte for byte; a file of an earlier recording that is no
// longer asked is removed, other files are left alone.
func TestReRecordingGivesNoDiff(t *testing.T) {
	dir := t.TempDir()
	record(t, dir)
	first := readDir(t, dir)
	stale := "GET_old_0123456789.json"
	keep := "notes.txt"
	for _, f := range []string{stale, keep} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv, _ := api(t)
	rec := NewRecorder(dir, nil, values(srv.URL, token, fetched))
	calls := session(srv.URL, token)
	slices.Reverse(calls[:4]) // another order, another host, the same requests
	for _, c := range calls {
		if _, _, _, err := c.send(t, rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rec.Save(true); err != nil {
		t.Fatal(err)
	}
	second := readDir(t, dir)
	if _, ok := second[stale]; ok {
		t.Errorf("the stale exchange %s was kept", stale)
	}
	if _, ok := second[keep]; !ok {
		t.Errorf("%s, not a cassette file, was removed", keep)
	}
	delete(second, keep)
	if len(first) != len(second) {
		t.Fatalf("files: %v, then %v", slices.Sorted(mapsKeys(first)), slices.Sorted(mapsKeys(second)))
	}
	for name, text := range first {
		if second[name] != text {
			t.Errorf("%s changed on re-recording:\n%s\n---\n%s", name, text, second[name])
		}
	}
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestReplay: another host, another secret value; every request is
// answered as recorded (the last answer of a repeated one), with the run's
// own base URL and secret put back into the answers.
func TestReplay(t *testing.T) {
	dir := t.TempDir()
	_, live := record(t, dir)
	const base, secret = "https://api.example.com", "another-secret"
	p, err := Open(dir, values(base, secret, fetched))
	if err != nil {
		t.Fatal(err)
	}
	calls := session(base, secret)
	for i, c := range calls {
		status, hdr, body, err := c.send(t, p)
		if err != nil {
			t.Errorf("%s %s: %v", c.method, c.url, err)
			continue
		}
		got := fmt.Sprint(status, " ", body)
		want := live[i]
		if i == 4 {
			want = live[5] // the last answer of the repeated request
		}
		switch {
		case i == 0:
			if link := hdr.Get("Link"); link != "<"+base+"/items?page=2&key="+secret+`>; rel="next"` {
				t.Errorf("Link = %q, want the run's base URL and secret back", link)
			}
			if !jsonEqual(t, body, `[{"id": 1, "b": "x"}, {"id": 2, "a": 12345678901234567890}]`) {
				t.Errorf("body = %s", body)
			}
		case i == 2:
			if !jsonEqual(t, body, `{"access_token": "<secret>", "form": "grant_type=client_credentials&client_secret=`+secret+`"}`) {
				t.Errorf("token = %s, want the fetched token as a placeholder and the run's secret back", body)
			}
		case i == 3:
			if !jsonEqual(t, body, `{"you_sent": "Bearer <secret>", "self": "`+base+`/echo", "correlationId": "<volatile>"}`) {
				t.Errorf("echo = %s", body)
			}
		case strings.HasPrefix(want, "200 {"), strings.HasPrefix(want, "200 ["):
			if !strings.HasPrefix(got, "200 ") || !jsonEqual(t, got[4:], strings.ReplaceAll(want[4:], token, secret)) {
				t.Errorf("call %d = %s, want %s", i, got, want)
			}
		default:
			if got != want {
				t.Errorf("call %d = %q, want %q", i, got, want)
			}
		}
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	x, ok1 := decodeJSON([]byte(a))
	y, ok2 := decodeJSON([]byte(b))
	return ok1 && ok2 && fmt.Sprint(x) == fmt.Sprint(y)
}

// TestMatching: query order, JSON key order and a stand-in secret do not
// matter; a request the cassette lacks fails, permanently, naming the
// closest recorded one and how it differs.
func TestMatching(t *testing.T) {
	dir := t.TempDir()
	record(t, dir)
	const base = "http://sim.test"
	p, err := Open(dir, values(base, "<secret:api_token>", fetched))
	if err != nil {
		t.Fatal(err)
	}
	auth := http.Header{"Authorization": {"Bearer <secret:api_token>"}}
	ok := []call{
		{method: "GET", url: base + "/items?size=2&key=%3Csecret%3Aapi_token%3E", header: auth},
		{method: "POST", url: base + "/missing", body: `{"a":"<secret:api_token>","b":1}`, contentType: "application/json", header: auth},
	}
	for _, c := range ok {
		if status, _, _, err := c.send(t, p); err != nil || status == 0 {
			t.Errorf("%s %s: %v", c.method, c.url, err)
		}
	}
	for _, tc := range []struct {
		c    call
		want string
	}{
		{call{method: "GET", url: base + "/items?size=3&key=x1234", header: auth},
			`the closest recorded request is GET <config:api_url>/items?key=<secret:api_token>&size=2 (GET_items_`},
		{call{method: "GET", url: base + "/items?size=3&key=x1234", header: auth},
			`which differs in query key: "x1234" here, "<secret:api_token>" recorded; query size: "3" here, "2" recorded`},
		{call{method: "GET", url: base + "/echo", header: http.Header{"Authorization": {"Bearer other-token"}}},
			`header Authorization: "Bearer other-token" here, "Bearer <secret>" recorded`},
		{call{method: "POST", url: base + "/missing", body: `{"a":"<secret:api_token>","b":2}`, contentType: "application/json", header: auth},
			`body: "{\"a\":\"<secret:api_token>\",\"b\":2}" here, "{\"a\":\"<secret:api_token>\",\"b\":1}" recorded`},
	} {
		_, _, _, err := tc.c.send(t, p)
		var miss *MissError
		if !errors.As(err, &miss) || !miss.Permanent() {
			t.Fatalf("%s %s: err = %v, want a permanent MissError", tc.c.method, tc.c.url, err)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not in the cassette "+dir) {
			t.Errorf("%s %s:\n got %v\nwant it to hold %s", tc.c.method, tc.c.url, err, tc.want)
		}
	}
}

func TestEmptyAndBrokenCassettes(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "nope"), Values{}); err == nil {
		t.Error("Open of a missing directory succeeded")
	}
	dir := t.TempDir()
	p, err := Open(dir, Values{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = call{method: "GET", url: "http://h/x"}.send(t, p)
	if err == nil || !strings.Contains(err.Error(), "holds no exchange") {
		t.Errorf("empty cassette: err = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "GET_x_0123456789.json"), []byte(`{"request": {"method": "GET", "url": "http://h/x"}, "response": {"status": 200, "body": {}, "body_text": "x"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Values{}); err == nil || !strings.Contains(err.Error(), "one of body") {
		t.Errorf("two bodies: err = %v", err)
	}
}

func TestReplaceURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://h/x", "<u>/x"},
		{"http://h", "<u>"},
		{`"http://h?a=1"`, `"<u>?a=1"`},
		{"http://h2/x http://h:8080 http://h.io http://h", "http://h2/x http://h:8080 http://h.io <u>"},
	} {
		if got := replaceURL(tc.in, "http://h", "<u>"); got != tc.want {
			t.Errorf("replaceURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A longer URL value wins over its prefix.
	red := Values{URLs: map[string]string{"base": "http://h/", "sei": "http://h/sei/api"}}.redactor()
	if got := red.text("http://h/sei/api/v1 http://h/ng"); got != "<config:sei>/v1 <config:base>/ng" {
		t.Errorf("text = %q", got)
	}
}

// TestFileNames: files are named by method, path and request hash, so a
// listing reads like the API.
func TestFileNames(t *testing.T) {
	r := &Request{Method: "GET", URL: "<config:api_url>/orgs/acme/apps/api%2Fv2/envs?page=2"}
	name := fileName(r, r.key())
	if !strings.HasPrefix(name, "GET_orgs_acme_apps_api_2Fv2_envs_") || !filePattern.MatchString(name) {
		t.Errorf("fileName = %q", name)
	}
	other := &Request{Method: "GET", URL: "<config:api_url>/orgs/acme/apps/api%2Fv2/envs?page=3"}
	if fileName(other, other.key()) == name {
		t.Error("two requests share a file name")
	}
	if !bytes.Equal([]byte(fileName(r, r.key())), []byte(name)) {
		t.Error("file name is not stable")
	}
}

// TestSaveRefuses: a secret the redaction cannot reach (here in a header
// name, which is not data and is kept as sent) stops the recording, and so
// does an answer too large to keep; neither leaves a file behind.
func TestSaveRefuses(t *testing.T) {
	const token = "Odd-Secret-1234" // already a canonical header name part
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/odd" {
			w.Header().Set("X-Echo-"+token, "1")
		}
		fmt.Fprint(w, strings.Repeat("x", 64))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path    string
		maxBody int64
		want    string
	}{
		{"/odd", DefaultMaxBody, "a secret is in the exchange in a form that cannot be replaced; nothing written"},
		{"/big", 10, "1 answers over 10 bytes were not recorded"},
	} {
		dir := filepath.Join(t.TempDir(), "rec")
		rec := NewRecorder(dir, nil, values(srv.URL, token))
		rec.maxBody = tc.maxBody
		_, _, body, err := call{method: "GET", url: srv.URL + tc.path}.send(t, rec)
		if err != nil || len(body) != 64 {
			t.Fatalf("%s: the run must get the whole answer: %q, %v", tc.path, body, err)
		}
		_, err = rec.Save(true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Save error = %v, want %q", tc.path, err, tc.want)
		}
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
			if strings.Contains(string(b), token) {
				t.Errorf("%s: %s holds the secret", tc.path, f.Name())
			}
		}
		if tc.path == "/odd" && len(files) != 0 {
			t.Errorf("%s: files written: %v", tc.path, files)
		}
	}
}

// TestPartialRecordingPrunesNothing: a run that failed asked only part of
// its requests; saving it writes what it got and removes nothing.
func TestPartialRecordingPrunesNothing(t *testing.T) {
	dir := t.TempDir()
	srv, _ := record(t, dir)
	before := readDir(t, dir)
	rec := NewRecorder(dir, nil, values(srv.URL, token, fetched))
	if _, _, _, err := session(srv.URL, token)[0].send(t, rec); err != nil {
		t.Fatal(err)
	}
	st, err := rec.Save(false)
	if err != nil || st.Removed != 0 {
		t.Fatalf("Save(false) = %+v, %v", st, err)
	}
	after := readDir(t, dir)
	if len(after) != len(before) {
		t.Errorf("a partial recording left %d files of %d", len(after), len(before))
	}
}

// A presigned link's signature is secret by its parameter's name: neither
// the answer that gives the link nor the request to it keeps it, and the
// request with another signature (a later job's link) replays.
func TestPresignedSignatureNotRecorded(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/job" {
			fmt.Fprintf(w, `{"files": [%q]}`, srv.URL+"/bucket/f.ndjson?X-Amz-Expires=60&X-Amz-Signature=abc123sig")
			return
		}
		fmt.Fprint(w, `{"id": 1}`+"\n")
	}))
	defer srv.Close()
	vals := values(srv.URL, token)
	vals.Params = func() []string { return []string{"x-amz-signature"} }
	dir := t.TempDir()
	rec := NewRecorder(dir, nil, vals)
	for _, c := range []call{{method: "GET", url: srv.URL + "/job"}, {method: "GET", url: srv.URL + "/bucket/f.ndjson?X-Amz-Expires=60&X-Amz-Signature=abc123sig"}} {
		if _, _, _, err := c.send(t, rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rec.Save(true); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for name, text := range readDir(t, dir) {
		all.WriteString(name + "\n" + text)
	}
	if strings.Contains(all.String(), "abc123sig") {
		t.Errorf("the cassette holds the signature:\n%s", all.String())
	}
	if !strings.Contains(all.String(), "X-Amz-Signature=<secret>") {
		t.Errorf("the cassette lacks the redacted link:\n%s", all.String())
	}
	p, err := Open(dir, vals)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body, err := call{method: "GET", url: srv.URL + "/bucket/f.ndjson?X-Amz-Expires=60&X-Amz-Signature=other456"}.send(t, p)
	if err != nil || status != 200 || body != `{"id":1}` {
		t.Errorf("replay = %d %q, %v; want the recorded file", status, body, err)
	}
}

// TestVolatileKeptWhenSent: an answer's per-response id is recorded as
// Volatile unless a request sent it back whole (a job polled by its id);
// a short value, or one inside a longer word, does not count as sent.
func TestVolatileKeptWhenSent(t *testing.T) {
	raws := []rawExchange{
		{method: "GET", url: "http://h/exports/job-7f3a?x=1", header: http.Header{"X-Trace": {"ab12cd34ef"}}},
		{method: "POST", url: "http://h/search", body: []byte(`{"after":"tok 99"}`)},
	}
	used := sentValues(raws)
	for v, want := range map[string]bool{
		"job-7f3a":   true,  // in a path
		"ab12cd34ef": true,  // in a header
		"tok 99":     true,  // in a body
		"1":          false, // too short to tell
		"job-7f":     false, // part of a longer id
		"b12cd34e":   false, // inside a word
		"r-123456":   false, // never sent
	} {
		if got := used(v); got != want {
			t.Errorf("sent %q = %v, want %v", v, got, want)
		}
	}
	red := Values{}.redactor()
	b, err := newBody([]byte(`{"requestId":"job-7f3a","traceId":"r-123456"}`), red, used)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b.JSON), `{"requestId":"job-7f3a","traceId":"<volatile>"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
}
