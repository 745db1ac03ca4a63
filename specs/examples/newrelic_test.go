package examples_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// nrSim answers POST /graphql as New Relic's NerdGraph does (facts in
// testdata/newrelic.md): a user key in the API-Key header; the entity
// search actor.entitySearch(query) { count results(cursor) { nextCursor
// entities } }, 200 entities a page whatever is asked, nextCursor null on
// the last page, an opaque cursor; errors as a GraphQL `errors` list
// (message, path, extensions.errorClass) in a 200, beside `data` null or
// partial; a 429 past the concurrency limit. Entities leave optional
// fields out (alertSeverity where no alert is set up, tags where none).
type nrSim struct {
	key      string
	entities []map[string]any

	mu    sync.Mutex
	calls []nrCall
	// faults[cursor] are answered, in order, to the first requests for
	// the page at that cursor ("" the first page).
	faults map[string][]string
}

// nrCall is what one request asked for.
type nrCall struct {
	host, search, cursor string
	hasCursor            bool
}

func newNRSim(key string, n int) *nrSim {
	s := &nrSim{key: key, faults: map[string][]string{}}
	kinds := []struct{ domain, typ, entityType string }{
		{"APM", "APPLICATION", "APM_APPLICATION_ENTITY"},
		{"INFRA", "HOST", "INFRASTRUCTURE_HOST_ENTITY"},
		{"SYNTH", "MONITOR", "SYNTHETIC_MONITOR_ENTITY"},
		{"VIZ", "DASHBOARD", "DASHBOARD_ENTITY"},
	}
	for i := range n {
		k := kinds[i%len(kinds)]
		account := 1000 + i%3
		guid := base64.RawStdEncoding.EncodeToString([]byte(fmt.Sprintf("%d|%s|%s|%d", account, k.domain, k.typ, 5000+i)))
		e := map[string]any{"guid": guid, "name": fmt.Sprintf("%s %d", strings.ToLower(k.typ), i), "entityType": k.entityType,
			"domain": k.domain, "type": k.typ, "accountId": account, "reporting": i%5 != 0, "alertSeverity": "NOT_ALERTING",
			"permalink": "https://one.newrelic.com/redirect/entity/" + guid,
			"tags": []any{map[string]any{"key": "accountId", "values": []any{strconv.Itoa(account)}},
				map[string]any{"key": "env", "values": []any{"prod", "eu-1"}}}}
		switch {
		case i%7 == 0:
			delete(e, "alertSeverity") // no alert conditions: left out
		case i%7 == 1:
			e["alertSeverity"] = "CRITICAL"
		}
		if i%9 == 0 {
			delete(e, "tags")
		}
		s.entities = append(s.entities, e)
	}
	return s
}

// nrErr is one GraphQL error as NerdGraph shapes it.
func nrErr(class, msg string, path ...any) map[string]any {
	e := map[string]any{"message": msg, "extensions": map[string]any{"errorClass": class}}
	if path != nil {
		e["path"] = path
	}
	return e
}

// nrCursor is the opaque cursor of the page starting at offset.
func nrCursor(offset int) string {
	return base64.StdEncoding.EncodeToString([]byte("es-cursor:" + strconv.Itoa(offset)))
}

func (s *nrSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/graphql" {
		writeJSON(w, 404, map[string]any{"errors": []any{nrErr("NOT_FOUND", "Not Found")}})
		return
	}
	var body struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Query == "" {
		writeJSON(w, 400, map[string]any{"errors": []any{nrErr("BAD_USER_INPUT", "Must provide query string.")}})
		return
	}
	call := nrCall{host: r.Host}
	call.search, _ = body.Variables["query"].(string)
	cur, hasCursor := body.Variables["cursor"]
	if hasCursor && cur != nil {
		call.cursor, call.hasCursor = fmt.Sprint(cur), true
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	fault := ""
	if f := s.faults[call.cursor]; len(f) > 0 {
		fault, s.faults[call.cursor] = f[0], f[1:]
	}
	s.mu.Unlock()

	if r.Header.Get("API-Key") != s.key {
		// A key NerdGraph does not know is an error in a 200.
		writeJSON(w, 200, map[string]any{"data": map[string]any{"actor": nil},
			"errors": []any{nrErr("UNAUTHORIZED", "Invalid API key", "actor")}})
		return
	}
	nullSearch := map[string]any{"actor": map[string]any{"entitySearch": nil}}
	switch fault {
	case "429":
		writeJSON(w, 429, map[string]any{"errors": []any{nrErr("TOO_MANY_REQUESTS", "Too many concurrent requests")}})
		return
	case "503":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(503)
		_, _ = w.Write([]byte("<html><body>Service Unavailable</body></html>"))
		return
	case "timeout":
		writeJSON(w, 200, map[string]any{"data": nullSearch,
			"errors": []any{nrErr("TIMEOUT", "Entity search timed out", "actor", "entitySearch")}})
		return
	case "nodata":
		writeJSON(w, 200, map[string]any{"data": nil})
		return
	case "server":
		writeJSON(w, 200, map[string]any{"data": nullSearch,
			"errors": []any{nrErr("SERVER_ERROR", "An error occurred resolving this field", "actor", "entitySearch", "results")}})
		return
	}
	if !strings.Contains(body.Query, "entitySearch(query: $query)") || !strings.Contains(body.Query, "results(cursor: $cursor)") {
		writeJSON(w, 200, map[string]any{"errors": []any{nrErr("GRAPHQL_VALIDATION_FAILED", "the simulator knows no such query")}})
		return
	}
	if call.search == "" {
		writeJSON(w, 200, map[string]any{"data": nullSearch,
			"errors": []any{nrErr("BAD_USER_INPUT", "An entity search requires a query", "actor", "entitySearch")}})
		return
	}
	from := 0
	if call.hasCursor {
		raw, err := base64.StdEncoding.DecodeString(call.cursor)
		n, aerr := strconv.Atoi(strings.TrimPrefix(string(raw), "es-cursor:"))
		if err != nil || aerr != nil || n <= 0 || n > len(s.entities) {
			writeJSON(w, 200, map[string]any{"data": nullSearch,
				"errors": []any{nrErr("BAD_USER_INPUT", "Invalid cursor", "actor", "entitySearch", "results")}})
			return
		}
		from = n
	}
	end := min(from+200, len(s.entities))
	page := make([]any, 0, end-from)
	for _, e := range s.entities[from:end] {
		page = append(page, e)
	}
	var next any
	if end < len(s.entities) && fault != "stop" {
		next = nrCursor(end)
	}
	answer := map[string]any{"data": map[string]any{"actor": map[string]any{"entitySearch": map[string]any{
		"count": len(s.entities), "results": map[string]any{"nextCursor": next, "entities": page}}}}}
	if fault == "partial" && len(page) > 3 {
		// An entity NerdGraph could not read: a null in the list, its
		// error beside the data.
		page[3] = nil
		answer["errors"] = []any{nrErr("SERVER_ERROR", "Entity could not be loaded", "actor", "entitySearch", "results", "entities", 3)}
	}
	writeJSON(w, 200, answer)
}

func (s *nrSim) asked() []nrCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]nrCall(nil), s.calls...)
}

const nrKey = "NRAK-SIMULATORONLYKEY0123456789AB"

// New Relic: every entity of a search over three pages (200, 200, 37)
// written once, with one row per tag value; the cursor sent back at
// variables.cursor, no request after the page whose nextCursor is null;
// the pages checked against `count`; a 429 (the concurrency limit), a
// 503 and a TIMEOUT error in a 200 retried; the key never printed.
func TestNewRelic(t *testing.T) {
	t.Parallel()
	sim := newNRSim(nrKey, 437)
	sim.faults[nrCursor(200)] = []string{"429", "timeout"}
	sim.faults[nrCursor(400)] = []string{"503"}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	sets := map[string]string{"api_url": srv.URL, "api_key": nrKey, "search": "domain IN ('APM', 'INFRA')"}
	r := runVendor(t, "newrelic.yaml", sets, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var want, wantTags []string
	for _, e := range sim.entities {
		want = append(want, e["guid"].(string))
		tags, _ := e["tags"].([]any)
		for _, tag := range tags {
			tm := tag.(map[string]any)
			for _, v := range tm["values"].([]any) {
				wantTags = append(wantTags, e["guid"].(string)+"|"+tm["key"].(string)+"|"+v.(string))
			}
		}
	}
	sameIDs(t, "entities, each once", want, ids(r.rows["entities"], "guid"))
	var gotTags []string
	for _, row := range r.rows["entity_tags"] {
		gotTags = append(gotTags, fmt.Sprint(row["guid"], "|", row["key"], "|", row["value"]))
	}
	sameIDs(t, "tag values, each once", wantTags, gotTags)

	var cursors []string
	for _, c := range sim.asked() {
		if c.search != "domain IN ('APM', 'INFRA')" {
			t.Errorf("a request searched %q, want the search input", c.search)
		}
		cursors = append(cursors, c.cursor)
	}
	// The first page; the second refused (429), timed out, then served;
	// the third refused (503), then served; none after it.
	wantCursors := []string{"", nrCursor(200), nrCursor(200), nrCursor(200), nrCursor(400), nrCursor(400)}
	if strings.Join(cursors, ",") != strings.Join(wantCursors, ",") {
		t.Errorf("cursors sent %q, want %q", cursors, wantCursors)
	}
	if s := stream(r.res, "entities"); s.Retries != 3 {
		t.Errorf("entities retries = %d, want 3 (the 429, the TIMEOUT, the 503)", s.Retries)
	}
	for _, row := range r.rows["entities"] {
		if row["name"] == "application 0" && (row["alert_severity"] != nil || row["reporting"] != false || row["account_id"] != float64(1000)) {
			t.Errorf("entity 0 row = %v, want no alert severity, not reporting, account 1000", row)
		}
	}
	noDuplicates(t, r)
	noSecret(t, r, nrKey)
}

// regionTransport sends every request to a simulator at sim, noting the
// host it was meant for.
type regionTransport struct {
	sim   *url.URL
	mu    sync.Mutex
	hosts []string
}

func (rt *regionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.hosts = append(rt.hosts, req.URL.Scheme+"://"+req.URL.Host)
	rt.mu.Unlock()
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = rt.sim.Scheme, rt.sim.Host
	return http.DefaultTransport.RoundTrip(out)
}

// New Relic's region picks NerdGraph's host: us (the default) and eu
// (any case) their own; any other region stops the run before a request
// is sent, naming the inputs it takes.
func TestNewRelicRegion(t *testing.T) {
	t.Parallel()
	sim := newNRSim(nrKey, 5)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	simURL, _ := url.Parse(srv.URL)
	for _, c := range []struct{ region, host string }{
		{"", "https://api.newrelic.com"}, {"eu", "https://api.eu.newrelic.com"}, {" EU ", "https://api.eu.newrelic.com"}, {"us", "https://api.newrelic.com"}, {"jp", ""},
	} {
		t.Run("region "+c.region, func(t *testing.T) {
			rt := &regionTransport{sim: simURL}
			sets := map[string]string{"api_key": nrKey}
			if c.region != "" {
				sets["region"] = c.region
			}
			r := runVendorOpts(t, "newrelic.yaml", sets, engine.RunOptions{DryRun: true, Transport: rt})
			if c.host == "" {
				failedRun(t, r, []string{"region-must-be-us-or-eu"})
				if len(rt.hosts) > 0 {
					t.Errorf("requests sent to %v with region %q", rt.hosts, c.region)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("run: %v", r.err)
			}
			if len(rt.hosts) == 0 || rt.hosts[0] != c.host {
				t.Errorf("requests sent to %v, want %s", rt.hosts, c.host)
			}
			if n := len(r.rows["entities"]); n != 5 {
				t.Errorf("%d entities written, want 5", n)
			}
			noSecret(t, r, nrKey)
		})
	}
}

// New Relic's errors fail the run loudly, naming the stream, with
// NerdGraph's error class and words, never as an empty or short page: an
// error in a 200 with data null mid-search, a partial page (a null entity
// and an error beside the data) not written, a TIMEOUT on every try, a
// search whose nextCursor is null before `count` was listed (the server
// stopped early), a page with neither data nor errors, an unknown key;
// the key never printed.
func TestNewRelicErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		key     string
		faults  map[string][]string
		want    []string
		partial string // a page (by cursor) none of whose entities may be written
	}{
		{name: "an error in a 200 mid-search", faults: map[string][]string{nrCursor(200): {"server"}},
			want: []string{"entities", "SERVER_ERROR: An error occurred resolving this field (at actor.entitySearch.results)"}},
		{name: "a partial page", faults: map[string][]string{nrCursor(200): {"partial"}}, partial: nrCursor(200),
			want: []string{"entities", "SERVER_ERROR: Entity could not be loaded (at actor.entitySearch.results.entities.3)"}},
		{name: "a TIMEOUT on every try", faults: map[string][]string{"": {"timeout", "timeout", "timeout", "timeout", "timeout", "timeout"}},
			want: []string{"entities", "TIMEOUT: Entity search timed out"}},
		{name: "the server stopping early", faults: map[string][]string{nrCursor(200): {"stop"}},
			want: []string{"entities", "paging ended after 400 items, but page 1 said the list holds 437", "stopped early"}},
		{name: "no data and no error", faults: map[string][]string{nrCursor(400): {"nodata"}},
			want: []string{"entities", "page 3", "cannot iterate over .data.actor.entitySearch.results.entities: it is null"}},
		{name: "an unknown key", key: "NRAK-WRONGWRONGWRONGWRONGWRONG0000",
			want: []string{"entities", "UNAUTHORIZED: Invalid API key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newNRSim(nrKey, 437)
			for k, v := range c.faults {
				sim.faults[k] = v
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			key := nrKey
			if c.key != "" {
				key = c.key
			}
			r := runVendor(t, "newrelic.yaml", map[string]string{"api_url": srv.URL, "api_key": key}, time.Time{})
			failedRun(t, r, c.want)
			if r.res != nil && r.res.Summary != nil && r.res.Summary.Complete["entities"] {
				t.Errorf("entities is complete after a failure")
			}
			if c.partial != "" {
				written := map[string]bool{}
				for _, g := range ids(r.rows["entities"], "guid") {
					written[g] = true
				}
				for _, e := range sim.entities[200:400] {
					if written[e["guid"].(string)] {
						t.Fatalf("entity %v of the partial page was written", e["name"])
					}
				}
			}
			noSecret(t, r, nrKey, key)
		})
	}
}
