package cassette

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Player is an http.RoundTripper that answers every request from a
// cassette and fails a request it does not hold, naming the closest one
// it does. It never touches the network.
type Player struct {
	dir     string
	values  Values
	restore *restorer
	byKey   map[string]*recorded
	all     []*recorded // by file name

	mu       sync.Mutex
	red      *redactor
	redKnown int // how many Known secrets red was built with
}

type recorded struct {
	file string
	ex   *Exchange
	key  string
	body []byte // the response body with placeholders, compact
}

// Open reads the cassette in dir: every *.json file is an exchange.
func Open(dir string, values Values) (*Player, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	p := &Player{dir: dir, values: values, restore: values.restorer(), byKey: map[string]*recorded{}}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		ex, err := decodeFile(data)
		if err != nil {
			return nil, fmt.Errorf("replay: %s: %w", path, err)
		}
		body, _ := ex.Response.Body.Bytes() // checked by decodeFile
		rec := &recorded{file: e.Name(), ex: ex, key: ex.Request.key(), body: body}
		if other, dup := p.byKey[rec.key]; dup {
			return nil, fmt.Errorf("replay: %s and %s record the same request", other.file, rec.file)
		}
		p.byKey[rec.key] = rec
		p.all = append(p.all, rec)
	}
	return p, nil
}

// Len is the number of recorded exchanges.
func (p *Player) Len() int { return len(p.all) }

// redactor returns a redactor that knows every secret known now; it is
// rebuilt only when the client has learnt a new one (a fetched token).
func (p *Player) redactor() *redactor {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	if p.values.Known != nil {
		n = len(p.values.Known())
	}
	if p.values.Params != nil {
		n += len(p.values.Params())
	}
	if p.red == nil || n != p.redKnown {
		p.red, p.redKnown = p.values.redactor(), n
	}
	return p.red
}

// RoundTrip answers req from the cassette.
func (p *Player) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	red := p.redactor()
	reqBody, err := newBody(body, red, nil)
	if err != nil {
		return nil, err
	}
	asked := Request{Method: strings.ToUpper(req.Method), URL: red.text(req.URL.String()), Header: keepHeaders(req.Header, requestNoise, red, true), Body: reqBody}
	rec := p.byKey[asked.key()]
	if rec == nil {
		return nil, p.miss(&asked)
	}
	resp := &http.Response{
		Status:     strconv.Itoa(rec.ex.Response.Status) + " " + http.StatusText(rec.ex.Response.Status),
		StatusCode: rec.ex.Response.Status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{},
		Request: req,
	}
	for k, vs := range rec.ex.Response.Header {
		for _, v := range vs {
			resp.Header.Add(k, p.restore.text(v))
		}
	}
	out := rec.body
	if len(rec.ex.Response.Body.JSON) > 0 {
		out = []byte(p.restore.json(string(out)))
	} else if rec.ex.Response.Body.Text != "" {
		out = []byte(p.restore.text(string(out)))
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	return resp, nil
}

// MissError is a request the cassette does not hold. It is permanent: the
// same request misses again.
type MissError struct {
	Dir     string
	Method  string
	URL     string // with placeholders, as the cassette would hold it
	Closest string // the closest recorded request and its file; "" in an empty cassette
	Differs string // how the request differs from the closest
}

func (e *MissError) Error() string {
	if e.Closest == "" {
		return fmt.Sprintf("not in the cassette %s, which holds no exchange", e.Dir)
	}
	msg := fmt.Sprintf("not in the cassette %s; the closest recorded request is %s", e.Dir, e.Closest)
	if e.Differs != "" {
		msg += ", which differs in " + e.Differs
	}
	return msg
}

// Permanent tells the client not to retry.
func (e *MissError) Permanent() bool { return true }

func (p *Player) miss(asked *Request) error {
	e := &MissError{Dir: p.dir, Method: asked.Method, URL: asked.URL}
	best := p.closest(asked)
	if best == nil {
		return e
	}
	e.Closest = best.ex.Request.Method + " " + best.ex.Request.URL + " (" + best.file + ")"
	e.Differs = differences(asked, &best.ex.Request)
	return e
}

// shortlist is how many recorded requests, ranked by a cheap measure, are
// compared by edit distance: enough to find the one a human would pick.
const shortlist = 12

// closest picks the recorded request nearest to asked: the same method,
// then the same path, then the most leading path segments in common,
// then (among a shortlist) the smallest edit distance of URL and body.
func (p *Player) closest(asked *Request) *recorded {
	if len(p.all) == 0 {
		return nil
	}
	type cand struct {
		r              *recorded
		method, sameAt bool
		segs, prefix   int
		dist           int
	}
	askedURL, askedBody := canonicalURL(asked.URL), asked.canonicalBody()
	askedPath, _, _ := strings.Cut(askedURL, "?")
	cands := make([]cand, len(p.all))
	for i, r := range p.all {
		u := canonicalURL(r.ex.Request.URL)
		path, _, _ := strings.Cut(u, "?")
		cands[i] = cand{r: r, method: r.ex.Request.Method == asked.Method, sameAt: path == askedPath,
			segs: commonSegments(askedPath, path), prefix: commonPrefix(askedURL, u)}
	}
	rank := func(a, b cand) int {
		switch {
		case a.method != b.method:
			return -cmpBool(a.method, b.method)
		case a.sameAt != b.sameAt:
			return -cmpBool(a.sameAt, b.sameAt)
		}
		return b.segs - a.segs
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		if c := rank(a, b); c != 0 {
			return c
		}
		return b.prefix - a.prefix
	})
	cands = cands[:min(len(cands), shortlist)]
	for i := range cands {
		r := &cands[i].r.ex.Request
		cands[i].dist = distance(askedURL, canonicalURL(r.URL)) + distance(askedBody, r.canonicalBody())
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		if c := rank(a, b); c != 0 {
			return c
		}
		return a.dist - b.dist
	})
	return cands[0].r
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// commonSegments counts the leading path segments a and b share.
func commonSegments(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	n := 0
	for n < len(as) && n < len(bs) && as[n] == bs[n] {
		n++
	}
	return n
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// maxCompared bounds the text compared by edit distance (quadratic).
const maxCompared = 400

// distance is the Levenshtein distance of the first maxCompared bytes,
// plus the difference in length beyond them.
func distance(a, b string) int {
	extra := 0
	if len(a) > maxCompared || len(b) > maxCompared {
		extra = abs(len(a) - len(b))
		a, b = a[:min(len(a), maxCompared)], b[:min(len(b), maxCompared)]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)] + extra
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// maxDifferences bounds the differences a miss lists.
const maxDifferences = 4

// differences says how asked differs from a recorded request: method,
// path, each query parameter, header and the body.
func differences(asked, rec *Request) string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if asked.Method != rec.Method {
		add("method: %s here, %s recorded", asked.Method, rec.Method)
	}
	ap, aq, _ := strings.Cut(canonicalURL(asked.URL), "?")
	rp, rq, _ := strings.Cut(canonicalURL(rec.URL), "?")
	if ap != rp {
		add("path: %s here, %s recorded", ap, rp)
	}
	av, _ := url.ParseQuery(aq)
	rv, _ := url.ParseQuery(rq)
	for _, k := range unionKeys(av, rv) {
		a, r := strings.Join(av[k], ","), strings.Join(rv[k], ",")
		switch {
		case !av.Has(k):
			add("query %s: absent here, %q recorded", k, r)
		case !rv.Has(k):
			add("query %s: %q here, absent recorded", k, a)
		case a != r:
			add("query %s: %q here, %q recorded", k, a, r)
		}
	}
	ah, rh := flatten(asked.Header), flatten(rec.Header)
	for _, k := range unionKeys(ah, rh) {
		a, inA := ah[k]
		r, inR := rh[k]
		switch {
		case !inA:
			add("header %s: absent here, %q recorded", k, r)
		case !inR:
			add("header %s: %q here, absent recorded", k, a)
		case a != r:
			add("header %s: %q here, %q recorded", k, a, r)
		}
	}
	if ab, rb := asked.canonicalBody(), rec.canonicalBody(); ab != rb {
		add("body: %s here, %s recorded", clip(ab), clip(rb))
	}
	if len(out) > maxDifferences {
		out = append(out[:maxDifferences], fmt.Sprintf("%d more", len(out)-maxDifferences))
	}
	return strings.Join(out, "; ")
}

func unionKeys[V any](a, b map[string]V) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// clip shortens a body for a message.
func clip(s string) string {
	const maxShown = 120
	if s == "" {
		return "none"
	}
	if len(s) > maxShown {
		return strconv.Quote(s[:maxShown]) + "…"
	}
	return strconv.Quote(s)
}
