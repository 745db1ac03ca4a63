package examples_test

import (
	"database/sql"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine"
)

// graphSim answers Microsoft Graph v1.0 and its identity platform as they
// behave (facts from Graph's docs, "Use delta query", "Paging",
// "Throttling", "Error responses", and the identity platform's client
// credentials flow; kept in testdata/msgraph-facts.md):
//   - POST /{tenant}/oauth2/v2.0/token, form-encoded grant_type
//     client_credentials, client_id, client_secret, scope
//     https://graph.microsoft.com/.default: {token_type, expires_in,
//     access_token}; a wrong secret is a 401 invalid_client (AADSTS7000215);
//   - an access token is refused with a 401 InvalidAuthenticationToken once
//     it expired (here after tokenUses requests, not by the clock);
//   - lists are {"@odata.context", "value": [...], "@odata.nextLink"} with
//     the full next URL ($skiptoken opaque) until the last page; $top at
//     most 999 and the server serves fewer (pageCap);
//   - /users/delta pages the same way; its last page carries
//     @odata.deltaLink (a $deltatoken) instead; asked later, that link
//     gives what changed since: users with every selected property (one
//     never set is left out), removed ones as {"id", "@removed": {reason}};
//     a user changed while a chain is read is listed again later in it;
//     a delta token whose state is gone is a 410 syncStateNotFound;
//   - 429 with Retry-After, 503 and 504 (Retry-After optional); errors
//     {"error": {"code", "message", "innerError"}}.
type graphSim struct {
	tenant, clientID, secret string
	tokenUses                int // requests an access token serves before it expires
	pageCap                  int // most items a users or groups page serves, whatever $top asks

	mu       sync.Mutex
	seq      int                       // the directory's change counter
	users    map[string]map[string]any // id -> properties (a user's seq in "_seq")
	order    []string                  // user ids, in creation order
	removed  map[string][2]any         // id -> {seq, reason}
	groups   []map[string]any
	members  map[string][]string // group id -> member ids (users, or a nested group)
	chains   map[string]*graphChain
	selects  map[string][]string // delta token -> the $select of the chain that gave it
	starts   []string            // see deltaAsks
	expired  map[string]bool     // delta tokens whose sync state is gone
	tokens   map[string]int      // access token -> requests served
	issued   int
	forms    []string // token requests' forms (secrets replaced)
	requests []*http.Request
	// faults[key] are answered, in order, to the first requests for a
	// page: key is path + "|" + the $skiptoken or $deltatoken ("" first).
	faults map[string][]int
	// during is called once with the chain, after its page number afterPage
	// was cut, to change the directory while the chain is read.
	during    func(c *graphChain)
	afterPage int
}

type graphChain struct {
	sel   []string // the first request's $select: later links keep it
	items []map[string]any
	top   int
	page  int
	delta bool
}

func newGraphSim() *graphSim {
	s := &graphSim{tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", clientID: "3f7c8f1e-0d1b-4a7e-9a1c-5f0b2f4d9e21",
		secret: "Qx8~sim.Secret_Value-0123456789abcdefGHIJ", tokenUses: 40, pageCap: 200,
		users: map[string]map[string]any{}, removed: map[string][2]any{}, members: map[string][]string{},
		chains: map[string]*graphChain{}, selects: map[string][]string{}, expired: map[string]bool{}, tokens: map[string]int{}, faults: map[string][]int{}}
	for i := range 1250 {
		s.addUser(i)
	}
	for g := range 30 {
		id := fmt.Sprintf("0a1b2c3d-0000-4000-8000-%012d", g)
		grp := map[string]any{"id": id, "displayName": fmt.Sprintf("Team %d", g), "mailEnabled": g%3 == 0, "securityEnabled": true,
			"groupTypes": []any{}}
		if g%5 == 0 {
			grp["groupTypes"] = []any{"Unified"}
		}
		s.groups = append(s.groups, grp)
		for i, uid := range s.order {
			if g == 0 || i%29 == g {
				s.members[id] = append(s.members[id], uid)
			}
		}
		if g > 0 && g%10 == 0 {
			s.members[id] = append(s.members[id], s.groups[0]["id"].(string)) // a nested group
		}
	}
	return s
}

// addUser adds user i, with mail and jobTitle only on some: properties
// never set are left out of delta answers.
func (s *graphSim) addUser(i int) string {
	s.seq++
	id := fmt.Sprintf("5d8f1a2b-%04d-4c3d-9e8f-%012d", i%10000, i)
	u := map[string]any{"id": id, "displayName": fmt.Sprintf("User %d", i), "userPrincipalName": fmt.Sprintf("user%d@contoso.onmicrosoft.com", i),
		"accountEnabled": i%17 != 0, "_seq": s.seq}
	if i%4 != 0 {
		u["mail"] = fmt.Sprintf("user%d@contoso.com", i)
	}
	if i%3 == 0 {
		u["jobTitle"] = "Engineer"
	}
	s.users[id] = u
	s.order = append(s.order, id)
	return id
}

// change sets a user's property (the caller holds mu).
func (s *graphSim) change(id, prop string, v any) {
	s.seq++
	s.users[id][prop] = v
	s.users[id]["_seq"] = s.seq
}

// remove deletes a user (the caller holds mu): "changed" is a soft delete.
func (s *graphSim) remove(id, reason string) {
	s.seq++
	delete(s.users, id)
	s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
	s.removed[id] = [2]any{s.seq, reason}
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"date": "2026-01-01T00:00:00", "request-id": "0000-sim", "client-request-id": "0000-sim"}}})
}

func (s *graphSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		s.token(w, r)
		return
	}
	q := r.URL.Query()
	key := r.URL.Path + "|" + q.Get("$skiptoken") + q.Get("$deltatoken")
	if f := s.faults[key]; len(f) > 0 {
		status := f[0]
		s.faults[key] = f[1:]
		if status != http.StatusGatewayTimeout {
			w.Header().Set("Retry-After", "1")
		}
		code := map[int]string{429: "TooManyRequests", 503: "serviceNotAvailable", 504: "UnknownError", 500: "generalException"}[status]
		graphError(w, status, code, "simulated "+http.StatusText(status))
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	used, known := s.tokens[tok]
	if !ok || !known {
		graphError(w, 401, "InvalidAuthenticationToken", "Access token is empty.")
		return
	}
	if used >= s.tokenUses {
		graphError(w, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return
	}
	s.tokens[tok] = used + 1
	base := "http://" + r.Host + "/v1.0"
	path := strings.TrimPrefix(r.URL.Path, "/v1.0")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/users/delta":
		s.delta(w, q, base)
	case path == "/groups":
		s.list(w, q, base, "/groups", s.groups, 999, "#Collection(microsoft.graph.group)")
	case len(parts) == 3 && parts[0] == "groups" && parts[2] == "members":
		var list []map[string]any
		for _, m := range s.members[parts[1]] {
			if _, isUser := s.users[m]; isUser {
				list = append(list, map[string]any{"@odata.type": "#microsoft.graph.user", "id": m})
			} else {
				list = append(list, map[string]any{"@odata.type": "#microsoft.graph.group", "id": m})
			}
		}
		s.list(w, q, base, path, list, 999, "#Collection(directoryObject)")
	default:
		graphError(w, 400, "BadRequest", "Resource not found for the segment '"+parts[0]+"'.")
	}
}

func (s *graphSim) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		writeJSON(w, 400, map[string]any{"error": "invalid_request"})
		return
	}
	f := r.PostForm
	s.forms = append(s.forms, strings.ReplaceAll(f.Encode(), s.secret, "SECRET"))
	switch {
	case !strings.HasPrefix(r.URL.Path, "/"+s.tenant+"/"):
		writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."})
	case f.Get("grant_type") != "client_credentials" || f.Get("scope") != "https://graph.microsoft.com/.default":
		writeJSON(w, 400, map[string]any{"error": "invalid_scope", "error_description": "AADSTS1002012: The provided value for scope is not valid."})
	case f.Get("client_id") != s.clientID || f.Get("client_secret") != s.secret:
		writeJSON(w, 401, map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
	default:
		s.issued++
		tok := fmt.Sprintf("eyJ0eXAiOiJKV1Qi.sim%04d.sig", s.issued)
		s.tokens[tok] = 0
		writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	}
}

// top is the page size a request asks for: $top, at most 999 (more is a 400).
func top(q map[string][]string, dflt int) (int, bool) {
	v := q["$top"]
	if len(v) == 0 {
		return dflt, true
	}
	n, err := strconv.Atoi(v[0])
	return n, err == nil && n >= 1 && n <= 999
}

// list serves a plain list paged by nextLink ($skiptoken: the offset,
// encoded).
func (s *graphSim) list(w http.ResponseWriter, q map[string][]string, base, path string, all []map[string]any, _ int, ctx string) {
	n, ok := top(q, 100)
	if !ok {
		graphError(w, 400, "Request_BadRequest", "Invalid value '"+strings.Join(q["$top"], "")+"' for query parameter '$top'.")
		return
	}
	from := 0
	if sk := q["$skiptoken"]; len(sk) > 0 {
		b, _ := base64.RawURLEncoding.DecodeString(sk[0])
		from, _ = strconv.Atoi(strings.TrimPrefix(string(b), "X'"))
	}
	end := min(from+min(n, s.pageCap), len(all))
	page := all[from:end]
	if page == nil {
		page = []map[string]any{} // an empty group's members: [], never null
	}
	body := map[string]any{"@odata.context": base + "/$metadata" + ctx, "value": page}
	if end < len(all) {
		body["@odata.nextLink"] = base + path + "?$top=" + strconv.Itoa(n) + "&$skiptoken=" + base64.RawURLEncoding.EncodeToString([]byte("X'"+strconv.Itoa(end)))
	}
	writeJSON(w, 200, body)
}

func (s *graphSim) delta(w http.ResponseWriter, q map[string][]string, base string) {
	var c *graphChain
	switch {
	case len(q["$skiptoken"]) > 0:
		c = s.chains[q["$skiptoken"][0]]
		if c == nil {
			graphError(w, 400, "Request_BadRequest", "Invalid skiptoken.")
			return
		}
	default:
		s.starts = append(s.starts, strings.Join(q["$deltatoken"], ""))
		since, sel := 0, q["$select"]
		if s.expired[strings.Join(q["$deltatoken"], "")] {
			graphError(w, 410, "syncStateNotFound", "The sync state generation is not found. Delta tokens are valid for a limited time.")
			return
		}
		if dt := q["$deltatoken"]; len(dt) > 0 {
			sel = s.selects[dt[0]]
			n, err := strconv.Atoi(strings.TrimPrefix(dt[0], "D"))
			if err != nil {
				graphError(w, 400, "Request_BadRequest", "Invalid deltatoken.")
				return
			}
			since = n
		}
		n, ok := top(q, 100)
		if !ok {
			graphError(w, 400, "Request_BadRequest", "Invalid value for query parameter '$top'.")
			return
		}
		c = &graphChain{top: n, delta: since > 0, sel: sel}
		for _, id := range s.order {
			if u := s.users[id]; u["_seq"].(int) > since {
				c.items = append(c.items, s.selected(u, sel))
			}
		}
		if since > 0 {
			for id, rm := range s.removed {
				if rm[0].(int) > since {
					c.items = append(c.items, map[string]any{"id": id, "@removed": map[string]any{"reason": rm[1]}})
				}
			}
		}
	}
	c.page++
	end := min(c.top, s.pageCap, len(c.items))
	page := append([]map[string]any{}, c.items[:end]...) // no change: [], never null
	c.items = c.items[end:]
	if s.during != nil && c.page == s.afterPage {
		s.during(c)
		s.during = nil
	}
	body := map[string]any{"@odata.context": base + "/$metadata#users(id,displayName)", "value": page}
	if len(c.items) > 0 {
		sk := fmt.Sprintf("S%d-%d", s.seq, len(s.chains))
		s.chains[sk] = c
		body["@odata.nextLink"] = base + "/users/delta?$skiptoken=" + sk
	} else {
		dt := "D" + strconv.Itoa(s.seq)
		s.selects[dt] = c.sel
		body["@odata.deltaLink"] = base + "/users/delta?$deltatoken=" + dt
	}
	writeJSON(w, 200, body)
}

// selected is a user as $select asks: the id and the selected properties
// that are set.
func (s *graphSim) selected(u map[string]any, sel []string) map[string]any {
	out := map[string]any{"id": u["id"]}
	for _, p := range strings.Split(strings.Join(sel, ","), ",") {
		if v, ok := u[p]; ok && p != "" {
			out[p] = v
		}
	}
	return out
}

// deltaAsks are the delta requests that were answered as a chain's
// start (not a fault): "" for a full one, else the $deltatoken.
func (s *graphSim) deltaAsks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.starts)
}

// graphRun runs msgraph.yaml into the SQLite file db, as vendorRun does a
// dry run.
func graphRun(t *testing.T, sim *graphSim, url, db string, opts engine.RunOptions) vendorRun {
	t.Helper()
	opts.Dest = "sqlite:" + db
	return runVendorOpts(t, "msgraph.yaml", map[string]string{"tenant_id": sim.tenant, "client_id": sim.clientID, "client_secret": sim.secret,
		"graph_url": url + "/v1.0", "login_url": url}, opts)
}

// query reads rows of the SQLite file db as strings joined by "|".
func query(t *testing.T, db, q string) []string {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			parts = append(parts, fmt.Sprint(v))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

// Graph: the first sync reads every user by delta query (capped pages,
// a 429, a 503 and a 504 retried, a user changed mid-read listed twice:
// the later one written), every group and membership, and saves the last
// page's deltaLink; the token is renewed when it expires; the next sync
// asks that deltaLink and writes only the changes, deletions as removals
// (the user's row kept); the secret and tokens are never printed.
func TestMSGraph(t *testing.T) {
	t.Parallel()
	sim := newGraphSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "graph.db")
	changed := sim.order[3]
	sim.afterPage, sim.during = 2, func(c *graphChain) {
		// Renamed while the chain is read: Graph lists it again later.
		sim.change(changed, "displayName", "User 3 (renamed mid-read)")
		c.items = append(c.items, sim.selected(sim.users[changed], c.sel))
	}
	// One 429 (Retry-After) and a 504 (none) in this sync, a 503 in the
	// next: a 429 and a 503 within two seconds cut the host's rate to what
	// was sent in the second before, which early in a run is a crawl (a
	// known gap of rate control: this test took 60 s with both).
	sim.faults["/v1.0/users/delta|S1250-0"] = []int{429}
	sim.faults["/v1.0/groups/"+sim.groups[0]["id"].(string)+"/members|"] = []int{504}

	r := graphRun(t, sim, srv.URL, db, engine.RunOptions{})
	if r.err != nil {
		t.Fatalf("first sync: %v\n%s", r.err, r.said)
	}
	want := slices.Clone(sim.order)
	slices.Sort(want)
	if d := cmp.Diff(want, query(t, db, `SELECT id FROM msgraph__users ORDER BY id`)); d != "" {
		t.Errorf("users (-want +got):\n%s", d)
	}
	if got := query(t, db, `SELECT display_name FROM msgraph__users WHERE id = '`+changed+`'`); !slices.Equal(got, []string{"User 3 (renamed mid-read)"}) {
		t.Errorf("the user listed twice is %q, want the later version", got)
	}
	if len(r.res.Summary.Duplicates) != 1 || r.res.Summary.Duplicates[0].Name != "users" || r.res.Summary.Duplicates[0].Count != 1 {
		t.Errorf("duplicates = %+v, want the one user listed twice, in users", r.res.Summary.Duplicates)
	}
	if got := query(t, db, `SELECT count(*) FROM msgraph__users WHERE mail IS NULL`); !slices.Equal(got, []string{"313"}) {
		t.Errorf("users without mail: %v, want 313 (left out by Graph, null here)", got)
	}
	if got := query(t, db, `SELECT count(*) FROM msgraph__groups`); !slices.Equal(got, []string{"30"}) {
		t.Errorf("groups: %v, want 30", got)
	}
	wantMembers := 0
	for _, m := range sim.members {
		wantMembers += len(m)
	}
	if got := query(t, db, `SELECT count(*) FROM msgraph__group_members`); !slices.Equal(got, []string{strconv.Itoa(wantMembers)}) {
		t.Errorf("memberships: %v, want %d", got, wantMembers)
	}
	if got := query(t, db, `SELECT count(*) FROM msgraph__group_members WHERE type = '#microsoft.graph.group'`); !slices.Equal(got, []string{"2"}) {
		t.Errorf("nested groups: %v, want 2", got)
	}
	for _, name := range []string{"users", "group_members"} {
		// At least the 429 or 504 (group_members also the requests its
		// expired token refused).
		if s := stream(r.res, name); s.Retries < 1 {
			t.Errorf("%s retries = %d, want the 429 or 504 retried", name, s.Retries)
		}
	}
	sim.mu.Lock()
	issued, forms := sim.issued, slices.Clone(sim.forms)
	sim.mu.Unlock()
	if issued < 2 {
		t.Errorf("%d tokens issued, want a renewal after the first expired", issued)
	}
	for _, f := range forms {
		if f != "client_id="+sim.clientID+"&client_secret=SECRET&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default" {
			t.Errorf("token request form %q", f)
		}
	}

	// Between syncs: one renamed, one deleted, one soft-deleted, one new.
	sim.mu.Lock()
	renamed, gone, soft := sim.order[5], sim.order[7], sim.order[9]
	sim.change(renamed, "displayName", "User 5 (renamed)")
	sim.remove(gone, "deleted")
	sim.remove(soft, "changed")
	added := sim.addUser(5000)
	team1 := sim.groups[1]["id"].(string)
	leaver := sim.members[team1][0]
	sim.members[team1] = sim.members[team1][1:]
	sim.faults["/v1.0/users/delta|D1251"] = []int{503}
	sim.mu.Unlock()
	r2 := graphRun(t, sim, srv.URL, db, engine.RunOptions{})
	if r2.err != nil {
		t.Fatalf("second sync: %v\n%s", r2.err, r2.said)
	}
	asks := sim.deltaAsks()
	if len(asks) != 2 || asks[0] != "" || asks[1] != "D1251" {
		t.Fatalf("delta chains started with %q, want a full one, then the deltaLink the first's last page gave (D1251: 1250 users and the rename mid-read)", asks)
	}
	if s := stream(r2.res, "users"); s.Retries != 1 {
		t.Errorf("second sync: users retries = %d, want 1 (the 503)", s.Retries)
	}
	if n := stream(r2.res, "users").Records; n != 4 {
		t.Errorf("second sync read %d users, want the 4 changes", n)
	}
	if got := query(t, db, `SELECT id, reason FROM msgraph__user_removals ORDER BY reason`); !slices.Equal(got, []string{soft + "|changed", gone + "|deleted"}) {
		t.Errorf("removals %q", got)
	}
	if got := query(t, db, `SELECT display_name FROM msgraph__users WHERE id IN ('`+renamed+`', '`+gone+`', '`+added+`') ORDER BY id`); !slices.Equal(got, []string{"User 5 (renamed)", "User 7", "User 5000"}) {
		t.Errorf("renamed, deleted (last known) and added users: %q", got)
	}
	if got := query(t, db, `SELECT group_id, member_id FROM msgraph__group_members WHERE _ferry_deleted`); !slices.Equal(got, []string{team1 + "|" + leaver}) {
		t.Errorf("memberships marked deleted: %q, want the one removed between syncs", got)
	}
	noSecret(t, r, sim.secret, "eyJ0eXAiOiJKV1Qi.sim0001")
	noSecret(t, r2, sim.secret)
}

// An expired delta token (410 syncStateNotFound) makes the chain start
// over, as Graph asks: the same run reads every user again from
// /users/delta, the user renamed meanwhile included, and saves a new
// deltaLink, which the next run asks. Refused from the start too, the run
// fails naming the 410.
func TestMSGraphExpiredDelta(t *testing.T) {
	t.Parallel()
	sim := newGraphSim()
	sim.tokenUses = 1000
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "graph.db")
	if r := graphRun(t, sim, srv.URL, db, engine.RunOptions{}); r.err != nil {
		t.Fatalf("first sync: %v", r.err)
	}
	sim.mu.Lock()
	sim.expired["D1250"] = true
	sim.change(sim.order[1], "displayName", "renamed")
	sim.mu.Unlock()
	r := graphRun(t, sim, srv.URL, db, engine.RunOptions{})
	if r.err != nil {
		t.Fatalf("the run whose delta token expired: %v", r.err)
	}
	if !strings.Contains(r.said, "reading it again from its start") || !strings.Contains(r.said, "the saved delta token can no longer be used (syncStateNotFound") {
		t.Errorf("the run does not say it read the users again, and why")
	}
	if n := stream(r.res, "users").Records; n < 1250 {
		t.Errorf("the restarted chain read %d users, want all 1250", n)
	}
	if r = graphRun(t, sim, srv.URL, db, engine.RunOptions{}); r.err != nil {
		t.Fatalf("after the restart: %v", r.err)
	}
	if got, want := sim.deltaAsks(), []string{"", "D1250", "", "D1251"}; !slices.Equal(got, want) {
		t.Errorf("delta chains started with %q, want %q", got, want)
	}
	if got := query(t, db, `SELECT display_name FROM msgraph__users WHERE id = '`+sim.order[1]+`'`); !slices.Equal(got, []string{"renamed"}) {
		t.Errorf("the user renamed while the token was expired: %q", got)
	}
	noSecret(t, r, sim.secret)

	sim.mu.Lock()
	sim.expired["D1251"], sim.expired[""] = true, true
	sim.mu.Unlock()
	r = graphRun(t, sim, srv.URL, db, engine.RunOptions{})
	failedRun(t, r, []string{"users", "410", "syncStateNotFound", "refused again when read from its start"})
}
