package paginate

import (
	"context"
	"strings"
)

// linkHeader follows the rel="next" target of the Link header (RFC 8288),
// resolved against the URL requested. The chain ends when there is none,
// or when the next link carries every one of stop (parameter name, lower
// case, to value): some servers always send a next link and mark the one
// that leads nowhere (results="false"). Other relations (prev,
// first, last) are never followed.
type linkHeader struct {
	stop map[string]string
	follower
}

func (l *linkHeader) start(context.Context, *Request) error { return nil }

func (l *linkHeader) advance(_ context.Context, page Page, req *Request) (bool, string, error) {
	next, params := nextLink(page.Header.Values("Link"))
	if next == "" || l.stops(params) {
		return false, "", nil
	}
	return l.follow(page.URL, next, req)
}

// stops reports whether the next link's params carry all of l.stop. A
// link missing one is followed: reading on costs a request, stopping
// early would lose records.
func (l *linkHeader) stops(params map[string]string) bool {
	if len(l.stop) == 0 {
		return false
	}
	for k, want := range l.stop {
		if got, ok := params[k]; !ok || got != want {
			return false
		}
	}
	return true
}

// NextLink returns the target of the rel="next" entry of RFC 8288 Link
// header values, or "". It tolerates several values, several links per value,
// commas inside <…>, quoted or bare rel values and extra parameters.
func NextLink(values []string) string {
	next, _ := nextLink(values)
	return next
}

// nextLink is NextLink that also returns the next link's parameters, by
// lower-case name, their values unquoted.
func nextLink(values []string) (string, map[string]string) {
	for _, v := range values {
		for len(v) > 0 {
			start := strings.IndexByte(v, '<')
			if start < 0 {
				break
			}
			end := strings.IndexByte(v[start:], '>')
			if end < 0 {
				break
			}
			target := v[start+1 : start+end]
			params, rest := linkParams(v[start+end+1:])
			if relIsNext(params["rel"]) {
				return strings.TrimSpace(target), params
			}
			v = rest
		}
	}
	return "", nil
}

// linkParams reads the `; name="value"` parameters (or bare values) that
// follow a link's <target>, by lower-case name, the first of a repeated
// name counting (RFC 8288 3.3), and returns what follows them. A quoted
// value is read whole (its ';', ',', '<' and \-escaped quotes are part of
// it): a parameter or link inside it would end a chain early.
func linkParams(s string) (map[string]string, string) {
	out := map[string]string{}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) || s[i] != ';' {
			return out, s[i:]
		}
		i++
		skip()
		n := i
		for i < len(s) && !strings.ContainsRune("=;,<", rune(s[i])) {
			i++
		}
		name := strings.ToLower(strings.TrimSpace(s[n:i]))
		var val strings.Builder
		if i < len(s) && s[i] == '=' {
			i++
			skip()
			if i < len(s) && s[i] == '"' {
				for i++; i < len(s) && s[i] != '"'; i++ {
					if s[i] == '\\' && i+1 < len(s) {
						i++
					}
					val.WriteByte(s[i])
				}
				i++ // the closing quote
			} else {
				v := i
				for i < len(s) && !strings.ContainsRune(";,<", rune(s[i])) {
					i++
				}
				val.WriteString(strings.TrimSpace(s[v:i]))
			}
		}
		if _, seen := out[name]; !seen && name != "" {
			out[name] = val.String()
		}
		i = min(i, len(s))
	}
}

// relIsNext reports whether a rel value lists "next".
func relIsNext(rel string) bool {
	for _, r := range strings.Fields(rel) {
		if strings.EqualFold(r, "next") {
			return true
		}
	}
	return false
}
