package fetch

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrBodyTooLarge fails a request whose response body is larger than
// HostConfig.MaxBodyBytes.
var ErrBodyTooLarge = errors.New("response body too large")

// maxErrorBody bounds the response body kept in a StatusError.
const maxErrorBody = 512

// StatusError is returned by [Client.Do] when the final attempt got a
// non-2xx status. Callers branch on it with errors.As.
type StatusError struct {
	Method string
	URL    string // redacted
	Status int
	Body   string // redacted, truncated to about 512 bytes
	// Hint says what to do about it, where ferry knows (a clock AWS
	// refuses).
	Hint string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString(e.Method + " " + e.URL + ": " + strconv.Itoa(e.Status))
	if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	if e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	if e.Hint != "" {
		b.WriteString(": " + e.Hint)
	}
	return b.String()
}

// errorBody redacts before truncating, so a secret cut at the limit
// cannot leak its first half.
func errorBody(body []byte, redact func(string) string) string {
	s := strings.TrimSpace(redact(string(body)))
	if len(s) <= maxErrorBody {
		return s
	}
	cut := maxErrorBody
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// requestError carries an already redacted message and keeps the cause
// for errors.Is (context.Canceled, context.DeadlineExceeded, net errors).
type requestError struct {
	msg      string
	err      error
	attempts int // HTTP attempts sent before the request failed
}

// Attempts is how many HTTP attempts a failed Do sent, retries included
// (0 when it failed before sending any, or err is not Do's). A final
// non-2xx status has them in its Response instead.
func Attempts(err error) int {
	var re *requestError
	if errors.As(err, &re) {
		return re.attempts
	}
	return 0
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.err }

// redirectError stops a redirect loop; it is not retried.
type redirectError struct{ n int }

func (e *redirectError) Error() string { return fmt.Sprintf("stopped after %d redirects", e.n) }

// unauthorizedHint says what to check about a final 401: a status alone
// does not tell a wrong key from a missing one, or from a request that
// left BaseURL's origin, where credentials are never sent.
func (c *Client) unauthorizedHint(x *exchange) string {
	switch {
	case c.tokenOf != nil:
		return fmt.Sprintf("the server refused the credentials of the %s auth%s: check the config values it reads", c.tokenOf.Type, authAt(c.tokenOf))
	case !x.same:
		return fmt.Sprintf("sent without credentials: they go only to base_url's origin %s", c.origin)
	case c.cfg.Auth.Type != AuthNone:
		return fmt.Sprintf("the server refused the credentials of the %s auth%s: check the config values it reads", c.cfg.Auth.Type, authAt(&c.cfg.Auth))
	case len(c.cfg.SecretHeaders) > 0:
		return fmt.Sprintf("the server refused the credentials in http.headers (%s): check the config values they read", strings.Join(c.cfg.SecretHeaders, ", "))
	}
	return "ferry sent no credentials: the spec has no http.auth"
}

// authAt is where a spec's auth block is, for a message ("" outside one).
func authAt(a *Auth) string {
	if a.ID == "" {
		return ""
	}
	return " at " + a.ID
}
