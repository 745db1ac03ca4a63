package examples_test

import (
	"encoding/json"
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

// linearSim answers POST /graphql as Linear's GraphQL API does (facts in
// testdata/linear.md): a JSON body {query, variables}; a personal API key
// in Authorization as it is, an OAuth token as "Bearer <token>", anything
// else (a personal key with "Bearer" too) a 400 AUTHENTICATION_ERROR;
// connections paged by `first` (50 when not given, above 250 an error,
// never a capped page) and `after`, the id of the last node read, from
// pageInfo { hasNextPage endCursor }; archived entities left out unless
// includeArchived is true; variables coerced to their declared types;
// errors as a GraphQL `errors` list with extensions.code, beside a `data`
// that is null or partial; every answer carrying the request and
// complexity budgets (X-RateLimit-Requests-*, X-RateLimit-Complexity-*,
// resets in epoch milliseconds) and X-Complexity, a refused request a
// 400 RATELIMITED. It knows two operations, the workspace's teams and a
// team's issues, and answers every field of a node whatever the
// selection, except an issue's labels, cut at the query's labels(first).
type linearSim struct {
	key, oauth string
	teams      []map[string]any
	// issues[team id] are its issues, oldest first, archived ones too.
	issues map[string][]map[string]any

	mu    sync.Mutex
	calls []linearCall
	// faults["teams|" + after] and faults["issues|" + team id + "|" +
	// after] are answered, in order, to the first requests for that page.
	faults map[string][]string
	// Until spentUntil every request is refused for the budget spent
	// (spentKind: requests or complexity).
	spentUntil time.Time
	spentKind  string
	refused    map[string]int // requests refused for a spent budget, by page
	// notBefore[page] is the reset its last refusal named; early counts
	// the pages sent again before it.
	notBefore map[string]time.Time
	early     int
	used      int
}

// linearCall is what one request asked for.
type linearCall struct {
	op, team, after string
	first           any
	archived        any
	refused         bool // for a spent budget
}

// linearID is a Linear-style UUID for n.
func linearID(kind byte, n int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8000-%012x", n, kind, n%0xfff, n)
}

func newLinearSim(key, oauth string) *linearSim {
	s := &linearSim{key: key, oauth: oauth, issues: map[string][]map[string]any{}, faults: map[string][]string{}, refused: map[string]int{}, notBefore: map[string]time.Time{}}
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02T15:04:05.000Z") }
	n := 0
	// 120 teams (three pages of 50, the last short; one archived);
	// issues: 260 on the first (six pages of 50, every sixth archived,
	// so hidden without includeArchived), exactly 100 on the second (two
	// full pages, the second with hasNextPage false and an endCursor),
	// none on the third, i%5 on the others.
	for i := range 120 {
		id := linearID('t', i)
		key := fmt.Sprintf("T%d", i)
		t := map[string]any{"id": id, "key": key, "name": fmt.Sprintf("Team %d", i), "private": i%10 == 3,
			"createdAt": ts(time.Duration(i) * time.Hour), "updatedAt": ts(time.Duration(i)*time.Hour + time.Minute), "archivedAt": nil}
		if i == 117 {
			t["archivedAt"] = ts(2000 * time.Hour)
		}
		s.teams = append(s.teams, t)
		count := map[int]int{0: 260, 1: 100, 2: 0}[i]
		if i > 2 {
			count = i % 5
		}
		list := []map[string]any{}
		for j := range count {
			n++
			list = append(list, linearIssue(n, key, j+1, ts(time.Duration(j)*time.Minute), i == 0 && j%6 == 5))
		}
		s.issues[id] = list
	}
	return s
}

func linearIssue(n int, team string, number int, created string, archived bool) map[string]any {
	is := map[string]any{"id": linearID('i', n), "identifier": fmt.Sprintf("%s-%d", team, number), "number": number,
		"title": fmt.Sprintf("Issue %d", number), "priority": number % 5, "estimate": nil,
		"createdAt": created, "updatedAt": created, "completedAt": nil, "canceledAt": nil, "archivedAt": nil,
		"url":      fmt.Sprintf("https://linear.example/acme/issue/%s-%d", team, number),
		"state":    map[string]any{"name": "Todo", "type": "unstarted"},
		"assignee": map[string]any{"id": linearID('u', number%7), "name": "Ada"},
		"labels":   []string{}}
	if number%3 == 0 {
		is["state"] = map[string]any{"name": "Done", "type": "completed"}
		is["completedAt"], is["estimate"] = created, 2.5
		is["labels"] = []string{"Bug", "Backend"}
	}
	if number%7 == 0 {
		is["assignee"] = nil // unassigned
	}
	if archived {
		is["archivedAt"] = created
	}
	return is
}

// linearErr is one GraphQL error as Linear shapes it.
func linearErr(code, typ, msg string, path ...any) map[string]any {
	e := map[string]any{"message": msg, "extensions": map[string]any{"code": code, "type": typ, "userError": code != "INTERNAL_SERVER_ERROR",
		"userPresentableMessage": msg}}
	if path != nil {
		e["path"] = path
	}
	return e
}

var linearLabelsFirst = regexp.MustCompile(`labels\(first:\s*(\d+)\)`)

func (s *linearSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/graphql" {
		writeJSON(w, 400, map[string]any{"errors": []any{linearErr("BAD_REQUEST", "invalid input", "GET query missing.")}})
		return
	}
	auth := r.Header.Get("Authorization")
	if auth != s.key && (s.oauth == "" || auth != "Bearer "+s.oauth) {
		writeJSON(w, 400, map[string]any{"errors": []any{linearErr("AUTHENTICATION_ERROR", "authentication error", "Authentication required, not authenticated")}})
		return
	}
	var body struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Query == "" {
		writeJSON(w, 400, map[string]any{"errors": []any{linearErr("BAD_REQUEST", "invalid input", "Must provide query string.")}})
		return
	}
	call := linearCall{first: body.Variables["first"], archived: body.Variables["includeArchived"]}
	after := body.Variables["after"]
	if after != nil {
		call.after = fmt.Sprint(after)
	}
	switch {
	case strings.Contains(body.Query, "teams("):
		call.op = "teams"
	case strings.Contains(body.Query, "team(id: $teamId)"):
		call.op = "issues"
		call.team, _ = body.Variables["teamId"].(string)
	default:
		writeJSON(w, 400, map[string]any{"errors": []any{linearErr("GRAPHQL_VALIDATION_FAILED", "graphql error", "the simulator knows no such query")}})
		return
	}
	key := call.op + "|" + call.after
	if call.op == "issues" {
		key = call.op + "|" + call.team + "|" + call.after
	}
	s.mu.Lock()
	now := time.Now()
	fault := ""
	// A refused request does not use up the page's fault: it is still
	// answered to the page's next request.
	if f := s.faults[key]; len(f) > 0 && !now.Before(s.spentUntil) {
		fault, s.faults[key] = f[0], f[1:]
	}
	if fault == "requests" || fault == "complexity" {
		// The bucket is empty until the next whole second but one.
		s.spentUntil, s.spentKind = now.Add(2*time.Second).Truncate(time.Second), fault
	}
	if t, ok := s.notBefore[key]; ok && now.Before(t) {
		s.early++
	}
	spent := now.Before(s.spentUntil)
	if spent {
		s.refused[key]++
		s.notBefore[key] = s.spentUntil
	}
	call.refused = spent
	s.calls = append(s.calls, call)
	spentUntil, kind := s.spentUntil, s.spentKind
	s.used++
	used := s.used
	s.mu.Unlock()

	h := w.Header()
	window := now.Add(time.Hour).UnixMilli()
	h.Set("X-RateLimit-Requests-Limit", "5000")
	h.Set("X-RateLimit-Requests-Remaining", strconv.Itoa(5000-used))
	h.Set("X-RateLimit-Requests-Reset", strconv.FormatInt(window, 10))
	h.Set("X-RateLimit-Complexity-Limit", "3000000")
	h.Set("X-RateLimit-Complexity-Remaining", strconv.Itoa(3000000-used*60))
	h.Set("X-RateLimit-Complexity-Reset", strconv.FormatInt(window, 10))
	if spent {
		// Only the spent bucket's reset names the end of the wait; the
		// other one's names the end of its own window, an hour away.
		if kind == "requests" {
			h.Set("X-RateLimit-Requests-Remaining", "0")
			h.Set("X-RateLimit-Requests-Reset", strconv.FormatInt(spentUntil.UnixMilli(), 10))
		} else {
			h.Set("X-RateLimit-Complexity-Remaining", "40")
			h.Set("X-RateLimit-Complexity-Reset", strconv.FormatInt(spentUntil.UnixMilli(), 10))
		}
		writeJSON(w, 400, map[string]any{"errors": []any{linearErr("RATELIMITED", "ratelimited", "Rate limit exceeded")}})
		return
	}
	switch fault {
	case "":
	case "500":
		writeJSON(w, 500, map[string]any{"errors": []any{linearErr("INTERNAL_SERVER_ERROR", "internal error", "Internal server error")}})
		return
	case "502":
		h.Set("Content-Type", "text/html")
		w.WriteHeader(502)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		return
	}

	invalid := func(msg string) {
		writeJSON(w, 400, map[string]any{"errors": []any{linearErr("GRAPHQL_VALIDATION_FAILED", "graphql error", msg)}})
	}
	// Variables are coerced to the types the query declares.
	first := 50
	switch v := body.Variables["first"].(type) {
	case nil:
	case float64:
		if v != float64(int(v)) {
			invalid(fmt.Sprintf("Variable \"$first\" got invalid value %v; Int cannot represent non-integer value: %v", v, v))
			return
		}
		first = int(v)
	default:
		invalid(fmt.Sprintf("Variable \"$first\" got invalid value %q; Int cannot represent non-integer value: %q", fmt.Sprint(v), fmt.Sprint(v)))
		return
	}
	if first < 0 || first > 250 {
		writeJSON(w, 400, map[string]any{"errors": []any{linearErr("INVALID_INPUT", "invalid input", "Argument Validation Error: first must not be greater than 250", call.op)}})
		return
	}
	if after != nil {
		if _, ok := after.(string); !ok {
			invalid(fmt.Sprintf("Variable \"$after\" got invalid value %v; String cannot represent a non string value", after))
			return
		}
	}
	archived := false
	switch v := body.Variables["includeArchived"].(type) {
	case nil:
	case bool:
		archived = v
	default:
		invalid(fmt.Sprintf("Variable \"$includeArchived\" got invalid value %v; Boolean cannot represent a non boolean value", v))
		return
	}

	var list []map[string]any
	switch call.op {
	case "teams":
		list = s.teams
	case "issues":
		s.mu.Lock()
		l, known := s.issues[call.team]
		list = slices.Clone(l)
		s.mu.Unlock()
		if !known {
			writeJSON(w, 200, map[string]any{"data": map[string]any{"team": nil},
				"errors": []any{linearErr("INVALID_INPUT", "invalid input", "Entity not found: Team - Could not find referenced Team.", "team")}})
			return
		}
	}
	if !archived {
		list = slices.DeleteFunc(slices.Clone(list), func(m map[string]any) bool { return m["archivedAt"] != nil })
	}
	from := 0
	if call.after != "" {
		i := slices.IndexFunc(list, func(m map[string]any) bool { return m["id"] == call.after })
		if i < 0 {
			writeJSON(w, 400, map[string]any{"errors": []any{linearErr("INVALID_INPUT", "invalid input", "Argument Validation Error: invalid cursor", call.op)}})
			return
		}
		from = i + 1
	}
	end := min(from+first, len(list))
	labelsFirst := 50
	if m := linearLabelsFirst.FindStringSubmatch(body.Query); m != nil {
		labelsFirst, _ = strconv.Atoi(m[1])
	}
	nodes := make([]any, 0, end-from)
	for _, n := range list[from:end] {
		if call.op == "issues" {
			c := map[string]any{}
			for k, v := range n {
				c[k] = v
			}
			labels := n["labels"].([]string)
			ln := []any{}
			for _, l := range labels[:min(len(labels), labelsFirst)] {
				ln = append(ln, map[string]any{"name": l})
			}
			c["labels"] = map[string]any{"nodes": ln, "pageInfo": map[string]any{"hasNextPage": len(labels) > labelsFirst}}
			nodes = append(nodes, c)
			continue
		}
		nodes = append(nodes, n)
	}
	var endCursor any
	if end > from {
		endCursor = list[end-1]["id"]
	}
	conn := map[string]any{"pageInfo": map[string]any{"hasNextPage": end < len(list), "endCursor": endCursor}, "nodes": nodes}
	h.Set("X-Complexity", strconv.Itoa(1+len(nodes)*3))
	answer := map[string]any{}
	if call.op == "teams" {
		answer["data"] = map[string]any{"teams": conn}
	} else {
		answer["data"] = map[string]any{"team": map[string]any{"issues": conn}}
	}
	if fault == "partial" && len(nodes) > 3 {
		// A node Linear could not read is a null in the list, its error
		// beside the data: the page is not whole.
		nodes[3] = nil
		answer["errors"] = []any{linearErr("FORBIDDEN", "forbidden", "You don't have access to this entity", call.op, "nodes", 3)}
	}
	writeJSON(w, 200, answer)
}

// asked lists the calls of operation op (and, for issues, team id) that
// were not refused for a spent budget (which ones are depends on what
// ran at the same time).
func (s *linearSim) asked(op, team string) []linearCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []linearCall
	for _, c := range s.calls {
		if c.op == op && (team == "" || c.team == team) && !c.refused {
			out = append(out, c)
		}
	}
	return out
}

const (
	linearKey   = "lin_api_SimulatorOnlyKey0123456789abcdefghijklmnop"
	linearOAuth = "lin_oauth_SimulatorOnlyAccessToken0123456789abcdef"
)

// Linear: every team over three cursor pages and every issue of every
// team each written once, archived issues too (includeArchived sent as
// true), each chain ending on hasNextPage false (no request after a last
// page that still has an endCursor), the cursor sent back at
// variables.after and `first` a number; a spent request budget (400
// RATELIMITED, X-RateLimit-Requests-Remaining 0) on a teams page and a
// spent complexity budget on an issues page each waited out to their
// own reset (epoch milliseconds), none sent again before it; a 500 with a
// GraphQL error and a 502 from the edge retried; the key never printed.
func TestLinear(t *testing.T) {
	t.Parallel()
	sim := newLinearSim(linearKey, "")
	t0, t1, t5 := sim.teams[0]["id"].(string), sim.teams[1]["id"].(string), sim.teams[5]["id"].(string)
	sim.faults["teams|"+sim.teams[49]["id"].(string)] = []string{"requests"}
	sim.faults["issues|"+t0+"|"+sim.issues[t0][149]["id"].(string)] = []string{"complexity"}
	sim.faults["issues|"+t0+"|"+sim.issues[t0][49]["id"].(string)] = []string{"500"}
	sim.faults["issues|"+t5+"|"] = []string{"502"}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	sets := map[string]string{"api_url": srv.URL, "api_key": linearKey, "page_size": "50"}
	r := runVendor(t, "linear.yaml", sets, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var wantTeams, wantIssues []string
	archived := 0
	for _, team := range sim.teams {
		wantTeams = append(wantTeams, team["id"].(string))
		for _, is := range sim.issues[team["id"].(string)] {
			wantIssues = append(wantIssues, is["id"].(string))
			if is["archivedAt"] != nil {
				archived++
			}
		}
	}
	if archived == 0 {
		t.Fatal("the simulator holds no archived issue")
	}
	sameIDs(t, "teams, each once", wantTeams, ids(r.rows["teams"], "id"))
	sameIDs(t, "issues (archived ones too), each once", wantIssues, ids(r.rows["issues"], "id"))

	// Three team pages (the second served after its refusal).
	var afters []string
	for _, c := range sim.asked("teams", "") {
		afters = append(afters, c.after)
		if c.first != float64(50) || c.archived != true {
			t.Errorf("teams asked with first = %#v, includeArchived = %#v: want the number 50 and true", c.first, c.archived)
		}
	}
	if d := cmp.Diff([]string{"", sim.teams[49]["id"].(string), sim.teams[99]["id"].(string)}, afters); d != "" {
		t.Errorf("team pages by after (-want +got):\n%s", d)
	}
	// Served: team 0's six pages and the 500 before one of them; team
	// 1's two full pages and no third; team 2's one empty page; team 5's
	// 502 and its retry.
	for id, want := range map[string]int{t0: 7, t1: 2, sim.teams[2]["id"].(string): 1, t5: 2} {
		if n := len(sim.asked("issues", id)); n != want {
			t.Errorf("%d requests for team %s's issues, want %d", n, id, want)
		}
	}
	if sim.early > 0 {
		t.Errorf("%d pages sent again before the reset their refusal named", sim.early)
	}
	if len(sim.refused) < 2 {
		t.Errorf("%d pages refused for a spent budget, want at least 2 (requests, complexity)", len(sim.refused))
	}
	if s := stream(r.res, "teams"); s.Retries != 1 {
		t.Errorf("teams retries = %d, want 1 (the request budget)", s.Retries)
	}
	if s := stream(r.res, "issues"); s.Retries < 3 {
		t.Errorf("issues retries = %d, want at least 3 (the complexity budget, the 500, the 502)", s.Retries)
	}
	for _, row := range r.rows["issues"] {
		switch row["identifier"] {
		case "T0-6":
			if row["archived_at"] == nil || row["state"] != "Done" || row["labels"] != "Bug,Backend" || row["team_key"] != "T0" {
				t.Errorf("issue T0-6 row = %v, want archived, Done, labels Bug,Backend, team T0", row)
			}
		case "T0-7":
			if row["assignee"] != nil || row["assignee_id"] != nil {
				t.Errorf("issue T0-7 row = %v, want no assignee", row)
			}
		}
	}
	noDuplicates(t, r)
	noSecret(t, r, linearKey)
}

// Linear with an OAuth access token: sent as "Bearer <token>"
// (token_type oauth), every issue of a small workspace written once.
func TestLinearOAuth(t *testing.T) {
	t.Parallel()
	sim := newLinearSim("lin_api_NotTheOneUsedHere000000000000000000000000", linearOAuth)
	sim.teams = sim.teams[:4]
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "linear.yaml", map[string]string{"api_url": srv.URL, "api_key": linearOAuth, "token_type": "oauth"}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var want []string
	for _, team := range sim.teams {
		for _, is := range sim.issues[team["id"].(string)] {
			want = append(want, is["id"].(string))
		}
	}
	sameIDs(t, "issues, each once", want, ids(r.rows["issues"], "id"))
	noSecret(t, r, linearOAuth)
}

// Linear's errors fail the run loudly, with Linear's code and words,
// naming the stream and the team: a personal key sent as a bearer token,
// a partial page (a null node and an error beside the data) not written
// as if whole, `first` above 250, a team gone while its issues are read,
// a 500 on every attempt, an issue with more labels than asked; the key
// is never printed.
func TestLinearErrors(t *testing.T) {
	t.Parallel()
	sim0 := newLinearSim(linearKey, "")
	t0, t4 := sim0.teams[0]["id"].(string), sim0.teams[4]["id"].(string)
	cases := []struct {
		name    string
		sets    map[string]string
		faults  map[string][]string
		sim     func(*linearSim)
		want    []string
		partial bool // team 0's first page must not be written
	}{
		{name: "a wrong key", sets: map[string]string{"api_key": "lin_api_WrongWrongWrongWrongWrong000000000000000000"},
			want: []string{"teams", "400", "AUTHENTICATION_ERROR"}},
		{name: "a personal key sent as a bearer token", sets: map[string]string{"token_type": "oauth"},
			want: []string{"teams", "AUTHENTICATION_ERROR"}},
		{name: "a partial issues page", faults: map[string][]string{"issues|" + t0 + "|": {"partial"}},
			want: []string{"issues", t0, "FORBIDDEN: You don't have access to this entity (at issues.nodes.3)"}, partial: true},
		{name: "first above 250", sets: map[string]string{"page_size": "251"},
			want: []string{"teams", "INVALID_INPUT", "first must not be greater than 250"}},
		{name: "a team gone while read", sim: func(s *linearSim) { delete(s.issues, t4) },
			want: []string{"issues", t4, "Entity not found: Team"}},
		{name: "a 500 on every attempt", faults: map[string][]string{"issues|" + t4 + "|": {"500", "500", "500", "500", "500", "500"}},
			want: []string{"issues", t4, "500"}},
		{name: "an issue with more labels than asked", sim: func(s *linearSim) {
			is := s.issues[s.teams[6]["id"].(string)][0]
			labels := []string{}
			for i := range 51 {
				labels = append(labels, fmt.Sprintf("l%d", i))
			}
			is["labels"] = labels
		}, want: []string{"issues", "issue T6-1: more than 50 labels"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newLinearSim(linearKey, "")
			if c.faults != nil {
				sim.faults = c.faults
			}
			if c.sim != nil {
				c.sim(sim)
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "api_key": linearKey}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "linear.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			if c.partial {
				for _, row := range r.rows["issues"] {
					if row["team_id"] == t0 {
						t.Fatalf("an issue of the partial page was written: %v", row)
					}
				}
				if r.res.Summary.Complete["issues"] {
					t.Errorf("issues is complete after a partial page")
				}
			}
			noSecret(t, r, linearKey, sets["api_key"])
		})
	}
}
