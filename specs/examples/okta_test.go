package examples_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// oktaSim answers /api/v1/users, /api/v1/groups and
// /api/v1/groups/{id}/users as Okta's Management API does (facts from its
// API reference and "Rate limits"): JSON arrays paged by Link headers sent
// as separate header lines, rel="self" always and rel="next" (with an
// opaque `after` cursor) while there is more; limit at most 200 for users,
// 10000 for groups, 1000 for members (a larger one is served the most);
// the users list without search leaves out DEPROVISIONED users, and search
// takes `status eq "…"` clauses joined by or; X-Rate-Limit-Limit,
// -Remaining and -Reset (epoch seconds) on every answer, and past the
// budget a 429 (E0000047) without Retry-After; errors {errorCode,
// errorSummary, errorLink, errorId, errorCauses}; the token as
// `Authorization: SSWS …`. One budget covers the whole org here, in
// windows of a second (Okta's are per endpoint family, per minute).
type oktaSim struct {
	token  string
	budget int // requests per window
	users  []map[string]any
	groups []map[string]any
	member map[string][]string // group id -> user ids

	mu       sync.Mutex
	requests []*http.Request
	window   int64 // the epoch second of the current window
	used     int   // requests in it
	overrun  int   // 429s for a spent budget
	// faults[path + "|" + after] are answered, in order, to the first
	// requests for that page ("" is the first page's cursor).
	faults map[string][]int
}

var oktaStatuses = []string{"ACTIVE", "ACTIVE", "ACTIVE", "PROVISIONED", "STAGED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT", "SUSPENDED", "DEPROVISIONED"}

func newOktaSim(token string) *oktaSim {
	s := &oktaSim{token: token, budget: 20, member: map[string][]string{}, faults: map[string][]int{}}
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02T15:04:05.000Z") }
	for i := range 1100 {
		st := oktaStatuses[i%len(oktaStatuses)]
		u := map[string]any{"id": fmt.Sprintf("00u%017d", i), "status": st, "created": ts(time.Duration(i) * time.Hour),
			"activated": ts(time.Duration(i)*time.Hour + time.Minute), "statusChanged": ts(time.Duration(i)*time.Hour + time.Minute),
			"lastLogin": ts(time.Duration(i)*time.Hour + 2*time.Hour), "lastUpdated": ts(time.Duration(i)*time.Hour + 3*time.Hour),
			"passwordChanged": nil, "type": map[string]any{"id": "oty00000000000000001"},
			"profile": map[string]any{"firstName": fmt.Sprintf("First%d", i), "lastName": fmt.Sprintf("Last%d", i),
				"email": fmt.Sprintf("user%d@acme.example", i), "login": fmt.Sprintf("user%d@acme.example", i), "mobilePhone": nil},
			"_links": map[string]any{"self": map[string]any{"href": fmt.Sprintf("https://acme.okta.com/api/v1/users/00u%017d", i)}}}
		if st == "STAGED" {
			// Never activated, never signed in: null, not absent.
			u["activated"], u["statusChanged"], u["lastLogin"] = nil, nil, nil
		}
		s.users = append(s.users, u)
	}
	for g := range 31 {
		id := fmt.Sprintf("00g%017d", g)
		grp := map[string]any{"id": id, "created": ts(0), "lastUpdated": ts(time.Hour), "lastMembershipUpdated": ts(2 * time.Hour),
			"objectClass": []string{"okta:user_group"}, "type": "OKTA_GROUP",
			"profile": map[string]any{"name": fmt.Sprintf("team-%d", g), "description": nil}}
		if g == 0 {
			grp["type"] = "BUILT_IN"
			grp["profile"] = map[string]any{"name": "Everyone", "description": "All users in your organization"}
		}
		s.groups = append(s.groups, grp)
		for i, u := range s.users {
			if g == 0 || (g%7 != 0 && i%30 == g) {
				s.member[id] = append(s.member[id], u["id"].(string))
			}
		}
	}
	return s
}

func oktaError(w http.ResponseWriter, status int, code, summary string, causes ...string) {
	var cs []map[string]any
	for _, c := range causes {
		cs = append(cs, map[string]any{"errorSummary": c})
	}
	if cs == nil {
		cs = []map[string]any{}
	}
	writeJSON(w, status, map[string]any{"errorCode": code, "errorSummary": summary, "errorLink": code,
		"errorId": "oae" + strconv.Itoa(status) + "sim", "errorCauses": cs})
}

var oktaSearchClause = regexp.MustCompile(`^status eq "([A-Z_]+)"$`)

func (s *oktaSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now()
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	if sec := now.Unix(); sec != s.window {
		s.window, s.used = sec, 0
	}
	s.used++
	remaining := max(s.budget-s.used, 0)
	spent := s.used > s.budget
	if spent {
		s.overrun++
	}
	key := r.URL.Path + "|" + q.Get("after")
	fault := 0
	if f := s.faults[key]; len(f) > 0 && !spent {
		fault, s.faults[key] = f[0], f[1:]
	}
	window := s.window
	s.mu.Unlock()

	w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(s.budget))
	w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(window+1, 10))
	if spent || fault == http.StatusTooManyRequests {
		w.Header().Set("X-Rate-Limit-Remaining", "0")
		oktaError(w, 429, "E0000047", "API call exceeded rate limit due to too many requests.")
		return
	}
	if fault != 0 {
		oktaError(w, fault, "E0000009", "Internal Server Error")
		return
	}
	if r.Header.Get("Authorization") != "SSWS "+s.token {
		oktaError(w, 401, "E0000011", "Invalid token provided")
		return
	}
	var list []map[string]any
	maxLimit := 0
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/api/v1/users":
		maxLimit = 200
		statuses := map[string]bool{}
		if search, ok := q["search"]; ok {
			for _, clause := range strings.Split(search[0], " or ") {
				m := oktaSearchClause.FindStringSubmatch(clause)
				if m == nil {
					oktaError(w, 400, "E0000031", "Invalid search.", "search: could not parse "+clause)
					return
				}
				statuses[m[1]] = true
			}
		} else {
			for _, st := range oktaStatuses {
				statuses[st] = st != "DEPROVISIONED"
			}
		}
		for _, u := range s.users {
			if statuses[u["status"].(string)] {
				list = append(list, u)
			}
		}
	case r.URL.Path == "/api/v1/groups":
		maxLimit, list = 10000, s.groups
	case len(parts) == 5 && parts[2] == "groups" && parts[4] == "users":
		ids := s.member[parts[3]]
		if !slices.ContainsFunc(s.groups, func(g map[string]any) bool { return g["id"] == parts[3] }) {
			oktaError(w, 404, "E0000007", "Not found: Resource not found: "+parts[3]+" (UserGroup)")
			return
		}
		maxLimit = 1000
		for _, u := range s.users {
			if slices.Contains(ids, u["id"].(string)) {
				list = append(list, u)
			}
		}
	default:
		oktaError(w, 404, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	limit, ok := queryInt(q, "limit", maxLimit, 1)
	if !ok {
		oktaError(w, 400, "E0000001", "Api validation failed: limit", "limit: must be a positive integer")
		return
	}
	limit = min(limit, maxLimit)
	from := 0
	if after := q.Get("after"); after != "" {
		i := slices.IndexFunc(list, func(o map[string]any) bool { return o["id"] == after })
		if i < 0 {
			oktaError(w, 400, "E0000001", "Api validation failed: after", "after: unknown cursor")
			return
		}
		from = i + 1
	}
	end := min(from+limit, len(list))
	self := *r.URL
	self.Scheme, self.Host = "http", r.Host
	w.Header().Add("Link", "<"+self.String()+`>; rel="self"`)
	if end < len(list) {
		next := self
		nq := next.Query()
		nq.Set("after", list[end-1]["id"].(string))
		next.RawQuery = nq.Encode()
		w.Header().Add("Link", "<"+next.String()+`>; rel="next"`)
	}
	page := list[from:end]
	if page == nil {
		page = []map[string]any{}
	}
	writeJSON(w, 200, page)
}

func (s *oktaSim) asked(path string) []*http.Request {
	return requestsTo(&s.mu, &s.requests, path)
}

const oktaToken = "00aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789_Sim"

// Okta: every user (the DEPROVISIONED ones too, which the list leaves out
// without search), every group and every membership, each written once,
// over Link pages sent as separate header lines; the announced budget is
// kept (no request past it); a 429 and a 500 mid-chain are retried, not
// lost; the token is never printed.
func TestOkta(t *testing.T) {
	t.Parallel()
	sim := newOktaSim(oktaToken)
	sim.faults["/api/v1/users|"+sim.users[399]["id"].(string)] = []int{429}
	everyone := sim.groups[0]["id"].(string)
	sim.faults["/api/v1/groups/"+everyone+"/users|"+sim.users[999]["id"].(string)] = []int{500}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "okta.yaml", map[string]string{"org_url": srv.URL, "api_token": oktaToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantUsers []string
	for _, u := range sim.users {
		wantUsers = append(wantUsers, u["id"].(string))
	}
	gotUsers := ids(r.rows["users"], "id")
	slices.Sort(gotUsers)
	if d := cmp.Diff(wantUsers, gotUsers); d != "" {
		t.Errorf("users, each once (-want +got):\n%s", d)
	}
	var wantGroups []string
	var wantMembers []string
	for _, g := range sim.groups {
		id := g["id"].(string)
		wantGroups = append(wantGroups, id)
		for _, u := range sim.member[id] {
			wantMembers = append(wantMembers, id+"/"+u)
		}
	}
	if d := cmp.Diff(wantGroups, column(r.rows["groups"], "id")); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	var gotMembers []string
	for _, m := range r.rows["group_members"] {
		gotMembers = append(gotMembers, fmt.Sprint(m["group_id"], "/", m["user_id"]))
	}
	slices.Sort(wantMembers)
	slices.Sort(gotMembers)
	if d := cmp.Diff(wantMembers, gotMembers); d != "" {
		t.Errorf("group members, each once (-want +got):\n%s", d)
	}
	if n := len(sim.member[everyone]); n != 1100 {
		t.Fatalf("the simulator's Everyone group holds %d users, want 1100 (two pages)", n)
	}

	// 1100 users at 200 a page: six pages, and the 429 sent again.
	pages := sim.asked("/api/v1/users")
	if len(pages) != 7 {
		t.Errorf("%d user requests, want 7 (six pages of at most 200, one retried)", len(pages))
	}
	for i, p := range pages {
		if lim := p.URL.Query().Get("limit"); lim != "200" {
			t.Errorf("user request %d: limit=%q, want 200", i, lim)
		}
	}
	if n := len(sim.asked("/api/v1/groups/" + everyone + "/users")); n != 3 {
		t.Errorf("%d requests for Everyone's members, want 3 (two pages of 1000, one retried)", n)
	}
	if s := stream(r.res, "users"); s.Retries != 1 {
		t.Errorf("users retries = %d, want 1 (the 429)", s.Retries)
	}
	if s := stream(r.res, "group_members"); s.Retries != 1 {
		t.Errorf("group_members retries = %d, want 1 (the 500)", s.Retries)
	}
	sim.mu.Lock()
	overrun := sim.overrun
	sim.mu.Unlock()
	if overrun != 0 {
		t.Errorf("%d requests were sent with the budget in X-Rate-Limit-Remaining spent, want none (hold them until X-Rate-Limit-Reset)", overrun)
	}
	row := map[string]any{}
	for _, u := range r.rows["users"] {
		if u["id"] == sim.users[4]["id"] {
			row = u
		}
	}
	if row["status"] != "STAGED" || row["activated"] != nil || row["login"] != "user4@acme.example" {
		t.Errorf("staged user row = %v, want status STAGED, activated null, login user4@acme.example", row)
	}
	noSecret(t, r, oktaToken)
}

// Okta's errors fail the run with its code and summary, naming the stream;
// the token is never printed.
func TestOktaErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token", sets: map[string]string{"api_token": "00wrongwrongwrongwrongwrongwrong"},
			want: []string{"users", "401", "E0000011", "Invalid token provided"}},
		{name: "a 500 on every attempt",
			faults: map[string][]int{"/api/v1/groups|": {500, 500, 500, 500, 500, 500, 500, 500}},
			want:   []string{"groups", "500"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newOktaSim(oktaToken)
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"org_url": srv.URL, "api_token": oktaToken}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "okta.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, oktaToken, sets["api_token"])
		})
	}
}
