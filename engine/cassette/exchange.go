package cassette

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// Exchange is one request and its answer, as a cassette file holds it.
type Exchange struct {
	Request  Request  `json:"request"`
	Response Response `json:"response"`
}

// Request is a request as recorded: secrets and URL values replaced by
// placeholders.
type Request struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Header Header `json:"headers,omitempty"`
	Body
}

// Response is an answer as recorded.
type Response struct {
	Status int    `json:"status"`
	Header Header `json:"headers,omitempty"`
	Body
}

// Body is a body in the most readable form that keeps what ferry reads
// of it: a JSON value (pretty-printed, keys sorted), text, or base64 for
// bytes that are not UTF-8. An empty body has none of them.
type Body struct {
	JSON   json.RawMessage `json:"body,omitempty"`
	Text   string          `json:"body_text,omitempty"`
	Base64 string          `json:"body_base64,omitempty"`
}

// Header holds headers with canonical names; a name with one value is
// written as a string, with several as a list.
type Header http.Header

func (h Header) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(h))
	for k, vs := range h {
		if len(vs) == 1 {
			m[k] = vs[0]
		} else {
			m[k] = vs
		}
	}
	return jsonv.Append(nil, m, false)
}

func (h *Header) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	out := Header{}
	for k, raw := range m {
		var one string
		if err := json.Unmarshal(raw, &one); err == nil {
			out[textproto.CanonicalMIMEHeaderKey(k)] = []string{one}
			continue
		}
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			return fmt.Errorf("header %s: want a string or a list of strings", k)
		}
		out[textproto.CanonicalMIMEHeaderKey(k)] = many
	}
	*h = out
	return nil
}

// Headers left out of a cassette: the transport's own (they say nothing
// about the request), and answers' per-response noise (dates, request ids)
// that would make every recording differ.
var (
	requestNoise  = []string{"Accept-Encoding", "Connection", "Content-Length", "User-Agent"}
	responseNoise = []string{"Age", "Cf-Ray", "Connection", "Content-Length", "Date", "Keep-Alive", "Nel", "Report-To",
		"Server-Timing", "Transfer-Encoding", "X-Amz-Cf-Id", "X-Amzn-Requestid", "X-Amzn-Trace-Id", "X-Correlation-Id", "X-Request-Id"}
)

// keepHeaders keeps a request's headers (request true: volatile ones
// become Volatile) or an answer's.
func keepHeaders(h http.Header, noise []string, red *redactor, request bool) Header {
	out := Header{}
	for k, vs := range h {
		k = textproto.CanonicalMIMEHeaderKey(k)
		if slices.Contains(noise, k) || len(vs) == 0 {
			continue
		}
		kept := make([]string, len(vs))
		for i, v := range vs {
			if request && red.volatile[k] {
				kept[i] = Volatile
				continue
			}
			kept[i] = red.text(v)
		}
		out[k] = kept
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Volatile is what a cassette holds instead of a per-response id, or a
// request header's value ferry makes anew on every run.
const Volatile = "<volatile>"

// volatileFields are top-level fields of JSON answers that identify the
// answer rather than the data (Harness's correlationId, request and trace
// ids): new on every request, so kept they would make every recording
// differ. Their values are recorded as Volatile.
var volatileFields = []string{"correlationid", "correlation_id", "requestid", "request_id", "traceid", "trace_id"}

// newBody stores raw bytes: JSON decoded, redacted string by string and
// re-encoded with sorted keys (so an escaped secret cannot slip through,
// and key order never makes a diff); other text redacted as text. In an
// answer (used not nil), per-response ids become Volatile, except those
// used reports the run sent back (an export job known by its requestId):
// those are data, and a replay must give them.
func newBody(raw []byte, red *redactor, used func(string) bool) (Body, error) {
	if len(raw) == 0 {
		return Body{}, nil
	}
	if v, ok := decodeJSON(raw); ok {
		if m, isObj := v.(map[string]any); isObj && used != nil {
			for k, x := range m {
				if s, isStr := x.(string); isStr && slices.Contains(volatileFields, strings.ToLower(k)) && !used(s) {
					m[k] = Volatile
				}
			}
		}
		b, err := jsonv.Append(nil, redactValue(v, red), false)
		if err != nil {
			return Body{}, err
		}
		return Body{JSON: b}, nil
	}
	s := red.text(string(raw))
	if utf8.ValidString(s) {
		return Body{Text: s}, nil
	}
	return Body{Base64: base64.StdEncoding.EncodeToString([]byte(s))}, nil
}

// Bytes returns the body as sent: JSON compact, text as it is.
func (b Body) Bytes() ([]byte, error) {
	switch {
	case len(b.JSON) > 0:
		var out bytes.Buffer
		if err := json.Compact(&out, b.JSON); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	case b.Base64 != "":
		return base64.StdEncoding.DecodeString(b.Base64)
	}
	return []byte(b.Text), nil
}

// decodeJSON decodes one JSON value with exact numbers; ok is false for
// anything else (ferry's own decoder refuses trailing data too).
func decodeJSON(raw []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false
	}
	return v, true
}

func redactValue(v any, red *redactor) any {
	switch x := v.(type) {
	case string:
		return red.text(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[red.text(k)] = redactValue(e, red)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = redactValue(e, red)
		}
		return x
	}
	return v
}

// encodeFile is a cassette file's bytes: indented, with a final newline.
func encodeFile(ex *Exchange) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ex); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decodeFile(data []byte) (*Exchange, error) {
	var ex Exchange
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ex); err != nil {
		return nil, err
	}
	if ex.Request.Method == "" || ex.Request.URL == "" {
		return nil, errors.New("request needs a method and a url")
	}
	if ex.Response.Status < 100 || ex.Response.Status > 999 {
		return nil, fmt.Errorf("response status %d is not an HTTP status", ex.Response.Status)
	}
	for _, b := range []Body{ex.Request.Body, ex.Response.Body} {
		if n := btoi(len(b.JSON) > 0) + btoi(b.Text != "") + btoi(b.Base64 != ""); n > 1 {
			return nil, errors.New("a body is one of body, body_text and body_base64")
		}
		if _, err := b.Bytes(); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	return &ex, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// key identifies a request among a cassette's: method, URL with its
// query sorted, headers, and the body in canonical form (JSON with sorted
// keys, a form with sorted fields).
func (r *Request) key() string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(r.Method) + " " + canonicalURL(r.URL) + "\n")
	h := flatten(r.Header)
	for _, k := range sortedKeys(h) {
		b.WriteString(k + ": " + h[k] + "\n")
	}
	b.WriteString("\n" + r.canonicalBody())
	return b.String()
}

func flatten(h Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		m[k] = strings.Join(vs, "\n")
	}
	return m
}

func (r *Request) canonicalBody() string {
	raw, err := r.Body.Bytes()
	if err != nil {
		return ""
	}
	if len(r.Body.JSON) > 0 {
		if v, ok := decodeJSON(raw); ok {
			if b, err := jsonv.Append(nil, v, false); err == nil {
				return string(b)
			}
		}
	}
	if strings.HasPrefix(http.Header(r.Header).Get("Content-Type"), "application/x-www-form-urlencoded") {
		if q, err := url.ParseQuery(string(raw)); err == nil {
			return q.Encode()
		}
	}
	return string(raw)
}

// canonicalURL lower-cases the scheme and host and sorts the query by
// name (keeping the order of a name's values); the path stays as sent.
func canonicalURL(s string) string {
	s, _, _ = strings.Cut(s, "#")
	head, query, hasQuery := strings.Cut(s, "?")
	if i := strings.Index(head, "://"); i >= 0 {
		rest := head[i+3:]
		end := strings.IndexByte(rest, '/')
		if end < 0 {
			end = len(rest)
		}
		head = strings.ToLower(head[:i+3]+rest[:end]) + rest[end:]
	}
	if !hasQuery {
		return head
	}
	if q, err := url.ParseQuery(query); err == nil {
		query = q.Encode()
	}
	return head + "?" + query
}

// hashLen is how many hex digits of the request's hash name its file:
// 40 bits, so a cassette of thousands of exchanges has no collision.
const hashLen = 10

// fileName names an exchange's file: method, path and a hash of the key.
func fileName(r *Request, key string) string {
	sum := sha256.Sum256([]byte(key))
	return strings.ToUpper(r.Method) + "_" + slug(r.URL) + "_" + hex.EncodeToString(sum[:])[:hashLen] + ".json"
}

// filePattern matches the files fileName makes: the ones a new recording
// may replace.
var filePattern = regexp.MustCompile(`^[A-Z]+_[A-Za-z0-9._-]*_[0-9a-f]{10}\.json$`)

// slug is the URL's path as a file-name part, without its origin (or the
// placeholder standing for it).
func slug(u string) string {
	u, _, _ = strings.Cut(u, "?")
	switch {
	case strings.HasPrefix(u, "<"):
		if i := strings.IndexByte(u, '>'); i >= 0 {
			u = u[i+1:]
		}
	case strings.Contains(u, "://"):
		u = u[strings.Index(u, "://")+3:]
		if i := strings.IndexByte(u, '/'); i >= 0 {
			u = u[i:]
		} else {
			u = ""
		}
	}
	var b strings.Builder
	lastSep := true
	for _, c := range u {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.':
			b.WriteRune(c)
			lastSep = false
		case !lastSep:
			b.WriteByte('_')
			lastSep = true
		}
	}
	s := strings.Trim(b.String(), "_.")
	const maxSlug = 80
	if len(s) > maxSlug {
		s = strings.TrimRight(s[:maxSlug], "_.")
	}
	if s == "" {
		s = "root"
	}
	return s
}
