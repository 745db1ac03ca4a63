package cassette

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// DefaultMaxBody is the largest answer recorded, as fetch's default cap:
// a larger one fails the request there anyway.
const DefaultMaxBody = 32 << 20

// Recorder is an http.RoundTripper that sends requests on and keeps every
// exchange; Save writes them. Exchanges are held in memory until then,
// because a token fetched late in the run must be kept out of files
// written early.
type Recorder struct {
	dir     string
	next    http.RoundTripper
	values  Values
	maxBody int64

	mu        sync.Mutex
	exchanges []rawExchange // in the order their answers arrived
	oversize  int
}

type rawExchange struct {
	method, url string
	header      http.Header
	body        []byte
	status      int
	respHeader  http.Header
	respBody    []byte
}

// NewRecorder records into dir what next answers (a clone of
// http.DefaultTransport when nil).
func NewRecorder(dir string, next http.RoundTripper, values Values) *Recorder {
	if next == nil {
		next = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &Recorder{dir: dir, next: next, values: values, maxBody: DefaultMaxBody}
}

// RoundTrip sends req on and keeps the exchange. A failure that got no
// answer (a network error) is not an exchange and is not kept.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.roundTrip(r.next, req)
}

// Wrap returns a transport that sends through next and keeps its
// exchanges in r: the recording of a client whose transports are its own
// (one per host, with a spec's TLS settings).
func (r *Recorder) Wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) { return r.roundTrip(next, req) })
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (r *Recorder) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, r.maxBody+1))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if int64(len(respBody)) > r.maxBody {
		// Not kept: the client refuses such an answer (and fails the run),
		// and holding it would defeat its cap.
		r.mu.Lock()
		r.oversize++
		r.mu.Unlock()
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(respBody), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	r.mu.Lock()
	r.exchanges = append(r.exchanges, rawExchange{
		method: req.Method, url: req.URL.String(), header: req.Header.Clone(), body: body,
		status: resp.StatusCode, respHeader: resp.Header.Clone(), respBody: respBody,
	})
	r.mu.Unlock()
	return resp, nil
}

// readBody reads a request's body whole (nil without one).
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("read the request body: %w", err)
	}
	return b, nil
}

// Save writes the cassette: one file per distinct request (the last
// answer of a request asked several times); with prune, it then removes
// the files of an earlier recording that this one did not write (a run
// that failed or was interrupted asked only part of its requests, so it
// prunes nothing). It refuses to write a file in which a secret survived
// redaction.
func (r *Recorder) Save(prune bool) (Stats, error) {
	r.mu.Lock()
	raws := slices.Clone(r.exchanges)
	oversize := r.oversize
	r.mu.Unlock()

	red := r.values.redactor()
	used := sentValues(raws)
	files := map[string][]byte{}
	for _, x := range raws {
		ex, err := x.exchange(red, used)
		if err != nil {
			return Stats{}, fmt.Errorf("record %s %s: %w", x.method, red.text(x.url), err)
		}
		data, err := encodeFile(ex)
		if err != nil {
			return Stats{}, fmt.Errorf("record %s %s: %w", x.method, ex.Request.URL, err)
		}
		key := ex.Request.key()
		name := fileName(&ex.Request, key)
		bare := placeholderRE.ReplaceAll(data, nil) // a secret such as "cret" is in every placeholder
		for _, s := range red.raw {
			if bytes.Contains(bare, []byte(s)) {
				return Stats{}, fmt.Errorf("record %s %s: a secret is in the exchange in a form that cannot be replaced; nothing written", ex.Request.Method, ex.Request.URL)
			}
		}
		files[name] = data // the last answer of a repeated request wins
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return Stats{}, fmt.Errorf("record: %w", err)
	}
	st := Stats{Exchanges: len(raws), Files: len(files), Oversize: oversize}
	for name, data := range files {
		path := filepath.Join(r.dir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return st, fmt.Errorf("record: %w", err)
		}
	}
	if !prune {
		return st, r.oversized(oversize)
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return st, fmt.Errorf("record: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if _, ok := files[e.Name()]; ok || e.IsDir() || !filePattern.MatchString(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(r.dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		st.Removed++
	}
	if err := errors.Join(errs...); err != nil {
		return st, fmt.Errorf("record: remove the exchanges of an earlier recording: %w", err)
	}
	return st, r.oversized(oversize)
}

// oversized reports the answers too large to keep: the cassette lacks them.
func (r *Recorder) oversized(n int) error {
	if n > 0 {
		return fmt.Errorf("record: %d answers over %d bytes were not recorded", n, r.maxBody)
	}
	return nil
}

// placeholderRE matches the placeholders a cassette holds.
var placeholderRE = regexp.MustCompile(`<(?:secret|config)(?::[^<>]*)?>`)

// Stats say what Save wrote.
type Stats struct {
	Exchanges int // exchanges seen, repeats included
	Files     int // distinct requests written
	Removed   int // files of an earlier recording removed
	Oversize  int // answers too large to keep
}

// sentValues reports whether a value was sent in a request of the
// recording (in its URL, escaped or not, a header or the body), whole: not
// as part of a longer word, and not a value of a few characters, which
// any request may hold by chance.
func sentValues(raws []rawExchange) func(string) bool {
	var b strings.Builder
	for _, x := range raws {
		b.WriteString(x.url + "\n")
		for _, vs := range x.header {
			b.WriteString(strings.Join(vs, "\n") + "\n")
		}
		b.Write(x.body)
		b.WriteString("\n")
	}
	sent := b.String()
	return func(v string) bool {
		if len(v) < minSecret {
			return false
		}
		for _, form := range []string{v, url.PathEscape(v), url.QueryEscape(v)} {
			if containsWord(sent, form) {
				return true
			}
		}
		return false
	}
}

// containsWord reports whether w is in s with no letter or digit right
// before or after it.
func containsWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		at, end := i+j, i+j+len(w)
		if (at == 0 || !isAlnum(s[at-1])) && (end == len(s) || !isAlnum(s[end])) {
			return true
		}
		i = at + 1
	}
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func (x *rawExchange) exchange(red *redactor, used func(string) bool) (*Exchange, error) {
	reqBody, err := newBody(x.body, red, nil)
	if err != nil {
		return nil, err
	}
	respBody, err := newBody(x.respBody, red, used)
	if err != nil {
		return nil, err
	}
	return &Exchange{
		Request:  Request{Method: strings.ToUpper(x.method), URL: red.text(x.url), Header: keepHeaders(x.header, requestNoise, red, true), Body: reqBody},
		Response: Response{Status: x.status, Header: keepHeaders(x.respHeader, responseNoise, red, false), Body: respBody},
	}, nil
}
