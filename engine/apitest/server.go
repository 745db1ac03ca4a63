package apitest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBody caps a recorded request body; larger bodies get 413.
const maxBody = 8 << 20

// Server is a running simulator. All methods are safe for concurrent use.
type Server struct {
	ts      *httptest.Server
	url     string
	clock   Clock
	log     *slog.Logger
	auth    *AuthCheck
	issuer  *issuerState
	latency time.Duration
	limiter *rateLimiter
	stop    context.CancelFunc // cancels every request's context on Close

	mu     sync.Mutex
	routes []*compiledRoute
	reqs   []Recorded
	errs   []error

	inFlight  atomic.Int64
	peak      atomic.Int64
	closeOnce sync.Once
}

// Recorded is one request as the server received it. Route, Params and
// Status are filled in when the reply has been sent (Route is -1 when no
// route matched; Status is 0 for a dropped connection or a request still
// in flight).
type Recorded struct {
	Method  string
	Path    string // decoded
	RawPath string // as sent (escaped)
	Query   url.Values
	Header  http.Header
	Body    []byte
	Time    time.Time
	Route   int
	Params  map[string]string
	Status  int
}

// New starts a simulator for f on 127.0.0.1. It does not fail: a route
// that does not validate answers every request it matches with a 500
// naming the problem, and [Server.Err] reports it. Use [Start] to get the
// error up front.
func New(f Fixture, opts ...Option) *Server {
	s, _ := start(f, opts)
	return s
}

// Start is New that returns the fixture's validation error (and does not
// start) when the fixture is invalid.
func Start(f Fixture, opts ...Option) (*Server, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("invalid fixture: %w", err)
	}
	s, err := start(f, opts)
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// StartFile loads a fixture file (see [Load]) and starts it.
func StartFile(path string, opts ...Option) (*Server, error) {
	f, err := Load(path)
	if err != nil {
		return nil, err
	}
	return Start(f, opts...)
}

func start(f Fixture, opts []Option) (*Server, error) {
	cfg := config{clock: realClock{}, logger: slog.New(slog.DiscardHandler), rate: f.RateLimit}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{clock: cfg.clock, log: cfg.logger, auth: f.Auth, latency: f.Latency.Duration}
	if rl := cfg.rate; rl != nil && rl.Limit > 0 && rl.Per.Duration > 0 {
		s.limiter = &rateLimiter{limit: rl.Limit, per: rl.Per.Duration, headers: rl.Headers, github: rl.Style == RateStyleGitHub}
	}
	if f.Issuer != nil {
		if errs := f.Issuer.validate(f.Auth); len(errs) > 0 {
			s.errs = append(s.errs, errs...)
		} else {
			s.issuer = newIssuerState(f.Issuer)
		}
	}
	for _, r := range f.Routes {
		s.Handle(r)
	}
	if f.Auth != nil && f.Auth.Header == "" && f.Auth.Query == "" {
		s.errs = append(s.errs, errors.New("auth: set header or query"))
	}
	// The server owns its lifetime (like http.Server's BaseContext): Close
	// cancels this root so handlers asleep in a latency return at once.
	base, stop := context.WithCancel(context.Background())
	s.stop = stop
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		err = fmt.Errorf("listen: %w", err)
		s.errs = append(s.errs, err)
		return s, err
	}
	s.ts = &httptest.Server{
		Listener: l,
		Config: &http.Server{
			Handler:           s,
			BaseContext:       func(net.Listener) context.Context { return base },
			ReadHeaderTimeout: time.Minute,
		},
	}
	s.ts.Start()
	s.url = s.ts.URL
	return s, s.Err()
}

// URL is the base URL, e.g. http://127.0.0.1:41234 (no trailing slash).
func (s *Server) URL() string { return s.url }

// Client returns an HTTP client for the server (keep-alive, no timeout).
func (s *Server) Client() *http.Client {
	if s.ts == nil {
		return http.DefaultClient
	}
	return s.ts.Client()
}

// Close stops the server. Requests sleeping in a latency or delay are
// released at once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		if s.ts != nil {
			s.ts.Close()
		}
	})
}

// Err reports invalid routes (from the fixture or Handle) and a failed start.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Handle adds a route after the existing ones (earlier routes win).
func (s *Server) Handle(r Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := compileRoute(r, len(s.routes))
	if cr.err != nil {
		s.errs = append(s.errs, fmt.Errorf("routes[%d]: %w", cr.index, cr.err))
	}
	s.routes = append(s.routes, cr)
}

// Requests returns a copy of every request received so far, in arrival order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = r.clone()
	}
	return out
}

// RequestsFor returns the requests whose method and path match (see [Server.Count]).
func (s *Server) RequestsFor(method, path string) []Recorded {
	match := requestMatcher(method, path)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Recorded
	for _, r := range s.reqs {
		if match(&r) {
			out = append(out, r.clone())
		}
	}
	return out
}

// Count returns how many requests had this method ("" for any) and path.
// The path is compared with the request path as sent and decoded; a path
// with {name} segments is matched as a route pattern.
func (s *Server) Count(method, path string) int {
	match := requestMatcher(method, path)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := range s.reqs {
		if match(&s.reqs[i]) {
			n++
		}
	}
	return n
}

func requestMatcher(method, path string) func(*Recorded) bool {
	pattern, err := compilePath(path)
	usePattern := err == nil && pattern.params
	return func(r *Recorded) bool {
		if method != "" && !strings.EqualFold(method, r.Method) {
			return false
		}
		if usePattern {
			_, ok := pattern.match(r.RawPath)
			return ok
		}
		return r.RawPath == path || r.Path == path
	}
}

// InFlight returns how many requests are being handled now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// PeakConcurrency returns the most requests ever handled at once.
func (s *Server) PeakConcurrency() int { return int(s.peak.Load()) }

func (r Recorded) clone() Recorded {
	c := r
	c.Query = url.Values{}
	for k, v := range r.Query {
		c.Query[k] = append([]string(nil), v...)
	}
	c.Header = r.Header.Clone()
	c.Body = append([]byte(nil), r.Body...)
	if r.Params != nil {
		c.Params = make(map[string]string, len(r.Params))
		for k, v := range r.Params {
			c.Params[k] = v
		}
	}
	return c
}

// action says how a reply leaves the server.
type action int

const (
	send     action = iota
	truncate        // full Content-Length, half the body, then close
	drop            // close the connection without a response
	abandon         // the client or the server went away mid-wait
)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}

	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	rec := Recorded{
		Method:  r.Method,
		Path:    r.URL.Path,
		RawPath: r.URL.EscapedPath(),
		Query:   r.URL.Query(),
		Header:  r.Header.Clone(),
		Body:    body,
		Time:    s.clock.Now(),
		Route:   -1,
	}
	s.mu.Lock()
	idx := len(s.reqs)
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()

	rq := &request{r: r, query: rec.Query, body: body}
	var (
		rep reply
		act action
		cr  *compiledRoute
	)
	switch {
	case readErr != nil:
		act = abandon
	case len(body) > maxBody:
		rep = errorReply(http.StatusRequestEntityTooLarge, "too_large", "request body too large")
	default:
		rep, act, cr = s.serve(r.Context(), rq)
	}

	status := s.write(w, rep, act)
	s.mu.Lock()
	s.reqs[idx].Status = status
	if cr != nil {
		s.reqs[idx].Route = cr.index
		s.reqs[idx].Params = rq.params
	}
	s.mu.Unlock()
	route := -1
	if cr != nil {
		route = cr.index
	}
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "route", route)
}

// serve decides the reply: latency, rate limit, routing, auth, faults.
func (s *Server) serve(ctx context.Context, rq *request) (reply, action, *compiledRoute) {
	if s.clock.Sleep(ctx, s.latency) != nil {
		return reply{}, abandon, nil
	}
	extra := http.Header{}
	if s.limiter != nil && !s.limiter.take(s.clock.Now(), extra) {
		rep := errorReply(http.StatusTooManyRequests, "rate_limited", "too many requests")
		if s.limiter.github {
			rep = githubError(http.StatusForbidden, "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.")
		}
		mergeHeader(rep.header, extra)
		return rep, send, nil
	}
	if s.issuer != nil && s.issuer.handles(rq.r) {
		rep := s.issuer.reply(rq, s.clock.Now())
		mergeHeader(rep.header, extra)
		return rep, send, nil
	}
	cr, params, allowed := s.match(rq)
	rq.params = params
	if (cr == nil || !cr.Public) && !s.authorized(rq) {
		rep := s.authReply()
		mergeHeader(rep.header, extra)
		return rep, send, cr
	}
	if cr == nil {
		var rep reply
		if len(allowed) > 0 {
			rep = errorReply(http.StatusMethodNotAllowed, "method_not_allowed", rq.r.Method+" not allowed on "+rq.r.URL.Path)
			rep.header.Set("Allow", strings.Join(allowed, ", "))
		} else {
			rep = errorReply(http.StatusNotFound, "not_found", "no route for "+rq.r.Method+" "+rq.r.URL.Path)
		}
		mergeHeader(rep.header, extra)
		return rep, send, nil
	}
	if cr.err != nil {
		return errorReply(http.StatusInternalServerError, "apitest", fmt.Sprintf("invalid route %d: %v", cr.index, cr.err)), send, cr
	}

	var fault *Fault
	s.mu.Lock()
	if cr.hits < len(cr.Faults) {
		fault = &cr.Faults[cr.hits]
	}
	cr.hits++
	s.mu.Unlock()

	if s.clock.Sleep(ctx, cr.Latency.Duration) != nil {
		return reply{}, abandon, cr
	}
	if fault != nil && s.clock.Sleep(ctx, fault.Delay.Duration) != nil {
		return reply{}, abandon, cr
	}

	var rep reply
	switch {
	case cr.Echo:
		rep = echoReply(rq, cr)
	case cr.isCollection():
		rep = s.collectionReply(rq, cr)
	default:
		rep = s.staticReply(rq, cr)
	}
	act := send
	if fault != nil {
		rep, act = applyFault(rep, fault)
	}
	mergeHeader(rep.header, extra)
	return rep, act, cr
}

// match picks the first route whose method, path and query match. When
// only the method differs, allowed lists the methods that would have.
func (s *Server) match(rq *request) (*compiledRoute, map[string]string, []string) {
	s.mu.Lock()
	routes := s.routes
	s.mu.Unlock()
	escaped := rq.r.URL.EscapedPath()
	var allowed []string
	for _, cr := range routes {
		params, ok := cr.pattern.match(escaped)
		if !ok || !cr.queryMatches(rq.query) {
			continue
		}
		if cr.Method != rq.r.Method {
			allowed = append(allowed, cr.Method)
			continue
		}
		return cr, params, nil
	}
	return nil, nil, allowed
}

func (s *Server) authorized(rq *request) bool {
	a := s.auth
	if a == nil || (a.Header == "" && a.Query == "") {
		return true
	}
	if s.issuer != nil {
		tok := s.issuer.credential(rq, a)
		return tok != "" && s.issuer.valid(tok, s.clock.Now())
	}
	ok := func(v string) bool { return v != "" && (a.Value == "" || v == a.Value) }
	if a.Header != "" && ok(rq.r.Header.Get(a.Header)) {
		return true
	}
	return a.Query != "" && ok(rq.query.Get(a.Query))
}

func (s *Server) authReply() reply {
	status := statusOr(s.auth.Status, http.StatusUnauthorized)
	if s.auth.Body != nil {
		return jsonReply(status, nil, s.auth.Body)
	}
	return errorReply(status, "unauthorized", "missing or invalid credentials")
}

// applyFault turns the normal reply into the scripted misbehaviour.
func applyFault(rep reply, f *Fault) (reply, action) {
	switch {
	case f.Drop:
		return reply{}, drop
	case f.Truncate:
		rep.status = statusOr(f.Status, rep.status)
		setHeaders(rep.header, f.Headers)
		return rep, truncate
	case f.NonJSON:
		body := f.Body
		if body == "" {
			body = "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>" +
				"<body><h1>We'll be back soon</h1><p>The service is temporarily unavailable.</p></body></html>\n"
		}
		h := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
		setHeaders(h, f.Headers)
		return reply{status: statusOr(f.Status, http.StatusOK), header: h, body: []byte(body)}, send
	case f.Status != 0:
		var r reply
		if f.Body != "" {
			r = reply{status: f.Status, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(f.Body)}
		} else {
			r = errorReply(f.Status, "simulated_fault", http.StatusText(f.Status))
		}
		setHeaders(r.header, f.Headers)
		return r, send
	default:
		setHeaders(rep.header, f.Headers)
		return rep, send
	}
}

func setHeaders(h http.Header, m map[string]string) {
	for k, v := range m {
		h.Set(k, v)
	}
}

func mergeHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// write sends the reply and returns the status the client saw (0 if none).
func (s *Server) write(w http.ResponseWriter, rep reply, act action) int {
	switch act {
	case abandon:
		return 0
	case drop, truncate:
		hj, ok := w.(http.Hijacker)
		if !ok {
			// Cannot damage the connection (HTTP/2): fail loudly instead.
			rep = errorReply(http.StatusInternalServerError, "apitest", "connection cannot be hijacked")
			break
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			return 0
		}
		defer conn.Close()
		if act == drop {
			return 0
		}
		writeTruncated(buf, rep, s.clock.Now())
		return rep.status
	}
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if rep.status != http.StatusNoContent && rep.status != http.StatusNotModified {
		h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body) // the client may be gone; nothing to do
	return rep.status
}

// writeTruncated writes a response whose Content-Length promises the whole
// body and then delivers half of it.
func writeTruncated(buf *bufio.ReadWriter, rep reply, now time.Time) {
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", rep.status, http.StatusText(rep.status))
	h := rep.header.Clone()
	h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	_ = h.Write(buf)
	_, _ = buf.WriteString("\r\n")
	_, _ = buf.Write(rep.body[:len(rep.body)/2])
	_ = buf.Flush()
}
