package examples_test

import (
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

// notionSim answers POST /v1/search, GET /v1/pages/{id} and GET
// /v1/blocks/{id}/children as Notion's API does (facts in
// testdata/notion.md): Notion-Version and a bearer token on every
// request; lists {object: list, results, next_cursor, has_more}, at most 3
// results an answer whatever page_size asks, page_size above 100 a 400;
// search lists databases too unless filtered to pages, and is not
// exhaustive: it lists some subpages and leaves out others, and a top
// page too; a child_page block's id is the subpage's, its children the
// subpage's blocks; 429 with Retry-After, 529 and 500 where faults say;
// errors {object: error, status, code, message}; optional fields left
// out (in_trash on pages and blocks, a title).
type notionSim struct {
	token string

	mu       sync.Mutex
	pages    map[string]map[string]any   // page id -> its Page object
	listed   []string                    // the pages search lists, in order
	searches int                         // listings begun (a later one leaves Gamma out)
	children map[string][]map[string]any // page or block id -> its child blocks
	parentOf map[string]string           // block id -> its parent's id
	pageOf   map[string]string           // block id -> the page it is content of
	requests []*http.Request
	// faults[path + "|" + cursor] are answered, in order, to the first
	// requests for that page ("" the first page's cursor).
	faults map[string][]int
	// nullCursor: a list page with more after it says has_more true with
	// next_cursor null.
	nullCursor bool
}

const notionToken = "ntn_5im0TokenF0rTests0nlyAbcdefGHIJKLmnopQRSTuvwxyz12"

// newNotionSim builds a workspace (listed: search lists it):
//
//	Alpha (listed): blocks five levels deep; under a toggle, Gamma (listed);
//	  Delta (not listed), a child_page block of Alpha's own
//	    under a toggle, Epsilon (not listed)
//	      Zeta (listed), and Eta (not listed, empty, untitled)
//	Beta (listed): a table; deep adds a chain of that many nested toggles
//	Gamma: Iota (not listed) under a list item
//	Omega (a top page search leaves out: unreachable)
//	  Theta (listed: shared directly, read as a page of its own)
func newNotionSim(deep int) *notionSim {
	s := &notionSim{token: notionToken, pages: map[string]map[string]any{}, children: map[string][]map[string]any{},
		parentOf: map[string]string{}, pageOf: map[string]string{}, faults: map[string][]int{}}
	titles := map[string]string{}
	page := func(id, title, parentType, parent string, listed bool) {
		titles[id] = title
		p := map[string]any{"object": "page", "id": id, "url": "https://www.notion.so/" + id,
			"created_time": "2025-01-02T03:04:00.000Z", "last_edited_time": "2025-02-03T04:05:00.000Z",
			"parent":     map[string]any{"type": parentType},
			"properties": map[string]any{"title": map[string]any{"id": "title", "type": "title", "title": []any{}}}}
		switch parentType {
		case "workspace":
			p["parent"].(map[string]any)["workspace"] = true
		default:
			p["parent"].(map[string]any)[parentType] = parent
		}
		if title != "" {
			p["properties"].(map[string]any)["title"].(map[string]any)["title"] = []any{map[string]any{"plain_text": title}}
		}
		if len(s.pages)%2 == 0 {
			p["in_trash"] = false // older versions: archived only
		}
		p["archived"] = false
		s.pages[id] = p
		if listed {
			s.listed = append(s.listed, id)
		}
	}
	n := 0
	add := func(parent, page, typ, text string, has bool) string {
		n++
		id := fmt.Sprintf("blk-%03d", n)
		if typ == "child_page" {
			id = text
		}
		b := map[string]any{"object": "block", "id": id, "type": typ, "has_children": has,
			"created_time": "2025-01-02T03:04:00.000Z", "last_edited_time": "2025-02-03T04:05:00.000Z",
			"parent": map[string]any{"type": "block_id", "block_id": parent}}
		if n%2 == 0 {
			b["in_trash"] = false // left out on every other block
		}
		switch typ {
		case "child_page":
			b[typ] = map[string]any{"title": titles[id]}
		case "table_row":
			b[typ] = map[string]any{"cells": []any{[]any{map[string]any{"plain_text": text}}}}
		default:
			rt := []any{}
			if text != "" {
				rt = append(rt, map[string]any{"type": "text", "plain_text": text})
			}
			b[typ] = map[string]any{"rich_text": rt, "color": "default"}
		}
		s.children[parent] = append(s.children[parent], b)
		s.parentOf[id], s.pageOf[id] = parent, page
		return id
	}
	// Search's order: Alpha, Gamma, Zeta, Beta, Theta (3 an answer).
	page("page-a", "Alpha", "workspace", "", true)
	add("page-a", "page-a", "paragraph", "Intro", false)
	toggle := add("page-a", "page-a", "toggle", "More", true)
	add("page-a", "page-a", "heading_1", "Plan", false)
	list := add("page-a", "page-a", "bulleted_list_item", "One", true)
	add("page-a", "page-a", "paragraph", "", false)
	add("page-a", "page-a", "paragraph", "Outro", false)
	add(toggle, "page-a", "paragraph", "Inside", false)
	page("page-c", "Gamma", "block_id", toggle, true)
	add(toggle, "page-a", "child_page", "page-c", true)
	t3 := add(toggle, "page-a", "toggle", "Level 2", true)
	t4 := add(t3, "page-a", "toggle", "Level 3", true)
	t5 := add(t4, "page-a", "toggle", "Level 4", true)
	add(t5, "page-a", "paragraph", "Level 5", false)
	add(t5, "page-a", "quote", "Also level 5", false)
	sub := add(list, "page-a", "bulleted_list_item", "One.one", true)
	add(sub, "page-a", "paragraph", "One.one.one", false)
	add("page-c", "page-c", "paragraph", "Gamma's text", false)
	gt := add("page-c", "page-c", "toggle", "Gamma's toggle", true)
	add(gt, "page-c", "paragraph", "Inside Gamma", false)
	gl := add("page-c", "page-c", "bulleted_list_item", "Gamma's list", true)
	page("page-j", "Iota", "block_id", gl, false)
	add(gl, "page-c", "child_page", "page-j", true)
	add("page-j", "page-j", "paragraph", "Iota's text", false)
	page("page-d", "Delta", "page_id", "page-a", false)
	add("page-a", "page-a", "child_page", "page-d", true)
	add("page-d", "page-d", "paragraph", "Delta's text", false)
	dt := add("page-d", "page-d", "toggle", "Delta's toggle", true)
	page("page-e", "Epsilon", "block_id", dt, false)
	add(dt, "page-d", "child_page", "page-e", true)
	add("page-e", "page-e", "heading_2", "Epsilon", false)
	page("page-f", "Zeta", "page_id", "page-e", true)
	add("page-e", "page-e", "child_page", "page-f", true)
	page("page-g", "", "page_id", "page-e", false)
	add("page-e", "page-e", "child_page", "page-g", false)
	el := add("page-e", "page-e", "bulleted_list_item", "E1", true)
	el2 := add(el, "page-e", "bulleted_list_item", "E1.1", true)
	add(el2, "page-e", "paragraph", "E1.1.1", false)
	add("page-f", "page-f", "paragraph", "Zeta's text", false)
	ft := add("page-f", "page-f", "toggle", "Zeta's toggle", true)
	add(ft, "page-f", "paragraph", "Inside Zeta", false)
	page("page-b", "Beta", "workspace", "", true)
	table := add("page-b", "page-b", "table", "", true)
	for i := range 4 {
		add(table, "page-b", "table_row", "row "+strconv.Itoa(i), false)
	}
	add("page-b", "page-b", "paragraph", "", false)
	page("page-h", "Omega", "workspace", "", false)
	add("page-h", "page-h", "paragraph", "Omega's text", false)
	page("page-i", "Theta", "page_id", "page-h", true)
	add("page-h", "page-h", "child_page", "page-i", true)
	add("page-i", "page-i", "paragraph", "Theta's text", false)
	at := "page-b"
	for i := range deep {
		at = add(at, "page-b", "toggle", "deep "+strconv.Itoa(i+1), true)
	}
	if deep > 0 {
		add(at, "page-b", "paragraph", "the bottom", false)
	}
	// Search's own order, not the order the workspace was built in.
	s.listed = []string{"page-a", "page-c", "page-f", "page-b", "page-i"}
	return s
}

// reachable lists the pages a client can reach: the listed ones, and the
// subpages below them, through child_page blocks at any depth.
func (s *notionSim) reachable() map[string]bool {
	seen := map[string]bool{}
	var walk func(id string)
	walk = func(id string) {
		for _, b := range s.children[id] {
			bid := b["id"].(string)
			if b["type"] == "child_page" {
				if !seen[bid] {
					seen[bid] = true
					walk(bid)
				}
				continue
			}
			walk(bid)
		}
	}
	for _, id := range s.listed {
		if !seen[id] {
			seen[id] = true
			walk(id)
		}
	}
	return seen
}

func (s *notionSim) fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"object": "error", "status": status, "code": code, "message": msg})
}

// list answers one page of items from cursor ("" the first), at most
// min(size, 3) of them.
func (s *notionSim) list(w http.ResponseWriter, items []map[string]any, cursor string, size int) {
	start := 0
	if cursor != "" {
		i, err := strconv.Atoi(strings.TrimPrefix(cursor, "cur-"))
		if err != nil || i < 0 || i > len(items) {
			s.fail(w, 400, "validation_error", "body failed validation: body.start_cursor should be a valid cursor")
			return
		}
		start = i
	}
	end := min(start+min(size, 3), len(items))
	res := []any{}
	for _, it := range items[start:end] {
		res = append(res, it)
	}
	body := map[string]any{"object": "list", "results": res, "next_cursor": nil, "has_more": end < len(items), "type": "block", "block": map[string]any{}}
	if end < len(items) && !s.nullCursor {
		body["next_cursor"] = "cur-" + strconv.Itoa(end)
	}
	writeJSON(w, 200, body)
}

func (s *notionSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var body map[string]any
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			s.fail(w, 400, "invalid_json", "Error parsing JSON body.")
			return
		}
	}
	s.requests = append(s.requests, r)
	cursor := r.URL.Query().Get("start_cursor")
	if c, ok := body["start_cursor"].(string); ok {
		cursor = c
	}
	if f := s.faults[r.URL.Path+"|"+cursor]; len(f) > 0 {
		s.faults[r.URL.Path+"|"+cursor] = f[1:]
		switch f[0] {
		case 429:
			w.Header().Set("Retry-After", "0")
			s.fail(w, 429, "rate_limited", "You have been rate limited. Please try again in a few minutes.")
		case 529:
			w.Header().Set("Retry-After", "0")
			s.fail(w, 529, "service_overload", "Notion is overloaded. Please try again later.")
		default:
			s.fail(w, f[0], "internal_server_error", "Unexpected error occurred.")
		}
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		s.fail(w, 401, "unauthorized", "API token is invalid.")
		return
	}
	if r.Header.Get("Notion-Version") == "" {
		s.fail(w, 400, "missing_version", "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.")
		return
	}
	size := 100
	if v, ok := body["page_size"]; ok {
		f, isNum := v.(float64)
		if !isNum || f < 1 || f > 100 || f != float64(int(f)) {
			s.fail(w, 400, "validation_error", "body failed validation: body.page_size should be a number less than or equal to `100`")
			return
		}
		size = int(f)
	}
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/children") {
		n, ok := queryInt(r.URL.Query(), "page_size", 100, 1)
		if !ok || n > 100 {
			s.fail(w, 400, "validation_error", "page_size should be a number less than or equal to `100`")
			return
		}
		size = n
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/search":
		var items []map[string]any
		if f, _ := body["filter"].(map[string]any); f["property"] != "object" || f["value"] != "page" {
			// Unfiltered: databases are listed too.
			items = append(items, map[string]any{"object": "database", "id": "db-1", "title": []any{}})
		}
		if cursor == "" {
			s.searches++
		}
		for _, id := range s.listed {
			if s.searches > 1 && id == "page-c" {
				// The index changed since the first listing: a client that
				// searches again gets another list.
				continue
			}
			items = append(items, s.pages[id])
		}
		s.list(w, items, cursor, size)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/pages/"):
		p, ok := s.pages[strings.TrimPrefix(r.URL.Path, "/v1/pages/")]
		if !ok {
			s.fail(w, 404, "object_not_found", "Could not find page with ID: "+strings.TrimPrefix(r.URL.Path, "/v1/pages/")+". Make sure the relevant pages and databases are shared with your integration.")
			return
		}
		writeJSON(w, 200, p)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/blocks/") && strings.HasSuffix(r.URL.Path, "/children"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/blocks/"), "/children")
		kids, ok := s.children[id]
		if !ok && s.pageOf[id] == "" && s.pages[id] == nil {
			s.fail(w, 404, "object_not_found", "Could not find block with ID: "+id+". Make sure the relevant pages and databases are shared with your integration.")
			return
		}
		s.list(w, kids, cursor, size)
	default:
		s.fail(w, 400, "invalid_request_url", "Invalid request URL.")
	}
}

func TestNotion(t *testing.T) {
	t.Parallel()
	sim := newNotionSim(0)
	sim.faults["/v1/search|"] = []int{429}
	sim.faults["/v1/blocks/page-a/children|cur-3"] = []int{500}
	sim.faults["/v1/blocks/blk-002/children|"] = []int{529}
	sim.faults["/v1/pages/page-e|"] = []int{429}
	sim.faults["/v1/blocks/page-e/children|cur-3"] = []int{429}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "notion.yaml", map[string]string{"api_url": srv.URL, "token": notionToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	noSecret(t, r, notionToken)
	noDuplicates(t, r)
	reach := sim.reachable()
	// Every page reachable from a listed one, once: the listed pages, and
	// the subpages search left out (Delta, Epsilon, Eta, Iota), deep
	// below listed pages and below each other; not the database, not
	// Omega (a top page search leaves out: nothing leads to it).
	var wantPages []string
	for id := range reach {
		wantPages = append(wantPages, id)
	}
	if reach["page-h"] || !reach["page-g"] || len(wantPages) != 9 {
		t.Fatalf("the simulated workspace changed: reachable %v", wantPages)
	}
	sameIDs(t, "pages", wantPages, ids(r.rows["pages"], "id"))
	titles := map[string]string{"page-a": "Alpha", "page-b": "Beta", "page-c": "Gamma", "page-d": "Delta", "page-e": "Epsilon",
		"page-f": "Zeta", "page-g": "", "page-i": "Theta", "page-j": "Iota"}
	for _, p := range r.rows["pages"] {
		id := fmt.Sprint(p["id"])
		if p["title"] != titles[id] {
			t.Errorf("page %s: title %v, want %q", id, p["title"], titles[id])
		}
		if want := sim.pages[id]["parent"].(map[string]any)["type"]; p["parent_type"] != want || p["in_trash"] != false || p["url"] != "https://www.notion.so/"+id {
			t.Errorf("page %s: parent_type %v (want %v), in_trash %v, url %v", id, p["parent_type"], want, p["in_trash"], p["url"])
		}
	}
	// Every block of a reachable page once, under its parent and its own
	// page: a subpage's blocks under the subpage, whether search listed it
	// (read as a page of its own, never again under its child_page block)
	// or not (read below its child_page block).
	var want, got []string
	for id, parent := range sim.parentOf {
		if reach[sim.pageOf[id]] {
			want = append(want, id+" < "+parent+" in "+sim.pageOf[id])
		}
	}
	for _, b := range r.rows["blocks"] {
		got = append(got, fmt.Sprint(b["id"], " < ", b["parent_id"], " in ", b["page_id"]))
	}
	sameIDs(t, "blocks (id < parent in page)", want, got)
	texts := map[string]bool{}
	for _, b := range r.rows["blocks"] {
		texts[fmt.Sprint(b["text"])] = true
	}
	for _, w := range []string{"Level 5", "E1.1.1", "Iota's text", "Inside Zeta", "Theta's text"} {
		if !texts[w] {
			t.Errorf("no block says %q", w)
		}
	}
	// Each request carried the version, and each list asked 100 a page.
	for _, q := range sim.requests {
		if q.Header.Get("Notion-Version") != "2022-06-28" {
			t.Errorf("%s %s: Notion-Version %q", q.Method, q.URL, q.Header.Get("Notion-Version"))
		}
		if strings.HasSuffix(q.URL.Path, "/children") && q.URL.Query().Get("page_size") != "100" {
			t.Errorf("%s: page_size %q, want 100", q.URL, q.URL.Query().Get("page_size"))
		}
	}
	// A page's content is read once (its first answer: all of these fit
	// one), whether listed or reached from above; a subpage's own row is
	// asked only when search left it out; Omega's content never.
	for id := range reach {
		want := 1 // in one answer, or in pages: page-a and page-e
		switch {
		case id == "page-a" || id == "page-e":
			want = len(requestsTo(&sim.mu, &sim.requests, "/v1/blocks/"+id+"/children")) // checked by their blocks
		case id == "page-g":
			want = 0 // empty: its child_page block has no children to read
		}
		if n := len(requestsTo(&sim.mu, &sim.requests, "/v1/blocks/"+id+"/children")); n != want {
			t.Errorf("%s's children asked %d times, want %d", id, n, want)
		}
		listed := slices.Contains(sim.listed, id)
		if n := len(requestsTo(&sim.mu, &sim.requests, "/v1/pages/"+id)); listed && n != 0 || !listed && n == 0 {
			t.Errorf("GET /v1/pages/%s asked %d times (listed by search: %v)", id, n, listed)
		}
	}
	if n := len(requestsTo(&sim.mu, &sim.requests, "/v1/blocks/page-h/children")); n != 0 {
		t.Errorf("Omega's children asked %d times: nothing listed leads to it", n)
	}
	// Search is asked once through (two answers, and the 429 again):
	// what is read and what is descended into come from one listing.
	if n := len(requestsTo(&sim.mu, &sim.requests, "/v1/search")); n != 3 {
		t.Errorf("search asked %d times, want 3 (two pages and a 429)", n)
	}
	for k, v := range sim.faults {
		if len(v) != 0 {
			t.Errorf("fault %s not answered: %v", k, v)
		}
	}
}

func TestNotionErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		deep   int
		token  string
		faults map[string][]int
		want   []string
	}{
		{name: "a wrong token", token: "ntn_wrong_wrong_wrong_wrong_wrong_wrong_wrong_wrong_w",
			want: []string{"pages", "401", "unauthorized: API token is invalid."}},
		{name: "a block's children failing on every attempt",
			faults: map[string][]int{"/v1/blocks/blk-009/children|": {500, 500, 500, 500, 500, 500, 500, 500}},
			want:   []string{"blocks (listed_pages[key=page-a] > blocks[id=blk-002] > blocks[id=blk-009])", "500"}},
		{name: "an unlisted subpage's row failing on every attempt",
			faults: map[string][]int{"/v1/pages/page-e|": {500, 500, 500, 500, 500, 500, 500, 500}},
			want:   []string{"subpages (listed_pages[key=page-a] > blocks[id=page-d] > blocks[id=blk-024] > blocks[id=page-e])", "500"}},
		{name: "a tree deeper than max_depth", deep: 31,
			want: []string{"blocks (listed_pages[key=page-b] > blocks[id=blk-044]", "blocks[id=blk-073])", "level 30, max_depth"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newNotionSim(c.deep)
			for k, v := range c.faults {
				sim.faults[k] = v
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			token := notionToken
			if c.token != "" {
				token = c.token
			}
			r := runVendor(t, "notion.yaml", map[string]string{"api_url": srv.URL, "token": token}, time.Time{})
			failedRun(t, r, c.want)
			noSecret(t, r, notionToken, token)
		})
	}
}

// A list page that says has_more true with next_cursor null ends the
// cursor, not the list: what follows is unread, so the run fails rather
// than exit 0 with the first page of each list.
func TestNotionHasMoreWithoutCursorFails(t *testing.T) {
	t.Parallel()
	sim := newNotionSim(0)
	sim.nullCursor = true
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "notion.yaml", map[string]string{"api_url": srv.URL, "token": notionToken}, time.Time{})
	failedRun(t, r, []string{"has_more"})
}
