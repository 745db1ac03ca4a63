package eval

import (
	"context"
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/itchyny/gojq"
)

// TestFastJQAsGojq holds the fast evaluator to gojq on random programs of
// its subset and random inputs: wherever it answers, gojq gives that one
// output and no error; where it does not, First and Run still give what
// gojq gives.
func TestFastJQAsGojq(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(15, 2026))
	vars := []string{"x", "y"}
	var answered, asked int
	// Edge programs first, on every kind of value: numbers are where gojq
	// normalizes what it passes through (null + a json.Number is an int).
	edges := []string{". + null", "null + .", "$x + .", ". + $x", ". // $x", ". == $x", ". != null",
		".a + .b", "if . then . else $x end", ". and $x", ". or $x", ". | ltrimstr(\"a\")", ". | clean_title", "{a, b: .}", `{"a": $x, a: .}`}
	kinds := []any{nil, true, false, "", "a", 7, 1.5, json.Number("4"), json.Number("1e400"), big.NewInt(3),
		[]any{}, []any{"a"}, map[string]any{}, map[string]any{"a": "x", "b": json.Number("2")}}
	for i := range 3000 + len(edges) {
		src := randProgram(rng, 3)
		if i < len(edges) {
			src = edges[i]
		}
		q, slow := fastAndSlow(t, src, vars)
		for j := range max(12, len(kinds)*len(kinds)) {
			in, vs := randValue(rng, 3), []any{randValue(rng, 2), randValue(rng, 2)}
			if i < len(edges) {
				in, vs[0] = kinds[j%len(kinds)], kinds[j/len(kinds)]
			} else if j >= 12 {
				break
			} else if j%4 == 3 {
				vs = vs[:rng.IntN(2)] // a caller passing too few values
			}
			want, wantErr := slow.Run(ctx, in, vs...)
			asked++
			if v, ok := q.tryFast(in, vs); ok {
				answered++
				if wantErr != nil || len(want) != 1 || !reflect.DeepEqual(v, want[0]) {
					t.Fatalf("%s on %#v, vars %#v: fast %#v, gojq %#v (error %v)", src, in, vs, v, want, wantErr)
				}
			}
			got, gotErr := q.Run(ctx, in, vs...)
			if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s on %#v: Run %#v %v, gojq %#v %v", src, in, got, gotErr, want, wantErr)
			}
			first, firstOK, firstErr := q.First(ctx, in, vs...)
			wantFirst, wantFirstOK, wantFirstErr := slow.First(ctx, in, vs...)
			if (firstErr == nil) != (wantFirstErr == nil) || firstOK != wantFirstOK || !reflect.DeepEqual(first, wantFirst) {
				t.Fatalf("%s on %#v: First %#v %v %v, gojq %#v %v %v", src, in, first, firstOK, firstErr, wantFirst, wantFirstOK, wantFirstErr)
			}
		}
	}
	// The inputs are mostly objects of strings, as records are; a test whose
	// programs all fell back to gojq would hold nothing.
	if answered < asked/4 {
		t.Fatalf("the fast evaluator answered %d of %d", answered, asked)
	}
	t.Logf("the fast evaluator answered %d of %d", answered, asked)
}

// fastAndSlow compiles src, which the fast evaluator must take, and
// returns it and a copy that always runs gojq.
func fastAndSlow(t *testing.T, src string, vars []string) (fast, slow *JQ) {
	t.Helper()
	q, err := CompileJQ(src, vars)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if q.fast == nil {
		t.Fatalf("%s: not taken by the fast evaluator", src)
	}
	gojqOnly := *q
	gojqOnly.fast = nil
	return q, &gojqOnly
}

// TestFastJQRefusesOtherPrograms: a program outside the subset goes to
// gojq whole.
func TestFastJQRefusesOtherPrograms(t *testing.T) {
	for _, src := range []string{
		".a[0]", `."a"`, ".a?", "..", ".a,.b", ".[]", "1", ".a + 1", `"\(.a)"`, `@base64 "x"`,
		"def f: .; f", ".a as $v | $v", "$ENV", "ltrimstr(.a)",
		"@base64", "-.a", "try .a", "[.a]", "{(.a): 1}", "{$x}", `{"\(.a)": 1}`, "{a: (.b, .c)}", "{a: 1}", "length", "ascii_downcase", ".a - .b",
		".a < .b", "if .a then .b elif .c then 1 else .d end", "empty", "error",
	} {
		q, err := CompileJQ(src, []string{"x"})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if q.fast != nil {
			t.Errorf("%s: taken by the fast evaluator", src)
		}
	}
}

// randProgram writes a random program of the fast evaluator's subset.
func randProgram(rng *rand.Rand, depth int) string {
	terms := []string{".", ".a", ".b", ".a.b", ".a.a.b", "$x", "$x.a", "$y.b.a", `"s"`, `""`, `"a\"b"`, `"ab"`,
		"null", "true", "false", "[]", "{}", `"Title case-me"`, ".if", ".and.a", "$y", `"\u00e9\t"`, `error("e")`}
	if depth == 0 || rng.IntN(3) == 0 {
		return terms[rng.IntN(len(terms))]
	}
	sub := func() string { return randProgram(rng, depth-1) }
	switch rng.IntN(16) {
	case 14:
		return "{a, b: (" + sub() + "), \"c d\": (" + sub() + ")}"
	case 15:
		return "{if: (" + sub() + "), a: (" + sub() + "), a: " + terms[rng.IntN(len(terms))] + "}" // the later a wins
	case 0:
		return sub() + " + " + sub()
	case 1:
		return sub() + " // " + sub()
	case 2:
		return "(" + sub() + " == " + sub() + ")" // == does not chain
	case 3:
		return "(" + sub() + " != " + sub() + ")"
	case 4:
		return sub() + " and " + sub()
	case 5:
		return sub() + " or " + sub()
	case 6:
		return "(" + sub() + ")" + []string{"", ".a", ".b.a"}[rng.IntN(3)]
	case 7:
		return "if " + sub() + " then " + sub() + " else " + sub() + " end"
	case 8:
		return "if " + sub() + " then " + sub() + " elif " + sub() + " then " + sub() + " end"
	case 9:
		return sub() + " | " + []string{"clean_title", "title_case", "path_escape", "query_escape"}[rng.IntN(4)]
	case 10:
		return sub() + ` | ltrimstr("a")`
	case 11:
		return "if " + sub() + " then " + sub() + " end"
	case 12:
		return "if " + sub() + " then " + sub() + " elif " + sub() + " then " + sub() + " else " + sub() + " end"
	default:
		return sub() + ` | startswith("a")`
	}
}

// randValue makes a random JSON-shaped value, as a decoded record holds.
func randValue(rng *rand.Rand, depth int) any {
	switch n := rng.IntN(14); {
	case n < 4 && depth > 0:
		m := map[string]any{}
		for _, k := range []string{"a", "b", "if", "and"} {
			if rng.IntN(4) > 0 {
				m[k] = randValue(rng, depth-1)
			}
		}
		return m
	case n < 8:
		return []string{"", "a", "ab", "b", "A title", "x/y"}[rng.IntN(6)]
	case n == 8:
		return nil
	case n == 9:
		return rng.IntN(2) == 0
	case n == 10:
		return []any{"a"}
	case n == 11:
		return []any{1.5, 7, json.Number("4"), big.NewInt(3), json.Number("1e400"), json.Number("-0"),
			new(big.Int).Lsh(big.NewInt(1), 80), 0.0}[rng.IntN(8)]
	case n == 12:
		return strings.Repeat("a", rng.IntN(3))
	}
	return map[string]any{}
}

// TestFastJQMissingValue: with fewer values than the variables a program
// uses (when they are the first ones named), gojq fails before running
// ("defined but not bound"); the fast evaluator answered, null for the
// missing value or the input for ". // $x", so such a caller got a value
// or an error depending only on the program's shape.
func TestFastJQMissingValue(t *testing.T) {
	ctx := context.Background()
	for _, src := range []string{"$x", "$x.a", `$x // "d"`, "$y == null", ". or $x", `. // $x`, `if . then "t" else $x end`} {
		q, slow := fastAndSlow(t, src, []string{"x", "y"})
		for _, vs := range [][]any{nil, {"X"}} {
			want, wantErr := slow.Run(ctx, "in", vs...)
			got, gotErr := q.Run(ctx, "in", vs...)
			if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s with %d values: Run %#v %v, gojq %#v %v", src, len(vs), got, gotErr, want, wantErr)
			}
			first, firstOK, firstErr := q.First(ctx, "in", vs...)
			wantFirst, wantOK, wantFirstErr := slow.First(ctx, "in", vs...)
			if (firstErr == nil) != (wantFirstErr == nil) || firstOK != wantOK || !reflect.DeepEqual(first, wantFirst) {
				t.Errorf("%s with %d values: First %#v %v %v, gojq %#v %v %v", src, len(vs), first, firstOK, firstErr, wantFirst, wantOK, wantFirstErr)
			}
		}
	}
}

// TestFastJQExtraFuncsNotBuiltins: gojq calls a function given with
// WithFunction only when it has no builtin of that name and arity; the fast
// evaluator always calls ferry's. A gojq that gains, say, path_escape would
// make the two disagree without this failing first.
func TestFastJQExtraFuncsNotBuiltins(t *testing.T) {
	for _, f := range extraFuncs() {
		q, err := gojq.Parse(f.name)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if _, err := gojq.Compile(q); err == nil || !strings.Contains(err.Error(), "function not defined") {
			t.Errorf("%s is a gojq builtin (compile error %v): the fast evaluator must not call ferry's", f.name, err)
		}
	}
}

// TestFastJQErrorGuard: a guard against a missing field, as the shipped
// Humanitec spec writes its identifiers, stays with the fast evaluator,
// which answers while the field is there and leaves the error to gojq.
func TestFastJQErrorGuard(t *testing.T) {
	q, _ := fastAndSlow(t, `$x.id + "/" + (.id // error("environment without id"))`, []string{"x"})
	parent := map[string]any{"id": "app"}
	if v, ok := q.tryFast(map[string]any{"id": "dev"}, []any{parent}); !ok || v != "app/dev" {
		t.Errorf("with an id: %v, %v; want app/dev from the fast evaluator", v, ok)
	}
	if _, ok := q.tryFast(map[string]any{}, []any{parent}); ok {
		t.Error("without an id: the fast evaluator answered")
	}
	if _, err := q.Run(context.Background(), map[string]any{}, parent); err == nil || !strings.Contains(err.Error(), "environment without id") {
		t.Errorf("without an id: %v, want gojq's error", err)
	}
}
