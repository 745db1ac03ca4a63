package examples_test

import (
	"database/sql"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestNotionResume: a run that fails in either stage (search, in stage 0;
// a block list or an unlisted subpage's row, in stage 1, which reads the
// lookup of listed pages) and the run resuming it write every reachable
// page and every block of one, once, none marked deleted. The resumed run
// searches again and gets another listing (Gamma left out): Gamma, listed
// in the failed run, is now reached below Alpha, its content under its
// child_page block, its row from GET /v1/pages.
func TestNotionResume(t *testing.T) {
	t.Parallel()
	cases := map[string]map[string][]int{
		"search fails (stage 0)":           {"/v1/search|cur-3": {500, 500, 500, 500, 500, 500, 500, 500}},
		"a block list fails (stage 1)":     {"/v1/blocks/blk-009/children|": {500, 500, 500, 500, 500, 500, 500, 500}},
		"an unlisted subpage's row fails":  {"/v1/pages/page-e|": {500, 500, 500, 500, 500, 500, 500, 500}},
		"a listed subpage's content fails": {"/v1/blocks/page-f/children|": {500, 500, 500, 500, 500, 500, 500, 500}},
	}
	for name, faults := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each waits out Notion's rate limit and the retries' backoff
			sim := newNotionSim(0)
			for k, v := range faults {
				sim.faults[k] = v
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			db := filepath.Join(t.TempDir(), "n.db")
			sets := map[string]string{"api_url": srv.URL, "token": notionToken}
			if r := runVendorOpts(t, "notion.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db}); r.err == nil {
				t.Fatal("the first run passed: the fault failed nothing")
			}
			sim.mu.Lock()
			for k := range sim.faults {
				delete(sim.faults, k)
			}
			sim.mu.Unlock()
			r := runVendorOpts(t, "notion.yaml", sets, engine.RunOptions{Dest: "sqlite:" + db})
			if r.err != nil {
				t.Fatalf("resumed run: %v\n%s", r.err, r.said)
			}
			reach := sim.reachable()
			var wantPages, wantBlocks []string
			for id := range reach {
				wantPages = append(wantPages, id)
			}
			for id, parent := range sim.parentOf {
				if reach[sim.pageOf[id]] {
					wantBlocks = append(wantBlocks, id+" < "+parent+" in "+sim.pageOf[id])
				}
			}
			conn, err := sql.Open("sqlite", db)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			strs := func(q string) []string {
				t.Helper()
				rows, err := conn.Query(q)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var out []string
				for rows.Next() {
					var s string
					if err := rows.Scan(&s); err != nil {
						t.Fatal(err)
					}
					out = append(out, s)
				}
				return out
			}
			sameIDs(t, "pages", wantPages, strs(`SELECT id FROM "notion__pages" WHERE NOT _ferry_deleted`))
			sameIDs(t, "blocks (id < parent in page)", wantBlocks, strs(`SELECT id || ' < ' || parent_id || ' in ' || page_id FROM "notion__blocks" WHERE NOT _ferry_deleted`))
			if n := strs(`SELECT count(*) FROM "notion__pages"`); fmt.Sprint(n) != fmt.Sprintf("[%d]", len(wantPages)) {
				t.Errorf("pages holds %v rows, want %d", n, len(wantPages))
			}
		})
	}
}
