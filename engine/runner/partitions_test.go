package runner_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPartitionAddedBeforeResumeIsWritten: a sync resumed after its
// partition values changed (config edited, or a template reading the
// date) replays the committed partitions, but a value the first run never
// had has no row yet: it is written, and the committed ones are not again
// (an append table would get them twice).
func TestPartitionAddedBeforeResumeIsWritten(t *testing.T) {
	var failB atomic.Bool
	failB.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acc, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/accounts/"), "/invoices")
		switch {
		case !ok:
			http.NotFound(w, r)
		case acc == "b" && failB.Load():
			http.Error(w, "busy", http.StatusInternalServerError)
		default:
			w.Write([]byte(`[{"id": "` + acc + `1"}]`))
		}
	}))
	t.Cleanup(srv.Close)
	f := mustSpec(t, `
version: 1
name: t
config:
  accounts: {required: true}
http: {base_url: `+srv.URL+`, retry: {attempts: 1}}
streams:
  accounts:
    partitions:
      values: ${ map(split(config.accounts, ","), trim(#)) }
  invoices:
    for_each: accounts
    request:
      path: /accounts/${ parent.value }/invoices
tables:
  accounts: {from: accounts, mode: append}
  invoices: {from: invoices, row: '{id, account: $parent.value}'}
`)
	first := newStateful()
	if _, err := runWith(t, f, runOpts{cfg: map[string]any{"accounts": "a,b"}}, first); err == nil {
		t.Fatal("first run: no error, want b's invoices to fail")
	}
	failB.Store(false)
	again := newStateful()
	sum, err := runWith(t, f, runOpts{cfg: map[string]any{"accounts": "a,b,c"}, state: first.state}, again)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if got := first.field("accounts", "value"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("first run's accounts = %v, want [a b]", got)
	}
	if got := again.field("accounts", "value"); !slices.Equal(got, []string{"c"}) {
		t.Errorf("resumed run's accounts = %v, want [c] (the new value, once; a and b were committed)", got)
	}
	if got := again.field("invoices", "id"); !slices.Equal(got, []string{"b1", "c1"}) {
		t.Errorf("resumed run's invoices = %v, want [b1 c1]", got)
	}
	if !sum.Tables["accounts"] {
		t.Errorf("accounts not complete: %v", sum.Tables)
	}
}

// TestPartitionsEmptyValuesWarn: a values template that gives an empty list
// (a config left empty) reads nothing; the run says so, since a replace
// table it feeds then marks every row deleted. A list with values does not.
func TestPartitionsEmptyValuesWarn(t *testing.T) {
	f := mustSpec(t, `
version: 1
name: t
config:
  accounts: {type: list}
http: {base_url: http://127.0.0.1:9}
streams:
  accounts:
    partitions:
      values: ${ config.accounts ?? [] }
tables:
  accounts: {from: accounts, mode: replace}
`)
	for _, tc := range []struct {
		accounts []any
		warned   bool
	}{{[]any{}, true}, {[]any{"a"}, false}} {
		var logged strings.Builder
		log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
		out := newStateful()
		if _, err := runWith(t, f, runOpts{cfg: map[string]any{"accounts": tc.accounts}, log: log}, out); err != nil {
			t.Fatal(err)
		}
		if warned := strings.Contains(logged.String(), "the values are an empty list"); warned != tc.warned {
			t.Errorf("accounts %v: warned %v, want %v; log:\n%s", tc.accounts, warned, tc.warned, logged.String())
		}
	}
}
