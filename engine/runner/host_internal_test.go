package runner

import (
	"testing"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/spec"
)

// The top level's rate_limit is the host's ceiling, shared by its
// streams; a stream's own rate_limit is that stream's alone (one
// endpoint's limit, such as a search API's), and does not tighten the
// host for the others. A stream without one has only the host's.
func TestStreamRateLimitIsItsOwn(t *testing.T) {
	f, err := spec.Parse("spec.yaml", []byte(`version: 1
name: t
http:
  base_url: https://api.example.com
  rate_limit: {per_second: 10, burst: 10}
streams:
  search:
    http:
      rate_limit: {per_second: 4, group: search}
    request: {path: /search}
  list:
    request: {path: /list}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][4]float64{"search": {10, 10, 4, 0}, "list": {10, 10, 0, 0}} {
		s := f.Stream(name)
		hc, err := hostConfig(f, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := [4]float64{hc.RatePerSecond, float64(hc.Burst), hc.OwnRatePerSecond, float64(hc.OwnBurst)}
		if got != want {
			t.Errorf("%s: host %v/s burst %v, own %v/s burst %v; want %v", name, got[0], got[1], got[2], got[3], want)
		}
		if g := map[string]string{"search": "search"}[name]; hc.OwnRateGroup != g {
			t.Errorf("%s: group %q, want %q", name, hc.OwnRateGroup, g)
		}
	}
}

// rate_limit_headers reaches every stream's client as the host's budget
// headers, the unit ms as milliseconds.
func TestRateLimitHeadersToBudget(t *testing.T) {
	f, err := spec.Parse("spec.yaml", []byte(`version: 1
name: t
http:
  base_url: https://api.example.com
  rate_limit_headers:
    remaining: X-HubSpot-RateLimit-Remaining
    limit: X-HubSpot-RateLimit-Max
    window: X-HubSpot-RateLimit-Interval-Milliseconds
    unit: ms
streams:
  list:
    request: {path: /list}
  own:
    http:
      concurrency: 2
    request: {path: /own}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := fetch.BudgetHeaders{Remaining: "X-HubSpot-RateLimit-Remaining", Limit: "X-HubSpot-RateLimit-Max",
		Window: "X-HubSpot-RateLimit-Interval-Milliseconds", Millis: true}
	for _, name := range []string{"list", "own"} {
		hc, err := hostConfig(f, f.Stream(name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if hc.Budget != want {
			t.Errorf("%s: budget headers %+v, want %+v", name, hc.Budget, want)
		}
	}
}

// A list of rate_limit_headers reaches the client as the host's budget
// (the first) and its further ones, in order.
func TestRateLimitHeadersListToBudgets(t *testing.T) {
	f, err := spec.Parse("spec.yaml", []byte(`version: 1
name: t
http:
  base_url: https://api.example.com
  rate_limit_headers:
    - {remaining: RateLimit-Remaining, reset: RateLimit-Reset}
    - {remaining: RateLimit-User-Remaining, reset: RateLimit-User-Reset, unit: ms}
streams:
  list:
    request: {path: /list}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := hostConfig(f, f.Stream("list"), nil)
	if err != nil {
		t.Fatal(err)
	}
	first := fetch.BudgetHeaders{Remaining: "RateLimit-Remaining", Reset: "RateLimit-Reset"}
	other := fetch.BudgetHeaders{Remaining: "RateLimit-User-Remaining", Reset: "RateLimit-User-Reset", Millis: true}
	if hc.Budget != first || len(hc.OtherBudgets) != 1 || hc.OtherBudgets[0] != other {
		t.Errorf("budgets %+v and %+v, want %+v and [%+v]", hc.Budget, hc.OtherBudgets, first, other)
	}
}
