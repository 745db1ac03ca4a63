package examples_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// snSim answers ServiceNow's Table API (GET /api/now[/v1|/v2]/table/{table})
// as an instance does (facts in testdata/servicenow.md): {"result": [...]}
// paged by sysparm_limit (default 10000) and sysparm_offset, with
// X-Total-Count and a Link header (first, prev, next, last on one line;
// none when one page holds everything); ACLs applied after the page is cut,
// so a page holds fewer records than asked, or none, while more follow;
// ORDERBY/ORDERBYDESC clauses of sysparm_query, with ties (and everything,
// without ORDERBY) in an order that changes from one request to the next;
// values as strings, "" for empty, times "2006-01-02 15:04:05" in UTC (in
// the user's time zone as display values); references as {link, value}
// unless sysparm_exclude_reference_link; an empty list a 404 "No Record
// found" on v1 and an empty result on v2; errors {"error": {message,
// detail}, "status": "failure"}; basic auth; rate limit headers on every
// answer.
type snSim struct {
	user, password string
	tables         map[string][]map[string]string
	hidden         map[string]bool // sys_ids the user's ACLs hide
	added          bool            // the incident created mid-read
	// OAuth (the password grant at /oauth_token.do): the client's
	// credentials, and each access token issued with the requests it
	// has left before the instance takes it for expired.
	clientID, clientSecret string
	tokens                 map[string]int
	logins                 int
	tokenLife              int

	mu       sync.Mutex
	requests []*http.Request
	// faults[path + "|" + sysparm_offset] are answered, in order, to the
	// first requests for that page: a status (429 with Retry-After; 430
	// stands for a 429 of a full semaphore queue, without it), or
	// snCancelled / snTruncated.
	faults map[string][]int
}

const (
	snUser      = "svc.ferry"
	snPassword  = "SimOnly-Sn-Pa55word-0123456789"
	snCancelled = -1 // a 200: part of the page, then the cancelled transaction's error
	snTruncated = -2 // the same, cut off inside a record
	snSemaphore = 430
	// snQueued is a 202 with no body: a request queued behind too many of
	// its session's (a client that sends the session cookie back).
	snQueued = 202
	// snHibernating is a 200 HTML page: a developer instance asleep.
	snHibernating = -3
	// snClientSecret is the OAuth client's secret.
	snClientSecret = "SimOnlyClientSecret-abcdef012345"
	snRefs         = "assignment_group caller_id"
)

// snID is a sys_id: 32 hex digits, in no relation to creation order.
func snID(kind string, i int) string {
	h := sha256.Sum256([]byte(kind + strconv.Itoa(i)))
	return hex.EncodeToString(h[:16])
}

func newSNSim() *snSim {
	s := &snSim{user: snUser, password: snPassword, tables: map[string][]map[string]string{"incident": nil, "cmdb_ci": nil}, hidden: map[string]bool{}, faults: map[string][]int{},
		clientID: "sim-client-0001", clientSecret: snClientSecret, tokens: map[string]int{}, tokenLife: 1 << 30}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return base.Add(d).Format("2006-01-02 15:04:05") }
	// 3,345 incidents, imported seven a second (ties in sys_created_on,
	// one tie across the boundary of the third and fourth pages); the
	// ACLs hide every 13th, and every one of the second page of 1,000 (a
	// page with no record and a next link).
	for i := range 3345 {
		created := time.Duration(i/7) * time.Second
		r := map[string]string{"sys_id": snID("inc", i), "number": fmt.Sprintf("INC%07d", i+1), "short_description": fmt.Sprintf("Printer %d jams", i),
			"state": strconv.Itoa(1 + i%7), "priority": strconv.Itoa(1 + i%5), "active": strconv.FormatBool(i%7 < 6),
			"assignment_group": snID("grp", i%4), "caller_id": snID("usr", i%50), "opened_at": at(created),
			"resolved_at": at(created + 90*time.Minute), "sys_created_on": at(created), "sys_updated_on": at(created + 2*time.Hour)}
		if i%7 < 6 {
			r["resolved_at"] = "" // not resolved: empty, not null
		}
		if i%9 == 0 {
			r["assignment_group"] = ""
		}
		s.tables["incident"] = append(s.tables["incident"], r)
		if i%13 == 5 || i >= 994 && i < 2002 {
			s.hidden[r["sys_id"]] = true
		}
	}
	classes := []string{"cmdb_ci_linux_server", "cmdb_ci_win_server", "cmdb_ci_app_server", "cmdb_ci_database"}
	for i := range 1500 {
		created := time.Duration(i/9) * time.Second // a tie across the page boundary
		r := map[string]string{"sys_id": snID("ci", i), "name": fmt.Sprintf("host-%04d", i), "sys_class_name": classes[i%4],
			"operational_status": strconv.Itoa(1 + i%2), "install_status": "1", "ip_address": fmt.Sprintf("10.0.%d.%d", i/250, i%250),
			"serial_number": fmt.Sprintf("SN%08d", i), "sys_created_on": at(created), "sys_updated_on": at(created + time.Hour)}
		if i%6 == 0 {
			r["ip_address"], r["serial_number"] = "", ""
		}
		s.tables["cmdb_ci"] = append(s.tables["cmdb_ci"], r)
	}
	return s
}

func snError(w http.ResponseWriter, status int, message string, detail any) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": message, "detail": detail}, "status": "failure"})
}

// order sorts rows by the ORDERBY clauses of query; rows the clauses do
// not tell apart come in an order drawn from salt (a request's offset),
// as a database plan may change between two requests.
func snOrder(rows []map[string]string, query, salt string) ([]map[string]string, bool) {
	type key struct {
		field string
		desc  bool
	}
	var keys []key
	for _, c := range strings.Split(query, "^") {
		switch {
		case c == "":
		case strings.HasPrefix(c, "ORDERBYDESC"):
			keys = append(keys, key{strings.TrimPrefix(c, "ORDERBYDESC"), true})
		case strings.HasPrefix(c, "ORDERBY"):
			keys = append(keys, key{strings.TrimPrefix(c, "ORDERBY"), false})
		default:
			return nil, false // the simulator reads no filters
		}
	}
	shuffled := func(r map[string]string) string {
		h := sha256.Sum256([]byte(salt + r["sys_id"]))
		return hex.EncodeToString(h[:8])
	}
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b map[string]string) int {
		for _, k := range keys {
			if c := strings.Compare(a[k.field], b[k.field]); c != 0 {
				if k.desc {
					return -c
				}
				return c
			}
		}
		return strings.Compare(shuffled(a), shuffled(b))
	})
	return out, true
}

// snDisplay renders a stored value as the display value the API user
// sees: date-times in the user's time zone (America/Los_Angeles here),
// in the same layout, so nothing in the answer tells them apart.
func snDisplay(v string) string {
	t, err := time.Parse("2006-01-02 15:04:05", v)
	if err != nil {
		return v
	}
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		la = time.FixedZone("PST", -8*3600)
	}
	return t.In(la).Format("2006-01-02 15:04:05")
}

func (s *snSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := r.URL.Path + "|" + q.Get("sysparm_offset")
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	fault := 0
	if f := s.faults[key]; len(f) > 0 {
		fault, s.faults[key] = f[0], f[1:]
	}
	s.mu.Unlock()

	switch fault {
	case snQueued:
		// One session's queue overflowed: accepted, never processed.
		w.WriteHeader(http.StatusAccepted)
		return
	case snHibernating:
		// A developer instance asleep answers its wake-up page as a 200.
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><head><title>Instance Hibernating page</title></head><body>Your instance is hibernating</body></html>"))
		return
	}
	if fault == snSemaphore {
		// A full API_INT queue: refused before any rule is applied.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(429)
		_, _ = w.Write([]byte("<html><body>Too Many Requests</body></html>"))
		return
	}
	reset := time.Now().Truncate(time.Hour).Add(time.Hour)
	h := w.Header()
	h.Set("X-RateLimit-Limit", "50000")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Rule", snID("rule", 1))
	if r.URL.Path == "/oauth_token.do" {
		s.token(w, r)
		return
	}
	if !s.authorized(r) {
		snError(w, 401, "User Not Authenticated", "Required to provide Auth information")
		return
	}
	switch {
	case fault == http.StatusTooManyRequests:
		// A rate limit rule's hour is spent: Retry-After says until when.
		h.Set("Retry-After", "1")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
		snError(w, 429, "Rate limit exceeded", "Rate limit exceeded for rule "+snID("rule", 1))
		return
	case fault > 0:
		snError(w, fault, http.StatusText(fault), nil)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	version := "v1"
	if len(parts) == 5 && parts[0] == "api" && parts[1] == "now" && parts[3] == "table" {
		version, parts = parts[2], []string{"api", "now", "table", parts[4]}
	}
	if len(parts) != 4 || parts[0] != "api" || parts[1] != "now" || parts[2] != "table" || version != "v1" && version != "v2" {
		snError(w, 400, "Requested URI does not represent any resource", nil)
		return
	}
	table := parts[3]
	s.mu.Lock()
	if table == "incident" && q.Get("sysparm_offset") == "1000" && !s.added {
		// Created while the table is read.
		s.added = true
		s.tables["incident"] = append(s.tables["incident"], map[string]string{"sys_id": snID("inc", 99999), "number": "INC9999999",
			"short_description": "Created mid-read", "state": "1", "priority": "2", "active": "true", "assignment_group": "", "caller_id": snID("usr", 1),
			"opened_at": "2025-06-01 12:00:00", "resolved_at": "", "sys_created_on": "2025-06-01 12:00:00", "sys_updated_on": "2025-06-01 12:00:00"})
	}
	rows, ok := s.tables[table]
	rows = slices.Clone(rows)
	s.mu.Unlock()
	if !ok {
		snError(w, 400, "Invalid table "+table, nil)
		return
	}
	limit, ok := queryInt(q, "sysparm_limit", 10000, 1)
	if !ok {
		snError(w, 400, "Invalid sysparm_limit", nil)
		return
	}
	offset, ok := queryInt(q, "sysparm_offset", 0, 0)
	if !ok {
		snError(w, 400, "Invalid sysparm_offset", nil)
		return
	}
	rows, ok = snOrder(rows, q.Get("sysparm_query"), strconv.Itoa(offset))
	if !ok {
		snError(w, 400, "The simulator reads only ORDERBY clauses", nil)
		return
	}
	from, end := min(offset, len(rows)), min(offset+limit, len(rows))
	var result []map[string]any
	for _, row := range rows[from:end] {
		if s.hidden[row["sys_id"]] {
			continue // ACLs apply after the page is cut
		}
		out := map[string]any{}
		for f, v := range row {
			stored, display := v, snDisplay(v)
			switch q.Get("sysparm_display_value") {
			case "true":
				out[f] = display
			case "all":
				out[f] = map[string]any{"display_value": display, "value": stored}
			default:
				out[f] = stored
			}
			if strings.Contains(snRefs, f) && v != "" && q.Get("sysparm_exclude_reference_link") != "true" {
				out[f] = map[string]any{"link": "http://" + r.Host + "/api/now/table/sys_user_group/" + v, "value": v}
			}
		}
		result = append(result, out)
	}
	if len(result) == 0 && len(rows) == 0 && version == "v1" {
		snError(w, 404, "No Record found", "Records matching query not found. Check query parameter or offset parameter")
		return
	}
	h.Set("X-Total-Count", strconv.Itoa(len(rows)))
	if len(rows) > limit {
		link := func(off int) string {
			u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
			lq := maps.Clone(q)
			lq.Set("sysparm_offset", strconv.Itoa(off))
			lq.Set("sysparm_limit", strconv.Itoa(limit))
			u.RawQuery = lq.Encode()
			return "<" + u.String() + ">"
		}
		links := []string{link(0) + `;rel="first"`}
		if offset > 0 {
			links = append(links, link(max(offset-limit, 0))+`;rel="prev"`)
		}
		if end < len(rows) {
			links = append(links, link(end)+`;rel="next"`)
		}
		links = append(links, link((len(rows)-1)/limit*limit)+`;rel="last"`)
		h.Set("Link", strings.Join(links, ","))
	}
	if result == nil {
		result = []map[string]any{}
	}
	switch fault {
	case snCancelled, snTruncated:
		// A quota rule cancelled the transaction while it wrote the page:
		// a 200, part of the records, then the error.
		b, _ := json.Marshal(result[:len(result)/2])
		body := `{"result":` + string(b)
		if fault == snTruncated {
			body = strings.TrimSuffix(body, "]")
			body = body[:len(body)-20]
		}
		body += `,"error":{"message":"Transaction cancelled: maximum execution time exceeded","detail":"Transaction cancelled: maximum execution time exceeded Check logs for error trace or enable glide.rest.debug property to verify REST request processing"},"status":"failure"}`
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(body))
		return
	}
	writeJSON(w, 200, map[string]any{"result": result})
}

// authorized accepts the user's basic credentials, or a bearer token
// issued by token that has not expired.
func (s *snSim) authorized(r *http.Request) bool {
	if user, pass, ok := r.BasicAuth(); ok {
		return user == s.user && pass == s.password
	}
	return spendBearer(&s.mu, s.tokens, r)
}

// token answers the OAuth password grant: a form with grant_type,
// client_id, client_secret, username and password.
func (s *snSim) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": "POST a form"})
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "password" || f.Get("client_id") != s.clientID || f.Get("client_secret") != s.clientSecret {
		writeJSON(w, 401, map[string]any{"error": "access_denied", "error_description": "access_denied"})
		return
	}
	if f.Get("username") != s.user || f.Get("password") != s.password {
		writeJSON(w, 401, map[string]any{"error": "server_error", "error_description": "access_denied"})
		return
	}
	s.mu.Lock()
	s.logins++
	tok := fmt.Sprintf("SimOnlyAccessToken%04d_%s", s.logins, snID("tok", s.logins)[:20])
	s.tokens[tok] = s.tokenLife
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": tok, "refresh_token": "SimOnlyRefresh" + snID("ref", 1)[:20], "scope": "useraccount", "token_type": "Bearer", "expires_in": 1799})
}

func (s *snSim) asked(path string) []*http.Request { return requestsTo(&s.mu, &s.requests, path) }

// visible are the sys_ids of table the user may read, as the test expects
// them written.
func (s *snSim) visible(table string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.tables[table] {
		if !s.hidden[r["sys_id"]] {
			out = append(out, r["sys_id"])
		}
	}
	return out
}

func snSets(url string) map[string]string {
	return map[string]string{"instance_url": url, "username": snUser, "password": snPassword}
}

// ServiceNow: every incident and configuration item the user may read
// written once: paged by the Link header over pages the ACLs shortened
// (one to nothing), ordered by creation and sys_id so that ties are read
// once and an incident created mid-read comes last; times stored in UTC,
// "" read as null; a 429 with Retry-After, a semaphore's 429 without it,
// a 500, a 200 that carries a cancelled transaction and a 202 with
// nothing done retried; the password never printed.
func TestServiceNow(t *testing.T) {
	t.Parallel()
	sim := newSNSim()
	sim.faults["/api/now/v2/table/incident|2000"] = []int{429, snSemaphore, snCancelled, 500}
	sim.faults["/api/now/v2/table/cmdb_ci|1000"] = []int{snCancelled, snQueued}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "servicenow.yaml", snSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	sameIDs(t, "incidents, each once", sim.visible("incident"), column(r.rows["incidents"], "sys_id"))
	sameIDs(t, "configuration items, each once", sim.visible("cmdb_ci"), column(r.rows["configuration_items"], "sys_id"))
	if !sim.added {
		t.Error("no incident was created mid-read")
	}
	byID := map[string]map[string]any{}
	for _, row := range r.rows["incidents"] {
		byID[fmt.Sprint(row["sys_id"])] = row
	}
	// Incident 6 (index 6, resolved): stored times are UTC; incident 1 is
	// not resolved (""), and has no assignment group at index 0.
	if row := byID[snID("inc", 6)]; row == nil || row["opened_at"] != "2024-01-01 00:00:00" || row["resolved_at"] != "2024-01-01 01:30:00" || row["active"] != "false" {
		t.Errorf("incident 6 row = %v, want its stored (UTC) times", row)
	}
	if row := byID[snID("inc", 1)]; row == nil || row["resolved_at"] != nil || row["assignment_group"] != snID("grp", 1) {
		t.Errorf("incident 1 row = %v, want resolved_at null (empty) and the group's sys_id", row)
	}
	if row := byID[snID("inc", 0)]; row == nil || row["assignment_group"] != nil {
		t.Errorf("incident 0 row = %v, want assignment_group null (empty)", row)
	}
	// 3,346 incidents at 1,000 a page: four pages, the third asked five
	// times (the 429, the semaphore's 429, the cancelled answer, the 500).
	if n := len(sim.asked("/api/now/v2/table/incident")); n != 8 {
		t.Errorf("%d incident requests, want 8", n)
	}
	if s := stream(r.res, "incidents"); s.Retries != 4 {
		t.Errorf("incidents retries = %d, want 4", s.Retries)
	}
	if s := stream(r.res, "configuration_items"); s.Retries != 2 {
		t.Errorf("configuration_items retries = %d, want 2 (the cancelled answer, the 202)", s.Retries)
	}
	noDuplicates(t, r)
	basic := base64.StdEncoding.EncodeToString([]byte(snUser + ":" + snPassword))
	noSecret(t, r, snPassword, basic)
}

// An empty table: the v2 path answers an empty result (v1 a 404), and the
// run writes no configuration item and succeeds.
func TestServiceNowEmptyTable(t *testing.T) {
	t.Parallel()
	sim := newSNSim()
	sim.tables["cmdb_ci"] = nil
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "servicenow.yaml", snSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	if n := len(r.rows["configuration_items"]); n != 0 {
		t.Errorf("%d configuration items, want none", n)
	}
	sameIDs(t, "incidents", sim.visible("incident"), column(r.rows["incidents"], "sys_id"))
}

// ServiceNow's errors, and a page cancelled on every attempt or cut off,
// fail the run naming the stream and the page; the password is never
// printed.
func TestServiceNowErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong password", sets: map[string]string{"password": "WrongWrongWrong-000000"},
			want: []string{"incidents", "401", "User Not Authenticated: Required to provide Auth information"}},
		{name: "a table the user may not read",
			faults: map[string][]int{"/api/now/v2/table/cmdb_ci|": {403}},
			want:   []string{"configuration_items", "403", "Forbidden"}},
		{name: "a transaction cancelled on every attempt",
			faults: map[string][]int{"/api/now/v2/table/cmdb_ci|1000": {snCancelled, snCancelled, snCancelled, snCancelled, snCancelled, snCancelled, snCancelled, snCancelled}},
			want:   []string{"configuration_items", "sysparm_offset=1000", "Transaction cancelled"}},
		{name: "a hibernating instance's page",
			faults: map[string][]int{"/api/now/v2/table/cmdb_ci|": {snHibernating}},
			want:   []string{"configuration_items", "200"}},
		{name: "a page cut off by a cancelled transaction",
			faults: map[string][]int{"/api/now/v2/table/cmdb_ci|1000": {snTruncated, snTruncated, snTruncated, snTruncated, snTruncated, snTruncated, snTruncated, snTruncated}},
			want:   []string{"configuration_items", "sysparm_offset=1000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newSNSim()
			sim.faults = c.faults
			if sim.faults == nil {
				sim.faults = map[string][]int{}
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := snSets(srv.URL)
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "servicenow.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, snPassword, sets["password"])
		})
	}
}

// The OAuth password grant the spec's comments describe, as a session
// login: the token asked once with the client's and the user's
// credentials, sent as a bearer token, asked again when the instance
// answers 401 to one it takes for expired; every record written once,
// no credential printed.
func TestServiceNowOAuth(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("servicenow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	basic := `  auth:
    type: basic
    username: ${ config.username }
    password: ${ config.password }
`
	session := `  auth:
    type: session
    login:
      path: /oauth_token.do
      body_format: form
      body: {grant_type: password, client_id: "${ config.client_id }", client_secret: "${ config.client_secret }", username: "${ config.username }", password: "${ config.password }"}
      token: .access_token
      expires_in: .expires_in
`
	inputs := `config:
  client_id:
    required: true
  client_secret:
    required: true
    secret: true
`
	if !strings.Contains(spec, basic) || !strings.Contains(spec, "config:\n") {
		t.Fatal("servicenow.yaml's auth block is not the one this test replaces")
	}
	spec = strings.Replace(strings.Replace(spec, basic, session, 1), "config:\n", inputs, 1)
	path := filepath.Join(t.TempDir(), "servicenow-oauth.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	sim := newSNSim()
	sim.tokenLife = 3 // the first token expires after three requests
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sets := snSets(srv.URL)
	sets["client_id"], sets["client_secret"] = sim.clientID, snClientSecret
	r := runVendor(t, path, sets, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	sameIDs(t, "incidents", sim.visible("incident"), column(r.rows["incidents"], "sys_id"))
	sameIDs(t, "configuration items", sim.visible("cmdb_ci"), column(r.rows["configuration_items"], "sys_id"))
	if sim.logins < 2 {
		t.Errorf("%d token requests, want a second after the first token expired", sim.logins)
	}
	for _, req := range sim.requests {
		if strings.HasPrefix(req.URL.Path, "/api/") && !strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ") {
			t.Errorf("%s sent without the bearer token", req.URL)
			break
		}
	}
	noSecret(t, r, snPassword, snClientSecret, "SimOnlyAccessToken")
}
