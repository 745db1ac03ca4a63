package engine_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// A streamed page that breaks on line 1,700 into SQLite: the run fails,
// the destination holds exactly the page's first whole part (1,000 rows,
// committed with its checkpoint) and nothing of the broken part; the next
// run goes on after the part, so an append table ends with every record
// once.
func TestStreamedPageIntoSQLiteResumesAfterItsPart(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  events:
    request: {path: /events}
    response: {format: ndjson}
tables:
  log: {from: events, mode: append}
  events: {from: events, primary_key: [id]}
`, "")
	var good, bad strings.Builder
	for i := range 2500 {
		line := fmt.Sprintf("{\"id\": %d}\n", i)
		good.WriteString(line)
		if i == 1699 {
			line = "{\"id\": 1699,\n"
		}
		bad.WriteString(line)
	}
	fx.raw("/events", 200, bad.String())
	_, err := fx.run(engine.RunOptions{})
	re := runErrorOf(t, err)
	if !strings.Contains(re.Error(), "line 1700: invalid JSON") {
		t.Fatalf("run: %v, want line 1700 named", err)
	}
	count := func(table string) []string {
		return fx.query(`SELECT count(*) || '/' || count(DISTINCT id) || '/' || max(id) FROM "nl__` + table + `"`)
	}
	for _, table := range []string{"log", "events"} {
		if got := count(table); !slices.Equal(got, []string{"1000/1000/999"}) {
			t.Errorf("after the failure %s holds %v, want rows 0..999 (count/distinct/max)", table, got)
		}
	}
	fx.raw("/events", 200, good.String())
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	for _, table := range []string{"log", "events"} {
		if got := count(table); !slices.Equal(got, []string{"2500/2500/" + strconv.Itoa(2499)}) {
			t.Errorf("after the resumed run %s holds %v, want every record once", table, got)
		}
	}
}
