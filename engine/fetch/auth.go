package fetch

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Auth types.
const (
	AuthNone   = ""
	AuthBearer = "bearer" // Authorization: Bearer <Token>
	AuthHeader = "header" // <Header>: <Prefix><Token>
	AuthQuery  = "query"  // ?<Param>=<Token>
	AuthBasic  = "basic"  // Authorization: Basic base64(<Username>:<Password>)
	AuthOAuth2 = "oauth2" // client credentials, token sent as Authorization
)

// OAuth2 token request styles (Auth.AuthStyle).
const (
	StyleBasic = "basic" // client id and secret as HTTP basic auth (default)
	StyleForm  = "form"  // client_id and client_secret in the form body
	StyleJSON  = "json"  // Port-style JSON body {"clientId", "clientSecret"}
)

// Auth is how requests to a host authenticate. Credentials are sent only
// to BaseURL's scheme and host, never to an absolute URL elsewhere.
type Auth struct {
	Type   string
	Token  string // bearer token, or the API key for "header" and "query"
	Header string // header name for "header", e.g. "x-api-key"
	Prefix string // optional value prefix for "header", e.g. "ApiKey "
	Param  string // query parameter name for "query"

	Username, Password string // "basic"

	// "oauth2": the client credentials grant. The token is cached until
	// expires_in minus a margin (a tenth of the lifetime, at most
	// MaxServerWait), shared by every client of the pool with the same
	// credentials, and refreshed once when a request gets 401.
	TokenURL, ClientID, ClientSecret string
	Scopes                           []string
	AuthStyle                        string // StyleBasic (default), StyleForm or StyleJSON
}

func (a Auth) validate() error {
	need := func(field, v string) error {
		if v == "" {
			return fmt.Errorf("auth %q: %s is required", a.Type, field)
		}
		return nil
	}
	switch a.Type {
	case AuthNone:
		return nil
	case AuthBearer:
		return need("token", a.Token)
	case AuthHeader:
		return errors.Join(need("header", a.Header), need("token", a.Token))
	case AuthQuery:
		return errors.Join(need("param", a.Param), need("token", a.Token))
	case AuthBasic:
		return need("username", a.Username)
	case AuthOAuth2:
		if err := errors.Join(need("token_url", a.TokenURL), need("client_id", a.ClientID), need("client_secret", a.ClientSecret)); err != nil {
			return err
		}
		if _, err := tokenOrigin(a.TokenURL); err != nil {
			return fmt.Errorf("auth %q: %w", a.Type, err)
		}
		switch a.AuthStyle {
		case "", StyleBasic, StyleForm, StyleJSON:
			return nil
		}
		return fmt.Errorf("auth %q: unknown auth_style %q", a.Type, a.AuthStyle)
	}
	return fmt.Errorf("unknown auth type %q", a.Type)
}

func basicValue(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// oauthBasicValue form-encodes the client credentials before base64, as
// RFC 6749 section 2.3.1 asks.
func oauthBasicValue(id, secret string) string {
	return basicValue(url.QueryEscape(id), url.QueryEscape(secret))
}

// registerSecrets teaches the redactor every secret of a.
func (p *Pool) registerSecrets(a Auth) {
	switch a.Type {
	case AuthBearer, AuthHeader:
		p.red.addSecrets(a.Token)
	case AuthQuery:
		p.red.addSecrets(a.Token)
		p.red.addParam(a.Param)
	case AuthBasic:
		if a.Password != "" {
			v := basicValue(a.Username, a.Password)
			p.red.addSecrets(a.Password, v, strings.TrimPrefix(v, "Basic "))
		}
	case AuthOAuth2:
		v := oauthBasicValue(a.ClientID, a.ClientSecret)
		p.red.addSecrets(a.ClientSecret, v, strings.TrimPrefix(v, "Basic "))
	}
}

// staticAuth returns the header or query parameter for non-OAuth2 auth.
func (a Auth) static() (header, value, param, paramValue string) {
	switch a.Type {
	case AuthBearer:
		return "Authorization", "Bearer " + a.Token, "", ""
	case AuthHeader:
		return a.Header, a.Prefix + a.Token, "", ""
	case AuthQuery:
		return "", "", a.Param, a.Token
	case AuthBasic:
		return "Authorization", basicValue(a.Username, a.Password), "", ""
	}
	return "", "", "", ""
}

type tokenKey struct {
	url, id, secret, scopes, style string
}

// tokenSource returns the shared token source for cfg's credentials.
func (p *Pool) tokenSource(cfg HostConfig) *tokenSource {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := cfg.Auth
	k := tokenKey{a.TokenURL, a.ClientID, a.ClientSecret, strings.Join(a.Scopes, " "), a.AuthStyle}
	if ts, ok := p.tokens[k]; ok {
		return ts
	}
	ts := &tokenSource{pool: p, auth: a, retry: cfg.Retry, timeout: cfg.Timeout}
	p.tokens[k] = ts
	return ts
}

// tokenSource caches one OAuth2 access token; concurrent callers that
// find it missing or expired share a single fetch.
type tokenSource struct {
	pool    *Pool
	auth    Auth
	retry   Retry
	timeout time.Duration

	mu     sync.Mutex
	value  string // Authorization header value
	expiry time.Time
	call   *tokenCall
	client *Client
}

type tokenCall struct {
	done  chan struct{}
	value string
	err   error
}

// get returns the Authorization header value, fetching a token if needed.
func (ts *tokenSource) get(ctx context.Context) (string, error) {
	for {
		ts.mu.Lock()
		if ts.value != "" && (ts.expiry.IsZero() || ts.pool.now().Before(ts.expiry)) {
			v := ts.value
			ts.mu.Unlock()
			return v, nil
		}
		if c := ts.call; c != nil {
			ts.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			// The fetcher's own ctx may have ended; ours has not, so try again.
			if c.err != nil && ctx.Err() == nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
				continue
			}
			return c.value, c.err
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
		return value, err
	}
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

// tokenClient posts to the token endpoint through the pool's token host,
// with the spec's retry policy.
func (ts *tokenSource) tokenClient() (*Client, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.client != nil {
		return ts.client, nil
	}
	base, err := tokenOrigin(ts.auth.TokenURL)
	if err != nil {
		return nil, err
	}
	cfg := HostConfig{BaseURL: base.String(), Timeout: ts.timeout, Retry: ts.retry}
	ts.client = ts.pool.newClient(cfg, base, ts.pool.tokenHost(), nil)
	return ts.client, nil
}

func (ts *tokenSource) fetch(ctx context.Context) (value string, lifetime time.Duration, err error) {
	c, err := ts.tokenClient()
	if err != nil {
		return "", 0, err
	}
	a := ts.auth
	req := &Request{Method: http.MethodPost, URL: a.TokenURL, Header: http.Header{}}
	switch a.AuthStyle {
	case StyleJSON:
		req.Body = map[string]string{"clientId": a.ClientID, "clientSecret": a.ClientSecret}
	default:
		form := url.Values{"grant_type": {"client_credentials"}}
		if len(a.Scopes) > 0 {
			form.Set("scope", strings.Join(a.Scopes, " "))
		}
		if a.AuthStyle == StyleForm {
			form.Set("client_id", a.ClientID)
			form.Set("client_secret", a.ClientSecret)
		} else {
			req.Header.Set("Authorization", oauthBasicValue(a.ClientID, a.ClientSecret))
		}
		req.form = form
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return "", 0, err
	}
	var body struct {
		AccessToken  string          `json:"access_token"`
		AccessTokenC string          `json:"accessToken"`
		TokenType    string          `json:"token_type"`
		TokenTypeC   string          `json:"tokenType"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		ExpiresInC   json.RawMessage `json:"expiresIn"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return "", 0, fmt.Errorf("token response from %s: %w", resp.URL, err)
	}
	tok := cmp.Or(body.AccessToken, body.AccessTokenC)
	if tok == "" {
		return "", 0, fmt.Errorf("token response from %s: no access_token", resp.URL)
	}
	ts.pool.red.addSecrets(tok)
	typ := cmp.Or(body.TokenType, body.TokenTypeC)
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer"
	}
	exp := body.ExpiresIn
	if len(exp) == 0 {
		exp = body.ExpiresInC
	}
	// Some servers send expires_in as a string.
	if n, err := strconv.ParseFloat(strings.Trim(string(exp), `"`), 64); err == nil && n > 0 {
		lifetime = secs(n)
	}
	return typ + " " + tok, lifetime, nil
}

// tokenOrigin checks a token URL and returns its scheme and host; unlike
// a BaseURL it may carry a query.
func tokenOrigin(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("token url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("token url %q: must be an absolute http or https url", u.Redacted())
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
