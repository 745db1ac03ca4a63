package engine_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// sevenRepos are the items of the total tests' lists: ids 1 to 7.
func sevenRepos() []any {
	var repos []any
	for i := 1; i <= 7; i++ {
		repos = append(repos, map[string]any{"id": i})
	}
	return repos
}

// orgReposFixture serves orgs a and b, each with repos paged by paginate;
// serve answers a repos page, broken for org b while the returned flag
// is set (it starts set).
func orgReposFixture(t *testing.T, rules, paginate string, serve func(w http.ResponseWriter, r *http.Request, broken bool)) (*fixture, *atomic.Bool) {
	t.Helper()
	fx := newFixture(t, specHead+rules+`streams:
  orgs:
    request: {path: /orgs}
  repos:
    for_each: orgs
    request: {path: '/orgs/${ parent.name }/repos'}
    records: .items[]
    paginate: `+paginate+`
tables:
  repos:
    from: repos
    primary_key: [org, id]
    row: '{org: $parent.name, id}'
`, "")
	fx.json("/orgs", []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}})
	broken := &atomic.Bool{}
	broken.Store(true)
	for _, org := range []string{"a", "b"} {
		fx.mu.Lock()
		fx.routes["/orgs/"+org+"/repos"] = func(w http.ResponseWriter, r *http.Request) { serve(w, r, org == "b" && broken.Load()) }
		fx.mu.Unlock()
	}
	return fx, broken
}

// TestTotalCatchesAServerThatStopsEarly: a list that reports its size
// (paginate.total, total_header) and ends short of it lost the rest: a
// server that drops its next cursor early, or a rule's "no data" (a 404)
// on an offset page before the total. The chain fails naming its parent
// and the counts, the pages read are written, the other parents' chains
// are whole, and a run after the server is fixed reads the rest. (Without
// the check the run exits 0 with the rest unread.)
func TestTotalCatchesAServerThatStopsEarly(t *testing.T) {
	repos := sevenRepos()
	for name, c := range map[string]struct {
		paginate string
		serve    func(w http.ResponseWriter, r *http.Request, broken bool)
	}{
		"cursor, total in the body": {
			paginate: `{type: cursor, token: .next, param: after, total: .total_count}`,
			serve: func(w http.ResponseWriter, r *http.Request, broken bool) {
				lo, _ := strconv.Atoi(r.URL.Query().Get("after"))
				hi := min(lo+3, len(repos))
				body := map[string]any{"items": repos[lo:hi], "total_count": len(repos)}
				// The broken server hands out no cursor after its second page.
				if hi < len(repos) && !(broken && lo >= 3) {
					body["next"] = strconv.Itoa(hi)
				}
				json.NewEncoder(w).Encode(body)
			},
		},
		"offset, total_header, a 404 read as no data": {
			paginate: `{type: offset, param: offset, size: 3, size_param: limit, total_header: X-Total-Count}`,
			serve: func(w http.ResponseWriter, r *http.Request, broken bool) {
				lo, _ := strconv.Atoi(r.URL.Query().Get("offset"))
				if broken && lo >= 6 {
					http.Error(w, "not found", http.StatusNotFound)
					return
				}
				w.Header().Set("X-Total-Count", strconv.Itoa(len(repos)))
				json.NewEncoder(w).Encode(map[string]any{"items": repos[lo:min(lo+3, len(repos))]})
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			fx, broken := orgReposFixture(t, "  rules:\n    - {status: 404, action: empty}\n", c.paginate, c.serve)
			_, err := fx.run(engine.RunOptions{})
			re := runErrorOf(t, err)
			if len(re.Failures) != 1 {
				t.Fatalf("failures = %v, want org b's chain", re.Failures)
			}
			f := re.Failures[0].Error()
			for _, want := range []string{"repos", "orgs[name=b]", "paging ended after 6 items, but page 1 said the list holds 7", "stopped early"} {
				if !strings.Contains(f, want) {
					t.Errorf("failure %q does not name %q", f, want)
				}
			}
			count := func(org string) string {
				return strings.Join(fx.query(`SELECT count(*) FROM "nl__repos" WHERE org = '`+org+`'`), "")
			}
			if a, b := count("a"), count("b"); a != "7" || b != "6" {
				t.Errorf("rows: org a %s, org b %s; want 7 and the 6 read", a, b)
			}

			broken.Store(false)
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatalf("the run after the server is fixed: %v", err)
			}
			if got := fx.query(`SELECT id FROM "nl__repos" WHERE org = 'b' ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5", "6", "7"}) {
				t.Errorf("org b after the fixed run = %v, want all 7", got)
			}
		})
	}
}

// TestShortChainResumesFromItsStart: a chain that ended short of its total
// lost items on pages it already passed (here a page-number list whose
// second page came back one item short, so the third started past it).
// Asking its last page again, as a resumed run does after other failures,
// would never find them: the resumed run reads that chain again from its
// first page, and the run after the fault is whole. The other parent's
// chain, done, is not read again.
func TestShortChainResumesFromItsStart(t *testing.T) {
	repos := sevenRepos()
	fx, broken := orgReposFixture(t, "", `{type: page, param: page, size: 3, size_param: per_page, total: .total_count}`, func(w http.ResponseWriter, r *http.Request, broken bool) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		lo := min((page-1)*3, len(repos))
		hi := min(lo+3, len(repos))
		if broken && page == 2 {
			hi-- // one item short: it is on no page
		}
		json.NewEncoder(w).Encode(map[string]any{"items": repos[lo:hi], "total_count": len(repos)})
	})
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "paging ended after 6 items, but page 1 said the list holds 7") {
		t.Fatalf("failures = %v, want org b's chain, 6 of 7", re.Failures)
	}
	fx.takeRequests()
	broken.Store(false)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("the resumed run, the fault gone: %v", err)
	}
	asked := fx.takeRequests()
	if slices.Contains(asked, "/orgs/a/repos") || !slices.Contains(asked, "/orgs/b/repos") {
		t.Errorf("resumed run asked %v, want org b's chain again and not org a's, which was done", asked)
	}
	if got := fx.query(`SELECT id FROM "nl__repos" WHERE org = 'b' ORDER BY id`); !slices.Equal(got, []string{"1", "2", "3", "4", "5", "6", "7"}) {
		t.Errorf("org b after the resumed run = %v, want all 7", got)
	}
}

// TestTotalCountsARepeatOnce: a page that repeats an item an earlier page
// listed, and a page that lost one, make up the total between them;
// counted as listed, the chain looks whole. The repeated item is counted
// once: the chain fails, 6 of 7. The repeat comes from the page before (a
// list shifted by an insertion) or from further back (a list read in an
// order that is not stable: offset or page paging over rows the server
// does not sort by a unique key lists an item again pages later and never
// lists another). By its text, in a list read value by value and in a
// document read whole (a total that is more than a path reads it whole).
func TestTotalCountsARepeatOnce(t *testing.T) {
	repos := sevenRepos()
	for name, pages := range map[string][][]any{
		"page before":  {repos[0:3], append([]any{repos[2]}, repos[3:5]...), repos[6:7]}, // 3 again, 6 lost
		"further back": {repos[0:3], repos[3:6], repos[0:1]},                             // 1 again, 7 lost
	} {
		for _, total := range []string{".total_count", ".total_count + 0"} {
			t.Run(name+"/"+total, func(t *testing.T) { totalCountsARepeatOnce(t, total, pages, len(repos)) })
		}
	}
}

func totalCountsARepeatOnce(t *testing.T, total string, pages [][]any, count int) {
	fx := newFixture(t, specHead+`streams:
  repos:
    request: {path: /repos}
    records: .items[]
    paginate: {type: page, param: page, size: 3, size_param: per_page, total: '`+total+`'}
tables:
  repos: {from: repos, primary_key: [id]}
`, "")
	fx.mu.Lock()
	fx.routes["/repos"] = func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		items := []any{}
		if page >= 1 && page <= len(pages) {
			items = pages[page-1]
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items, "total_count": count})
	}
	fx.mu.Unlock()
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "paging ended after 6 items, but page 1 said the list holds 7") {
		t.Fatalf("failures = %v, want the chain, 6 distinct items of 7", re.Failures)
	}
}

// TestTotalAlikeItemsOnOnePage: rows without an id that are alike (two
// events of the same text on one page) are the list's own items, not a
// shifted page's repeat: a whole read of 3 with a total of 3 passes and
// writes all three.
func TestTotalAlikeItemsOnOnePage(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  events:
    request: {path: /events}
    records: .items[]
    paginate: {type: page, param: page, total: .total}
tables:
  events: {from: events, mode: append}
`, "")
	fx.mu.Lock()
	fx.routes["/events"] = func(w http.ResponseWriter, r *http.Request) {
		pages := [][]any{{map[string]any{"v": 1}, map[string]any{"v": 1}}, {map[string]any{"v": 2}}, {}}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		json.NewEncoder(w).Encode(map[string]any{"items": pages[min(max(page, 1), 3)-1], "total": 3})
	}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("a whole read of 3 alike-and-not items: %v", err)
	}
	if got := fx.query(`SELECT count(*) FROM "nl__events"`); !slices.Equal(got, []string{"3"}) {
		t.Errorf("events rows = %v, want 3", got)
	}
}

// TestTotalCountsARepeatAcrossAResume: a run reads pages 1 and 2 of a
// list with a total and fails on page 3; the run that resumes it reads
// page 3, which lists item 1 again in place of item 7 (an order that is
// not stable). The items pages before the resume listed are saved with
// their checkpoints (8 bytes an item), so the repeat is counted once and
// the chain fails, 6 of 7; counted again, it made up for the item lost
// and the run exited 0. The run after the fault reads the chain afresh
// and is whole.
func TestTotalCountsARepeatAcrossAResume(t *testing.T) {
	repos := sevenRepos()
	fx := newFixture(t, specHead+`streams:
  repos:
    request: {path: /repos}
    records: .items[]
    paginate: {type: page, param: page, size: 3, size_param: per_page, total: .total_count}
tables:
  repos: {from: repos, primary_key: [id]}
`, "")
	run := 1
	fx.mu.Lock()
	fx.routes["/repos"] = func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		pages := [][]any{repos[0:3], repos[3:6], repos[6:7]}
		switch {
		case run == 1 && page == 3:
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		case run == 2:
			pages[2] = repos[0:1] // 1 again, 7 lost
		}
		items := []any{}
		if page >= 1 && page <= len(pages) {
			items = pages[page-1]
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items, "total_count": len(repos)})
	}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err == nil {
		t.Fatal("the first run's third page failed: want the run failed")
	}
	run = 2
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "paging ended after 6 items, but page 1 said the list holds 7") {
		t.Fatalf("failures = %v, want the chain, 6 distinct items of 7", re.Failures)
	}
	run = 3
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("the run after the fault: %v", err)
	}
	if got := fx.query(`SELECT count(*) FROM "nl__repos"`); !slices.Equal(got, []string{"7"}) {
		t.Errorf("repos = %v, want 7", got)
	}
}

// TestTotalCountsARepeatAcrossTwoResumes: the items a resumed run's
// replayed page lists are saved with the next checkpoint it commits,
// whichever it is. Run 1 delivers page 2 but fails on its total (what
// follows is unknown: run 2 asks page 2 again, writing nothing); run 2
// replays page 2 (its items, unsaved until a later checkpoint) and fails
// on page 3, a 404 read as no data on a page the server linked to; run 3
// resumes at page 3, which lists item 4 again in place of item 7. The
// checkpoint page 3's failure made carried none of page 2's items, so run
// 3 counted item 4 as new, 7 of 7, and exited 0 with item 7 lost.
func TestTotalCountsARepeatAcrossTwoResumes(t *testing.T) {
	repos := sevenRepos()
	fx := newFixture(t, specHead+`  rules:
    - {status: 404, action: empty}
streams:
  repos:
    request: {path: /repos}
    records: .items[]
    paginate: {type: cursor, token: .next, param: after, total: .total_count}
tables:
  repos: {from: repos, primary_key: [id]}
`, "")
	run := 1
	fx.mu.Lock()
	fx.routes["/repos"] = func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		body := map[string]any{"items": repos[after:min(after+3, 7)], "total_count": 7}
		if after+3 < 7 {
			body["next"] = strconv.Itoa(after + 3)
		}
		switch {
		case run == 1 && after == 3:
			body["total_count"] = "seven" // page 2 delivered, its total unreadable
		case run == 2 && after == 6:
			http.Error(w, "not found", http.StatusNotFound)
			return
		case run == 3 && after == 6:
			body["items"] = repos[3:4] // 4 again, 7 lost
		}
		json.NewEncoder(w).Encode(body)
	}
	fx.mu.Unlock()
	for run = 1; run <= 2; run++ {
		if _, err := fx.run(engine.RunOptions{}); err == nil {
			t.Fatalf("run %d: want the run failed", run)
		}
	}
	run = 3
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "paging ended after 6 items") {
		t.Fatalf("failures = %v, want the chain, 6 distinct items of 7", re.Failures)
	}
	run = 4
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("the run after the fault: %v", err)
	}
	if got := fx.query(`SELECT count(*) FROM "nl__repos"`); !slices.Equal(got, []string{"7"}) {
		t.Errorf("repos = %v, want 7", got)
	}
}
