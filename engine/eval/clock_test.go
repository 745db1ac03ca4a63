package eval

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestJQNowReadsTheClock: jq's now reads the clock the context carries (a
// run's, which ferry test pins), wherever it is called; a program's own
// now, an object key or a field named now are left alone.
func TestJQNowReadsTheClock(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC)
	ctx := ContextWithClock(context.Background(), func() time.Time { return at })
	for src, want := range map[string]string{
		`now`:                          `1767225600.5`,
		`{now: (now | floor), x: $a}`:  `{"now":1767225600,"x":1}`,
		`[.[] | now - 1] | length`:     `3`,
		`.now`:                         `"field"`,
		`def now: 5; now`:              `5`,
		`"at \(now | floor)"`:          `"at 1767225600"`,
		`reduce (1, 2) as $i (0; now)`: `1767225600.5`,
	} {
		q, err := CompileJQ(src, []string{"a"})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		v, _, err := q.First(ctx, map[string]any{"now": "field", "b": 1, "c": 2}, 1)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := toJSONText(t, v); got != want {
			t.Errorf("%s = %s, want %s", src, got, want)
		}
	}
	q, _ := CompileJQ(`now`, nil)
	v, _, _ := q.First(context.Background(), nil)
	if f, _ := v.(float64); time.Since(time.Unix(int64(f), 0)) > time.Hour {
		t.Errorf("now without a clock = %v, want the wall clock", v)
	}
}

func toJSONText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
