package eval

import (
	"context"
	"encoding/json"
	"fmt"
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

// TestExprNowReadsTheEnvClock: expr's now() reads the clock a run puts in
// its env (ClockVar), in templates and conditions, one program serving
// runs with different clocks; without one it reads WithClock's.
func TestExprNowReadsTheEnvClock(t *testing.T) {
	day := func(d int) func() time.Time {
		return func() time.Time { return time.Date(2026, 3, d, 15, 6, 7, 0, time.FixedZone("east", 9*3600)) }
	}
	tpl, err := CompileTemplate(`/since/${ (now() - duration("24h")).Format("2006-01-02") }/${ config.x }`, Scope{"config": nil})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []int{4, 10} {
		got, err := tpl.RenderString(map[string]any{"config": map[string]any{"x": 1}, ClockVar: day(d)})
		if want := fmt.Sprintf("/since/2026-03-%02d/1", d-1); err != nil || got != want {
			t.Errorf("day %d: RenderString = %q, %v; want %q", d, got, err, want)
		}
	}
	cond, err := CompileExpr(`now().Hour() == 6 && now(timezone("UTC")).Day() == 4 && config.x == 1`, Scope{"config": nil}, BoolKind)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := cond.EvalBool(map[string]any{"config": map[string]any{"x": 1}, ClockVar: day(4)}); err != nil || !ok {
		t.Errorf("EvalBool = %v, %v; want true (15:06 at UTC+9 is 06:06 UTC, now() is UTC)", ok, err)
	}
	// A program reading a typed member is compiled again for the run
	// (compileRun): now() still reads the env's clock there.
	typed, err := CompileExpr(`now().Day() + config.n`, Scope{"config": &Scope{"n": nil}}, IntKind, WithTypes(map[string]any{"config.n": 0}))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := typed.EvalInt(map[string]any{"config": map[string]any{"n": 1}, ClockVar: day(10)}); err != nil || n != 11 {
		t.Errorf("typed: EvalInt = %d, %v; want 11", n, err)
	}
	// No clock in the env: WithClock's.
	e, err := CompileExpr(`now().Year()`, nil, IntKind, WithClock(day(4)))
	if err != nil {
		t.Fatal(err)
	}
	if y, err := e.EvalInt(nil); err != nil || y != 2026 {
		t.Errorf("WithClock: EvalInt = %d, %v; want 2026", y, err)
	}
	if y, err := e.EvalInt(map[string]any{ClockVar: func() time.Time { return time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }}); err != nil || y != 1999 {
		t.Errorf("env clock over WithClock: EvalInt = %d, %v; want 1999", y, err)
	}
}

// TestEnvHidesTheClock: the clock a run puts in its env (ClockVar) is not
// part of $env as a program sees it: toJSON($env) failed on it (a func is
// no JSON) and keys($env) listed it; now() still reads it. A declared
// type is still checked through $env.
func TestEnvHidesTheClock(t *testing.T) {
	typed := WithTypes(map[string]any{"config.n": 0})
	if _, err := CompileExpr(`$env.config.n + "x"`, Scope{"config": &Scope{"n": nil}}, AnyKind, typed); err == nil {
		t.Errorf(`$env.config.n + "x" compiled with config.n an int`)
	}
	if x, err := CompileExpr(`$env.config.n + 1`, Scope{"config": &Scope{"n": nil}}, IntKind, typed); err != nil {
		t.Error(err)
	} else if n, err := x.EvalInt(map[string]any{"config": map[string]any{"n": 2}, ClockVar: time.Now}); err != nil || n != 3 {
		t.Errorf("$env.config.n + 1 = %d, %v; want 3", n, err)
	}
	clock := func() time.Time { return time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) }
	for src, want := range map[string]string{
		`${ toJSON($env) == toJSON({"config": {"x": 1}}) }`: `true`,
		`${ join(keys($env), ",") }`:                        `config`,
		`${ len($env) }/${ now().Year() }`:                  `1/2001`,
		`${ $env.config.x }`:                                `1`,
		`${ map([1], len($env))[0] }`:                       `1`,
		`${ "config" in $env && !("now" in $env) }`:         `true`,
	} {
		tpl, err := CompileTemplate(src, Scope{"config": nil})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, err := tpl.RenderString(map[string]any{"config": map[string]any{"x": 1}, ClockVar: clock})
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", src, got, err, want)
		}
	}
}
