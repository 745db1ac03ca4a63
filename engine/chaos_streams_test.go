package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestChaosStreams is the property of `--streams` runs inside open syncs
// (README, State and resume: a --streams run ends its part of the sync,
// which the run resuming the whole sync does not read again nor reconcile
// again), in TestChaos's manner. The source: orgs, each with items (a
// child stream), extra items listed at the top (the items table is fed by
// both streams), and events; in most seeds the items stream also feeds
// an append log.
// Per seed: the items and events tables' modes and on_duplicate, the page
// cap, whether the source changes between the runs of a sync. Each sync
// is a random sequence of full runs and --streams runs of random subsets
// (some --full-refresh), under faults (5xx, bad bodies) or cancelled at
// random requests, then quiet runs. After each run: no live row the source
// never had; no row the run marked deleted whose record the source lists
// (but for README's "not one snapshot" case: an item moved, while the
// sync was open, under an org whose item list the sync had read past its
// place before; its notes with it);
// a failed run names a failure above each record of its streams it
// misses; a run without --streams exiting 0 ends the sync: every record
// unchanged since the sync began holds its row, every row of a record
// gone before it is marked deleted, and (the source unchanged in the
// sync) the log holds each item once, or once more per --streams run
// that read items anew (--full-refresh, or its part ended before). Quiet
// runs converge to exactly the source (a quiet --full-refresh where
// on_duplicate: fail keeps a moved item failed while the sync lasts).
// FERRY_CHAOS_STREAMS_SEEDS=n runs n seeds (default 2),
// FERRY_CHAOS_STREAMS_SEED=s seed s alone.
func TestChaosStreams(t *testing.T) {
	chaosMatrix(t, seedsFrom(t, "FERRY_CHAOS_STREAMS", 2), csRun)
}

var csStreams = []string{"orgs", "items", "notes", "extra", "events"}

var csFaults = []string{"500", "503", "truncated-json", "empty-200", "fatal-body", "reset"}

// csItem is a record of the items or extra streams (org "x" for extra).
type csItem struct{ v, org string }

// csAPI is the simulated source; all its lists are paged by a keyset
// cursor (the last id served), pages capped at pageCap.
type csAPI struct {
	ctBook
	srv     *httptest.Server
	rng     *rand.Rand
	pageCap int
	midSync bool
	next    int

	orgs   map[string]string // id → v
	items  map[string]*csItem
	notes  map[string]*csItem // org: the item
	extra  map[string]string
	events map[string]string

	// read: per org, the pages of its item list served whole (no fault):
	// the request's number and the last id it passed ("~" for the last
	// page); movedAt: per item, the request count when it last moved.
	// They tell README's "not one snapshot" case apart.
	read    map[string][]csRead
	movedAt map[string]int
	// failing: paths answered with a failing body (a regression test's
	// fault), as many times as it says.
	failing map[string]int
}

func newCSAPI(t *testing.T, seed uint64) *csAPI {
	a := &csAPI{ctBook: newCTBook(seed), rng: rand.New(rand.NewPCG(seed, 7)), orgs: map[string]string{}, items: map[string]*csItem{}, notes: map[string]*csItem{},
		extra: map[string]string{}, events: map[string]string{}, read: map[string][]csRead{}, movedAt: map[string]int{}, failing: map[string]int{}}
	a.pageCap = 1 + a.rng.IntN(3)
	a.midSync = a.rng.IntN(2) == 0
	for range 2 + a.rng.IntN(3) {
		a.addOrg()
	}
	for range a.rng.IntN(4) {
		a.extra[a.newID("x")] = a.val()
	}
	for range 1 + a.rng.IntN(5) {
		a.events[a.newID("e")] = a.val()
	}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *csAPI) newID(prefix string) string {
	a.next++
	return fmt.Sprintf("%s%03d", prefix, a.next)
}

func (a *csAPI) val() string { return "v" + strconv.Itoa(a.rng.IntN(1000)) }

func (a *csAPI) addOrg() string {
	o := a.newID("o")
	a.orgs[o] = a.val()
	for range a.rng.IntN(5) {
		a.addItem(o)
	}
	return o
}

func (a *csAPI) addItem(org string) string {
	id := a.newID("i")
	a.items[id] = &csItem{v: a.val(), org: org}
	for range a.rng.IntN(3) {
		a.notes[a.newID("n")] = &csItem{v: a.val(), org: id}
	}
	return id
}

func (a *csAPI) removeItem(id string) {
	delete(a.items, id)
	for n, it := range a.notes {
		if it.org == id {
			delete(a.notes, n)
		}
	}
}

func pick[V any](rng *rand.Rand, m map[string]V) string {
	if len(m) == 0 {
		return ""
	}
	ids := slices.Sorted(maps.Keys(m))
	return ids[rng.IntN(len(ids))]
}

// mutate changes the source between runs: records added, removed,
// changed, items moved between orgs; it says what it did.
func (a *csAPI) mutate() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var did []string
	for range 1 + a.rng.IntN(4) {
		switch a.rng.IntN(12) {
		case 0:
			did = append(did, "org added "+a.addOrg())
		case 1:
			if o := pick(a.rng, a.orgs); len(a.orgs) > 1 {
				delete(a.orgs, o)
				for id, it := range a.items {
					if it.org == o {
						a.removeItem(id)
					}
				}
				did = append(did, "org removed with its items "+o)
			}
		case 2:
			if o := pick(a.rng, a.orgs); o != "" {
				a.orgs[o] = a.val()
				did = append(did, "org changed "+o)
			}
		case 3:
			if o := pick(a.rng, a.orgs); o != "" {
				did = append(did, "item added "+a.addItem(o)+" under "+o)
			}
		case 4:
			if id := pick(a.rng, a.items); id != "" {
				a.removeItem(id)
				did = append(did, "item removed with its notes "+id)
			}
		case 5:
			if id := pick(a.rng, a.items); id != "" {
				a.items[id].v = a.val()
				did = append(did, "item changed "+id)
			}
		case 6, 7:
			if id, o := pick(a.rng, a.items), pick(a.rng, a.orgs); id != "" && a.items[id].org != o {
				did = append(did, "item moved "+id+" from "+a.items[id].org+" to "+o)
				a.items[id].org = o
				a.movedAt[id] = a.served
			}
		case 8:
			id := a.newID("x")
			a.extra[id] = a.val()
			did = append(did, "extra added "+id)
		case 9:
			if id := pick(a.rng, a.extra); id != "" {
				if a.rng.IntN(2) == 0 {
					delete(a.extra, id)
					did = append(did, "extra removed "+id)
				} else {
					a.extra[id] = a.val()
					did = append(did, "extra changed "+id)
				}
			}
		case 11:
			switch id, it := pick(a.rng, a.notes), pick(a.rng, a.items); {
			case it != "" && (id == "" || a.rng.IntN(3) == 0):
				id = a.newID("n")
				a.notes[id] = &csItem{v: a.val(), org: it}
				did = append(did, "note added "+id+" under "+it)
			case id == "":
			case a.rng.IntN(2) == 0:
				delete(a.notes, id)
				did = append(did, "note removed "+id)
			default:
				a.notes[id].v = a.val()
				did = append(did, "note changed "+id)
			}
		case 10:
			switch id := pick(a.rng, a.events); {
			case id == "" || a.rng.IntN(3) == 0:
				id = a.newID("e")
				a.events[id] = a.val()
				did = append(did, "event added "+id)
			case a.rng.IntN(2) == 0:
				delete(a.events, id)
				did = append(did, "event removed "+id)
			default:
				a.events[id] = a.val()
				did = append(did, "event changed "+id)
			}
		}
	}
	return strings.Join(did, "; ")
}

func (a *csAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	n, hook, _, fault := a.arrive(r, csFaults)
	if a.failing[r.URL.Path] > 0 {
		a.failing[r.URL.Path]--
		fault = "fatal-body"
	}
	list := []map[string]any{}
	org := ""
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "orgs":
		for _, id := range slices.Sorted(maps.Keys(a.orgs)) {
			list = append(list, map[string]any{"id": id, "v": a.orgs[id]})
		}
	case len(parts) == 3 && parts[0] == "orgs" && parts[2] == "items":
		org = parts[1]
		if _, ok := a.orgs[org]; !ok {
			a.mu.Unlock()
			w.WriteHeader(http.StatusNotFound)
			return
		}
		for _, id := range slices.Sorted(maps.Keys(a.items)) {
			if it := a.items[id]; it.org == org {
				list = append(list, map[string]any{"id": id, "v": it.v, "org": org, "gen": "g" + strconv.Itoa(a.gen)})
			}
		}
	case len(parts) == 3 && parts[0] == "items" && parts[2] == "notes":
		item := parts[1]
		if _, ok := a.items[item]; !ok {
			a.mu.Unlock()
			w.WriteHeader(http.StatusNotFound)
			return
		}
		for _, id := range slices.Sorted(maps.Keys(a.notes)) {
			if n := a.notes[id]; n.org == item {
				list = append(list, map[string]any{"id": id, "v": n.v, "item": item})
			}
		}
	case len(parts) == 1 && parts[0] == "extra":
		for _, id := range slices.Sorted(maps.Keys(a.extra)) {
			list = append(list, map[string]any{"id": id, "v": a.extra[id], "org": "x"})
		}
	case len(parts) == 1 && parts[0] == "events":
		for _, id := range slices.Sorted(maps.Keys(a.events)) {
			list = append(list, map[string]any{"id": id, "v": a.events[id]})
		}
	default:
		a.mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
		return
	}
	after := r.URL.Query().Get("cursor")
	lo := 0
	for lo < len(list) && after != "" && list[lo]["id"].(string) <= after {
		lo++
	}
	hi := min(lo+a.pageCap, len(list))
	body := map[string]any{"items": list[lo:hi]}
	if hi < len(list) {
		body["next"] = list[hi-1]["id"]
	}
	if org != "" && fault == "" {
		upTo := "~"
		if hi < len(list) {
			upTo = list[hi-1]["id"].(string)
		}
		a.read[org] = append(a.read[org], csRead{n, upTo})
	}
	a.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	b, _ := json.Marshal(body)
	switch fault {
	case "500", "503":
		code, _ := strconv.Atoi(fault)
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html>%d</html>", code)
		return
	case "truncated-json":
		b = b[:len(b)/2]
	case "empty-200":
		w.WriteHeader(http.StatusOK)
		return
	case "fatal-body":
		b = []byte(`{"error": "internal", "retryable": false}`)
	case "reset":
		hijackClose(w, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// csRead is a page of an org's item list served: the request's number,
// the last id it passed.
type csRead struct {
	n    int
	upTo string
}

// csTruth is what a full read of the source gives: table/id → row (as
// ctSelect reads it), and each key's stream and chain (as a failure
// names its parents: orgs[id=o1] > items[id=i2] > notes[id=n3]).
type csTruth struct {
	rows          map[string]string
	stream, chain map[string]string
}

func (a *csAPI) truth() csTruth {
	a.mu.Lock()
	defer a.mu.Unlock()
	tr := csTruth{rows: map[string]string{}, stream: map[string]string{}, chain: map[string]string{}}
	add := func(table, stream, id, v, parent, chain string) {
		key := table + "/" + id
		row := v + "|<null>|" + parent + "|<null>|"
		tr.rows[key], tr.stream[key], tr.chain[key] = row, stream, chain+stream+"[id="+id+"]"
		a.note(key, row)
	}
	for id, v := range a.orgs {
		add("orgs", "orgs", id, v, "<null>", "")
	}
	for id, it := range a.items {
		add("items", "items", id, it.v, it.org, "orgs[id="+it.org+"] > ")
	}
	for id, n := range a.notes {
		add("notes", "notes", id, n.v, n.org, "orgs[id="+a.items[n.org].org+"] > items[id="+n.org+"] > ")
	}
	for id, v := range a.extra {
		add("items", "extra", id, v, "x", "")
	}
	for id, v := range a.events {
		add("events", "events", id, v, "<null>", "")
	}
	return tr
}

const csSpecHead = `version: 1
name: NAME
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  timeout: 300ms
  concurrency: CONC
  retry: {attempts: 3, initial: 1ms, max: 2ms}
  rules:
    - status: 404
      action: empty
    - status: 200
      body: '.retryable? == false'
      action: fail
      message: .error
streams:
  orgs:
    request: {path: /orgs}
    records: .items[]
    paginate: {type: cursor, token: .next, param: cursor}
  items:
    for_each: orgs
    request: {path: '/orgs/${ parent.id }/items'}
    records: .items[]
    paginate: {type: cursor, token: .next, param: cursor}
  notes:
    for_each: items
    request: {path: '/items/${ parent.id }/notes'}
    records: .items[]
    paginate: {type: cursor, token: .next, param: cursor}
  extra:
    request: {path: /extra}
    records: .items[]
    paginate: {type: cursor, token: .next, param: cursor}
  events:
    request: {path: /events}
    records: .items[]
    paginate: {type: cursor, token: .next, param: cursor}
tables:
  orgs: {from: orgs, mode: replace, delete_threshold: 1, primary_key: [id], row: '{id, v}', COLS}
  items_log: {from: items, mode: append, row: '{id, gen, v}', columns: {id: STRING, gen: STRING, v: STRING}}
`

const csCols = `columns: {id: STRING, v: STRING, note: STRING, parent: STRING, root: STRING}`

// csTable is a keyed table's line of the spec: mode and on_duplicate
// chosen by rng.
func csTable(rng *rand.Rand, name, from string) (line string, replace bool) {
	mode := []string{"replace", "replace", "upsert"}[rng.IntN(3)]
	extra := ""
	if mode == "replace" {
		extra = ", delete_threshold: 1"
	}
	if dup := []string{"", "warn", "fail", "merge"}[rng.IntN(4)]; dup != "" {
		extra += ", on_duplicate: " + dup
	}
	row := map[string]string{"items": "{id, v, parent: .org}", "notes": "{id, v, parent: .item}"}[name]
	if row == "" {
		row = "{id, v}"
	}
	return fmt.Sprintf("  %s: {from: %s, mode: %s%s, primary_key: [id], row: '%s', %s}\n", name, from, mode, extra, row, csCols), mode == "replace"
}

// csHarness runs one seed's syncs and checks each run.
type csHarness struct {
	t    *testing.T
	a    *csAPI
	dest ctDest
	sp   *engine.Spec
	cfg  *engine.Config
	// replace: the replace tables; noLog: the spec has no items_log.
	replace map[string]bool
	noLog   bool
	// The sync: the source as it began, every key the source had since,
	// whether the source changed in it, how many times a --streams run
	// read items anew in it, and the request count when it began.
	start     map[string]string
	since     map[string]bool
	changed   bool
	refreshed int
	began     int
	// itemsPart: a --streams run ended the items stream's part of the
	// sync, which a later one reads anew.
	itemsPart bool
}

func csRun(t *testing.T, seed uint64, destKind, mode string) {
	a := newCSAPI(t, seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	conc := 1 + int(seed%4)
	items, itemsReplace := csTable(rng, "items", "[items, extra]")
	events, eventsReplace := csTable(rng, "events", "events")
	notes, notesReplace := csTable(rng, "notes", "notes")
	t.Logf("seed %d: %d orgs, %d items, %d extra, %d events, cap %d, midSync %v, concurrency %d",
		seed, len(a.orgs), len(a.items), len(a.extra), len(a.events), a.pageCap, a.midSync, conc)
	// In some seeds no append log: the items stream saves no record
	// hashes, and its keyed tables alone tell what it committed.
	noLog := rand.New(rand.NewPCG(seed, 11)).IntN(4) == 0
	h := newCSHarness(t, a, fmt.Sprintf("cstreams_%d_%d_%s", os.Getpid(), seed, mode), destKind, conc, items+events+notes, noLog)
	h.replace = map[string]bool{"orgs": true, "items": itemsReplace, "events": eventsReplace, "notes": notesReplace}
	h.loop(rng, mode)
}

// newCSHarness writes the spec (csSpecHead, then the keyed tables' lines
// of items, events and notes) and readies the destination.
func newCSHarness(t *testing.T, a *csAPI, name, destKind string, conc int, tables string, noLog bool) *csHarness {
	dir := t.TempDir()
	var dest ctDest
	if destKind == "postgres" {
		dest = ctPG(t, os.Getenv("FERRY_TEST_POSTGRES_URL"), name)
	} else {
		dest = ctSQLite(dir, name)
	}
	head := csSpecHead
	if noLog {
		head = head[:strings.Index(head, "  items_log:")]
	}
	text := strings.NewReplacer("name: NAME", "name: "+name, "CONC", strconv.Itoa(conc), "COLS", csCols).Replace(head) + tables
	t.Logf("tables:\n%s", text[strings.Index(text, "tables:"):])
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
	h := &csHarness{t: t, a: a, dest: dest, sp: sp, cfg: cfg, noLog: noLog}
	h.begin()
	return h
}

func (h *csHarness) run(ctx context.Context, streams []string, full bool) error {
	if h.dest.settle != nil {
		h.dest.settle(h.t)
	}
	_, err := engine.Run(ctx, h.sp, h.cfg, engine.RunOptions{Dest: h.dest.url, ResumeWithin: -1, Streams: streams, FullRefresh: full})
	return err
}

// begin marks the start of a sync.
func (h *csHarness) begin() {
	h.start, h.since, h.changed, h.refreshed, h.itemsPart = nil, map[string]bool{}, false, 0, false
	h.a.mu.Lock()
	h.a.gen++
	h.a.mu.Unlock()
}

func (h *csHarness) truth() csTruth {
	tr := h.a.truth()
	if h.start == nil { // the sync's first run
		h.start = tr.rows
		h.a.mu.Lock()
		h.began = h.a.served
		h.a.mu.Unlock()
	}
	for key := range tr.rows {
		h.since[key] = true
	}
	return tr
}

var csTables = []string{"orgs", "items", "notes", "events"}

func (h *csHarness) loop(rng *rand.Rand, mode string) {
	t, a, seed := h.t, h.a, h.a.seed
	defer func() {
		if t.Failed() {
			a.mu.Lock()
			t.Logf("requests (url fault):\n%s", strings.Join(a.trace, "\n"))
			a.mu.Unlock()
		}
	}()
	for sync := range 2 + rng.IntN(2) {
		if sync > 0 {
			t.Logf("seed %d: between syncs: %s", seed, a.mutate())
		}
		for i := range 1 + rng.IntN(5) {
			if i > 0 && a.midSync {
				h.changed = true
				t.Logf("seed %d: between runs of sync %d: %s", seed, sync+1, a.mutate())
			}
			var streams []string
			full := false
			if rng.IntN(3) > 0 {
				for _, s := range csStreams {
					if rng.IntN(2) == 0 {
						streams = append(streams, s)
					}
				}
				if len(streams) == 0 {
					streams = []string{csStreams[rng.IntN(len(csStreams))]}
				}
				full = rng.IntN(3) == 0
			}
			tr := h.truth()
			ctx, cancel := context.WithCancel(t.Context())
			rate := 0.05 + 0.25*rng.Float64()
			if mode == "cancel" {
				rate *= float64(rng.IntN(2))
				a.cancelWithin(rng, 30, cancel)
			}
			a.setFaults(rate)
			before := h.dest.readAll(t, csTables...)
			what := fmt.Sprintf("sync %d run %d (--streams %s, full refresh %v)", sync+1, i+1, strings.Join(streams, ","), full)
			a.mu.Lock()
			a.trace = append(a.trace, "-- "+what)
			a.mu.Unlock()
			err := h.run(ctx, streams, full)
			a.mu.Lock()
			a.onRequest, a.faultRate = nil, 0
			injected := fmt.Sprint(a.injected)
			a.trace = append(a.trace, fmt.Sprintf("-- %s ended: %v", what, err))
			a.mu.Unlock()
			cut := ctx.Err() != nil
			cancel()
			t.Logf("seed %d %s: %s (cut %v): %v; injected so far %s", seed, mode, what, cut, err, injected)
			if slices.Contains(streams, "items") {
				// Read anew (README, --full-refresh and State and resume):
				// the log may get each item once more.
				if full || h.itemsPart {
					h.refreshed++
				}
				h.itemsPart = err == nil
			}
			h.check(tr, before, streams, err, cut, false, what)
			if t.Failed() {
				return
			}
			if err == nil && streams == nil {
				h.begin()
				break
			}
		}
		// Quiet runs end the sync: a moved item may collide once with
		// its row of the sync's earlier runs (README: a repeat with
		// other values from another parent), never silently.
		for quiet := range 2 {
			tr := h.truth()
			before := h.dest.readAll(t, csTables...)
			err := h.run(t.Context(), nil, false)
			what := fmt.Sprintf("sync %d quiet run %d", sync+1, quiet+1)
			t.Logf("seed %d: %s: %v", seed, what, err)
			h.check(tr, before, nil, err, false, true, what)
			if t.Failed() {
				return
			}
			if err == nil {
				break
			}
			if quiet == 1 && csFailedAsWritten(err) {
				// Under on_duplicate: fail a moved item stays a failed
				// record while the sync lasts ("also when an earlier run
				// of the sync wrote it"), and every run fails for it
				// again: a --full-refresh run starts a sync of its own.
				t.Logf("seed %d: %s: the sync cannot end; --full-refresh", seed, what)
				h.begin()
				tr := h.truth()
				if err := h.run(t.Context(), nil, true); err != nil {
					t.Fatalf("seed %d: sync %d: a quiet --full-refresh run: %v", seed, sync+1, err)
				}
				h.exitZero(tr, "a quiet --full-refresh run")
				break
			}
			if quiet == 1 {
				t.Fatalf("seed %d: %s failed: %v", seed, what, err)
			}
		}
		// A sync of its own, quiet: exact, removed records marked deleted.
		h.begin()
		tr := h.truth()
		if err := h.run(t.Context(), nil, false); err != nil {
			t.Fatalf("seed %d: sync %d: a new quiet sync: %v", seed, sync+1, err)
		}
		h.exitZero(tr, "a new quiet sync")
		got := h.dest.readAll(t, csTables...)
		for key, g := range got {
			if _, ok := tr.rows[key]; !ok && !strings.HasSuffix(g, "|deleted") && h.isReplace(key) {
				t.Errorf("seed %d: a new quiet sync: %s = %q, which the source no longer has, not marked deleted", seed, key, g)
			}
		}
		if t.Failed() {
			return
		}
		h.begin()
	}
}

// csFailedAsWritten tells a run that failed for records under
// on_duplicate: fail only.
func csFailedAsWritten(err error) bool {
	var re *engine.RunError
	if !errors.As(err, &re) {
		return false
	}
	for _, f := range re.Failures {
		if !f.Record() || !strings.Contains(f.Error(), "already written by this sync (on_duplicate: fail)") {
			return false
		}
	}
	return true
}

// isReplace tells whether key's table is a replace table.
func (h *csHarness) isReplace(key string) bool {
	table, _, _ := strings.Cut(key, "/")
	return h.replace[table]
}

// notSnapshot tells README's "not one snapshot" case (a chain reads the
// source as it is when it reads it): item id moved while the sync was
// open to an org whose item list the sync had read past its place before
// the move (whole: the chain done; or a page of a chain still open, which
// goes on after it). Its row may be marked deleted (the new org's chain
// does not list it again in the sync), or keep its old values.
func (h *csHarness) notSnapshot(key string) bool {
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	if id, ok := strings.CutPrefix(key, "notes/"); ok && h.a.notes[id] != nil {
		// A note of such an item: the item's chain is not read again.
		key = "items/" + h.a.notes[id].org
	}
	id, ok := strings.CutPrefix(key, "items/")
	if !ok {
		return false
	}
	it := h.a.items[id]
	if it == nil || h.a.movedAt[id] <= h.began {
		return false // not moved in the sync
	}
	for _, r := range h.a.read[it.org] {
		if r.n > h.began && r.n <= h.a.movedAt[id] && r.upTo >= id {
			return true
		}
	}
	return false
}

// moved tells whether item key moved in the sync (maybe back to where
// it was).
func (h *csHarness) moved(key string) bool {
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	return h.a.movedAt[strings.TrimPrefix(key, "items/")] > h.began
}

// shiftedBack tells whether item key's org got, in the sync, an item
// moved in at a smaller id (before it in its list). Without the append
// log (no record hashes saved) a known bug fails key under on_duplicate:
// fail as a duplicate of its own row when the org's done chain is read
// again (TestChaosStreamsShiftedRecordNotItsOwnDuplicate/nolog).
func (h *csHarness) shiftedBack(key string) bool {
	h.a.mu.Lock()
	defer h.a.mu.Unlock()
	id := strings.TrimPrefix(key, "items/")
	it := h.a.items[id]
	if it == nil {
		return false
	}
	for other, o := range h.a.items {
		if o.org == it.org && other < id && h.a.movedAt[other] > h.began {
			return true
		}
	}
	return false
}

// check is every run's property, whatever its exit.
func (h *csHarness) check(tr csTruth, before map[string]string, streams []string, err error, cut, quiet bool, what string) {
	t, seed := h.t, h.a.seed
	t.Helper()
	got := h.dest.readAll(t, csTables...)
	// No live row the source never had.
	h.a.mu.Lock()
	for key, row := range got {
		if !strings.HasSuffix(row, "|deleted") && !h.a.hist[key][row] {
			t.Errorf("seed %d: %s: %s = %q, a row the source never had (it had %v)", seed, what, key, row, slices.Sorted(maps.Keys(h.a.hist[key])))
		}
	}
	h.a.mu.Unlock()
	// No row of a record the source lists marked deleted by this run.
	for key, row := range got {
		if _, listed := tr.rows[key]; listed && strings.HasSuffix(row, "|deleted") && !strings.HasSuffix(before[key], "|deleted") && !h.notSnapshot(key) {
			t.Errorf("seed %d: %s (err %v): %s marked deleted (was %q), but the source lists it: %q", seed, what, err, key, before[key], tr.rows[key])
		}
	}
	if err == nil {
		if streams == nil {
			h.exitZero(tr, what)
		}
		return
	}
	var re *engine.RunError
	if !errors.As(err, &re) {
		if !cut {
			t.Errorf("seed %d: %s: %v is not a RunError listing its failures", seed, what, err)
		}
		return
	}
	if engine.ExitCode(err, false) == 0 {
		t.Errorf("seed %d: %s: failed run exits 0: %v", seed, what, err)
	}
	if quiet {
		for _, f := range re.Failures {
			// A moved item met again under its new org: a collision with
			// its row of the sync's earlier runs (README: a repeat with
			// other values from another parent), or, under on_duplicate:
			// fail, a failed record.
			if !f.Record() || !strings.Contains(f.Error(), "another record") && !strings.Contains(f.Error(), "already written by this sync") {
				t.Errorf("seed %d: %s fails for %v, which the source does not explain", seed, what, f)
				continue
			}
			// A note of a moved item is read under its new chain too.
			item := ""
			for _, seg := range strings.Split(f.Parents, " > ") {
				if id, ok := strings.CutPrefix(seg, "items[id="); ok {
					item = "items/" + strings.TrimSuffix(id, "]")
				}
			}
			if item == "" || h.start[item] == tr.rows[item] && !h.moved(item) && !(h.noLog && h.shiftedBack(item)) {
				t.Errorf("seed %d: %s: a collision below %q, which did not move in the sync: %v", seed, what, item, f)
			}
		}
	}
	if cut {
		return
	}
	// Each record of the run's streams it misses (unchanged since the
	// sync began: a change is the next sync's) is below a failure.
	above := map[string][]string{"items": {"orgs", "items"}, "notes": {"orgs", "items", "notes"}}
	covers := func(stream, chain string) bool {
		for _, f := range re.Failures {
			if (f.Stream == stream || slices.Contains(above[stream], f.Stream)) && strings.Contains(chain+" > ", f.Parents) {
				return true
			}
		}
		return false
	}
	for key, want := range tr.rows {
		stream := tr.stream[key]
		if streams != nil && !slices.Contains(streams, stream) || got[key] == want || h.start[key] != want || h.notSnapshot(key) {
			continue
		}
		if !covers(stream, tr.chain[key]) {
			t.Errorf("seed %d: %s: %s = %q, want %q, silently (no failure above %s)", seed, what, key, got[key], want, tr.chain[key])
		}
	}
}

// exitZero checks a run without --streams that exited 0, ending the sync.
func (h *csHarness) exitZero(tr csTruth, what string) {
	t, seed := h.t, h.a.seed
	t.Helper()
	got := h.dest.readAll(t, csTables...)
	for key, want := range tr.rows {
		if h.start[key] != want || h.notSnapshot(key) {
			continue // changed since the sync began: noted as a row the source had
		}
		if g, ok := got[key]; !ok {
			t.Errorf("seed %d: %s exited 0: %s missing (%s)", seed, what, key, tr.stream[key])
		} else if g != want {
			t.Errorf("seed %d: %s exited 0: %s = %q, want %q (%s)", seed, what, key, g, want, tr.stream[key])
		}
	}
	for key, g := range got {
		if !h.since[key] && !strings.HasSuffix(g, "|deleted") && h.isReplace(key) {
			t.Errorf("seed %d: %s exited 0: %s = %q, a record gone before the sync began, not marked deleted", seed, what, key, g)
		}
	}
	if h.changed || h.noLog {
		return
	}
	h.a.mu.Lock()
	gen := "g" + strconv.Itoa(h.a.gen)
	h.a.mu.Unlock()
	logged := h.dest.logged(t, "items_log", gen)
	for key := range tr.rows {
		id, ok := strings.CutPrefix(key, "items/")
		if !ok || tr.stream[key] != "items" {
			continue
		}
		if n, _ := strconv.Atoi(logged[id]); n < 1 || n > 1+h.refreshed {
			t.Errorf("seed %d: %s exited 0: item %s logged %q times in the sync, want once (%d readings anew of items)", seed, what, id, logged[id], h.refreshed)
		}
	}
}
