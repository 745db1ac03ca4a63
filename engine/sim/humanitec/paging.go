package humanitec

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Paging as the spec declares it: per_page 1..100 (default 50), an opaque
// string `page` token, and a `Link: <next>; rel="next"` header when more
// items exist. The token is keyset-based (it names the last item sent), so
// items added or removed between pages neither repeat nor vanish.
const (
	defaultPerPage = 50
	maxPerPage     = 100
	tokenVersion   = 1
)

// pageKey orders pipelines across the org: by app, then pipeline id.
type pageKey struct{ app, id string }

func (k pageKey) compare(o pageKey) int {
	return cmp.Or(strings.Compare(k.app, o.app), strings.Compare(k.id, o.id))
}

var errBadToken = errors.New("invalid page token")

// encodeToken packs a key as version byte plus two length-prefixed strings,
// in standard base64 with padding, like the spec's example "AAAAAAAAAA==".
func encodeToken(k pageKey) string {
	b := []byte{tokenVersion}
	b = binary.AppendUvarint(b, uint64(len(k.app)))
	b = append(b, k.app...)
	b = binary.AppendUvarint(b, uint64(len(k.id)))
	b = append(b, k.id...)
	return base64.StdEncoding.EncodeToString(b)
}

func decodeToken(s string) (pageKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) == 0 || b[0] != tokenVersion {
		return pageKey{}, errBadToken
	}
	b = b[1:]
	var parts [2]string
	for i := range parts {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return pageKey{}, errBadToken
		}
		parts[i] = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	k := pageKey{app: parts[0], id: parts[1]}
	// Only tokens this server issued are valid (no overlong varints).
	if len(b) != 0 || encodeToken(k) != s {
		return pageKey{}, errBadToken
	}
	return k, nil
}

// keyedPipeline points at a pipeline in the org, so sorting a large org's
// list moves small values only.
type keyedPipeline struct {
	key pageKey
	app *App
	idx int
}

// pipelineFilter returns whether a pipeline passes the trigger and
// metadata[key]=value filters of the query.
func pipelineFilter(q url.Values) func(p Pipeline) bool {
	trigger := q.Get("trigger")
	meta := map[string]string{}
	for k, vs := range q {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") && len(vs) > 0 {
			meta[k[len("metadata["):len(k)-1]] = vs[0]
		}
	}
	return func(p Pipeline) bool {
		if trigger != "" && !slices.Contains(p.TriggerTypes, trigger) {
			return false
		}
		for k, v := range meta {
			if got, ok := p.Metadata[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
}

func listOrgPipelines(c *call) {
	q := c.r.URL.Query()
	apps := q["app"]
	keep := pipelineFilter(q)
	var items []keyedPipeline
	for _, a := range c.s.org.Apps {
		if len(apps) > 0 && !slices.Contains(apps, a.ID) {
			continue
		}
		items = c.appendPipelines(items, a, keep)
	}
	c.page(items)
}

func listAppPipelines(c *call) {
	a, ok := c.app()
	if !ok {
		return
	}
	c.page(c.appendPipelines(nil, a, pipelineFilter(c.r.URL.Query())))
}

func (c *call) appendPipelines(items []keyedPipeline, a *App, keep func(Pipeline) bool) []keyedPipeline {
	for i, p := range a.Pipelines {
		if keep(p) {
			items = append(items, keyedPipeline{key: pageKey{app: a.ID, id: p.ID}, app: a, idx: i})
		}
	}
	return items
}

// page answers one page of items, sorted by key, with a Link header when
// more follow.
func (c *call) page(items []keyedPipeline) {
	q := c.r.URL.Query()
	perPage := defaultPerPage
	if q.Has("per_page") {
		n, err := strconv.Atoi(q.Get("per_page"))
		if err != nil || n < 1 || n > maxPerPage {
			c.badRequest("per_page must be an integer between 1 and 100.")
			return
		}
		perPage = n
	}
	slices.SortFunc(items, func(a, b keyedPipeline) int { return a.key.compare(b.key) })
	start := 0
	// An empty token means the first page, as an unset one does.
	if tok := q.Get("page"); tok != "" {
		k, err := decodeToken(tok)
		if err != nil {
			c.badRequest("Invalid page token.")
			return
		}
		start, _ = slices.BinarySearchFunc(items, k, func(it keyedPipeline, k pageKey) int {
			if it.key.compare(k) <= 0 {
				return -1
			}
			return 1
		})
	}
	end := min(start+perPage, len(items))
	out := make([]Pipeline, 0, end-start)
	for _, it := range items[start:end] {
		p := it.app.Pipelines[it.idx]
		p.OrgID, p.AppID = c.s.orgID(), it.app.ID
		out = append(out, p)
	}
	if end < len(items) {
		q.Set("page", encodeToken(items[end-1].key))
		c.w.Header().Set("Link", "<"+c.absoluteURL(q)+`>; rel="next"`)
	}
	c.ok(out)
}

// absoluteURL is the request's own URL with a new query.
func (c *call) absoluteURL(q url.Values) string {
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: c.r.Host, RawPath: c.r.URL.EscapedPath(), Path: c.r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}
