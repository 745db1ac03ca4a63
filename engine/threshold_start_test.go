package engine_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// appsPage serves one page of org A's apps (orgPagedSpec): n 1 is the
// list's address; next links page n+1 unless last.
func appsPage(fx *fixture, n int, ids []string, last bool) {
	body := map[string]any{"items": []any{}}
	for _, id := range ids {
		body["items"] = append(body["items"].([]any), map[string]any{"id": id})
	}
	if !last {
		body["next"] = fmt.Sprintf("/orgs/A/apps/p%d", n+1)
	}
	path := fmt.Sprintf("/orgs/A/apps/p%d", n)
	if n == 1 {
		path = "/orgs/A/apps"
	}
	fx.json(path, body)
}

// newIDs are n00 … n(n-1).
func newIDs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("n%02d", i))
	}
	return out
}

// refusedOf is the plan's refused deletions of table apps: count and
// reason; 0 and "" when none.
func refusedOf(t *testing.T, p *engine.Plan) (int, string) {
	t.Helper()
	for _, tp := range p.Tables {
		if tp.Name == "apps" && tp.Refused != nil {
			return tp.Refused.Count, tp.Refused.Reason
		}
	}
	return 0, ""
}

// deletesOf is how many rows the plan would mark deleted in table apps.
func deletesOf(p *engine.Plan) int {
	for _, tp := range p.Tables {
		if tp.Name == "apps" {
			return tp.Delete
		}
	}
	return -1
}

const threeOfThree = "would delete 3 of 3 live rows, above the 90% threshold (tables.apps.delete_threshold)"

// TestThresholdCountsRowsLiveAtSyncStart: the source that listed 3 apps
// now lists 30 others (an API answering for another scope). The sync
// would mark the 3 rows the table had, all of them: refused, though they
// are 3 of the 33 rows live once the 30 are written (a run counted so,
// and marked them). The plan says the same as the run, in the same
// words; the report too.
func TestThresholdCountsRowsLiveAtSyncStart(t *testing.T) {
	fx := newFixture(t, orgPagedSpec, "")
	appsPage(fx, 1, []string{"a1", "a2", "a3"}, true)
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	appsPage(fx, 1, newIDs(30), true)
	p, err := planWithOrg(fx, fx.api.URL, "A", engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, reason := refusedOf(t, p); n != 3 || reason != threeOfThree+": no row is marked deleted" {
		t.Errorf("plan: refused %d, %q; want 3, %q", n, reason, threeOfThree)
	}
	res, err := runWithOrg(fx, "A", engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sk, ok := res.Dest.SkippedDeletes["apps"]
	if !ok || sk.Stale != 3 || sk.Live != 3 || sk.Reason != threeOfThree {
		t.Errorf("run: skipped %+v (%v); want %q, as the plan said", sk, ok, threeOfThree)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
		t.Errorf("rows marked deleted: %v; want none (3 of the 3 there were)", got)
	}
	rep := engine.NewRunReport(fx.spec, "s.yaml", res, nil, 0, false, res.Ended)
	if tr := rep.Tables[0]; tr.Reconciled || tr.RowsDeleted != 0 || tr.SkippedDelete != threeOfThree {
		t.Errorf("report: %+v; want not reconciled, skipped_delete %q", tr, threeOfThree)
	}
}

// TestThresholdResumedSyncPlanAndRun: a sync whose first run wrote 30
// new rows into a table of 3, then failed, is resumed: the run resuming
// it counts the rows live when the sync began (3 of 3: refused), and so
// does its plan. A plan of a run that would start the table's sync anew
// (too old to resume; --full-refresh, of every stream or of those feeding
// it) counts the rows live now, as that run does.
func TestThresholdResumedSyncPlanAndRun(t *testing.T) {
	fx := newFixture(t, orgPagedSpec, "")
	appsPage(fx, 1, []string{"a1", "a2", "a3"}, true)
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	appsPage(fx, 1, newIDs(30), false)
	fx.raw("/orgs/A/apps/p2", http.StatusBadRequest, `{"message": "no"}`)
	if _, err := runWithOrg(fx, "A", engine.RunOptions{}); err == nil {
		t.Fatal("the run with a failed page exited 0")
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE NOT _ferry_deleted`); len(got) != 33 {
		t.Fatalf("%d live rows after the failed run, want 33", len(got))
	}
	appsPage(fx, 2, []string{"n30"}, true)

	for _, anew := range []engine.PlanOptions{{ResumeWithin: time.Nanosecond}, {FullRefresh: true}, {FullRefresh: true, Streams: []string{"apps"}}} {
		p, err := planWithOrg(fx, fx.api.URL, "A", anew)
		if err != nil {
			t.Fatal(err)
		}
		if n, reason := refusedOf(t, p); n != 0 || deletesOf(p) != 3 {
			t.Errorf("plan of a new sync (%+v): refused %d (%q), deletes %d; want 3 deleted (of 33)", anew, n, reason, deletesOf(p))
		}
	}
	p, err := planWithOrg(fx, fx.api.URL, "A", engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, reason := refusedOf(t, p); n != 3 || reason != threeOfThree+": no row is marked deleted" {
		t.Errorf("plan of the resuming run: refused %d, %q; want 3, %q", n, reason, threeOfThree)
	}
	fx.takeRequests()
	res, err := runWithOrg(fx, "A", engine.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fx.takeRequests(); !slices.Equal(got, []string{"/orgs/A/apps/p2"}) {
		t.Errorf("the resuming run asked %v, want only the page that failed", got)
	}
	sk, ok := res.Dest.SkippedDeletes["apps"]
	if !ok || sk.Stale != 3 || sk.Live != 3 || sk.Reason != threeOfThree {
		t.Errorf("resumed run: skipped %+v (%v); want %q, as the plan said", sk, ok, threeOfThree)
	}
	if got := fx.query(`SELECT id FROM nl__apps WHERE _ferry_deleted ORDER BY id`); len(got) > 0 {
		t.Errorf("rows marked deleted: %v; want none", got)
	}
}
