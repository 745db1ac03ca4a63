package port

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func appEntity(id string, props map[string]any) map[string]any {
	if props == nil {
		props = map[string]any{}
	}
	return map[string]any{"identifier": id, "title": id, "properties": props, "relations": map[string]any{}}
}

func envEntity(id string, rels map[string]any) map[string]any {
	return map[string]any{"identifier": id, "properties": map[string]any{"kind": "dev"}, "relations": rels}
}

func TestEntityValidation(t *testing.T) {
	tests := []struct {
		name  string
		bp    string
		query string
		body  any
		want  int
	}{
		{"minimal", "app", "", appEntity("a1", nil), http.StatusCreated},
		{"unicode and slash identifier", "app", "", appEntity("ümläut/ñ@x_y.z+w:v\\u=t-s", nil), http.StatusCreated},
		{"identifier 1000", "app", "", appEntity(strings.Repeat("é", 1000), nil), http.StatusCreated},
		{"identifier 1001", "app", "", appEntity(strings.Repeat("é", 1001), nil), http.StatusUnprocessableEntity},
		{"identifier dot", "app", "", appEntity(".", nil), http.StatusUnprocessableEntity},
		{"identifier dotdot", "app", "", appEntity("..", nil), http.StatusUnprocessableEntity},
		{"identifier dotted ok", "app", "", appEntity("a..b", nil), http.StatusCreated},
		{"identifier space", "app", "", appEntity("a b", nil), http.StatusUnprocessableEntity},
		{"identifier hash", "app", "", appEntity("a#b", nil), http.StatusUnprocessableEntity},
		{"identifier number", "app", "", map[string]any{"identifier": 7}, http.StatusUnprocessableEntity},
		{"identifier query unsupported", "app", "", map[string]any{"identifier": map[string]any{"combinator": "and", "rules": []any{}}}, http.StatusUnprocessableEntity},
		{"title not string", "app", "", map[string]any{"identifier": "a", "title": 1}, http.StatusUnprocessableEntity},
		{"team list", "app", "", map[string]any{"identifier": "a", "team": []any{"t1", "t2"}}, http.StatusCreated},
		{"team bad", "app", "", map[string]any{"identifier": "a", "team": 3}, http.StatusUnprocessableEntity},
		{"extra keys ignored", "app", "", map[string]any{"identifier": "a", "whatever": 1}, http.StatusCreated},
		{"undeclared property", "app", "", appEntity("a", map[string]any{"nope": "x"}), http.StatusUnprocessableEntity},
		{"string ok", "app", "", appEntity("a", map[string]any{"name": "n"}), http.StatusCreated},
		{"string wrong", "app", "", appEntity("a", map[string]any{"name": 1}), http.StatusUnprocessableEntity},
		{"null clears", "app", "", appEntity("a", map[string]any{"name": nil}), http.StatusCreated},
		{"number ok", "app", "", appEntity("a", map[string]any{"size": 1.5}), http.StatusCreated},
		{"number wrong", "app", "", appEntity("a", map[string]any{"size": "1"}), http.StatusUnprocessableEntity},
		{"boolean ok", "app", "", appEntity("a", map[string]any{"on": true}), http.StatusCreated},
		{"boolean wrong", "app", "", appEntity("a", map[string]any{"on": "true"}), http.StatusUnprocessableEntity},
		{"object ok", "app", "", appEntity("a", map[string]any{"meta": map[string]any{"k": 1}}), http.StatusCreated},
		{"object wrong", "app", "", appEntity("a", map[string]any{"meta": []any{}}), http.StatusUnprocessableEntity},
		{"array ok", "app", "", appEntity("a", map[string]any{"tags": []any{"x"}}), http.StatusCreated},
		{"array wrong", "app", "", appEntity("a", map[string]any{"tags": "x"}), http.StatusUnprocessableEntity},
		{"array item wrong", "app", "", appEntity("a", map[string]any{"tags": []any{1}}), http.StatusUnprocessableEntity},
		{"date-time ok", "app", "", appEntity("a", map[string]any{"created": "2024-05-01T10:00:00.123Z"}), http.StatusCreated},
		{"date-time wrong", "app", "", appEntity("a", map[string]any{"created": "2024-05-01"}), http.StatusUnprocessableEntity},
		{"url ok", "app", "", appEntity("a", map[string]any{"home": "https://x.example/p"}), http.StatusCreated},
		{"url wrong", "app", "", appEntity("a", map[string]any{"home": "not a url"}), http.StatusUnprocessableEntity},
		{"email ok", "app", "", appEntity("a", map[string]any{"mail": "a@b.example"}), http.StatusCreated},
		{"email wrong", "app", "", appEntity("a", map[string]any{"mail": "nope"}), http.StatusUnprocessableEntity},
		{"enum ok", "app", "", appEntity("a", map[string]any{"tier": "gold"}), http.StatusCreated},
		{"enum wrong", "app", "", appEntity("a", map[string]any{"tier": "bronze"}), http.StatusUnprocessableEntity},
		{"relation ok", "env", "", envEntity("e", map[string]any{"app": "app1"}), http.StatusCreated},
		{"relation undeclared", "env", "", envEntity("e", map[string]any{"app": "app1", "svc": "x"}), http.StatusUnprocessableEntity},
		{"relation single given list", "env", "", envEntity("e", map[string]any{"app": []any{"app1"}}), http.StatusUnprocessableEntity},
		{"relation many given string", "env", "", envEntity("e", map[string]any{"app": "app1", "deps": "e0"}), http.StatusUnprocessableEntity},
		{"relation many ok", "env", "", envEntity("e", map[string]any{"app": "app1", "deps": []any{"e0"}}), http.StatusCreated},
		{"relation self reference", "env", "", envEntity("e", map[string]any{"app": "app1", "deps": []any{"e"}}), http.StatusCreated},
		{"relation target missing", "env", "", envEntity("e", map[string]any{"app": "ghost"}), http.StatusNotFound},
		{"relation many target missing", "env", "", envEntity("e", map[string]any{"app": "app1", "deps": []any{"e0", "ghost"}}), http.StatusNotFound},
		{"relation target missing stub", "env", "create_missing_related_entities=true", envEntity("e", map[string]any{"app": "ghost"}), http.StatusCreated},
		{"relation bad id", "env", "", envEntity("e", map[string]any{"app": ".."}), http.StatusUnprocessableEntity},
		{"relation query unsupported", "env", "", envEntity("e", map[string]any{"app": map[string]any{"combinator": "and"}}), http.StatusUnprocessableEntity},
		{"required property missing", "env", "", map[string]any{"identifier": "e", "relations": map[string]any{"app": "app1"}}, http.StatusUnprocessableEntity},
		{"required relation missing", "env", "", envEntity("e", map[string]any{}), http.StatusUnprocessableEntity},
		{"required relation null", "env", "", envEntity("e", map[string]any{"app": nil}), http.StatusUnprocessableEntity},
		{"unknown blueprint", "nope", "", appEntity("a", nil), http.StatusNotFound},
		{"bad boolean flag", "app", "upsert=yes", appEntity("a", nil), http.StatusUnprocessableEntity},
		{"not an object", "app", "", "[]", http.StatusUnprocessableEntity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := New(Options{})
			defer srv.Close()
			c := newClient(t, srv)
			catalogFixture(t, c)
			c.must("POST", "/v1/blueprints/app/entities", appEntity("app1", nil), http.StatusCreated)
			c.must("POST", "/v1/blueprints/env/entities", envEntity("e0", map[string]any{"app": "app1"}), http.StatusCreated)
			path := "/v1/blueprints/" + tc.bp + "/entities"
			if tc.query != "" {
				path += "?" + tc.query
			}
			r := c.do("POST", path, tc.body)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.raw)
			}
			if r.status >= 400 {
				if r.body["ok"] != false || r.body["message"] == "" {
					t.Errorf("error body %s", r.raw)
				}
				return
			}
			e := r.body["entity"].(map[string]any)
			if got := srv.Entity(tc.bp, e["identifier"].(string)); got == nil {
				t.Errorf("entity %v not stored", e["identifier"])
			}
		})
	}
}

func TestMissingRelatedStub(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	c.must("POST", "/v1/blueprints/env/entities?create_missing_related_entities=true", envEntity("e", map[string]any{"app": "ghost"}), http.StatusCreated)
	stub := srv.Entity("app", "ghost")
	if stub == nil {
		t.Fatalf("stub app/ghost not created")
	}
	if p := stub["properties"].(map[string]any); len(p) != 0 {
		t.Errorf("stub properties %v, want none", p)
	}
}

func TestUpsertSemantics(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	const path = "/v1/blueprints/app/entities"

	c.must("POST", path, appEntity("a", map[string]any{"name": "n", "size": 1}), http.StatusCreated)
	c.must("POST", path, appEntity("a", nil), http.StatusConflict)
	c.must("POST", path+"?upsert=false", appEntity("a", nil), http.StatusConflict)

	// merge without upsert is still a create.
	c.must("POST", path+"?merge=true", appEntity("a", nil), http.StatusConflict)

	c.must("POST", path+"?upsert=true&merge=true", map[string]any{"identifier": "a", "properties": map[string]any{"size": 2}}, http.StatusCreated)
	got := srv.Entity("app", "a")
	if p := got["properties"].(map[string]any); p["name"] != "n" || fmt.Sprint(p["size"]) != "2" || got["title"] != "a" {
		t.Fatalf("after merge: %v", got)
	}

	c.must("POST", path+"?upsert=true", map[string]any{"identifier": "a", "properties": map[string]any{"size": 3}}, http.StatusCreated)
	got = srv.Entity("app", "a")
	if p := got["properties"].(map[string]any); p["name"] != nil || fmt.Sprint(p["size"]) != "3" || got["title"] != nil {
		t.Fatalf("after replace: %v", got)
	}

	c.must("POST", path+"?upsert=true&validation_only=true", appEntity("b", nil), http.StatusCreated)
	if srv.Entity("app", "b") != nil {
		t.Fatalf("validation_only stored the entity")
	}
	c.must("POST", path+"?upsert=true&validation_only=true", appEntity("b", map[string]any{"size": "x"}), http.StatusUnprocessableEntity)

	// Entities without an identifier get one.
	r := c.must("POST", path, map[string]any{"title": "anon"}, http.StatusCreated)
	if id, _ := r.body["entity"].(map[string]any)["identifier"].(string); id == "" || srv.Entity("app", id) == nil {
		t.Errorf("generated identifier: %s", r.raw)
	}

	// PUT replaces, PATCH merges; both need the entity to exist.
	c.must("PUT", path+"/a", map[string]any{"properties": map[string]any{"name": "put"}}, http.StatusOK)
	c.must("PATCH", path+"/a", map[string]any{"properties": map[string]any{"size": 9}}, http.StatusOK)
	got = srv.Entity("app", "a")
	if p := got["properties"].(map[string]any); p["name"] != "put" || fmt.Sprint(p["size"]) != "9" {
		t.Fatalf("after PUT+PATCH: %v", got)
	}
	c.must("PATCH", path+"/a", map[string]any{"properties": map[string]any{"size": "x"}}, http.StatusUnprocessableEntity)
	c.must("PUT", path+"/a", map[string]any{"identifier": "b"}, http.StatusUnprocessableEntity)
	c.must("PUT", path+"/zz", map[string]any{}, http.StatusNotFound)
	c.must("PATCH", path+"/zz", map[string]any{}, http.StatusNotFound)
	c.must("GET", path+"/zz", nil, http.StatusNotFound)
	one := c.must("GET", path+"/a", nil, http.StatusOK).body["entity"].(map[string]any)
	if one["identifier"] != "a" || one["blueprint"] != "app" {
		t.Errorf("GET entity: %v", one)
	}
	list := c.must("GET", path, nil, http.StatusOK).body["entities"].([]any)
	if len(list) != 2 {
		t.Errorf("GET entities: %d, want 2", len(list))
	}
}

func TestEntityIdentifierInPath(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	id := "app-1/prod env"
	id = strings.ReplaceAll(id, " ", "_")
	c.must("POST", "/v1/blueprints/app/entities", appEntity(id, nil), http.StatusCreated)
	c.must("GET", "/v1/blueprints/app/entities/"+url.PathEscape(id), nil, http.StatusOK)
	// Unescaped, the '/' splits the path: no such route.
	c.must("GET", "/v1/blueprints/app/entities/"+id, nil, http.StatusNotFound)
	c.must("DELETE", "/v1/blueprints/app/entities/"+url.PathEscape(id), nil, http.StatusOK)
	c.must("DELETE", "/v1/blueprints/app/entities/"+url.PathEscape(id), nil, http.StatusNotFound)
}

func bulkBody(n int, mk func(i int) map[string]any) map[string]any {
	list := make([]any, n)
	for i := range list {
		list[i] = mk(i)
	}
	return map[string]any{"entities": list}
}

func TestBulkUpsert(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	const path = "/v1/blueprints/app/entities/bulk?upsert=true"
	ok := func(i int) map[string]any { return appEntity(fmt.Sprintf("a%02d", i), nil) }

	t.Run("all succeed", func(t *testing.T) {
		c := c.with(t)
		r := c.must("POST", path, bulkBody(20, ok), http.StatusOK)
		if r.body["ok"] != true || len(r.body["entities"].([]any)) != 20 || len(r.body["errors"].([]any)) != 0 {
			t.Fatalf("body %s", r.raw)
		}
		first := r.body["entities"].([]any)[0].(map[string]any)
		if first["identifier"] != "a00" || first["index"] != json.Number("0") || first["created"] != true {
			t.Errorf("entities[0] = %v", first)
		}
		r = c.must("POST", path, bulkBody(1, ok), http.StatusOK)
		if r.body["entities"].([]any)[0].(map[string]any)["created"] != false {
			t.Errorf("second write: created should be false: %s", r.raw)
		}
	})
	t.Run("too many", func(t *testing.T) {
		c := c.with(t)
		c.must("POST", path, bulkBody(21, ok), http.StatusUnprocessableEntity)
		if srv.Entity("app", "a20") != nil {
			t.Errorf("rejected bulk stored entities")
		}
	})
	t.Run("empty", func(t *testing.T) {
		c.with(t).must("POST", path, bulkBody(0, ok), http.StatusUnprocessableEntity)
	})
	t.Run("extra key", func(t *testing.T) {
		c.with(t).must("POST", path, map[string]any{"entities": []any{ok(0)}, "x": 1}, http.StatusUnprocessableEntity)
	})
	t.Run("too large", func(t *testing.T) {
		big := strings.Repeat("x", 60<<10)
		body := bulkBody(18, func(i int) map[string]any { return appEntity(fmt.Sprintf("big%d", i), map[string]any{"name": big}) })
		c.with(t).must("POST", path, body, http.StatusRequestEntityTooLarge)
		if srv.Entity("app", "big0") != nil {
			t.Errorf("413 bulk stored entities")
		}
	})
	t.Run("partial", func(t *testing.T) {
		c := c.with(t)
		body := map[string]any{"entities": []any{
			appEntity("p0", nil),
			appEntity("p1", map[string]any{"size": "not a number"}),
			appEntity("p2", map[string]any{"undeclared": "x"}),
			map[string]any{"identifier": "p3", "properties": map[string]any{"kind": "x"}, "relations": map[string]any{}},
			appEntity("p4", nil),
		}}
		r := c.must("POST", path, body, http.StatusMultiStatus)
		if r.body["ok"] != false {
			t.Errorf("ok = %v, want false", r.body["ok"])
		}
		var idx []string
		for _, e := range r.body["errors"].([]any) {
			m := e.(map[string]any)
			idx = append(idx, fmt.Sprintf("%v:%v:%v", m["index"], m["identifier"], m["statusCode"]))
			if m["error"] == "" || m["message"] == "" {
				t.Errorf("error item without code/message: %v", m)
			}
		}
		if got, want := strings.Join(idx, ","), "1:p1:422,2:p2:422,3:p3:422"; got != want {
			t.Errorf("errors %s, want %s", got, want)
		}
		if len(r.body["entities"].([]any)) != 2 || srv.Entity("app", "p0") == nil || srv.Entity("app", "p4") == nil {
			t.Errorf("successes not stored: %s", r.raw)
		}
	})
	// The route's schema is checked on the whole body first: one entity
	// outside it fails the request, and nothing of it is written.
	t.Run("schema", func(t *testing.T) {
		for name, bad := range map[string]map[string]any{
			"identifier pattern":  appEntity("has space", nil),
			"identifier dots":     appEntity("..", nil),
			"title null":          {"identifier": "s1", "title": nil},
			"properties array":    {"identifier": "s1", "properties": []any{}},
			"relation target":     {"identifier": "s1", "relations": map[string]any{"x": "a b"}},
			"relation list items": {"identifier": "s1", "relations": map[string]any{"x": []any{"ok", 3}}},
		} {
			t.Run(name, func(t *testing.T) {
				body := map[string]any{"entities": []any{appEntity("s0", nil), bad}}
				r := c.with(t).must("POST", path, body, http.StatusUnprocessableEntity)
				if r.body["ok"] != false || r.body["message"] == "" {
					t.Errorf("answer %s", r.raw)
				}
				if srv.Entity("app", "s0") != nil {
					t.Errorf("a request refused by the schema stored its valid entity")
				}
			})
		}
	})
	t.Run("missing relation target", func(t *testing.T) {
		c := c.with(t)
		body := map[string]any{"entities": []any{envEntity("e1", map[string]any{"app": "ghost"})}}
		r := c.must("POST", "/v1/blueprints/env/entities/bulk?upsert=true", body, http.StatusMultiStatus)
		e := r.body["errors"].([]any)[0].(map[string]any)
		if e["statusCode"] != json.Number("404") || e["error"] != "not_found" {
			t.Errorf("error %v, want 404 not_found", e)
		}
	})
	t.Run("injected rejection", func(t *testing.T) {
		c := c.with(t)
		srv.RejectEntity("app", "r1", http.StatusUnprocessableEntity, "custom", "rejected by test")
		r := c.must("POST", path, map[string]any{"entities": []any{appEntity("r0", nil), appEntity("r1", nil)}}, http.StatusMultiStatus)
		e := r.body["errors"].([]any)[0].(map[string]any)
		if e["identifier"] != "r1" || e["message"] != "rejected by test" {
			t.Errorf("error %v", e)
		}
	})
}

func TestDeleteDependents(t *testing.T) {
	setup := func(t *testing.T) (*Server, *client) {
		srv := New(Options{})
		c := newClient(t, srv)
		catalogFixture(t, c)
		c.must("POST", "/v1/blueprints/app/entities", appEntity("app1", nil), http.StatusCreated)
		c.must("POST", "/v1/blueprints/app/entities", appEntity("app2", nil), http.StatusCreated)
		c.must("POST", "/v1/blueprints/env/entities", envEntity("e1", map[string]any{"app": "app1"}), http.StatusCreated)
		c.must("POST", "/v1/blueprints/env/entities", envEntity("e2", map[string]any{"app": "app1", "deps": []any{"e1"}}), http.StatusCreated)
		return srv, c
	}
	// Port's bulk delete may succeed in part: what it kept is only missing
	// from deletedEntities.
	t.Run("refused", func(t *testing.T) {
		srv, c := setup(t)
		defer srv.Close()
		srv.RefuseDelete("app", "app2")
		r := c.must("POST", "/v1/blueprints/env/bulk/entities/delete", map[string]any{"entities": []any{"e2"}}, http.StatusOK)
		if fmt.Sprint(r.body["deletedEntities"]) != "[e2]" {
			t.Errorf("deleted %v", r.body["deletedEntities"])
		}
		r = c.must("POST", "/v1/blueprints/app/bulk/entities/delete?delete_dependents=true", map[string]any{"entities": []any{"app2"}}, http.StatusOK)
		if fmt.Sprint(r.body["deletedEntities"]) != "[]" || srv.Entity("app", "app2") == nil {
			t.Errorf("deleted %v, app2 %v", r.body["deletedEntities"], srv.Entity("app", "app2"))
		}
		c.must("DELETE", "/v1/blueprints/app/entities/app2", nil, http.StatusUnprocessableEntity)
	})
	t.Run("single fails with dependents", func(t *testing.T) {
		srv, c := setup(t)
		defer srv.Close()
		r := c.must("DELETE", "/v1/blueprints/app/entities/app1", nil, http.StatusUnprocessableEntity)
		if r.body["error"] != "has_dependents" {
			t.Errorf("error %s", r.raw)
		}
		c.must("DELETE", "/v1/blueprints/app/entities/app1?delete_dependents=false", nil, http.StatusUnprocessableEntity)
		c.must("DELETE", "/v1/blueprints/app/entities/app2", nil, http.StatusOK)
		c.must("DELETE", "/v1/blueprints/app/entities/app2", nil, http.StatusNotFound)
	})
	t.Run("single cascades", func(t *testing.T) {
		srv, c := setup(t)
		defer srv.Close()
		c.must("DELETE", "/v1/blueprints/app/entities/app1?delete_dependents=true", nil, http.StatusOK)
		for _, k := range []entityKey{{"app", "app1"}, {"env", "e1"}, {"env", "e2"}} {
			if srv.Entity(k.blueprint, k.identifier) != nil {
				t.Errorf("%v not deleted", k)
			}
		}
		if srv.Entity("app", "app2") == nil {
			t.Errorf("unrelated app2 deleted")
		}
	})
	t.Run("bulk fails as a whole", func(t *testing.T) {
		srv, c := setup(t)
		defer srv.Close()
		c.must("POST", "/v1/blueprints/env/bulk/entities/delete", map[string]any{"entities": []any{"e1"}}, http.StatusUnprocessableEntity)
		c.must("POST", "/v1/blueprints/app/bulk/entities/delete?delete_dependents=false", map[string]any{"entities": []any{"app2", "app1"}}, http.StatusUnprocessableEntity)
		if srv.Entity("app", "app2") == nil {
			t.Errorf("failed bulk delete removed app2")
		}
	})
	t.Run("bulk with dependents inside the set", func(t *testing.T) {
		srv, c := setup(t)
		defer srv.Close()
		r := c.must("POST", "/v1/blueprints/env/bulk/entities/delete", map[string]any{"entities": []any{"e1", "e2", "ghost"}}, http.StatusOK)
		if got := fmt.Sprint(r.body["deletedEntities"]); got != "[e1 e2]" {
			t.Errorf("deletedEntities %s, want [e1 e2]", got)
		}
	})
	t.Run("bulk cascades", func(t *testing.T) {
		srv, c := setup(t)
		defer srv.Close()
		c.must("POST", "/v1/blueprints/app/bulk/entities/delete?delete_dependents=true", map[string]any{"entities": []any{"app1"}}, http.StatusOK)
		if srv.Entity("env", "e2") != nil {
			t.Errorf("dependent e2 not deleted")
		}
	})
	t.Run("bulk limits", func(t *testing.T) {
		srv, c := setup(t)
		defer srv.Close()
		ids := make([]any, 101)
		for i := range ids {
			ids[i] = fmt.Sprint("x", i)
		}
		c.must("POST", "/v1/blueprints/app/bulk/entities/delete", map[string]any{"entities": ids}, http.StatusUnprocessableEntity)
		c.must("POST", "/v1/blueprints/app/bulk/entities/delete", map[string]any{"entities": ids[:100]}, http.StatusOK)
		c.must("POST", "/v1/blueprints/app/bulk/entities/delete", map[string]any{"entities": []any{}}, http.StatusUnprocessableEntity)
	})
}

func TestSearch(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	for i := range 25 {
		tier := "gold"
		if i%2 == 1 {
			tier = "silver"
		}
		c.must("POST", "/v1/blueprints/app/entities", appEntity(fmt.Sprintf("a%02d", i), map[string]any{"tier": tier}), http.StatusCreated)
	}
	const path = "/v1/blueprints/app/entities/search"

	t.Run("paging", func(t *testing.T) {
		c := c.with(t)
		var ids []string
		body := map[string]any{"limit": 10}
		pages := 0
		for {
			r := c.must("POST", path, body, http.StatusOK)
			pages++
			for _, e := range r.body["entities"].([]any) {
				ids = append(ids, e.(map[string]any)["identifier"].(string))
			}
			next, ok := r.body["next"].(string)
			if !ok {
				// A later page ends with next: null, as Port's may.
				if v, has := r.body["next"]; !has || v != nil {
					t.Errorf("last page: next %v (present %v), want null", v, has)
				}
				break
			}
			body["from"] = next
		}
		// Port does not sort results: compare the set, and that the order
		// is not the identifiers' (which a client might wrongly rely on).
		sorted := slices.Sorted(slices.Values(ids))
		if pages != 3 || len(slices.Compact(sorted)) != 25 || sorted[0] != "a00" || sorted[24] != "a24" {
			t.Errorf("pages %d ids %v", pages, ids)
		}
		if slices.IsSorted(ids) {
			t.Errorf("search results came sorted by identifier: %v", ids)
		}
	})
	t.Run("rules and include", func(t *testing.T) {
		c := c.with(t)
		body := map[string]any{
			"query": map[string]any{"combinator": "and", "rules": []any{
				map[string]any{"property": "tier", "operator": "=", "value": "silver"},
				map[string]any{"combinator": "or", "rules": []any{
					map[string]any{"property": "$identifier", "operator": "in", "value": []any{"a01", "a02", "a03"}},
					map[string]any{"property": "$identifier", "operator": "beginsWith", "value": "a2"},
				}},
			}},
			"include": []any{"$identifier"},
		}
		r := c.must("POST", path, body, http.StatusOK)
		var ids []string
		for _, e := range r.body["entities"].([]any) {
			m := e.(map[string]any)
			if len(m) != 1 {
				t.Errorf("include $identifier returned %v", m)
			}
			ids = append(ids, m["identifier"].(string))
		}
		if got := strings.Join(slices.Sorted(slices.Values(ids)), ","); got != "a01,a03,a21,a23" {
			t.Errorf("ids %s", got)
		}
	})
	// An identifier list read without scanning still pages, applies the
	// other rules, and sees entities added since the last search.
	t.Run("identifier list", func(t *testing.T) {
		c := c.with(t)
		search := func(from string) ([]string, string) {
			body := map[string]any{"limit": 2, "query": map[string]any{"combinator": "and", "rules": []any{
				map[string]any{"property": "$identifier", "operator": "in", "value": []any{"a07", "a03", "a04", "zz", "a03", "new"}},
				map[string]any{"property": "tier", "operator": "!=", "value": "gold"},
			}}}
			if from != "" {
				body["from"] = from
			}
			r := c.must("POST", path, body, http.StatusOK)
			var ids []string
			for _, e := range r.body["entities"].([]any) {
				ids = append(ids, e.(map[string]any)["identifier"].(string))
			}
			next, _ := r.body["next"].(string)
			return ids, next
		}
		// A full page carries a cursor even when nothing follows; the
		// page after it is empty and has none.
		ids, next := search("")
		rest, last := search(next)
		if got := strings.Join(slices.Sorted(slices.Values(ids)), ","); got != "a03,a07" || next == "" || len(rest) != 0 || last != "" {
			t.Errorf("ids %v next %q then %v next %q, want a03,a07, a cursor, then nothing", ids, next, rest, last)
		}
		if r := c.must("POST", path, map[string]any{"limit": 100}, http.StatusOK); r.body["next"] != nil || strings.Contains(string(r.raw), `"next"`) {
			t.Errorf("a first page that ends the results has next: %s", r.raw)
		}
		c.must("POST", "/v1/blueprints/app/entities", appEntity("new", map[string]any{"tier": "silver"}), http.StatusCreated)
		ids, next = search("")
		more, last := search(next)
		if got := strings.Join(slices.Sorted(slices.Values(append(ids, more...))), ","); got != "a03,a07,new" || len(ids) != 2 || last != "" {
			t.Errorf("pages %v then %v (next %q)", ids, more, last)
		}
		all := func() string {
			r := c.must("POST", path, map[string]any{"limit": 100, "include": []any{"$identifier"}}, http.StatusOK)
			var ids []string
			for _, e := range r.body["entities"].([]any) {
				ids = append(ids, e.(map[string]any)["identifier"].(string))
			}
			return strings.Join(ids, ",")
		}
		if got := all(); !strings.Contains(","+got+",", ",new,") || strings.Count(got, ",") != 25 {
			t.Errorf("all entities %s, want the new one among 26", got)
		}
		c.must("DELETE", "/v1/blueprints/app/entities/new", nil, http.StatusOK)
		if got := all(); strings.Contains(","+got+",", ",new,") || strings.Count(got, ",") != 24 {
			t.Errorf("all entities after the delete %s", got)
		}
	})
	bad := []struct {
		name string
		body map[string]any
	}{
		{"limit too big", map[string]any{"limit": 1001}},
		{"limit zero", map[string]any{"limit": 0}},
		{"unknown key", map[string]any{"sort": "x"}},
		{"bad cursor", map[string]any{"from": "???"}},
		{"unsupported operator", map[string]any{"query": map[string]any{"combinator": "and", "rules": []any{map[string]any{"property": "x", "operator": "relatedTo", "value": "y"}}}}},
		{"bad combinator", map[string]any{"query": map[string]any{"combinator": "xor", "rules": []any{}}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c.with(t).must("POST", path, tc.body, http.StatusUnprocessableEntity)
		})
	}
	t.Run("unknown blueprint", func(t *testing.T) {
		c.with(t).must("POST", "/v1/blueprints/nope/entities/search", map[string]any{}, http.StatusNotFound)
	})
}

// Search is eventually consistent: for SearchLag a write is not seen by
// search (created: absent; changed: the old version; deleted: still
// there), while GET sees it at once.
func TestSearchLag(t *testing.T) {
	clock := newClock()
	srv := New(Options{Now: clock.Now, SearchLag: time.Second})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	const path = "/v1/blueprints/app/entities/search"
	tiers := func() string {
		r := c.must("POST", path, map[string]any{}, http.StatusOK)
		var out []string
		for _, e := range r.body["entities"].([]any) {
			m := e.(map[string]any)
			out = append(out, fmt.Sprint(m["identifier"], "=", m["properties"].(map[string]any)["tier"]))
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	c.must("POST", "/v1/blueprints/app/entities", appEntity("a", map[string]any{"tier": "gold"}), http.StatusCreated)
	if got := tiers(); got != "" {
		t.Errorf("just created: search sees %q, want nothing", got)
	}
	c.must("GET", "/v1/blueprints/app/entities/a", nil, http.StatusOK)
	clock.Add(time.Second)
	if got := tiers(); got != "a=gold" {
		t.Errorf("after the lag: %q", got)
	}
	c.must("POST", "/v1/blueprints/app/entities?upsert=true", appEntity("a", map[string]any{"tier": "silver"}), http.StatusCreated)
	if got := tiers(); got != "a=gold" {
		t.Errorf("just changed: search sees %q, want the old version", got)
	}
	clock.Add(time.Second)
	c.must("DELETE", "/v1/blueprints/app/entities/a", nil, http.StatusOK)
	if got := tiers(); got != "a=silver" {
		t.Errorf("just deleted: search sees %q, want the last version", got)
	}
	clock.Add(time.Second)
	if got := tiers(); got != "" {
		t.Errorf("deleted, after the lag: search sees %q", got)
	}
	if err := srv.SeedEntity("app", []byte(`{"identifier":"seed","properties":{"tier":"gold"},"relations":{}}`)); err != nil {
		t.Fatal(err)
	}
	if got := tiers(); got != "seed=gold" {
		t.Errorf("seeded: search sees %q, want it at once", got)
	}
}

// TestEntityNumbersKeptAsDoubles: Port keeps numbers as doubles, so an
// integer a double cannot hold (9007199254740993, past 2^53) comes back as
// the double nearest to it, written as JavaScript writes it, at any depth;
// integers a double holds (2^60) and decimals come back as sent.
func TestEntityNumbersKeptAsDoubles(t *testing.T) {
	srv := New(Options{})
	t.Cleanup(srv.Close)
	c := newClient(t, srv)
	catalogFixture(t, c)
	c.must("POST", "/v1/blueprints/app/entities", `{"identifier":"big","properties":{"size":9007199254740993,
 "meta":{"k":[-9007199254740993,1152921504606846976,18446744073709551617,0.1,1e300]}},"relations":{}}`, http.StatusCreated)
	r := c.must("GET", "/v1/blueprints/app/entities/big", nil, http.StatusOK)
	for _, want := range []string{`"size":9007199254740992`, `"k":[-9007199254740992,1152921504606846976,18446744073709552000,0.1,1e300]`} {
		if !strings.Contains(string(r.raw), want) {
			t.Errorf("GET answered %s, want %s in it", r.raw, want)
		}
	}
}

// TestEntityCount: GET …/entities-count counts every entity of the
// blueprint at once, whoever made it; an unknown blueprint is a 404.
func TestEntityCount(t *testing.T) {
	srv := New(Options{SearchLag: time.Hour})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	count := func() string {
		return fmt.Sprint(c.must("GET", "/v1/blueprints/app/entities-count", nil, http.StatusOK).body["count"])
	}
	before, err := strconv.Atoi(count())
	if err != nil {
		t.Fatalf("count %v is not a number", count())
	}
	c.must("POST", "/v1/blueprints/app/entities", appEntity("counted", map[string]any{"tier": "gold"}), http.StatusCreated)
	if got := count(); got != strconv.Itoa(before+1) {
		t.Errorf("after a create: count %v, want %d", got, before+1)
	}
	c.must("GET", "/v1/blueprints/nosuch/entities-count", nil, http.StatusNotFound)
}

// The two undocumented answers to a bulk create of an entity that exists:
// success with created: false (nothing written), or the whole request
// refused with a 409 (nothing written, the new entity neither).
func TestBulkCreateExistingKnobs(t *testing.T) {
	const path = "/v1/blueprints/app/entities/bulk?upsert=false"
	body := map[string]any{"entities": []any{appEntity("a", map[string]any{"name": "new"}), appEntity("b", nil)}}

	srv := New(Options{CreateExistingUnwritten: true})
	defer srv.Close()
	c := newClient(t, srv)
	catalogFixture(t, c)
	c.must("POST", "/v1/blueprints/app/entities", appEntity("a", map[string]any{"name": "old"}), http.StatusCreated)
	r := c.must("POST", path, body, http.StatusOK)
	ents := r.body["entities"].([]any)
	if len(ents) != 2 || ents[0].(map[string]any)["created"] != false || ents[1].(map[string]any)["created"] != true {
		t.Errorf("answer %s, want a created false, b created true", r.raw)
	}
	if p := srv.Entity("app", "a")["properties"].(map[string]any); p["name"] != "old" || srv.Entity("app", "b") == nil {
		t.Errorf("a %v, b %v: want a as it was, b written", p, srv.Entity("app", "b"))
	}

	srv2 := New(Options{CreateExistingRefusesRequest: true})
	defer srv2.Close()
	c2 := newClient(t, srv2)
	catalogFixture(t, c2)
	c2.must("POST", "/v1/blueprints/app/entities", appEntity("a", map[string]any{"name": "old"}), http.StatusCreated)
	c2.must("POST", path, body, http.StatusConflict)
	if srv2.Entity("app", "b") != nil {
		t.Error("b written by a refused request")
	}
	c2.must("POST", "/v1/blueprints/app/entities/bulk?upsert=true", body, http.StatusOK)
}
