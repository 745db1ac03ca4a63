package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-resty/resty/v2"
	"golang.org/x/time/rate"
)

// Defaults applied to a zero HostConfig.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 8
	// DefaultMaxBodyBytes caps a response body: far above any real API
	// page (tens of KiB to a few MiB), low enough that a runaway answer
	// cannot exhaust memory at the default concurrency (8 × 32 MiB).
	DefaultMaxBodyBytes = 32 << 20
)

// Retry says when and how often a request is re-sent.
type Retry struct {
	Attempts     int           // total attempts, retries included; 0 means 5
	Statuses     []int         // retried statuses; nil means DefaultStatuses(), empty means none
	Initial, Max time.Duration // backoff bounds; 0 means 500ms and 30s
}

// HostConfig is one spec's HTTP settings. Limits (Concurrency,
// RatePerSecond, Burst) belong to the host of BaseURL, not the config: see
// [Pool.Client].
type HostConfig struct {
	BaseURL string            // scheme://host[:port][/path prefix]; no query; may be empty
	Headers map[string]string // sent only to BaseURL's scheme and host
	// SecretHeaders names the Headers whose values are credentials (a
	// spec's header built from a secret input): redacted as auth tokens
	// are. Authorization, Proxy-Authorization and Cookie are credentials
	// whether named here or not.
	SecretHeaders []string
	Auth          Auth
	Timeout       time.Duration // per attempt; 0 means 30s
	Retry         Retry
	// RetryPOST lets POSTs be retried like GETs; nil means true, because
	// ferry's POSTs are read-only queries. PATCH is never retried.
	RetryPOST     *bool
	RatePerSecond float64 // 0 means unlimited
	Burst         int     // with RatePerSecond; 0 means 1
	// OwnRatePerSecond is a ceiling on this client's own requests (a
	// stream's rate_limit: one endpoint's limit, such as a search API's),
	// besides the host's; 0 means none. OwnBurst is its burst (0: 1).
	OwnRatePerSecond float64
	OwnBurst         int
	// OwnRateGroup names a ceiling the clients of one base URL's host
	// that give the same name share (one limit across a search API's
	// object types); "" is the client's alone.
	OwnRateGroup string
	Concurrency  int // requests in flight to the host; 0 means 8
	// RateHeaders paces the host's requests to the rate its
	// x-ratelimit-limit and x-ratelimit-period headers announce, and holds
	// them after a rate limit or x-ratelimit-remaining 0 until x-ratelimit-reset
	// (Retry-After wins). Like the other limits it belongs to the host:
	// one config asking for it throttles every client of the host.
	RateHeaders bool
	// Budget names the headers in which the host announces its request
	// budget, when they are not the standard ones (see [BudgetHeaders]).
	// Like the other limits it belongs to the host: the first config
	// that names them names them for every client of the host.
	Budget BudgetHeaders
	// OtherBudgets names further budgets every answer announces (an
	// organization's and its user's: Buildkite's), each tracked on its
	// own as Budget is: no request starts while any is spent, until its
	// reset. Unlike Budget's, their counts are read only from the named
	// headers, never from the standard ones. Named by the first config
	// that names them, as Budget.
	OtherBudgets []BudgetHeaders
	// MaxBodyBytes caps a response body; 0 means DefaultMaxBodyBytes. A
	// larger body fails the request with ErrBodyTooLarge (never
	// truncated) and is not retried.
	MaxBodyBytes int64
	// Rules decide, in order, what an answer is before the default
	// handling (see [Rule]); the first that matches wins.
	Rules []Rule
	// TLS verifies the hosts and carries a client certificate; its files
	// are read by Client, once per pool (see [TLS] for which hosts get
	// what).
	TLS TLS
}

// Options configures a Pool. Every field is optional.
type Options struct {
	Logger  *slog.Logger // default: discard
	Secrets []string     // extra values to redact everywhere
	// Sleep waits between attempts and for the rate limiter; it must
	// return ctx.Err() as soon as ctx is done. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	Now   func() time.Time // default time.Now
	// Transport replaces the pool's per-host transports for every host;
	// its connection limits are then the caller's business.
	Transport http.RoundTripper
	// WrapTransport, when set, wraps each transport the pool makes (with
	// its TLS settings), e.g. to record what goes through it. Not applied
	// to Transport.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	Rand          func() float64 // jitter source in [0, 1); default math/rand/v2
	// Credentials keeps rotated OAuth2 refresh tokens for the next run;
	// nil keeps them for this run only (with a warning when one rotates).
	Credentials Credentials
}

// Pool owns the per-host limits, transports, OAuth2 tokens and the
// redactor shared by every Client it hands out. It is safe for
// concurrent use.
type Pool struct {
	chunks    chunks // what bodies of unknown length are read into
	log       *slog.Logger
	sleep     func(context.Context, time.Duration) error
	now       func() time.Time
	rnd       func() float64
	transport http.RoundTripper
	wrap      func(http.RoundTripper) http.RoundTripper
	red       *redactor
	creds     Credentials

	requests, retries, errors atomic.Int64

	mu       sync.Mutex
	hosts    map[string]*host
	tokens   map[string]*tokenSource
	authHost *host

	groups    map[string]*rate.Limiter // OwnRateGroup's, by origin and name
	tlsSetups map[TLS]*tlsSetup
	tlsRest   map[restKey]*resty.Client // transports with a config's TLS, by host
}

// host is the state shared by all clients of one scheme+host.
type host struct {
	origin   string
	gate     *gate
	lim      atomic.Pointer[rate.Limiter] // nil: unlimited
	throttle atomic.Pointer[throttle]     // nil: RateHeaders off
	adapt    *adaptive                    // rate control when the throttle is off; nil for the token host
	rest     *resty.Client

	rate  float64 // current limits, guarded by Pool.mu
	burst int

	requests, retries, errors atomic.Int64
}

// hold keeps every request to the host from starting before until (a
// retry rule's wait, for an API that refuses all requests until it has had
// a quiet spell).
func (h *host) hold(until time.Time) {
	if th := h.throttle.Load(); th != nil {
		th.mu.Lock()
		if until.After(th.until) {
			th.until = until
		}
		th.mu.Unlock()
		return
	}
	if a := h.adapt; a != nil {
		a.mu.Lock()
		if until.After(a.until) {
			a.until = until
		}
		a.mu.Unlock()
	}
}

// NewPool returns an empty pool.
func NewPool(opts Options) *Pool {
	p := &Pool{
		log:       opts.Logger,
		sleep:     opts.Sleep,
		now:       opts.Now,
		rnd:       opts.Rand,
		transport: opts.Transport,
		wrap:      opts.WrapTransport,
		red:       newRedactor(),
		tlsSetups: map[TLS]*tlsSetup{},
		tlsRest:   map[restKey]*resty.Client{},
		hosts:     map[string]*host{},
		tokens:    map[string]*tokenSource{},
		creds:     opts.Credentials,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.sleep == nil {
		p.sleep = sleepCtx
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rnd == nil {
		p.rnd = rand.Float64
	}
	p.red.addSecrets(opts.Secrets...)
	return p
}

// Redact replaces every secret the pool knows (auth tokens, API keys,
// basic passwords, client secrets, OAuth2 access tokens, Options.Secrets,
// and their URL-escaped forms) with REDACTED. Values shorter than four
// bytes are left alone: replacing them would garble every message.
func (p *Pool) Redact(s string) string { return p.red.text(s) }

// AddSecrets teaches the pool values to redact from now on, as
// Options.Secrets: a credential a spec builds from a secret input for one
// request (a header's toBase64 of it), which the pool cannot know before.
func (p *Pool) AddSecrets(vals ...string) { p.red.addSecrets(vals...) }

// Secrets returns every secret value the pool knows at this moment, with
// the URL-escaped forms it redacts: what a recorder must keep out of a
// cassette. Fetched tokens join the list when they are fetched.
func (p *Pool) Secrets() []string { return p.red.values() }

// SecretParams returns the query parameter names, lower-case, whose
// values Redact and RedactURL hide whatever they hold: presigned links'
// signatures, OAuth2's tokens, a query auth's parameter.
func (p *Pool) SecretParams() []string { return p.red.paramNames() }

// RedactURL is Redact plus the values of secret query parameters (the
// "query" auth params, access_token, client_secret) and userinfo passwords,
// whatever their value.
func (p *Pool) RedactURL(s string) string { return p.red.url(s) }

// Client returns a client for cfg. All clients whose BaseURL has the same
// scheme and host share one concurrency gate and one rate limiter,
// whichever stream or fan-out level uses them. When configs for one host
// disagree, the strictest wins: the lowest Concurrency, the lowest
// positive RatePerSecond and the lowest Burst seen so far. The pooled
// transport of a host allows at least as many idle and open connections
// as the host's concurrency.
//
// A request to an absolute URL on another host uses that host's shared
// limits; a host first met that way gets cfg's limits. With an empty
// BaseURL every request URL must be absolute, and credentials go to
// whatever host it names.
func (p *Pool) Client(cfg HostConfig) (*Client, error) {
	var base *url.URL
	if cfg.BaseURL != "" {
		var err error
		if base, _, err = parseBase(cfg.BaseURL); err != nil {
			return nil, err
		}
		if pw, ok := base.User.Password(); ok {
			// Go sends userinfo as a Basic header.
			v := basicValue(base.User.Username(), pw)
			p.red.addSecrets(pw, v, strings.TrimPrefix(v, "Basic "))
		}
	}
	p.registerSecrets(cfg.Auth)
	p.registerHeaders(cfg)
	if err := cfg.Auth.validate(); err != nil {
		return nil, fmt.Errorf("base url %s: %w", p.red.url(cfg.BaseURL), err)
	}
	for _, r := range cfg.Rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("base url %s: %w", p.red.url(cfg.BaseURL), err)
		}
	}
	if err := cfg.Budget.validate(); err != nil {
		return nil, fmt.Errorf("base url %s: %w", p.red.url(cfg.BaseURL), err)
	}
	if cfg.RatePerSecond < 0 || cfg.Burst < 0 || cfg.OwnRatePerSecond < 0 || cfg.OwnBurst < 0 || cfg.Concurrency < 0 || cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("base url %s: negative limit", p.red.url(cfg.BaseURL))
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RatePerSecond > 0 && cfg.Burst == 0 {
		cfg.Burst = 1
	}
	if cfg.OwnRatePerSecond > 0 && cfg.OwnBurst == 0 {
		cfg.OwnBurst = 1
	}
	if _, err := p.loadTLS(cfg.TLS); err != nil {
		return nil, fmt.Errorf("base url %s: %w", p.red.url(cfg.BaseURL), err)
	}

	var h *host
	if base != nil {
		h = p.host(origin(base), cfg, true)
	}
	var ts *tokenSource
	if cfg.Auth.dynamic() {
		ts = p.tokenSource(cfg)
	}
	c := p.newClient(cfg, base, h, ts)
	if c.own != nil && cfg.OwnRateGroup != "" {
		p.mu.Lock()
		key := c.origin + "\x00" + cfg.OwnRateGroup
		if g, ok := p.groups[key]; ok {
			c.own = g // the group's first limit; validation made them one
		} else {
			if p.groups == nil {
				p.groups = map[string]*rate.Limiter{}
			}
			p.groups[key] = c.own
		}
		p.mu.Unlock()
	}
	return c, nil
}

// host returns the shared state of origin, creating it with cfg's limits.
// With merge, an existing host takes the stricter of its limits and cfg's;
// without, it keeps its own (an absolute URL to a host the config does not
// name must not tighten that host's limits).
func (p *Pool) host(origin string, cfg HostConfig, merge bool) *host {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.hosts[origin]
	if !ok {
		h = p.newHost(origin, cfg.Concurrency)
		h.adapt = newAdaptive(p.now, p.sleep)
		h.adapt.onCut = func(status int, sentRate, rate float64) {
			p.log.Debug("http rate cut", "host", origin, "status", status,
				"sent_per_second", math.Round(sentRate*100)/100, "per_second", math.Round(rate*100)/100)
		}
		p.hosts[origin] = h
		p.tightenRate(h, cfg.RatePerSecond, cfg.Burst)
		p.throttleHost(h, cfg.RateHeaders)
		h.adapt.declare(cfg.Budget, cfg.OtherBudgets)
		return h
	}
	if !merge {
		return h
	}
	p.throttleHost(h, cfg.RateHeaders)
	if h.adapt != nil {
		h.adapt.declare(cfg.Budget, cfg.OtherBudgets)
	}
	if lim, _ := h.gate.stats(); cfg.Concurrency < lim {
		p.log.Debug("http host limit tightened", "host", origin, "concurrency", cfg.Concurrency)
		h.gate.setLimit(cfg.Concurrency)
	}
	p.tightenRate(h, cfg.RatePerSecond, cfg.Burst)
	return h
}

// tightenRate keeps the lower positive rate and burst; p.mu must be held.
func (p *Pool) tightenRate(h *host, r float64, burst int) {
	if r <= 0 {
		return
	}
	changed := false
	if h.rate == 0 || r < h.rate {
		h.rate, changed = r, true
	}
	if h.burst == 0 || burst < h.burst {
		h.burst, changed = burst, true
	}
	if changed {
		// A fresh limiter: x/time/rate cannot move from Inf to a finite
		// limit in place, and limits only change while specs load.
		h.lim.Store(rate.NewLimiter(rate.Limit(h.rate), h.burst))
	}
}

// throttleHost turns on header-driven throttling for h; p.mu must be held.
func (p *Pool) throttleHost(h *host, on bool) {
	if on && h.throttle.Load() == nil {
		h.throttle.Store(newThrottle(p.now, p.sleep))
	}
}

func (p *Pool) newHost(origin string, concurrency int) *host {
	var rc *resty.Client
	if p.transport != nil {
		rc = p.restClient(p.transport, false)
	} else {
		rc = p.restClient(p.hostTransport(concurrency), true)
	}
	return &host{origin: origin, gate: newGate(concurrency), rest: rc}
}

// restClient is the one HTTP client of ferry, over t: the pool's own
// transports (own) are wrapped by Options.WrapTransport, Options.Transport
// is not.
func (p *Pool) restClient(t http.RoundTripper, own bool) *resty.Client {
	if p.wrap != nil && own {
		t = p.wrap(t)
	}
	hc := &http.Client{Transport: t, CheckRedirect: checkRedirect}
	return resty.NewWithClient(hc).
		SetLogger(restyLogger{log: p.log, redact: p.red.text}).
		SetAllowGetMethodPayload(true)
}

// tokenHost is the unlimited host used to fetch OAuth2 tokens: token
// calls are rare and must not wait behind the API requests they unblock.
func (p *Pool) tokenHost() *host {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.authHost == nil {
		p.authHost = p.newHost("oauth2", DefaultConcurrency)
	}
	return p.authHost
}

// checkRedirect follows up to 10 redirects and drops every header but a
// few harmless ones when a redirect leaves the origin, so API keys in
// custom headers do not follow (net/http strips only Authorization). A
// request signed with AWS SigV4 that stays on its origin is signed again
// for where it goes.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return &redirectError{n: len(via)}
	}
	first := via[0].URL
	if !strings.EqualFold(first.Scheme, req.URL.Scheme) || !strings.EqualFold(first.Host, req.URL.Host) {
		for k := range req.Header {
			switch k {
			case "Accept", "User-Agent", "Content-Type":
			default:
				req.Header.Del(k)
			}
		}
		return nil
	}
	if resign, ok := req.Context().Value(resignKey{}).(func(*http.Request) error); ok {
		return resign(req)
	}
	return nil
}

// parseBase checks a BaseURL and returns it with its origin, the key of
// the host's shared limits (scheme://host, default port dropped).
func parseBase(raw string) (*url.URL, string, error) {
	if !strings.Contains(raw, "://") {
		// url.Parse reads "host:8080" as a scheme, or fails on
		// "127.0.0.1:8080": neither says what is missing. A userinfo part
		// (a password, perhaps) is left out of the message.
		shown := shownURL(raw)
		if i := strings.LastIndex(shown, "@"); i >= 0 {
			shown = "…@" + shown[i+1:]
		}
		return nil, "", fmt.Errorf("base url %q: want an absolute URL starting with https:// or http:// (https://%s?)", shown, strings.TrimPrefix(shown, "…@"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("base url %q: %w", shownURL(raw), parseError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", fmt.Errorf("base url %q: scheme must be http or https", shownURL(raw))
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("base url %q: no host", shownURL(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, "", fmt.Errorf("base url %q: query and fragment are not allowed", shownURL(raw))
	}
	return u, origin(u), nil
}

// shownURL is a configured URL for a message about it: without a
// userinfo password, and without a query or fragment, where a key may be.
func shownURL(raw string) string {
	s := (&redactor{}).url(raw)
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?…"
	}
	return s
}

// parseError is url.Parse's error without the URL it quotes whole (a
// password with it) or the bytes of a bad escape (which may be in one).
func parseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return errors.New("does not parse: a % not followed by two hex digits (write a % in a password as %25)")
	}
	return fmt.Errorf("does not parse: %w", err)
}

func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	h := strings.ToLower(u.Host)
	if hostname, port, err := net.SplitHostPort(h); err == nil {
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			h = hostname
			if strings.Contains(h, ":") {
				h = "[" + h + "]"
			}
		}
	}
	return scheme + "://" + h
}

// Stats are counters since the pool was made. The totals include OAuth2
// token requests; Hosts, keyed by scheme://host, does not.
type Stats struct {
	Requests int64 // HTTP attempts sent
	Retries  int64 // attempts after the first of a Do
	Errors   int64 // Do calls that returned an error
	Hosts    map[string]HostStats
}

// HostStats are the counters and limits of one scheme://host.
type HostStats struct {
	Requests, Retries, Errors int64
	Concurrency               int     // current limit
	PeakInFlight              int     // most attempts ever in flight at once
	RatePerSecond             float64 // the configured ceiling; 0: none
	// AdaptiveRate is the rate the host's answers (429, 503) have led to;
	// 0: not paced. RateCuts counts those cuts.
	AdaptiveRate float64
	RateCuts     int64
}

// Stats returns a snapshot of the counters.
func (p *Pool) Stats() Stats {
	s := Stats{
		Requests: p.requests.Load(),
		Retries:  p.retries.Load(),
		Errors:   p.errors.Load(),
		Hosts:    map[string]HostStats{},
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for origin, h := range p.hosts {
		limit, peak := h.gate.stats()
		hs := HostStats{
			Requests:      h.requests.Load(),
			Retries:       h.retries.Load(),
			Errors:        h.errors.Load(),
			Concurrency:   limit,
			PeakInFlight:  peak,
			RatePerSecond: h.rate,
		}
		if h.adapt != nil {
			hs.AdaptiveRate, hs.RateCuts = h.adapt.state()
		}
		s.Hosts[origin] = hs
	}
	return s
}

// CloseIdleConnections closes the idle connections of every pooled
// transport (not of Options.Transport), e.g. at the end of a run.
func (p *Pool) CloseIdleConnections() {
	p.mu.Lock()
	hosts := make([]*host, 0, len(p.hosts)+1)
	for _, h := range p.hosts {
		hosts = append(hosts, h)
	}
	if p.authHost != nil {
		hosts = append(hosts, p.authHost)
	}
	rests := make([]*resty.Client, 0, len(hosts)+len(p.tlsRest))
	for _, h := range hosts {
		rests = append(rests, h.rest)
	}
	for _, rc := range p.tlsRest {
		rests = append(rests, rc)
	}
	p.mu.Unlock()
	if p.transport != nil {
		return
	}
	for _, rc := range rests {
		rc.GetClient().CloseIdleConnections()
	}
}

// Sleep waits for d or until ctx is done, as the pool waits for rate
// limits and backoff (not at all in a replay: see Options.Sleep).
func (p *Pool) Sleep(ctx context.Context, d time.Duration) error { return p.sleep(ctx, d) }

// waitRate takes one token from the host's limiter, sleeping through the
// pool's Sleep so tests can use a fake clock.
func (p *Pool) waitRate(ctx context.Context, h *host) error {
	return p.waitLimiter(ctx, h.lim.Load())
}

// waitLimiter waits for lim's next token (nil: none to wait for).
func (p *Pool) waitLimiter(ctx context.Context, lim *rate.Limiter) error {
	if lim == nil {
		return ctx.Err()
	}
	now := p.now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return fmt.Errorf("rate limit: burst below 1")
	}
	if d := r.DelayFrom(now); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			r.CancelAt(p.now())
			return err
		}
	}
	return nil
}

// restyLogger keeps resty quiet on stderr: its messages go to slog at
// Debug level, redacted.
type restyLogger struct {
	log    *slog.Logger
	redact func(string) string
}

func (l restyLogger) Errorf(format string, v ...any) { l.out(format, v...) }
func (l restyLogger) Warnf(format string, v ...any)  { l.out(format, v...) }
func (l restyLogger) Debugf(format string, v ...any) { l.out(format, v...) }
func (l restyLogger) out(format string, v ...any) {
	l.log.Debug("resty", "msg", l.redact(fmt.Sprintf(format, v...)))
}
