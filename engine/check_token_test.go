package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestCheckReadsLastPageToken: a stream whose only page is its last gives
// its incremental.token there; a run fails the chain when that token is
// unusable (an object here), so the check, which read that very page, must
// fail the stream too rather than call it ok.
func TestCheckReadsLastPageToken(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  changes:
    incremental: {token: .delta}
    request: {path: /changes}
    records: .items[]
tables:
  changes: {from: changes, primary_key: [id]}
`, "")
	fx.json("/changes", map[string]any{"items": []any{map[string]any{"id": "a"}}, "delta": map[string]any{"x": 1}})
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.Check(t.Context(), fx.spec, cfg, engine.CheckOptions{Dest: fx.db})
	if !errors.Is(err, engine.ErrCheckFailed) || res == nil || len(res.Streams) != 1 {
		t.Fatalf("Check = %+v, %v: want ErrCheckFailed", res, err)
	}
	if s := res.Streams[0]; s.Status != engine.CheckFailed || !strings.Contains(s.Detail, "incremental.token") {
		t.Errorf("stream changes: %q (%s), want failed naming incremental.token", s.Status, s.Detail)
	}
	// The run it vouches for fails the same way.
	if _, err := engine.Run(t.Context(), fx.spec, cfg, engine.RunOptions{Dest: fx.db}); err == nil || !strings.Contains(err.Error(), "incremental.token") {
		t.Errorf("run error %v, want the incremental.token failure", err)
	}
}
