package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Rule actions: what an answer a rule matches becomes.
const (
	ActionOK    = "ok"    // data, whatever the status
	ActionEmpty = "empty" // no records, and the request chain is done
	ActionSkip  = "skip"  // the request is skipped: reported, not failed
	ActionRetry = "retry" // sent again after the server's wait, on any status
	ActionFail  = "fail"  // a failure, with a message from the body
	// ActionRestart: the API refuses the chain's saved position (an
	// expired delta token or cursor); the chain starts over.
	ActionRestart = "restart"
)

// Outcomes of [Client.Do] decided by a rule. They come wrapped in a
// *RuleError, with the Response: branch on them with errors.Is. A caller
// that does not know them sees an error, never data.
var (
	ErrEmpty   = errors.New("no data")
	ErrSkipped = errors.New("request skipped")
	ErrRestart = errors.New("the saved position is refused")
)

// Extract runs a compiled program (jq) on a decoded JSON body and returns
// its first result; ok is false when it yields nothing.
type Extract func(ctx context.Context, body any) (v any, ok bool, err error)

// StatusRange is an inclusive range of statuses; one status is a range of
// one.
type StatusRange struct{ Min, Max int }

// Rule turns a matching answer into data, empty, skip, retry or failure
// before the default handling (2xx data, Retry.Statuses retried, other
// statuses failed). A rule matches when every condition it has holds;
// rules are tried in order and the first match decides.
type Rule struct {
	Name     string            // names the rule in messages, e.g. "http.rules[1]"
	Statuses []StatusRange     // any of them; none means any status
	Headers  map[string]string // all must be present with this value ("*": any value)
	// Body is a predicate on the JSON body: the rule matches when it
	// yields a value other than false and null. A body that is not JSON
	// never matches; an error from the program fails the request.
	Body   Extract
	Action string
	// Message gives the text of a failure (and of the log line of a skip
	// or retry) from the JSON body; a non-string result is shown as JSON.
	Message Extract
	// WaitHeader (retry) names a header holding how long to wait: seconds,
	// epoch seconds or an HTTP date. It is read before Retry-After and
	// x-ratelimit-reset, which a retry rule honours on any status (the
	// reset only when x-ratelimit-remaining is 0, or absent from a 429).
	WaitHeader string
	// MaxWait (retry) is the longest wait a server may ask for; a longer
	// one fails the request at once instead of holding the run. 0 means
	// the larger of Retry.Max and MaxServerWait.
	MaxWait time.Duration
	// Wait (retry) is the wait when the answer names none; it holds every
	// request to the host, not this one alone (an API that refuses all
	// requests until it has had a quiet spell).
	Wait time.Duration
}

func (r Rule) validate() error {
	switch r.Action {
	case ActionOK, ActionEmpty, ActionSkip, ActionRetry, ActionFail, ActionRestart:
	default:
		return fmt.Errorf("rule %s: unknown action %q", r.Name, r.Action)
	}
	for _, s := range r.Statuses {
		if s.Min < 100 || s.Max > 599 || s.Min > s.Max {
			return fmt.Errorf("rule %s: status range %d-%d is not within 100-599", r.Name, s.Min, s.Max)
		}
	}
	if r.MaxWait < 0 {
		return fmt.Errorf("rule %s: negative max_wait", r.Name)
	}
	return nil
}

// RuleError is what [Client.Do] returns when a rule decided an answer is
// not data: ErrEmpty and ErrSkipped for empty and skip (errors.Is), else a
// failure (a fail rule, a retry rule that ran out of attempts or was asked
// to wait too long, or a rule whose program failed).
type RuleError struct {
	Method string
	URL    string // redacted
	Status int
	Rule   string
	Action string
	// Message says why: the rule's message from the body, or what went
	// wrong; redacted.
	Message string
}

func (e *RuleError) Error() string {
	var b strings.Builder
	b.WriteString(e.Method + " " + e.URL + ": " + strconv.Itoa(e.Status))
	if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	fmt.Fprintf(&b, ": rule %s (%s)", e.Rule, e.Action)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrEmpty) and errors.Is(err, ErrSkipped) tell
// the outcomes that are not failures.
func (e *RuleError) Is(target error) bool {
	switch target {
	case ErrEmpty:
		return e.Action == ActionEmpty
	case ErrSkipped:
		return e.Action == ActionSkip
	case ErrRestart:
		return e.Action == ActionRestart
	}
	return false
}

// isOutcome reports whether err is a rule outcome that is not a failure.
func isOutcome(err error) bool {
	return errors.Is(err, ErrEmpty) || errors.Is(err, ErrSkipped) || errors.Is(err, ErrRestart)
}

// ruleBody decodes a response body once for the rules that read it.
type ruleBody struct {
	raw     []byte
	decoded bool
	v       any
	json    bool

	// A download's body is read from its spool when a rule needs it, up
	// to limit bytes; missed records that a rule needed a larger one.
	spool  *Spool
	limit  int64
	missed bool
}

func (b *ruleBody) value() (any, bool) {
	if !b.decoded {
		b.decoded = true
		if b.raw == nil && b.spool != nil {
			raw, ok := b.spool.bytes(b.limit)
			if !ok {
				b.missed = true
				return nil, false
			}
			b.raw = raw
		}
		if len(bytes.TrimSpace(b.raw)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(b.raw))
			dec.UseNumber()
			if err := dec.Decode(&b.v); err == nil && !dec.More() {
				b.json = true
			}
		}
	}
	return b.v, b.json
}

// matchRule returns the first rule that matches resp, or nil.
func matchRule(ctx context.Context, rules []Rule, resp *Response, body *ruleBody) (*Rule, error) {
	for i := range rules {
		r := &rules[i]
		if !r.statusMatches(resp.Status) || !r.headersMatch(resp.Header) {
			continue
		}
		if r.Body != nil {
			v, ok := body.value()
			if !ok {
				continue
			}
			got, yielded, err := r.Body(ctx, v)
			if err != nil {
				return r, fmt.Errorf("rule %s: body: %w", r.Name, err)
			}
			if !yielded || got == nil || got == false {
				continue
			}
		}
		return r, nil
	}
	return nil, nil
}

func (r *Rule) statusMatches(status int) bool {
	if len(r.Statuses) == 0 {
		return true
	}
	for _, s := range r.Statuses {
		if status >= s.Min && status <= s.Max {
			return true
		}
	}
	return false
}

func (r *Rule) headersMatch(h http.Header) bool {
	for k, want := range r.Headers {
		vals := h.Values(k)
		if len(vals) == 0 {
			return false
		}
		if want != "*" && !containsTrimmed(vals, want) {
			return false
		}
	}
	return true
}

func containsTrimmed(vals []string, want string) bool {
	for _, v := range vals {
		if strings.TrimSpace(v) == want {
			return true
		}
	}
	return false
}

// message runs the rule's Message program; "" when there is none or it
// yields nothing. Its own failure is reported in the message: the rule
// has matched, and what it decided stands.
func (r *Rule) message(ctx context.Context, body *ruleBody) string {
	if r.Message == nil {
		return ""
	}
	v, ok := body.value()
	if !ok {
		return ""
	}
	got, yielded, err := r.Message(ctx, v)
	switch {
	case err != nil:
		return "(message: " + err.Error() + ")"
	case !yielded || got == nil:
		return ""
	}
	if s, ok := got.(string); ok {
		return s
	}
	b, err := json.Marshal(got)
	if err != nil {
		return fmt.Sprint(got)
	}
	return string(b)
}

// ruleWait is how long a retry rule waits before the next attempt, as
// the server asks: the rule's WaitHeader, else Retry-After, else
// x-ratelimit-reset (epoch or seconds) when the answer says the budget is
// spent (x-ratelimit-remaining 0, on any status), or is a rate limit (a
// 429, or a 403 that says it is one) without a remaining count (Jira's).
// GitHub and Port send the reset on every answer, beside budget left, and
// ServiceNow sends its rate limit rule's reset (the hour's end) on every
// answer with no remaining count at all: there it names the end of the
// window, not a wait, and a retried timeout or cancelled transaction
// would wait out the hour (or fail over max_wait). ok is false when the
// server gives no hint.
func ruleWait(r *Rule, status int, h http.Header, now time.Time) (time.Duration, bool) {
	if r.WaitHeader != "" {
		if d, ok := waitValue(h.Get(r.WaitHeader), now); ok {
			return d, true
		}
	}
	if d, ok := retryAfter(h, now); ok {
		return d, true
	}
	n, counted := headerCount(h, "X-Ratelimit-Remaining")
	if counted && n > 0 || !counted && !rateLimited(status, h) {
		return 0, false
	}
	if v, epoch, ok := rateReset(h); ok {
		if epoch {
			return max(epochTime(v).Sub(now), 0), true
		}
		return secs(v), true
	}
	return 0, false
}

// waitValue reads a wait from a header value: seconds (epoch seconds when
// above 1e9, epoch milliseconds above 1e12), an HTTP date or an ISO 8601
// time.
func waitValue(s string, now time.Time) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if !(f >= 0) {
			return 0, false
		}
		if f > 1e12 {
			f /= 1000
		}
		if f > 1e9 {
			return max(epochTime(f).Sub(now), 0), true
		}
		return secs(f), true
	}
	if t, err := http.ParseTime(s); err == nil {
		return max(t.Sub(now), 0), true
	}
	if t, ok := isoTime(s); ok {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
