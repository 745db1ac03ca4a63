package engine_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
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

	"github.com/ferry-etl/ferry/engine"
	"github.com/jackc/pgx/v5"
)

// The property tests of recursive streams (TestChaosTree) and export jobs
// (TestChaosExport), in TestChaos's manner: a seeded source that changes
// between runs, faults at random requests, cancels at random requests,
// resumes. A run that exits 0 wrote exactly the source's records, each
// once in its sync (an append log of each stream's records tells), with
// the right values and parent ids; a failing run names the stream and
// parent chain of each record it misses; quiet runs converge to exactly
// the source. FERRY_CHAOS_TREE_SEEDS=n runs n seeds of each (default 2),
// FERRY_CHAOS_TREE_SEED=s seed s alone; PostgreSQL too when
// FERRY_TEST_POSTGRES_URL is set.
//
// What the source may change between the runs of one sync, a resumed run
// need not write (README, State and resume: the changes are the next
// sync's): records changed since the sync began are checked only for
// holding a row the source had.

// ctNode is one record of the tree source: a root (parent "") or a node
// under a root or another node.
type ctNode struct {
	id, parent, v, note string
	hasNote             bool
	// phantom: has_children is true but the list is empty (an API that
	// sets the flag loosely).
	phantom bool
}

// ctBook is what a simulated source of these tests keeps beside its data:
// the rows its records ever made, the faults it injects, the requests.
type ctBook struct {
	seed uint64
	// gen is the harness's sync number, in every record (only the append
	// log keeps it): a log row tells which sync wrote it.
	gen int

	mu        sync.Mutex
	hist      map[string]map[string]bool // table/id → every row it ever had
	faultRate float64
	seen      map[string]int
	served    int
	onRequest func(n int)
	injected  map[string]int
	trace     []string
}

func newCTBook(seed uint64) ctBook {
	return ctBook{seed: seed, hist: map[string]map[string]bool{}, seen: map[string]int{}, injected: map[string]int{}}
}

// note records a row a record makes (mu held).
func (b *ctBook) note(key, row string) {
	if b.hist[key] == nil {
		b.hist[key] = map[string]bool{}
	}
	b.hist[key][row] = true
}

// cancelWithin arms cancel at a random one of the next within requests the
// API serves: the run is cut there, wherever it stands.
func (b *ctBook) cancelWithin(rng *rand.Rand, within int, cancel context.CancelFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onRequest = cancelAtRandom(b.served, rng, within, cancel)
}

func (b *ctBook) setFaults(rate float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.faultRate = rate
}

// rand is a generator for the n-th asking of u: the same seed gives the
// same answers whatever order concurrent chains ask in.
func (b *ctBook) rand(u string, n int) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s#%d", u, n)
	return rand.New(rand.NewPCG(b.seed, h.Sum64()))
}

// arrive counts a request (mu held) and picks its fault from faults (""
// for none); hook is called, without mu, before it is answered.
func (b *ctBook) arrive(r *http.Request, faults []string) (n int, hook func(int), rng *rand.Rand, fault string) {
	b.served++
	b.seen[r.Method+" "+r.URL.String()]++
	rng = b.rand(r.Method+" "+r.URL.String(), b.seen[r.Method+" "+r.URL.String()])
	if b.faultRate > 0 && rng.Float64() < b.faultRate {
		fault = faults[rng.IntN(len(faults))]
		b.injected[fault]++
	}
	b.trace = append(b.trace, r.Method+" "+r.URL.String()+" "+fault)
	return b.served, b.onRequest, rng, fault
}

// ctTree is the simulated source: roots listed by /roots, each node's
// children by /nodes/{id}/children, paged by a keyset cursor (Notion's
// has_more/next_cursor, or a Link header), pages capped below what is asked.
type ctTree struct {
	ctBook
	srv      *httptest.Server
	link     bool // Link header paging, else a cursor in the body
	pageCap  int
	maxDepth int
	// cycleX lists, beside its children, its ancestor cycleUp levels up
	// (0: itself): a corrupt tree (a link followed as a child).
	cycleX  string
	cycleUp int
	midSync bool // the source changes between the runs of one sync too

	rng   *rand.Rand // the source's changes
	roots map[string]*ctNode
	nodes map[string]*ctNode
}

func ctSeeds(t *testing.T) []uint64 { return seedsFrom(t, "FERRY_CHAOS_TREE", 2) }

func newCTTree(t *testing.T, seed uint64) *ctTree {
	rng := rand.New(rand.NewPCG(seed, 0x77ee))
	a := &ctTree{ctBook: newCTBook(seed), rng: rng, roots: map[string]*ctNode{}, nodes: map[string]*ctNode{}}
	a.link = rng.IntN(2) == 0
	a.pageCap = 1 + rng.IntN(4)
	a.midSync = rng.IntN(2) == 0
	for range 1 + rng.IntN(3) {
		a.addRoot()
	}
	n := 3 + rng.IntN(30)
	if rng.IntN(4) == 0 {
		n += 60
	}
	var last string
	for range n {
		p := a.pickParent("")
		if last != "" && rng.IntN(3) == 0 { // chains make the tree deep
			p = last
		}
		last = a.addNode(p)
	}
	deepest := a.deepestFlagged()
	switch k := rng.IntN(8); {
	case k < 2 && deepest > 1: // a depth limit the tree passes
		a.maxDepth = 1 + rng.IntN(deepest-1)
	case k < 4 && len(a.nodes) > 0: // a cycle
		a.cycleX = a.pickNode()
		a.cycleUp = rng.IntN(3)
		a.maxDepth = deepest + 2 + rng.IntN(3)
	default:
		a.maxDepth = deepest + 1 + rng.IntN(3)
	}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	a.recordHist()
	return a
}

func (a *ctTree) newID(prefix string) string {
	for {
		id := fmt.Sprintf("%s%04d", prefix, a.rng.IntN(10000))
		if a.roots[id] == nil && a.nodes[id] == nil {
			return id
		}
	}
}

func (a *ctTree) addRoot() {
	id := a.newID("r")
	a.roots[id] = &ctNode{id: id, v: fmt.Sprintf("rv%d", a.rng.IntN(100)), note: "rn", hasNote: a.rng.IntN(2) == 0}
}

func (a *ctTree) addNode(parent string) string {
	id := a.newID("n")
	a.nodes[id] = &ctNode{id: id, parent: parent, v: fmt.Sprintf("v%d", a.rng.IntN(1000)),
		note: "x" + strconv.Itoa(a.rng.IntN(10)), hasNote: a.rng.IntN(3) > 0, phantom: a.rng.IntN(10) == 0}
	return id
}

func (a *ctTree) sortedIDs(m map[string]*ctNode) []string {
	return slices.Sorted(maps.Keys(m))
}

// pickParent is a random root or node, not within the subtree of avoid.
func (a *ctTree) pickParent(avoid string) string {
	all := append(a.sortedIDs(a.roots), a.sortedIDs(a.nodes)...)
	for {
		p := all[a.rng.IntN(len(all))]
		if avoid == "" || !a.within(p, avoid) {
			return p
		}
	}
}

func (a *ctTree) pickNode() string {
	ids := a.sortedIDs(a.nodes)
	return ids[a.rng.IntN(len(ids))]
}

// within tells whether id is top or below it.
func (a *ctTree) within(id, top string) bool {
	for x := id; x != ""; {
		if x == top {
			return true
		}
		n := a.nodes[x]
		if n == nil {
			return false
		}
		x = n.parent
	}
	return false
}

func (a *ctTree) level(id string) int {
	l := 0
	for x := a.nodes[id]; x != nil; x = a.nodes[x.parent] {
		l++
	}
	return l
}

func (a *ctTree) children(id string) []string {
	var out []string
	for _, n := range a.nodes {
		if n.parent == id {
			out = append(out, n.id)
		}
	}
	slices.Sort(out)
	return out
}

// flagged tells what has_children says of a node.
func (a *ctTree) flagged(id string) bool {
	n := a.nodes[id]
	return n.phantom || id == a.cycleX || len(a.children(id)) > 0
}

func (a *ctTree) deepestFlagged() int {
	d := 0
	for id := range a.nodes {
		if a.flagged(id) {
			d = max(d, a.level(id))
		}
	}
	return d
}

// cycleA is the node cycleX lists beside its children ("" for none).
func (a *ctTree) cycleA() string {
	x := a.nodes[a.cycleX]
	if x == nil {
		return ""
	}
	for range a.cycleUp {
		if a.nodes[x.parent] == nil {
			break
		}
		x = a.nodes[x.parent]
	}
	return x.id
}

func (a *ctTree) nodeRow(n *ctNode, parent string) string {
	note := "<null>"
	if n.hasNote {
		note = n.note
	}
	if n.parent == "" { // a root
		return n.v + "|" + note + "|<null>|<null>|"
	}
	return n.v + "|" + note + "|" + parent + "|" + a.rootOf(n.id) + "|"
}

func (a *ctTree) rootOf(id string) string {
	for x := a.nodes[id]; x != nil; x = a.nodes[x.parent] {
		if a.nodes[x.parent] == nil {
			return x.parent
		}
	}
	return ""
}

// recordHist notes every row the source's records now make.
func (a *ctTree) recordHist() {
	for _, r := range a.roots {
		a.note("roots/"+r.id, a.nodeRow(r, ""))
	}
	for _, n := range a.nodes {
		a.note("nodes/"+n.id, a.nodeRow(n, n.parent))
	}
	if x, y := a.cycleX, a.cycleA(); y != "" {
		a.note("nodes/"+y, a.nodeRow(a.nodes[y], x))
	}
	for _, n := range a.nodes {
		for _, c := range a.comments(n) {
			a.note("comments/"+c.id, a.commentRow(c))
		}
	}
}

// comments are a node's comments (a child stream of every level): none
// to three, their values following the node's.
func (a *ctTree) comments(n *ctNode) []*ctNode {
	h := fnv.New32a()
	h.Write([]byte(n.id))
	var out []*ctNode
	for k := range int(h.Sum32() % 4) {
		out = append(out, &ctNode{id: fmt.Sprintf("c-%s-%d", n.id, k), parent: n.id, v: n.v + "/" + strconv.Itoa(k), note: n.note, hasNote: n.hasNote && k%2 == 0})
	}
	return out
}

func (a *ctTree) commentRow(c *ctNode) string {
	note := "<null>"
	if c.hasNote {
		note = c.note
	}
	return c.v + "|" + note + "|" + c.parent + "|" + a.rootOf(c.parent) + "|"
}

// mutate changes the source as time between runs does: nodes added,
// removed with their subtrees, moved, changed; a root added or removed.
func (a *ctTree) mutate() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var did []string
	for range 1 + a.rng.IntN(5) {
		switch k := a.rng.IntN(20); {
		case k < 8 || len(a.nodes) < 2:
			id := a.addNode(a.pickParent(""))
			did = append(did, "add "+id)
		case k < 11:
			id := a.pickNode()
			for _, n := range a.sortedIDs(a.nodes) {
				if a.within(n, id) {
					delete(a.nodes, n)
				}
			}
			did = append(did, "remove "+id)
		case k < 15:
			id := a.pickNode()
			p := a.pickParent(id)
			a.nodes[id].parent = p
			did = append(did, "move "+id+" under "+p)
		case k < 19:
			id := a.pickNode()
			a.nodes[id].v = fmt.Sprintf("v%d", a.rng.IntN(1000))
			a.nodes[id].hasNote = a.rng.IntN(2) == 0
			did = append(did, "change "+id)
		case len(a.roots) > 1 && a.rng.IntN(2) == 0:
			ids := a.sortedIDs(a.roots)
			r := ids[a.rng.IntN(len(ids))]
			delete(a.roots, r)
			for _, n := range a.sortedIDs(a.nodes) {
				if a.rootOf(n) == r {
					delete(a.nodes, n)
				}
			}
			did = append(did, "remove root "+r)
		default:
			a.addRoot()
			did = append(did, "add root")
		}
	}
	a.recordHist()
	return strings.Join(did, ", ")
}

// ctTruth is what a full read of the source gives.
type ctTruth struct {
	rows  map[string]string // table/id → row
	chain map[string]string // nodes/id → the chain it is read in: roots[id=r] > nodes[id=a]
	// fails: node id → what the run must fail it for (max_depth, cycle),
	// with the chain of the record (its own segment last).
	fails map[string]string
	// alt: a row a record may hold too (the cycle's node, listed under
	// cycleX as well: the last one wins, a collision).
	alt map[string]string
	// versions: the rows each record had in this truth (for "unchanged").
}

func (a *ctTree) truth() ctTruth {
	a.mu.Lock()
	defer a.mu.Unlock()
	tr := ctTruth{rows: map[string]string{}, chain: map[string]string{}, fails: map[string]string{}, alt: map[string]string{}}
	cyc := a.cycleA()
	type item struct {
		id, chain string
		level     int
	}
	for _, r := range a.sortedIDs(a.roots) {
		tr.rows["roots/"+r] = a.nodeRow(a.roots[r], "")
		queue := []item{}
		for _, c := range a.children(r) {
			queue = append(queue, item{c, "roots[id=" + r + "]", 1})
		}
		for len(queue) > 0 {
			it := queue[0]
			queue = queue[1:]
			n := a.nodes[it.id]
			tr.rows["nodes/"+it.id] = a.nodeRow(n, n.parent)
			tr.chain["nodes/"+it.id] = it.chain
			for _, c := range a.comments(n) {
				tr.rows["comments/"+c.id] = a.commentRow(c)
				tr.chain["comments/"+c.id] = it.chain + " > nodes[id=" + it.id + "]"
			}
			if !a.flagged(it.id) {
				continue
			}
			here := it.chain + " > nodes[id=" + it.id + "]"
			if it.level >= a.maxDepth {
				tr.fails[it.id] = "max_depth|" + here
				continue
			}
			for _, c := range a.children(it.id) {
				queue = append(queue, item{c, here, it.level + 1})
			}
			if it.id == a.cycleX && cyc != "" {
				tr.fails[cyc] = "cycle|" + here + " > nodes[id=" + cyc + "]"
				tr.alt["nodes/"+cyc] = a.nodeRow(a.nodes[cyc], it.id)
			}
		}
	}
	return tr
}

var ctFaults = []string{"429", "500", "502", "503", "reset", "cut-body", "rate-body", "fatal-body", "empty-200", "truncated-json", "404"}

func (a *ctTree) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	n, hook, rng, fault := a.arrive(r, ctFaults)
	status, hdr, body := a.answer(r, rng)
	a.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	switch fault {
	case "429":
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"object":"error","status":429,"code":"rate_limited","message":"slow down"}`))
		return
	case "500", "502", "503":
		code, _ := strconv.Atoi(fault)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html><body>%d</body></html>", code)
		return
	case "404": // not a rule's: the chain fails
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"object":"error","status":404,"code":"object_not_found","message":"gone"}`))
		return
	case "reset":
		hijackClose(w, "")
		return
	case "rate-body": // a rule retries it
		w.Write([]byte(`{"object":"error","code":"rate_limited","message":"try later"}`))
		return
	case "fatal-body": // a rule fails the chain
		w.Write([]byte(`{"object":"error","code":"internal_error","message":"boom"}`))
		return
	case "empty-200":
		w.WriteHeader(http.StatusOK)
		return
	case "truncated-json":
		body = body[:len(body)/2]
	case "cut-body":
		hijackClose(w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)/2]))
		return
	}
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func (a *ctTree) nodeJSON(n *ctNode) map[string]any {
	m := map[string]any{"object": "block", "id": n.id, "v": n.v, "gen": "g" + strconv.Itoa(a.gen)}
	if n.hasNote {
		m["note"] = n.note
	}
	if a.nodes[n.id] == nil { // a root, or a comment
		return m
	}
	if a.flagged(n.id) {
		m["has_children"] = true
	} else if n.id[len(n.id)-1]%2 == 0 {
		m["has_children"] = false // left out on the others
	}
	return m
}

// answer serves a keyset page: the records whose id follows the cursor.
func (a *ctTree) answer(r *http.Request, rng *rand.Rand) (int, map[string]string, []byte) {
	q := r.URL.Query()
	enc := func(v any) []byte { b, _ := json.Marshal(v); return b }
	var list []string
	var recs map[string]*ctNode
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "roots":
		list, recs = a.sortedIDs(a.roots), a.roots
	case len(parts) == 3 && parts[0] == "nodes" && parts[2] == "children":
		p := parts[1]
		if a.roots[p] == nil && a.nodes[p] == nil {
			return http.StatusNotFound, nil, enc(map[string]any{"object": "error", "code": "object_not_found", "message": "no " + p})
		}
		list, recs = a.children(p), a.nodes
		if p == a.cycleX {
			if c := a.cycleA(); c != "" {
				list = append(list, c)
				slices.Sort(list)
			}
		}
	case len(parts) == 3 && parts[0] == "nodes" && parts[2] == "comments":
		n := a.nodes[parts[1]]
		if n == nil {
			return http.StatusNotFound, nil, enc(map[string]any{"object": "error", "code": "object_not_found", "message": "no " + parts[1]})
		}
		recs = map[string]*ctNode{}
		for _, c := range a.comments(n) {
			recs[c.id] = c
			list = append(list, c.id)
		}
	default:
		return http.StatusNotFound, nil, enc(map[string]any{"object": "error", "code": "no_route", "message": r.URL.Path})
	}
	after := q.Get("start_cursor")
	if a.link {
		after = q.Get("after")
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n <= 0 {
		n = a.pageCap
	}
	n = min(n, a.pageCap)
	lo, _ := slices.BinarySearch(list, after)
	if after != "" && lo < len(list) && list[lo] == after {
		lo++
	}
	hi := min(lo+n, len(list))
	if hi < len(list) && hi-lo > 1 && rng.IntN(4) == 0 { // a short page, more to come
		hi = lo + 1 + rng.IntN(hi-lo-1)
	}
	page := []any{}
	for _, id := range list[lo:hi] {
		page = append(page, a.nodeJSON(recs[id]))
	}
	body := map[string]any{"object": "list", "results": page, "has_more": hi < len(list), "next_cursor": nil}
	hdr := map[string]string{}
	if hi < len(list) {
		last := list[hi-1]
		body["next_cursor"] = last
		if a.link {
			hdr["Link"] = fmt.Sprintf(`<%s%s?after=%s&limit=%d>; rel="next"`, a.srv.URL, r.URL.Path, url.QueryEscape(last), n)
		}
	}
	return 200, hdr, enc(body)
}

const ctSpec = `version: 1
name: NAME
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  timeout: 2s
  concurrency: CONC
  retry: {attempts: 4, initial: 1ms, max: 2ms}
  rules:
    - status: 200
      body: '.object? == "error" and .code? == "rate_limited"'
      action: retry
      message: .message
    - status: 200
      body: '.object? == "error"'
      action: fail
      message: '.code + ": " + .message'
streams:
  roots:
    request:
      path: /roots
      query: {limit: 3}
    records: .results[]
    paginate: PAGING
  nodes:
    for_each: roots
    recurse: {when: .has_children, max_depth: MAXDEPTH}
    request:
      path: /nodes/${ parent.id }/children
      query: {limit: 5}
    records: .results[]
    paginate: PAGING
  comments:
    for_each: nodes
    request:
      path: /nodes/${ parent.id }/comments
      query: {limit: 5}
    records: .results[]
    paginate: PAGING
tables:
  comments: {from: comments, mode: replace, delete_threshold: 1, primary_key: [id], row: '{id, v, note, parent: $parent.id, root: $roots.id}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING, root: STRING}}
  roots: {from: roots, mode: replace, delete_threshold: 1, primary_key: [id], row: '{id, v, note}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING, root: STRING}}
  nodes: {from: nodes, mode: replace, delete_threshold: 1, primary_key: [id], row: '{id, v, note, parent: $parent.id, root: $roots.id}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING, root: STRING}}
  # A row for each record written: each once in a sync.
  nodes_log: {from: nodes, mode: append, row: '{id, gen, parent: $parent.id}', columns: {id: STRING, gen: STRING, parent: STRING}}
`

// ctDest reads a table back: id → v|note|parent|root|deleted.
type ctDest struct {
	url  string
	read func(t *testing.T, table string) map[string]string
	// logged counts the log's rows of one sync by id: id → count.
	logged func(t *testing.T, table, gen string) map[string]string
	// settle, when set, waits for the destination to be free: PostgreSQL
	// drops a cancelled run's session lock once it sees the connection
	// close, which a run started at once may beat.
	settle func(t *testing.T)
}

const ctLogged = `SELECT id, CAST(count(*) AS TEXT) FROM %s WHERE gen = '%s' GROUP BY id`

const ctSelect = `SELECT id, coalesce(v, '<null>') || '|' || coalesce(note, '<null>') || '|' || coalesce(parent, '<null>') || '|' || coalesce(root, '<null>') || '|' || CASE WHEN _ferry_deleted THEN 'deleted' ELSE '' END FROM `

func ctSQLite(dir, name string) ctDest {
	path := filepath.Join(dir, "t.db")
	read := func(t *testing.T, q string) map[string]string {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(q)
		if err != nil {
			if strings.Contains(err.Error(), "no such table") {
				return map[string]string{}
			}
			t.Fatal(err)
		}
		defer rows.Close()
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
	return ctDest{url: "sqlite:" + path,
		read: func(t *testing.T, table string) map[string]string {
			return read(t, ctSelect+fmt.Sprintf(`"%s__%s"`, name, table))
		},
		logged: func(t *testing.T, table, gen string) map[string]string {
			return read(t, fmt.Sprintf(ctLogged, fmt.Sprintf(`"%s__%s"`, name, table), gen))
		}}
}

func ctPG(t *testing.T, pgURL, name string) ctDest {
	pgFreshSchema(t, pgURL, name)
	read := func(t *testing.T, q string) map[string]string {
		t.Helper()
		ctx := t.Context()
		conn := pgConnect(t, ctx, pgURL)
		defer conn.Close(ctx)
		out := map[string]string{}
		rows, err := conn.Query(ctx, q)
		if err != nil {
			if strings.Contains(err.Error(), "does not exist") { // no run made it yet
				return out
			}
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, row string
			if err := rows.Scan(&id, &row); err != nil {
				if strings.Contains(err.Error(), "does not exist") {
					return map[string]string{}
				}
				t.Fatal(err)
			}
			out[id] = row
		}
		if err := rows.Err(); err != nil && !strings.Contains(err.Error(), "does not exist") {
			t.Fatal(err)
		}
		return out
	}
	return ctDest{url: pgURL,
		settle: func(t *testing.T) {
			t.Helper()
			ctx := t.Context()
			conn := pgConnect(t, ctx, pgURL)
			defer conn.Close(ctx)
			// Blocks while the cancelled run's session holds it.
			if _, err := conn.Exec(ctx, `SET statement_timeout = '20s'`); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, "ferry:"+name); err != nil {
				t.Fatalf("wait for the destination lock: %v", err)
			}
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "ferry:"+name); err != nil {
				t.Fatal(err)
			}
		},
		read: func(t *testing.T, table string) map[string]string {
			return read(t, ctSelect+pgx.Identifier{name, table}.Sanitize())
		},
		logged: func(t *testing.T, table, gen string) map[string]string {
			return read(t, fmt.Sprintf(ctLogged, pgx.Identifier{name, table}.Sanitize(), gen))
		}}
}

// readAll is every table's rows, keyed table/id.
func (d ctDest) readAll(t *testing.T, tables ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range tables {
		for id, row := range d.read(t, table) {
			out[table+"/"+id] = row
		}
	}
	return out
}

// TestChaosTree is the property for a recursive stream: per seed, a random
// tree (depth, width, pages per child list; in some seeds a depth limit the
// tree passes, or a cycle, where every run must fail naming the node),
// changed between syncs (and, in some seeds, between the runs of a sync):
// runs under faults, or cancelled at random requests, each resumed.
func TestChaosTree(t *testing.T) {
	chaosMatrix(t, ctSeeds(t), ctRun)
}

// ctHarness runs one seed against a source.
type ctHarness struct {
	t    *testing.T
	b    *ctBook
	dest ctDest
	sp   *engine.Spec
	cfg  *engine.Config
	// The source: what a full read gives now, a change to it, and
	// whether it changes between the runs of a sync too.
	truthOf func() ctTruth
	mutate  func() string
	midSync bool
	// parent and child are the streams: the child's records (its
	// chains run per parent record) are checked for their chain.
	parent, child string
	tables        []string
	log           string // the append table of the child's records
	// quietOK tells a failure a run without faults may have, which the
	// source explains (a job slower than the poll timeout).
	quietOK func(msg string) bool
	// start is every row of the source as the sync began; since, every
	// record the source had since.
	start map[string]string
	since map[string]bool
	// multi: the records listed twice since the sync began (a cycle's
	// node, under its parent and under cycleX): their row may be either.
	multi map[string]bool
	// changed: the source changed between runs of the sync.
	changed bool
	// cut: a run of the sync was cancelled. again, when set, is how many
	// times a child record may be written in such a sync: a run cut
	// after it made an export job in place of one whose results were
	// committed, before the new job's results are, leaves the new job to
	// the next run, which writes them whole (README, Export jobs: an
	// append table may get the old job's rows again).
	cut   bool
	again func(id string) int
}

func (h *ctHarness) run(ctx context.Context, full bool) error {
	if h.dest.settle != nil {
		h.dest.settle(h.t)
	}
	_, err := engine.Run(ctx, h.sp, h.cfg, engine.RunOptions{Dest: h.dest.url, ResumeWithin: -1, FullRefresh: full})
	return err
}

func ctRun(t *testing.T, seed uint64, destKind, mode string) {
	a := newCTTree(t, seed)
	dir := t.TempDir()
	name := fmt.Sprintf("ctree_%d_%d_%s", os.Getpid(), seed, mode)
	var dest ctDest
	if destKind == "postgres" {
		dest = ctPG(t, os.Getenv("FERRY_TEST_POSTGRES_URL"), name)
	} else {
		dest = ctSQLite(dir, name)
	}
	paging := "{type: cursor, token: 'if .has_more then .next_cursor else null end', param: start_cursor}"
	if a.link {
		paging = "{type: link_header}"
	}
	conc := 1 + int(seed%4)
	text := strings.NewReplacer("name: NAME", "name: "+name, "PAGING", paging, "CONC", strconv.Itoa(conc),
		"MAXDEPTH", strconv.Itoa(a.maxDepth)).Replace(ctSpec)
	t.Logf("seed %d: %d roots, %d nodes, link=%v cap=%d max_depth=%d (deepest flagged %d) cycle=%s/%d midSync=%v concurrency=%d",
		seed, len(a.roots), len(a.nodes), a.link, a.pageCap, a.maxDepth, a.deepestFlagged(), a.cycleX, a.cycleUp, a.midSync, conc)
	path := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": a.srv.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	h := &ctHarness{t: t, b: &a.ctBook, dest: dest, sp: sp, cfg: cfg, truthOf: a.truth, mutate: a.mutate, midSync: a.midSync,
		parent: "roots", child: "nodes", tables: []string{"roots", "nodes", "comments"}, log: "nodes_log", quietOK: func(string) bool { return false }}
	h.loop(mode)
}

// loop runs the seed's syncs: each some runs under faults or cancelled at
// random requests, then quiet runs, each run checked.
func (h *ctHarness) loop(mode string) {
	t, a, seed := h.t, h.b, h.b.seed
	defer func() {
		if t.Failed() {
			a.mu.Lock()
			t.Logf("requests (url fault):\n%s", strings.Join(a.trace, "\n"))
			a.mu.Unlock()
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 2))
	h.begin()
	for sync := range 2 + rng.IntN(2) {
		if sync > 0 {
			// After a --full-refresh run that failed, the sync goes on.
			h.changed = h.start != nil
			t.Logf("seed %d: between syncs: %s", seed, h.mutate())
		}
		for i := range 1 + rng.IntN(3) {
			if i > 0 && h.midSync {
				h.changed = true
				t.Logf("seed %d: between runs of sync %d: %s", seed, sync+1, h.mutate())
			}
			tr := h.truth()
			ctx, cancel := context.WithCancel(t.Context())
			rate := 0.05 + 0.25*rng.Float64()
			if mode == "cancel" {
				rate *= float64(rng.IntN(2))
				a.cancelWithin(rng, 40, cancel)
			}
			a.setFaults(rate)
			err := h.run(ctx, false)
			a.mu.Lock()
			a.onRequest, a.faultRate = nil, 0
			injected := fmt.Sprint(a.injected)
			a.trace = append(a.trace, fmt.Sprintf("-- sync %d run %d ended: %v", sync+1, i+1, err))
			a.mu.Unlock()
			cut := ctx.Err() != nil
			h.cut = h.cut || cut
			cancel()
			t.Logf("seed %d %s: sync %d run %d (cut %v): %v; injected so far %s", seed, mode, sync+1, i+1, cut, err, injected)
			what := fmt.Sprintf("sync %d run %d", sync+1, i+1)
			h.noExtra(what)
			switch {
			case err == nil:
				h.exitZero(tr, what)
			case !cut:
				h.reported(tr, err, false, what)
			}
			if t.Failed() {
				return
			}
			if err == nil {
				h.begin() // the sync ended
				break
			}
		}
		// Quiet runs finish the sync (or, where the source has a node the
		// run must fail for, fail for exactly those).
		tr := h.truth()
		err := h.run(t.Context(), false)
		t.Logf("seed %d: sync %d quiet run: %v", seed, sync+1, err)
		h.noExtra("quiet run")
		if err == nil {
			h.exitZero(tr, "quiet run")
		} else {
			h.reported(tr, err, true, "quiet run")
		}
		if t.Failed() {
			return
		}
		if err != nil && len(tr.fails) == 0 {
			// Failed for a node moved since the sync began (a collision
			// with its row of the sync's earlier runs): once more, the
			// sync ends.
			tr = h.truth()
			err := h.run(t.Context(), false)
			if err != nil {
				t.Fatalf("seed %d: sync %d: the second quiet run: %v", seed, sync+1, err)
			}
			h.exitZero(tr, "the second quiet run")
			h.begin()
		}
		if len(tr.fails) > 0 {
			// The sync never ends: a sync of its own reads everything.
			h.begin()
			tr := h.truth()
			err := h.run(t.Context(), true)
			h.reported(tr, err, true, "quiet --full-refresh run")
			h.exact(tr, false, "quiet --full-refresh run")
			if t.Failed() {
				return
			}
			continue
		}
		// A sync of its own, quiet: exact, removed records marked deleted.
		h.begin()
		tr = h.truth()
		if err := h.run(t.Context(), false); err != nil {
			t.Fatalf("seed %d: a new sync without faults: %v", seed, err)
		}
		h.exact(tr, true, "a new quiet sync")
		if t.Failed() {
			return
		}
		h.begin()
	}
}

// begin marks the start of a sync: the next run starts one (the last
// ended, or starts anew).
func (h *ctHarness) begin() {
	h.start, h.since, h.multi, h.changed, h.cut = nil, map[string]bool{}, map[string]bool{}, false, false
	h.b.mu.Lock()
	h.b.gen++
	h.b.mu.Unlock()
}

// truth is the source now, noted as the sync's (its start, when the first).
func (h *ctHarness) truth() ctTruth {
	tr := h.truthOf()
	if h.start == nil {
		h.start = tr.rows
	}
	for key := range tr.rows {
		h.since[key] = true
	}
	for key := range tr.alt {
		h.multi[key] = true
	}
	return tr
}

// noExtra: no run, whatever its exit, leaves a live row the source never had.
func (h *ctHarness) noExtra(what string) {
	h.t.Helper()
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	for key, row := range h.dest.readAll(h.t, h.tables...) {
		if strings.HasSuffix(row, "|deleted") {
			continue
		}
		if !h.b.hist[key][row] {
			h.t.Errorf("seed %d: %s: %s = %q, a row the source never had (it had %v)", h.b.seed, what, key, row, slices.Sorted(maps.Keys(h.b.hist[key])))
		}
	}
}

// exitZero checks a run that exited 0: the source held nothing it had to
// fail for; every record unchanged since the sync began holds exactly its
// row; one changed since holds a row it had since; a row of a record gone
// before the sync began is marked deleted.
func (h *ctHarness) exitZero(now ctTruth, what string) {
	h.t.Helper()
	for id, f := range now.fails {
		h.t.Errorf("seed %d: %s exited 0, but node %s must fail it (%s)", h.b.seed, what, id, f)
	}
	if !h.changed && len(h.multi) == 0 {
		// Each record written once in the sync, however many runs it
		// took: a resumed run writes only what was not written.
		h.b.mu.Lock()
		gen := "g" + strconv.Itoa(h.b.gen)
		h.b.mu.Unlock()
		logged := h.dest.logged(h.t, h.log, gen)
		for key := range now.rows {
			id, isNode := strings.CutPrefix(key, h.child+"/")
			if n, _ := strconv.Atoi(logged[id]); isNode && n != 1 && !(h.cut && h.again != nil && n <= h.again(id)) {
				h.t.Errorf("seed %d: %s exited 0: node %s (read in %s) logged %q times in the sync, want once", h.b.seed, what, id, now.chain[key], logged[id])
			}
		}
	}
	got := h.dest.readAll(h.t, h.tables...)
	for key, want := range now.rows {
		g, ok := got[key]
		switch {
		case h.multi[key]:
		case h.start[key] == want && !ok:
			h.t.Errorf("seed %d: %s exited 0: %s missing (read in %s)", h.b.seed, what, key, now.chain[key])
		case h.start[key] == want && g != want:
			h.t.Errorf("seed %d: %s exited 0: %s = %q, want %q", h.b.seed, what, key, g, want)
		}
	}
	for key, g := range got {
		if !h.since[key] && !strings.HasSuffix(g, "|deleted") {
			h.t.Errorf("seed %d: %s exited 0: %s = %q, a record gone before the sync began, not marked deleted", h.b.seed, what, key, g)
		}
	}
}

// exact: every table holds exactly the source's records (with deleted,
// removed ones marked deleted; without, a row the source does not give
// may stay, as a run that fails does not reconcile).
func (h *ctHarness) exact(tr ctTruth, deleted bool, what string) {
	h.t.Helper()
	got := h.dest.readAll(h.t, h.tables...)
	for key, want := range tr.rows {
		if g := got[key]; g != want && g != tr.alt[key] {
			h.t.Errorf("seed %d: %s: %s = %q, want %q (read in %s)", h.b.seed, what, key, g, want, tr.chain[key])
		}
	}
	if !deleted {
		return
	}
	for key, g := range got {
		if _, ok := tr.rows[key]; !ok && !strings.HasSuffix(g, "|deleted") {
			h.t.Errorf("seed %d: %s: %s = %q, which the source no longer has, not marked deleted", h.b.seed, what, key, g)
		}
	}
}

// reported checks a failed run, not cut: it exits non-zero, lists its
// failures, and each record it misses (or holds a row of other than the
// source's now) is explained by a failure of a chain above it: the roots
// stream, or the nodes stream in a chain its own chain begins with. Each
// node the run must fail for is named, when the run was quiet (under
// faults a failed chain above may hide it); a quiet run fails for nothing
// else.
func (h *ctHarness) reported(tr ctTruth, err error, quiet bool, what string) {
	h.t.Helper()
	seed := h.b.seed
	if err == nil {
		if len(tr.fails) > 0 {
			h.t.Errorf("seed %d: %s exited 0, but must fail for %v", seed, what, tr.fails)
		}
		return
	}
	var re *engine.RunError
	if !errors.As(err, &re) {
		h.t.Errorf("seed %d: %s: %v is not a RunError listing its failures", seed, what, err)
		return
	}
	if engine.ExitCode(err, false) == 0 {
		h.t.Errorf("seed %d: %s: failed run exits 0: %v", seed, what, err)
	}
	// covers: a failed chain explains a record of its stream read in it,
	// and every record below: the parent stream's, any; the child's, a
	// record whose chain it begins.
	covers := func(stream, chain string) bool {
		for _, f := range re.Failures {
			switch {
			case f.Record():
			case f.Stream == h.parent:
				return true
			case f.Stream == stream && f.Parents == chain:
				return true
			case f.Stream == h.child && strings.HasPrefix(chain, f.Parents+" > "):
				return true
			}
		}
		return false
	}
	got := h.dest.readAll(h.t, h.tables...)
	for key, want := range tr.rows {
		if g := got[key]; g == want || g == tr.alt[key] || h.start[key] != want || h.multi[key] {
			// Right, or changed since the sync began: a resumed run reads
			// on from its checkpoints, and the change is the next sync's
			// (noExtra checks it holds a row the source had).
			continue
		}
		if strings.HasPrefix(key, h.parent+"/") {
			if !covers(h.parent, "") {
				h.t.Errorf("seed %d: %s: %s = %q, want %q, and no failure of stream %s", seed, what, key, got[key], want, h.parent)
			}
			continue
		}
		stream, _, _ := strings.Cut(key, "/")
		if !covers(stream, tr.chain[key]) {
			h.t.Errorf("seed %d: %s: %s = %q, want %q, silently (its chain %s failed nowhere)", seed, what, key, got[key], want, tr.chain[key])
		}
	}
	named := func(id, f string) bool {
		kind, chain, _ := strings.Cut(f, "|")
		for _, x := range re.Failures {
			if x.Stream == h.child && x.Parents == chain && strings.Contains(x.Err.Error(), map[string]string{"max_depth": "max_depth", "cycle": "cycle"}[kind]) {
				return true
			}
		}
		return false
	}
	if !quiet {
		return
	}
	for id, f := range tr.fails {
		if !named(id, f) {
			h.t.Errorf("seed %d: %s: node %s must fail the run (%s), not named: %v", seed, what, id, f, err)
		}
	}
	for _, x := range re.Failures {
		ok := false
		for id, f := range tr.fails {
			_, chain, _ := strings.Cut(f, "|")
			ok = ok || x.Parents == chain || x.Record() && strings.HasSuffix(x.Parents, "nodes[id="+id+"]") && strings.Contains(f, "cycle|")
		}
		ok = ok || h.quietOK(x.Error())
		if x.Record() && x.Table != "" && strings.Contains(x.Err.Error(), "another record") {
			// A node moved since the sync began (or below a node moved
			// to another root) is read under its new parent: a
			// collision with the row an earlier run of the sync wrote
			// under the old one (README: a repeat with other values from
			// another parent is one), never silent.
			segs := strings.Split(x.Parents, " > ")
			stream, id, _ := strings.Cut(strings.TrimSuffix(segs[len(segs)-1], "]"), "[id=")
			key := stream + "/" + id
			ok = ok || h.start[key] != tr.rows[key] || h.multi[key]
		}
		if !ok {
			h.t.Errorf("seed %d: %s: a quiet run fails for %v, which the source does not explain", seed, what, x)
		}
	}
}

// ceAPI is the simulated export API: GET /accounts lists accounts, POST
// /accounts/{id}/exports makes an export job of the account's events as
// they are then, GET /exports/{job} answers how it stands ("running",
// "completed" with presigned links to its result files on the storage
// host, or "failed"), and the storage host serves the files (NDJSON or
// CSV, gzip or not; a file may hold no event: a CSV header only).
// Unkind: creates refused, jobs that fail, jobs slower than the poll
// timeout, jobs gone (404) once read, links that expire (403 once),
// downloads cut short or gzip-corrupt, and the usual 429 and 5xx.
type ceAPI struct {
	ctBook
	api, storage *httptest.Server
	format       string // ndjson or csv
	gzip         bool
	// expires is the spec's async.expires: in some seeds shorter than a
	// slow job takes, so a resumed run makes a new job instead.
	expires string
	midSync bool // the events change between the runs of one sync too

	rng      *rand.Rand
	accounts map[string]*ctNode
	events   map[string]*ctNode // parent: the account
	jobs     map[string]*ceJob
	made     int // jobs created
	sig      int // links signed
	// read: per account, the jobs whose results were served in a sync
	// (gen).
	read map[[2]string]map[string]bool
}

// jobsRead is how many jobs' results of event id's account were served
// in the current sync (at least 1).
func (a *ceAPI) jobsRead(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.events[id]
	if e == nil {
		return 1
	}
	return max(1, len(a.read[[2]string{e.parent, strconv.Itoa(a.gen)}]))
}

type ceJob struct {
	id, account string
	files       [][]*ctNode // the events as the job found them, split into files
	kind        string      // "", "fail", "slow", "gone" (404 once it was done)
	created     time.Time
	done        bool
}

func newCEAPI(t *testing.T, seed uint64) *ceAPI {
	rng := rand.New(rand.NewPCG(seed, 0xe4))
	a := &ceAPI{ctBook: newCTBook(seed), rng: rng, accounts: map[string]*ctNode{}, events: map[string]*ctNode{}, jobs: map[string]*ceJob{}, read: map[[2]string]map[string]bool{}}
	a.format = []string{"ndjson", "csv"}[rng.IntN(2)]
	a.gzip = rng.IntN(2) == 0
	a.expires = []string{"24h", "250ms"}[rng.IntN(2)]
	a.midSync = rng.IntN(2) == 0
	for range 1 + rng.IntN(4) {
		a.addAccount()
	}
	for range rng.IntN(40) {
		a.addEvent()
	}
	a.api = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.api.Close)
	a.storage = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.storage.Close)
	a.recordHist()
	return a
}

func (a *ceAPI) newID(prefix string) string {
	for {
		id := fmt.Sprintf("%s%04d", prefix, a.rng.IntN(10000))
		if a.accounts[id] == nil && a.events[id] == nil {
			return id
		}
	}
}

func (a *ceAPI) addAccount() {
	id := a.newID("a")
	a.accounts[id] = &ctNode{id: id, v: fmt.Sprintf("av%d", a.rng.IntN(100)), note: "an", hasNote: a.rng.IntN(2) == 0}
}

func (a *ceAPI) addEvent() {
	ids := slices.Sorted(maps.Keys(a.accounts))
	id := a.newID("e")
	a.events[id] = &ctNode{id: id, parent: ids[a.rng.IntN(len(ids))], v: fmt.Sprintf("v%d", a.rng.IntN(1000)),
		note: "say \"hi\", then\nbye", hasNote: a.rng.IntN(3) > 0}
}

// row is a record's row as the table holds it: CSV has no null, its
// missing note is "".
func (a *ceAPI) row(n *ctNode) string {
	note := "<null>"
	switch {
	case n.hasNote:
		note = n.note
	case a.format == "csv" && n.parent != "":
		note = ""
	}
	if n.parent == "" {
		return n.v + "|" + note + "|<null>|<null>|"
	}
	return n.v + "|" + note + "|" + n.parent + "|" + n.parent + "|"
}

func (a *ceAPI) recordHist() {
	for _, r := range a.accounts {
		a.note("accounts/"+r.id, a.row(r))
	}
	for _, e := range a.events {
		a.note("events/"+e.id, a.row(e))
	}
}

func (a *ceAPI) mutate() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var did []string
	for range 1 + a.rng.IntN(6) {
		switch k := a.rng.IntN(20); {
		case k < 8:
			a.addEvent()
			did = append(did, "add event")
		case k < 12 && len(a.events) > 0:
			ids := slices.Sorted(maps.Keys(a.events))
			id := ids[a.rng.IntN(len(ids))]
			delete(a.events, id)
			did = append(did, "remove "+id)
		case k < 17 && len(a.events) > 0:
			ids := slices.Sorted(maps.Keys(a.events))
			id := ids[a.rng.IntN(len(ids))]
			a.events[id].v = fmt.Sprintf("v%d", a.rng.IntN(1000))
			a.events[id].hasNote = a.rng.IntN(2) == 0
			did = append(did, "change "+id)
		case k < 19 || len(a.accounts) < 2:
			a.addAccount()
			did = append(did, "add account")
		default:
			ids := slices.Sorted(maps.Keys(a.accounts))
			id := ids[a.rng.IntN(len(ids))]
			delete(a.accounts, id)
			for e, n := range a.events {
				if n.parent == id {
					delete(a.events, e)
				}
			}
			did = append(did, "remove account "+id)
		}
	}
	a.recordHist()
	return strings.Join(did, ", ")
}

func (a *ceAPI) truth() ctTruth {
	a.mu.Lock()
	defer a.mu.Unlock()
	tr := ctTruth{rows: map[string]string{}, chain: map[string]string{}, fails: map[string]string{}, alt: map[string]string{}}
	for _, r := range a.accounts {
		tr.rows["accounts/"+r.id] = a.row(r)
	}
	for _, e := range a.events {
		tr.rows["events/"+e.id] = a.row(e)
		tr.chain["events/"+e.id] = "accounts[id=" + e.parent + "]"
	}
	return tr
}

var ceFaults = []string{"429", "500", "503", "reset", "refused", "job-fail", "job-slow", "job-gone", "expired-link", "cut", "corrupt"}

func (a *ceAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	n, hook, rng, fault := a.arrive(r, ceFaults)
	status, hdr, body := a.answer(r, fault, rng)
	a.mu.Unlock()
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
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html><body>%d</body></html>", code)
		return
	case "reset":
		hijackClose(w, "")
		return
	case "cut":
		if status == 200 && len(body) > 1 {
			hijackClose(w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)/2]))
			return
		}
	}
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	w.Write(body)
}

// answer serves a request (mu held); fault may shape it.
func (a *ceAPI) answer(r *http.Request, fault string, rng *rand.Rand) (int, map[string]string, []byte) {
	enc := func(v any) []byte { b, _ := json.Marshal(v); return b }
	js := map[string]string{"Content-Type": "application/json"}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/accounts":
		items := []any{}
		for _, id := range slices.Sorted(maps.Keys(a.accounts)) {
			acc := a.accounts[id]
			m := map[string]any{"id": id, "v": acc.v}
			if acc.hasNote {
				m["note"] = acc.note
			}
			items = append(items, m)
		}
		return 200, js, enc(map[string]any{"items": items})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "accounts" && parts[2] == "exports":
		acc := parts[1]
		if a.accounts[acc] == nil {
			return 404, js, enc(map[string]any{"error": "no account " + acc})
		}
		if fault == "refused" {
			return 422, js, enc(map[string]any{"error": "too many exports running"})
		}
		a.made++
		j := &ceJob{id: fmt.Sprintf("j%d", a.made), account: acc, created: time.Now()}
		switch fault {
		case "job-fail":
			j.kind = "fail"
		case "job-slow":
			j.kind = "slow"
		case "job-gone":
			j.kind = "gone"
		}
		var evs []*ctNode
		for _, id := range slices.Sorted(maps.Keys(a.events)) {
			if e := a.events[id]; e.parent == acc {
				c := *e
				evs = append(evs, &c)
			}
		}
		nf := 1 + rng.IntN(3)
		j.files = make([][]*ctNode, nf)
		for _, e := range evs {
			f := rng.IntN(nf)
			j.files[f] = append(j.files[f], e)
		}
		a.jobs[j.id] = j
		return 201, js, enc(map[string]any{"id": j.id, "status": "running"})
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "exports":
		j := a.jobs[parts[1]]
		if j == nil || j.kind == "gone" && j.done {
			return 404, js, enc(map[string]any{"error": "export not found (expired)"})
		}
		switch {
		case j.kind == "fail":
			return 200, js, enc(map[string]any{"id": j.id, "status": "failed", "error": map[string]any{"message": "export failed: worker lost"}})
		case j.kind == "slow" && time.Since(j.created) < 350*time.Millisecond:
			return 200, map[string]string{"Content-Type": "application/json", "Retry-After": "0"}, enc(map[string]any{"id": j.id, "status": "running"})
		}
		j.done = true
		var files []any
		for i := range j.files {
			a.sig++
			files = append(files, map[string]any{"url": fmt.Sprintf("%s/bucket/%s/part-%d.%s?X-Amz-Signature=s%d", a.storage.URL, j.id, i, a.format, a.sig)})
		}
		return 200, js, enc(map[string]any{"id": j.id, "status": "completed", "files": files})
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "bucket":
		j := a.jobs[parts[1]]
		var i int
		if _, err := fmt.Sscanf(parts[2], "part-%d.", &i); err != nil || j == nil || i >= len(j.files) {
			return 404, map[string]string{"Content-Type": "application/xml"}, []byte(`<Error><Code>NoSuchKey</Code></Error>`)
		}
		if fault == "expired-link" {
			return 403, map[string]string{"Content-Type": "application/xml"}, []byte(`<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
		}
		body := a.file(j.files[i])
		k := [2]string{j.account, strconv.Itoa(a.gen)}
		if a.read[k] == nil {
			a.read[k] = map[string]bool{}
		}
		a.read[k][j.id] = true
		hdr := map[string]string{"Content-Type": "application/x-ndjson"}
		if a.format == "csv" {
			hdr["Content-Type"] = "text/csv"
		}
		if a.gzip {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(body)
			zw.Close()
			body = buf.Bytes()
			hdr["Content-Type"] = "application/gzip"
			if fault == "corrupt" && len(body) > 20 {
				body[len(body)/2] ^= 0xff // a checksum, or the deflate data, no longer holds
				body[len(body)-6] ^= 0xff
			}
		}
		return 200, hdr, body
	}
	return 404, js, enc(map[string]any{"error": "no route " + r.Method + " " + r.URL.Path})
}

// file is a result file of events: NDJSON, or CSV with a header.
func (a *ceAPI) file(evs []*ctNode) []byte {
	var buf bytes.Buffer
	gen := "g" + strconv.Itoa(a.gen)
	if a.format == "csv" {
		cw := csv.NewWriter(&buf)
		cw.Write([]string{"id", "v", "note", "gen"})
		for _, e := range evs {
			note := ""
			if e.hasNote {
				note = e.note
			}
			cw.Write([]string{e.id, e.v, note, gen})
		}
		cw.Flush()
		return buf.Bytes()
	}
	for _, e := range evs {
		m := map[string]any{"id": e.id, "v": e.v, "gen": gen}
		if e.hasNote {
			m["note"] = e.note
		}
		b, _ := json.Marshal(m)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

const ceSpec = `version: 1
name: NAME
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  timeout: 2s
  concurrency: CONC
  retry: {attempts: 4, initial: 1ms, max: 2ms}
streams:
  accounts:
    request: {path: /accounts}
    records: .items[]
  events:
    for_each: accounts
    async:
      create:
        path: /accounts/${ parent.id }/exports
        body: {format: FORMAT}
        id: .id
      poll:
        path: /exports/${ job.id }
        every: 5ms
        timeout: 200ms
        done: .status == "completed"
        failed: .status == "failed"
        message: .error.message
      download:
        urls: '[.files[].url]'
      expires: EXPIRES
    response: {format: FORMAT}
tables:
  accounts: {from: accounts, mode: replace, delete_threshold: 1, primary_key: [id], row: '{id, v, note}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING, root: STRING}}
  events: {from: events, mode: replace, delete_threshold: 1, primary_key: [id], row: '{id, v, note, parent: $parent.id, root: $accounts.id}', columns: {id: STRING, v: STRING, note: STRING, parent: STRING, root: STRING}}
  # A row for each record written: each once in a sync.
  events_log: {from: events, mode: append, row: '{id, gen}', columns: {id: STRING, gen: STRING}}
`

// TestChaosExport is the property for an export job stream (async): per
// seed, accounts whose events are read by one export job each, in NDJSON
// or CSV, gzip or not, the events changed between syncs; runs under
// faults (creates refused, jobs failed, slower than the poll timeout,
// gone once read, links expired, downloads cut or gzip-corrupt, 429, 5xx,
// lost connections), or cancelled at random requests, each resumed.
func TestChaosExport(t *testing.T) {
	chaosMatrix(t, ctSeeds(t), ceRun)
}

func ceRun(t *testing.T, seed uint64, destKind, mode string) {
	a := newCEAPI(t, seed)
	dir := t.TempDir()
	name := fmt.Sprintf("cexp_%d_%d_%s", os.Getpid(), seed, mode)
	var dest ctDest
	if destKind == "postgres" {
		dest = ctPG(t, os.Getenv("FERRY_TEST_POSTGRES_URL"), name)
	} else {
		dest = ctSQLite(dir, name)
	}
	conc := 1 + int(seed%4)
	text := strings.NewReplacer("name: NAME", "name: "+name, "FORMAT", a.format, "CONC", strconv.Itoa(conc), "EXPIRES", a.expires).Replace(ceSpec)
	t.Logf("seed %d: %d accounts, %d events, %s gzip=%v expires=%s midSync=%v concurrency=%d", seed, len(a.accounts), len(a.events), a.format, a.gzip, a.expires, a.midSync, conc)
	path := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{Sets: map[string]string{"url": a.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	h := &ctHarness{t: t, b: &a.ctBook, dest: dest, sp: sp, cfg: cfg, truthOf: a.truth, mutate: a.mutate, midSync: a.midSync,
		parent: "accounts", child: "events", tables: []string{"accounts", "events"}, log: "events_log", again: a.jobsRead,
		// A job made by a run under faults may be slower than the
		// timeout, or fail, when a quiet run polls it: the next run
		// polls it again, or makes a new one.
		quietOK: func(msg string) bool {
			return strings.Contains(msg, "not done after") || strings.Contains(msg, "export job") && strings.Contains(msg, "failed: export failed")
		}}
	h.loop(mode)
}
