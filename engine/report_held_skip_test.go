package engine_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ferry-etl/ferry/engine"
)

// TestReportHeldSkipFitsSchema: a rule skips a window's request, the next
// window is read, the last fails; the run resuming the sync names the
// skipped request again (still unread), though it knows neither its page
// nor its window: its report must still fit report.schema.json, which an
// orchestrator validates it against.
func TestReportHeldSkipFitsSchema(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(engine.ReportSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("report.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, specHead+`streams:
  events:
    http:
      rules:
        - {status: 503, action: skip}
    request: {path: /events, query: {from: '${ window.start }', to: '${ window.end }'}}
    incremental: {cursor: .at, initial: "2026-01-01T00:00:00Z", window: {step: 720h}}
tables:
  events: {from: events, primary_key: [id]}
`, "")
	var fail atomic.Bool
	fail.Store(true)
	fx.mu.Lock()
	fx.routes["/events"] = func(w http.ResponseWriter, r *http.Request) {
		switch from := r.URL.Query().Get("from"); {
		case from == "2026-01-01T00:00:00Z":
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case from == "2026-03-02T00:00:00Z" && fail.Load():
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			w.Write([]byte(`[{"id": "e", "at": "2026-02-01T00:00:00Z"}]`))
		}
	}
	fx.mu.Unlock()
	now := func() time.Time { return time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC) }
	_, err = fx.run(engine.RunOptions{Now: now})
	runErrorOf(t, err)
	fail.Store(false)
	res, err := fx.run(engine.RunOptions{Now: now})
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	rep := engine.NewRunReport(fx.spec, "s.yaml", res, err, engine.ExitOK, false, time.Now())
	if len(rep.SkippedRequests) != 1 || !strings.Contains(rep.SkippedRequests[0].Reason, "still unread") {
		t.Fatalf("skipped requests %+v, want the held one: the test needs a resumed chain holding a skip", rep.SkippedRequests)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("the resumed run's report does not fit its schema: %v\n%s", err, data)
	}
}
