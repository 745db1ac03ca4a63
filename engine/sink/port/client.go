package port

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-etl/ferry/engine/fetch"
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
	switch {
	case e.Code != "" && msg != "":
		msg = e.Code + ": " + msg
	case e.Code != "":
		msg = e.Code // Port's 401 and 413 may carry no message
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// requestTimeout bounds one attempt: a bulk write of 20 entities near
// Port's 1 MiB limit can take long.
const requestTimeout = 2 * time.Minute

// apiClient talks to Port through a fetch.Client: the token (one per run,
// refreshed once on a 401), retries, and the throttle that follows Port's
// x-ratelimit-* headers are fetch's; what is Port's is the path prefix and
// the {error, message} error body.
type apiClient struct {
	http   *fetch.Client
	redact func(string) string
}

func newAPIClient(c Config) (*apiClient, error) {
	pool := c.Pool
	if pool == nil {
		pool = fetch.NewPool(fetch.Options{Logger: c.Logger, Now: c.Now, Sleep: c.Sleep})
	}
	hc, err := pool.Client(fetch.HostConfig{
		BaseURL: c.BaseURL + "/v1",
		Headers: map[string]string{"User-Agent": c.UserAgent},
		Auth: fetch.Auth{Type: fetch.AuthOAuth2, TokenURL: c.BaseURL + "/v1/auth/access_token",
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, AuthStyle: fetch.StyleJSON},
		Timeout: requestTimeout,
		// Every POST the sink sends may be repeated: bulk upserts and
		// deletes are idempotent, searches read, and a repeated blueprint
		// create gets a 409 the sink handles.
		RetryPOST:   new(true),
		Retry:       fetch.Retry{Attempts: c.MaxAttempts},
		Concurrency: c.Concurrency,
		RateHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("port: %w", err)
	}
	return &apiClient{http: hc, redact: pool.Redact}, nil
}

// ErrMalformedAnswer is wrapped by the error about a 2xx answer from Port
// that is not the documented shape: garbled, empty where a body is due, or
// naming what was not asked. Such an answer fails what depended on it; it
// is never read as "nothing".
var ErrMalformedAnswer = errors.New("malformed answer from Port")

// do sends one API request (path below /v1, in encoded as JSON) and
// decodes a 2xx body into out. It returns *StatusError for a non-2xx
// answer fetch did not retry away, and for a rejected token request; a 2xx
// body that is not JSON of out's shape wraps ErrMalformedAnswer.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	resp, err := c.http.Do(ctx, &fetch.Request{Method: method, URL: path, Query: query, Body: in})
	if err != nil {
		return statusOf(resp), c.portError(method, path, resp, err)
	}
	if out != nil && len(resp.Body) > 0 {
		var err error
		if r, ok := out.(answerReader); ok {
			err = r.readAnswer(resp.Body)
		} else {
			err = json.Unmarshal(resp.Body, out)
		}
		if err != nil {
			return resp.Status, fmt.Errorf("%s /v1%s: %w: %w", method, path, ErrMalformedAnswer, err)
		}
	}
	return resp.Status, nil
}

// doRaw is do with a body already encoded.
func (c *apiClient) doRaw(ctx context.Context, method, path string, query url.Values, body []byte, out any) (int, error) {
	return c.do(ctx, method, path, query, json.RawMessage(body), out)
}

func statusOf(resp *fetch.Response) int {
	if resp == nil {
		return 0
	}
	return resp.Status
}

// portError turns fetch's *StatusError into Port's, read from the whole
// answer when there is one. Without one the token request failed: fetch
// then keeps only the redacted start of its body.
func (c *apiClient) portError(method, path string, resp *fetch.Response, err error) error {
	var se *fetch.StatusError
	if !errors.As(err, &se) {
		return err
	}
	if resp == nil {
		return fmt.Errorf("port: auth: %w", statusError(http.MethodPost, "/v1/auth/access_token", se.Status, []byte(se.Body), c.redact))
	}
	return statusError(method, "/v1"+path, resp.Status, resp.Body, c.redact)
}

func statusError(method, path string, status int, raw []byte, redact func(string) string) *StatusError {
	e := &StatusError{Method: method, Path: path, Status: status}
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &body) == nil && (body.Error != "" || body.Message != "") {
		e.Code, e.Message = redact(body.Error), redact(body.Message)
	} else {
		e.Message = strings.TrimSpace(truncate(redact(string(raw)), 200))
	}
	return e
}

// truncate cuts s to at most n bytes on a rune boundary; it runs after
// redaction, so a secret cut at the limit cannot leak its first half.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
