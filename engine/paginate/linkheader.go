package paginate

import (
	"context"
	"strings"
)

// linkHeader follows the rel="next" target of the Link header (RFC 8288),
// resolved against the URL requested. The chain ends when there is none;
// other relations (prev, first, last) are never followed.
type linkHeader struct {
	follower
}

func (l *linkHeader) start(*Request) error { return nil }

func (l *linkHeader) advance(_ context.Context, page Page, req *Request) (bool, string, error) {
	next := NextLink(page.Header.Values("Link"))
	if next == "" {
		return false, "", nil
	}
	return l.follow(page.URL, next, req)
}

// NextLink returns the target of the rel="next" entry of RFC 8288 Link
// header values, or "". It tolerates several values, several links per value,
// commas inside <…>, quoted or bare rel values and extra parameters.
func NextLink(values []string) string {
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
				return strings.TrimSpace(target)
			}
			v = rest
		}
	}
	return ""
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
