package cassette

import (
	"encoding/json"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/ferry-etl/ferry/engine/internal/redact"
)

// Values are the values a cassette holds by name instead of by value.
type Values struct {
	// Secrets maps config input names to secret values: written
	// <secret:NAME>.
	Secrets map[string]string
	// URLs maps config input names to values that are http(s) URLs, such
	// as base URLs: written <config:NAME>.
	URLs map[string]string
	// Known returns every other secret the client knows at the moment
	// (fetched tokens, derived credentials, with their escaped forms):
	// written <secret>. It may be nil.
	Known func() []string
	// Params returns the query parameter names (lower-case) whose values
	// are secret whatever they hold, such as presigned links' signatures:
	// written <secret>. It may be nil.
	Params func() []string
	// Volatile are request headers whose values ferry makes anew on every
	// run (an export job's idempotency key): written Volatile, and matched
	// whatever they hold, or no recording would ever replay.
	Volatile []string
}

// minSecret is the shortest value replaced, as in package fetch: a value
// of a character or two is no secret worth the name, and replacing it
// would garble every URL.
const minSecret = 4

// IsURL reports whether a config value is held by name as a URL.
func IsURL(v string) bool {
	l := strings.ToLower(v)
	if !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
		return false
	}
	u, err := url.Parse(v)
	return err == nil && u.Host != ""
}

func secretPlaceholder(name string) string { return "<secret:" + name + ">" }
func urlPlaceholder(name string) string    { return "<config:" + name + ">" }

// anySecret is the placeholder of a secret the config does not name.
const anySecret = "<secret>"

// redactor turns values into placeholders.
type redactor struct {
	secrets *strings.Replacer // nil without secrets
	urls    []namedValue      // longest first
	raw     []string          // every secret value replaced, to check files for leaks
	params  map[string]bool   // lower-case names of secret query parameters
	// volatile are the canonical names of request headers written Volatile.
	volatile map[string]bool
}

type namedValue struct{ value, placeholder string }

// redactor returns the redactor for the values known now.
func (v Values) redactor() *redactor {
	to := map[string]string{}
	if v.Known != nil {
		for _, s := range v.Known() {
			if len(s) >= minSecret {
				to[s] = anySecret
			}
		}
	}
	for _, name := range sortedKeys(v.Secrets) {
		s := v.Secrets[name]
		if len(s) < minSecret {
			continue
		}
		for _, form := range secretForms(s) {
			to[form] = secretPlaceholder(name)
		}
	}
	r := &redactor{params: map[string]bool{}, volatile: map[string]bool{}}
	for _, h := range v.Volatile {
		r.volatile[textproto.CanonicalMIMEHeaderKey(h)] = true
	}
	if v.Params != nil {
		for _, p := range v.Params() {
			r.params[strings.ToLower(p)] = true
		}
	}
	if len(to) > 0 {
		olds := make([]string, 0, len(to))
		for s := range to {
			olds = append(olds, s)
		}
		// Longest first, so a secret that contains another is replaced
		// whole (strings.Replacer tries its pairs in order).
		slices.SortFunc(olds, longestFirst)
		args := make([]string, 0, 2*len(olds))
		for _, s := range olds {
			args = append(args, s, to[s])
		}
		r.secrets = strings.NewReplacer(args...)
		r.raw = olds
	}
	for _, name := range sortedKeys(v.URLs) {
		if u := trimURL(v.URLs[name]); IsURL(u) {
			r.urls = append(r.urls, namedValue{u, urlPlaceholder(name)})
		}
	}
	slices.SortStableFunc(r.urls, func(a, b namedValue) int { return longestFirst(a.value, b.value) })
	return r
}

// secretForms are the ways a secret reaches a request or an answer: as
// it is, escaped in a query or a path, escaped in a JSON string.
func secretForms(s string) []string {
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	if b, err := json.Marshal(s); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

func longestFirst(a, b string) int {
	if d := len(b) - len(a); d != 0 {
		return d
	}
	return strings.Compare(a, b)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// trimURL drops a trailing slash, so "http://h/" and "http://h" name the
// same place.
func trimURL(u string) string { return strings.TrimRight(u, "/") }

// text replaces secrets, then the values of secret query parameters in
// links, then URL values, by their placeholders.
func (r *redactor) text(s string) string {
	if r.secrets != nil {
		s = r.secrets.Replace(s)
	}
	if len(r.params) > 0 {
		s = redact.QueryParams(s, func(name string) bool { return r.params[strings.ToLower(name)] }, anySecret)
	}
	for _, u := range r.urls {
		s = replaceURL(s, u.value, u.placeholder)
	}
	return s
}

// replaceURL replaces value where it is a whole URL prefix: followed by
// the end of the text or a character that cannot continue a host, port or
// path segment, so "http://h" never eats "http://h2" or "http://h:8080".
func replaceURL(s, value, placeholder string) string {
	if !strings.Contains(s, value) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, value)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(value)
		if end < len(s) && continuesURL(s[end]) {
			b.WriteString(s[:end])
		} else {
			b.WriteString(s[:i])
			b.WriteString(placeholder)
		}
		s = s[end:]
	}
}

func continuesURL(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:%@", c) >= 0
}

// restorer puts a run's own values back where a cassette has placeholders.
type restorer struct {
	plain, inJSON *strings.Replacer // nil when there is nothing to put back
}

func (v Values) restorer() *restorer {
	var plain, inJSON []string
	add := func(placeholder, value string) {
		b, _ := json.Marshal(value)
		plain = append(plain, placeholder, value)
		inJSON = append(inJSON, placeholder, string(b[1:len(b)-1]))
	}
	for _, name := range sortedKeys(v.Secrets) {
		add(secretPlaceholder(name), v.Secrets[name])
	}
	for _, name := range sortedKeys(v.URLs) {
		add(urlPlaceholder(name), trimURL(v.URLs[name]))
	}
	if len(plain) == 0 {
		return &restorer{}
	}
	return &restorer{plain: strings.NewReplacer(plain...), inJSON: strings.NewReplacer(inJSON...)}
}

func (r *restorer) text(s string) string {
	if r.plain == nil {
		return s
	}
	return r.plain.Replace(s)
}

// json restores inside JSON text, escaping the values as JSON strings.
func (r *restorer) json(s string) string {
	if r.inJSON == nil {
		return s
	}
	return r.inJSON.Replace(s)
}
