package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// The Port chaos property test: a source of three related kinds (teams
// with a parent team, services with a team and dependencies on other
// services, deploys with a service and teams; some targets never exist,
// one is a hand-made Port entity) changes between runs and during them
// (records created, changed, removed; a kind emptied; a record Port holds
// under another owner or none produced for a while); ferry runs it into
// the Port simulator several times, Port answering with seeded faults
// (429; 5xx before and after applying; a dropped connection after
// applying; a bulk answer that leaves an entity out, applied or not; a
// garbled answer), the source failing a page now and then, some runs
// cancelled at a random request (an interrupt stops extraction; Port's
// load, once begun, finishes), some with --no-delete. Per seed: the
// delete threshold (default, 0.5, 1), missing_relations (drop, stub,
// fail), Port's rate limit and search lag, and whether a table makes a
// failed run's sync resumable. "Held" below means held by the source from
// the run's start to its end (a record removed during a run may go
// either way).
//
//  1. No run deletes, or asks Port to delete, an entity the source held;
//     none touches an entity of another owner or of none.
//  2. A run that exits 0 leaves every held entity in Port, owned by the
//     run's owner, with the values of a version the source had during the
//     run (that at its start or newer) and that version's relations to
//     every target Port holds (README "Port": one neither written nor in
//     Port is dropped, or stubbed); and a blueprint that keeps an owned
//     entity the source did not have during the run is not reported
//     reconciled (threshold, --no-delete, a resumed sync, a relation to
//     it: README "Ownership of Port entities").
//  3. A run that exits non-zero names every held entity it did not write
//     as the source had it: in Port's errors (conflicts included), as a
//     failed chain of the stream feeding it, or as the failed target of
//     a relation it lacks; or it did not get to Port's load, or that
//     load failed whole (Port's error after its retries).
//  4. After two quiet runs (no faults, no changes) Port's owned entities
//     are exactly the source's, a stale one left only where the run names
//     it (skipped_deletes, delete_errors); the second run sends no upsert.
//
// FERRY_CHAOS_PORT_SEEDS=n runs n seeds (default 3); FERRY_CHAOS_PORT_SEED=s
// runs seed s alone (its trace is logged when it fails).

// cpKinds are the source lists, each a blueprint.
var cpKinds = []struct{ path, bp string }{{"teams", "cteam"}, {"services", "csvc"}, {"deploys", "cdeploy"}}

const cpBlueprints = `[
 {"identifier": "cteam", "title": "Team", "schema": {"properties": {"v": {"type": "string", "title": "V"}, "n": {"type": "number", "title": "N"}}, "required": []},
  "relations": {"parent": {"title": "Parent", "target": "cteam", "many": false, "required": false}}},
 {"identifier": "csvc", "title": "Service", "schema": {"properties": {"v": {"type": "string", "title": "V"}, "n": {"type": "number", "title": "N"}}, "required": []},
  "relations": {"team": {"title": "Team", "target": "cteam", "many": false, "required": false},
                "deps": {"title": "Deps", "target": "csvc", "many": true, "required": false}}},
 {"identifier": "cdeploy", "title": "Deploy", "schema": {"properties": {"v": {"type": "string", "title": "V"}, "n": {"type": "number", "title": "N"}}, "required": []},
  "relations": {"service": {"title": "Service", "target": "csvc", "many": false, "required": false},
                "teams": {"title": "Teams", "target": "cteam", "many": true, "required": false}}}]`

const cpSpec = `version: 1
name: NAME
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  retry: {attempts: 2, initial: 1ms, max: 2ms}
  concurrency: 2
streams:
  teams:
    request: {path: /teams, query: {limit: PAGE}}
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
  services:
    request: {path: /services, query: {limit: PAGE}}
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
  deploys:
    request: {path: /deploys, query: {limit: PAGE}}
    records: .items[]
    paginate: {type: cursor, token: .next, param: after}
TABLESport:
  blueprints: bp.json
THRESHOLD  entities:
    - blueprint: cteam
      from: teams
      identifier: .id
      properties: {v: .v, n: .n}
      relations: {parent: .parent}
    - blueprint: csvc
      from: services
      identifier: .id
      properties: {v: .v, n: .n}
      relations: {team: .team, deps: .deps}
    - blueprint: cdeploy
      from: deploys
      identifier: .id
      properties: {v: .v, n: .n}
      relations: {service: .service, teams: .teams}
`

// cpKey is one entity: blueprint and identifier.
type cpKey struct{ bp, id string }

// cpVer is one version of a source record.
type cpVer struct {
	ver  int
	n    any            // nil: the field is absent
	rels map[string]any // relation → identifier, list of identifiers, or nil
}

// cpSource is the source API: three keyset-paged lists whose records
// change between and during runs.
type cpSource struct {
	seed uint64
	srv  *httptest.Server

	mu     sync.Mutex
	rng    *rand.Rand
	ver    int                     // the last version given
	recs   map[cpKey]cpVer         // what the source holds now
	hist   map[cpKey]map[int]cpVer // every version each key had
	nextID int
	// handMade: Port holds hand-1 (made by hand), a relation target.
	handMade bool
	faults   float64 // the share of source requests failed (a 400)
	served   int
	onServe  func(n int) // called (unlocked) before each answer
	// During a run: keys created, changed or removed (see startRun).
	touched map[cpKey]bool
	removed map[cpKey]bool
	trace   []string
}

func newCPSource(t *testing.T, seed uint64) *cpSource {
	s := &cpSource{seed: seed, rng: rand.New(rand.NewPCG(seed, 0xc4a05)), recs: map[cpKey]cpVer{}, hist: map[cpKey]map[int]cpVer{}}
	for _, k := range cpKinds {
		for range 2 + s.rng.IntN(5) {
			s.createLocked(k.bp)
		}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// ids lists the source's identifiers of bp, sorted.
func (s *cpSource) idsLocked(bp string) []string {
	var out []string
	for k := range s.recs {
		if k.bp == bp {
			out = append(out, k.id)
		}
	}
	slices.Sort(out)
	return out
}

// target picks a relation target of bp: mostly one the source holds, at
// times one it never holds, or (teams) the hand-made entity in Port.
func (s *cpSource) targetLocked(bp string) string {
	ids := s.idsLocked(bp)
	switch r := s.rng.IntN(10); {
	case r == 0:
		return fmt.Sprintf("ghost-%s-%d", bp, s.rng.IntN(3))
	case r == 1 && bp == "cteam" && s.handMade:
		return "hand-1"
	case len(ids) == 0:
		return fmt.Sprintf("ghost-%s-%d", bp, s.rng.IntN(3))
	}
	return ids[s.rng.IntN(len(ids))]
}

// versionLocked makes a new version of k's record.
func (s *cpSource) versionLocked(k cpKey) {
	s.ver++
	v := cpVer{ver: s.ver, rels: map[string]any{}}
	if s.rng.IntN(3) > 0 {
		v.n = json.Number(strconv.Itoa(s.rng.IntN(100)))
	}
	many := func(bp string) any {
		out := []any{}
		for range s.rng.IntN(3) {
			if t := s.targetLocked(bp); t != k.id {
				out = append(out, t)
			}
		}
		return out
	}
	one := func(bp string) any {
		if s.rng.IntN(4) == 0 {
			return nil
		}
		if t := s.targetLocked(bp); t != k.id || bp != k.bp {
			return t
		}
		return nil
	}
	switch k.bp {
	case "cteam":
		v.rels["parent"] = one("cteam")
	case "csvc":
		v.rels["team"], v.rels["deps"] = one("cteam"), many("csvc")
	case "cdeploy":
		v.rels["service"], v.rels["teams"] = one("csvc"), many("cteam")
	}
	s.recs[k] = v
	if s.hist[k] == nil {
		s.hist[k] = map[int]cpVer{}
	}
	s.hist[k][v.ver] = v
	if s.touched != nil {
		s.touched[k] = true
	}
}

func (s *cpSource) createLocked(bp string) cpKey {
	s.nextID++
	k := cpKey{bp, fmt.Sprintf("%s-%d", bp, s.nextID)}
	s.versionLocked(k)
	return k
}

// mutateLocked creates, changes or removes one record.
func (s *cpSource) mutateLocked() string {
	bp := cpKinds[s.rng.IntN(len(cpKinds))].bp
	ids := s.idsLocked(bp)
	switch r := s.rng.IntN(3); {
	case r == 0 || len(ids) == 0:
		return "create " + s.createLocked(bp).id
	case r == 1:
		k := cpKey{bp, ids[s.rng.IntN(len(ids))]}
		s.versionLocked(k)
		return "update " + k.id
	default:
		k := cpKey{bp, ids[s.rng.IntN(len(ids))]}
		delete(s.recs, k)
		if s.removed != nil {
			s.removed[k] = true
		}
		return "remove " + k.id
	}
}

// massRemoveLocked removes every record of one kind but at most one: a
// source that emptied, or an answer that looks like it (the delete
// threshold's case).
func (s *cpSource) massRemoveLocked() string {
	bp := cpKinds[s.rng.IntN(len(cpKinds))].bp
	ids := s.idsLocked(bp)
	keep := s.rng.IntN(2)
	for _, id := range ids[min(keep, len(ids)):] {
		delete(s.recs, cpKey{bp, id})
	}
	return fmt.Sprintf("remove all %s but %d", bp, keep)
}

// cpForeign are team identifiers Port holds under another owner or none.
var cpForeign = []string{"other-1", "hand-1"}

// foreignLocked makes the source produce (or stop producing) an entity
// Port holds under another owner, or under none: a conflict while it does.
func (s *cpSource) foreignLocked(produce bool) string {
	id := cpForeign[s.rng.IntN(len(cpForeign))]
	k := cpKey{"cteam", id}
	if !produce {
		for _, id := range cpForeign {
			delete(s.recs, cpKey{"cteam", id})
		}
		return "stop producing " + strings.Join(cpForeign, ", ")
	}
	s.versionLocked(k)
	return "produce " + id + " (not the run's in Port)"
}

// unghostLocked gives every record relating to a target the source does
// not hold (a ghost, a removed record; not the hand-made one) a new
// version without: under missing_relations: fail they fail until then.
func (s *cpSource) unghostLocked() string {
	missing := func(bp, id string) bool {
		_, ok := s.recs[cpKey{bp, id}]
		return !ok && id != "hand-1"
	}
	n := 0
	for _, k := range slices.SortedFunc(maps.Keys(s.recs), func(a, b cpKey) int { return strings.Compare(a.bp+"/"+a.id, b.bp+"/"+b.id) }) {
		v := s.recs[k]
		nv := cpVer{n: v.n, rels: map[string]any{}}
		changed := false
		for rel, t := range v.rels {
			target := cpTarget(k.bp, rel)
			switch x := t.(type) {
			case string:
				if missing(target, x) {
					t, changed = nil, true
				}
			case []any:
				keep := []any{}
				for _, id := range x {
					if missing(target, id.(string)) {
						changed = true
					} else {
						keep = append(keep, id)
					}
				}
				t = keep
			}
			nv.rels[rel] = t
		}
		if !changed {
			continue
		}
		s.ver++
		nv.ver = s.ver
		s.recs[k] = nv
		s.hist[k][nv.ver] = nv
		n++
	}
	return fmt.Sprintf("%d records relate to missing targets no more", n)
}

func (s *cpSource) json(k cpKey, v cpVer) map[string]any {
	m := map[string]any{"id": k.id, "v": "v" + strconv.Itoa(v.ver)}
	if v.n != nil {
		m["n"] = v.n
	}
	maps.Copy(m, v.rels)
	return m
}

func (s *cpSource) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.served++
	n, hook := s.served, s.onServe
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := fnv.New64a()
	fmt.Fprintf(h, "%s#%d", r.URL, n)
	if s.faults > 0 && rand.New(rand.NewPCG(s.seed, h.Sum64())).Float64() < s.faults {
		s.trace = append(s.trace, "source "+r.URL.String()+" 400")
		http.Error(w, `{"message":"bad request"}`, http.StatusBadRequest)
		return
	}
	bp := ""
	for _, k := range cpKinds {
		if r.URL.Path == "/"+k.path {
			bp = k.bp
		}
	}
	if bp == "" {
		http.NotFound(w, r)
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	after := r.URL.Query().Get("after")
	items := []any{}
	var next any
	for _, id := range s.idsLocked(bp) {
		if after != "" && id <= after {
			continue
		}
		if len(items) == limit {
			next = items[len(items)-1].(map[string]any)["id"]
			break
		}
		k := cpKey{bp, id}
		items = append(items, s.json(k, s.recs[k]))
	}
	s.trace = append(s.trace, fmt.Sprintf("source %s: %d items", r.URL, len(items)))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"items": items, "next": next})
}

// cpState is one snapshot of what a property is checked against.
type cpState struct {
	recs map[cpKey]cpVer
}

func (s *cpSource) snapshot() cpState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cpState{recs: maps.Clone(s.recs)}
}

func cpSeeds(t *testing.T) []uint64 { return seedsFrom(t, "FERRY_CHAOS_PORT", 3) }

func TestChaosPort(t *testing.T) {
	for _, seed := range cpSeeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			chaosPortRun(t, seed)
		})
	}
}

// cpRun is one run's setting.
type cpRun struct {
	faults   float64 // the share of Port requests answered with a fault
	srcFault float64 // the share of source requests failed
	cancelAt int     // cancel at this request (source and Port counted together); 0: never
	mid      []int   // source requests before which the source changes
	noDelete bool
	adopt    bool // --adopt-unowned
}

// cpHarness runs one seed.
type cpHarness struct {
	t     *testing.T
	seed  uint64
	src   *cpSource
	port  *portsim.Server
	sp    *engine.Spec
	cfg   *engine.Config
	path  string
	dir   string
	owner string
	lag   time.Duration // Port's search lag
	// policy is the spec's missing_relations (drop, stub or fail).
	policy string

	mu       sync.Mutex
	portSeen map[string]int
	injected map[string]int
	trace    []string
}

func chaosPortRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	h := &cpHarness{t: t, seed: seed, src: newCPSource(t, seed), dir: t.TempDir(), portSeen: map[string]int{}, injected: map[string]int{}}
	// Port's search lags its writes on some seeds; runs start once it has
	// caught up (README "Search lag": a run started moments after a write
	// may not see it, and is not expected to).
	if rng.IntN(2) == 0 {
		h.lag = time.Duration(20+rng.IntN(80)) * time.Millisecond
	}
	h.port = portsim.New(portsim.Options{RateLimit: 30 + rng.IntN(200), Window: time.Second, SearchLag: h.lag})
	t.Cleanup(h.port.Close)
	threshold := []string{"", "  delete_threshold: 0.5\n", "  delete_threshold: 1\n"}[rng.IntN(3)]
	name := fmt.Sprintf("cp%d", seed)
	// With a table, a failed run keeps its checkpoints and the next one
	// resumes the sync (deleting no stale entity: README "Ownership").
	tables := ""
	if rng.IntN(2) == 0 {
		tables = "tables:\n  teams: {from: teams, primary_key: [id], row: '{id, v}'}\n"
	}
	// What becomes of a relation to a target neither written nor in Port
	// (the ghosts): dropped, stubbed by Port, or failing its entity.
	h.policy = []string{"drop", "drop", "drop", "stub", "fail"}[rng.IntN(5)]
	if h.policy != "drop" {
		threshold += "  missing_relations: " + h.policy + "\n"
	}
	text := strings.NewReplacer("name: NAME", "name: "+name, "PAGE", strconv.Itoa(2+rng.IntN(3)), "THRESHOLD", threshold, "TABLES", tables).Replace(cpSpec)
	h.path = filepath.Join(h.dir, "s.yaml")
	for p, b := range map[string]string{h.path: text, filepath.Join(h.dir, "bp.json"): cpBlueprints} {
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if h.sp, err = engine.Load(h.path); err != nil {
		t.Fatal(err)
	}
	if h.cfg, err = engine.ResolveConfig(h.sp, engine.ConfigSources{Sets: map[string]string{"url": h.src.srv.URL}, Getenv: func(string) (string, bool) { return "", false }}); err != nil {
		t.Fatal(err)
	}
	if h.owner, err = engine.PortOwner(h.sp, h.cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: port options %q, search lag %s, table: %v", seed, strings.TrimSpace(threshold), h.lag, tables != "")
	defer func() {
		if t.Failed() {
			h.mu.Lock()
			h.src.mu.Lock()
			t.Logf("trace:\n%s\nsource:\n%s", strings.Join(h.trace, "\n"), strings.Join(h.src.trace, "\n"))
			h.src.mu.Unlock()
			h.mu.Unlock()
		}
	}()

	// A quiet first run makes the blueprints; then entities of others are
	// seeded: one by hand (a relation target of the source) and one of
	// another owner.
	h.run(cpRun{}, "first")
	for _, e := range []string{`{"identifier": "hand-1", "properties": {"v": "by hand"}, "relations": {}}`,
		`{"identifier": "other-1", "properties": {"v": "theirs", "ferryOwner": "someone/else"}, "relations": {}}`} {
		if err := h.port.SeedEntity("cteam", []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	h.src.mu.Lock()
	h.src.handMade = true
	h.src.mu.Unlock()
	others := h.others()

	runs := 4 + rng.IntN(4)
	for i := range runs {
		h.src.mu.Lock()
		for range rng.IntN(5) {
			h.trace = append(h.trace, "between runs: "+h.src.mutateLocked())
		}
		switch rng.IntN(10) {
		case 0:
			h.trace = append(h.trace, "between runs: "+h.src.massRemoveLocked())
		case 1:
			h.trace = append(h.trace, "between runs: "+h.src.foreignLocked(true))
		case 2, 3:
			h.trace = append(h.trace, "between runs: "+h.src.foreignLocked(false))
		}
		h.src.mu.Unlock()
		rc := cpRun{faults: 0.3 * rng.Float64(), noDelete: rng.IntN(6) == 0}
		if rng.IntN(4) == 0 {
			rc.cancelAt = 1 + rng.IntN(40)
		}
		if rng.IntN(4) == 0 {
			rc.srcFault = 0.1
		}
		for range rng.IntN(3) {
			rc.mid = append(rc.mid, 1+rng.IntN(12))
		}
		h.run(rc, fmt.Sprintf("run %d", i+1))
		if t.Failed() {
			return
		}
	}
	// Quiet runs: the first converges, the second has nothing to send.
	h.src.mu.Lock()
	h.trace = append(h.trace, "before the quiet runs: "+h.src.foreignLocked(false))
	if h.policy == "fail" {
		h.trace = append(h.trace, "before the quiet runs: "+h.src.unghostLocked())
	}
	h.src.mu.Unlock()
	for i := range 2 {
		// A stub Port made for a record a run did not write is a conflict
		// when a run produces the record (README "Ownership of Port
		// entities"): the quiet runs adopt such stubs, as the README says.
		res := h.run(cpRun{adopt: h.policy == "stub"}, fmt.Sprintf("quiet run %d", i+1))
		if t.Failed() {
			return
		}
		h.exact(res, fmt.Sprintf("quiet run %d", i+1))
		if i == 1 && res.Dest.Port.Upserted != 0 {
			t.Errorf("the second quiet run sent %d upserts over an unchanged source", res.Dest.Port.Upserted)
		}
	}
	if got := h.others(); !equalJSON(got, others) {
		t.Errorf("entities of others changed:\n%+v\nwant\n%+v", got, others)
	}
	h.mu.Lock()
	t.Logf("seed %d: injected %v", seed, h.injected)
	h.mu.Unlock()
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// others are the Port entities not owned by the run.
func (h *cpHarness) others() []portsim.CatalogEntity { return h.othersOf(h.port.Catalog()) }

func (h *cpHarness) othersOf(c portsim.Catalog) []portsim.CatalogEntity {
	var out []portsim.CatalogEntity
	for _, e := range c.Entities {
		// Stubs Port made (missing_relations: stub) are no one's, and empty:
		// for ghosts, and for records a run did not write (a failed page).
		stub := h.policy == "stub" && len(e.Properties) == 0
		if e.Properties["ferryOwner"] != h.owner && !stub {
			out = append(out, e)
		}
	}
	return out
}

// portFault is the seeded fault for one Port request (nil: none).
func (h *cpHarness) portFault(rate float64, method, path string, body []byte) *portsim.Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := method + " " + path + " " + string(body)
	h.portSeen[k]++
	hs := fnv.New64a()
	fmt.Fprintf(hs, "%s#%d", k, h.portSeen[k])
	rng := rand.New(rand.NewPCG(h.seed, hs.Sum64()))
	bulk := strings.HasSuffix(path, "/entities/bulk")
	del := strings.HasSuffix(path, "/bulk/entities/delete")
	read := strings.HasSuffix(path, "/entities/search") || strings.HasSuffix(path, "/entities-count") // answers the sink reads
	if del {
		rate *= 3 // deletes are few: fault them more, they are where loss hides
	}
	if rng.Float64() >= rate {
		return nil
	}
	var f *portsim.Fault
	name := ""
	r := rng.IntN(8)
	if del && r < 4 && rng.IntN(2) == 0 {
		r = 4 // an answer leaving out an entity, the delete's own hazard
	}
	switch {
	case r == 0:
		f, name = &portsim.Fault{Kind: portsim.FaultThrottle, RetryAfter: "0"}, "429"
	case r == 1:
		st := []int{500, 502, 503}[rng.IntN(3)]
		f, name = &portsim.Fault{Kind: portsim.FaultStatus, Status: st, RetryAfter: "0"}, strconv.Itoa(st)
	case r == 2:
		f, name = &portsim.Fault{Kind: portsim.FaultStatus, Status: 504, Applied: true, RetryAfter: "0"}, "504-applied"
	case r == 3:
		f, name = &portsim.Fault{Kind: portsim.FaultDrop}, "drop-applied"
	case r == 4 && (bulk || del):
		// Port applied the entity it left out of the answer, or skipped it.
		f = &portsim.Fault{Kind: portsim.FaultOmit, Unapplied: rng.IntN(2) == 0}
		name = map[bool]string{false: "omit-applied", true: "omit-unapplied"}[f.Unapplied]
	case r == 5 && (bulk || del || read):
		body := []string{`{"ok":true}`, `not json`, ``}[rng.IntN(3)]
		f, name = &portsim.Fault{Kind: portsim.FaultBody, Body: body}, "garbled"
	default:
		return nil
	}
	h.injected[name]++
	h.trace = append(h.trace, fmt.Sprintf("  port %s %s: %s", method, path, name))
	return f
}

// run runs ferry once under rc and checks properties 1 to 3.
func (h *cpHarness) run(rc cpRun, what string) *engine.Result {
	t := h.t
	t.Helper()
	time.Sleep(h.lag) // search has caught up with the last run's writes
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var count sync.Mutex
	requests := 0
	tick := func() {
		count.Lock()
		requests++
		n := requests
		count.Unlock()
		if rc.cancelAt > 0 && n == rc.cancelAt {
			cancel()
		}
	}
	h.port.SetFaultFunc(func(method, path string, body []byte) *portsim.Fault {
		tick()
		return h.portFault(rc.faults, method, path, body)
	})
	defer h.port.SetFaultFunc(nil)
	h.src.mu.Lock()
	h.src.faults = rc.srcFault
	h.src.touched, h.src.removed = map[cpKey]bool{}, map[cpKey]bool{}
	h.src.onServe = func(n int) {
		tick()
		for _, at := range rc.mid {
			if at == n {
				h.src.mu.Lock()
				m := h.src.mutateLocked()
				h.src.mu.Unlock()
				h.mu.Lock()
				h.trace = append(h.trace, "  during the run: "+m)
				h.mu.Unlock()
			}
		}
	}
	h.src.served = 0
	h.src.mu.Unlock()
	start := h.src.snapshot()
	before := h.port.Catalog()
	h.port.ResetRequests()
	h.mu.Lock()
	h.trace = append(h.trace, fmt.Sprintf("-- %s: %+v", what, rc))
	h.mu.Unlock()

	res, err := engine.Run(ctx, h.sp, h.cfg, engine.RunOptions{Dest: "sqlite:" + filepath.Join(h.dir, "t.db"),
		Port: engine.PortOptions{BaseURL: h.port.URL(), ClientID: h.port.ClientID(), ClientSecret: h.port.ClientSecret(), NoDelete: rc.noDelete, AdoptUnowned: rc.adopt}})

	h.src.mu.Lock()
	h.src.onServe, h.src.faults = nil, 0
	touched, removed := h.src.touched, h.src.removed
	h.src.touched, h.src.removed = nil, nil
	h.src.mu.Unlock()
	end := h.src.snapshot()
	after := h.port.Catalog()
	code := engine.ExitCode(err, false)
	h.mu.Lock()
	h.trace = append(h.trace, fmt.Sprintf("-- %s ended: exit %d: %v", what, code, err))
	h.mu.Unlock()
	t.Logf("seed %d: %s: exit %d: %v", h.seed, what, code, err)

	// Held: in the source at the start and at the end, never removed between.
	held := map[cpKey]cpVer{}
	for k, v := range start.recs {
		if _, ok := end.recs[k]; ok && !removed[k] {
			held[k] = v
		}
	}
	inPort := map[cpKey]portsim.CatalogEntity{}
	for _, e := range after.Entities {
		inPort[cpKey{e.Blueprint, e.Identifier}] = e
	}
	wasIn := map[cpKey]bool{}
	for _, e := range before.Entities {
		wasIn[cpKey{e.Blueprint, e.Identifier}] = true
	}

	// 1. Nothing held is deleted, nor asked to be; nothing of others is touched.
	if got := h.othersOf(after); !equalJSON(got, h.othersOf(before)) {
		t.Errorf("%s: entities of others changed:\n%+v\nwant\n%+v", what, got, h.othersOf(before))
	}
	for k := range held {
		if wasIn[k] {
			if _, ok := inPort[k]; !ok {
				t.Errorf("%s: deleted %s %s, which the source held throughout", what, k.bp, k.id)
			}
		}
	}
	for _, r := range h.port.Requests() {
		if !strings.HasSuffix(r.Path, "/bulk/entities/delete") && r.Method != http.MethodDelete {
			continue
		}
		bp := strings.Split(strings.TrimPrefix(r.Path, "/v1/blueprints/"), "/")[0]
		var body struct{ Entities []string }
		_ = json.Unmarshal(r.Body, &body)
		if r.Method == http.MethodDelete {
			body.Entities = []string{r.Path[strings.LastIndex(r.Path, "/")+1:]}
		}
		for _, id := range body.Entities {
			if _, ok := held[cpKey{bp, id}]; ok {
				t.Errorf("%s: asked Port to delete %s %s, which the source held throughout", what, bp, id)
			}
		}
	}

	// What is wrong with each held entity in Port ("" when nothing).
	wrong := map[cpKey]string{}
	for k, v0 := range held {
		if msg := h.check(k, v0, end.recs[k], inPort); msg != "" {
			wrong[k] = msg
		}
	}
	if code == 0 {
		// 2. Everything held is there, as the source had it.
		for k, msg := range wrong {
			t.Errorf("%s exited 0: %s %s: %s", what, k.bp, k.id, msg)
		}
		// Stale owned entities left: the blueprint is not reported reconciled.
		had := map[cpKey]bool{}
		for k := range start.recs {
			had[k] = true
		}
		for k := range end.recs {
			had[k] = true
		}
		for k := range touched {
			had[k] = true
		}
		rep := engine.NewRunReport(h.sp, h.path, res, err, code, false, time.Now())
		reconciled := map[string]bool{}
		for _, b := range rep.Blueprints {
			reconciled[b.Name] = b.Reconciled
		}
		for k, e := range inPort {
			if e.Properties["ferryOwner"] == h.owner && !had[k] && reconciled[k.bp] {
				t.Errorf("%s exited 0 and reports blueprint %s reconciled, but Port keeps %s, which the source did not have", what, k.bp, k.id)
			}
		}
		return res
	}
	// 3. A failed run names what it did not write.
	if len(wrong) == 0 {
		return res
	}
	if errors.Is(err, context.Canceled) || res == nil || res.Dest == nil || res.Dest.Port == nil || portLoadFailed(err) {
		// Interrupted, ended before Port's load, or Port's load failed
		// whole (an answer not retried away): every entity is in doubt,
		// and the run says so.
		return res
	}
	named := map[cpKey]bool{}
	for _, e := range res.Dest.Port.Errors {
		named[cpKey{e.Blueprint, e.Identifier}] = true
	}
	for k, msg := range wrong {
		if named[k] || h.streamFailed(res, k.bp) {
			continue
		}
		// Written, but a relation to a target that failed (named) or
		// was not read was dropped.
		if strings.HasPrefix(msg, "relations") && h.relationExplained(k, inPort, named, res) {
			continue
		}
		t.Errorf("%s: exit %d, but %s %s is not named: %s", what, code, k.bp, k.id, msg)
	}
	return res
}

// portLoadFailed reports whether err holds a failure of Port's whole load
// (Finish's own error, "port: …"), not only entities or reconciliations
// that failed, each named in the report.
func portLoadFailed(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return slices.ContainsFunc(j.Unwrap(), portLoadFailed)
	}
	return strings.HasPrefix(err.Error(), "port: ") && !errors.Is(err, engine.ErrPortEntitiesFailed) && !errors.Is(err, engine.ErrPortReconcileFailed)
}

// streamFailed reports whether a chain of the stream feeding bp (any
// stream when bp is "") failed in the run.
func (h *cpHarness) streamFailed(res *engine.Result, bp string) bool {
	if res == nil || res.Summary == nil {
		return false
	}
	for _, f := range res.Summary.Failures {
		if f.Record() {
			continue
		}
		for _, k := range cpKinds {
			if f.Stream == k.path && (bp == "" || k.bp == bp) {
				return true
			}
		}
	}
	return false
}

// relationExplained: every relation target k misses in Port is named as
// failed, or its stream failed.
func (h *cpHarness) relationExplained(k cpKey, inPort map[cpKey]portsim.CatalogEntity, named map[cpKey]bool, res *engine.Result) bool {
	e := inPort[k]
	v, ok := h.versionOf(k, e)
	if !ok {
		return false
	}
	for rel, want := range v.rels {
		target := cpTarget(k.bp, rel)
		got := idSet(e.Relations[rel])
		for id := range got {
			if !idSet(want)[id] {
				return false // a target the version does not name: nothing explains it
			}
		}
		for id := range idSet(want) {
			if !got[id] && !named[cpKey{target, id}] && !h.streamFailed(res, target) {
				if _, there := inPort[cpKey{target, id}]; there {
					return false
				}
			}
		}
	}
	return true
}

func cpTarget(bp, rel string) string {
	switch bp + "." + rel {
	case "cteam.parent", "csvc.team", "cdeploy.teams":
		return "cteam"
	}
	return "csvc"
}

func idSet(v any) map[string]bool {
	out := map[string]bool{}
	switch x := v.(type) {
	case string:
		out[x] = true
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				out[s] = true
			}
		}
	case []string:
		for _, s := range x {
			out[s] = true
		}
	}
	return out
}

// versionOf is the source version whose values e holds.
func (h *cpHarness) versionOf(k cpKey, e portsim.CatalogEntity) (cpVer, bool) {
	s, _ := e.Properties["v"].(string)
	n, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil {
		return cpVer{}, false
	}
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	v, ok := h.src.hist[k][n]
	return v, ok
}

// check says what is wrong with held entity k in Port ("" if nothing):
// missing, not the run's, values older than v0 (its version at the run's
// start) or newer than vEnd, or relations other than its version's to
// the targets Port holds.
func (h *cpHarness) check(k cpKey, v0, vEnd cpVer, inPort map[cpKey]portsim.CatalogEntity) string {
	e, ok := inPort[k]
	if !ok {
		return "missing"
	}
	if e.Properties["ferryOwner"] != h.owner {
		return fmt.Sprintf("owned by %v", e.Properties["ferryOwner"])
	}
	v, ok := h.versionOf(k, e)
	if !ok || v.ver < v0.ver || v.ver > vEnd.ver {
		return fmt.Sprintf("values %v, want v%d..v%d", e.Properties["v"], v0.ver, vEnd.ver)
	}
	if n := e.Properties["n"]; fmt.Sprint(n) != fmt.Sprint(v.n) && (n != nil || v.n != nil) {
		return fmt.Sprintf("n = %v, want %v (version %d)", n, v.n, v.ver)
	}
	for rel, want := range v.rels {
		target := cpTarget(k.bp, rel)
		exp := map[string]bool{}
		for id := range idSet(want) {
			if _, there := inPort[cpKey{target, id}]; there {
				exp[id] = true
			}
		}
		if got := idSet(e.Relations[rel]); !maps.Equal(got, exp) {
			return fmt.Sprintf("relations.%s = %v, want %v (version %d: %v)", rel, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(exp)), v.ver, want)
		}
	}
	return ""
}

// exact: after a quiet run, Port's owned entities are the source's; a
// stale one is left only when the run says its deletion was skipped.
func (h *cpHarness) exact(res *engine.Result, what string) {
	t := h.t
	t.Helper()
	now := h.src.snapshot()
	inPort := map[cpKey]portsim.CatalogEntity{}
	for _, e := range h.port.Catalog().Entities {
		inPort[cpKey{e.Blueprint, e.Identifier}] = e
	}
	for k, v := range now.recs {
		if msg := h.check(k, v, v, inPort); msg != "" {
			t.Errorf("%s: %s %s: %s", what, k.bp, k.id, msg)
		}
	}
	skipped := map[string]bool{}
	for _, s := range res.Dest.Port.SkippedDeletes {
		skipped[s.Blueprint] = true
	}
	named := map[cpKey]bool{}
	for _, e := range res.Dest.Port.DeleteErrors {
		named[cpKey{e.Blueprint, e.Identifier}] = true
	}
	for k, e := range inPort {
		if _, ok := now.recs[k]; !ok && e.Properties["ferryOwner"] == h.owner && !skipped[k.bp] && !named[k] {
			t.Errorf("%s: Port keeps stale %s %s, and the run does not say its deletion was skipped", what, k.bp, k.id)
		}
	}
}
