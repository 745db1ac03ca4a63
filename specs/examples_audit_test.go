package specs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// auditSim serves /accounts/{a}/audit/records like the audit APIs the
// example is written for: since/until at most 24 h apart (else 400), a
// bearer token, cursor paging of at most 3 records, records in the window.
type auditSim struct {
	mu     sync.Mutex
	events map[string][]time.Time // account -> event times
	asked  []string
}

func (s *auditSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer tok3n" {
		http.Error(w, `{"error": "unauthorized"}`, http.StatusUnauthorized)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "accounts" || parts[2] != "audit" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	since, e1 := time.Parse(time.RFC3339, q.Get("since"))
	until, e2 := time.Parse(time.RFC3339, q.Get("until"))
	if e1 != nil || e2 != nil || until.Sub(since) > 24*time.Hour {
		http.Error(w, `{"error": "the range must be at most 24 hours"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.asked = append(s.asked, parts[1]+" "+q.Get("since"))
	in := []map[string]any{}
	for i, at := range s.events[parts[1]] {
		if !at.Before(since) && at.Before(until) {
			in = append(in, map[string]any{"id": fmt.Sprintf("%s-%d", parts[1], i), "execution_time": at.Format(time.RFC3339),
				"action": "update", "actors": []any{map[string]any{"id": "u1"}}, "root_resource": map[string]any{"id": "svc1"}})
		}
	}
	s.mu.Unlock()
	from, _ := strconv.Atoi(q.Get("cursor"))
	end := min(from+3, len(in))
	body := map[string]any{"records": in[min(from, len(in)):end], "next_cursor": nil}
	if end < len(in) {
		body["next_cursor"] = strconv.Itoa(end)
	}
	json.NewEncoder(w).Encode(body)
}

// TestAuditLogExample runs specs/examples/audit-log.yaml against the
// simulator: every event of every account lands once; a second run a day
// later asks only the new windows.
func TestAuditLogExample(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sim := &auditSim{events: map[string][]time.Time{}}
	for _, acct := range []string{"acme", "globex"} {
		for h := 0; h < 72; h += 5 {
			sim.events[acct] = append(sim.events[acct], base.Add(time.Duration(h)*time.Hour))
		}
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sp, err := engine.Load(filepath.Join("examples", "audit-log.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(sp, engine.ConfigSources{
		Sets:   map[string]string{"api_url": srv.URL, "api_token": "tok3n", "accounts": "acme, globex"},
		Getenv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "a.db")
	run := func(now time.Time) {
		t.Helper()
		if _, err := engine.Run(context.Background(), sp, cfg, engine.RunOptions{Dest: "sqlite:" + db, Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	run(base.Add(72 * time.Hour))
	count := func() int {
		conn, err := sql.Open("sqlite", db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var n int
		if err := conn.QueryRow(`SELECT count(*) FROM "audit__audit_events"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n, want := count(), len(sim.events["acme"])+len(sim.events["globex"]); n != want {
		t.Errorf("%d events loaded, want %d", n, want)
	}
	sim.mu.Lock()
	if len(sim.asked) < 2*3 {
		t.Errorf("asked %v: want 3 windows per account at least", sim.asked)
	}
	sim.asked = nil
	sim.events["acme"] = append(sim.events["acme"], base.Add(80*time.Hour))
	sim.mu.Unlock()
	run(base.Add(96 * time.Hour))
	sim.mu.Lock()
	asked := slices.Clone(sim.asked)
	sim.mu.Unlock()
	slices.Sort(asked)
	// From the cursor (Jan 4) less the hour of lookback to now (Jan 5): a
	// full window and the hour left.
	if want := []string{"acme 2026-01-03T23:00:00Z", "acme 2026-01-04T23:00:00Z", "globex 2026-01-03T23:00:00Z", "globex 2026-01-04T23:00:00Z"}; !slices.Equal(asked, want) {
		t.Errorf("second run asked %v, want the windows from the cursor less the lookback", asked)
	}
	if n, want := count(), len(sim.events["acme"])+len(sim.events["globex"]); n != want {
		t.Errorf("%d events after the second run, want %d", n, want)
	}
}
