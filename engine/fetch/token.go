package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// tokenSource returns the shared token source for cfg's credentials.
func (p *Pool) tokenSource(cfg HostConfig) *tokenSource {
	k := tokenKey(cfg)
	p.mu.Lock()
	defer p.mu.Unlock()
	if ts, ok := p.tokens[k]; ok {
		return ts
	}
	ts := &tokenSource{pool: p, auth: cfg.Auth, retry: cfg.Retry, timeout: cfg.Timeout, base: cfg.BaseURL, headers: cfg.Headers, tls: cfg.TLS}
	ts.header, ts.param = cfg.Auth.placement()
	p.tokens[k] = ts
	return ts
}

// tokenKey identifies the credentials of cfg: clients with equal keys
// share one token. The Extract programs cannot be compared; Auth.ID
// stands for them.
func tokenKey(cfg HostConfig) string {
	a := cfg.Auth
	k := struct {
		A    Auth
		Base string
		TLS  TLS // the token requests' TLS: a config with other files gets its own
	}{A: a, TLS: cfg.TLS}
	if a.Type != AuthOAuth2 {
		k.Base = cfg.BaseURL // a relative login path resolves against it
	}
	b, err := json.Marshal(k)
	if err != nil {
		// A claim that cannot be encoded fails when signing; until then
		// the config does not share its token.
		return fmt.Sprintf("unshared %p", &cfg)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// tokenSource caches one fetched credential (an OAuth2 access token, a
// session, a JWT or the token it was exchanged for); concurrent callers
// that find it missing or expired share a single fetch.
type tokenSource struct {
	pool    *Pool
	auth    Auth
	retry   Retry
	timeout time.Duration
	base    string            // the config's BaseURL: relative login paths join it
	headers map[string]string // the config's headers: sent with a login to the base's host
	tls     TLS               // the config's: its token requests are the config's too
	header  string            // where the credential goes: a header,
	param   string            // or a query parameter

	mu     sync.Mutex
	value  string // the header value (prefix included) or parameter value
	expiry time.Time
	call   *tokenCall
	client *Client

	refresh *refreshState // the refresh_token grant's current token
}

type tokenCall struct {
	done  chan struct{}
	value string
	err   error
}

// get returns the credential value, fetching one if needed; own says
// this call fetched it (not another request, nor before).
func (ts *tokenSource) get(ctx context.Context) (value string, own bool, err error) {
	for {
		ts.mu.Lock()
		if ts.value != "" && (ts.expiry.IsZero() || ts.pool.now().Before(ts.expiry)) {
			v := ts.value
			ts.mu.Unlock()
			return v, false, nil
		}
		if c := ts.call; c != nil {
			ts.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return "", false, ctx.Err()
			}
			// The fetcher's own ctx may have ended; ours has not, so try again.
			if c.err != nil && ctx.Err() == nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
				continue
			}
			return c.value, false, c.err
		}
		c := &tokenCall{done: make(chan struct{})}
		ts.call = c
		ts.mu.Unlock()

		value, lifetime, err := ts.fetch(ctx)

		ts.mu.Lock()
		if err == nil {
			ts.value = value
			ts.expiry = time.Time{}
			if lifetime > 0 {
				ts.expiry = ts.pool.now().Add(lifetime - refreshMargin(lifetime))
			}
		}
		c.value, c.err = value, err
		ts.call = nil
		close(c.done)
		ts.mu.Unlock()
		return value, true, err
	}
}

// fetch obtains a new credential and its lifetime (0: unknown).
func (ts *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	switch ts.auth.Type {
	case AuthSession:
		return ts.login(ctx)
	case AuthJWT:
		return ts.jwt(ctx)
	}
	return ts.oauth2(ctx)
}

// refreshMargin is how long before expiry a token is replaced: a tenth of
// its lifetime, so short-lived tokens stay useful, and at most
// MaxServerWait, the longest a request on a RateHeaders host may be held
// at the gate between taking the token and sending it.
func refreshMargin(lifetime time.Duration) time.Duration {
	return min(lifetime/10, MaxServerWait)
}

// invalidate drops the cached token if it is still the one that got a
// 401, so that many concurrent 401s cause one refresh, not one each.
func (ts *tokenSource) invalidate(used string) {
	ts.mu.Lock()
	if ts.value == used {
		ts.value = ""
	}
	ts.mu.Unlock()
}

// tokenClient sends token requests through the pool's token host, with
// the spec's retry policy: to the token URL's origin (OAuth2), or to the
// config's BaseURL, its headers included, for a login by path.
func (ts *tokenSource) tokenClient() (*Client, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.client != nil {
		return ts.client, nil
	}
	cfg := HostConfig{Timeout: ts.timeout, Retry: ts.retry, TLS: ts.tls}
	var base *url.URL
	switch {
	case ts.auth.Type == AuthOAuth2:
		u, err := tokenOrigin(ts.auth.TokenURL)
		if err != nil {
			return nil, err
		}
		base = u
	case ts.auth.Login != nil && !isAbs(ts.auth.Login.URL):
		if ts.base == "" {
			return nil, fmt.Errorf("%s: a path needs a base url", ts.loginName())
		}
		u, _, err := parseBase(ts.base)
		if err != nil {
			return nil, err
		}
		base, cfg.Headers = u, ts.headers
	case ts.auth.Login != nil:
		u, err := tokenOrigin(ts.auth.Login.URL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ts.loginName(), err)
		}
		base = u
		if b, _, err := parseBase(ts.base); err == nil && origin(b) == origin(u) {
			cfg.Headers = ts.headers
		}
	}
	cfg.BaseURL = base.String()
	ts.client = ts.pool.newClient(cfg, base, ts.pool.tokenHost(), nil)
	ts.client.tokenOf = &ts.auth
	if b, _, err := parseBase(ts.base); err != nil || origin(b) != origin(base) {
		// server_name names the base URL's host, not the token URL's.
		ts.client.tlsName = ""
	}
	return ts.client, nil
}

// what names the credential in errors and logs.
func (ts *tokenSource) what() string {
	switch ts.auth.Type {
	case AuthSession:
		return "session"
	case AuthJWT:
		return "jwt"
	}
	return "oauth2 token"
}

func (ts *tokenSource) loginName() string {
	if ts.auth.Type == AuthJWT {
		return "jwt exchange"
	}
	return "session login"
}
