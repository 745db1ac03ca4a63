package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/statuswriter"
)

// Options configure a [Server]. The zero value is usable: see the field
// comments for defaults.
type Options struct {
	// Token is the NG/CCM API key expected in x-api-key.
	// Default "pat.<AccountID>.sim.token".
	Token string
	// SEIKey is the SEI API key expected as "Authorization: ApiKey <key>".
	// Default "sei.sim.key". It is deliberately different from Token.
	SEIKey string
	// AccountID is the accountIdentifier every NG/CCM call must carry.
	// Default: the served Account's ID.
	AccountID string
	// SEIPrefix is the path the SEI API is mounted under. Default "/prod1/sei/api".
	SEIPrefix string
	// PageTokens makes /ng/api/projects behave like newer Harness builds:
	// data.pageToken carries an opaque token for the next page ("" on the
	// last page) and a pageToken query parameter takes precedence over
	// pageIndex. When false the field is absent and the parameter ignored,
	// like older builds.
	PageTokens bool
	// RateLimit is the number of requests allowed per Window across the
	// whole server; above it the server answers 429 without Retry-After.
	// 0 disables limiting.
	RateLimit int
	// Window is the fixed rate-limit window. Default one minute.
	Window time.Duration
	// Latency delays every response (cut short if the client goes away).
	Latency time.Duration
	// Now is the clock used for rate-limit windows, request times and SEI
	// error timestamps. Default time.Now.
	Now func() time.Time
	// FailPath, when it returns a status >= 400 for a request, makes the
	// server answer with that status and the API's error body instead of
	// serving it. It runs after rate limiting and before routing.
	FailPath func(method, path string) int
	// Logger receives one debug line per request (no secrets). Default discard.
	Logger *slog.Logger
	// Addr is the listen address used by [Start]. Default "127.0.0.1:0".
	Addr string
}

func (o Options) withDefaults(acct *Account) Options {
	if o.AccountID == "" && acct != nil {
		o.AccountID = acct.ID
	}
	if o.Token == "" {
		o.Token = "pat." + o.AccountID + ".sim.token"
	}
	if o.SEIKey == "" {
		o.SEIKey = "sei.sim.key"
	}
	if o.SEIPrefix == "" {
		o.SEIPrefix = "/prod1/sei/api"
	}
	o.SEIPrefix = "/" + strings.Trim(o.SEIPrefix, "/")
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	return o
}

// Request is one request as the server saw it, for assertions. Header holds
// the credentials sent; it is kept in memory only and never logged.
type Request struct {
	Seq    int // 1-based arrival order
	Time   time.Time
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	Status int // status the server answered with
}

// Server simulates the Harness NG, CCM and SEI endpoints ferry reads. It is
// an http.Handler; use it with httptest.NewServer or [Start].
type Server struct {
	opts Options

	mu   sync.RWMutex // guards acct
	acct *Account

	logMu    sync.Mutex // guards log, seq and the rate-limit window
	log      []Request
	seq      int
	winStart time.Time
	winCount int

	// Set by Start.
	httpSrv  *http.Server
	baseURL  string
	done     chan struct{}
	serveErr error
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a simulator serving acct. The server reads acct on every
// request; change it only through [Server.Update] while serving.
func NewServer(acct *Account, opts Options) *Server {
	if acct == nil {
		acct = &Account{}
	}
	return &Server{opts: opts.withDefaults(acct), acct: acct}
}

// Options returns the effective options, defaults filled in (including the
// Token and SEIKey a client must send).
func (s *Server) Options() Options { return s.opts }

// Update runs fn with exclusive access to the served account, so tests can
// change data between (or during) requests without racing the handlers.
func (s *Server) Update(fn func(a *Account)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.acct)
}

// Requests returns a copy of the request log in arrival order.
func (s *Server) Requests() []Request {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	out := make([]Request, len(s.log))
	copy(out, s.log)
	return out
}

// ResetRequests empties the request log (the rate-limit window is kept).
func (s *Server) ResetRequests() {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.log = nil
}

// statusWriter remembers the status code for the request log.
type statusWriter = statuswriter.Writer

// maxBody bounds what the simulator reads from a request body.
const maxBody = 1 << 20

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	now := s.opts.Now()

	s.logMu.Lock()
	s.seq++
	seq := s.seq
	limited := false
	if s.opts.RateLimit > 0 {
		if s.winStart.IsZero() || now.Sub(s.winStart) >= s.opts.Window {
			s.winStart, s.winCount = now, 0
		}
		s.winCount++
		limited = s.winCount > s.opts.RateLimit
	}
	idx := len(s.log)
	s.log = append(s.log, Request{
		Seq: seq, Time: now, Method: r.Method, Path: r.URL.Path,
		Query: r.URL.Query(), Header: r.Header.Clone(), Body: body,
	})
	s.logMu.Unlock()

	sw := &statusWriter{ResponseWriter: w}
	rc := &reqCtx{srv: s, w: sw, r: r, body: body, seq: seq, now: now}
	if s.opts.Latency > 0 {
		t := time.NewTimer(s.opts.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	s.dispatch(rc, limited)

	s.logMu.Lock()
	// ResetRequests may have dropped the entry meanwhile.
	if idx < len(s.log) && s.log[idx].Seq == seq {
		s.log[idx].Status = sw.Status
	}
	s.logMu.Unlock()
	s.opts.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.Status)
}

func (s *Server) dispatch(rc *reqCtx, limited bool) {
	path := rc.r.URL.Path
	sei := s.isSEIPath(path)
	if limited {
		// Harness's edge (Cloud Armor) sends no Retry-After.
		rc.fail(http.StatusTooManyRequests, sei)
		return
	}
	if s.opts.FailPath != nil {
		if code := s.opts.FailPath(rc.r.Method, path); code >= 400 {
			rc.fail(code, sei)
			return
		}
	}
	if sei {
		s.serveSEI(rc, strings.TrimPrefix(path, s.opts.SEIPrefix))
		return
	}
	s.serveNG(rc, path)
}

func (s *Server) isSEIPath(p string) bool {
	return p == s.opts.SEIPrefix || strings.HasPrefix(p, s.opts.SEIPrefix+"/")
}

// reqCtx carries one request through the handlers.
type reqCtx struct {
	srv  *Server
	w    *statusWriter
	r    *http.Request
	body []byte
	seq  int
	now  time.Time
}

// correlationID is deterministic per request sequence, so golden output
// that includes it is stable for a fixed request order.
func (rc *reqCtx) correlationID() string {
	h := fnv.New128a()
	fmt.Fprintf(h, "%s/%d", rc.srv.opts.AccountID, rc.seq)
	b := h.Sum(nil)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// encodeJSON encodes v the way a Jackson server does: no HTML escaping, no
// trailing newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeJSON encodes and writes v with status.
func (rc *reqCtx) writeJSON(status int, v any) {
	b, err := encodeJSON(v)
	rc.writeBytes(status, b, err)
}

// writeBytes writes an encoded JSON body, or a plain 500 if encoding failed.
func (rc *reqCtx) writeBytes(status int, b []byte, err error) {
	if err != nil {
		rc.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rc.w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(rc.w, "simulator: %v", err)
		return
	}
	rc.w.Header().Set("Content-Type", "application/json")
	rc.w.WriteHeader(status)
	_, _ = rc.w.Write(b)
}

// fail answers with status and the error body of the API the path belongs to.
func (rc *reqCtx) fail(status int, sei bool) {
	msg := http.StatusText(status)
	if status == http.StatusTooManyRequests {
		// The limit is enforced at Harness's edge, in front of every
		// service, so SEI paths get the same body.
		rc.ngError(status, errorCode(status), "Too many requests. Please try again later.")
		return
	}
	if sei {
		rc.seiError(status, msg)
		return
	}
	rc.ngError(status, errorCode(status), msg)
}

func errorCode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "INVALID_TOKEN"
	case http.StatusForbidden:
		return "ACCESS_DENIED"
	case http.StatusNotFound:
		return "RESOURCE_NOT_FOUND"
	case http.StatusMethodNotAllowed:
		return "METHOD_NOT_ALLOWED"
	case http.StatusTooManyRequests:
		return "TOO_MANY_REQUESTS"
	case http.StatusBadRequest:
		return "INVALID_REQUEST"
	}
	return "UNEXPECTED"
}

// Start serves acct on opts.Addr (loopback by default) until ctx is done or
// [Server.Close] is called. Use [Server.URL] and [Server.SEIBaseURL] for the
// base URLs a client needs.
func Start(ctx context.Context, acct *Account, opts Options) (*Server, error) {
	s := NewServer(acct, opts)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("harness simulator: listen: %w", err)
	}
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.baseURL = "http://" + ln.Addr().String()
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.httpSrv.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// URL is the NG/CCM base URL (e.g. http://127.0.0.1:1234) of a server made
// by [Start]; "" otherwise.
func (s *Server) URL() string { return s.baseURL }

// SEIBaseURL is the SEI base URL (URL plus SEIPrefix) of a server made by
// [Start]; "" otherwise.
func (s *Server) SEIBaseURL() string {
	if s.baseURL == "" {
		return ""
	}
	return s.baseURL + s.opts.SEIPrefix
}

// SEIPrefix is the effective path prefix of the SEI API.
func (s *Server) SEIPrefix() string { return s.opts.SEIPrefix }

// Close stops a server made by [Start] and waits for it to finish. It is a
// no-op for servers made by [NewServer].
func (s *Server) Close() error {
	if s.httpSrv == nil {
		return nil
	}
	err := s.httpSrv.Close()
	<-s.done
	if err != nil {
		return fmt.Errorf("harness simulator: close: %w", err)
	}
	if s.serveErr != nil {
		return fmt.Errorf("harness simulator: serve: %w", s.serveErr)
	}
	return nil
}
