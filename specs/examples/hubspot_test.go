package examples_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
)

// hsSim answers HubSpot's CRM v3 object lists and searches as the service
// does (facts in testdata/hubspot.md): a private app token as a bearer
// token; lists paged by an opaque `after` (paging absent on the last
// page), at most 100 a page (more asked, 100 served, no word of it);
// searches POSTed with filterGroups, sorts, properties, limit (at most
// 200, more is a 400) and after, never past 10,000 results (a 400), ties
// of the sort property in an order that changes from request to request,
// archived records left out; 4 searches a second (a 429 with policyName
// SECONDLY beyond), requested properties only (unset ones omitted);
// errors {"status": "error", "message", "correlationId", "category"}.
// The other endpoints share the general limit, a rolling window (at most
// generalMax requests in any generalWindow, counted as they arrive; a 429
// with policyName TEN_SECONDLY_ROLLING beyond), whose headers come on
// each of their answers: X-HubSpot-RateLimit-Max, -Interval-Milliseconds
// and -Remaining, what is left once the request is counted.
type hsSim struct {
	token string
	// searchPerSecond is the search endpoints' limit (HubSpot's: 4).
	searchPerSecond int
	// generalMax requests in any generalWindow: the general limit
	// (HubSpot's lowest tier: 100 in 10 s).
	generalMax    int
	generalWindow time.Duration

	mu      sync.Mutex
	objects map[string][]*hsObject // by type: contacts, companies, deals
	// requests by path, in order; bodies of the searches.
	requests []*http.Request
	searches []hsSearch
	window   []time.Time // searches in the last second
	limited  int         // 429s of the search limit
	general  []time.Time // other requests in the last generalWindow
	// generalLimited counts the 429s of the general limit.
	generalLimited int
	// faults[path][n] answers the n-th request (from 1) to path with a
	// fault: a status (429 is TEN_SECONDLY_ROLLING), or -1 for DAILY.
	faults map[string]map[int]int
	seen   map[string]int
	// onSearch runs before each search is answered (n counts them per
	// path, from 1): a test changes records between pages there.
	onSearch func(path string, n int)
}

type hsObject struct {
	id         string
	props      map[string]string
	created    time.Time
	modified   time.Time
	archivedAt time.Time // zero: not archived
	companies  []string  // deals: associated company ids
}

// hsSearch is what a search asked.
type hsSearch struct {
	Path         string
	FilterGroups []struct {
		Filters []struct{ PropertyName, Operator, Value string }
	}
	Sorts      []struct{ PropertyName, Direction string }
	Properties []string
	Limit      *int
	After      string
}

const hsToken = "pat-na1-5f3c2b1a-0e9d-4c8b-a7f6-SIMONLY0000001"

// hsModified is the property holding a type's last-modified time.
func hsModified(typ string) string {
	if typ == "contacts" {
		return "lastmodifieddate"
	}
	return "hs_lastmodifieddate"
}

func hsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func newHSSim() *hsSim {
	return &hsSim{token: hsToken, searchPerSecond: 4, generalMax: 100, generalWindow: 10 * time.Second, objects: map[string][]*hsObject{},
		faults: map[string]map[int]int{}, seen: map[string]int{}}
}

// add makes n records of typ, modified from start, step apart (a step of 0
// makes them all one millisecond: a bulk import).
func (s *hsSim) add(typ string, n int, start time.Time, step time.Duration) []*hsObject {
	var out []*hsObject
	for range n {
		id := strconv.Itoa(1000 + len(s.objects["contacts"]) + len(s.objects["companies"]) + len(s.objects["deals"]))
		k := len(s.objects[typ])
		o := &hsObject{id: id, created: start.Add(-time.Hour), modified: start.Add(time.Duration(k) * step), props: map[string]string{}}
		switch typ {
		case "contacts":
			o.props["email"] = fmt.Sprintf("c%s@example.com", id)
			o.props["firstname"] = "Ada" + id
			if k%3 != 0 {
				o.props["lastname"] = "Lovelace" // unset properties are omitted
			}
		case "companies":
			o.props["name"] = "Company " + id
			o.props["domain"] = "c" + id + ".example.com"
		case "deals":
			o.props["dealname"] = "Deal " + id
			o.props["amount"] = strconv.Itoa(k * 100)
			o.props["dealstage"] = "appointmentscheduled"
		}
		s.objects[typ] = append(s.objects[typ], o)
		out = append(out, o)
	}
	return out
}

// value is a record's property as the API gives it.
func (o *hsObject) value(typ, name string) (string, bool) {
	switch name {
	case hsModified(typ):
		return hsTime(o.modified), true
	case "createdate":
		return hsTime(o.created), true
	case "hs_object_id":
		return o.id, true
	}
	v, ok := o.props[name]
	return v, ok
}

func (s *hsSim) json(o *hsObject, typ string, props []string) map[string]any {
	p := map[string]any{"hs_object_id": o.id}
	for _, name := range props {
		if v, ok := o.value(typ, name); ok {
			p[name] = v
		}
	}
	out := map[string]any{"id": o.id, "properties": p, "createdAt": hsTime(o.created), "updatedAt": hsTime(o.modified), "archived": !o.archivedAt.IsZero()}
	if !o.archivedAt.IsZero() {
		out["archivedAt"] = hsTime(o.archivedAt)
	}
	return out
}

func hsError(w http.ResponseWriter, status int, category, message string) {
	writeJSON(w, status, map[string]any{"status": "error", "message": message,
		"correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "category": category})
}

func (s *hsSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	s.seen[r.URL.Path]++
	n := s.seen[r.URL.Path]
	fault := s.faults[r.URL.Path][n]
	s.mu.Unlock()

	if r.Header.Get("Authorization") != "Bearer "+s.token {
		hsError(w, 401, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
		return
	}
	h := w.Header()
	search := strings.HasSuffix(r.URL.Path, "/search")
	if !search {
		// The general limits' headers come on the other endpoints' answers.
		h.Set("X-HubSpot-RateLimit-Daily", "500000")
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", "499000")
		left, ok := s.generalLimit()
		h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(s.generalMax))
		h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", strconv.FormatInt(s.generalWindow.Milliseconds(), 10))
		h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(left))
		if !ok {
			writeJSON(w, 429, map[string]any{"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
				"errorType": "RATE_LIMIT", "correlationId": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a", "policyName": "TEN_SECONDLY_ROLLING", "groupName": "publicapi:private-app:api-calls"})
			return
		}
	}
	switch fault {
	case 0:
	case http.StatusTooManyRequests:
		h.Set("X-HubSpot-RateLimit-Remaining", "0")
		writeJSON(w, 429, map[string]any{"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
			"errorType": "RATE_LIMIT", "correlationId": "3b7ef0c5-5a3b-4d0c-9a55-2d6f8b1c0e11", "policyName": "TEN_SECONDLY_ROLLING", "groupName": "publicapi:private-app:api-calls"})
		return
	case -1:
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", "0")
		writeJSON(w, 429, map[string]any{"status": "error", "message": "You have reached your daily limit.",
			"errorType": "RATE_LIMIT", "correlationId": "0c2d1f4e-9b8a-4c6d-8e1f-7a6b5c4d3e2f", "policyName": "DAILY", "groupName": "publicapi:private-app:api-calls"})
		return
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fault)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", fault, http.StatusText(fault))
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 5 && parts[0] == "crm" && parts[1] == "v3" && parts[2] == "objects" && parts[4] == "search" && r.Method == http.MethodPost:
		s.search(w, r, parts[3], n)
	case len(parts) == 4 && parts[0] == "crm" && parts[1] == "v3" && parts[2] == "objects" && r.Method == http.MethodGet:
		s.list(w, r, parts[3])
	default:
		hsError(w, 404, "OBJECT_NOT_FOUND", "resource not found")
	}
}

// generalLimit counts a request against the general limit: ok is false
// when the window is full (the request refused, not counted), and left
// what remains of it once the request is counted.
func (s *hsSim) generalLimit() (left int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	kept := s.general[:0]
	for _, t := range s.general {
		if now.Sub(t) < s.generalWindow {
			kept = append(kept, t)
		}
	}
	s.general = kept
	if len(s.general) >= s.generalMax {
		s.generalLimited++
		return 0, false
	}
	s.general = append(s.general, now)
	return s.generalMax - len(s.general), true
}

// searchLimited keeps searchPerSecond searches in any second.
func (s *hsSim) searchLimited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	kept := s.window[:0]
	for _, t := range s.window {
		if now.Sub(t) < time.Second {
			kept = append(kept, t)
		}
	}
	s.window = kept
	if len(s.window) >= s.searchPerSecond {
		s.limited++
		return true
	}
	s.window = append(s.window, now)
	return false
}

func (s *hsSim) search(w http.ResponseWriter, r *http.Request, typ string, n int) {
	if s.searchLimited() {
		// The search endpoints' own limit: no rate limit headers.
		writeJSON(w, 429, map[string]any{"status": "error", "message": "You have reached your secondly limit.",
			"errorType": "RATE_LIMIT", "correlationId": "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b", "policyName": "SECONDLY"})
		return
	}
	var q hsSearch
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		hsError(w, 400, "VALIDATION_ERROR", "Invalid input JSON on line 1: "+err.Error())
		return
	}
	q.Path = r.URL.Path
	s.mu.Lock()
	s.searches = append(s.searches, q)
	hook := s.onSearch
	s.mu.Unlock()
	if hook != nil {
		hook(r.URL.Path, n)
	}
	limit := 10
	if q.Limit != nil {
		limit = *q.Limit
	}
	if limit < 1 || limit > 200 {
		hsError(w, 400, "VALIDATION_ERROR", fmt.Sprintf("limit must be between 1 and 200, got %d", limit))
		return
	}
	offset := 0
	if q.After != "" {
		var err error
		if offset, err = strconv.Atoi(q.After); err != nil || offset < 0 {
			hsError(w, 400, "VALIDATION_ERROR", "Invalid after: "+q.After)
			return
		}
	}
	if offset >= 10000 {
		hsError(w, 400, "VALIDATION_ERROR", "The search endpoints are limited to 10,000 total results for any given query.")
		return
	}
	s.mu.Lock()
	var match []*hsObject
	for _, o := range s.objects[typ] {
		if o.archivedAt.IsZero() && hsMatches(o, typ, q) {
			match = append(match, o)
		}
	}
	// Sorted by the sort property; ties in an order of this request's own.
	if len(q.Sorts) > 0 {
		sp, desc := q.Sorts[0].PropertyName, q.Sorts[0].Direction == "DESCENDING"
		shuffle := func(o *hsObject) uint32 {
			f := fnv.New32a()
			fmt.Fprintf(f, "%s|%d", o.id, len(s.searches))
			return f.Sum32()
		}
		sort.SliceStable(match, func(i, j int) bool {
			a, _ := match[i].value(typ, sp)
			b, _ := match[j].value(typ, sp)
			if a != b {
				return (a < b) != desc
			}
			return shuffle(match[i]) < shuffle(match[j])
		})
	}
	props := q.Properties
	if props == nil {
		props = map[string][]string{"contacts": {"createdate", "email", "firstname", "lastmodifieddate", "lastname"},
			"companies": {"createdate", "domain", "hs_lastmodifieddate", "name"}}[typ]
	}
	end := min(offset+limit, len(match))
	results := []any{}
	for _, o := range match[min(offset, len(match)):end] {
		results = append(results, s.json(o, typ, props))
	}
	s.mu.Unlock()
	body := map[string]any{"total": len(match), "results": results}
	if end < len(match) {
		body["paging"] = map[string]any{"next": map[string]any{"after": strconv.Itoa(end), "link": "?after=" + strconv.Itoa(end)}}
	}
	writeJSON(w, 200, body)
}

// hsMatches applies a search's filter groups (OR of ANDs) to o; an unset
// property matches no comparison.
func hsMatches(o *hsObject, typ string, q hsSearch) bool {
	if len(q.FilterGroups) == 0 {
		return true
	}
	for _, g := range q.FilterGroups {
		all := true
		for _, f := range g.Filters {
			v, ok := o.value(typ, f.PropertyName)
			if !ok {
				all = false
				break
			}
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				// Dates compare as epoch milliseconds.
				v = strconv.FormatInt(t.UnixMilli(), 10)
			}
			a, aerr := strconv.ParseInt(v, 10, 64)
			b, berr := strconv.ParseInt(f.Value, 10, 64)
			cmp := strings.Compare(v, f.Value)
			if aerr == nil && berr == nil {
				cmp = map[bool]int{true: -1, false: 1}[a < b]
				if a == b {
					cmp = 0
				}
			}
			ok = map[string]bool{"EQ": cmp == 0, "GT": cmp > 0, "GTE": cmp >= 0, "LT": cmp < 0, "LTE": cmp <= 0}[f.Operator]
			if !ok {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (s *hsSim) list(w http.ResponseWriter, r *http.Request, typ string) {
	q := r.URL.Query()
	limit, ok := queryInt(q, "limit", 10, 1)
	if !ok {
		hsError(w, 400, "VALIDATION_ERROR", "Invalid limit")
		return
	}
	limit = min(limit, 100) // more asked, 100 served
	offset := 0
	if a := q.Get("after"); a != "" {
		b, err := base64.RawURLEncoding.DecodeString(a)
		if offset, _ = strconv.Atoi(string(b)); err != nil || offset <= 0 {
			hsError(w, 400, "VALIDATION_ERROR", "Invalid after: "+a)
			return
		}
	}
	archived := q.Get("archived") == "true"
	s.mu.Lock()
	var match []*hsObject
	for _, o := range s.objects[typ] {
		if !o.archivedAt.IsZero() == archived {
			match = append(match, o)
		}
	}
	props := strings.Split(q.Get("properties"), ",")
	end := min(offset+limit, len(match))
	results := []any{}
	for _, o := range match[min(offset, len(match)):end] {
		j := s.json(o, typ, props)
		if q.Get("associations") == "companies" && len(o.companies) > 0 {
			// Each company twice, once per association type; the list
			// carries 100 inline and says so by paging when there are more.
			var as []any
			for _, c := range o.companies {
				as = append(as, map[string]any{"id": c, "type": "deal_to_company"}, map[string]any{"id": c, "type": "deal_to_company_unlabeled"})
			}
			a := map[string]any{"results": as}
			if len(as) > 100 {
				a["results"] = as[:100]
				a["paging"] = map[string]any{"next": map[string]any{"after": "MTAw", "link": "?after=MTAw"}}
			}
			j["associations"] = map[string]any{"companies": a}
		}
		results = append(results, j)
	}
	s.mu.Unlock()
	body := map[string]any{"results": results}
	if end < len(match) {
		after := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		body["paging"] = map[string]any{"next": map[string]any{"after": after, "link": "https://api.hubapi.com" + r.URL.Path + "?after=" + after}}
	}
	writeJSON(w, 200, body)
}

func (s *hsSim) fault(path string, n, status int) {
	if s.faults[path] == nil {
		s.faults[path] = map[int]int{}
	}
	s.faults[path][n] = status
}

// live lists the ids of typ's records that are not archived (archived:
// those that are).
func (s *hsSim) ids(typ string, archived bool) []string {
	var out []string
	for _, o := range s.objects[typ] {
		if !o.archivedAt.IsZero() == archived {
			out = append(out, o.id)
		}
	}
	return out
}

func (s *hsSim) searchesTo(typ string) []hsSearch {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []hsSearch
	for _, q := range s.searches {
		if q.Path == "/crm/v3/objects/"+typ+"/search" {
			out = append(out, q)
		}
	}
	return out
}

// hsFixture: 650 contacts (four pages and a bit; ten of them modified in
// one millisecond across the first page's end, and every third without a
// last name), 120 companies, 250 deals (each of the first 40 with two
// companies, each company under two association types; the rest none,
// no associations key at all), and a few archived records of each type.
func hsFixture() *hsSim {
	s := newHSSim()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s.add("contacts", 195, base, time.Minute)
	tie := base.Add(195 * time.Minute)
	for _, o := range s.add("contacts", 10, tie, 0) {
		o.modified = tie
	}
	for _, o := range s.add("contacts", 445, base.Add(200*time.Minute), time.Minute) {
		o.modified = o.modified.Add(7 * time.Millisecond)
	}
	companies := s.add("companies", 120, base, 90*time.Second)
	deals := s.add("deals", 250, base, 30*time.Second)
	for i, d := range deals[:40] {
		d.companies = []string{companies[i].id, companies[i+1].id}
	}
	for typ, n := range map[string]int{"contacts": 3, "companies": 2, "deals": 4} {
		for _, o := range s.objects[typ][:n] {
			o.archivedAt = base.Add(48 * time.Hour)
		}
	}
	return s
}

func hsSets(url string) map[string]string {
	return map[string]string{"api_url": url, "token": hsToken}
}

// distinct reports the rows' ids once each, and how many rows repeated one.
func distinct(rows []map[string]any, name string) (ids []string, repeats int) {
	seen := map[string]bool{}
	for _, id := range column(rows, name) {
		if seen[id] {
			repeats++
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, repeats
}

// HubSpot: every live contact, company and deal written, by a search that
// moves its filter instead of paging by `after`; records sharing the last
// date of a page asked again, not lost (their repeats the only ones);
// each deal's companies once per association type; archived records in
// their own table; a TEN_SECONDLY_ROLLING 429, a 502 and a 504 retried
// mid-chain; the token never printed.
func TestHubSpot(t *testing.T) {
	t.Parallel()
	sim := hsFixture()
	sim.fault("/crm/v3/objects/contacts/search", 2, 429)
	sim.fault("/crm/v3/objects/contacts/search", 3, 502)
	sim.fault("/crm/v3/objects/deals", 2, 504)
	// The general limit scaled down (5 requests in any 2 s, so the test
	// is short), below what the spec's ceiling lets through: its headers
	// say so on every list answer, and the run keeps to them.
	sim.generalMax, sim.generalWindow = 5, 2*time.Second
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "hubspot.yaml", hsSets(srv.URL), time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	for _, typ := range []string{"contacts", "companies", "deals"} {
		got, repeats := distinct(r.rows[typ], "id")
		sameIDs(t, typ, sim.ids(typ, false), got)
		pages := len(sim.searchesTo(typ))
		// A page's last record (and those sharing its date) comes again
		// at the top of the next: never more than the ten of the tie.
		if repeats > 10+pages {
			t.Errorf("%s: %d rows repeat an id over %d searches", typ, repeats, pages)
		}
		for _, q := range sim.searchesTo(typ) {
			if q.After != "" {
				t.Errorf("%s: a search sent after=%s: it would page into the 10,000 cap", typ, q.After)
			}
			if !slices.Contains(q.Properties, hsModified(typ)) || len(q.Properties) < 3 {
				t.Errorf("%s: a search asked properties %v", typ, q.Properties)
			}
			f := q.FilterGroups[0].Filters[0]
			if f.PropertyName != hsModified(typ) || f.Operator != "GTE" {
				t.Errorf("%s: filter %+v, want %s GTE", typ, f, hsModified(typ))
			}
			if _, err := strconv.ParseInt(f.Value, 10, 64); err != nil {
				t.Errorf("%s: filter value %q is no epoch in milliseconds", typ, f.Value)
			}
		}
	}
	if n := len(requestsTo(&sim.mu, &sim.requests, "/crm/v3/objects/contacts/search")); n < 6 {
		t.Errorf("%d contact searches, want at least 5 (650 at 200 a page, a 429 and a 502 retried)", n)
	}
	for _, row := range r.rows["contacts"] {
		if row["id"] == "1001" && (row["email"] != "c1001@example.com" || row["lastname"] != "Lovelace" || row["updated_at"] == nil) {
			t.Errorf("contact 1001 = %v", row)
		}
	}
	var wantPairs []string
	for _, d := range sim.objects["deals"] {
		if !d.archivedAt.IsZero() {
			continue // the list leaves archived deals out
		}
		for _, c := range d.companies {
			wantPairs = append(wantPairs, d.id+"/"+c+"/deal_to_company", d.id+"/"+c+"/deal_to_company_unlabeled")
		}
	}
	var gotPairs []string
	for _, row := range r.rows["deal_companies"] {
		gotPairs = append(gotPairs, fmt.Sprintf("%v/%v/%v", row["deal_id"], row["company_id"], row["type"]))
	}
	sameIDs(t, "deal-company associations, each once", wantPairs, gotPairs)
	var wantArchived, gotArchived []string
	for _, typ := range []string{"contacts", "companies", "deals"} {
		for _, id := range sim.ids(typ, true) {
			wantArchived = append(wantArchived, typ+"/"+id)
		}
	}
	for _, row := range r.rows["archived"] {
		gotArchived = append(gotArchived, fmt.Sprintf("%v/%v", row["object_type"], row["id"]))
		if row["archived_at"] == nil {
			t.Errorf("archived row without archived_at: %v", row)
		}
	}
	sameIDs(t, "archived records", wantArchived, gotArchived)
	for _, req := range sim.requests {
		if req.Method == http.MethodGet && req.URL.Query().Get("limit") != "100" {
			t.Errorf("list request %s: limit is not 100", req.URL)
		}
	}
	if s := stream(r.res, "contacts"); s.Retries < 2 {
		t.Errorf("contacts retries = %d, want at least 2 (the 429, the 502)", s.Retries)
	}
	// The 504 hits the second request to /crm/v3/objects/deals, of either
	// stream that lists deals.
	if n := stream(r.res, "deal_associations").Retries + stream(r.res, "archived").Retries; n < 1 {
		t.Errorf("retries of the deal lists = %d, want at least 1 (the 504)", n)
	}
	t.Logf("%d requests, %d searches refused by the 4-a-second limit, %d requests by the general limit", len(sim.requests), sim.limited, sim.generalLimited)
	if sim.generalLimited > 0 {
		t.Errorf("%d requests refused by the general limit, whose budget every answer announced (rate_limit_headers): want none", sim.generalLimited)
	}
	noSecret(t, r, hsToken)
}

// HubSpot's search never goes past its 10,000th result (a 400): the
// example reads 10,500 contacts, every one, without a page past it; the
// naive spec that pages by `after` fails there, naming the stream and
// HubSpot's message, rather than end short with exit 0.
func TestHubSpotSearchCap(t *testing.T) {
	t.Parallel()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	t.Run("keyset", func(t *testing.T) {
		sim := newHSSim()
		sim.add("contacts", 10500, base, time.Second)
		srv := httptest.NewServer(sim)
		defer srv.Close()
		r := runVendor(t, "hubspot.yaml", hsSets(srv.URL), time.Time{})
		if r.err != nil {
			t.Fatalf("run: %v", r.err)
		}
		got, repeats := distinct(r.rows["contacts"], "id")
		sameIDs(t, "contacts", sim.ids("contacts", false), got)
		searches := sim.searchesTo("contacts")
		if repeats > len(searches) {
			t.Errorf("%d repeated rows over %d searches: more than each page's last record", repeats, len(searches))
		}
		for _, q := range searches {
			if q.After != "" {
				t.Fatalf("a search sent after=%s", q.After)
			}
		}
		t.Logf("%d searches, %d refused by the 4-a-second limit", len(searches), sim.limited)
		noSecret(t, r, hsToken)
	})
	t.Run("after", func(t *testing.T) {
		sim := newHSSim()
		sim.searchPerSecond = 1000 // the naive spec has no rate ceiling: not what is tested here
		sim.add("contacts", 10500, base, time.Second)
		srv := httptest.NewServer(sim)
		defer srv.Close()
		r := runVendor(t, "testdata/hubspot-after-paging.yaml", hsSets(srv.URL), time.Time{})
		failedRun(t, r, []string{"contacts", "limited to 10,000 total results", "VALIDATION_ERROR"})
		if n := len(r.rows["contacts"]); n != 10000 {
			t.Errorf("%d rows before the cap, want 10000", n)
		}
		noSecret(t, r, hsToken)
	})
}

// More records modified in one millisecond than a page holds (a bulk
// import) cannot be passed by moving the filter: the next page's filter
// is the same date again. The run fails naming the stream, and writes
// what it read, rather than skip the rest of them.
func TestHubSpotTieBeyondAPage(t *testing.T) {
	t.Parallel()
	sim := newHSSim()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	sim.add("contacts", 50, base, time.Minute)
	sim.add("contacts", 250, base.Add(time.Hour), 0)
	sim.add("contacts", 20, base.Add(2*time.Hour), time.Minute)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	r := runVendor(t, "hubspot.yaml", hsSets(srv.URL), time.Time{})
	failedRun(t, r, []string{"contacts", "no progress"})
	noSecret(t, r, hsToken)
}

// HubSpot's errors fail the run with their message, category and
// correlation id, naming the stream; a DAILY limit fails at once instead
// of waiting for tomorrow; a deal whose companies do not all come inline
// fails its row; the token is never printed.
func TestHubSpotErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		token string
		setup func(*hsSim)
		want  []string
	}{
		{name: "a wrong token", token: "pat-na1-00000000-wrong",
			want: []string{"Authentication credentials not found", "INVALID_AUTHENTICATION", "aeb5f871-7f07-4993-9211-075dc63e7cbf"}},
		{name: "the daily limit", setup: func(s *hsSim) { s.fault("/crm/v3/objects/companies/search", 1, -1) },
			want: []string{"companies", "daily API limit is spent", "You have reached your daily limit."}},
		{name: "a 502 on every attempt", setup: func(s *hsSim) {
			for n := 1; n <= 10; n++ {
				s.fault("/crm/v3/objects/deals/search", n, 502)
			}
		}, want: []string{"deals", "502"}},
		{name: "more companies than come inline", setup: func(s *hsSim) {
			d := s.objects["deals"][100]
			for _, c := range s.objects["companies"][:60] {
				d.companies = append(d.companies, c.id)
			}
		}, want: []string{"deal_companies", "has more companies than the list gives inline"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := hsFixture()
			if c.setup != nil {
				c.setup(sim)
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := hsSets(srv.URL)
			if c.token != "" {
				sets["token"] = c.token
			}
			start := time.Now()
			r := runVendor(t, "hubspot.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the run took %v: a refusal waited out", d)
			}
			noSecret(t, r, hsToken, sets["token"])
		})
	}
}

// HubSpot, incrementally: the first sync reads everything (a contact
// changed while it is read moves behind the filter and is read again, its
// later version kept); the next sync asks from 5 minutes before the
// largest date written, so it reads only what changed since (and the few
// records of those last 5 minutes again), and its rows update the table.
func TestHubSpotIncremental(t *testing.T) {
	t.Parallel()
	sim := hsFixture()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "hubspot.db")
	moved := sim.objects["contacts"][10]
	// The second contacts search answered: n counts the requests, and a
	// search the simulator refused (its 4-a-second limit) calls no hook.
	answered := 0
	sim.onSearch = func(path string, n int) {
		if path != "/crm/v3/objects/contacts/search" {
			return
		}
		if answered++; answered == 2 {
			sim.mu.Lock()
			moved.props["firstname"] = "Renamed mid-read"
			moved.modified = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
			sim.mu.Unlock()
		}
	}
	r := runVendorOpts(t, "hubspot.yaml", hsSets(srv.URL), engine.RunOptions{Dest: "sqlite:" + db})
	if r.err != nil {
		t.Fatalf("first sync: %v", r.err)
	}
	if got := query(t, db, `SELECT firstname FROM hubspot__contacts WHERE id = '`+moved.id+`'`); !slices.Equal(got, []string{"Renamed mid-read"}) {
		t.Errorf("the contact changed mid-read: firstname %v, want its later version", got)
	}
	if got := query(t, db, `SELECT count(*) FROM hubspot__contacts`); !slices.Equal(got, []string{strconv.Itoa(len(sim.ids("contacts", false)))}) {
		t.Errorf("first sync: %v contacts, want %d", got, len(sim.ids("contacts", false)))
	}

	sim.onSearch = nil
	sim.mu.Lock()
	last := moved.modified
	changed := sim.objects["contacts"][20]
	changed.props["email"] = "new@example.com"
	changed.modified = last.Add(24 * time.Hour)
	sim.searches = nil
	sim.mu.Unlock()
	fresh := sim.add("contacts", 2, last.Add(48*time.Hour), time.Minute)
	r = runVendorOpts(t, "hubspot.yaml", hsSets(srv.URL), engine.RunOptions{Dest: "sqlite:" + db})
	if r.err != nil {
		t.Fatalf("second sync: %v", r.err)
	}
	qs := sim.searchesTo("contacts")
	if len(qs) == 0 {
		t.Fatal("the second sync sent no contacts search")
	}
	want := strconv.FormatInt(last.Add(-5*time.Minute).UnixMilli(), 10)
	if got := qs[0].FilterGroups[0].Filters[0].Value; got != want {
		t.Errorf("second sync asked from %s, want %s (the largest date written, less the 5-minute lookback)", got, want)
	}
	if n := stream(r.res, "contacts").Records; n != 4 {
		t.Errorf("second sync read %d contacts, want 4 (the one of the last 5 minutes again, the changed one, two new)", n)
	}
	if got := query(t, db, `SELECT email FROM hubspot__contacts WHERE id = '`+changed.id+`'`); !slices.Equal(got, []string{"new@example.com"}) {
		t.Errorf("changed contact's email %v", got)
	}
	if got := query(t, db, `SELECT count(*) FROM hubspot__contacts WHERE id IN ('`+fresh[0].id+`', '`+fresh[1].id+`')`); !slices.Equal(got, []string{"2"}) {
		t.Errorf("new contacts written: %v, want 2", got)
	}
	noSecret(t, r, hsToken)
}
