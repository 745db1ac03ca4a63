// Package tree (engine/sim/tree) is an in-process API whose items form a
// tree of unknown depth, shaped as Notion's block children:
//
//   - GET /v1/pages lists the root pages: {"object": "list", "results":
//     [{"object": "page", "id"}], "has_more": false}.
//   - GET /v1/blocks/{id}/children?start_cursor=&page_size= lists a page's
//     or block's children, at most PageCap a page whatever page_size asks:
//     {"object": "list", "results": [block…], "next_cursor", "has_more"}.
//     A block is {"object": "block", "id", "type", "has_children", …};
//     has_children is left out when false on every other block, and
//     the optional "title" on every third one.
//   - GET /v1/comments?block_id= lists a page's or block's comments (one each).
//
// Unkind as the real API: requests chosen by Options.Throttle are
// answered 429 with Retry-After: 0 and Notion's error body, those chosen
// by Options.Fail 500. An unknown id is a 404. Every answer is generated
// from the ids, so [Server.Nodes] tells a test what a full read gives.
package tree

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server; the zero value is usable.
type Options struct {
	Roots   int // root pages (default 2)
	Depth   int // levels of blocks below a page (default 5)
	PageCap int // most results one answer holds (default 3)
	// Throttle says whether the n-th request (from 1) to a path (with its
	// query) is answered 429 with Retry-After: 0.
	Throttle func(path string, n int) bool
	// Fail says whether it is answered 500.
	Fail func(path string, n int) bool
	// OnRequest is called with the count of requests so far (from 1),
	// before the request is answered.
	OnRequest func(n int)
	// Latency is how long the answer to a path (with its query) waits.
	Latency func(path string) time.Duration
	// Cycle names a block whose children list its grandparent too (a
	// corrupt tree, or a link followed as a child).
	Cycle string
	// Share lists a block under a second parent too (Drive's file in two
	// folders): Share[block] is that other parent, whose children end
	// with it.
	Share map[string]string
}

// Node is one item of the tree: a block, its parent (a page or block id)
// and its level (1: a page's children).
type Node struct {
	ID, Parent  string
	Level       int
	HasChildren bool
}

// Server is the API.
type Server struct {
	opts  Options
	srv   *httptest.Server
	mu    sync.Mutex
	seen  map[string]int // requests by path and query
	total int
}

// New starts a Server; Close stops it.
func New(opts Options) *Server {
	if opts.Roots == 0 {
		opts.Roots = 2
	}
	if opts.Depth == 0 {
		opts.Depth = 5
	}
	if opts.PageCap == 0 {
		opts.PageCap = 3
	}
	s := &Server{opts: opts, seen: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Requests is how many requests the server was sent.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Pages are the root pages' ids.
func (s *Server) Pages() []string {
	var out []string
	for i := range s.opts.Roots {
		out = append(out, fmt.Sprintf("p%d", i+1))
	}
	return out
}

// Nodes lists every block of the tree once, level by level under each
// page (without the cycle's repeated grandparent or a shared block's
// second parent).
func (s *Server) Nodes() []Node {
	var out []Node
	for _, p := range s.Pages() {
		level := []Node{{ID: p}}
		for l := 1; len(level) > 0; l++ {
			var next []Node
			for _, n := range level {
				for _, c := range s.children(n.ID, l-1) {
					next = append(next, Node{ID: c, Parent: n.ID, Level: l, HasChildren: len(s.children(c, l)) > 0})
				}
			}
			out = append(out, next...)
			level = next
		}
	}
	return out
}

// children are the ids of the children of id, at level+1; level 0 is a page.
func (s *Server) children(id string, level int) []string {
	if level >= s.opts.Depth {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	n := int(h.Sum32() % 4) // 0..3
	if level == 0 || strings.HasSuffix(id, ".0") {
		// A page, and the first child of each block, always go deeper:
		// the tree reaches Depth under every page.
		n += 2
	}
	out := make([]string, n)
	for i := range n {
		out[i] = id + "." + strconv.Itoa(i)
	}
	return out
}

// levelOf is the level of a block id (p1.0.2 is at level 2), 0 for a page,
// -1 for an id the tree does not have.
func (s *Server) levelOf(id string) int {
	parts := strings.Split(id, ".")
	if len(parts) == 0 || !strings.HasPrefix(parts[0], "p") {
		return -1
	}
	if i, err := strconv.Atoi(parts[0][1:]); err != nil || i < 1 || i > s.opts.Roots {
		return -1
	}
	for l := 1; l < len(parts); l++ {
		i, err := strconv.Atoi(parts[l])
		if err != nil || i >= len(s.children(strings.Join(parts[:l], "."), l-1)) {
			return -1
		}
	}
	return len(parts) - 1
}

func (s *Server) block(id string, level int) map[string]any {
	b := map[string]any{"object": "block", "id": id, "type": "paragraph", "paragraph": map[string]any{"text": "text of " + id}}
	has := len(s.children(id, level)) > 0 || id == grandparent(s.opts.Cycle)
	if has || len(id)%2 == 0 {
		b["has_children"] = has
	}
	if len(id)%3 != 0 {
		b["title"] = "block " + id
	}
	return b
}

// grandparent of a block id, "" for none.
func grandparent(id string) string {
	parts := strings.Split(id, ".")
	if len(parts) < 3 {
		return ""
	}
	return strings.Join(parts[:len(parts)-2], ".")
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Path + "?" + r.URL.RawQuery
	s.mu.Lock()
	s.seen[key]++
	s.total++
	n, total := s.seen[key], s.total
	s.mu.Unlock()
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(total)
	}
	if s.opts.Latency != nil {
		time.Sleep(s.opts.Latency(key))
	}
	w.Header().Set("Content-Type", "application/json")
	fail := func(status int, code, msg string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "error", "status": status, "code": code, "message": msg})
	}
	switch {
	case s.opts.Throttle != nil && s.opts.Throttle(key, n):
		w.Header().Set("Retry-After", "0")
		fail(http.StatusTooManyRequests, "rate_limited", "You have been rate limited. Please try again in a few minutes.")
		return
	case s.opts.Fail != nil && s.opts.Fail(key, n):
		fail(http.StatusInternalServerError, "internal_server_error", "Unexpected error occurred.")
		return
	}
	switch {
	case r.URL.Path == "/v1/pages":
		var res []any
		for _, p := range s.Pages() {
			res = append(res, map[string]any{"object": "page", "id": p})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "results": res, "next_cursor": nil, "has_more": false})
	case r.URL.Path == "/v1/comments":
		id := r.URL.Query().Get("block_id")
		if s.levelOf(id) < 0 {
			fail(http.StatusNotFound, "object_not_found", "Could not find block with ID: "+id)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "results": []any{map[string]any{"object": "comment", "id": "c-" + id}}, "next_cursor": nil, "has_more": false})
	case strings.HasPrefix(r.URL.Path, "/v1/blocks/") && strings.HasSuffix(r.URL.Path, "/children"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/blocks/"), "/children")
		level := s.levelOf(id)
		if level < 0 {
			fail(http.StatusNotFound, "object_not_found", "Could not find block with ID: "+id)
			return
		}
		kids := s.children(id, level)
		if id == s.opts.Cycle {
			kids = append(kids, grandparent(id))
		}
		for block, parent := range s.opts.Share {
			if parent == id {
				kids = append(kids, block)
			}
		}
		start := 0
		if c := r.URL.Query().Get("start_cursor"); c != "" {
			i, err := strconv.Atoi(strings.TrimPrefix(c, "cur-"))
			if err != nil || i < 0 || i > len(kids) {
				fail(http.StatusBadRequest, "validation_error", "start_cursor is invalid")
				return
			}
			start = i
		}
		size := 100
		if q := r.URL.Query().Get("page_size"); q != "" {
			if v, err := strconv.Atoi(q); err == nil && v > 0 {
				size = min(v, 100)
			}
		}
		size = min(size, s.opts.PageCap)
		end := min(start+size, len(kids))
		res := []any{}
		for _, k := range kids[start:end] {
			res = append(res, s.block(k, max(s.levelOf(k), 0)))
		}
		body := map[string]any{"object": "list", "results": res, "next_cursor": nil, "has_more": end < len(kids), "type": "block", "block": map[string]any{}}
		if end < len(kids) {
			body["next_cursor"] = "cur-" + strconv.Itoa(end)
		}
		_ = json.NewEncoder(w).Encode(body)
	default:
		fail(http.StatusNotFound, "object_not_found", "no route "+r.URL.Path)
	}
}
