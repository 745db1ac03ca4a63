package fetch

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// login signs in with the session's login request and returns the value
// to send (prefix included) and the session's lifetime.
func (ts *tokenSource) login(ctx context.Context) (string, time.Duration, error) {
	tok, lifetime, err := ts.tokenRequest(ctx, ts.auth.Login, nil)
	if err != nil {
		return "", 0, fmt.Errorf("session login: %w", err)
	}
	return ts.auth.prefix() + tok, lifetime, nil
}

// tokenRequest sends a login or exchange request (with extra headers) and
// reads the token and its lifetime from the answer. The token is
// registered as a secret before anything could print it.
func (ts *tokenSource) tokenRequest(ctx context.Context, tr *TokenRequest, extra http.Header) (string, time.Duration, error) {
	c, err := ts.tokenClient()
	if err != nil {
		return "", 0, err
	}
	req := &Request{Method: tr.Method, URL: tr.URL, Query: tr.Query, Header: tr.Header.Clone(), Body: tr.Body, BodyFormat: tr.BodyFormat}
	if req.Method == "" {
		req.Method = http.MethodPost
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	for k, vs := range extra {
		req.Header[k] = vs
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return "", 0, err
	}
	var body any
	var decoded bool
	decode := func() (any, error) {
		if !decoded {
			decoded = true
			if body, err = decodeBody(resp.Body); err != nil {
				return nil, fmt.Errorf("%s %s: the answer is not JSON: %w", req.Method, resp.URL, err)
			}
		}
		return body, nil
	}
	var tok string
	switch {
	case tr.TokenHeader != "" && isSetCookie(tr.TokenHeader):
		tok = cookiePairs(resp.Header.Values("Set-Cookie"))
		// Each cookie is a credential alone too: an answer may name one.
		for _, pair := range strings.Split(tok, "; ") {
			_, v, _ := strings.Cut(pair, "=")
			ts.pool.red.addSecrets(pair, v)
		}
	case tr.TokenHeader != "":
		tok = strings.TrimSpace(resp.Header.Get(tr.TokenHeader))
	default:
		b, err := decode()
		if err != nil {
			return "", 0, err
		}
		v, ok, err := tr.Token(ctx, b)
		if err != nil {
			return "", 0, hideAnswer(req.Method+" "+resp.URL+": token", b, err)
		}
		if s, isStr := v.(string); ok && isStr {
			tok = s
		} else if ok && v != nil {
			return "", 0, fmt.Errorf("%s %s: token: got %s, want a string", req.Method, resp.URL, jsonv.Kind(v))
		}
	}
	if tok == "" {
		where := "token"
		if tr.TokenHeader != "" {
			where = "header " + tr.TokenHeader
		}
		return "", 0, fmt.Errorf("%s %s: %d: no token in the answer (%s)", req.Method, resp.URL, resp.Status, where)
	}
	ts.pool.red.addSecrets(tok)
	lifetime := tr.TTL
	if tr.ExpiresIn != nil {
		b, err := decode()
		if err != nil {
			return "", 0, err
		}
		v, ok, err := tr.ExpiresIn(ctx, b)
		if err != nil {
			return "", 0, hideAnswer(req.Method+" "+resp.URL+": expires_in", b, err)
		}
		if ok && v != nil {
			d, err := lifetimeOf(v, ts.pool.now())
			if err != nil {
				return "", 0, fmt.Errorf("%s %s: expires_in: %w", req.Method, resp.URL, err)
			}
			lifetime = d
		}
	}
	return tok, lifetime, nil
}

// lifetimeOf reads a token lifetime: seconds (a number, or a string
// holding one) or an expiry time (RFC 3339).
func lifetimeOf(v any, now time.Time) (time.Duration, error) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		n, err := x.Float64()
		if err != nil {
			return 0, err
		}
		f = n
	case float64:
		f = x
	case int:
		f = float64(x)
	case *big.Int:
		f = math.MaxFloat64
	case string:
		if n, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			f = n
			break
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("%q is neither seconds nor an RFC 3339 time", x)
		}
		return max(t.Sub(now), 0), nil
	default:
		return 0, fmt.Errorf("got %s, want seconds or an RFC 3339 time", jsonv.Kind(v))
	}
	if !(f >= 0) {
		return 0, fmt.Errorf("negative lifetime %v", f)
	}
	return secs(f), nil
}

// cookiePairs turns Set-Cookie values into a Cookie header value: each
// cookie's name=value, attributes dropped.
func cookiePairs(setCookies []string) string {
	var pairs []string
	for _, sc := range setCookies {
		pair, _, _ := strings.Cut(sc, ";")
		if pair = strings.TrimSpace(pair); strings.Contains(pair, "=") {
			pairs = append(pairs, pair)
		}
	}
	return strings.Join(pairs, "; ")
}

// answerError is a program's failure on a token answer. The answer is a
// credential, and a jq error quotes the value it failed on, so the message
// says where it failed and the answer's shape only; the cause is kept for
// errors.Is and errors.As.
type answerError struct {
	msg string
	err error
}

func (e *answerError) Error() string { return e.msg }
func (e *answerError) Unwrap() error { return e.err }

// maxShapeKeys bounds the keys an answer's shape lists.
const maxShapeKeys = 10

func hideAnswer(where string, answer any, err error) error {
	return &answerError{msg: where + ": the program fails on the answer (not shown: it holds credentials), which is " + shape(answer), err: err}
}

// shape describes a JSON value without its values: its kind, and for an
// object its keys with their kinds.
func shape(v any) string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return jsonv.Kind(v)
	}
	keys := slices.Sorted(maps.Keys(m))
	var parts []string
	for i, k := range keys {
		if i == maxShapeKeys {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%q (%s)", k, jsonv.Kind(m[k])))
	}
	return "an object with " + strings.Join(parts, ", ")
}
