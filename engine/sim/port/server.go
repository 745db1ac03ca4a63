package port

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/statuswriter"
)

// Defaults taken from Port's published contract (see doc.go).
const (
	DefaultClientID     = "portsim-client"
	DefaultClientSecret = "portsim-secret"
	DefaultTokenTTL     = 3 * time.Hour
	DefaultRateLimit    = 35000 // entities API, per 5-minute window
	// DefaultAuthRateLimit is Port's limit on unauthenticated requests
	// (the token route), per window.
	DefaultAuthRateLimit = 100
	DefaultWindow        = 5 * time.Minute
	DefaultMaxBodyBytes  = 1 << 20
)

// Options configures a Server. The zero value is a usable Port with the
// published limits and the real clock.
type Options struct {
	ClientID     string // default DefaultClientID
	ClientSecret string // default DefaultClientSecret

	// RateLimit is the number of authenticated requests allowed per Window
	// (fixed windows aligned to the Unix epoch). 0 means DefaultRateLimit;
	// a negative value disables limiting and the x-ratelimit-* headers.
	RateLimit int
	// AuthRateLimit is the number of token requests allowed per Window,
	// counted apart from RateLimit. 0 means DefaultAuthRateLimit, or no
	// limit when RateLimit is negative; a negative value disables it.
	AuthRateLimit int
	Window        time.Duration // default DefaultWindow
	// ResetEpoch makes x-ratelimit-reset carry the window end as Unix epoch
	// seconds instead of the number of seconds until it; Port's documents
	// disagree on which form the live API sends.
	ResetEpoch bool

	Latency      time.Duration    // added to every request, after rate accounting
	Now          func() time.Time // clock for tokens, windows and timestamps; default time.Now
	TokenTTL     time.Duration    // default DefaultTokenTTL (expiresIn 10800)
	MaxBodyBytes int64            // request body limit; default DefaultMaxBodyBytes (413 above)
	// SearchLag is how long, on the Now clock, a write takes to reach the
	// search routes: Port's search is eventually consistent, so an entity
	// just created, changed or deleted is seen by search as it was until
	// then. Other routes (GET, writes, relation checks) see it at once.
	// 0 makes search current. SeedEntity brings search up to date.
	SearchLag time.Duration
	// CreateExistingUnwritten answers a bulk create (upsert=false) of an
	// entity that exists with success and "created": false, leaving the
	// entity as it was: Port does not document this answer, but nothing
	// says it never gives it.
	CreateExistingUnwritten bool
	// CreateExistingRefusesRequest refuses a whole bulk create
	// (upsert=false) with a 409 when any of its entities exists, writing
	// none: the other form of refusal Port's documents leave open.
	CreateExistingRefusesRequest bool

	Addr   string       // listen address for Start; default 127.0.0.1:0
	Logger *slog.Logger // default discard
}

// Request is one entry of the request log.
type Request struct {
	Method string
	Path   string // escaped path, as sent
	Query  url.Values
	Status int
	Body   []byte
}

// Server is an in-process Port API. It is safe for concurrent use.
type Server struct {
	opts        Options
	log         *slog.Logger
	limiter     *windowLimiter
	authLimiter *windowLimiter // the token route (Options.AuthRateLimit)

	ts    *httptest.Server // set by New
	srv   *http.Server     // set by Start
	url   string
	serve sync.WaitGroup

	mu          sync.Mutex
	blueprints  map[string]*blueprint
	entities    map[string]map[string]*entity
	index       map[string]map[string]*entity // what search sees (see Options.SearchLag)
	pending     []indexUpdate                 // writes not yet in index, oldest first
	searchOrder map[string][]string           // blueprint -> its entity identifiers in search order (see idsLocked)
	tokens      map[string]time.Time          // token -> expiry
	current     string                        // live token of the credential pair
	tokenSeq    int
	genSeq      int
	rejects     map[entityKey]*apiError
	batchFails  map[entityKey]*apiError // RejectBatchWith
	keeps       map[entityKey]bool      // RefuseDelete
	faults      []*Fault
	faultFn     FaultFunc
	requests    []Request
	inFlight    int
	peak        int
}

type entityKey struct{ blueprint, identifier string }

// New starts a Server on a loopback httptest listener.
func New(opts Options) *Server {
	s := newServer(opts)
	s.ts = httptest.NewServer(s)
	s.url = s.ts.URL
	return s
}

// Start serves on opts.Addr (default 127.0.0.1:0) until ctx is done or
// Close is called. It is meant for demos; tests use New.
func Start(ctx context.Context, opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("port simulator: listen %s: %w", addr, err)
	}
	s := newServer(opts)
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	s.serve.Add(2)
	done := make(chan struct{})
	go func() {
		defer s.serve.Done()
		defer close(done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("port simulator serve", "err", err)
		}
	}()
	go func() {
		defer s.serve.Done()
		select {
		case <-ctx.Done():
			_ = s.srv.Close()
		case <-done:
		}
	}()
	return s, nil
}

func newServer(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.AuthRateLimit == 0 {
		opts.AuthRateLimit = DefaultAuthRateLimit
		if opts.RateLimit < 0 {
			opts.AuthRateLimit = -1
		}
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		opts:        opts,
		log:         log,
		limiter:     &windowLimiter{limit: opts.RateLimit, window: opts.Window},
		authLimiter: &windowLimiter{limit: opts.AuthRateLimit, window: opts.Window},
		blueprints:  map[string]*blueprint{},
		entities:    map[string]map[string]*entity{},
		index:       map[string]map[string]*entity{},
		searchOrder: map[string][]string{},
		tokens:      map[string]time.Time{},
		rejects:     map[entityKey]*apiError{},
		batchFails:  map[entityKey]*apiError{},
		keeps:       map[entityKey]bool{},
	}
}

// URL is the base URL (no trailing slash, no /v1).
func (s *Server) URL() string { return s.url }

// ClientID returns the accepted client id.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the accepted client secret.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Close stops the server and waits for its goroutines.
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
	if s.srv != nil {
		_ = s.srv.Close()
		s.serve.Wait()
	}
}

// Requests returns a copy of the request log, in arrival order of completion.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests clears the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// CountRequests counts logged requests with the given method whose path
// matches: an exact path, a prefix when path ends in "*", or a suffix when
// it starts with "*". An empty method matches any method.
func (s *Server) CountRequests(method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if method != "" && r.Method != method {
			continue
		}
		if pathMatches(path, r.Path) {
			n++
		}
	}
	return n
}

// PeakInFlight is the largest number of requests served at once.
func (s *Server) PeakInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// ExpireTokens invalidates every issued token, as a server-side expiry.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
	s.current = ""
}

// RejectEntity makes every later write of blueprint/identifier fail with the
// given status, error code and message (fault injection for per-entity
// failures that pass validation).
func (s *Server) RejectEntity(blueprint, identifier string, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[entityKey{blueprint, identifier}] = &apiError{status: status, code: code, msg: message}
}

// RejectBatchWith makes every later bulk upsert that holds
// blueprint/identifier fail whole with the given status, error code and
// message, as Port's route schema check fails a bulk request for one
// entity (fault injection for a rule ferry's offline validation does not
// know).
func (s *Server) RejectBatchWith(blueprint, identifier string, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batchFails[entityKey{blueprint, identifier}] = &apiError{status: status, code: code, msg: message}
}

// RefuseDelete makes Port keep blueprint/identifier when asked to delete
// it: a bulk delete still answers 200 but leaves it out of
// deletedEntities (Port's bulk delete may succeed in part, and says so
// only there); a single DELETE answers 422. Fault injection.
func (s *Server) RefuseDelete(blueprint, identifier string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keeps[entityKey{blueprint, identifier}] = true
}

// statusWriter remembers the status code for the request log.
type statusWriter = statuswriter.Writer

// ServeHTTP implements the Port API.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	s.mu.Lock()
	s.inFlight++
	s.peak = max(s.peak, s.inFlight)
	s.mu.Unlock()

	// Read (and drain) the whole body first so a 413 reaches the client
	// instead of a reset connection.
	body, tooLarge := readBody(r.Body, s.opts.MaxBodyBytes)
	// done logs the request once it is answered; a dropped connection
	// logs it before closing, since the client may retry and finish its
	// run before this handler's deferred work would.
	var once sync.Once
	done := func() {
		once.Do(func() {
			s.mu.Lock()
			s.inFlight--
			logged := body
			if tooLarge {
				logged = nil
			}
			s.requests = append(s.requests, Request{
				Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Status: w.Status, Body: logged,
			})
			s.mu.Unlock()
		})
	}
	defer done()

	isAuth := r.URL.EscapedPath() == "/v1/auth/access_token"
	var fault *Fault
	if !isAuth {
		fault = s.takeFault(r.Method, r.URL.EscapedPath(), body)
	}
	throttled := fault != nil && (fault.Kind == FaultThrottle || fault.Kind == FaultStatus && !fault.Applied)
	now := s.opts.Now()
	ok := true
	var st limitState
	switch {
	case isAuth:
		st = s.limiter.peek(now)
		ok, _ = s.authLimiter.take(now)
	case throttled:
		st = s.limiter.peek(now)
	default:
		ok, st = s.limiter.take(now)
	}
	s.setRateHeaders(w.Header(), st, now)
	if throttled {
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		if fault.Kind == FaultStatus {
			writeError(w, faultError(fault))
			return
		}
		writeError(w, &apiError{status: http.StatusTooManyRequests, code: "rate_limit_exceeded", msg: "too many requests"})
		return
	}
	if !ok {
		writeError(w, &apiError{status: http.StatusTooManyRequests, code: "rate_limit_exceeded", msg: "too many requests, retry after the rate-limit window resets"})
		return
	}
	if s.opts.Latency > 0 {
		t := time.NewTimer(s.opts.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if tooLarge {
		// Port's 413 (like its 401) may carry no message.
		writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, code: "request_too_large"})
		return
	}
	if isAuth {
		s.handleToken(w, r, body)
		return
	}
	if err := s.authorize(r); err != nil {
		writeError(w, err)
		return
	}
	s.route(w, r, body, fault, done)
}

func readBody(rc io.ReadCloser, limit int64) ([]byte, bool) {
	if rc == nil {
		return nil, false
	}
	b, _ := io.ReadAll(io.LimitReader(rc, limit+1))
	if int64(len(b)) > limit {
		// Drain a bounded amount so the client can read the answer.
		_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<20))
		return nil, true
	}
	return b, false
}

// done logs the request (see ServeHTTP).
func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte, fault *Fault, done func()) {
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok || len(segs) < 2 || segs[0] != "v1" || segs[1] != "blueprints" {
		writeError(w, &apiError{status: http.StatusNotFound, code: "not_found", msg: "route not found"})
		return
	}
	segs = segs[2:]
	skipFirst := fault != nil && fault.Kind == FaultOmit && fault.Unapplied
	q := r.URL.Query()
	m := r.Method
	var h func() (int, any, *apiError)
	switch {
	case len(segs) == 0 && m == http.MethodGet:
		h = func() (int, any, *apiError) { return s.listBlueprints() }
	case len(segs) == 0 && m == http.MethodPost:
		h = func() (int, any, *apiError) { return s.createBlueprint(body) }
	case len(segs) == 1:
		id := segs[0]
		switch m {
		case http.MethodGet:
			h = func() (int, any, *apiError) { return s.getBlueprint(id) }
		case http.MethodPut:
			h = func() (int, any, *apiError) { return s.updateBlueprint(id, body, false) }
		case http.MethodPatch:
			h = func() (int, any, *apiError) { return s.updateBlueprint(id, body, true) }
		case http.MethodDelete:
			h = func() (int, any, *apiError) { return s.deleteBlueprint(id) }
		}
	case len(segs) == 2 && segs[1] == "entities":
		bp := segs[0]
		switch m {
		case http.MethodGet:
			h = func() (int, any, *apiError) { return s.listEntities(bp) }
		case http.MethodPost:
			h = func() (int, any, *apiError) { return s.createEntity(bp, q, body) }
		}
	case len(segs) == 2 && segs[1] == "entities-count" && m == http.MethodGet:
		h = func() (int, any, *apiError) { return s.countEntities(segs[0]) }
	case len(segs) == 3 && segs[1] == "entities" && segs[2] == "bulk" && m == http.MethodPost:
		h = func() (int, any, *apiError) { return s.bulkUpsert(segs[0], q, body, skipFirst) }
	case len(segs) == 3 && segs[1] == "entities" && segs[2] == "search" && m == http.MethodPost:
		h = func() (int, any, *apiError) { return s.searchEntities(segs[0], body) }
	case len(segs) == 3 && segs[1] == "entities":
		bp, id := segs[0], segs[2]
		switch m {
		case http.MethodGet:
			h = func() (int, any, *apiError) { return s.getEntity(bp, id) }
		case http.MethodPut:
			h = func() (int, any, *apiError) { return s.changeEntity(bp, id, q, body, false) }
		case http.MethodPatch:
			h = func() (int, any, *apiError) { return s.changeEntity(bp, id, q, body, true) }
		case http.MethodDelete:
			h = func() (int, any, *apiError) { return s.deleteEntity(bp, id, q) }
		}
	case len(segs) == 4 && segs[1] == "bulk" && segs[2] == "entities" && segs[3] == "delete" && m == http.MethodPost:
		h = func() (int, any, *apiError) { return s.bulkDelete(segs[0], q, body, skipFirst) }
	}
	if h == nil {
		writeError(w, &apiError{status: http.StatusNotFound, code: "not_found", msg: fmt.Sprintf("route %s %s not found", m, r.URL.EscapedPath())})
		return
	}
	status, resp, err := h()
	if fault != nil && fault.Kind == FaultDrop {
		// Applied (or refused) as usual; the client hears nothing.
		if sw, ok := w.(*statusWriter); ok {
			if conn, _, herr := http.NewResponseController(sw.ResponseWriter).Hijack(); herr == nil {
				sw.Status = 0
				done()
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // no hijacking: abort the answer instead
	}
	if fault != nil && fault.Kind == FaultStatus {
		// Served; the gateway's status is what the client gets.
		writeError(w, faultError(fault))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if fault != nil && fault.Kind == FaultOmit && !fault.Unapplied {
		omitFirst(resp)
	}
	if fault != nil && fault.Kind == FaultBody {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(fault.Body))
		return
	}
	if strings.HasSuffix(r.URL.EscapedPath(), "/entities/search") && acceptsGzip(r) {
		writeGzipJSON(w, status, resp)
		return
	}
	writeJSON(w, status, resp)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// writeGzipJSON is writeJSON compressed: Port compresses search answers
// ("this response can be compressed") for a client that accepts it.
func writeGzipJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeJSON(w, status, v)
		return
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Set("Vary", "Accept-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// splitPath splits an escaped path and unescapes each segment, so an
// identifier sent as a%2Fb stays one segment.
func splitPath(p string) ([]string, bool) {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, true
	}
	raw := strings.Split(p, "/")
	out := make([]string, len(raw))
	for i, seg := range raw {
		u, err := url.PathUnescape(seg)
		if err != nil || u == "" {
			return nil, false
		}
		out[i] = u
	}
	return out, true
}

// apiError is a Port error response: {ok:false, error, message}.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func invalid(format string, args ...any) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, code: "invalid_request", msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: "not_found", msg: fmt.Sprintf(format, args...)}
}

// faultError is the answer of a FaultStatus: Port's error shape, as its
// gateway's 5xx carries it (or would, translated).
func faultError(f *Fault) *apiError {
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return &apiError{status: status, code: "internal_error", msg: fmt.Sprintf("injected %d", status)}
}

func conflict(format string, args ...any) *apiError {
	return &apiError{status: http.StatusConflict, code: "conflict", msg: fmt.Sprintf(format, args...)}
}

// writeError answers {ok:false, error, message}; message is left out when
// empty, as Port's 401 and 413 answers may (their schemas do not require it).
func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"ok": false, "error": e.code}
	if e.msg != "" {
		body["message"] = e.msg
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"ok":false,"error":"internal_error","message":"encoding response"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeObject decodes a JSON object body keeping numbers exact.
func decodeObject(body []byte) (map[string]any, *apiError) {
	v, err := decodeJSON(body)
	if err != nil {
		return nil, invalid("body is not valid JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("body must be a JSON object")
	}
	return m, nil
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

// boolParam reads a boolean query parameter sent as "true"/"false".
func boolParam(q url.Values, name string) (bool, *apiError) {
	v := q.Get(name)
	switch v {
	case "":
		return false, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, invalid("querystring/%s must be boolean, got %q", name, v)
}
