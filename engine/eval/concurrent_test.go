package eval

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentReuse runs one compiled program of each kind from many
// goroutines on shared inputs; run with -race.
func TestConcurrentReuse(t *testing.T) {
	q, err := CompileJQ(`{id: ($parent.id + "/" + .id), title: (.name | clean_title), n: (.n + 1)}`, []string{"parent"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := CompileExpr("parent.n > 1 && clean_title(parent.name) == \"K8S X\"", Scope{"parent": nil}, BoolKind)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := CompileTemplate("/apps/${ parent.id }/n/${ parent.n }", Scope{"parent": nil})
	if err != nil {
		t.Fatal(err)
	}
	// Shared, with json.Number inside: Normalize must copy, not write.
	parent := decode(t, `{"id": "app", "n": 2, "name": "k8s-x"}`)
	env := map[string]any{"parent": parent}

	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				rec := map[string]any{"id": fmt.Sprint(w, "-", i), "name": "k8s-x", "n": i}
				out, err := q.Run(t.Context(), rec, parent)
				if err != nil {
					errs <- err
					return
				}
				m := out[0].(map[string]any)
				if m["id"] != fmt.Sprint("app/", w, "-", i) || m["title"] != "K8S X" || m["n"] != i+1 {
					errs <- fmt.Errorf("jq output %v", m)
					return
				}
				if ok, err := e.EvalBool(env); err != nil || !ok {
					errs <- fmt.Errorf("EvalBool = %v, %v", ok, err)
					return
				}
				if s, err := tm.RenderString(env); err != nil || s != "/apps/app/n/2" {
					errs <- fmt.Errorf("RenderString = %q, %v", s, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
