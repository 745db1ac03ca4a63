package engine_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestCheckRules: an answer a response rule skips or reads as "no data"
// proves nothing of the endpoint (a wrong base URL answers 404 too), and
// the check must not say a page was read; an error in a 200 that a rule
// fails, and a records program that fails, fail the check.
func TestCheckRules(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  skipped:
    request: {path: /skipped}
    http:
      rules: [{status: 403, action: skip, message: .message}]
  nodata:
    request: {path: /nodata}
    http:
      rules: [{status: 404, action: empty}]
  err200:
    request: {path: /err200}
    http:
      rules: [{status: 200, body: .ok == false, action: fail, message: .error}]
  badrecords:
    request: {path: /bad}
    records: '.items[] | error("broken")'
tables:
  skipped: {from: skipped, primary_key: [id]}
  nodata: {from: nodata, primary_key: [id]}
  err200: {from: err200, primary_key: [id]}
  badrecords: {from: badrecords, primary_key: [id]}
`, "")
	fx.raw("/skipped", http.StatusForbidden, `{"message": "no access to this one"}`)
	fx.raw("/nodata", http.StatusNotFound, `{"message": "not found"}`)
	fx.raw("/err200", http.StatusOK, `{"ok": false, "error": "invalid_auth"}`)
	fx.raw("/bad", http.StatusOK, `{"items": [{"id": 1}]}`)
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
	if res == nil {
		t.Fatal(err)
	}
	got := map[string]engine.StreamCheck{}
	for _, s := range res.Streams {
		got[s.Stream] = s
	}
	for _, name := range []string{"err200", "badrecords"} {
		if got[name].Status != engine.CheckFailed {
			t.Errorf("%s: %+v, want failed", name, got[name])
		}
	}
	if s := got["skipped"]; s.Status != engine.CheckSkipped || !strings.Contains(s.Detail, "no access to this one") {
		t.Errorf("skipped: %+v, want skipped, with the rule's message", s)
	}
	if s := got["nodata"]; s.Status != engine.CheckSkipped || !strings.Contains(s.Detail, "no data") {
		t.Errorf("nodata: %+v, want skipped, saying a rule read the answer as no data", s)
	}
}
