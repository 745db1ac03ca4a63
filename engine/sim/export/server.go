package export

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server; the zero value is usable.
type Options struct {
	Token    string // bearer token of the API (default "export-token")
	Events   int    // events in the account (default 100)
	Seed     uint64 // generator seed
	PageSize int    // NDJSON lines per page of /events.ndjson (default 40)
	Parts    int    // files of a finished export (default 2)
	Polls    int    // polls a job answers "running" before it is done (default 3)
	// RetryAfter is the Retry-After (seconds) of a running job's answer
	// (default 2; negative: 0, for tests that must not wait).
	RetryAfter int
	// Fail says whether the n-th job created (from 1) fails; default none.
	Fail func(n int) bool
	// Objects are the keys in the bucket (default 25); MaxKeys caps a
	// ListObjectsV2 answer (default 10).
	Objects, MaxKeys int
	// Cut cuts the connection after that many bytes of the body of the
	// n-th request (from 1) to path; 0 sends it whole.
	Cut func(path string, n int) int
	// OnPoll, when set, is called before a job's n-th poll is answered.
	OnPoll func(id string, n int)
	// LoseCreate says whether the n-th create request (from 1) makes its
	// job but answers 503, as when a gateway times out after the API
	// acted; default none. A create whose Idempotency-Key header repeats
	// an earlier one answers that one's job, as Stripe's API does.
	LoseCreate func(n int) bool
}

// Event is one generated event.
type Event struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	At     string `json:"at"`
	Amount string `json:"amount"` // a decimal as text, as exports give them
	Note   string `json:"note"`
}

// Request is one entry of the request log.
type Request struct {
	Host          string // "api" or "storage"
	Method, Path  string
	Query         string
	Authorization bool
	Status        int
}

type job struct {
	id     string
	n      int // creation order, from 1
	polls  int
	since  string
	failed bool
}

// Server is a running simulator.
type Server struct {
	opts    Options
	api     *httptest.Server
	storage *httptest.Server
	events  []Event

	mu    sync.Mutex
	jobs  map[string]*job
	made  int
	keyed map[string]*job // by Idempotency-Key
	posts int             // create requests
	log   []*Request
	count map[string]int // requests per path, for Cut
}

// New starts the API and storage hosts on 127.0.0.1.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "export-token"
	}
	if opts.Events == 0 {
		opts.Events = 100
	}
	if opts.PageSize == 0 {
		opts.PageSize = 40
	}
	if opts.Parts == 0 {
		opts.Parts = 2
	}
	if opts.Polls == 0 {
		opts.Polls = 3
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = 2
	}
	if opts.Objects == 0 {
		opts.Objects = 25
	}
	if opts.MaxKeys == 0 {
		opts.MaxKeys = 10
	}
	s := &Server{opts: opts, jobs: map[string]*job{}, keyed: map[string]*job{}, count: map[string]int{}, events: generate(opts.Events, opts.Seed)}
	s.api = httptest.NewServer(http.HandlerFunc(s.serveAPI))
	s.storage = httptest.NewServer(http.HandlerFunc(s.serveStorage))
	return s
}

// URL is the API's base URL; StorageURL the storage host's.
func (s *Server) URL() string        { return s.api.URL }
func (s *Server) StorageURL() string { return s.storage.URL }

// Token is the API's bearer token.
func (s *Server) Token() string { return s.opts.Token }

// Events returns every event, in order.
func (s *Server) Events() []Event { return append([]Event(nil), s.events...) }

// Objects returns every key of the bucket, in order.
func (s *Server) Objects() []string {
	keys := make([]string, s.opts.Objects)
	for i := range keys {
		keys[i] = fmt.Sprintf("exports/2026/01/%03d & part.csv", i)
	}
	return keys
}

// JobsMade is how many export jobs the API made.
func (s *Server) JobsMade() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.made
}

// Requests returns the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		out[i] = *r
	}
	return out
}

// Close stops both hosts.
func (s *Server) Close() {
	s.api.Close()
	s.storage.Close()
}

func generate(n int, seed uint64) []Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	types := []string{"invoice.paid", "invoice.created", "refund"}
	notes := []string{"plain", "Smith, Jane", `said "hi"`, "two\nlines", "", "tab\there", "ümlaut"}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{
			ID:     fmt.Sprintf("evt_%06d", i+1),
			Type:   types[rng.IntN(len(types))],
			At:     start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
			Amount: strconv.FormatFloat(float64(rng.IntN(100000))/100, 'f', 2, 64),
			Note:   notes[rng.IntN(len(notes))],
		}
	}
	return out
}

// exchange is one request being answered.
type exchange struct {
	s   *Server
	req *Request
	n   int // how many times its path was asked, this one included
}

// record logs a request.
func (s *Server) record(host string, r *http.Request) *exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[r.URL.Path]++
	req := &Request{Host: host, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Authorization: r.Header.Get("Authorization") != ""}
	s.log = append(s.log, req)
	return &exchange{s: s, req: req, n: s.count[r.URL.Path]}
}

func (x *exchange) status(code int) {
	x.s.mu.Lock()
	x.req.Status = code
	x.s.mu.Unlock()
}

func (x *exchange) writeJSON(w http.ResponseWriter, code int, v any) {
	x.status(code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// body sends b, cut short when Options.Cut says so (Content-Length
// announces the whole body, so the client can tell).
func (x *exchange) body(w http.ResponseWriter, r *http.Request, code int, contentType string, b []byte) {
	x.status(code)
	cut := 0
	if x.s.opts.Cut != nil {
		cut = x.s.opts.Cut(r.URL.Path, x.n)
	}
	if cut <= 0 || cut >= len(b) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(code)
		w.Write(b)
		return
	}
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", code, http.StatusText(code), contentType, len(b))
	buf.Write(b[:cut])
	buf.Flush()
	conn.Close()
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	x := s.record("api", r)
	if r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		x.writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized"})
		return
	}
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/exports":
		s.createJob(x, w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/exports/"):
		s.pollJob(x, w, strings.TrimPrefix(path, "/exports/"))
	case r.Method == http.MethodGet && path == "/events.ndjson":
		s.eventsPage(x, w, r)
	case r.Method == http.MethodGet && path == "/reports/events.csv":
		x.body(w, r, http.StatusOK, "text/csv; charset=utf-8", s.csv())
	default:
		x.writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found"})
	}
}

func (s *Server) createJob(x *exchange, w http.ResponseWriter, r *http.Request) {
	var req struct {
		Format string `json:"format"`
		Since  string `json:"since"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Format != "ndjson" {
		x.writeJSON(w, http.StatusBadRequest, map[string]any{"error": "want {\"format\": \"ndjson\"}"})
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	s.posts++
	lose := s.opts.LoseCreate != nil && s.opts.LoseCreate(s.posts)
	j := s.keyed[key]
	if j == nil {
		s.made++
		j = &job{id: fmt.Sprintf("exp_%04d", s.made), n: s.made, since: req.Since}
		j.failed = s.opts.Fail != nil && s.opts.Fail(j.n)
		s.jobs[j.id] = j
		if key != "" {
			s.keyed[key] = j
		}
	}
	s.mu.Unlock()
	if lose {
		x.writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "upstream timed out"})
		return
	}
	x.writeJSON(w, http.StatusAccepted, map[string]any{"id": j.id, "status": "queued"})
}

func (s *Server) pollJob(x *exchange, w http.ResponseWriter, id string) {
	s.mu.Lock()
	j := s.jobs[id]
	if j != nil {
		j.polls++
	}
	s.mu.Unlock()
	if j != nil && s.opts.OnPoll != nil {
		s.opts.OnPoll(id, j.polls)
	}
	switch {
	case j == nil:
		x.writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such export"})
	case j.polls <= s.opts.Polls:
		w.Header().Set("Retry-After", strconv.Itoa(max(s.opts.RetryAfter, 0)))
		x.writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": "running", "progress": float64(j.polls) / float64(s.opts.Polls+1)})
	case j.failed:
		x.writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": "failed", "error": map[string]any{"code": "QUERY_TIMEOUT", "message": "the export query timed out"}})
	default:
		var files []any
		for p := range s.opts.Parts {
			files = append(files, map[string]any{"url": fmt.Sprintf("%s/bucket/exports/%s/part-%d.ndjson.gz?X-Amz-Expires=3600&X-Amz-Signature=%s", s.storage.URL, id, p, sign(id, p))})
		}
		x.writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": "completed", "files": files})
	}
}

func sign(id string, part int) string {
	return fmt.Sprintf("%x", []byte(fmt.Sprintf("sig-%s-%d", id, part)))
}

// since keeps the events at or after t (all of them when t is empty).
func (s *Server) since(t string) []Event {
	var out []Event
	for _, e := range s.events {
		if t == "" || e.At >= t {
			out = append(out, e)
		}
	}
	return out
}

func ndjson(events []Event) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range events {
		enc.Encode(e)
	}
	return b.Bytes()
}

func (s *Server) eventsPage(x *exchange, w http.ResponseWriter, r *http.Request) {
	from := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		v, err := strconv.Atoi(strings.TrimPrefix(c, "c"))
		if err != nil || v < 0 || v > len(s.events) {
			x.writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad cursor"})
			return
		}
		from = v
	}
	to := min(from+s.opts.PageSize, len(s.events))
	if to < len(s.events) {
		w.Header().Set("X-Next-Cursor", fmt.Sprintf("c%d", to))
	}
	x.body(w, r, http.StatusOK, "application/x-ndjson", ndjson(s.events[from:to]))
}

func (s *Server) csv() []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.UseCRLF = true
	cw.Write([]string{"id", "type", "at", "amount", "note"})
	for _, e := range s.events {
		cw.Write([]string{e.ID, e.Type, e.At, e.Amount, e.Note})
	}
	cw.Flush()
	return b.Bytes()
}

func (s *Server) serveStorage(w http.ResponseWriter, r *http.Request) {
	x := s.record("storage", r)
	q := r.URL.Query()
	if q.Get("X-Amz-Signature") != "" && r.Header.Get("Authorization") != "" {
		// S3: "Only one auth mechanism allowed".
		x.status(http.StatusBadRequest)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>")
		return
	}
	if r.URL.Path == "/bucket" && q.Get("list-type") == "2" {
		s.list(x, w, r)
		return
	}
	id, file, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/bucket/exports/"), "/")
	var part int
	if _, err := fmt.Sscanf(file, "part-%d.ndjson.gz", &part); !ok || err != nil || q.Get("X-Amz-Signature") != sign(id, part) {
		x.notFound(w)
		return
	}
	s.mu.Lock()
	j := s.jobs[id]
	s.mu.Unlock()
	if j == nil || j.failed || part >= s.opts.Parts {
		x.notFound(w)
		return
	}
	evs := s.since(j.since)
	per := (len(evs) + s.opts.Parts - 1) / s.opts.Parts
	lo, hi := min(part*per, len(evs)), min((part+1)*per, len(evs))
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.Write(ndjson(evs[lo:hi]))
	gz.Close()
	x.body(w, r, http.StatusOK, "application/gzip", b.Bytes())
}

func (x *exchange) notFound(w http.ResponseWriter) {
	x.status(http.StatusNotFound)
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>")
}

type listResult struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Xmlns                 string   `xml:"xmlns,attr"`
	Name                  string   `xml:"Name"`
	Prefix                string   `xml:"Prefix"`
	KeyCount              int      `xml:"KeyCount"`
	MaxKeys               int      `xml:"MaxKeys"`
	IsTruncated           bool     `xml:"IsTruncated"`
	ContinuationToken     string   `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string   `xml:"NextContinuationToken,omitempty"`
	Contents              []object `xml:"Contents"`
}

type object struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

// list answers ListObjectsV2 (prefix, max-keys, continuation-token).
func (s *Server) list(x *exchange, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	maxKeys := s.opts.MaxKeys
	if v := q.Get("max-keys"); v != "" {
		if m, err := strconv.Atoi(v); err == nil && m >= 0 && m < maxKeys {
			maxKeys = m
		}
	}
	var keys []string
	for _, k := range s.Objects() {
		if strings.HasPrefix(k, q.Get("prefix")) {
			keys = append(keys, k)
		}
	}
	from := 0
	if tok := q.Get("continuation-token"); tok != "" {
		b, err := base64.StdEncoding.DecodeString(tok)
		if err != nil {
			x.status(http.StatusBadRequest)
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "<Error><Code>InvalidArgument</Code><Message>The continuation token provided is incorrect</Message></Error>")
			return
		}
		for from < len(keys) && keys[from] <= string(b) {
			from++
		}
	}
	to := min(from+maxKeys, len(keys))
	res := listResult{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/", Name: "bucket", Prefix: q.Get("prefix"), KeyCount: to - from, MaxKeys: maxKeys,
		IsTruncated: to < len(keys), ContinuationToken: q.Get("continuation-token")}
	for i, k := range keys[from:to] {
		res.Contents = append(res.Contents, object{Key: k, LastModified: "2026-01-02T03:04:05.000Z", ETag: fmt.Sprintf("\"%032x\"", from+i), Size: 100 * (from + i + 1), StorageClass: "STANDARD"})
	}
	if res.IsTruncated {
		res.NextContinuationToken = base64.StdEncoding.EncodeToString([]byte(keys[to-1]))
	}
	out, _ := xml.MarshalIndent(res, "", "  ")
	x.body(w, r, http.StatusOK, "application/xml", append([]byte(xml.Header), out...))
}
