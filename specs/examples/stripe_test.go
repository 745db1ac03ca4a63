package examples_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stripeSim answers /v1/customers, /v1/invoices and /v1/invoices/{id}/lines
// as Stripe's API does (facts from its API reference): lists
// {object: "list", url, has_more, data}, newest first; limit 1 to 100,
// default 10, anything else a 400; starting_after an id of the list (else
// 400); an invoice embeds only its first 10 lines (lines.has_more beyond);
// an invoice's customer is an id unless expand[]=data.customer; the key by
// bearer or as the basic-auth user; errors {"error": {type, code, message,
// param}}.
type stripeSim struct {
	key       string
	customers []map[string]any
	invoices  []map[string]any
	lines     map[string][]map[string]any // invoice id -> its lines

	mu       sync.Mutex
	requests []*http.Request
	// faults[path] are answered, in order, to the first requests to path.
	faults map[string][]stripeFault
}

type stripeFault struct {
	status      int    // 200: an empty list that says has_more
	shouldRetry string // Stripe-Should-Retry, "" for none
	typ, code   string
}

func newStripeSim(key string) *stripeSim {
	s := &stripeSim{key: key, lines: map[string][]map[string]any{}, faults: map[string][]stripeFault{}}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for i := range 250 {
		s.customers = append(s.customers, map[string]any{"id": fmt.Sprintf("cus_%04d", i), "object": "customer",
			"email": fmt.Sprintf("c%d@example.com", i), "name": fmt.Sprintf("Customer %d", i), "currency": "eur",
			"balance": 0, "delinquent": i%7 == 0, "created": base + int64(i)*3600, "livemode": false})
	}
	for i, n := range []int{25, 3, 1} {
		id := fmt.Sprintf("in_%c", 'A'+i)
		var total int64
		for j := range n {
			amt := int64(100 * (j + 1))
			total += amt
			s.lines[id] = append(s.lines[id], map[string]any{"id": fmt.Sprintf("il_%s_%02d", id[3:], j), "object": "line_item",
				"description": fmt.Sprintf("Seat %d", j), "amount": amt, "currency": "eur", "quantity": 1,
				"period": map[string]any{"start": base, "end": base + 30*86400}})
		}
		s.invoices = append(s.invoices, map[string]any{"id": id, "object": "invoice", "number": fmt.Sprintf("INV-%04d", i+1),
			"customer": fmt.Sprintf("cus_%04d", i), "status": "paid", "currency": "eur", "total": total,
			"amount_due": total, "amount_paid": total, "created": base + int64(i)*86400, "period_start": base, "period_end": base + 30*86400})
	}
	return s
}

func (s *stripeSim) fail(w http.ResponseWriter, status int, typ, code, param, msg string) {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func (s *stripeSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(r.Context()))
	var fault *stripeFault
	if f := s.faults[r.URL.Path]; len(f) > 0 {
		fault, s.faults[r.URL.Path] = &f[0], f[1:]
	}
	s.mu.Unlock()

	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if u, _, ok := r.BasicAuth(); ok {
		key = u
	}
	switch {
	case key == "" || key == r.Header.Get("Authorization"):
		s.fail(w, 401, "invalid_request_error", "", "", "no API key provided")
		return
	case key != s.key:
		masked := key
		if len(key) > 12 {
			masked = key[:8] + strings.Repeat("*", len(key)-12) + key[len(key)-4:]
		}
		s.fail(w, 401, "invalid_request_error", "", "", "invalid API key provided: "+masked)
		return
	}
	if fault != nil && fault.status == 200 {
		// A list that says there is more but holds nothing to start after.
		writeJSON(w, 200, map[string]any{"object": "list", "url": r.URL.Path, "has_more": true, "data": []any{}})
		return
	}
	if fault != nil {
		if fault.shouldRetry != "" {
			w.Header().Set("Stripe-Should-Retry", fault.shouldRetry)
		}
		s.fail(w, fault.status, fault.typ, fault.code, "", "simulated "+fault.code)
		return
	}
	q := r.URL.Query()
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.fail(w, 400, "invalid_request_error", "parameter_invalid_integer", "limit", "limit must be an integer from 1 to 100, got "+v)
			return
		}
		limit = n
	}
	var list []map[string]any
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/v1/customers":
		list = s.customers
	case r.URL.Path == "/v1/invoices":
		expand := slices.Contains(q["expand[]"], "data.customer")
		for _, in := range s.invoices {
			in = cloneMap(in)
			lines := s.lines[in["id"].(string)]
			in["lines"] = map[string]any{"object": "list", "url": "/v1/invoices/" + in["id"].(string) + "/lines",
				"has_more": len(lines) > 10, "data": lines[:min(10, len(lines))]}
			if expand {
				in["customer"] = map[string]any{"id": in["customer"], "object": "customer"}
			}
			list = append(list, in)
		}
	case len(parts) == 4 && parts[1] == "invoices" && parts[3] == "lines":
		lines, ok := s.lines[parts[2]]
		if !ok {
			s.fail(w, 404, "invalid_request_error", "resource_missing", "invoice", "no such invoice: "+parts[2])
			return
		}
		list = lines
	default:
		s.fail(w, 404, "invalid_request_error", "", "", "unrecognized request URL")
		return
	}
	// Newest first, as Stripe lists.
	list = slices.Clone(list)
	slices.Reverse(list)
	from := 0
	if after := q.Get("starting_after"); after != "" {
		i := slices.IndexFunc(list, func(o map[string]any) bool { return o["id"] == after })
		if i < 0 {
			s.fail(w, 400, "invalid_request_error", "resource_missing", "starting_after", "no such object: "+after)
			return
		}
		from = i + 1
	}
	end := min(from+limit, len(list))
	writeJSON(w, 200, map[string]any{"object": "list", "url": r.URL.Path, "has_more": end < len(list), "data": list[from:end]})
}

func (s *stripeSim) asked(path string) []*http.Request {
	return requestsTo(&s.mu, &s.requests, path)
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

const stripeKey = "sk_test_51ExampleKeyForTheSimulatorOnly0000"

// Stripe: every customer over three pages of 100 (asked by
// starting_after), every line of every invoice (25 on one, past the 10
// the invoices list embeds), the invoice's customer as its id; a 429 is
// backed off and a 409 with Stripe-Should-Retry: true retried; the key is
// never printed.
func TestStripe(t *testing.T) {
	t.Parallel()
	sim := newStripeSim(stripeKey)
	sim.faults["/v1/invoices"] = []stripeFault{{status: 429, typ: "invalid_request_error", code: "rate_limit"}}
	sim.faults["/v1/invoices/in_A/lines"] = []stripeFault{{status: 409, shouldRetry: "true", typ: "invalid_request_error", code: "lock_timeout"}}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	r := runVendor(t, "stripe.yaml", map[string]string{"api_url": srv.URL, "secret_key": stripeKey}, time.Time{})
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var want []string
	for _, c := range sim.customers {
		want = append(want, c["id"].(string))
	}
	got := ids(r.rows["customers"], "id")
	slices.Sort(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("customers (-want +got):\n%s", d)
	}
	pages := sim.asked("/v1/customers")
	if len(pages) != 3 {
		t.Errorf("%d customer requests, want 3 (250 at 100 a page)", len(pages))
	}
	for i, p := range pages {
		if lim := p.URL.Query().Get("limit"); lim != "100" {
			t.Errorf("customer request %d: limit=%q, want 100 (Stripe's default is 10)", i, lim)
		}
	}
	if len(pages) == 3 {
		if after := pages[1].URL.Query().Get("starting_after"); after != "cus_0150" {
			t.Errorf("second page starting_after=%q, want cus_0150 (the last id of the first page)", after)
		}
	}

	var wantLines []string
	for _, in := range sim.invoices {
		for _, l := range sim.lines[in["id"].(string)] {
			wantLines = append(wantLines, in["id"].(string)+"/"+l["id"].(string))
		}
	}
	var gotLines []string
	for _, l := range r.rows["invoice_lines"] {
		gotLines = append(gotLines, fmt.Sprint(l["invoice"], "/", l["id"]))
	}
	slices.Sort(wantLines)
	slices.Sort(gotLines)
	if d := cmp.Diff(wantLines, gotLines); d != "" {
		t.Errorf("invoice lines (-want +got):\n%s", d)
	}
	if len(gotLines) != 29 {
		t.Errorf("%d invoice lines, want 29 (25 + 3 + 1)", len(gotLines))
	}
	if d := cmp.Diff([]string{"cus_0000", "cus_0001", "cus_0002"}, column(r.rows["invoices"], "customer")); d != "" {
		t.Errorf("invoice customers (-want +got):\n%s", d)
	}
	if s := stream(r.res, "invoices"); s.Retries != 1 {
		t.Errorf("invoices retries = %d, want 1 (the 429)", s.Retries)
	}
	if n := len(sim.asked("/v1/invoices/in_A/lines")); n != 2 {
		t.Errorf("%d requests for in_A's lines, want 2 (a 409 with Stripe-Should-Retry: true, then its 25 lines in one page)", n)
	}
	for _, req := range sim.asked("/v1/invoices") {
		if v := req.Header.Get("Stripe-Version"); v != "2024-06-20" {
			t.Errorf("Stripe-Version = %q, want the pinned 2024-06-20", v)
		}
	}
	if !r.res.Summary.Tables["invoice_lines"] || !r.res.Summary.Tables["customers"] {
		t.Errorf("tables that may be reconciled = %v", r.res.Summary.Tables)
	}
	noSecret(t, r, stripeKey)
}

// Stripe's errors fail the run, naming the status, the stream and
// Stripe's type and message; the key is never printed.
func TestStripeErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   map[string]string
		faults map[string][]stripeFault
		want   []string // in the error
		asked  string   // a path and how many times it was asked
		times  int
	}{
		{name: "a page size above 100", sets: map[string]string{"page_size": "1000"},
			want: []string{"customers", "400", "invalid_request_error", "limit must be"}},
		{name: "a wrong key", sets: map[string]string{"secret_key": "sk_test_51WrongKeyWrongKeyWrongKey9999"},
			want: []string{"401", "invalid API key"}},
		{name: "Stripe-Should-Retry false on a 500 is not retried",
			faults: map[string][]stripeFault{"/v1/customers": {{status: 500, shouldRetry: "false", typ: "api_error", code: "internal"}}},
			want:   []string{"customers", "500", "api_error"}, asked: "/v1/customers", times: 1},
		{name: "has_more on an empty page",
			faults: map[string][]stripeFault{"/v1/customers": {{status: 200}}},
			want:   []string{"customers", "has_more is true on a page without objects"}},
		{name: "an invoice gone before its lines are read",
			faults: map[string][]stripeFault{"/v1/invoices/in_B/lines": {{status: 404, typ: "invalid_request_error", code: "resource_missing"}}},
			want:   []string{"invoice_lines", "in_B", "404", "resource_missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := newStripeSim(stripeKey)
			if c.faults != nil {
				sim.faults = c.faults
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			sets := map[string]string{"api_url": srv.URL, "secret_key": stripeKey}
			for k, v := range c.sets {
				sets[k] = v
			}
			r := runVendor(t, "stripe.yaml", sets, time.Time{})
			failedRun(t, r, c.want)
			if c.asked != "" {
				if n := len(sim.asked(c.asked)); n != c.times {
					t.Errorf("%s asked %d times, want %d", c.asked, n, c.times)
				}
			}
			noSecret(t, r, stripeKey, sets["secret_key"], base64.StdEncoding.EncodeToString([]byte(sets["secret_key"]+":")))
		})
	}
}
