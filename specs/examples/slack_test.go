package examples_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// slackSim answers conversations.list, conversations.history and
// users.list as Slack's Web API does, where testdata/slack-api.yaml is
// kinder (every list fits in one page there). Facts (api.slack.com/docs/
// pagination, the methods' pages): a list pages by
// response_metadata.next_cursor, "" (or no response_metadata) on the last
// page; `limit` is a most, not a promise: "fewer than the requested number
// of items may be returned, even if the end of the list hasn't been
// reached", and conversations.list, which filters by `types` after it cuts
// a page, can answer a page of no channels with a next cursor;
// conversations.history says has_more beside the cursor; errors are HTTP
// 200 {"ok": false, "error"}; a rate limit is a 429 with Retry-After.
type slackSim struct {
	channels []map[string]any
	messages map[string][]map[string]any // channel id -> messages, newest first
	users    []map[string]any

	// servePage is the most items a page serves, whatever limit asks.
	servePage int
	// hasMoreNoCursor: conversations.history answers a page that says
	// has_more true with next_cursor "" (the end of the cursor, not of the
	// list).
	hasMoreNoCursor bool

	mu      sync.Mutex
	limited bool
}

func newSlackSim() *slackSim {
	s := &slackSim{servePage: 3, messages: map[string][]map[string]any{}}
	for i := range 7 {
		id := fmt.Sprintf("C%02d", i)
		s.channels = append(s.channels, map[string]any{"id": id, "name": fmt.Sprintf("ch-%d", i), "is_private": false,
			"is_archived": i >= 3 && i < 6, "created": 1700000000 + i, "topic": map[string]any{"value": ""}, "purpose": map[string]any{"value": ""}, "num_members": 2})
		for j := range 5 {
			m := map[string]any{"type": "message", "text": fmt.Sprintf("m %d.%d", i, j), "ts": fmt.Sprintf("17000%05d.%06d", 100-j, i)}
			if j%2 == 0 {
				m["user"] = "U1"
			} else { // a bot's message: no user
				m["subtype"], m["bot_id"] = "bot_message", "B1"
			}
			s.messages[id] = append(s.messages[id], m)
		}
	}
	for i := range 8 {
		s.users = append(s.users, map[string]any{"id": fmt.Sprintf("U%d", i), "name": fmt.Sprintf("u%d", i), "deleted": i == 3,
			"is_bot": false, "profile": map[string]any{}})
	}
	return s
}

// page serves items from the cursor (an index), at most servePage of them.
func (s *slackSim) page(w http.ResponseWriter, r *http.Request, key string, items []map[string]any) {
	at := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 || n > len(items) {
			writeJSON(w, 200, map[string]any{"ok": false, "error": "invalid_cursor"})
			return
		}
		at = n
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > s.servePage {
		limit = s.servePage
	}
	end := min(at+limit, len(items))
	body := map[string]any{"ok": true}
	page := []map[string]any{}
	for _, it := range items[at:end] {
		// exclude_archived filters a page after it is cut: C03..C05's
		// page is empty, with a next cursor.
		if key == "channels" && it["is_archived"] == true && r.URL.Query().Get("exclude_archived") == "true" {
			continue
		}
		page = append(page, it)
	}
	body[key] = page
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	if key == "messages" {
		body["has_more"] = next != ""
		if s.hasMoreNoCursor && next != "" {
			next = ""
		}
	}
	body["response_metadata"] = map[string]any{"next_cursor": next}
	writeJSON(w, 200, body)
}

func (s *slackSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer xoxb-t" {
		writeJSON(w, 200, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	switch r.URL.Path {
	case "/conversations.list":
		s.page(w, r, "channels", s.channels)
	case "/conversations.history":
		s.page(w, r, "messages", s.messages[r.URL.Query().Get("channel")])
	case "/users.list":
		s.mu.Lock()
		first := !s.limited && r.URL.Query().Get("cursor") != ""
		s.limited = s.limited || first
		s.mu.Unlock()
		if first { // a rate limit mid-chain
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, map[string]any{"ok": false, "error": "ratelimited"})
			return
		}
		s.page(w, r, "members", s.users)
	default:
		writeJSON(w, 200, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

// Slack as it pages: short pages, a page of no channels that has a next
// cursor, a 429 mid-chain. Every channel, message and user is written.
func TestSlackRealPaging(t *testing.T) {
	t.Parallel()
	sim := newSlackSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "slack.yaml", map[string]string{"api_url": srv.URL, "token": "xoxb-t"}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.said)
	}
	// C03..C05 are archived, left out by exclude_archived.
	wantCh := []string{"C00", "C01", "C02", "C06"}
	sameIDs(t, "channels", wantCh, ids(r.rows["channels"], "id"))
	if got, want := len(r.rows["messages"]), 5*len(wantCh); got != want {
		t.Errorf("messages = %d, want %d", got, want)
	}
	for _, m := range r.rows["messages"] {
		if _, ok := m["user"]; !ok {
			t.Errorf("a message row without the user column (a bot's message has no user: null): %v", m)
		}
	}
	if got := len(r.rows["users"]); got != len(sim.users) {
		t.Errorf("users = %d, want %d", got, len(sim.users))
	}
	noDuplicates(t, r)
}

// A history page that says has_more true without a next cursor ends the
// cursor, not the list: the messages after it are unread, so the run
// fails rather than exit 0 with part of each channel.
func TestSlackHasMoreWithoutCursorFails(t *testing.T) {
	t.Parallel()
	sim := newSlackSim()
	sim.hasMoreNoCursor = true
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "slack.yaml", map[string]string{"api_url": srv.URL, "token": "xoxb-t"}, time.Time{})
	failedRun(t, r, []string{"has_more"})
}
