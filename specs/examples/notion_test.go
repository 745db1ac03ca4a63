package examples_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// notionSim answers POST /v1/search and GET /v1/blocks/{id}/children as
// Notion's API does (facts in testdata/notion.md): Notion-Version and a
// bearer token on every request; lists {object: list, results,
// next_cursor, has_more}, at most 3 results an answer whatever page_size
// asks, page_size above 100 a 400; search lists databases too unless
// filtered to pages, and subpages as pages; a child_page block's id is the
// subpage's, its children the subpage's blocks; 429 with Retry-After, 529
// and 500 where faults say; errors {object: error, status, code, message}.
type notionSim struct {
	token string

	mu       sync.Mutex
	pages    []map[string]any            // search's pages, in order
	children map[string][]map[string]any // page or block id -> its child blocks
	parentOf map[string]string           // block id -> its parent's id
	pageOf   map[string]string           // block id -> the page it is content of
	requests []*http.Request
	// faults[path + "|" + cursor] are answered, in order, to the first
	// requests for that page ("" the first page's cursor).
	faults map[string][]int
}

const notionToken = "ntn_5im0TokenF0rTests0nlyAbcdefGHIJKLmnopQRSTuvwxyz12"

// newNotionSim builds a workspace: pages Alpha and Beta, and Gamma, a
// subpage of Alpha (a child_page block two levels down in Alpha, listed by
// search too); Alpha's blocks nest five levels deep; Beta holds a table.
// deep adds a chain of that many nested toggles under Beta.
func newNotionSim(deep int) *notionSim {
	s := &notionSim{token: notionToken, children: map[string][]map[string]any{}, parentOf: map[string]string{},
		pageOf: map[string]string{}, faults: map[string][]int{}}
	page := func(id, title, parentType string) {
		s.pages = append(s.pages, map[string]any{"object": "page", "id": id, "url": "https://www.notion.so/" + id,
			"created_time": "2025-01-02T03:04:00.000Z", "last_edited_time": "2025-02-03T04:05:00.000Z", "in_trash": false,
			"parent":     map[string]any{"type": parentType},
			"properties": map[string]any{"Name": map[string]any{"id": "title", "type": "title", "title": []any{map[string]any{"plain_text": title}}}}})
	}
	page("page-a", "Alpha", "workspace")
	page("page-b", "Beta", "workspace")
	page("page-c", "Gamma", "page_id")
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
			b[typ] = map[string]any{"title": "Gamma"}
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
	add("page-a", "page-a", "paragraph", "Intro", false)
	toggle := add("page-a", "page-a", "toggle", "More", true)
	add("page-a", "page-a", "heading_1", "Plan", false)
	list := add("page-a", "page-a", "bulleted_list_item", "One", true)
	add("page-a", "page-a", "paragraph", "", false)
	add("page-a", "page-a", "paragraph", "Outro", false)
	add(toggle, "page-a", "paragraph", "Inside", false)
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
	table := add("page-b", "page-b", "table", "", true)
	for i := range 4 {
		add(table, "page-b", "table_row", "row "+strconv.Itoa(i), false)
	}
	add("page-b", "page-b", "paragraph", "", false)
	at := "page-b"
	for i := range deep {
		at = add(at, "page-b", "toggle", "deep "+strconv.Itoa(i+1), true)
	}
	if deep > 0 {
		add(at, "page-b", "paragraph", "the bottom", false)
	}
	return s
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
	if end < len(items) {
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
	if r.Method == http.MethodGet {
		n, ok := queryInt(r.URL.Query(), "page_size", 100, 1)
		if !ok || n > 100 {
			s.fail(w, 400, "validation_error", "page_size should be a number less than or equal to `100`")
			return
		}
		size = n
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/search":
		items := s.pages
		if f, _ := body["filter"].(map[string]any); f["property"] != "object" || f["value"] != "page" {
			// Unfiltered: databases are listed too.
			items = append([]map[string]any{{"object": "database", "id": "db-1", "title": []any{}}}, items...)
		}
		s.list(w, items, cursor, size)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/blocks/") && strings.HasSuffix(r.URL.Path, "/children"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/blocks/"), "/children")
		kids, ok := s.children[id]
		if !ok && s.pageOf[id] == "" && !strings.HasPrefix(id, "page-") {
			s.fail(w, 404, "object_not_found", "Could not find block with ID: "+id+". Make sure the relevant pages and databases are shared with your integration.")
			return
		}
		s.list(w, kids, cursor, size)
	default:
		s.fail(w, 400, "invalid_request_url", "Invalid request URL.")
	}
}

func TestNotion(t *testing.T) {
	sim := newNotionSim(0)
	sim.faults["/v1/search|"] = []int{429}
	sim.faults["/v1/blocks/page-a/children|cur-3"] = []int{500}
	sim.faults["/v1/blocks/blk-002/children|"] = []int{529}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "notion.yaml", map[string]string{"api_url": srv.URL, "token": notionToken}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	noSecret(t, r, notionToken)
	noDuplicates(t, r)
	// The pages, the subpage Gamma too (search lists it); not the database.
	sameIDs(t, "pages", []string{"page-a", "page-b", "page-c"}, ids(r.rows["pages"], "id"))
	for _, p := range r.rows["pages"] {
		if want := map[string]string{"page-a": "Alpha", "page-b": "Beta", "page-c": "Gamma"}[fmt.Sprint(p["id"])]; p["title"] != want {
			t.Errorf("page %v: title %v, want %s", p["id"], p["title"], want)
		}
	}
	// Every block once, under its parent and its own page: Gamma's blocks
	// under Gamma, read from search's Gamma, never under Alpha's
	// child_page block.
	var want, got []string
	for id, parent := range sim.parentOf {
		want = append(want, id+" < "+parent+" in "+sim.pageOf[id])
	}
	for _, b := range r.rows["blocks"] {
		got = append(got, fmt.Sprint(b["id"], " < ", b["parent_id"], " in ", b["page_id"]))
	}
	sameIDs(t, "blocks (id < parent in page)", want, got)
	for _, b := range r.rows["blocks"] {
		if b["id"] == "blk-012" && b["text"] != "Level 5" {
			t.Errorf("the level-5 paragraph: text %q", b["text"])
		}
	}
	// Each request carried the version and asked 100 a page.
	var children int
	for _, q := range sim.requests {
		if q.Header.Get("Notion-Version") != "2022-06-28" {
			t.Errorf("%s %s: Notion-Version %q", q.Method, q.URL, q.Header.Get("Notion-Version"))
		}
		if q.Method == http.MethodGet {
			children++
			if q.URL.Query().Get("page_size") != "100" {
				t.Errorf("%s: page_size %q, want 100", q.URL, q.URL.Query().Get("page_size"))
			}
		}
	}
	// Gamma's content is read once, as search's page (its blocks fit one
	// answer), never again under Alpha's child_page block.
	if n := len(requestsTo(&sim.mu, &sim.requests, "/v1/blocks/page-c/children")); n != 1 {
		t.Errorf("page-c's children asked %d times, want once", n)
	}
	if children == 0 || len(sim.faults["/v1/search|"])+len(sim.faults["/v1/blocks/page-a/children|cur-3"])+len(sim.faults["/v1/blocks/blk-002/children|"]) != 0 {
		t.Errorf("the faults were not all answered: %v", sim.faults)
	}
}

func TestNotionErrors(t *testing.T) {
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
			want:   []string{"blocks (pages[id=page-a] > blocks[id=blk-002] > blocks[id=blk-009])", "500"}},
		{name: "a tree deeper than max_depth", deep: 31,
			want: []string{"blocks (pages[id=page-b] > blocks[id=blk-025]", "blocks[id=blk-054])", "level 30, max_depth"}},
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
