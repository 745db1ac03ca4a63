package engine_test

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// emptyListSpec reads each owner's items with the owner's ids as a
// repeated parameter of the query, or of a form body.
func emptyListSpec(form bool) string {
	req := `      path: /items
      query: {id: '${ parent.ids }'}`
	if form {
		req = `      method: POST
      path: /items
      body_format: form
      body: {id: '${ parent.ids }'}`
	}
	return specHead + `streams:
  owners:
    request: {path: /parents}
  items:
    for_each: owners
    request:
` + req + `
tables:
  t: {from: items, primary_key: [id], row: '{id}', columns: {id: STRING}}
`
}

// TestEmptyListQueryValueFailsItsChain: a query value (or a form body's
// field) that only reads the parent and is an empty list would send the
// request without the parameter (a list repeats it): the API answers for
// every item, written under that parent, exit 0. It fails its chain, as
// null does, naming the field; the other parents' items are written.
func TestEmptyListQueryValueFailsItsChain(t *testing.T) {
	for _, form := range []bool{false, true} {
		t.Run(map[bool]string{false: "query", true: "form"}[form], func(t *testing.T) {
			fx := newFixture(t, emptyListSpec(form), "")
			fx.json("/parents", []any{map[string]any{"id": "p1", "ids": []any{}}, map[string]any{"id": "p2", "ids": []any{"a", "b"}}})
			var mu sync.Mutex
			var asked []string
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				ids := r.Form["id"]
				mu.Lock()
				asked = append(asked, strings.Join(ids, ","))
				mu.Unlock()
				if len(ids) == 0 {
					ids = []string{"a", "b", "c", "d"} // no filter: every item
				}
				var out []string
				for _, id := range ids {
					out = append(out, `{"id": "`+id+`"}`)
				}
				w.Write([]byte("[" + strings.Join(out, ",") + "]"))
			}
			fx.mu.Unlock()
			_, err := fx.run(engine.RunOptions{})
			re := runErrorOf(t, err)
			if !strings.Contains(re.Error(), "parent.ids is an empty list") || !strings.Contains(re.Error(), "p1") {
				t.Errorf("the failure does not name the empty list and its parent: %v", re)
			}
			if rows := fx.query(`SELECT id FROM "nl__t" ORDER BY id`); !slices.Equal(rows, []string{"a", "b"}) {
				t.Errorf("rows %v, want p2's a and b only", rows)
			}
			if slices.Contains(asked, "") {
				t.Errorf("a request went out without its id filter: %q", asked)
			}
		})
	}
}

// TestEmptyListInJSONBodySent: in a JSON body an empty list is sent as
// one ([]): the API is told "none", not left without the field.
func TestEmptyListInJSONBodySent(t *testing.T) {
	src := strings.Replace(emptyListSpec(true), "      body_format: form\n", "", 1)
	fx := newFixture(t, src, "")
	fx.json("/parents", []any{map[string]any{"id": "p1", "ids": []any{}}})
	var body string
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		_, _ = io.Copy(b, r.Body)
		body = b.String()
		w.Write([]byte(`[]`))
	}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `"id":[]`) {
		t.Errorf("body %q, want the empty list sent", body)
	}
}

// TestEmptyListAdviceWorks: the two ways the failure offers both run: a
// when that skips the parent, and a condition that sends the request
// without the parameter on purpose.
func TestEmptyListAdviceWorks(t *testing.T) {
	for _, c := range []struct {
		name, from, to string
		asked          []string
	}{
		{"when", "    for_each: owners\n", "    for_each: owners\n    when: len(parent.ids) > 0\n", []string{"a,b"}},
		{"condition", "'${ parent.ids }'", "'${ len(parent.ids) > 0 ? parent.ids : nil }'", []string{"", "a,b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(emptyListSpec(false), c.from, c.to, 1)
			fx := newFixture(t, src, "")
			fx.json("/parents", []any{map[string]any{"id": "p1", "ids": []any{}}, map[string]any{"id": "p2", "ids": []any{"a", "b"}}})
			var mu sync.Mutex
			var asked []string
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				asked = append(asked, strings.Join(r.URL.Query()["id"], ","))
				mu.Unlock()
				w.Write([]byte(`[]`))
			}
			fx.mu.Unlock()
			if _, err := fx.run(engine.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			slices.Sort(asked)
			if !slices.Equal(asked, c.asked) {
				t.Errorf("asked %q, want %q", asked, c.asked)
			}
		})
	}
}

// TestListOfNoValuesQueryValueFailsItsChain: a list whose items are all
// null (or empty lists) repeats the parameter no time either, as an
// empty list: the request went out without its filter. It fails its
// chain as the empty list does; the other parents' items are written.
func TestListOfNoValuesQueryValueFailsItsChain(t *testing.T) {
	for _, form := range []bool{false, true} {
		for name, ids := range map[string][]any{"nulls": {nil, nil}, "empty lists": {[]any{}}} {
			if form && name == "empty lists" {
				continue // a list inside a list is refused by the form encoding
			}
			t.Run(map[bool]string{false: "query", true: "form"}[form]+"/"+name, func(t *testing.T) {
				fx := newFixture(t, emptyListSpec(form), "")
				fx.json("/parents", []any{map[string]any{"id": "p1", "ids": ids}, map[string]any{"id": "p2", "ids": []any{"a", "b"}}})
				var mu sync.Mutex
				var asked []string
				fx.mu.Lock()
				fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
					r.ParseForm()
					got := r.Form["id"]
					mu.Lock()
					asked = append(asked, strings.Join(got, ","))
					mu.Unlock()
					if len(got) == 0 {
						got = []string{"a", "b", "c", "d"} // no filter: every item
					}
					var out []string
					for _, id := range got {
						out = append(out, `{"id": "`+id+`"}`)
					}
					w.Write([]byte("[" + strings.Join(out, ",") + "]"))
				}
				fx.mu.Unlock()
				_, err := fx.run(engine.RunOptions{})
				re := runErrorOf(t, err)
				if !strings.Contains(re.Error(), "parent.ids") || !strings.Contains(re.Error(), "p1") {
					t.Errorf("the failure does not name the list and its parent: %v", re)
				}
				if rows := fx.query(`SELECT id FROM "nl__t" ORDER BY id`); !slices.Equal(rows, []string{"a", "b"}) {
					t.Errorf("rows %v, want p2's a and b only", rows)
				}
				if slices.Contains(asked, "") {
					t.Errorf("a request went out without its id filter: %q", asked)
				}
			})
		}
	}
}

// TestEmptyListInLongerQueryValueSent: a list inside a longer query
// value is written into its text as JSON ("ids:[]"): the parameter goes
// out, so an empty list there is no failure.
func TestEmptyListInLongerQueryValueSent(t *testing.T) {
	src := strings.Replace(emptyListSpec(false), "'${ parent.ids }'", "'ids:${ parent.ids }'", 1)
	fx := newFixture(t, src, "")
	fx.json("/parents", []any{map[string]any{"id": "p1", "ids": []any{}}})
	var asked []string
	fx.mu.Lock()
	fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Query()["id"]...)
		w.Write([]byte(`[]`))
	}
	fx.mu.Unlock()
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, []string{"ids:[]"}) {
		t.Errorf("asked %q, want the value ids:[] sent", asked)
	}
}

// TestEmptyStringFilterFailsItsChain: a query value, a form field or a
// header that only reads the parent and is an empty string sends an
// empty filter (owner=, X-Owner: ), which many APIs read as none: the
// answer for every item was written under that parent, exit 0. It fails
// its chain, naming the field, as null does; a JSON body sends "" as it
// is, and the stream's when skips such parents.
func TestEmptyStringFilterFailsItsChain(t *testing.T) {
	for _, c := range []struct {
		name, request string
		fails         bool
	}{
		{"query", "      query: {owner: '${ parent.name }'}", true},
		{"longer query value", "      query: {q: 'owner:${ parent.name }'}", true},
		{"header", "      headers: {X-Owner: '${ parent.name }'}", true},
		{"form", "      method: POST\n      body_format: form\n      body: {owner: '${ parent.name }'}", true},
		{"json body", "      method: POST\n      body: {owner: '${ parent.name }'}", false},
		{"when", "      query: {owner: '${ parent.name }'}\n    when: parent.name != \"\"", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := specHead + `streams:
  owners:
    request: {path: /parents}
  items:
    for_each: owners
    request:
      path: /items
` + c.request + `
tables:
  t: {from: items, primary_key: [id], row: '{id}', columns: {id: STRING}}
`
			fx := newFixture(t, src, "")
			fx.json("/parents", []any{map[string]any{"id": "p1", "name": ""}, map[string]any{"id": "p2", "name": "x"}})
			var mu sync.Mutex
			requests := 0
			fx.mu.Lock()
			fx.routes["/items"] = func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				n := requests
				mu.Unlock()
				w.Write([]byte(`[{"id": "i` + strconv.Itoa(n) + `"}]`))
			}
			fx.mu.Unlock()
			_, err := fx.run(engine.RunOptions{})
			if !c.fails {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			re := runErrorOf(t, err)
			if !strings.Contains(re.Error(), "parent.name is an empty string") || !strings.Contains(re.Error(), "p1") {
				t.Errorf("the failure does not name the empty string and its parent: %v", re)
			}
			if requests != 1 {
				t.Errorf("%d requests, want p2's alone", requests)
			}
		})
	}
}
