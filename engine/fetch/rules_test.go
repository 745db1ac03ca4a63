package fetch

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/ferry-etl/ferry/engine/eval"
)

// jqx compiles a jq program into an Extract, as the runner does.
func jqx(t *testing.T, src string) Extract {
	t.Helper()
	q, err := eval.CompileJQ(src, nil)
	if err != nil {
		t.Fatalf("jq %q: %v", src, err)
	}
	return func(ctx context.Context, body any) (any, bool, error) { return q.First(ctx, body) }
}

// simClock drives an apitest server from a fetch test's fake clock: the
// server's time is the client's, and the client's sleeps move both.
type simClock struct{ clk *fakeClock }

func (s simClock) Now() time.Time { return s.clk.Now() }
func (s simClock) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		s.clk.Advance(d)
	}
	return ctx.Err()
}

func startSim(t *testing.T, f apitest.Fixture, clk *fakeClock) *apitest.Server {
	t.Helper()
	s, err := apitest.Start(f, apitest.WithClock(simClock{clk}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// GitHub answers 404 for "this repository has no README": with a rule it
// is no data, not a failure, and not counted as an error.
func TestRuleEmpty(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, apitest.Fixture{Routes: []apitest.Route{
		{Path: "/repos/acme/docs/readme", Body: map[string]any{"name": "README.md"}},
	}}, clk)
	p := testPool(clk, 0, nil)
	rules := []Rule{{Name: "http.rules[0]", Statuses: []StatusRange{{404, 404}}, Action: ActionEmpty}}
	c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Rules: rules})

	resp, err := c.Do(t.Context(), &Request{URL: "/repos/acme/tools/readme"})
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("Do = %v, want ErrEmpty", err)
	}
	if resp == nil || resp.Status != 404 {
		t.Errorf("response = %+v, want the 404 itself", resp)
	}
	if errors.Is(err, ErrSkipped) {
		t.Error("an empty answer must not read as skipped")
	}
	if _, err := c.Do(t.Context(), &Request{URL: "/repos/acme/docs/readme"}); err != nil {
		t.Errorf("Do on a repo with a README: %v", err)
	}
	if got := p.Stats().Errors; got != 0 {
		t.Errorf("errors = %d, want 0: an empty answer is not an error", got)
	}

	// Without the rule the same answer fails, as before.
	plain := mustClient(t, p, HostConfig{BaseURL: s.URL()})
	var se *StatusError
	if _, err := plain.Do(t.Context(), &Request{URL: "/repos/acme/tools/readme"}); !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("without rules: Do = %v, want a 404 StatusError", err)
	}
}

// A repository blocked for legal reasons (451) is skipped: reported as
// skipped, not failed, with the reason taken from the body.
func TestRuleSkip(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, apitest.Fixture{Routes: []apitest.Route{
		{Path: "/repos/acme/blocked/pulls", Status: 451, Body: map[string]any{"message": "Repository access blocked"}},
	}}, clk)
	p := testPool(clk, 0, nil)
	c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Rules: []Rule{
		{Name: "r0", Statuses: []StatusRange{{451, 451}}, Action: ActionSkip, Message: jqx(t, ".message")},
	}})
	_, err := c.Do(t.Context(), &Request{URL: "/repos/acme/blocked/pulls"})
	if !errors.Is(err, ErrSkipped) || errors.Is(err, ErrEmpty) {
		t.Fatalf("Do = %v, want ErrSkipped", err)
	}
	var re *RuleError
	if !errors.As(err, &re) || re.Message != "Repository access blocked" || re.Rule != "r0" {
		t.Errorf("rule error = %+v, want rule r0 with the body's message", re)
	}
	if got := p.Stats().Errors; got != 0 {
		t.Errorf("errors = %d, want 0", got)
	}
}

// GitHub's primary rate limit is a 403 with x-ratelimit-remaining 0 and
// x-ratelimit-reset in epoch seconds, and no Retry-After: a retry rule
// waits for the reset and sends again.
func TestRuleRetryGitHubRateLimit(t *testing.T) {
	clk := newFakeClock()
	fix := apitest.Fixture{
		RateLimit: &apitest.RateLimit{Limit: 2, Per: apitest.Duration{Duration: time.Hour}, Style: apitest.RateStyleGitHub},
		Routes: []apitest.Route{
			{Path: "/repos/acme/api/pulls", Items: []any{map[string]any{"number": 1}}},
			{Path: "/repos/acme/secret/pulls", Status: 403, Body: map[string]any{"message": "Resource not accessible by integration"}},
		},
	}
	rule := Rule{Name: "r0", Statuses: []StatusRange{{403, 403}, {429, 429}}, Headers: map[string]string{"X-Ratelimit-Remaining": "0"}, Action: ActionRetry, MaxWait: 2 * time.Hour}

	t.Run("waits for the reset", func(t *testing.T) {
		s := startSim(t, fix, clk)
		p := testPool(clk, 0, nil)
		c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Rules: []Rule{rule}})
		for range 2 {
			if _, err := c.Do(t.Context(), &Request{URL: "/repos/acme/api/pulls"}); err != nil {
				t.Fatal(err)
			}
		}
		before := clk.Now()
		resp, err := c.Do(t.Context(), &Request{URL: "/repos/acme/api/pulls"})
		if err != nil {
			t.Fatalf("Do after the window ran out: %v", err)
		}
		if resp.Attempts != 2 {
			t.Errorf("attempts = %d, want 2 (the 403, then the retry after the reset)", resp.Attempts)
		}
		// The window opened at the first request and lasts an hour; the
		// reset is its end rounded up to a whole second.
		if waited := clk.Now().Sub(before); waited < 59*time.Minute || waited > time.Hour+time.Second {
			t.Errorf("waited %v for the reset, want about an hour", waited)
		}
	})
	t.Run("a reset beyond max_wait fails at once", func(t *testing.T) {
		s := startSim(t, fix, clk)
		short := rule
		short.MaxWait = 10 * time.Minute
		c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Rules: []Rule{short}})
		for range 2 {
			if _, err := c.Do(t.Context(), &Request{URL: "/repos/acme/api/pulls"}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := c.Do(t.Context(), &Request{URL: "/repos/acme/api/pulls"})
		var re *RuleError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "more than max_wait 10m0s") || isOutcome(err) {
			t.Fatalf("Do = %v, want a failure naming max_wait", err)
		}
		if resp.Attempts != 1 {
			t.Errorf("attempts = %d, want 1", resp.Attempts)
		}
	})
	t.Run("a 403 that is no rate limit fails", func(t *testing.T) {
		s := startSim(t, fix, clk)
		c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Rules: []Rule{rule}})
		resp, err := c.Do(t.Context(), &Request{URL: "/repos/acme/secret/pulls"})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 403 || resp.Attempts != 1 {
			t.Errorf("Do = %v, want the 403 at once: x-ratelimit-remaining is not 0", err)
		}
	})
	t.Run("without the rule the 403 fails", func(t *testing.T) {
		s := startSim(t, fix, clk)
		c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL()})
		var se *StatusError
		for i := range 3 {
			_, err := c.Do(t.Context(), &Request{URL: "/repos/acme/api/pulls"})
			if i == 2 && (!errors.As(err, &se) || se.Status != 403) {
				t.Errorf("Do = %v, want a 403 StatusError", err)
			}
		}
	})
}

// Slack answers errors in a 200: {"ok": false, "error": "..."}. A rate
// limit there is retried after the header the rule names; any other error
// fails with Slack's code as the message.
func TestRuleRetryAndFailOn200Body(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, apitest.Fixture{Routes: []apitest.Route{
		{Path: "/api/conversations.list", Body: map[string]any{"ok": true, "channels": []any{}},
			Faults: []apitest.Fault{{Status: 200, Body: `{"ok":false,"error":"ratelimited"}`, Headers: map[string]string{"X-Slack-Wait": "7"}}}},
		{Path: "/api/users.list", Body: map[string]any{"ok": false, "error": "missing_scope", "needed": "users:read"}},
		{Path: "/api/files.list", RawBody: "<html>not json</html>"},
	}}, clk)
	p := testPool(clk, 0, nil)
	c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Rules: []Rule{
		{Name: "r0", Body: jqx(t, `.ok == false and .error == "ratelimited"`), Action: ActionRetry, WaitHeader: "X-Slack-Wait"},
		{Name: "r1", Body: jqx(t, ".ok == false"), Action: ActionFail, Message: jqx(t, `.error + " (needs " + .needed + ")"`)},
	}})

	resp, err := c.Do(t.Context(), &Request{URL: "/api/conversations.list"})
	if err != nil || resp.Attempts != 2 {
		t.Fatalf("Do = %v (attempts %d), want success on the second attempt", err, resp.Attempts)
	}
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 7*time.Second {
		t.Errorf("sleeps = %v, want [7s] from X-Slack-Wait", got)
	}

	_, err = c.Do(t.Context(), &Request{URL: "/api/users.list"})
	var re *RuleError
	if !errors.As(err, &re) || re.Action != ActionFail || re.Status != 200 {
		t.Fatalf("Do = %v, want a fail rule error on a 200", err)
	}
	if want := "GET " + s.URL() + "/api/users.list: 200 OK: rule r1 (fail): missing_scope (needs users:read)"; err.Error() != want {
		t.Errorf("error =\n%s\nwant\n%s", err, want)
	}

	// A body that is not JSON matches no body predicate: it is data as
	// before (the runner then says it is not JSON).
	if _, err := c.Do(t.Context(), &Request{URL: "/api/files.list"}); err != nil {
		t.Errorf("non-JSON 200: Do = %v, want data", err)
	}
}

// GraphQL puts errors in a 200 too: {"data": null, "errors": [...]}.
func TestRuleFailGraphQLErrors(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, apitest.Fixture{Routes: []apitest.Route{
		{Method: "POST", Path: "/graphql", Body: map[string]any{"data": nil, "errors": []any{map[string]any{"message": "Field 'nope' doesn't exist on type 'Query'"}}}},
	}}, clk)
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Rules: []Rule{
		{Name: "r0", Body: jqx(t, `(.errors // []) | length > 0`), Action: ActionFail, Message: jqx(t, `[.errors[].message] | join("; ")`)},
	}})
	_, err := c.Do(t.Context(), &Request{Method: "POST", URL: "/graphql", Body: map[string]any{"query": "{ nope }"}})
	var re *RuleError
	if !errors.As(err, &re) || re.Message != "Field 'nope' doesn't exist on type 'Query'" {
		t.Fatalf("Do = %v, want the GraphQL error as the message", err)
	}
}

// GitHub sends x-ratelimit-reset on every answer, where it names the end
// of the hour's window: a retry rule for a GraphQL timeout (a 200 with an
// error) on an answer with budget left backs off and sends again at once
// instead of waiting out the hour (or failing over max_wait); the same
// answer saying the budget is spent waits for the reset. ServiceNow sends
// its rate limit rule's X-RateLimit-Reset (the hour's end) on every
// answer and no remaining count at all: a retried 200 that is no rate
// limit (a cancelled transaction) backs off too.
func TestRuleRetryResetOnlyWhenSpent(t *testing.T) {
	for _, tc := range []struct {
		remaining string // "" sends none
		wantWait  bool   // the sleep is the reset's hour
	}{{"4999", false}, {"0", true}, {"", false}} {
		t.Run("remaining "+tc.remaining, func(t *testing.T) {
			clk := newFakeClock()
			reset := strconv.FormatInt(clk.Now().Add(time.Hour).Unix(), 10)
			headers := map[string]string{"X-RateLimit-Reset": reset}
			if tc.remaining != "" {
				headers["X-RateLimit-Remaining"] = tc.remaining
			}
			s := startSim(t, apitest.Fixture{Routes: []apitest.Route{
				{Method: "POST", Path: "/graphql", Body: map[string]any{"data": map[string]any{"viewer": map[string]any{"login": "ada"}}},
					Faults: []apitest.Fault{{Status: 200, Body: `{"data":null,"errors":[{"message":"Something went wrong while executing your query."}]}`,
						Headers: headers}}},
			}}, clk)
			c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Rules: []Rule{
				{Name: "r0", Body: jqx(t, `any(.errors[]?; .message | startswith("Something went wrong"))`), Action: ActionRetry, MaxWait: 2 * time.Hour},
			}})
			resp, err := c.Do(t.Context(), &Request{Method: "POST", URL: "/graphql", Body: map[string]any{"query": "{ viewer { login } }"}})
			if err != nil || resp.Attempts != 2 {
				t.Fatalf("Do = %v (attempts %d), want success on the second attempt", err, resp.Attempts)
			}
			var total time.Duration
			for _, d := range clk.Sleeps() {
				total += d
			}
			if waited := total >= 59*time.Minute; waited != tc.wantWait {
				t.Errorf("slept %v in all (%v); want the hour to the reset: %v", total, clk.Sleeps(), tc.wantWait)
			}
		})
	}
}

// ok makes an answer data whatever its status, and stops later rules.
func TestRuleOK(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, apitest.Fixture{Routes: []apitest.Route{
		{Path: "/jobs/7", Status: 409, Body: map[string]any{"state": "running"}},
	}}, clk)
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Rules: []Rule{
		{Name: "r0", Statuses: []StatusRange{{409, 409}}, Body: jqx(t, `.state == "running"`), Action: ActionOK},
		{Name: "r1", Statuses: []StatusRange{{400, 499}}, Action: ActionFail},
	}})
	resp, err := c.Do(t.Context(), &Request{URL: "/jobs/7"})
	if err != nil || resp.Status != 409 || !strings.Contains(string(resp.Body), "running") {
		t.Fatalf("Do = %v, %v; want the 409 as data", resp, err)
	}
}

// A predicate that fails to run decides nothing: the request fails.
func TestRuleProgramErrorFails(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, apitest.Fixture{Routes: []apitest.Route{{Path: "/list", Items: []any{1, 2}}}}, clk)
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Rules: []Rule{
		{Name: "r0", Body: jqx(t, `.ok == false`), Action: ActionEmpty},
	}})
	_, err := c.Do(t.Context(), &Request{URL: "/list"})
	var re *RuleError
	if !errors.As(err, &re) || re.Action != ActionFail || isOutcome(err) {
		t.Fatalf("Do = %v, want a failure (not empty) when the predicate cannot index a list", err)
	}
}

func TestRuleValidate(t *testing.T) {
	p := NewPool(Options{})
	for _, r := range []Rule{
		{Name: "a", Action: "ignore"},
		{Name: "b", Action: ActionEmpty, Statuses: []StatusRange{{500, 400}}},
		{Name: "c", Action: ActionRetry, MaxWait: -time.Second},
	} {
		if _, err := p.Client(HostConfig{BaseURL: "http://h", Rules: []Rule{r}}); err == nil || !strings.Contains(err.Error(), "rule "+r.Name) {
			t.Errorf("rule %+v: Client error = %v, want it named", r, err)
		}
	}
}

// TestRuleWait: a retry rule reads its wait header as seconds, an epoch,
// an HTTP date or (Jira) an ISO 8601 time, then Retry-After, then
// x-ratelimit-reset (of a 429, or with the budget spent); what it cannot
// read is no hint.
func TestRuleWait(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   time.Duration
		ok     bool
		status int // 0: a 429
	}{
		{"a 200 with the reset and no remaining count (ServiceNow)", map[string]string{"X-RateLimit-Reset": strconv.FormatInt(now.Unix()+3600, 10)}, 0, false, 200},
		{"a 500 with the reset and no remaining count", map[string]string{"X-RateLimit-Reset": strconv.FormatInt(now.Unix()+3600, 10)}, 0, false, 500},
		{"a 200 with the budget spent (GitHub GraphQL)", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Unix()+30, 10)}, 30 * time.Second, true, 200},
		{"a 200 with Retry-After", map[string]string{"Retry-After": "3", "X-RateLimit-Reset": strconv.FormatInt(now.Unix()+3600, 10)}, 3 * time.Second, true, 200},
		{"seconds", map[string]string{"X-Wait": "4"}, 4 * time.Second, true, 0},
		{"epoch", map[string]string{"X-Wait": strconv.FormatInt(now.Unix()+9, 10)}, 9 * time.Second, true, 0},
		{"http date", map[string]string{"X-Wait": now.Add(5 * time.Second).Format(http.TimeFormat)}, 5 * time.Second, true, 0},
		{"ISO 8601", map[string]string{"X-Wait": "2026-03-04T05:07Z"}, 113 * time.Second, true, 0},
		{"unreadable falls to Retry-After", map[string]string{"X-Wait": "later", "Retry-After": "2"}, 2 * time.Second, true, 0},
		{"x-ratelimit-reset ISO 8601", map[string]string{"X-RateLimit-Reset": "2026-03-04T06:07:07+01:00"}, time.Minute, true, 0},
		{"nothing readable", map[string]string{"X-Wait": "later", "X-RateLimit-Reset": "soon"}, 0, false, 0},
		{"x-ratelimit-reset with budget left names the window's end", map[string]string{"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": strconv.FormatInt(now.Unix()+3600, 10)}, 0, false, 0},
		{"x-ratelimit-reset with the budget spent", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Unix()+30, 10)}, 30 * time.Second, true, 0},
		{"Okta's spelling with budget left", map[string]string{"X-Rate-Limit-Remaining": "12", "X-Rate-Limit-Reset": strconv.FormatInt(now.Unix()+60, 10)}, 0, false, 0},
		{"budget left, Retry-After still counts", map[string]string{"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": strconv.FormatInt(now.Unix()+60, 10), "Retry-After": "3"}, 3 * time.Second, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			status := tc.status
			if status == 0 {
				status = http.StatusTooManyRequests
			}
			got, ok := ruleWait(&Rule{WaitHeader: "X-Wait"}, status, h, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ruleWait = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// A retry rule's wait, for a 429 that names none (Snyk refuses every
// request until it has had a quiet minute), holds the whole host: a request
// started after the refusal waits it out, where it used to go at once and
// keep the block alive. The refused request itself waits it too. It holds
// on each of a host's rate paths: the adaptive control, a rate_limit
// ceiling beside it, and RateHeaders' throttle, which reads its own gate
// and not the adaptive one, here from a 429 that reports quota left in its
// window (the throttle then pauses only a second of its own).
func TestRuleWaitHoldsTheHost(t *testing.T) {
	for _, host := range []struct {
		name    string
		cfg     HostConfig
		headers map[string]string // on the 429
	}{
		{name: "adaptive"},
		{name: "rate_limit", cfg: HostConfig{RatePerSecond: 100, Burst: 1}},
		{name: "RateHeaders", cfg: HostConfig{RateHeaders: true}, headers: map[string]string{
			"X-RateLimit-Limit": "100", "X-RateLimit-Period": "60", "X-RateLimit-Remaining": "40", "X-RateLimit-Reset": "30"}},
	} {
		for _, tc := range []struct {
			name string
			wait time.Duration
			want time.Duration // the least the next request waits
		}{{"wait 1m", time.Minute, time.Minute}, {"no wait", 0, 0}} {
			t.Run(host.name+"/"+tc.name, func(t *testing.T) {
				clk := newFakeClock()
				s := startSim(t, apitest.Fixture{Routes: []apitest.Route{
					{Path: "/refused", Status: 429, Headers: host.headers, Body: map[string]any{"message": "Too many requests"}},
					{Path: "/other", Body: map[string]any{"ok": true}},
				}}, clk)
				cfg := host.cfg
				cfg.BaseURL, cfg.Retry = s.URL(), Retry{Attempts: 1}
				cfg.Rules = []Rule{{Name: "r0", Statuses: []StatusRange{{429, 429}}, Action: ActionRetry, Wait: tc.wait}}
				c := mustClient(t, testPool(clk, 0, nil), cfg)
				if _, err := c.Do(t.Context(), &Request{Method: "GET", URL: "/refused"}); err == nil {
					t.Fatal("the refused request succeeded")
				}
				before := clk.Now()
				if _, err := c.Do(t.Context(), &Request{Method: "GET", URL: "/other"}); err != nil {
					t.Fatal(err)
				}
				if waited := clk.Now().Sub(before); waited < tc.want || tc.want == 0 && waited > time.Second {
					t.Errorf("the next request waited %v, want %v", waited, tc.want)
				}
			})
		}
	}
}
