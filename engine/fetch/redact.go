package fetch

import (
	"net/url"
	"slices"
	"strings"
	"sync"
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
}

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

// addSecrets registers values, with their URL-escaped forms, since a
// secret may reach a URL or an error message escaped.
func (r *redactor) addSecrets(vals ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, v := range vals {
		if len(v) < minSecret {
			continue
		}
		for _, f := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			if _, ok := r.secrets[f]; !ok {
				r.secrets[f] = struct{}{}
				changed = true
			}
		}
	}
	if !changed {
		return
	}
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
		args = append(args, s, Redacted)
	}
	r.rep = strings.NewReplacer(args...)
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

func (r *redactor) addParam(name string) {
	if name == "" {
		return
	}
	r.mu.Lock()
	r.params[strings.ToLower(name)] = struct{}{}
	r.mu.Unlock()
}

// text replaces every known secret value in s.
func (r *redactor) text(s string) string {
	r.mu.RLock()
	rep := r.rep
	r.mu.RUnlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

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
