package humanitec

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/statuswriter"
)

// DefaultToken is the bearer token the server accepts when Options.Token is
// empty. It is a fixed, non-secret value for tests and the demo.
const DefaultToken = "humanitec-sim-token"

// Options configure a [Server].
type Options struct {
	// Token is the only bearer token accepted; DefaultToken when empty.
	Token string
	// OrgID is the organisation id served; the Org's own ID when empty.
	OrgID string
	// RateLimit is the number of requests accepted within any Window; more
	// are answered 429 with an error body and no Retry-After (the API
	// documents none). Zero disables the limit.
	RateLimit int
	// Window is the sliding rate-limit window; one second when zero.
	Window time.Duration
	// Latency delays every response by this much (through Sleep).
	Latency time.Duration
	// Sleep waits for Latency; a context-aware timer when nil. Tests inject
	// their own so nothing really sleeps.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for rate limiting and the request log; time.Now when nil.
	Now func() time.Time
	// FailPath, when set, is asked for every authenticated request to a known
	// route; a non-zero status is returned instead of the real answer, with
	// the error body that route uses.
	FailPath func(method, path string) int
	// FailGroupMembers, when set, is asked for every request for a group's
	// member list (GET /groups/{groupId}/users) with a well-formed group id;
	// a non-zero status is returned instead of the members, with an error
	// body ("Group not found." for 404). It makes one group's members fail
	// while the listing of users and groups still answers. Like FailPath it
	// runs after auth and routing, before the data is read (so it may call
	// [Server.Update]).
	FailGroupMembers func(groupID string) int
	// Sparse answers some records as sparsely as the vendor's own OpenAPI
	// examples do, leaving out fields the schemas call required (see
	// sparsen): the last environment of a list is {}, resources lack
	// status and driver_type, a value its source and timestamps, a set its
	// id, a delta its metadata, a graph node its resource. Bodies then no
	// longer match the schemas.
	Sparse bool
	// Logger receives one debug record per request; discarded when nil.
	Logger *slog.Logger
	// Addr is the listen address used by [Start]; 127.0.0.1:0 when empty.
	Addr string
}

// Request is one entry of the request log.
type Request struct {
	Method  string
	Path    string     // decoded path
	RawPath string     // path as sent on the wire (escaped)
	Query   url.Values // parsed query
	AuthOK  bool       // the bearer token was accepted
	Status  int        // status code answered
	At      time.Time  // arrival, from Options.Now
}

// Server is an http.Handler that answers like the Humanitec Platform
// Orchestrator API for one organisation. It is safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	routes []route

	mu  sync.RWMutex // guards org
	org *Org

	reqMu sync.Mutex // guards reqs and hits
	reqs  []Request
	hits  []time.Time // arrivals accepted by the rate limiter, oldest first
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a handler serving org with opts.
func NewServer(org *Org, opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.Window <= 0 {
		opts.Window = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if org == nil {
		org = &Org{}
	}
	return &Server{opts: opts, log: log, routes: routes(), org: org}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Update runs fn with exclusive access to the served organisation, so tests
// can change data while the server is running.
func (s *Server) Update(fn func(org *Org)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.org)
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.reqs = nil
}

// orgID is the id the organisation is served under.
func (s *Server) orgID() string {
	if s.opts.OrgID != "" {
		return s.opts.OrgID
	}
	return s.org.ID
}

// statusWriter remembers the status code for the request log.
type statusWriter = statuswriter.Writer

// ServeHTTP answers one request: latency, rate limit, auth, routing,
// scripted faults, then the endpoint itself.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := s.opts.Now()
	sw := &statusWriter{ResponseWriter: w}
	authOK := s.authorized(r)
	defer func() {
		s.reqMu.Lock()
		s.reqs = append(s.reqs, Request{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
			Query: r.URL.Query(), AuthOK: authOK, Status: sw.Status, At: at,
		})
		s.reqMu.Unlock()
		s.log.Debug("request", "method", r.Method, "path", r.URL.EscapedPath(), "status", sw.Status)
	}()

	if s.opts.Latency > 0 {
		if err := s.opts.Sleep(r.Context(), s.opts.Latency); err != nil {
			// The client went away; nobody reads an answer.
			sw.Status = 499
			return
		}
	}
	if !s.allow(at) {
		writeError(sw, http.StatusTooManyRequests, "API-429", "Too many requests - request rate limit has been reached.")
		return
	}
	if !authOK {
		msg := "Could not validate token."
		if r.Header.Get("Authorization") == "" {
			msg = "Authorization header is missing."
		}
		writeError(sw, http.StatusUnauthorized, "API-000", msg)
		return
	}
	rt, params, ok := match(s.routes, r.URL.EscapedPath())
	if !ok {
		writeError(sw, http.StatusNotFound, "API-404", "Not found.")
		return
	}
	if r.Method != http.MethodGet {
		sw.Header().Set("Allow", http.MethodGet)
		writeError(sw, http.StatusMethodNotAllowed, "API-405", "Method not allowed.")
		return
	}
	c := &call{s: s, w: sw, r: r, rt: rt, params: params}
	if s.opts.FailPath != nil {
		if code := s.opts.FailPath(r.Method, r.URL.Path); code != 0 {
			c.fail(code, "Scripted failure.")
			return
		}
	}
	if rt.fault != nil {
		if code, msg := rt.fault(&s.opts, params); code != 0 {
			c.fail(code, msg)
			return
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if params["orgId"] != s.orgID() {
		c.notFound("Organization not found.")
		return
	}
	rt.handle(c)
}

// authorized reports whether the request carries the configured bearer token.
func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.opts.Token)) == 1
}

// allow applies the sliding-window rate limit. Rejected requests do not
// count against the window, so a client that backs off recovers.
func (s *Server) allow(now time.Time) bool {
	if s.opts.RateLimit <= 0 {
		return true
	}
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	cut := now.Add(-s.opts.Window)
	drop := 0
	for drop < len(s.hits) && !s.hits[drop].After(cut) {
		drop++
	}
	s.hits = s.hits[drop:]
	if len(s.hits) >= s.opts.RateLimit {
		return false
	}
	s.hits = append(s.hits, now)
	return true
}

// errorBody is HumanitecErrorResponse.
type errorBody struct {
	Error   string         `json:"error"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		// Only a value planted by a test (say a channel in a resource map)
		// gets here; answer the way the API answers internal errors.
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(errorBody{Error: "API-500", Message: "Internal error."})
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}

// call is one request being served by a route handler.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	rt     *route
	params map[string]string
}

// fail answers status with the error body this route uses for it.
func (c *call) fail(status int, msg string) {
	if status == http.StatusNotFound && c.rt.bareNotFound {
		writeJSON(c.w, status, msg)
		return
	}
	writeError(c.w, status, fmt.Sprintf("API-%d", status), msg)
}

func (c *call) notFound(msg string) { c.fail(http.StatusNotFound, msg) }

func (c *call) badRequest(msg string) { c.fail(http.StatusBadRequest, msg) }

func (c *call) ok(v any) {
	if c.s.opts.Sparse {
		v = sparsen("/"+strings.Join(c.rt.segs, "/"), v)
	}
	writeJSON(c.w, http.StatusOK, v)
}

// app looks up the app of the path, answering 404 when it does not exist.
func (c *call) app() (*App, bool) {
	a := c.s.org.App(c.params["appId"])
	if a == nil {
		c.notFound("Application not found.")
		return nil, false
	}
	return a, true
}

// env looks up the app and env of the path, answering 404 when either is
// missing.
func (c *call) env() (*App, *Env, bool) {
	a, ok := c.app()
	if !ok {
		return nil, nil, false
	}
	e := a.Env(c.params["envId"])
	if e == nil {
		c.notFound("Environment " + c.s.orgID() + "/" + a.ID + "/" + c.params["envId"] + " does not exist")
		return nil, nil, false
	}
	return a, e, true
}
