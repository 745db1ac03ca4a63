package apitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Fixture describes one simulated API: its routes, an optional credential
// check, a latency added to every request and an optional rate limit.
type Fixture struct {
	Routes    []Route    `json:"routes" yaml:"routes"`
	Auth      *AuthCheck `json:"auth,omitempty" yaml:"auth,omitempty"`
	Issuer    *Issuer    `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	Latency   Duration   `json:"latency" yaml:"latency"`
	RateLimit *RateLimit `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
}

// AuthCheck rejects requests that do not carry the expected credential.
// Header names a request header and Query a query parameter; when both are
// set, either carrier is accepted. An empty Value accepts any non-empty
// credential. Rejections use Status (default 401) and Body (default a JSON
// error object). Routes marked Public skip the check. With an [Issuer],
// the credential must be a live token it issued, after Prefix in Header.
type AuthCheck struct {
	Header string `json:"header,omitempty" yaml:"header,omitempty"`
	Value  string `json:"value,omitempty" yaml:"value,omitempty"`
	Prefix string `json:"prefix,omitempty" yaml:"prefix,omitempty"`
	Query  string `json:"query,omitempty" yaml:"query,omitempty"`
	Status int    `json:"status,omitempty" yaml:"status,omitempty"`
	Body   any    `json:"body,omitempty" yaml:"body,omitempty"`
}

// RateLimit is the fixture form of [WithRateLimit]: at most Limit requests
// per fixed window of Per; Headers adds Retry-After and X-RateLimit-* headers.
// Style "github" answers as GitHub's primary rate limit does: 403 with
// x-ratelimit-remaining 0 and x-ratelimit-reset (epoch seconds), no
// Retry-After, and GitHub's message; its headers are on every answer.
type RateLimit struct {
	Limit   int      `json:"limit" yaml:"limit"`
	Per     Duration `json:"per" yaml:"per"`
	Headers bool     `json:"headers" yaml:"headers"`
	Style   string   `json:"style,omitempty" yaml:"style,omitempty"`
}

// Route is one endpoint of a simulated API. See the package documentation
// for how a request picks a route and how the reply is built.
type Route struct {
	Method string            `json:"method,omitempty" yaml:"method,omitempty"` // default GET
	Path   string            `json:"path" yaml:"path"`                         // exact, or with {name} segments
	Query  map[string]string `json:"query,omitempty" yaml:"query,omitempty"`   // subset match; "*" means present with any value
	Public bool              `json:"public,omitempty" yaml:"public,omitempty"` // skip the fixture's AuthCheck

	Status  int               `json:"status,omitempty" yaml:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	Body    any               `json:"body,omitempty" yaml:"body,omitempty"`         // JSON reply, or the envelope template of a collection
	RawBody string            `json:"raw_body,omitempty" yaml:"raw_body,omitempty"` // sent verbatim instead of Body

	Items    []any     `json:"items,omitempty" yaml:"items,omitempty"`
	Generate *Generate `json:"generate,omitempty" yaml:"generate,omitempty"`
	Paginate *Paging   `json:"paginate,omitempty" yaml:"paginate,omitempty"`

	Faults  []Fault  `json:"faults,omitempty" yaml:"faults,omitempty"`
	Latency Duration `json:"latency" yaml:"latency"`
	Echo    bool     `json:"echo,omitempty" yaml:"echo,omitempty"`

	// ItemsFunc, when set, produces the collection for one request from its
	// path parameters, replacing Items and Generate. Its result is served
	// as is (no {name} substitution). It must be safe for concurrent use.
	ItemsFunc func(params map[string]string) []any `json:"-" yaml:"-"`
	// BodyFunc, when set, produces the static reply body from the path
	// parameters, replacing Body. It must be safe for concurrent use.
	BodyFunc func(params map[string]string) any `json:"-" yaml:"-"`
}

// maxGenerate bounds Generate.Count: items are built per request.
const maxGenerate = 100_000

// Generate appends Count generated items to a collection. Item is a
// template: in its string values {i} is replaced by the item's index
// (counting from Start), and a string that is exactly "{i}" becomes the
// number itself. Path parameters are substituted as in Items.
type Generate struct {
	Count int `json:"count" yaml:"count"`
	Start int `json:"start,omitempty" yaml:"start,omitempty"`
	Item  any `json:"item" yaml:"item"`
}

// Pagination kinds served by [Paging].
const (
	PageNone   = "none"     // whole collection in one reply (envelope and meta still apply)
	PageCursor = "cursor"   // opaque token in the envelope, sent back by query, body or header
	PageNext   = "next_url" // absolute next URL in the envelope
	PageLink   = "link"     // RFC 8288 Link header, token in a query parameter
	PageNumber = "page"     // page number
	PageOffset = "offset"   // offset and limit
)

// Paging describes how a route serves its collection. See the package
// documentation for each kind.
type Paging struct {
	Type string `json:"type" yaml:"type"`

	PageSize  int    `json:"page_size,omitempty" yaml:"page_size,omitempty"`   // default 10
	SizeParam string `json:"size_param,omitempty" yaml:"size_param,omitempty"` // query parameter, else JSON body path, else header
	MaxSize   int    `json:"max_size,omitempty" yaml:"max_size,omitempty"`     // 0 = no cap
	Clamp     bool   `json:"clamp,omitempty" yaml:"clamp,omitempty"`           // serve MaxSize instead of a 400 when asked for more

	Param          string `json:"param,omitempty" yaml:"param,omitempty"`
	BodyField      string `json:"body_field,omitempty" yaml:"body_field,omitempty"`
	Header         string `json:"header,omitempty" yaml:"header,omitempty"`
	TokenPath      string `json:"token_path,omitempty" yaml:"token_path,omitempty"`
	TokenParam     string `json:"token_param,omitempty" yaml:"token_param,omitempty"` // page/offset: also honour a token (Harness pageToken)
	LastToken      string `json:"last_token,omitempty" yaml:"last_token,omitempty"`   // "omit" (default), "empty" or "null"
	NextPath       string `json:"next_path,omitempty" yaml:"next_path,omitempty"`
	RelativeURL    bool   `json:"relative_url,omitempty" yaml:"relative_url,omitempty"` // next_url/link: path and query only
	TotalPagesPath string `json:"total_pages_path,omitempty" yaml:"total_pages_path,omitempty"`
	Start          int    `json:"start,omitempty" yaml:"start,omitempty"`

	Envelope string            `json:"envelope,omitempty" yaml:"envelope,omitempty"`
	Meta     map[string]string `json:"meta,omitempty" yaml:"meta,omitempty"` // envelope path -> meta field

	RepeatToken bool `json:"repeat_token,omitempty" yaml:"repeat_token,omitempty"`
}

// isMetaField reports whether [Paging.Meta] can write field into the envelope.
func isMetaField(field string) bool {
	switch field {
	case "total_items", "total_pages", "page", "page_size", "item_count", "has_next", "offset", "empty", "next_page":
		return true
	}
	return false
}

// Fault is one scripted misbehaviour. Delay is applied first; then the
// first of Drop, Truncate, NonJSON, Status that is set decides the reply.
// A zero Fault lets the request through unchanged.
type Fault struct {
	Status   int               `json:"status,omitempty" yaml:"status,omitempty"`
	Headers  map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	Body     string            `json:"body,omitempty" yaml:"body,omitempty"`
	Delay    Duration          `json:"delay" yaml:"delay"`
	Truncate bool              `json:"truncate,omitempty" yaml:"truncate,omitempty"`
	NonJSON  bool              `json:"non_json,omitempty" yaml:"non_json,omitempty"`
	Drop     bool              `json:"drop,omitempty" yaml:"drop,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("20ms")
// in YAML and JSON.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalJSON reads a duration string; the number 0 is also accepted.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "0" || string(b) == "null" {
		d.Duration = 0
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"20ms\", got %s", b)
	}
	return d.parse(s)
}

// UnmarshalYAML reads a duration string; the number 0 is also accepted.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration: want a string like \"20ms\"", n.Line)
	}
	if n.Value == "0" || n.ShortTag() == "!!null" {
		d.Duration = 0
		return nil
	}
	if err := d.parse(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q: must not be negative", s)
	}
	d.Duration = v
	return nil
}

// Load reads a fixture from a YAML file, or a JSON file when the name ends
// in .json. Unknown keys are errors. The fixture is validated.
func Load(path string) (Fixture, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Fixture{}, fmt.Errorf("load fixture: %w", err)
	}
	var f Fixture
	if strings.EqualFold(filepath.Ext(path), ".json") {
		f, err = parseJSON(src)
	} else {
		f, err = parseYAML(src)
	}
	if err != nil {
		return Fixture{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Validate(); err != nil {
		return Fixture{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse reads a fixture from YAML (which includes JSON) source and
// validates it.
func Parse(src []byte) (Fixture, error) {
	f, err := parseYAML(src)
	if err != nil {
		return Fixture{}, err
	}
	return f, f.Validate()
}

func parseJSON(src []byte) (Fixture, error) {
	var f Fixture
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return Fixture{}, fmt.Errorf("decode json: %w", err)
	}
	return f, nil
}

func parseYAML(src []byte) (Fixture, error) {
	// A strict pass reports unknown keys with their lines; Node.Decode
	// would not (go-yaml/yaml#460).
	var f Fixture
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Fixture{}, fmt.Errorf("decode yaml: %w", err)
	}
	// The second pass keeps unquoted dates as the strings they were
	// written as, instead of time.Time values re-encoded differently.
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return Fixture{}, fmt.Errorf("decode yaml: %w", err)
	}
	keepTimestampsAsStrings(&root)
	f = Fixture{}
	if err := root.Decode(&f); err != nil {
		return Fixture{}, fmt.Errorf("decode yaml: %w", err)
	}
	normalizeFixture(&f)
	return f, nil
}

func keepTimestampsAsStrings(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Style&yaml.TaggedStyle == 0 && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		keepTimestampsAsStrings(c)
	}
}

// normalizeFixture turns YAML's map[any]any (from non-string keys) into
// JSON-shaped map[string]any so every value can be encoded.
func normalizeFixture(f *Fixture) {
	if f.Auth != nil {
		f.Auth.Body = normalize(f.Auth.Body)
	}
	if f.Issuer != nil {
		// A YAML block scalar ends the key with a newline: keep it PEM.
		f.Issuer.PublicKey = strings.TrimSpace(f.Issuer.PublicKey)
	}
	for i := range f.Routes {
		r := &f.Routes[i]
		r.Body = normalize(r.Body)
		for j := range r.Items {
			r.Items[j] = normalize(r.Items[j])
		}
		if r.Generate != nil {
			r.Generate.Item = normalize(r.Generate.Item)
		}
	}
}

func normalize(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
		return v
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Sprint(v) // JSON cannot carry these
		}
		return v
	default:
		return v
	}
}

// Validate reports every problem of the fixture, one per line.
func (f Fixture) Validate() error {
	var errs []error
	if a := f.Auth; a != nil {
		if a.Header == "" && a.Query == "" {
			errs = append(errs, errors.New("auth: set header or query"))
		}
		if a.Status != 0 && (a.Status < 100 || a.Status > 599) {
			errs = append(errs, fmt.Errorf("auth: status %d out of range", a.Status))
		}
	}
	if rl := f.RateLimit; rl != nil {
		if rl.Limit < 1 || rl.Per.Duration <= 0 {
			errs = append(errs, errors.New("rate_limit: limit and per must be positive"))
		}
		if rl.Style != "" && rl.Style != RateStyleGitHub {
			errs = append(errs, fmt.Errorf("rate_limit: style %q: want github or nothing", rl.Style))
		}
	}
	if f.Issuer != nil {
		errs = append(errs, f.Issuer.validate(f.Auth)...)
	}
	for i, r := range f.Routes {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("routes[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem of one route.
func (r Route) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := compilePath(r.Path); err != nil {
		add("path: %w", err)
	}
	if r.Method != "" && !validToken(r.Method) {
		add("method %q: not a valid HTTP method", r.Method)
	}
	if r.Status != 0 && (r.Status < 100 || r.Status > 599) {
		add("status %d out of range", r.Status)
	}
	collection := r.isCollection()
	if r.Echo && (collection || r.Body != nil || r.RawBody != "") {
		add("echo cannot be combined with body, raw_body, items, generate or paginate")
	}
	if r.RawBody != "" && (r.Body != nil || collection) {
		add("raw_body cannot be combined with body, items, generate or paginate")
	}
	if g := r.Generate; g != nil && (g.Count < 0 || g.Count > maxGenerate) {
		add("generate.count must be between 0 and %d", maxGenerate)
	}
	if p := r.Paginate; p != nil {
		for _, err := range p.validate() {
			add("paginate: %w", err)
		}
	}
	if collection && r.Body != nil {
		if r.Paginate == nil || r.Paginate.Envelope == "" {
			add("body with items: body is only used as the envelope template, so set paginate.envelope")
		} else if _, ok := r.Body.(map[string]any); !ok {
			add("body: an envelope template must be an object")
		}
	}
	for i, f := range r.Faults {
		if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
			add("faults[%d]: status %d out of range", i, f.Status)
		}
	}
	return errors.Join(errs...)
}

func (r Route) isCollection() bool {
	return r.Items != nil || r.ItemsFunc != nil || r.Generate != nil || r.Paginate != nil
}

func (p *Paging) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch p.Type {
	case PageNone, PageLink, PageNumber, PageOffset:
	case PageCursor:
		if p.TokenPath == "" {
			add("cursor needs token_path")
		}
		if p.Param == "" && p.BodyField == "" && p.Header == "" {
			add("cursor needs param, body_field or header for the request token")
		}
	case PageNext:
		if p.NextPath == "" {
			add("next_url needs next_path")
		}
	default:
		add("type %q: want one of none, cursor, next_url, link, page, offset", p.Type)
	}
	if (p.Type == PageNext || p.Type == PageLink) && (p.BodyField != "" || p.Header != "") {
		add("%s carries its token in the URL: body_field and header are not used", p.Type)
	}
	if p.Type == PageCursor || p.Type == PageNext {
		if p.Envelope == "" {
			add("%s needs an envelope to hold the next %s", p.Type, map[string]string{PageCursor: "token", PageNext: "url"}[p.Type])
		}
	}
	if p.TokenParam != "" && p.Type != PageNumber && p.Type != PageOffset {
		add("token_param is only for page and offset (cursor uses param)")
	}
	if p.TokenParam != "" && p.TokenPath == "" {
		add("token_param needs token_path")
	}
	if p.TokenPath != "" && p.Type != PageCursor && p.TokenParam == "" {
		add("token_path on %s needs token_param", p.Type)
	}
	if p.NextPath != "" && p.Type != PageNext {
		add("next_path is only for next_url")
	}
	if p.RelativeURL && p.Type != PageNext && p.Type != PageLink {
		add("relative_url is only for next_url and link")
	}
	switch p.LastToken {
	case "", "omit", "empty", "null":
	default:
		add("last_token %q: want omit, empty or null", p.LastToken)
	}
	if p.Type == PageNumber && p.Start != 0 && p.Start != 1 {
		add("start must be 0 or 1")
	}
	if p.PageSize < 0 || p.MaxSize < 0 {
		add("page_size and max_size must not be negative")
	}
	if p.MaxSize > 0 && p.pageSize() > p.MaxSize {
		add("page_size %d exceeds max_size %d", p.pageSize(), p.MaxSize)
	}
	if p.Envelope == "" && (p.TotalPagesPath != "" || len(p.Meta) > 0 || p.TokenPath != "" || p.NextPath != "") {
		add("token_path, next_path, total_pages_path and meta need an envelope")
	}
	keys := make([]string, 0, len(p.Meta))
	for k := range p.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !isMetaField(p.Meta[k]) {
			add("meta %q: unknown field %q", k, p.Meta[k])
		}
	}
	return errs
}

func (p *Paging) pageSize() int {
	if p.PageSize > 0 {
		return p.PageSize
	}
	return 10
}

func validToken(s string) bool {
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return s != ""
}

func statusOr(status, def int) int {
	if status == 0 {
		return def
	}
	return status
}
