package engine_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/jackc/pgx/v5"
)

// TestChaosBatch is the property test for batch streams and lookups.
//
// A seeded simulator holds users, orgs, each org's repos, each repo's
// details (one record per repo, read by a POST carrying a list of repo
// ids: a full batch stream) and change events (a POST carrying the list
// and a `since`: an incremental batch stream, a cursor per chunk). The
// repos table reads a lookup filled from the users (a repo's owner's
// name; some users have no login, so add nothing, and some owners are no
// user: the column is null); the details stream reads it in its request
// (the names go in the POST body; the API echoes them). A many-valued
// lookup filled from a child stream (each team's repos, a member listed
// twice as a fault) gives the repos' teams column. The batch
// endpoints take at most apiCap ids (more: a 400), answer in their own
// order (by a hash of the id, stable across pages), page their answer,
// and, as a fault, answer for part of a page's ids only, listing the
// others as `unprocessed` (DynamoDB's BatchGetItem): the spec's rule
// retries that. Per seed, batch_size is
// unset (the whole list in one request), at most the cap, or above it.
//
// Between runs users are added and renamed, orgs added, repos inserted
// anywhere (chunks shift), renamed and their details changed, events
// added and updated. During a run, only what shifts no list backwards:
// users renamed, orgs and repos appended, repos' values and details
// changed, events added or updated (their stamp moves past every other;
// the changes are paged by a keyset on (at, id)). Faults: 429 with
// Retry-After, 5xx, dropped connections, a body cut short, a 200 holding a
// retryable or a fatal error (the spec's rules), `unprocessed` ids, a page
// repeating a record, a page in another order; cancels at random requests.
//
// Properties. A sync begins with the first run after one that exited 0.
//  1. A run that exits 0 holds, for every record live at its sync's start
//     and untouched since (a repo's owner's user untouched too, for the
//     lookup column), exactly its row.
//  2. No run leaves a row the source never had (an id it never had, or a
//     version of it that never was).
//  3. A run that exits non-zero (not cancelled) names, for every record
//     property 1 would miss, a failure of its stream or of an ancestor's
//     chain under its org, or of the orgs stream.
//  4. Quiet runs (no faults, no changes) converge to exactly the source;
//     where a list is longer than the API takes in one request (batch_size
//     unset or above the cap), they fail, naming exactly those orgs' batch
//     chains, and hold the rest exactly.
//
// FERRY_CHAOS_BATCH_SEEDS=n runs n seeds, FERRY_CHAOS_BATCH_SEED=s seed s
// alone; PostgreSQL too when FERRY_TEST_POSTGRES_URL is set.
func TestChaosBatch(t *testing.T) {
	chaosMatrix(t, seedsFrom(t, "FERRY_CHAOS_BATCH", 2), cbRun)
}

type cbUser struct{ Login, Name string } // Login "": omitted, the lookup gets no key

type cbRepo struct{ ID, V, Owner, Lang string }

type cbEvent struct {
	ID, Repo, V string
	At          int // seconds after cbEpoch
}

var cbEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func cbStamp(at int) string { return cbEpoch.Add(time.Duration(at) * time.Second).Format(time.RFC3339) }

type cbSim struct {
	seed      uint64
	apiCap    int    // the most ids a batch request may carry
	batchSize string // "", "small" or "large"
	size      int    // batch_size, when set
	pageCap   int
	srv       *httptest.Server

	mu         sync.Mutex
	rng        *rand.Rand // changes
	clock      int
	users      []*cbUser
	orgs       []string
	orgV       map[string]string
	repos      map[string][]*cbRepo // org → repos in list order
	teams      []string
	teamRepos  map[string][]string // team → its repos' ids
	events     map[string][]*cbEvent
	nextID     int
	history    map[string]map[string]bool // table/id → every row it ever had
	touched    map[string]bool            // table/id changed since the sync began
	faultRate  float64
	changeRate float64
	seen       map[string]int
	served     int
	onRequest  func(n int)
	injected   map[string]int
	trace      []string
}

func newCBSim(t *testing.T, seed uint64) *cbSim {
	rng := rand.New(rand.NewPCG(seed, 0xba7c4))
	s := &cbSim{seed: seed, rng: rng, orgV: map[string]string{}, repos: map[string][]*cbRepo{},
		events: map[string][]*cbEvent{}, teamRepos: map[string][]string{}, history: map[string]map[string]bool{}, touched: map[string]bool{},
		seen: map[string]int{}, injected: map[string]int{}}
	s.apiCap = 3 + rng.IntN(4)
	s.pageCap = 1 + rng.IntN(4)
	s.batchSize = []string{"", "small", "small", "large"}[rng.IntN(4)]
	switch s.batchSize {
	case "small":
		s.size = 1 + rng.IntN(s.apiCap)
	case "large":
		s.size = s.apiCap + 1 + rng.IntN(5)
	}
	for range 2 + rng.IntN(5) {
		s.addUser()
	}
	for range 1 + rng.IntN(3) {
		s.teams = append(s.teams, s.id("t"))
	}
	for range 2 + rng.IntN(3) {
		s.addOrg()
	}
	for _, o := range s.orgs {
		n := rng.IntN(10)
		if s.batchSize != "small" && rng.IntN(3) > 0 {
			n = rng.IntN(s.apiCap + 1) // most lists fit in one request
		}
		for range n {
			s.addRepo(o, -1)
		}
	}
	s.rng = rand.New(rand.NewPCG(seed, 0xc4a9e))
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *cbSim) id(prefix string) string {
	s.nextID++
	return fmt.Sprintf("%s%d", prefix, s.nextID)
}

func (s *cbSim) tick() int {
	s.clock++
	return s.clock
}

func (s *cbSim) note(table, id, row string) {
	k := table + "/" + id
	if s.history[k] == nil {
		s.history[k] = map[string]bool{}
	}
	s.history[k][row] = true
	s.touched[k] = true
}

func (s *cbSim) addUser() {
	u := &cbUser{Name: "name-" + strconv.Itoa(s.rng.IntN(1000))}
	if s.rng.IntN(5) > 0 {
		u.Login = s.id("u")
	}
	s.users = append(s.users, u)
	s.userChanged(u)
}

// userChanged marks the rows reading the user's name through the lookup.
func (s *cbSim) userChanged(u *cbUser) {
	if u.Login == "" {
		return
	}
	s.note("username", u.Login, u.Name)
	for o, rs := range s.repos {
		for _, r := range rs {
			if r.Owner == u.Login {
				s.note("repos", r.ID, s.repoRow(o, r))
				s.note("details", r.ID, s.detailsRow(r))
			}
		}
	}
}

func (s *cbSim) addOrg() {
	o := s.id("o")
	s.orgs = append(s.orgs, o)
	s.repos[o] = []*cbRepo{}
	s.orgV[o] = "ov" + strconv.Itoa(s.rng.IntN(100))
	s.note("orgs", o, s.orgV[o]+"|")
}

// owner is a user's login, or one no user has (the lookup gives null).
func (s *cbSim) owner() string {
	if s.rng.IntN(4) == 0 {
		return "nobody" + strconv.Itoa(s.rng.IntN(3))
	}
	u := s.users[s.rng.IntN(len(s.users))]
	if u.Login == "" {
		return "nobody"
	}
	return u.Login
}

// addRepo inserts a repo into org o's list at pos (-1: the end), with a
// few events.
func (s *cbSim) addRepo(o string, pos int) {
	r := &cbRepo{ID: s.id("r"), V: "v" + strconv.Itoa(s.rng.IntN(100)), Owner: s.owner(), Lang: "go" + strconv.Itoa(s.rng.IntN(9))}
	if pos < 0 || pos > len(s.repos[o]) {
		pos = len(s.repos[o])
	}
	s.repos[o] = slices.Insert(s.repos[o], pos, r)
	for _, tm := range s.teams {
		if s.rng.IntN(3) == 0 {
			s.teamRepos[tm] = append(s.teamRepos[tm], r.ID)
		}
	}
	s.note("teams", r.ID, s.teamsOf(r.ID))
	s.note("repos", r.ID, s.repoRow(o, r))
	s.note("details", r.ID, s.detailsRow(r))
	for range s.rng.IntN(4) {
		s.addEvent(r.ID)
	}
}

func (s *cbSim) addEvent(repo string) {
	e := &cbEvent{ID: s.id("e"), Repo: repo, V: "ev" + strconv.Itoa(s.rng.IntN(100)), At: s.tick()}
	s.events[repo] = append(s.events[repo], e)
	s.note("changes", e.ID, s.eventRow(e))
}

func (s *cbSim) userName(login string) string {
	for _, u := range s.users {
		if u.Login != "" && u.Login == login {
			return u.Name
		}
	}
	return "<null>"
}

// teamsOf is what the many-valued lookup gives a repo: its teams, sorted.
func (s *cbSim) teamsOf(repo string) string {
	var out []string
	for _, tm := range s.teams {
		if slices.Contains(s.teamRepos[tm], repo) {
			out = append(out, tm)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func (s *cbSim) repoRow(o string, r *cbRepo) string {
	return r.V + "|" + o + "|" + r.Owner + "|" + s.userName(r.Owner) + "|" + s.teamsOf(r.ID) + "|"
}

// detailsRow: the owner's name is the one the request carried, from the
// lookup; the API echoes it.
func (s *cbSim) detailsRow(r *cbRepo) string { return r.Lang + "|" + s.userName(r.Owner) + "|" }

func (s *cbSim) eventRow(e *cbEvent) string { return e.Repo + "|" + cbStamp(e.At) + "|" + e.V + "|" }

// change makes one change; mid-run ones shift no list backwards (README,
// Pagination: a record moved onto a page already read is not seen).
func (s *cbSim) change(midRun bool) string {
	allRepos := func() []*cbRepo {
		var out []*cbRepo
		for _, o := range s.orgs {
			out = append(out, s.repos[o]...)
		}
		return out
	}
	orgOf := func(r *cbRepo) string {
		for _, o := range s.orgs {
			if slices.Contains(s.repos[o], r) {
				return o
			}
		}
		return ""
	}
	switch k := s.rng.IntN(9); {
	case k == 0 && !midRun:
		s.addUser()
		return "user added"
	case k <= 1:
		u := s.users[s.rng.IntN(len(s.users))]
		u.Name = "name-" + strconv.Itoa(s.rng.IntN(1000))
		s.userChanged(u)
		return "user " + u.Login + " renamed"
	case k == 2 && s.rng.IntN(3) == 0:
		s.addOrg()
		return "org added"
	case k <= 3:
		o := s.orgs[s.rng.IntN(len(s.orgs))]
		pos := -1
		if !midRun {
			pos = s.rng.IntN(len(s.repos[o]) + 1)
		}
		s.addRepo(o, pos)
		return fmt.Sprintf("repo added to %s at %d", o, pos)
	}
	rs := allRepos()
	if len(rs) == 0 {
		return "none"
	}
	r := rs[s.rng.IntN(len(rs))]
	switch k := s.rng.IntN(5); k {
	case 4: // a team's list grows at its end
		tm := s.teams[s.rng.IntN(len(s.teams))]
		if slices.Contains(s.teamRepos[tm], r.ID) {
			return "none"
		}
		s.teamRepos[tm] = append(s.teamRepos[tm], r.ID)
		s.note("teams", r.ID, s.teamsOf(r.ID))
		s.note("repos", r.ID, s.repoRow(orgOf(r), r))
		return "repo " + r.ID + " joined " + tm
	case 0:
		r.V = "v" + strconv.Itoa(s.rng.IntN(100))
		s.note("repos", r.ID, s.repoRow(orgOf(r), r))
		return "repo " + r.ID + " changed"
	case 1:
		r.Lang = "go" + strconv.Itoa(s.rng.IntN(9))
		s.note("details", r.ID, s.detailsRow(r))
		return "details of " + r.ID + " changed"
	case 2:
		s.addEvent(r.ID)
		return "event added to " + r.ID
	default:
		es := s.events[r.ID]
		if len(es) == 0 {
			return "none"
		}
		e := es[s.rng.IntN(len(es))]
		e.V, e.At = "ev"+strconv.Itoa(s.rng.IntN(100)), s.tick()
		s.note("changes", e.ID, s.eventRow(e))
		return "event " + e.ID + " updated"
	}
}

// truth is what each table must hold now: id → row.
func (s *cbSim) truth() map[string]map[string]string {
	out := map[string]map[string]string{"orgs": {}, "repos": {}, "details": {}, "changes": {}}
	for _, o := range s.orgs {
		out["orgs"][o] = s.orgV[o] + "|"
		for _, r := range s.repos[o] {
			out["repos"][r.ID] = s.repoRow(o, r)
			out["details"][r.ID] = s.detailsRow(r)
			for _, e := range s.events[r.ID] {
				out["changes"][e.ID] = s.eventRow(e)
			}
		}
	}
	return out
}

// orgOfRow names the org a row's record lives under.
func (s *cbSim) orgOfRow(table, id string) string {
	for _, o := range s.orgs {
		if table == "orgs" && o == id {
			return o
		}
		for _, r := range s.repos[o] {
			if (table == "repos" || table == "details") && r.ID == id {
				return o
			}
			for _, e := range s.events[r.ID] {
				if table == "changes" && e.ID == id {
					return o
				}
			}
		}
	}
	return ""
}

// rand is a generator for the n-th asking of one request (URL and body):
// the same seed gives the same answers whatever order chains ask in.
func (s *cbSim) rand(key string, n int) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s#%d", key, n)
	return rand.New(rand.NewPCG(s.seed, h.Sum64()))
}

var cbFaults = []string{"429", "500", "503", "reset", "cut-body", "error-body", "fatal-body"}

func (s *cbSim) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.URL.String() + " " + string(body)
	s.mu.Lock()
	s.served++
	n, hook := s.served, s.onRequest
	s.seen[key]++
	rng := s.rand(key, s.seen[key])
	fault, shape := "", ""
	if s.faultRate > 0 && rng.Float64() < s.faultRate {
		fault = cbFaults[rng.IntN(len(cbFaults))]
		s.injected[fault]++
	} else if s.faultRate > 0 && rng.Float64() < s.faultRate {
		shape = []string{"dup", "shuffle", "unprocessed"}[rng.IntN(3)]
		s.injected[shape]++
	}
	changed := ""
	if s.changeRate > 0 && s.rng.Float64() < s.changeRate {
		changed = s.change(true)
	}
	s.trace = append(s.trace, fmt.Sprintf("%s %s %s %s", key, fault, shape, changed))
	var status int
	var answer []byte
	if fault == "" || fault == "cut-body" {
		status, answer = s.answer(r, body, shape, rng)
	}
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	switch fault {
	case "429":
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case "500", "503":
		code, _ := strconv.Atoi(fault)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html><body>%d</body></html>", code)
		return
	case "reset":
		hijackClose(w, "")
		return
	case "error-body":
		json.NewEncoder(w).Encode(map[string]any{"error": "backend busy", "retryable": true})
		return
	case "fatal-body":
		json.NewEncoder(w).Encode(map[string]any{"error": "internal", "retryable": false})
		return
	case "cut-body":
		hijackClose(w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer[:len(answer)/2]))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(answer)
}

// answer serves the source as it is now; called with s.mu held.
func (s *cbSim) answer(r *http.Request, body []byte, shape string, rng *rand.Rand) (int, []byte) {
	q := r.URL.Query()
	enc := func(v any) []byte { b, _ := json.Marshal(v); return b }
	bad := func(msg string) (int, []byte) { return http.StatusBadRequest, enc(map[string]any{"message": msg}) }
	size := func(name string) int {
		n, err := strconv.Atoi(q.Get(name))
		if err != nil || n <= 0 {
			return s.pageCap
		}
		return min(n, s.pageCap)
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/users": // cursor paging
		lo := 0
		if c := q.Get("cursor"); c != "" {
			if lo = posUntoken(c); lo < 0 {
				return bad("bad cursor")
			}
		}
		lo = min(lo, len(s.users))
		hi := min(lo+2, len(s.users))
		var page []any
		for _, u := range s.users[lo:hi] {
			m := map[string]any{"name": u.Name}
			if u.Login != "" {
				m["login"] = u.Login
			}
			page = append(page, m)
		}
		b := map[string]any{"users": page}
		if hi < len(s.users) {
			b["next"] = posToken(hi)
		}
		return 200, enc(b)
	case r.URL.Path == "/teams":
		page := []any{}
		for _, tm := range s.teams {
			page = append(page, map[string]any{"id": tm})
		}
		return 200, enc(page)
	case len(parts) == 3 && parts[0] == "teams" && parts[2] == "repos":
		page := []any{}
		for _, id := range s.teamRepos[parts[1]] {
			page = append(page, map[string]any{"id": id})
		}
		if shape == "dup" && len(page) > 0 { // a member listed twice
			page = append(page, page[0])
		}
		return 200, enc(page)
	case r.URL.Path == "/orgs": // offset paging with a total
		lo, err := strconv.Atoi(q.Get("offset"))
		if q.Get("offset") == "" {
			lo, err = 0, nil
		}
		if err != nil {
			return bad("bad offset")
		}
		lo = min(lo, len(s.orgs))
		hi := min(lo+size("limit"), len(s.orgs))
		page := []any{}
		for _, o := range s.orgs[lo:hi] {
			page = append(page, map[string]any{"id": o, "v": s.orgV[o]})
		}
		return 200, enc(map[string]any{"items": page, "total": len(s.orgs)})
	case len(parts) == 3 && parts[0] == "orgs" && parts[2] == "repos": // page numbers
		list, ok := s.repos[parts[1]]
		if !ok {
			return http.StatusNotFound, enc(map[string]any{"message": "no such org"})
		}
		n := size("per_page")
		pg, err := strconv.Atoi(q.Get("page"))
		if err != nil || pg < 1 {
			return bad("bad page")
		}
		lo := min((pg-1)*n, len(list))
		hi := min(lo+n, len(list))
		page := []any{}
		for _, rp := range list[lo:hi] {
			page = append(page, map[string]any{"id": rp.ID, "v": rp.V, "owner": rp.Owner})
		}
		if shape == "dup" && lo > 0 {
			rp := list[lo-1]
			page = append([]any{map[string]any{"id": rp.ID, "v": rp.V, "owner": rp.Owner}}, page...)
		}
		return 200, enc(map[string]any{"items": page, "total_pages": (len(list) + n - 1) / n})
	case r.URL.Path == "/details" || r.URL.Path == "/changes":
		if r.Method != http.MethodPost {
			return bad("POST only")
		}
		var req struct {
			IDs   []string
			Names map[string]*string
		}
		if err := json.Unmarshal(body, &req); err != nil || req.IDs == nil {
			return bad("want {ids: [...]}")
		}
		if len(req.IDs) > s.apiCap {
			return bad(fmt.Sprintf("at most %d ids", s.apiCap))
		}
		if r.URL.Path == "/details" {
			return s.details(req.IDs, req.Names, q.Get("after"), shape, rng)
		}
		return s.changes(req.IDs, q.Get("since"), q.Get("after"), shape, rng)
	}
	return http.StatusNotFound, enc(map[string]any{"message": "no route"})
}

func (s *cbSim) repo(id string) *cbRepo {
	for _, rs := range s.repos {
		for _, r := range rs {
			if r.ID == id {
				return r
			}
		}
	}
	return nil
}

// details answers one record per known id, in the API's own order (a hash
// of the id), paged by position in it.
func (s *cbSim) details(ids []string, names map[string]*string, after, shape string, rng *rand.Rand) (int, []byte) {
	var list []*cbRepo
	for _, id := range ids {
		if r := s.repo(id); r != nil && !slices.Contains(list, r) {
			list = append(list, r)
		}
	}
	hash := func(id string) uint64 { h := fnv.New64a(); h.Write([]byte(id)); return h.Sum64() }
	slices.SortFunc(list, func(a, b *cbRepo) int {
		ha, hb := hash(a.ID), hash(b.ID)
		switch {
		case ha < hb:
			return -1
		case ha > hb:
			return 1
		}
		return 0
	})
	lo := 0
	if after != "" {
		if lo = posUntoken(after); lo < 0 {
			return http.StatusBadRequest, []byte(`{"message": "bad after"}`)
		}
	}
	lo = min(lo, len(list))
	hi := min(lo+s.pageCap, len(list))
	var items []any
	var unprocessed []string
	page := slices.Clone(list[lo:hi])
	if shape == "dup" && lo > 0 {
		page = append(page, list[lo-1])
	}
	for _, r := range page {
		if shape == "unprocessed" && rng.IntN(2) == 0 {
			unprocessed = append(unprocessed, r.ID)
			continue
		}
		items = append(items, map[string]any{"id": r.ID, "lang": r.Lang, "owner_name": names[r.ID]})
	}
	if shape == "unprocessed" && unprocessed == nil && len(page) > 0 {
		unprocessed, items = []string{page[0].ID}, items[1:]
	}
	if shape == "shuffle" {
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	}
	b := map[string]any{"items": items}
	if items == nil {
		b["items"] = []any{}
	}
	if unprocessed != nil {
		b["unprocessed"] = unprocessed
	}
	if hi < len(list) {
		b["next"] = posToken(hi)
	}
	out, _ := json.Marshal(b)
	return 200, out
}

// changes answers the events of the ids stamped after since, by (at, id),
// paged by a keyset ("at/id" of the last one given).
func (s *cbSim) changes(ids []string, since, after, shape string, rng *rand.Rand) (int, []byte) {
	t, err := time.Parse(time.RFC3339, since)
	if err != nil {
		return http.StatusBadRequest, []byte(`{"message": "bad since"}`)
	}
	from := int(t.Sub(cbEpoch) / time.Second)
	if t.Before(cbEpoch) {
		from = -1
	}
	var list []*cbEvent
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		for _, e := range s.events[id] {
			if e.At > from {
				list = append(list, e)
			}
		}
	}
	slices.SortFunc(list, func(a, b *cbEvent) int { return a.At - b.At })
	lo := 0
	if after != "" {
		var at int
		var id string
		if _, err := fmt.Sscanf(after, "%d/%s", &at, &id); err != nil {
			return http.StatusBadRequest, []byte(`{"message": "bad after"}`)
		}
		for lo < len(list) && list[lo].At <= at {
			lo++
		}
	}
	hi := min(lo+s.pageCap, len(list))
	page := slices.Clone(list[lo:hi])
	if shape == "dup" && lo > 0 {
		page = append([]*cbEvent{list[lo-1]}, page...)
	}
	var items []any
	var unprocessed []string
	for _, e := range page {
		if shape == "unprocessed" && rng.IntN(2) == 0 {
			unprocessed = append(unprocessed, e.Repo)
			continue
		}
		items = append(items, map[string]any{"id": e.ID, "repo": e.Repo, "at": cbStamp(e.At), "v": e.V})
	}
	if shape == "unprocessed" && unprocessed == nil && len(ids) > 0 {
		unprocessed = []string{ids[0]}
	}
	if shape == "shuffle" {
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	}
	b := map[string]any{"items": items}
	if items == nil {
		b["items"] = []any{}
	}
	if unprocessed != nil {
		b["unprocessed"] = slices.Compact(slices.Sorted(slices.Values(unprocessed)))
	}
	if hi < len(list) {
		b["next"] = fmt.Sprintf("%d/%s", list[hi-1].At, list[hi-1].ID)
	}
	out, _ := json.Marshal(b)
	return 200, out
}

const cbSpecText = `version: 1
name: NAME
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  timeout: 2s
  concurrency: 4
  retry: {attempts: 4, initial: 1ms, max: 2ms}
  rules:
    - status: 200
      body: '.retryable? == true'
      action: retry
      message: .error
    - status: 200
      body: '.retryable? == false'
      action: fail
      message: .error
    - status: 200
      body: '(.unprocessed? // []) | length > 0'
      action: retry
      message: '"unprocessed: " + (.unprocessed | join(","))'
streams:
  users:
    request: {path: /users}
    records: .users[]
    paginate: {type: cursor, token: .next, param: cursor}
  teams:
    request: {path: /teams}
  team_repos:
    for_each: teams
    request: {path: '/teams/${ parent.id }/repos'}
  orgs:
    request: {path: /orgs}
    records: .items[]
    paginate: {type: offset, param: offset, size: 5, size_param: limit, total: .total}
  repos:
    for_each: orgs
    request: {path: '/orgs/${ parent.id }/repos'}
    records: .items[]
    paginate: {type: page, param: page, size: 5, size_param: per_page, total_pages: .total_pages}
  details:
    for_each: orgs
    batch: repos
    request:
      method: POST
      path: /details
      body_jq: '{ids: [$batch[].id], names: ([$batch[] | {key: .id, value: $lookups.user_name[.owner]}] | from_entries)}'
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
  changes:
    for_each: orgs
    batch: repos
    incremental: {cursor: .at, initial: "2000-01-01T00:00:00Z"}
    request:
      method: POST
      path: /changes
      query: {since: '${ cursor }'}
      body_jq: '{ids: [$batch[].id]}'
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
lookups:
  user_name:
    from: users
    key: .login
    value: .name
  teams_of:
    from: team_repos
    key: .id
    value: $parent.id
    many: true
tables:
  orgs: {from: orgs, mode: replace, primary_key: [id], row: '{id, v}', columns: {id: STRING, v: STRING}}
  repos:
    from: repos
    mode: replace
    primary_key: [id]
    row: '{id, v, org: $parent.id, owner, owner_name: $lookups.user_name[.owner], teams: ($lookups.teams_of[.id] // [] | join(","))}'
    columns: {id: STRING, v: STRING, org: STRING, owner: STRING, owner_name: STRING, teams: STRING}
  details: {from: details, mode: replace, primary_key: [id], row: '{id, lang, owner_name}', columns: {id: STRING, lang: STRING, owner_name: STRING}}
  changes: {from: changes, primary_key: [id], row: '{id, repo, at, v}', columns: {id: STRING, repo: STRING, at: STRING, v: STRING}}
`

// cbColumns are the columns each table's rows are compared by.
var cbColumns = map[string][]string{
	"orgs":    {"v"},
	"repos":   {"v", "org", "owner", "owner_name", "teams"},
	"details": {"lang", "owner_name"},
	"changes": {"repo", "at", "v"},
}

func cbSelect(table, from string) string {
	var cols []string
	for _, c := range cbColumns[table] {
		cols = append(cols, "coalesce("+c+", '<null>')")
	}
	return "SELECT id, " + strings.Join(cols, " || '|' || ") + " || '|' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE '' END FROM " + from
}

type cbDest struct {
	url  string
	read func(t *testing.T, table string) map[string]string
}

func cbScan(t *testing.T, rows interface {
	Next() bool
	Scan(...any) error
}) map[string]string {
	out := map[string]string{}
	for rows.Next() {
		var id, row string
		if err := rows.Scan(&id, &row); err != nil {
			t.Fatal(err)
		}
		out[id] = row
	}
	return out
}

func cbSQLite(dir, name string) cbDest {
	path := filepath.Join(dir, "t.db")
	return cbDest{url: "sqlite:" + path, read: func(t *testing.T, table string) map[string]string {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(cbSelect(table, fmt.Sprintf(`"%s__%s"`, name, table)))
		if err != nil {
			if strings.Contains(err.Error(), "no such table") {
				return map[string]string{}
			}
			t.Fatal(err)
		}
		defer rows.Close()
		return cbScan(t, rows)
	}}
}

func cbPG(t *testing.T, url, name string) cbDest {
	pgFreshSchema(t, url, name)
	return cbDest{url: url, read: func(t *testing.T, table string) map[string]string {
		ctx := t.Context()
		conn := pgConnect(t, ctx, url)
		defer conn.Close(ctx)
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{name, table}.Sanitize()).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			return map[string]string{}
		}
		rows, err := conn.Query(ctx, cbSelect(table, pgx.Identifier{name, table}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := cbScan(t, rows)
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}}
}

func cbRun(t *testing.T, seed uint64, destKind, mode string) {
	s := newCBSim(t, seed)
	dir := t.TempDir()
	name := fmt.Sprintf("cbatch_%d_%d_%s", os.Getpid(), seed, mode)
	var dest cbDest
	if destKind == "postgres" {
		dest = cbPG(t, os.Getenv("FERRY_TEST_POSTGRES_URL"), name)
	} else {
		dest = cbSQLite(dir, name)
	}
	text := strings.NewReplacer("name: NAME", "name: "+name, "concurrency: 4", fmt.Sprintf("concurrency: %d", 1+seed%4)).Replace(cbSpecText)
	if s.size > 0 {
		text = strings.ReplaceAll(text, "    batch: repos\n", fmt.Sprintf("    batch: repos\n    batch_size: %d\n", s.size))
	}
	t.Logf("seed %d: api takes %d ids, batch_size %d (%q), pages capped at %d, concurrency %d", seed, s.apiCap, s.size, s.batchSize, s.pageCap, 1+seed%4)
	path := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": s.srv.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	run := func(ctx context.Context) error {
		_, err := engine.Run(ctx, sp, cfg, engine.RunOptions{Dest: dest.url, ResumeWithin: -1})
		return err
	}
	defer func() {
		if t.Failed() {
			s.mu.Lock()
			t.Logf("requests (request fault shape change):\n%s", strings.Join(s.trace, "\n"))
			s.mu.Unlock()
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 2))
	s.mu.Lock()
	clear(s.touched) // the first sync begins
	s.mu.Unlock()
	var start map[string]map[string]string // the source when the sync began
	for i := range 2 + rng.IntN(4) {
		s.mu.Lock()
		if start == nil {
			start = s.truth()
		}
		for range rng.IntN(4) {
			s.trace = append(s.trace, "-- between runs: "+s.change(false))
		}
		s.mu.Unlock()
		ctx, cancel := context.WithCancel(t.Context())
		s.mu.Lock()
		s.faultRate = 0.05 + 0.25*rng.Float64()
		s.changeRate = 0.1 * float64(rng.IntN(2))
		if mode == "cancel" {
			s.faultRate *= float64(rng.IntN(2))
			stop := s.served + 1 + rng.IntN(60)
			s.onRequest = func(n int) {
				if n == stop {
					cancel()
				}
			}
		}
		s.mu.Unlock()
		err := run(ctx)
		cut := ctx.Err() != nil
		cancel()
		s.mu.Lock()
		s.onRequest, s.faultRate, s.changeRate = nil, 0, 0
		s.trace = append(s.trace, fmt.Sprintf("-- run %d ended: %v", i+1, err))
		injected := fmt.Sprint(s.injected)
		touched := maps2set(s.touched)
		s.mu.Unlock()
		t.Logf("seed %d %s: run %d: %v; injected so far %s", seed, mode, i+1, err, injected)
		cbNoInvented(t, s, dest, fmt.Sprintf("run %d", i+1))
		if err == nil {
			cbHolds(t, s, dest, start, touched, nil, fmt.Sprintf("run %d, which exited 0", i+1))
			s.mu.Lock()
			clear(s.touched) // a new sync begins
			s.mu.Unlock()
			start = nil
		} else if !cut {
			var re *engine.RunError
			if !errors.As(err, &re) {
				t.Fatalf("seed %d: run %d: %v is not a RunError listing its failures", seed, i+1, err)
			}
			if engine.ExitCode(err, false) == 0 {
				t.Errorf("seed %d: run %d failed and exits 0: %v", seed, i+1, err)
			}
			cbHolds(t, s, dest, start, touched, re, fmt.Sprintf("run %d, which failed", i+1))
		}
		if t.Failed() {
			return
		}
	}
	// Quiet runs: the first ends the sync (if open, it answers for the
	// source as it was when the sync began); the second is a sync of its
	// own (a full refresh when the first could not end the sync: a list too
	// long for the API keeps failing), exact but for the lists the API
	// refuses whole.
	for q, what := range []string{"the resumed run without faults", "a new sync without faults"} {
		full := q == 1 && start != nil
		_, err := engine.Run(t.Context(), sp, cfg, engine.RunOptions{Dest: dest.url, ResumeWithin: -1, FullRefresh: full})
		s.mu.Lock()
		want, touched := s.truth(), maps2set(s.touched)
		if q == 0 && start != nil {
			want = start
		}
		if q == 1 {
			touched = map[string]bool{}
		}
		s.trace = append(s.trace, fmt.Sprintf("-- %s (full refresh %v) ended: %v", what, full, err))
		s.mu.Unlock()
		cbNoInvented(t, s, dest, what)
		var re *engine.RunError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("seed %d: %s: %v", seed, what, err)
		}
		if err != nil {
			for _, f := range re.Failures {
				if (f.Stream != "details" && f.Stream != "changes") || !strings.Contains(f.Error(), fmt.Sprintf("at most %d ids", s.apiCap)) {
					t.Errorf("seed %d: %s: %v (only lists too long for the API may fail)", seed, what, f)
				}
			}
		}
		s.mu.Lock()
		for _, o := range s.orgs {
			tooLong := len(s.repos[o]) > s.apiCap && (s.size == 0 || s.size > s.apiCap)
			named := re != nil && slices.ContainsFunc(re.Failures, func(f engine.Failure) bool {
				return f.Stream == "details" && strings.Contains(f.Parents, "orgs[id="+o+"]")
			})
			if q == 1 && tooLong != named {
				t.Errorf("seed %d: %s: org %s has %d repos, the API takes %d, batch_size %d: details failed for it %v", seed, what, o, len(s.repos[o]), s.apiCap, s.size, named)
			}
		}
		s.mu.Unlock()
		cbHolds(t, s, dest, want, touched, re, what)
		if t.Failed() {
			return
		}
		if err == nil {
			s.mu.Lock()
			clear(s.touched)
			s.mu.Unlock()
			start = nil
		}
	}
}

func maps2set(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// cbHolds: each record of want not touched since it was taken is in its
// table exactly, unless re (a failed run) names its stream or an
// ancestor's chain under its org, or the orgs stream.
func cbHolds(t *testing.T, s *cbSim, dest cbDest, want map[string]map[string]string, touched map[string]bool, re *engine.RunError, what string) {
	t.Helper()
	failed := func(stream, org string) bool {
		if re == nil {
			return false
		}
		for _, f := range re.Failures {
			if f.Stream == "orgs" {
				return true
			}
			if f.Stream == stream && strings.Contains(f.Parents, "orgs[id="+org+"]") {
				return true
			}
		}
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for table, rows := range want {
		got := dest.read(t, table)
		for id, row := range rows {
			if touched[table+"/"+id] || got[id] == row {
				continue
			}
			org := s.orgOfRow(table, id)
			if table == "orgs" && failed("orgs", "") {
				continue
			}
			if table != "orgs" && (failed(table, org) || failed("repos", org)) {
				continue
			}
			if g, ok := got[id]; ok {
				t.Errorf("seed %d: %s: table %s: %s = %q, want %q (org %s)", s.seed, what, table, id, g, row, org)
			} else {
				t.Errorf("seed %d: %s: table %s misses %s (org %s), no failure names it", s.seed, what, table, id, org)
			}
		}
	}
}

// cbNoInvented: every row is a version its record had (a deleted mark
// aside), of a record the source had.
func cbNoInvented(t *testing.T, s *cbSim, dest cbDest, what string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for table := range cbColumns {
		for id, row := range dest.read(t, table) {
			live := strings.TrimSuffix(row, "deleted")
			if table == "repos" || table == "details" {
				// The owner's name is the lookup's, read before the
				// record: each part a version, not always of one moment.
				f := strings.Split(live, "|")
				n, owner := 3, f[2]
				if table == "details" {
					n, owner = 1, s.repo(id).Owner
				}
				// Teams: each one the repo was ever in (read before the
				// repo, the lookup may lack a team it joined as it came).
				for _, tm := range strings.Split(f[min(4, len(f)-1)], ",") {
					if table == "repos" && tm != "" && !slices.ContainsFunc(slices.Collect(maps.Keys(s.history["teams/"+id])), func(h string) bool { return slices.Contains(strings.Split(h, ","), tm) }) {
						t.Errorf("seed %d: %s: table repos: %s = %q, in a team it never was in", s.seed, what, id, row)
					}
				}
				own := s.history["username/"+owner]
				if name := f[n]; name != "<null>" && !own[name] || name == "<null>" && s.userName(owner) != "<null>" {
					t.Errorf("seed %d: %s: table %s: %s = %q, a name its owner never had", s.seed, what, table, id, row)
				}
				base := strings.Join(f[:n], "|") + "|"
				if !slices.ContainsFunc(slices.Collect(maps.Keys(s.history[table+"/"+id])), func(h string) bool { return strings.HasPrefix(h, base) }) {
					t.Errorf("seed %d: %s: table %s: %s = %q, a version the source never had", s.seed, what, table, id, row)
				}
				continue
			}
			if !s.history[table+"/"+id][live] {
				t.Errorf("seed %d: %s: table %s: %s = %q, a version the source never had", s.seed, what, table, id, row)
			}
		}
	}
}
