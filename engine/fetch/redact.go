package fetch

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ferry-etl/ferry/engine/internal/redact"
)

// Redacted replaces every secret in redacted text.
const Redacted = "REDACTED"

// redactor knows every secret value the pool has seen and the query
// parameter names whose values are secret whatever they hold.
type redactor struct {
	mu      sync.RWMutex
	secrets map[string]struct{}
	params  map[string]struct{} // lower-case names
	rep     *strings.Replacer
	// find, built with rep, tells whether a text holds a secret at all:
	// most texts hold none, and Replace copies every text it is given.
	find *secretIndex
	// pending are the secret forms added since rep and find were built:
	// a text holding none of them is redacted by rep as it stands, and
	// one holding one rebuilds them first, as do maxPending additions. A
	// header derived from a secret and a parent's id is a new secret for
	// each request, and a rebuild at every addition grew with their
	// number.
	pending []string
}

// maxPending bounds the forms a text is searched for one by one.
const maxPending = 256

func newRedactor() *redactor {
	return &redactor{secrets: map[string]struct{}{}, params: map[string]struct{}{
		// OAuth2's standard names, in case a server echoes them into links.
		"access_token":  {},
		"client_secret": {},
		// The signatures and credentials of presigned object-storage links
		// (S3, Google Cloud Storage, Azure SAS, CloudFront), where export
		// results are: such a link is a key to the file.
		"x-amz-signature":      {},
		"x-amz-credential":     {},
		"x-amz-security-token": {},
		"x-goog-signature":     {},
		"x-goog-credential":    {},
		"sig":                  {},
		"signature":            {},
	}}
}

// minSecret is the shortest value redacted by value: shorter ones would
// garble every message and are no secret worth the name.
const minSecret = 4

// trivialSecret reports whether v is a text that a value derived from a
// secret may render to but that is no secret: "true" or "false" (a header
// or a part saying whether a key is set: one bit of it) or "null". Each is
// long enough to redact, and redacted it would garble every message, log
// line and record holding the word.
func trivialSecret(v string) bool {
	switch v {
	case "true", "false", "null":
		return true
	}
	return false
}

// addSecrets registers values with the forms they reach a URL, an
// answer or an error message in (see secretForms).
func (r *redactor) addSecrets(vals ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range vals {
		if len(v) < minSecret || trivialSecret(v) {
			continue
		}
		for _, f := range secretForms(v) {
			if _, ok := r.secrets[f]; !ok {
				r.secrets[f] = struct{}{}
				r.pending = append(r.pending, f)
			}
		}
	}
	if len(r.pending) > maxPending || r.rep == nil && len(r.pending) > 0 {
		r.rebuild()
	}
}

// fresh rebuilds rep and find when secrets were added since (pending).
func (r *redactor) fresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) > 0 {
		r.rebuild()
	}
}

// rebuild makes rep and find from every secret. r.mu is held for writing.
func (r *redactor) rebuild() {
	r.pending = r.pending[:0]
	all := make([]string, 0, len(r.secrets))
	for s := range r.secrets {
		all = append(all, s)
	}
	// Longest first, so a secret that contains another is replaced whole.
	slices.SortFunc(all, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	args := make([]string, 0, 2*len(all))
	for _, s := range all {
		to := Redacted
		if strings.HasSuffix(s, previewCut) {
			to = `"` + Redacted + previewCut
		}
		args = append(args, s, to)
	}
	r.rep = strings.NewReplacer(args...)
	r.find = newSecretIndex(all)
}

// secretIndex finds whether a text holds any of a set of strings, exactly:
// a pass over the text that looks up each pair of adjacent bytes in a
// bitmap of the strings' first two bytes, and compares the strings that
// start there only on a hit. It is immutable once built.
type secretIndex struct {
	pairs   [1 << 16 / 64]uint64
	byFirst [256][]string
	short   bool // a string of under two bytes: every text may hold it
}

func newSecretIndex(all []string) *secretIndex {
	x := &secretIndex{}
	for _, s := range all {
		if len(s) < 2 {
			x.short = true
			continue
		}
		p := uint16(s[0])<<8 | uint16(s[1])
		x.pairs[p/64] |= 1 << (p % 64)
		x.byFirst[s[0]] = append(x.byFirst[s[0]], s)
	}
	return x
}

// in reports whether s holds one of the strings.
func (x *secretIndex) in(s string) bool {
	if x.short {
		return true
	}
	for i := 0; i+1 < len(s); i++ {
		p := uint16(s[i])<<8 | uint16(s[i+1])
		if x.pairs[p/64]&(1<<(p%64)) == 0 {
			continue
		}
		for _, f := range x.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], f) {
				return true
			}
		}
	}
	return false
}

// previewCut ends a value jq's error messages cut short: gojq previews a
// value in at most 30 bytes, so a string in it may end in its first bytes
// and this (`cannot add: string ("abcd ...")`).
const previewCut = " ..."

// maxPreview bounds the bytes of a string a jq error's preview keeps.
const maxPreview = 30

// secretForms are v as it is; URL-escaped (a query, a path) as Go, as
// JavaScript's encodeURIComponent, as Python's quote, and each with
// lower-case hex; escaped in JSON the ways servers write it (Go escapes
// & < >, PHP escapes /); and the starts of its JSON form that a jq error's
// preview keeps, with their opening quote and previewCut.
func secretForms(v string) []string {
	q := url.QueryEscape(v)
	forms := []string{v, q, url.PathEscape(v), uriComponent.Replace(q), strings.ReplaceAll(q, "+", "%20")}
	for _, f := range forms[1:] {
		forms = append(forms, lowerHex(f))
	}
	var js []string
	for _, html := range []bool{false, true} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) != nil {
			continue
		}
		e := strings.TrimSuffix(b.String(), "\n")
		e = e[1 : len(e)-1]
		js = append(js, e, strings.ReplaceAll(e, "/", `\/`))
	}
	forms = append(forms, js...)
	plain := js[0]
	for n := minSecret; n < len(plain) && n < maxPreview; n++ {
		if utf8.RuneStart(plain[n]) {
			forms = append(forms, `"`+plain[:n]+previewCut)
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// uriComponent turns Go's query escaping into encodeURIComponent's.
var uriComponent = strings.NewReplacer("+", "%20", "%21", "!", "%27", "'", "%28", "(", "%29", ")", "%2A", "*")

// lowerHex writes the hex digits of s's percent escapes in lower case.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if 'A' <= b[j] && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
		}
	}
	return string(b)
}

// values lists the secrets known, sorted.
func (r *redactor) values() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.secrets))
	for s := range r.secrets {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// paramNames lists the secret query parameter names, sorted.
func (r *redactor) paramNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.params))
	for s := range r.params {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (r *redactor) addParam(name string) {
	if name == "" {
		return
	}
	r.mu.Lock()
	r.params[strings.ToLower(name)] = struct{}{}
	r.mu.Unlock()
}

// text replaces every known secret value in s, and the values of secret
// query parameters in the links s holds.
func (r *redactor) text(s string) string {
	r.mu.RLock()
	rep, find := r.rep, r.find
	s = r.textParams(s)
	stale := slices.ContainsFunc(r.pending, func(f string) bool { return strings.Contains(s, f) })
	r.mu.RUnlock()
	if stale {
		// A secret added since rep was built is in s: rep must know it
		// (a longer one may hold a shorter one rep knows).
		r.fresh()
		r.mu.RLock()
		rep, find = r.rep, r.find
		r.mu.RUnlock()
	}
	// Replace changes only a text that holds one of its strings.
	if rep == nil || !find.in(s) {
		return s
	}
	return rep.Replace(s)
}

// textParams redacts the values of secret query parameters in the links s
// holds: a presigned link is a key to its file wherever it is printed (an
// error body echoing it, an export job's answer). r.mu is held.
func (r *redactor) textParams(s string) string {
	// QueryParams looks for a name only after a separator ("?", "&", ";",
	// or the backslash of \u0026) and before a "=": without both, s comes
	// back as it is.
	if !strings.Contains(s, "=") || !strings.ContainsAny(s, paramSeparators) {
		return s
	}
	return redact.QueryParams(s, func(name string) bool {
		_, ok := r.params[strings.ToLower(name)]
		return ok
	}, Redacted)
}

// paramSeparators holds the bytes after which redact.QueryParams looks for
// a parameter's name.
const paramSeparators = "?&;\\"

// url redacts the values of secret query parameters and any userinfo
// password, keeping the rest of the URL byte for byte, then known secrets.
func (r *redactor) url(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				s = s[:i+3] + rest[:c+1] + Redacted + rest[at:]
			}
		}
	}
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return r.text(s)
	}
	head, query, frag := s[:q+1], s[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	r.mu.RLock()
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if _, ok := r.params[strings.ToLower(name)]; ok && hasValue {
			parts[i] = k + "=" + Redacted
		}
	}
	r.mu.RUnlock()
	return r.text(head + strings.Join(parts, "&") + frag)
}
