package engine_test

import (
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// viewsSpec reads page views, several a page (offset paging), into an
// append log of every view and a table of the pages viewed, keyed by the
// page: a key many views share, whose rows are the same for each (no
// on_duplicate needed: the same row again is counted, not a collision).
const viewsSpec = specHead + `streams:
  views:
    request: {path: /views}
    paginate: {type: offset, param: offset, size: 3, size_param: limit}
tables:
  pages: {from: views, primary_key: [page], row: '{page}'}
  log: {from: views, mode: append, row: '{page, user}'}
`

func views(fx *fixture, recs []any) {
	fx.serveList("/views", recs, 3, func(items []any, _ bool, _ *http.Request) any { return items })
}

// TestIdenticalEventsOnOnePageAreBothAppended: two views of p1 by u, both
// real, listed on one page. Neither is a repeat of the other by paging (a
// page does not list its own records twice when the list shifts), yet the
// second's append row was left out as the first's (metNear), exit 0.
func TestIdenticalEventsOnOnePageAreBothAppended(t *testing.T) {
	fx := newFixture(t, viewsSpec, "")
	v := func(page, user string) map[string]any { return map[string]any{"page": page, "user": user} }
	views(fx, []any{v("p1", "u"), v("p2", "w"), v("p1", "u"), v("p3", "w")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"p1:u", "p1:u", "p2:w", "p3:w"}
	if got := fx.query(`SELECT page || ':' || user FROM "nl__log" ORDER BY 1`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v: two views on one page are two rows", got, want)
	}
}

// TestIdenticalEventsAcrossAPageBoundaryAreBothAppended: the same two
// views, the second first on the next page, where an offset-shifted page
// would repeat the one before's last record: told apart from that by
// nothing the run sees. Known: appended once, exit 0.
func TestIdenticalEventsAcrossAPageBoundaryAreBothAppended(t *testing.T) {
	if os.Getenv("FERRY_KNOWN_BUGS") != "1" {
		t.Skip("known: a record the next page begins with, as the page before ended, is taken for an offset page's repeat (FERRY_KNOWN_BUGS=1)")
	}
	fx := newFixture(t, viewsSpec, "")
	v := func(page, user string) map[string]any { return map[string]any{"page": page, "user": user} }
	views(fx, []any{v("p2", "w"), v("p3", "w"), v("p1", "u"), v("p1", "u")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"p1:u", "p1:u", "p2:w", "p3:w"}
	if got := fx.query(`SELECT page || ':' || user FROM "nl__log" ORDER BY 1`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}

// TestIdenticalEventPastThePagesFirstNewRecordIsAppended: a view the
// page before held too, but past the page's first new record: a shift
// puts the repeats at a page's start, so this is another view.
func TestIdenticalEventPastThePagesFirstNewRecordIsAppended(t *testing.T) {
	fx := newFixture(t, viewsSpec, "")
	v := func(page, user string) map[string]any { return map[string]any{"page": page, "user": user} }
	views(fx, []any{v("p1", "u"), v("p2", "w"), v("p3", "w"), v("p4", "x"), v("p1", "u")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"p1:u", "p1:u", "p2:w", "p3:w", "p4:x"}
	if got := fx.query(`SELECT page || ':' || user FROM "nl__log" ORDER BY 1`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}

// TestIdenticalEventPastTheCommittedPagesIsAppended: the second view of
// p1 by u is on a page the first run did not reach (it failed there);
// the run resuming the sync meets it past the committed pages, with the
// sum the first view's partition saved, and takes it for that one,
// committed: appended once in the sync, exit 0, where an uninterrupted
// run appends both. Known (appendedBefore, as by the keys before sums).
// Under on_duplicate: fail, an uninterrupted run fails on the second p1;
// the resumed run took its row for its partition's own (committedThen):
// exit 0, one row appended.
func TestIdenticalEventPastTheCommittedPagesIsAppended(t *testing.T) {
	if os.Getenv("FERRY_KNOWN_BUGS") != "1" {
		t.Skip("known: a record past the committed pages with a committed record's sum is taken for it (FERRY_KNOWN_BUGS=1)")
	}
	for _, mode := range []string{"", "fail"} {
		t.Run("on_duplicate="+mode, func(t *testing.T) {
			dup := ""
			if mode != "" {
				dup = ", on_duplicate: " + mode
			}
			fx := newFixture(t, specHead+`streams:
  views:
    request: {path: /views}
    paginate: {type: offset, param: offset}
tables:
  pages: {from: views, primary_key: [page], row: '{page}'`+dup+`}
  log: {from: views, mode: append, row: '{page, user}'}
`, "")
			v := func(page, user string) map[string]any { return map[string]any{"page": page, "user": user} }
			recs := []any{v("p1", "u"), v("p2", "w"), v("p1", "u")}
			fx.pages("/views", recs, 2)
			if _, err := fx.run(engine.RunOptions{}); err == nil {
				t.Fatal("the first run read past its failing page")
			}
			fx.pages("/views", recs)
			_, err := fx.run(engine.RunOptions{})
			if mode == "fail" {
				if err == nil {
					t.Errorf("the resumed run exits 0 (log %v): an uninterrupted one fails on p1's second row", fx.query(`SELECT page || ':' || user FROM "nl__log" ORDER BY 1`))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"p1:u", "p1:u", "p2:w"}
			if got := fx.query(`SELECT page || ':' || user FROM "nl__log" ORDER BY 1`); !slices.Equal(got, want) {
				t.Errorf("log = %v, want %v", got, want)
			}
		})
	}
}

// TestIdenticalEventOutOfTheShiftsOrderIsAppended: the next page begins
// with the last view of the page before (p3 by w, which a shift of one
// would repeat: taken for that), then a view of p1 by u, which the page
// before held but not after p3: a shift repeats the page before's last
// records in their order, so this one is another view.
func TestIdenticalEventOutOfTheShiftsOrderIsAppended(t *testing.T) {
	fx := newFixture(t, viewsSpec, "")
	v := func(page, user string) map[string]any { return map[string]any{"page": page, "user": user} }
	views(fx, []any{v("p1", "u"), v("p2", "w"), v("p3", "w"), v("p3", "w"), v("p1", "u"), v("p5", "z")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fx.query(`SELECT page || ':' || user FROM "nl__log" WHERE page = 'p1' ORDER BY 1`); !slices.Equal(got, []string{"p1:u", "p1:u"}) {
		t.Errorf("log's views of p1 = %v, want two", got)
	}
}
