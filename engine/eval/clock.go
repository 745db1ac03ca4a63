package eval

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/itchyny/gojq"
)

type clockKey struct{}

// ContextWithClock makes the jq programs run with ctx read now from clock (a
// run's clock, which `ferry test` sets), as expr's now() does from the env
// (ClockVar); without it they read the wall clock.
func ContextWithClock(ctx context.Context, clock func() time.Time) context.Context {
	if clock == nil {
		return ctx
	}
	return context.WithValue(ctx, clockKey{}, clock)
}

// ContextWithFrozenClock is ctx with its clock (or the wall clock) read
// once: the programs run with it all read the same now, as two runs of
// one program compared for what else changes them must.
func ContextWithFrozenClock(ctx context.Context) context.Context {
	t := time.Now()
	if clock, ok := ctx.Value(clockKey{}).(func() time.Time); ok {
		t = clock()
	}
	return ContextWithClock(ctx, func() time.Time { return t })
}

// ClockVar is the env entry expr's now() reads a run's clock from (a
// func() time.Time; without it, now() reads [WithClock]'s or the wall
// clock). A program cannot name it (it has a space), so no spec reads or
// shadows it; the runner sets it in every env it builds.
const ClockVar = "ferry clock"

// patchNow gives every call of now() (ferry's Function, which replaces
// expr's builtin: now() or now(location)) the env's ClockVar as its first
// argument, so that the clock a run puts into its env answers it (a
// Function cannot read the env, and programs are compiled once, before
// any run). With env, every $env becomes the env without ClockVar
// (envFunc), so the clock is no value a program sees (toJSON($env) failed
// on it): for the program that runs, not the one type-checked against the
// scope (the call's result has no declared member types).
func patchNow(node *ast.Node, env bool) {
	ast.Walk(node, nowPatcher{env: env})
}

type nowPatcher struct{ env bool }

func (p nowPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "now" {
			n.Arguments = append([]ast.Node{&ast.IdentifierNode{Value: ClockVar}}, n.Arguments...)
		}
	case *ast.IdentifierNode:
		if p.env && n.Value == "$env" {
			call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: envFunc}, Arguments: []ast.Node{&ast.IdentifierNode{Value: "$env"}}}
			call.SetLocation(n.Location())
			*node = call
		}
	}
}

// envFunc is the Function patchNow reads $env through: the env without
// ClockVar. A program cannot call it (its name has a space).
const envFunc = "ferry env"

func envFunction() expr.Option {
	return expr.Function(envFunc, func(params ...any) (any, error) {
		env, ok := params[0].(map[string]any)
		if _, clock := env[ClockVar]; !ok || !clock {
			return params[0], nil
		}
		out := make(map[string]any, len(env)-1)
		for k, v := range env {
			if k != ClockVar {
				out[k] = v
			}
		}
		return out, nil
	})
}

// nowFunction is now(): the env's clock (its first argument, see
// patchNow), else fallback (WithClock's), else the wall clock, in UTC;
// with a location, that time there.
func nowFunction(fallback func() time.Time) expr.Option {
	return expr.Function("now", func(params ...any) (any, error) {
		clock := fallback
		if len(params) > 0 {
			if c, ok := params[0].(func() time.Time); ok {
				clock = c
			}
		}
		if clock == nil {
			clock = time.Now
		}
		if len(params) == 2 {
			loc, ok := params[1].(*time.Location)
			if !ok {
				return nil, fmt.Errorf("now: expected a location, got %s", typeOf(params[1]))
			}
			return clock().In(loc), nil
		}
		// UTC, as date() and window.start are, whatever the machine's
		// zone (expr's builtin is local): an API taking a time without
		// offset as UTC would be asked from hours later than meant east
		// of UTC.
		return clock().UTC(), nil
	}, new(func(any) time.Time), new(func(any, *time.Location) time.Time))
}

// nowVar is the variable jq's now is read from (see rewriteNow).
const nowVar = "$__ferry_now"

// nowValue is jq's now under ctx's clock: seconds since the epoch.
func nowValue(ctx context.Context) float64 {
	t := time.Now()
	if clock, ok := ctx.Value(clockKey{}).(func() time.Time); ok {
		t = clock()
	}
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// rewriteNow turns every call of jq's builtin now into a read of nowVar,
// so the run's clock answers it (gojq's now reads the wall clock, and a
// builtin cannot be replaced); a program that defines its own now is left
// alone. It reports whether it rewrote any.
func rewriteNow(q *gojq.Query) bool {
	var calls []*gojq.Func
	own := false
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if v.IsNil() {
				return
			}
			switch x := v.Interface().(type) {
			case *gojq.Func:
				if x.Name == "now" && len(x.Args) == 0 {
					calls = append(calls, x)
				}
			case *gojq.FuncDef:
				own = own || x.Name == "now" && len(x.Args) == 0
			}
			walk(v.Elem())
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(q))
	if own {
		return false
	}
	for _, f := range calls {
		f.Name = nowVar
	}
	return len(calls) > 0
}
