package humanitec

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestSparse: with Options.Sparse the answers are as sparse as the
// vendor's examples, and without it every required field is there.
func TestSparse(t *testing.T) {
	org := Generate(1, Small())
	app := org.Apps[0]
	var env *Env
	for i := range app.Envs {
		if len(app.Envs[i].Graphs) > 0 {
			env = app.Envs[i]
		}
	}
	if env == nil {
		t.Fatal("no environment with a graph")
	}
	base := "/orgs/" + org.ID + "/apps/" + app.ID
	get := func(sparse bool, path string) any {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		rec := httptest.NewRecorder()
		NewServer(org, Options{Sparse: sparse}).ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: status %d %s", path, rec.Code, rec.Body)
		}
		var v any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	item := func(v any, i int) map[string]any {
		l := v.([]any)
		if i < 0 {
			i += len(l)
		}
		return l[i].(map[string]any)
	}
	has := func(m map[string]any, k string) bool { _, ok := m[k]; return ok }
	for _, sparse := range []bool{false, true} {
		envs := get(sparse, base+"/envs")
		if got := len(item(envs, -1)); (got == 0) != sparse {
			t.Errorf("sparse %v: last environment has %d fields", sparse, got)
		}
		res := item(get(sparse, base+"/envs/"+env.ID+"/resources"), 0)
		if has(res, "status") == sparse || has(res, "driver_type") == sparse || has(res, "scheduled_deletion") == sparse {
			t.Errorf("sparse %v: resource %v", sparse, res)
		}
		val := item(get(sparse, base+"/values"), 0)
		if has(val, "source") == sparse || has(val, "created_at") == sparse || has(val, "secret_store_id") == sparse {
			t.Errorf("sparse %v: value %v", sparse, val)
		}
		if set := item(get(sparse, base+"/sets"), 0); has(set, "id") == sparse {
			t.Errorf("sparse %v: set %v", sparse, set)
		}
		if d := item(get(sparse, base+"/deltas"), 0); (len(d["metadata"].(map[string]any)) == 0) != sparse {
			t.Errorf("sparse %v: delta metadata %v", sparse, d["metadata"])
		}
		g := get(sparse, base+"/envs/"+env.ID+"/resources/graphs/"+env.Graphs[0].ID).(map[string]any)
		if node := item(g["nodes"], 0); (node["resource"] == nil) != sparse {
			t.Errorf("sparse %v: graph node resource %v", sparse, node["resource"])
		}
		// Only the first item of a list is thinned, the others keep their fields.
		if v := get(sparse, base+"/values").([]any); len(v) < 2 || !has(v[1].(map[string]any), "source") {
			t.Errorf("sparse %v: second value lost its source", sparse)
		}
	}
}
