package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/go-resty/resty/v2"
	"golang.org/x/time/rate"
)

// Request is one logical request; Do may send it several times.
type Request struct {
	Method string // default GET
	// URL is absolute, or a path joined to BaseURL keeping BaseURL's path:
	// base "http://h/prod1/sei/api" + "/v1/x" is "http://h/prod1/sei/api/v1/x".
	// Its own query is kept byte for byte; Query is appended.
	URL    string
	Query  url.Values
	Header http.Header // overrides HostConfig.Headers; sent wherever URL points
	Body   any         // JSON-encoded when non-nil (json.RawMessage passes through)
	// BodyFormat FormatForm sends Body, a JSON object of fields, form
	// encoded (see formValues); FormatText sends Body, a string, as it
	// is; "" and FormatJSON send JSON.
	BodyFormat string

	form url.Values // form-encoded body, for OAuth2 token requests
}

// Response is a 2xx response, or the last response of a failed Do.
type Response struct {
	Status   int
	Header   http.Header
	Body     []byte // read fully (Do); for Download only when it is not a 2xx
	Spool    *Spool // the body of a Download's answer; the caller closes it
	URL      string // redacted
	Attempts int    // HTTP attempts sent, retries included
	Duration time.Duration
}

// Client sends requests for one HostConfig. It is safe for concurrent
// use; make one per config with [Pool.Client].
type Client struct {
	pool      *Pool
	cfg       HostConfig // normalised; its limits seed hosts first met through it
	host      *host      // BaseURL's host; nil without a BaseURL
	base      *url.URL
	origin    string // BaseURL's scheme://host; "" without a BaseURL
	log       *slog.Logger
	retry     retryPolicy
	retryPOST bool
	timeout   time.Duration
	maxBody   int64
	header    http.Header // defaults, sent everywhere
	cfgHeader http.Header // HostConfig.Headers, sent to BaseURL's origin only

	authHeader, authValue string // static header auth
	authParam, authToken  string // query auth
	tokens                *tokenSource
	sigv4                 *sigv4 // nil: requests are not signed
	rules                 []Rule
	// tokenOf: the auth whose token or login requests this client sends
	// (their credentials are in the requests); nil for a spec's client.
	tokenOf *Auth

	tls     *tlsSetup // nil: Go's default verification, no client certificate
	tlsName string    // the server name verified at the config's own host

	own *rate.Limiter // HostConfig.OwnRatePerSecond; nil: none
}

func (p *Pool) newClient(cfg HostConfig, base *url.URL, h *host, ts *tokenSource) *Client {
	c := &Client{
		pool:      p,
		cfg:       cfg,
		host:      h,
		base:      base,
		log:       p.log,
		retry:     newRetryPolicy(cfg.Retry),
		retryPOST: cfg.RetryPOST == nil || *cfg.RetryPOST,
		timeout:   cfg.Timeout,
		maxBody:   cfg.MaxBodyBytes,
		header:    http.Header{"Accept": {"application/json"}, "User-Agent": {"ferry"}},
		tokens:    ts,
		rules:     cfg.Rules,
		tlsName:   cfg.TLS.ServerName,
	}
	if !cfg.TLS.zero() {
		p.mu.Lock()
		c.tls = p.tlsSetups[cfg.TLS] // read by Client, which made the config's token source too
		p.mu.Unlock()
	}
	if base != nil {
		c.origin = origin(base)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	c.cfgHeader = http.Header{}
	for k, v := range cfg.Headers {
		c.cfgHeader.Set(k, v)
	}
	c.authHeader, c.authValue, c.authParam, c.authToken = cfg.Auth.static()
	if cfg.OwnRatePerSecond > 0 {
		c.own = rate.NewLimiter(rate.Limit(cfg.OwnRatePerSecond), max(cfg.OwnBurst, 1))
	}
	if cfg.Auth.Type == AuthSigV4 {
		c.sigv4 = newSigV4(cfg.Auth)
	}
	return c
}

// Do sends req, retrying per the host's Retry policy, and returns the 2xx
// response with its body read fully. A final non-2xx status returns the
// Response and a *StatusError together. Other errors carry a redacted
// message and wrap their cause, e.g. context.Canceled, or
// context.DeadlineExceeded when the last attempt timed out.
//
// Each attempt waits for the host's rate limiter, then holds one of the
// host's concurrency slots only while it is in flight (not while backing
// off), under its own timeout. Retried: network errors, a body cut short,
// timed-out attempts and the Retry statuses, for GET, HEAD, PUT, DELETE,
// OPTIONS, and POST unless RetryPOST is false. A 403 that says it is a
// rate limit (Retry-After, or x-ratelimit-remaining 0: GitHub's) is
// retried as a 429 is. Stripe-Should-Retry overrides the status either
// way (false: not retried; true: retried) but not the method. The wait
// before a retry is the longer of the jittered backoff and the server's
// Retry-After or (on a rate limit) its reset, x-ratelimit-reset (epoch,
// seconds or ISO 8601) or the IETF RateLimit fields'; a server hint may
// exceed Retry.Max, up to MaxServerWait. On a host with RateHeaders a
// rate limit waits for the host's
// throttle instead, which every request to the host honours (a 429 that
// leaves it open, such as Retry-After: 0, backs off as elsewhere). With OAuth2,
// a 401 refreshes the token once and re-sends without counting against
// Attempts. A body over MaxBodyBytes fails at once with ErrBodyTooLarge.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	return c.send(ctx, req, nil)
}

// Download is Do for a body read as a stream: the answer's body is
// received whole, at the network's pace and bounded by dl.MaxBytes rather
// than HostConfig.MaxBodyBytes, into resp.Spool (memory up to a few MiB,
// then an unlinked temporary file), which the caller reads and closes. A
// body cut short is retried like any transport failure: nothing of it has
// been delivered yet. The timeout bounds the wait for the answer and
// between two reads of its body, not the whole transfer. A status other
// than 2xx, and response rules, are handled as by Do; a rule's body
// predicate reads a body of at most MaxBodyBytes (a larger one fails the
// request, or with dl.NotJSON does not match).
func (c *Client) Download(ctx context.Context, req *Request, dl Download) (*Response, error) {
	if dl.MaxBytes <= 0 {
		dl.MaxBytes = DefaultMaxDownloadBytes
	}
	return c.send(ctx, req, &dl)
}

func (c *Client) send(ctx context.Context, req *Request, dl *Download) (*Response, error) {
	start := c.pool.now()
	resp, h, err := c.do(ctx, req, dl)
	if err != nil && resp != nil && resp.Spool != nil {
		resp.Spool.Close()
		resp.Spool = nil
	}
	if resp != nil {
		resp.Duration = c.pool.now().Sub(start)
	}
	if err != nil && !isOutcome(err) {
		c.pool.errors.Add(1)
		if h != nil {
			h.errors.Add(1)
		}
	}
	return resp, err
}

// maxRenewals bounds the 401s a request renews its token after (see
// exchange.renewed). Each renewal past the first is for a token another
// request fetched and spent while this one waited its turn, so a request
// among n queued for one-use sessions may lose n-1 of them: 3 failed one
// of six queued requests (TestQueuedRequestsTakeTheSessionAtTheirTurn, 3
// in 1,600 runs under load). 10 covers the default concurrency (8) with
// room; a server refusing every token still costs each request at most
// the token fetched for it.
const maxRenewals = 10

// exchange is one Do's state across its attempts.
type exchange struct {
	method, shown      string
	target, origin     string // the resolved URL and its origin
	h                  *host
	dl                 *Download
	attempts, failures int
	// renewed: the tokens this request got a 401 with, each renewed: once,
	// and again (at most maxRenewals in all) only for a token this request
	// did not fetch (tokenOwn): one another request renewed while this one
	// waited its turn may die before it, which is no reason to fail it; a
	// token fetched for it and refused is final.
	renewed           []string
	tokenUsed         string
	tokenOwn          bool
	dynamic, canRetry bool
	same              bool // sent to BaseURL's origin, with its credentials
	sign              *sigv4
	// refused: when this request's last answer was a 503 or a rate
	// limit, zero if it was not (see adaptive.observe: its retries'
	// refusals cut no rate while other requests get through).
	refused time.Time
}

// do is kept small: every request's goroutine has it on its stack under
// resty and net/http, and a big frame here made most of them grow (copy)
// their stack once per request. What runs once per attempt or per answer
// is in methods of its own (prepare, outcome, ...).
func (c *Client) do(ctx context.Context, req *Request, dl *Download) (*Response, *host, error) {
	if req == nil {
		return nil, nil, errors.New("nil request")
	}
	x, hdr, body, err := c.prepare(req, dl)
	if err != nil {
		return nil, x.h, err
	}
	rc := c.restFor(x.origin, x.h)
	for {
		rr, spool, sent, dur, err := c.attempt(ctx, x, rc, hdr, body, dl)
		resp, again, err := c.outcome(ctx, x, rr, spool, sent, dur, err)
		if !again {
			return resp, x.h, err
		}
	}
}

// fail is the error of x, redacted, wrapping err.
func (c *Client) fail(x *exchange, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text holds the unredacted URL
	}
	if hint := tlsHint(err, x.origin, c); hint != "" {
		err = fmt.Errorf("%w: %s", err, hint)
	}
	return &requestError{msg: c.pool.red.text(x.method + " " + x.shown + ": " + err.Error()), err: err, attempts: x.attempts}
}

// prepare resolves req's URL and builds its headers and body. A failure
// is returned as Do returns it (x.h set once the host is known).
func (c *Client) prepare(req *Request, dl *Download) (x *exchange, hdr http.Header, body []byte, err error) {
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	target, targetOrigin, same, err := c.resolve(req)
	if err != nil {
		return &exchange{}, nil, nil, &requestError{msg: c.pool.red.text(fmt.Sprintf("%s %s: %v", method, c.pool.red.url(req.URL), err)), err: err}
	}
	h := c.host
	if targetOrigin != c.origin {
		// Without a BaseURL the request names the config's own host.
		h = c.pool.host(targetOrigin, c.cfg, c.base == nil)
	}
	x = &exchange{method: method, shown: c.pool.red.url(target), target: target, origin: targetOrigin, h: h, dl: dl,
		dynamic: same && c.tokens != nil, canRetry: retryableMethod(method, c.retryPOST), same: same}
	if same {
		x.sign = c.sigv4
	}

	hdr = c.header.Clone()
	if same {
		for k, vs := range c.cfgHeader {
			hdr[k] = vs
		}
	}
	for k, vs := range req.Header {
		hdr.Del(k)
		for _, v := range vs {
			hdr.Add(k, v)
		}
	}
	switch {
	case req.form != nil:
		body = []byte(req.form.Encode())
		hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	case req.Body != nil && req.BodyFormat == FormatForm:
		form, err := formValues(req.Body)
		if err != nil {
			return x, nil, nil, c.fail(x, fmt.Errorf("encode body: %w", err))
		}
		body = []byte(form.Encode())
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	case req.Body != nil && req.BodyFormat == FormatText:
		text, ok := req.Body.(string)
		if !ok {
			return x, nil, nil, c.fail(x, fmt.Errorf("encode body: a text body must be a string, not %T", req.Body))
		}
		body = []byte(text)
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", "text/plain")
		}
	case req.Body != nil && req.BodyFormat != "" && req.BodyFormat != FormatJSON:
		return x, nil, nil, c.fail(x, fmt.Errorf("unknown body format %q", req.BodyFormat))
	case req.Body != nil:
		if raw, ok := req.Body.(json.RawMessage); ok && raw != nil {
			body = raw // already encoded: sent as it is, not compacted again
		} else if body, err = jsonv.Marshal(req.Body); err != nil {
			return x, nil, nil, c.fail(x, fmt.Errorf("encode body: %w", err))
		}
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", "application/json")
		}
	}
	if same && c.authHeader != "" {
		hdr.Set(c.authHeader, c.authValue)
	}
	return x, hdr, body, nil
}

// credential puts the current token of a dynamic auth on the attempt (in
// hdr, or in the URL it returns). attempt takes it once the attempt may
// go: a token taken before the waits could die in the queue (a token that
// serves so many requests, or so long), and the retry its 401 earns would
// wait behind the others again.
func (c *Client) credential(ctx context.Context, x *exchange, hdr http.Header) (string, error) {
	if !x.dynamic {
		return x.target, nil
	}
	v, own, err := c.tokens.get(ctx)
	x.tokenOwn = own
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.tokens.what(), err)
	}
	x.tokenUsed = v
	if c.tokens.param != "" {
		return withParam(x.target, c.tokens.param, v), nil
	}
	hdr.Set(c.tokens.header, v)
	return x.target, nil
}

// outcome counts an attempt and decides what follows it: again to send
// the request once more (after the wait it took), else what Do returns.
func (c *Client) outcome(ctx context.Context, x *exchange, rr *resty.Response, spool *Spool, sent bool, dur time.Duration, err error) (*Response, bool, error) {
	h, method, shown := x.h, x.method, x.shown
	if sent {
		x.attempts++
		c.pool.requests.Add(1)
		h.requests.Add(1)
		if x.attempts > 1 {
			c.pool.retries.Add(1)
			h.retries.Add(1)
		}
	}
	if err != nil && ctx.Err() != nil {
		c.log.Debug("http request", "method", method, "url", shown, "attempt", x.attempts, "duration", dur, "error", c.pool.red.text(ctx.Err().Error()))
		return nil, false, c.fail(x, ctx.Err())
	}
	if err != nil {
		return c.failedAttempt(ctx, x, rr, sent, dur, err)
	}

	status := rr.StatusCode()
	x.refused = time.Time{}
	if status == http.StatusServiceUnavailable || rateLimited(status, rr.Header()) {
		x.refused = c.pool.now()
	}
	c.log.Debug("http request", "method", method, "url", shown, "status", status, "attempt", x.attempts, "duration", dur)
	resp := &Response{Status: status, Header: rr.Header(), Body: rr.Body(), URL: shown, Attempts: x.attempts, Spool: spool}
	if x.dl != nil && spool == nil {
		// An answer that is not a 2xx was read into memory; one a rule
		// turns into data is read from there.
		resp.Spool = &Spool{mem: resp.Body, size: int64(len(resp.Body))}
	}
	if x.sign != nil && status >= 400 && status < 500 {
		// A clock AWS refuses is set right by no retry and no rule.
		if hint := skewHint(resp.Header, resp.Body, c.pool.now()); hint != "" {
			resp.discard()
			return resp, false, &StatusError{Method: method, URL: shown, Status: status, Body: errorBody(resp.Body, c.pool.red.text), Hint: hint}
		}
	}
	if status == http.StatusUnauthorized && x.dynamic && (len(x.renewed) == 0 || !x.tokenOwn && len(x.renewed) < maxRenewals && !slices.Contains(x.renewed, x.tokenUsed)) {
		resp.discard()
		x.renewed = append(x.renewed, x.tokenUsed)
		c.tokens.invalidate(x.tokenUsed)
		c.log.Warn("http retry", "method", method, "url", shown, "attempt", x.attempts, "status", status, "reason", "refreshing the "+c.tokens.what())
		return nil, true, nil
	}
	if len(c.rules) > 0 {
		if resp, again, decided, err := c.ruled(ctx, x, resp, spool); decided {
			return resp, again, err
		}
	}
	if status >= 200 && status < 300 {
		return resp, false, nil
	}
	return c.refusedStatus(ctx, x, resp)
}

// discard drops an answer that is not returned as data (its spool's file).
func (r *Response) discard() {
	if r.Spool != nil {
		r.Spool.Close()
	}
}

// failedAttempt decides about an attempt that got no answer (or one cut
// short): retried when it may be, else the request's error.
func (c *Client) failedAttempt(ctx context.Context, x *exchange, rr *resty.Response, sent bool, dur time.Duration, err error) (*Response, bool, error) {
	method, shown := x.method, x.shown
	if !sent {
		return nil, false, c.fail(x, err)
	}
	if errors.Is(err, ErrBodyTooLarge) {
		// Retrying would fetch the same oversized answer again.
		c.log.Debug("http request", "method", method, "url", shown, "attempt", x.attempts, "duration", dur, "error", err.Error())
		return nil, false, c.fail(x, err)
	}
	retryable := retryableErr(err, rr != nil && rr.RawResponse != nil)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("attempt timed out after %s: %w", c.timeout, context.DeadlineExceeded)
	}
	c.log.Debug("http request", "method", method, "url", shown, "attempt", x.attempts, "duration", dur, "error", c.pool.red.text(err.Error()))
	if !x.canRetry || !retryable || x.failures+1 >= c.retry.attempts {
		return nil, false, c.fail(x, err)
	}
	x.failures++
	wait := c.retry.backoff(x.failures, c.pool.rnd)
	c.log.Warn("http retry", "method", method, "url", shown, "attempt", x.attempts, "error", c.pool.red.text(err.Error()), "wait", wait)
	if err := c.pool.sleep(ctx, wait); err != nil {
		return nil, false, c.fail(x, err)
	}
	return nil, true, nil
}

// ruled applies the response rules to an answer; decided is false when
// none matched (the default handling goes on).
func (c *Client) ruled(ctx context.Context, x *exchange, resp *Response, spool *Spool) (_ *Response, again, decided bool, _ error) {
	method, shown, status, h := x.method, x.shown, resp.Status, x.h
	rb := &ruleBody{raw: resp.Body}
	if spool != nil {
		rb.spool, rb.limit = spool, c.maxBody
	}
	rule, err := matchRule(ctx, c.rules, resp, rb)
	if err == nil && rb.missed && x.dl != nil && !x.dl.NotJSON {
		// A rule that needed the body could not read it: deciding
		// without it would guess.
		resp.discard()
		return nil, false, true, c.fail(x, fmt.Errorf("the answer has %d bytes, more than the %d a response rule's body predicate reads", spool.Size(), c.maxBody))
	}
	if err != nil {
		// A predicate that cannot be evaluated decides nothing: the
		// answer is neither data nor what the rule would make of it.
		return resp, false, true, c.ruleError(method, shown, resp, rule, ActionFail, err.Error())
	}
	if rule == nil {
		return nil, false, false, nil
	}
	msg := c.pool.red.text(rule.message(ctx, rb))
	if rule.Action != ActionRetry {
		c.log.Debug("http rule", "method", method, "url", shown, "status", status, "rule", rule.Name, "action", rule.Action)
		if rule.Action == ActionOK {
			return resp, false, true, nil
		}
		return resp, false, true, c.ruleError(method, shown, resp, rule, rule.Action, msg)
	}
	resp.discard()
	hint, hinted := ruleWait(rule, status, resp.Header, c.pool.now())
	if !hinted && rule.Wait > 0 {
		hint, hinted = rule.Wait, true
		h.hold(c.pool.now().Add(hint))
	}
	limit := rule.MaxWait
	if limit <= 0 {
		limit = max(c.retry.max, MaxServerWait)
	}
	switch {
	case !x.canRetry:
		return resp, false, true, c.ruleError(method, shown, resp, rule, rule.Action, joinMsg(method+" requests are not retried", msg))
	case hinted && hint > limit:
		return resp, false, true, c.ruleError(method, shown, resp, rule, rule.Action, joinMsg(fmt.Sprintf("the server asks to wait %s, more than max_wait %s", hint.Round(time.Second), limit), msg))
	case x.failures+1 >= c.retry.attempts:
		return resp, false, true, c.ruleError(method, shown, resp, rule, rule.Action, joinMsg(fmt.Sprintf("gave up after %d attempts", x.attempts), msg))
	}
	x.failures++
	wait := max(c.retry.backoff(x.failures, c.pool.rnd), hint)
	c.log.Warn("http retry", "method", method, "url", shown, "attempt", x.attempts, "status", status, "rule", rule.Name, "reason", msg, "wait", wait)
	if err := c.pool.sleep(ctx, wait); err != nil {
		return nil, false, true, c.fail(x, err)
	}
	return nil, true, true, nil
}

// refusedStatus decides about an answer that is not a 2xx (no rule
// matched): retried when its status and the method allow, else a
// *StatusError with the answer.
func (c *Client) refusedStatus(ctx context.Context, x *exchange, resp *Response) (*Response, bool, error) {
	method, shown, status, h := x.method, x.shown, resp.Status, x.h
	resp.discard()
	serr := &StatusError{Method: method, URL: shown, Status: status, Body: errorBody(resp.Body, c.pool.red.text)}
	if status == http.StatusUnauthorized {
		serr.Hint = c.unauthorizedHint(x)
	}
	limited := rateLimited(status, resp.Header)
	// A rate limit sent as a 403 is retried as a 429 is.
	retryStatus := c.retry.statuses[status] || limited && c.retry.statuses[http.StatusTooManyRequests]
	if says, set := serverRetry(resp.Header); set {
		// The server knows better than the status; a method not
		// retried here stays so (see HostConfig.RetryPOST).
		retryStatus = says
	}
	if !x.canRetry || !retryStatus || x.failures+1 >= c.retry.attempts {
		return resp, false, serr
	}
	x.failures++
	if th := h.throttle.Load(); th != nil && limited {
		// The 429 closed the host's gate until the window resets, more
		// precisely than the hint: the next attempt waits for it there.
		// A gate left open (Retry-After: 0) backs off as below instead.
		if d := th.gateDelay(); d > 0 {
			c.log.Warn("http retry", "method", method, "url", shown, "attempt", x.attempts, "status", status, "wait", d)
			return nil, true, nil
		}
	}
	wait := c.retry.wait(c.retry.backoff(x.failures, c.pool.rnd), serverHint(resp.Header, status, c.pool.now()))
	c.log.Warn("http retry", "method", method, "url", shown, "attempt", x.attempts, "status", status, "wait", wait)
	if err := c.pool.sleep(ctx, wait); err != nil {
		return nil, false, c.fail(x, err)
	}
	return nil, true, nil
}

// ruleError reports what a rule decided about resp.
func (c *Client) ruleError(method, shown string, resp *Response, rule *Rule, action, msg string) *RuleError {
	return &RuleError{Method: method, URL: shown, Status: resp.Status, Rule: rule.Name, Action: action, Message: c.pool.red.text(msg)}
}

func joinMsg(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// withParam sets a query parameter on a resolved URL, once.
func withParam(target, name, value string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	q := dropParam(u.RawQuery, name)
	if q != "" {
		q += "&"
	}
	u.RawQuery = q + url.QueryEscape(name) + "=" + url.QueryEscape(value)
	return u.String()
}

// attempt sends one request: rate limiter and throttle first, then a
// concurrency slot held only while the request is in flight, under a
// per-attempt timeout. sent is false when it failed before reaching the
// network.
//
// For a download (dl set), a 2xx body is received into a Spool, and the
// timeout bounds each wait for data instead of the whole attempt. again,
// when set: when the request's last attempt was refused too (a 503 or a
// rate limit).
// sign, when set, signs the attempt once it may go (after the waits: the
// signature holds its time).
func (c *Client) attempt(ctx context.Context, x *exchange, rc *resty.Client, hdr http.Header, body []byte, dl *Download) (rr *resty.Response, spool *Spool, sent bool, dur time.Duration, err error) {
	h, method, again, sign := x.h, x.method, x.refused, x.sign
	// The client's own ceiling first: a request it holds takes none of
	// the host's tokens meanwhile. It is an endpoint's limit of the API,
	// so a link to another host (an export's storage) does not wait on it.
	if c.host == nil || h == c.host {
		if err := c.pool.waitLimiter(ctx, c.own); err != nil {
			return nil, nil, false, 0, err
		}
	}
	if err := c.pool.waitRate(ctx, h); err != nil {
		return nil, nil, false, 0, err
	}
	th := h.throttle.Load()
	var ad *adaptive
	var seq uint64
	switch {
	case th != nil:
		if err := th.wait(ctx); err != nil {
			return nil, nil, false, 0, err
		}
	case h.adapt != nil:
		ad = h.adapt
		if seq, err = ad.wait(ctx); err != nil {
			return nil, nil, false, 0, err
		}
	}
	if err := h.gate.acquire(ctx); err != nil {
		if ad != nil {
			ad.abandon()
		}
		return nil, nil, false, 0, err
	}
	defer h.gate.release()
	target, err := c.credential(ctx, x, hdr)
	if err != nil {
		if ad != nil {
			ad.abandon()
		}
		return nil, nil, false, 0, err
	}
	var actx context.Context
	var idle *idleTimer
	if dl == nil {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	} else {
		var cancel context.CancelCauseFunc
		actx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		idle = newIdleTimer(c.timeout, cancel)
		defer idle.stop()
	}

	if sign != nil {
		actx = context.WithValue(actx, resignKey{}, func(req *http.Request) error {
			return sign.resign(ctx, req, c.pool.now())
		})
	}
	// The body is read by receive, not resty: into one buffer of the
	// announced length, or lent chunks, where resty grows a slice from
	// 512 bytes (about three times the body allocated, and its copies).
	r := rc.R().SetContext(actx).SetDoNotParseResponse(true)
	r.Header = hdr.Clone()
	if sign != nil {
		if target, err = sign.sign(ctx, r.Header, method, target, body, c.pool.now()); err != nil {
			if ad != nil {
				ad.abandon()
			}
			return nil, nil, false, 0, err
		}
	}
	if body != nil {
		// A reader, not the slice: resty copies a slice twice (into its
		// pool's buffer, then again for the request); net/http takes the
		// length and a GetBody for redirects from a *bytes.Reader.
		r.SetBody(bytes.NewReader(body))
	}
	start := c.pool.now()
	rr, err = r.Execute(method, target)
	if err == nil {
		spool, err = c.receiveBody(rr, dl, idle)
	}
	recv := c.pool.now()
	answered := rr != nil && rr.RawResponse != nil
	// RawResponse's own fields, not rr.Header(): its empty-map fallback
	// would be two map literals in this frame, which is on every request's
	// stack (see do).
	switch {
	case th != nil && answered:
		th.observe(rr.RawResponse.Header, rr.RawResponse.StatusCode, start, recv)
	case ad != nil && answered:
		ad.observe(rr.RawResponse.Header, rr.RawResponse.StatusCode, seq, start, recv, again)
	case ad != nil:
		ad.abandon()
	}
	return rr, spool, true, recv.Sub(start), err
}

// receiveBody reads an answer's body: a download's 2xx into a Spool, any
// other into memory (bounded by MaxBodyBytes) as the Response's Body. A
// gzip body the transport left compressed (the request asked for gzip
// itself) is unpacked, as resty would: Do's callers read JSON.
func (c *Client) receiveBody(rr *resty.Response, dl *Download, idle *idleTimer) (*Spool, error) {
	raw := rr.RawBody()
	defer raw.Close()
	hint := rr.RawResponse.ContentLength
	if st := rr.StatusCode(); dl != nil && st >= 200 && st < 300 {
		return receive(raw, dl.MaxBytes, hint, spillBytes, idle, &c.pool.chunks)
	}
	var body io.Reader = raw
	if dl == nil && !rr.RawResponse.Uncompressed && hint != 0 && strings.EqualFold(rr.RawResponse.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(raw)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		defer gz.Close()
		body, hint = gz, -1
	}
	// In memory up to MaxBodyBytes, as resty held it: never through a
	// temporary file, which a read-only file system refuses.
	sp, err := receive(body, c.maxBody, hint, c.maxBody, idle, &c.pool.chunks)
	if err != nil {
		return nil, err
	}
	rr.SetBody(sp.mem)
	return nil, nil
}

// resolve builds the final URL and returns its origin, and whether it is
// on BaseURL's origin, the only place credentials and config headers go.
func (c *Client) resolve(req *Request) (target, targetOrigin string, same bool, err error) {
	raw := req.URL
	var u *url.URL
	switch {
	case isAbs(raw):
		u, err = url.Parse(raw)
	case c.base == nil:
		return "", "", false, fmt.Errorf("relative url and no base url")
	default:
		joined := strings.TrimRight(c.base.String(), "/")
		switch {
		case raw == "":
		case strings.HasPrefix(raw, "?"):
			joined += raw
		default:
			joined += "/" + strings.TrimLeft(raw, "/")
		}
		u, err = url.Parse(joined)
	}
	if err != nil {
		return "", "", false, parseError(err)
	}
	if u.Host == "" {
		return "", "", false, fmt.Errorf("url has no host")
	}
	u.Fragment, u.RawFragment = "", ""
	targetOrigin = origin(u)
	same = c.origin == "" || targetOrigin == c.origin

	extra := url.Values{}
	for k, vs := range req.Query {
		extra[k] = append([]string(nil), vs...)
	}
	if same && c.authParam != "" {
		// A next-page link may echo the key: send it once.
		u.RawQuery = dropParam(u.RawQuery, c.authParam)
		extra.Set(c.authParam, c.authToken)
	}
	if len(extra) > 0 {
		if u.RawQuery == "" {
			u.RawQuery = extra.Encode()
		} else {
			u.RawQuery += "&" + extra.Encode()
		}
	}
	return u.String(), targetOrigin, same, nil
}

func isAbs(raw string) bool {
	return len(raw) >= 7 && strings.EqualFold(raw[:7], "http://") || len(raw) >= 8 && strings.EqualFold(raw[:8], "https://")
}

// dropParam removes name from a raw query, keeping the rest as is.
func dropParam(rawQuery, name string) string {
	if rawQuery == "" {
		return ""
	}
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == name {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}
