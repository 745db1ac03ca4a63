package examples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	"github.com/google/go-cmp/cmp"
)

// vendorRun is a dry run of an example spec, as dryRun, that also returns
// everything the run let out: stdout, every log line (debug included), the
// error and the failures of the summary, so that a test can look for a
// secret in them. now is when the run starts by its clock (zero: the
// real time).
type vendorRun struct {
	rows map[string][]map[string]any
	res  *engine.Result
	err  error
	said string // stdout, logs, error and failures, together
}

func runVendor(t *testing.T, path string, sets map[string]string, now time.Time) vendorRun {
	t.Helper()
	opts := engine.RunOptions{DryRun: true}
	if !now.IsZero() {
		// A pinned clock, as a ferry test case's now: gives (the HTTP
		// pool's waits still pass in real time).
		opts.Now = func() time.Time { return now }
	}
	return runVendorOpts(t, path, sets, opts)
}

// runVendorOpts runs an example spec with opts (a destination, say), as
// runVendor does a dry run.
func runVendorOpts(t *testing.T, path string, sets map[string]string, opts engine.RunOptions) vendorRun {
	t.Helper()
	f, err := engine.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ResolveConfig(f, engine.ConfigSources{Sets: sets, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	opts.Stdout = &out
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res, err := engine.Run(t.Context(), f, cfg, opts)
	r := vendorRun{rows: tableRows(t, out.String()), res: res, err: err}
	var said strings.Builder
	said.WriteString(out.String())
	said.WriteString(logs.String())
	if err != nil {
		said.WriteString(err.Error())
	}
	if res != nil && res.Summary != nil {
		for _, f := range res.Summary.Failures {
			fmt.Fprintf(&said, "\n%s %s %v", f.Stream, f.Parents, f.Err)
		}
	}
	r.said = said.String()
	return r
}

// noSecret fails the test when any of secrets (a key, or the base64 a
// basic auth header carries) appears in what the run said.
func noSecret(t *testing.T, r vendorRun, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(r.said, s) {
			t.Errorf("the secret %q appears in the run's output, logs or error", s)
		}
	}
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ids lists a column of rows, in the order written.
func ids(rows []map[string]any, name string) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, fmt.Sprint(r[name]))
	}
	return out
}

// failedRun checks a run that must fail: it did, with exit code 1, and
// its error, failures or logs say each of want.
func failedRun(t *testing.T, r vendorRun, want []string) {
	t.Helper()
	if r.err == nil {
		counts := map[string]int{}
		for table, rows := range r.rows {
			counts[table] = len(rows)
		}
		t.Fatalf("the run succeeded (rows %v): want it to fail", counts)
	}
	if code := engine.ExitCode(r.err, false); code != engine.ExitFailed {
		t.Errorf("exit code %d, want %d", code, engine.ExitFailed)
	}
	for _, w := range want {
		if !strings.Contains(r.said, w) {
			t.Errorf("the run's error and failures do not say %q:\n%v", w, r.said)
		}
	}
}

// requestsTo are the requests of *all, which mu guards, sent to path.
func requestsTo(mu *sync.Mutex, all *[]*http.Request, path string) []*http.Request {
	mu.Lock()
	defer mu.Unlock()
	var out []*http.Request
	for _, r := range *all {
		if r.URL.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// noDuplicates fails the test when the run wrote two rows of one table
// under one primary key: the later overwrote the earlier, a record lost
// to a key that does not tell them apart (pull request ids count from 1
// in each repository).
func noDuplicates(t *testing.T, r vendorRun) {
	t.Helper()
	if r.res != nil && r.res.Summary != nil && len(r.res.Summary.Duplicates) > 0 {
		t.Errorf("duplicates: %+v", r.res.Summary.Duplicates)
	}
}

// queryInt reads an integer query parameter of a simulated API: def when
// absent; ok false when it is no integer or below least (the API's 400).
func queryInt(q url.Values, name string, def, least int) (n int, ok bool) {
	v := q.Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		return 0, false
	}
	return n, true
}

// sameIDs fails t unless got holds exactly want's ids, each as often (in
// any order): every record written once.
func sameIDs(t *testing.T, what string, want, got []string) {
	t.Helper()
	want, got = slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

// spendBearer tells whether r carries a bearer token of tokens (each the
// requests it has left) with a request left, and spends one: a
// simulator's sessions that expire after so many requests.
func spendBearer(mu *sync.Mutex, tokens map[string]int, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	mu.Lock()
	defer mu.Unlock()
	if !ok || tokens[tok] <= 0 {
		return false
	}
	tokens[tok]--
	return true
}
