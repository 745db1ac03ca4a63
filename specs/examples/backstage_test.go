package examples_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bsSim answers the Backstage catalog's GET /api/catalog/entities/by-query
// as the catalog backend does (facts in testdata/backstage.md): a static
// token as bearer; entities ordered by an internal id, paged by a keyset
// cursor (base64 JSON: the last id read and the first page's count), absent
// on the last page; with a cursor only `fields` and `limit` are read;
// totalItems counted on the first page and carried in the cursor; no cap
// on limit, 200 without one; `fields` prunes each entity to the paths
// asked; a denied read permission is an empty 200; errors
// {"error": {name, message}, "request", "response": {statusCode}}; a 429
// with Retry-After and express-rate-limit's legacy headers.
type bsSim struct {
	token string

	mu       sync.Mutex
	entities []bsEntity // by id
	requests []*http.Request
	cursors  []string // every cursor received, as decoded from the query
	deny     bool     // catalog.entity.read denied: an empty catalog
	// faults[n] answers the n-th request (from 1) with that status.
	faults map[int]int
	// faultAll answers every request with that status.
	faultAll int
	// afterPage[n] runs after the n-th page (from 1) is served: the
	// catalog changing while it is read.
	afterPage map[int]func(s *bsSim)
	// cutAfter, when not 0, leaves nextCursor out of that page (from 1)
	// though more entities follow: a server that ends the list early.
	cutAfter int
	served   int
}

type bsEntity struct {
	id  string // the catalog's internal entity id: the keyset order
	doc map[string]any
}

const bsToken = "SimOnlyBsTok+eZv5o/fW3KnR3kVabMW4ZcDNLPl8nmMW="

// newBSSim builds a catalog of n entities of every kind, with the
// unkindness of a real one: names in mixed case, a namespace left out,
// optional fields missing, entities without relations, and one relation
// listed twice.
func newBSSim(token string, n int) *bsSim {
	s := &bsSim{token: token, faults: map[int]int{}, afterPage: map[int]func(*bsSim){}}
	kinds := []string{"Component", "API", "System", "Group", "User", "Resource", "Location", "Domain"}
	for i := range n {
		kind := kinds[i%len(kinds)]
		name := fmt.Sprintf("svc-%d", i)
		if i%5 == 0 {
			name = fmt.Sprintf("Payments-API-%d", i) // refs compare without case
		}
		meta := map[string]any{"uid": fmt.Sprintf("uid-%06d", i), "etag": "e" + strconv.Itoa(i), "name": name,
			"namespace": "default", "annotations": map[string]any{"backstage.io/managed-by-location": "url:https://git.example.com/x"}}
		switch {
		case i%9 == 0:
			delete(meta, "namespace")
		case i%7 == 0:
			meta["namespace"] = "Ops"
		}
		if i%3 == 0 {
			meta["title"] = "Service " + strconv.Itoa(i)
			meta["tags"] = []any{"go", "tier-" + strconv.Itoa(i%3)}
		}
		doc := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": meta}
		var rels []any
		switch kind {
		case "Component", "API", "Resource":
			team := fmt.Sprintf("team-%d", i%4)
			doc["spec"] = map[string]any{"type": "service", "lifecycle": "production", "owner": team, "system": "sys-" + strconv.Itoa(i%6)}
			rels = append(rels,
				map[string]any{"type": "ownedBy", "targetRef": "group:default/" + team, "target": map[string]any{"kind": "group", "namespace": "default", "name": team}},
				map[string]any{"type": "partOf", "targetRef": "system:default/sys-" + strconv.Itoa(i%6)})
			if i%11 == 0 {
				// The same relation again, as two processors emitting it.
				rels = append(rels, map[string]any{"type": "ownedBy", "targetRef": "group:default/" + team})
			}
			if i%5 == 0 {
				delete(doc["spec"].(map[string]any), "lifecycle") // optional: left out
			}
		case "Group":
			doc["spec"] = map[string]any{"type": "team", "children": []any{}}
			if i%2 == 0 {
				rels = append(rels, map[string]any{"type": "childOf", "targetRef": "group:default/org"})
			}
		case "User":
			doc["spec"] = map[string]any{"memberOf": []any{"team-1"}}
			rels = append(rels, map[string]any{"type": "memberOf", "targetRef": "group:default/team-1"})
		}
		if rels != nil {
			doc["relations"] = rels
		} else if i%2 == 0 {
			doc["relations"] = []any{}
		}
		// Internal ids are not in name order: a hash-like spread.
		s.entities = append(s.entities, bsEntity{id: fmt.Sprintf("%08x-%04d", uint32(i)*2654435761, i), doc: doc})
	}
	slices.SortFunc(s.entities, func(a, b bsEntity) int { return strings.Compare(a.id, b.id) })
	return s
}

func bsError(w http.ResponseWriter, r *http.Request, status int, name, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"name": name, "message": msg},
		"request": map[string]any{"method": r.Method, "url": r.URL.RequestURI()}, "response": map[string]any{"statusCode": status}})
}

type bsCursor struct {
	After      string `json:"orderFieldValues"`
	TotalItems int    `json:"totalItems"`
	IsPrevious bool   `json:"isPrevious"`
}

func (s *bsSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	n := len(s.requests)
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		bsError(w, r, 401, "AuthenticationError", "Missing credentials")
		return
	}
	fault := s.faults[n]
	if s.faultAll != 0 {
		fault = s.faultAll
	}
	switch fault {
	case 0:
	case http.StatusTooManyRequests:
		h := w.Header()
		h.Set("Retry-After", "1")
		h.Set("X-RateLimit-Limit", "100")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
		writeJSON(w, 429, map[string]any{"error": map[string]any{"name": "Error", "message": "Too many requests, please try again later"},
			"response": map[string]any{"statusCode": 429}})
		return
	default:
		bsError(w, r, fault, "Error", http.StatusText(fault))
		return
	}
	if r.URL.Path != "/api/catalog/entities/by-query" {
		bsError(w, r, 404, "NotFoundError", "Not found")
		return
	}
	if s.deny {
		writeJSON(w, 200, map[string]any{"items": []any{}, "totalItems": 0, "pageInfo": map[string]any{}})
		return
	}
	q := r.URL.Query()
	limit, ok := queryInt(q, "limit", 200, 0)
	if !ok {
		bsError(w, r, 400, "InputError", "Invalid limit, not an integer")
		return
	}
	var fields []string
	if f := q.Get("fields"); f != "" {
		fields = strings.Split(f, ",")
	}
	var cur bsCursor
	first := true
	if c := q.Get("cursor"); c != "" {
		s.cursors = append(s.cursors, c)
		raw, err := base64.StdEncoding.DecodeString(c)
		if err != nil || json.Unmarshal(raw, &cur) != nil || cur.After == "" {
			bsError(w, r, 400, "InputError", "Malformed cursor: could not be parsed")
			return
		}
		first = false
	} else {
		cur.TotalItems = len(s.entities) // counted on the first page only
	}
	from, _ := slices.BinarySearchFunc(s.entities, cur.After, func(e bsEntity, id string) int { return strings.Compare(e.id, id) })
	if !first && from < len(s.entities) && s.entities[from].id == cur.After {
		from++
	}
	end := min(from+limit, len(s.entities))
	items := []any{}
	for _, e := range s.entities[from:end] {
		items = append(items, bsPrune(e.doc, fields))
	}
	s.served++
	page := map[string]any{}
	if end < len(s.entities) && s.served != s.cutAfter && end > from {
		raw, _ := json.Marshal(bsCursor{After: s.entities[end-1].id, TotalItems: cur.TotalItems})
		page["nextCursor"] = base64.StdEncoding.EncodeToString(raw)
	}
	if !first && end > from {
		raw, _ := json.Marshal(bsCursor{After: s.entities[from].id, TotalItems: cur.TotalItems, IsPrevious: true})
		page["prevCursor"] = base64.StdEncoding.EncodeToString(raw)
	}
	writeJSON(w, 200, map[string]any{"items": items, "totalItems": cur.TotalItems, "pageInfo": page})
	if f := s.afterPage[s.served]; f != nil {
		f(s)
	}
}

// bsPrune keeps of doc only the dotted paths of fields (all of it when
// none are given), as the catalog's field selection does.
func bsPrune(doc map[string]any, fields []string) map[string]any {
	if len(fields) == 0 {
		return doc
	}
	out := map[string]any{}
	for _, f := range fields {
		parts := strings.Split(f, ".")
		src, dst := doc, out
		for i, p := range parts {
			v, ok := src[p]
			if !ok {
				break
			}
			if i == len(parts)-1 {
				dst[p] = v
				break
			}
			m, ok := v.(map[string]any)
			if !ok {
				break
			}
			next, ok := dst[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				dst[p] = next
			}
			src, dst = m, next
		}
	}
	return out
}

// insert adds an entity with internal id id (its place in the order).
func (s *bsSim) insert(id, name string) {
	e := bsEntity{id: id, doc: map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
		"metadata": map[string]any{"uid": "uid-" + id, "name": name, "namespace": "default"}, "spec": map[string]any{"owner": "team-0"}}}
	i, _ := slices.BinarySearchFunc(s.entities, id, func(e bsEntity, id string) int { return strings.Compare(e.id, id) })
	s.entities = slices.Insert(s.entities, i, e)
}

// bsRef is the canonical ref of a simulated entity, as stringifyEntityRef
// makes it.
func bsRef(doc map[string]any) string {
	meta := doc["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	return strings.ToLower(doc["kind"].(string) + ":" + ns + "/" + meta["name"].(string))
}

// want lists the refs of the catalog's entities and its relations, each
// relation once, as "source|type|target".
func (s *bsSim) want() (refs, rels []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range s.entities {
		ref := bsRef(e.doc)
		refs = append(refs, ref)
		list, _ := e.doc["relations"].([]any)
		for _, r := range list {
			m := r.(map[string]any)
			k := ref + "|" + m["type"].(string) + "|" + strings.ToLower(m["targetRef"].(string))
			if !seen[k] {
				seen[k] = true
				rels = append(rels, k)
			}
		}
	}
	return refs, rels
}

func bsRelations(rows []map[string]any) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, fmt.Sprint(r["source_ref"], "|", r["type"], "|", r["target_ref"]))
	}
	return out
}

func bsSets(url string) map[string]string {
	return map[string]string{"base_url": url, "token": bsToken}
}

// Backstage: every entity and every relation written once, keyed by the
// lowercased ref, read by the by-query cursor (base64, query-escaped)
// with fields and limit on every page, past a 429 with Retry-After and a
// 503 mid-chain; the token never printed.
func TestBackstage(t *testing.T) {
	t.Parallel()
	sim := newBSSim(bsToken, 1234)
	sim.faults[2] = 429
	sim.faults[4] = 503
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "backstage.yaml", bsSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	wantRefs, wantRels := sim.want()
	sameIDs(t, "entities, each once", wantRefs, ids(r.rows["entities"], "ref"))
	sameIDs(t, "relations, each once", wantRels, bsRelations(r.rows["relations"]))
	byRef := map[string]map[string]any{}
	for _, row := range r.rows["entities"] {
		byRef[fmt.Sprint(row["ref"])] = row
	}
	if row := byRef["component:default/payments-api-0"]; row == nil || row["name"] != "Payments-API-0" || row["namespace"] != "default" ||
		row["owner"] != "team-0" || row["owner_ref"] != "group:default/team-0" || row["system_ref"] != "system:default/sys-0" || row["uid"] != "uid-000000" {
		t.Errorf("entity 0 row = %v: want its ref lowercased, its name as written, namespace default, owner and system refs", row)
	}
	if row := byRef["component:ops/svc-56"]; row == nil || row["namespace"] != "Ops" {
		t.Errorf("entity 56 row = %v: want namespace Ops, ref lowercased", row)
	}
	reqs := sim.requests
	if len(reqs) < 5 {
		t.Fatalf("%d requests, want at least 5 (3 pages, a 429, a 503)", len(reqs))
	}
	escaped := false
	for _, q := range reqs {
		v := q.URL.Query()
		if v.Get("limit") != "500" || !strings.Contains(v.Get("fields"), "relations") {
			t.Errorf("request %s: want limit=500 and fields on every page", q.URL.RawQuery)
		}
		if c := v.Get("cursor"); strings.ContainsAny(c, "+/=") {
			escaped = true
		}
	}
	if !escaped {
		t.Errorf("no cursor held +, / or =: the test does not show the cursor query-escaped")
	}
	if s := stream(r.res, "entities"); s.Retries < 2 {
		t.Errorf("entities retries = %d, want at least 2 (the 429, the 503)", s.Retries)
	}
	noDuplicates(t, r)
	noSecret(t, r, bsToken)
}

// The catalog changing while it is read: an entity changed in place is
// read once, in its new state; one added after the read position is read;
// one added behind it is not (the next run reads it), and the total
// check, the first page's count, still passes.
func TestBackstageChangesWhileRead(t *testing.T) {
	t.Parallel()
	sim := newBSSim(bsToken, 1234)
	var changed string
	sim.afterPage[1] = func(s *bsSim) {
		e := s.entities[900]
		changed = bsRef(e.doc)
		e.doc["metadata"].(map[string]any)["title"] = "Renamed while read"
		s.insert("ffffffff-9999", "added-ahead")
		s.insert("00000000-0000", "added-behind")
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "backstage.yaml", bsSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	wantRefs, _ := sim.want()
	wantRefs = slices.DeleteFunc(wantRefs, func(ref string) bool { return ref == "component:default/added-behind" })
	sameIDs(t, "entities, each once", wantRefs, ids(r.rows["entities"], "ref"))
	for _, row := range r.rows["entities"] {
		if row["ref"] == changed && row["title"] != "Renamed while read" {
			t.Errorf("changed entity %s row = %v, want its new title", changed, row)
		}
	}
	noDuplicates(t, r)
}

// Failures fail the run, naming the stream and the catalog's words: a
// wrong token; a denied read permission (an empty 200); a catalog that
// ends the list early, or loses an entity while read, below the first
// page's totalItems; a 500 on every attempt. The token is never printed.
func TestBackstageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		token string
		setup func(s *bsSim)
		want  []string
	}{
		{name: "a wrong token", token: "WrongWrongWrong+static/token=",
			want: []string{"entities", "AuthenticationError: Missing credentials"}},
		{name: "read permission denied", setup: func(s *bsSim) { s.deny = true },
			want: []string{"entities", "the catalog listed no entity"}},
		{name: "the list ended early", setup: func(s *bsSim) { s.cutAfter = 2 },
			want: []string{"entities", "said the list holds 1234"}},
		{name: "an entity deleted while read", setup: func(s *bsSim) {
			s.afterPage[1] = func(s *bsSim) { s.entities = slices.Delete(s.entities, 1000, 1001) }
		}, want: []string{"entities", "said the list holds 1234"}},
		{name: "a 500 on every attempt", setup: func(s *bsSim) { s.faultAll = 500 },
			want: []string{"entities", "Internal Server Error"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newBSSim(bsToken, 1234)
			if c.setup != nil {
				c.setup(sim)
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := bsSets(srv.URL)
			if c.token != "" {
				sets["token"] = c.token
			}
			r := runVendor(t, "backstage.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, bsToken, sets["token"])
		})
	}
}
