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

func (l *linkHeader) start(*Request) error { return nil }

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
			rest := v[start+end+1:]
			params := rest
			if next := strings.IndexByte(rest, '<'); next >= 0 {
				params = rest[:next]
			}
			if relIsNext(params) {
				return strings.TrimSpace(target), linkParams(params)
			}
			v = rest
		}
	}
	return "", nil
}

// linkParams reads `; name="value"` parameters (or bare values) by
// lower-case name; the first of a repeated name counts (RFC 8288 3.3).
func linkParams(params string) map[string]string {
	out := map[string]string{}
	for _, p := range strings.Split(params, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, seen := out[k]; seen || k == "" {
			continue
		}
		out[k] = strings.Trim(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), ",")), `"`)
	}
	return out
}

func relIsNext(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
			continue
		}
		val = strings.Trim(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), ",")), `"`)
		for _, r := range strings.Fields(val) {
			if strings.EqualFold(r, "next") {
				return true
			}
		}
	}
	return false
}
