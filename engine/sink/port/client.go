package port

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// StatusError is a Port answer the client did not retry away.
type StatusError struct {
	Method  string
	Path    string // escaped path, without host or query
	Status  int
	Code    string // Port's "error"
	Message string // Port's "message" (or the start of the body)
}

func (e *StatusError) Error() string {
	msg := e.Message
	if e.Code != "" {
		msg = e.Code + ": " + msg
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// apiClient talks to Port: one cached token, retries, and the adaptive
// rate-limit throttle shared by every request.
type apiClient struct {
	base        string
	http        *http.Client
	id, secret  string
	userAgent   string
	log         *slog.Logger
	now         func() time.Time
	sleep       func(context.Context, time.Duration) error
	maxAttempts int
	th          *throttle

	mu      sync.Mutex // held while fetching, so concurrent callers share one fetch
	token   string
	expires time.Time
}

func newAPIClient(c Config) *apiClient {
	return &apiClient{
		base:        c.BaseURL + "/v1",
		http:        c.HTTPClient,
		id:          c.ClientID,
		secret:      c.ClientSecret,
		userAgent:   c.UserAgent,
		log:         c.Logger,
		now:         c.Now,
		sleep:       c.Sleep,
		maxAttempts: c.MaxAttempts,
		th:          &throttle{now: c.Now, sleep: c.Sleep},
	}
}

// accessToken returns the cached token, fetching one when there is none or
// it is about to expire.
func (c *apiClient) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.expires) {
		return c.token, nil
	}
	body, err := json.Marshal(map[string]string{"clientId": c.id, "clientSecret": c.secret})
	if err != nil {
		return "", fmt.Errorf("port: auth: %w", err)
	}
	var out struct {
		AccessToken string  `json:"accessToken"`
		ExpiresIn   float64 `json:"expiresIn"`
		TokenType   string  `json:"tokenType"`
	}
	for attempt := 1; ; attempt++ {
		start := c.now()
		status, hdr, raw, err := c.send(ctx, http.MethodPost, "/auth/access_token", nil, body, "")
		if err == nil && status == http.StatusOK {
			if err := json.Unmarshal(raw, &out); err != nil || out.AccessToken == "" {
				return "", errors.New("port: auth: malformed token response")
			}
			break
		}
		if err == nil && !retryable(status) {
			// The body may echo nothing secret, but keep auth errors terse.
			return "", fmt.Errorf("port: auth: %w", statusError(http.MethodPost, "/v1/auth/access_token", status, raw))
		}
		if attempt >= c.maxAttempts {
			if err != nil {
				return "", fmt.Errorf("port: auth: %w", err)
			}
			return "", fmt.Errorf("port: auth: %w", statusError(http.MethodPost, "/v1/auth/access_token", status, raw))
		}
		if err := c.sleep(ctx, c.retryDelay(attempt, status, hdr, start)); err != nil {
			return "", err
		}
	}
	ttl := time.Duration(out.ExpiresIn * float64(time.Second))
	// Refresh ahead of expiry: a tenth of the lifetime, at most 5 minutes.
	c.expires = c.now().Add(ttl - min(ttl/10, 5*time.Minute))
	c.token = out.AccessToken
	if out.TokenType != "" {
		c.token = out.TokenType + " " + out.AccessToken
	} else {
		c.token = "Bearer " + out.AccessToken
	}
	c.log.Debug("port token obtained", "expires_in", ttl)
	return c.token, nil
}

// invalidate drops tok if it is still the cached one (a 401 answered it).
func (c *apiClient) invalidate(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// do sends one API request and decodes a 2xx body into out. It waits for
// the throttle, retries 429, 408 and 5xx with backoff or the rate-limit
// reset, refreshes the token once on a 401, and returns *StatusError for
// any other non-2xx answer.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
	}
	return c.doRaw(ctx, method, path, query, body, out)
}

func (c *apiClient) doRaw(ctx context.Context, method, path string, query url.Values, body []byte, out any) (int, error) {
	refreshed := false
	for attempt := 1; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return 0, err
		}
		if err := c.th.wait(ctx); err != nil {
			return 0, err
		}
		start := c.now()
		status, hdr, raw, err := c.send(ctx, method, path, query, body, tok)
		if err != nil {
			if ctx.Err() != nil || attempt >= c.maxAttempts {
				return 0, err
			}
			c.log.Warn("port request failed, retrying", "method", method, "path", path, "attempt", attempt, "err", err)
			if err := c.sleep(ctx, c.retryDelay(attempt, 0, nil, start)); err != nil {
				return 0, err
			}
			continue
		}
		c.th.observe(hdr, status, start, c.now())
		switch {
		case status == http.StatusUnauthorized && !refreshed:
			refreshed = true
			c.invalidate(tok)
			c.log.Debug("port token rejected, refreshing", "path", path)
			attempt--
			continue
		case retryable(status) && attempt < c.maxAttempts:
			c.log.Warn("port request throttled or failed, retrying", "method", method, "path", path, "status", status, "attempt", attempt)
			if status != http.StatusTooManyRequests {
				if err := c.sleep(ctx, c.retryDelay(attempt, status, hdr, start)); err != nil {
					return 0, err
				}
			}
			// A 429 set the throttle's gate to the reset time; wait() honours it.
			continue
		case status < 200 || status > 299:
			return status, statusError(method, "/v1"+path, status, raw)
		}
		if out != nil && len(raw) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				return status, fmt.Errorf("%s /v1%s: decode response: %w", method, path, err)
			}
		}
		return status, nil
	}
}

func (c *apiClient) send(ctx context.Context, method, path string, query url.Values, body []byte, auth string) (int, http.Header, []byte, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s /v1%s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := c.http.Do(req)
	if err != nil {
		// url.Error carries the URL, which holds no secret (ids only).
		return 0, nil, nil, fmt.Errorf("%s /v1%s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s /v1%s: read response: %w", method, path, err)
	}
	return res.StatusCode, res.Header, raw, nil
}

func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryDelay is Retry-After when given, else capped exponential backoff
// with jitter.
func (c *apiClient) retryDelay(attempt, status int, h http.Header, sent time.Time) time.Duration {
	if d, ok := retryAfter(h, sent); ok {
		return d
	}
	d := min(500*time.Millisecond<<min(attempt-1, 6), 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

func statusError(method, path string, status int, raw []byte) *StatusError {
	e := &StatusError{Method: method, Path: path, Status: status}
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &body) == nil && (body.Error != "" || body.Message != "") {
		e.Code, e.Message = body.Error, body.Message
	} else {
		e.Message = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
	}
	return e
}
