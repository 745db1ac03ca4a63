package eval

import (
	"context"
	"reflect"
	"time"

	"github.com/itchyny/gojq"
)

type clockKey struct{}

// ContextWithClock makes the jq programs run with ctx read now from clock (a
// run's clock, which `ferry test` sets), as expr's now() does; without it
// they read the wall clock.
func ContextWithClock(ctx context.Context, clock func() time.Time) context.Context {
	if clock == nil {
		return ctx
	}
	return context.WithValue(ctx, clockKey{}, clock)
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
