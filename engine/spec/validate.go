package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-etl/ferry/engine/decode"
	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/internal/jsonv"

	"gopkg.in/yaml.v3"
)

// FS resolves files a spec refers to, relative to the spec's directory.
type FS = fs.FS

func reflectValue(f *File) reflect.Value { return reflect.ValueOf(f).Elem() }

// reserved names cannot be stream names: they are variables in expr and jq
// (ENV and __loc__ are jq's own $ENV and $__loc__).
var reserved = []string{"config", "parent", "parents", "batch", "cursor", "lookups", "window", "response", "page", "records", "env", "now", "input", "ENV", "__loc__"}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// isIdent is identRE.MatchString without the regexp: it is asked for every
// ancestor of every stream.
func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Blueprint is the part of a Port blueprint body the validator checks
// mappings against.
type Blueprint struct {
	Identifier string `json:"identifier"`
	Schema     struct {
		Properties map[string]json.RawMessage `json:"properties"`
	} `json:"schema"`
	Relations map[string]json.RawMessage `json:"relations"`
	Raw       json.RawMessage            `json:"-"`
}

// validate runs the phases after structural decoding: names and references,
// the fan-out graph, then the embedded programs.
func (p *parser) validate(f *File) {
	f.config = map[string]*ConfigVar{}
	for i := range f.Config.Items {
		it := &f.Config.Items[i]
		if !identRE.MatchString(it.Key) {
			p.errorAt(it.P, "config", "invalid name %q: use letters, digits and _", it.Key)
		}
		f.config[it.Key] = &it.Value
		for _, e := range it.Value.Env.V {
			if !identRE.MatchString(e.V) {
				p.errorAt(e.P, "config."+it.Key+".env", "invalid environment variable name %q", e.V)
			}
		}
		if it.Value.Required.V && it.Value.Default.Set {
			p.errorAt(it.Value.Default.P, "config."+it.Key+".default", "a required input cannot have a default")
		} else if it.Value.Secret.V && it.Value.Default.Set {
			p.warnAt(it.Value.Default.P, "config."+it.Key+".default", "a secret's value does not belong in the spec: give it with --set, an environment variable or a --config file")
		}
		p.compileValue(&it.Value.Default, "config."+it.Key+".default", nil)
		if d := &it.Value.Default; d.Set {
			if _, err := it.Value.Convert(d.Tree()); err != nil {
				p.errorAt(d.P, "config."+it.Key+".default", "%v (type: %s)", err, it.Value.Type.V)
			}
		}
	}
	p.checkStreams(f)
	p.checkRecurse(f)
	p.checkIncremental(f)
	p.checkPartitions(f)
	p.checkFormats(f)
	p.checkGraph(f)
	placeStreams(f)
	p.checkLookups(f)
	p.checkSecretOutputs(f)
	p.checkInlineKeys(f)
	blueprints := p.loadBlueprints(f)
	p.checkTables(f)
	p.checkPort(f, blueprints)
	p.compile(f)
	p.checkRequests(f)
}

// checkIncremental checks the cursor and the time windows of incremental
// streams. (An incremental stream may be a parent: its cursor is saved only
// once every child chain of the records that moved it has finished.)
func (p *parser) checkIncremental(f *File) {
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		inc := s.Incremental
		if inc == nil {
			continue
		}
		path := "streams." + s.Name + ".incremental"
		w := inc.Window
		switch {
		case inc.Lookback.Set && w != nil:
			p.errorAt(inc.Lookback.P, path+".lookback", "a windowed stream's lookback is window.lookback")
		case inc.Lookback.Set && inc.Lookback.V <= 0:
			p.errorAt(inc.Lookback.P, path+".lookback", "must be longer than 0")
		}
		if inc.Token.Set {
			// One source of the cursor: the records' largest, a window's
			// end, or the token the last page's body hands out.
			switch {
			case inc.Cursor.Set:
				p.errorAt(inc.Token.P, path+".token", "give cursor or token, not both")
			case w != nil:
				p.errorAt(inc.Token.P, path+".token", "give window or token, not both")
			case inc.Lookback.Set:
				p.errorAt(inc.Lookback.P, path+".lookback", "a token is the API's own: there is no time to look back from")
			case s.Async != nil:
				p.errorAt(inc.Token.P, path+".token", "an async stream's results have no last page to take a token from")
			}
			continue
		}
		if w == nil {
			if !inc.Cursor.Set {
				p.errorAt(inc.Pos, path, "missing required field %q (or a window, or a token)", "cursor")
			}
			continue
		}
		if w.Step.Set && w.Step.V <= 0 {
			p.errorAt(w.Step.P, path+".window.step", "must be longer than 0")
		}
		if !w.Lookback.Set && !w.End.Set {
			// The cursor moves to the run's start, not to the last event
			// read: what the API had not listed yet by then is passed.
			p.warnAt(w.Step.P, path+".window", "without lookback, a rerun starts at the saved cursor, the time the last run started: an event stamped before it that the API listed only later (audit logs list events minutes late) is never read; give window.lookback (e.g. 1h; 0s when the API lists every event at once)")
		}
		if !inc.Initial.Set {
			p.errorAt(inc.Pos, path, "a window needs initial: the start of the first window (an RFC 3339 time)")
		} else if v, ok := inc.Initial.Node.Value, inc.Initial.Node.Kind == yaml.ScalarNode; ok {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				p.errorAt(inc.Initial.P, path+".initial", "invalid time %q: a window starts at an RFC 3339 time such as 2024-01-01T00:00:00Z", v)
			}
		}
	}
}

// checkPartitions checks streams that give values instead of requesting.
func (p *parser) checkPartitions(f *File) {
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		path := "streams." + s.Name
		pt := s.Partitions
		if pt == nil {
			continue
		}
		switch {
		case pt.Values.Set && pt.Range != nil:
			p.errorAt(pt.Range.From.P, path+".partitions.range", "give values or range, not both")
		case !pt.Values.Set && pt.Range == nil:
			p.errorAt(pt.Pos, path+".partitions", "missing required field %q (or %q)", "values", "range")
		case pt.Range != nil && pt.Range.Step.Set && pt.Range.Step.V == 0:
			p.errorAt(pt.Range.Step.P, path+".partitions.range.step", "must not be 0")
		case pt.Range != nil && rangeEmpty(pt.Range):
			// A run would read nothing from it and call every table it
			// feeds complete: a mistake, never a wish.
			r := pt.Range
			step, hint := 1, "counting down needs a negative step"
			if r.Step.Set {
				step = r.Step.V
			}
			if step < 0 {
				hint = "counting up needs a positive step"
			}
			p.errorAt(r.From.P, path+".partitions.range", "from %d to %d by %d gives no value (%s)", r.From.V, r.To.V, step, hint)
		case pt.Values.Set && pt.Values.Node.Kind == yaml.MappingNode:
			p.errorAt(pt.Values.P, path+".partitions.values", "expected a list or a ${ } template giving one, got a mapping")
		}
		for _, x := range []struct {
			set  bool
			pos  Pos
			name string
		}{
			{s.Request.Pos.Line > 0, s.Request.Pos, "request"},
			{s.Paginate != nil, posOf(s.Paginate), "paginate"},
			{s.Records.Set, s.Records.P, "records"},
			{s.HTTP != nil, Pos{}, "http"},
			{s.Incremental != nil, posOf(s.Incremental), "incremental"},
			{s.Response != nil, Pos{}, "response"},
		} {
			if x.set {
				at := x.pos
				if at.Line == 0 {
					at = pt.Pos
				}
				p.errorAt(at, path+"."+x.name, "a stream with partitions sends no request: %s has no use here", x.name)
			}
		}
	}
}

// rangeEmpty reports whether a partitions range gives no value: its step
// leads away from its end.
func rangeEmpty(r *Range) bool {
	step := 1
	if r.Step.Set {
		step = r.Step.V
	}
	return step > 0 && r.From.V > r.To.V || step < 0 && r.From.V < r.To.V
}

// posOf is the position of an optional block, zero for none.
func posOf[T interface{ *Paginate | *Incremental }](b T) Pos {
	switch x := any(b).(type) {
	case *Paginate:
		if x != nil {
			return x.Pos
		}
	case *Incremental:
		if x != nil {
			return x.Pos
		}
	}
	return Pos{}
}

func (p *parser) checkStreams(f *File) {
	f.streams = map[string]*Stream{}
	names := f.Streams.Keys()
	if f.Streams.Set && len(f.Streams.Items) == 0 {
		p.errorAt(f.Streams.P, "streams", "no streams: a spec reads at least one")
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		f.streams[s.Name] = s
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		path := "streams." + s.Name
		switch {
		case !identRE.MatchString(s.Name):
			p.errorAt(s.Pos, "streams", "invalid stream name %q: use letters, digits and _", s.Name)
		case slices.Contains(reserved, s.Name):
			p.errorAt(s.Pos, "streams", "stream name %q is reserved (it names a variable in expr and jq)", s.Name)
		}
		if s.ForEach.Set {
			if parent, ok := f.streams[s.ForEach.V]; ok {
				s.parent = parent
			} else {
				p.errorAt(s.ForEach.P, path+".for_each", "unknown stream %q%s", s.ForEach.V, didYouMean(s.ForEach.V, names))
			}
		}
		if s.Batch.Set {
			b, ok := f.streams[s.Batch.V]
			switch {
			case !ok:
				p.errorAt(s.Batch.P, path+".batch", "unknown stream %q%s", s.Batch.V, didYouMean(s.Batch.V, names))
			case !s.ForEach.Set:
				p.errorAt(s.Batch.P, path+".batch", "batch needs for_each: the batch is collected per parent record")
			case b.ForEach.V != s.ForEach.V:
				p.errorAt(s.Batch.P, path+".batch", "stream %q fans out from %q, not from %q: a batch must share this stream's parent", b.Name, b.ForEach.V, s.ForEach.V)
			default:
				s.batch = b
			}
		}
		switch {
		case !s.BatchSize.Set:
		case !s.Batch.Set:
			p.errorAt(s.BatchSize.P, path+".batch_size", "batch_size needs batch: it caps the items of a batch request")
		case s.BatchSize.V < 1:
			p.errorAt(s.BatchSize.P, path+".batch_size", "must be at least 1 (the most items one batch request may carry)")
		}
		r := &s.Request
		switch {
		case s.Partitions != nil:
			// Values instead of a request: checkPartitions.
		case r.Pos.Line == 0:
			// No usable request block: decoding said so already.
		case r.Path.Set && r.URL.Set:
			p.errorAt(r.URL.P, path+".request.url", "give path or url, not both")
		case !r.Path.Set && !r.URL.Set:
			p.errorAt(r.Pos, path+".request", "missing required field %q (or %q)", "path", "url")
		}
		if r.Body.Set && r.BodyJQ.Set {
			p.errorAt(r.BodyJQ.P, path+".request.body_jq", "give body or body_jq, not both")
		}
		if (r.Body.Set || r.BodyJQ.Set) && (!r.Method.Set || r.Method.V == "GET") {
			pos, field := r.Body.P, "body"
			if r.BodyJQ.Set && !r.Body.Set {
				pos, field = r.BodyJQ.P, "body_jq"
			}
			if r.Method.Set {
				p.errorAt(pos, path+".request."+field, "a request body needs method POST, PUT or PATCH, not %s", r.Method.V)
			} else {
				p.errorAt(pos, path+".request."+field, "a request body needs method POST, PUT or PATCH (the default is GET)")
			}
		}
		if s.HTTP != nil {
			p.checkHTTP(s.HTTP, path+".http")
		}
		if pg := s.Paginate; pg != nil {
			p.checkPaginate(pg, path+".paginate")
		}
		p.checkRequestFormat(r, path+".request")
	}
	for i := range f.Streams.Items {
		// A batch stream's runs are its chunks: a stream batched on it
		// would get one run per chunk, each chunk's answer as its whole
		// list, where it is promised one list per parent.
		s := &f.Streams.Items[i].Value
		if b := s.batch; b != nil && b.BatchSize.Set {
			p.errorAt(b.BatchSize.P, "streams."+b.Name+".batch_size", "stream %q takes this stream as its batch: split into chunks, its list would be cut into one partial list per chunk", s.Name)
		}
	}
	p.checkHTTP(&f.HTTP, "http")
	for i, b := 0, f.HTTP.RateLimitHeaders; i < len(b.V); i++ {
		if b.V[i].Pos == (Pos{}) {
			continue // no mapping: an error already
		}
		path := "http.rate_limit_headers"
		if b.List {
			path = fmt.Sprintf("%s[%d]", path, i)
		}
		p.checkRateLimitHeaders(&b.V[i], path)
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		if s.HTTP != nil && s.HTTP.RateLimitHeaders.Set {
			p.errorAt(s.HTTP.RateLimitHeaders.P, "streams."+s.Name+".http.rate_limit_headers", "the budget is the host's, read from every answer of it: give rate_limit_headers at the top level only")
		}
	}
	if rl := f.HTTP.RateLimit; rl != nil && rl.Group.Set {
		p.errorAt(rl.Group.P, "http.rate_limit.group", "the top level's rate_limit is the host's, shared by every stream already: give group in a stream's http")
	}
	p.checkRateGroups(f)
	p.warnRuleTakes429(&f.HTTP, nil)
	for i := range f.Streams.Items {
		if h := f.Streams.Items[i].Value.HTTP; h != nil {
			p.warnRuleTakes429(h, &f.HTTP)
		}
		p.warnGraphQLErrorsUnread(&f.Streams.Items[i].Value, &f.HTTP)
	}
}

// checkRateLimitHeaders checks the names of a budget's headers: the
// remaining count with a reset or a rolling window (the time the count is
// good until), a limit only with a window, and names that are header names.
func (p *parser) checkRateLimitHeaders(rh *RateLimitHeaders, path string) {
	if rh == nil {
		return
	}
	for _, x := range []struct {
		key string
		f   Str
	}{{"remaining", rh.Remaining}, {"reset", rh.Reset}, {"window", rh.Window}, {"limit", rh.Limit}} {
		if x.f.Set && !headerName(x.f.V) {
			p.errorAt(x.f.P, path+"."+x.key, "%q is not an HTTP header name", x.f.V)
		}
	}
	switch {
	case rh.Reset.Set && rh.Window.Set:
		p.errorAt(rh.Window.P, path+".window", "give reset or window, not both: reset when the API says when its window ends, window when it names a rolling window's length")
	case !rh.Reset.Set && !rh.Window.Set:
		p.errorAt(rh.Pos, path, "give reset (when the window ends) or window (a rolling window's length): a remaining count alone says nothing of when it is good until")
	}
	if rh.Limit.Set && !rh.Window.Set {
		p.errorAt(rh.Limit.P, path+".limit", "a limit is a rolling window's: give it with window, not reset")
	}
}

// headerName reports whether s is an HTTP field name (RFC 9110's token).
func headerName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > '~' || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// checkRateGroups checks that the streams of one rate_limit group give
// one limit: they share one bucket, which cannot hold two rates.
func (p *parser) checkRateGroups(f *File) {
	first := map[string]*RateLimit{}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		if s.HTTP == nil || s.HTTP.RateLimit == nil || !s.HTTP.RateLimit.Group.Set {
			continue
		}
		rl := s.HTTP.RateLimit
		g, ok := first[rl.Group.V]
		if !ok {
			first[rl.Group.V] = rl
			continue
		}
		// A burst left out is 1, as the run takes it (fetch.HostConfig).
		if g.PerSecond.V != rl.PerSecond.V || max(g.Burst.V, 1) != max(rl.Burst.V, 1) {
			p.errorAt(rl.Group.P, "streams."+s.Name+".http.rate_limit.group", "group %q is %v a second (burst %d) at %d:%d: one group is one limit, give the same", rl.Group.V, g.PerSecond.V, max(g.Burst.V, 1), g.Group.P.Line, g.Group.P.Col)
		}
	}
}

func (p *parser) checkHTTP(h *HTTP, path string) {
	if h.Concurrency.Set && h.Concurrency.V < 1 {
		p.errorAt(h.Concurrency.P, path+".concurrency", "must be at least 1")
	}
	if r := h.Retry; r != nil {
		if r.Attempts.Set && r.Attempts.V < 1 {
			p.errorAt(r.Attempts.P, path+".retry.attempts", "must be at least 1")
		}
		for i, st := range r.On {
			if st.Set && st.V < 400 || st.V > 599 {
				p.errorAt(st.P, fmt.Sprintf("%s.retry.on[%d]", path, i), "%d is not an HTTP error status (400-599)", st.V)
			}
		}
	}
	if rl := h.RateLimit; rl != nil && rl.PerSecond.Set && rl.PerSecond.V <= 0 {
		p.errorAt(rl.PerSecond.P, path+".rate_limit.per_second", "must be greater than 0")
	}
	if a := h.Auth; a != nil {
		need := map[string][]string{
			"bearer": {"token"}, "header": {"header", "value"}, "query": {"param", "value"},
			"basic": {"username"}, "oauth2": {"token_url", "client_id", "client_secret"},
			"aws_sigv4": {"access_key_id", "secret_access_key", "region", "service"},
		}[a.Type.V]
		av := reflect.ValueOf(a).Elem()
		for _, key := range need {
			for _, fl := range p.fieldsOf(av.Type()) {
				if fl.key == key && !av.Field(fl.index).FieldByName("Set").Bool() {
					p.errorAt(a.Pos, path+".auth", "auth type %q needs field %q", a.Type.V, key)
				}
			}
		}
		p.checkAuthFlow(a, path)
	}
	p.checkRules(h, path)
	p.checkTLS(h.TLS, path+".tls")
}

// readsResponseRE tells an expr program that reads the response;
// readsPageRE one that reads the page number (a page cap, whatever else
// it reads: page >= 5 or response.more == false).
var (
	readsResponseRE = regexp.MustCompile(`\bresponse\b`)
	readsPageRE     = regexp.MustCompile(`(^|[^.\w])page\b`)
)

// warnUncountedList warns of page or offset paging over a records
// program that may filter or expand (eval.JQFacts) and whose list ferry
// cannot find (see decode.ListPath): a page is then as long as its
// records, so a page that gives none ends the chain with the pages after
// it unread, and an offset moves by the records, not by the items the
// server listed. Page paging with
// total_pages reads on past an empty page; NDJSON and CSV count their
// lines and rows.
func (p *parser) warnUncountedList(s *Stream, path string) {
	pg := s.Paginate
	if pg == nil || !s.Records.Set || s.Records.code == nil {
		return
	}
	if f := s.Format(); f != FormatJSON && f != FormatXML {
		return
	}
	var why string
	switch {
	case pg.Type.V == "offset":
		why = "the offset moves by the records, not by the items the server listed (a filter asks for items again, an expansion skips them), and a page that gives no records ends paging"
	case pg.Type.V == "page" && !pg.TotalPages.Set:
		why = "a page that gives no records (all filtered out, or none to expand) ends paging, the pages after it unread"
	default:
		return
	}
	list, ok := decode.ListPath(s.Records.V)
	xml := s.Format() == FormatXML
	if ok && (!xml || len(list) >= 2) {
		return
	}
	if facts := eval.InspectJQ(s.Records.V); !facts.Filters && !facts.Expands {
		return
	}
	how := "write it as .a.b[] | f (or .a.b[]? | f, or (.a.b // [])[] | f)"
	if xml {
		// The runner counts an XML list below the root element only (see
		// planBody).
		how = "ferry counts an XML list only below its root element, .root.item[]? | f (or (.root.item // [])[] | f), and a page of one item is then read wrong (one element is an object, not a list, and those iterate its values): where the server allows, page by number with paginate.total_pages, or by cursor"
	}
	p.warnAt(s.Records.P, path+".records", "%s paging counts the list the records program reads, and ferry finds none in this one: a page is as long as its records, so %s; %s", pg.Type.V, why, how)
}

func (p *parser) checkPaginate(pg *Paginate, path string) {
	p.checkCursor(pg, path)
	need := map[string][]string{
		"next_url": {"url"},
		"page":     {"param"},
		"offset":   {"param"},
	}[pg.Type.V]
	pv := reflect.ValueOf(pg).Elem()
	missing := map[string]bool{}
	for _, key := range need {
		for _, fl := range p.fieldsOf(pv.Type()) {
			if fl.key == key && !pv.Field(fl.index).FieldByName("Set").Bool() {
				missing[key] = true
				p.errorAt(pg.Pos, path, "pagination type %q needs field %q", pg.Type.V, key)
			}
		}
	}
	if pg.TokenParam.Set && !pg.Token.Set && !missing["token"] {
		p.errorAt(pg.TokenParam.P, path+".token_param", "token_param needs token")
	}
	if pg.Type.V == "page" && pg.Token.Set && !pg.TokenParam.Set {
		p.errorAt(pg.Token.P, path+".token", "token needs token_param, the query parameter that carries it")
	}
	if pg.Size.Set && pg.Size.V < 1 {
		p.errorAt(pg.Size.P, path+".size", "must be at least 1")
	}
	if pg.MaxPages.Set && pg.MaxPages.V < 1 {
		p.errorAt(pg.MaxPages.P, path+".max_pages", "must be at least 1")
	}
	switch {
	case pg.Size.Set && !pg.SizeParam.Set:
		p.errorAt(pg.Size.P, path+".size", "size needs size_param, the parameter that carries it")
	case pg.SizeParam.Set && !pg.Size.Set:
		p.errorAt(pg.SizeParam.P, path+".size_param", "size_param needs size, the page size to send")
	}
	if pg.Total.Set && pg.TotalHeader.Set {
		p.errorAt(pg.TotalHeader.P, path+".total_header", "give total or total_header, not both")
	}
	if pg.Type.V == "offset" && pg.Size.Set && !pg.Total.Set && !pg.TotalHeader.Set && !pg.StopWhen.Set {
		p.warnAt(pg.Size.P, path+".size", "a page shorter than size ends paging: a server that caps its pages below %d stops this stream after its first page, silently; give total or stop_when, or leave size out and send the limit in request.query", pg.Size.V)
	}
	// The pair is right where stop_when reads the server's own sign that
	// the list ended (response.more == false: the total then catches one
	// sent early), so only a stop_when that reads the page number or no
	// response is warned of (page >= 5, a cutoff on the records): it ends
	// the chain early on purpose, and with a total every longer list fails
	// as short.
	if pg.StopWhen.Set && (pg.Total.Set || pg.TotalHeader.Set) && (readsPageRE.MatchString(pg.StopWhen.V) || !readsResponseRE.MatchString(pg.StopWhen.V)) {
		field := "total"
		if pg.TotalHeader.Set {
			field = "total_header"
		}
		p.warnAt(pg.StopWhen.P, path+".stop_when", "with %s, a chain that stop_when ends before the total's items are listed fails as short: a stop_when over page or records that stops early on purpose (a page cap, a cutoff) fails every longer list; leave %[1]s out there, or end on what the response says", field)
	}
	// param and size_param go to the same place (in); there they must not
	// be one parameter, nor, in a body, one path inside the other.
	if pg.In.V == "body" {
		for key, f := range map[string]Str{"param": pg.Param, "size_param": pg.SizeParam} {
			if f.Set && slices.Contains(strings.Split(f.V, "."), "") {
				p.errorAt(f.P, path+"."+key, "%q is not a body path: a dotted path has no empty part", f.V)
			}
		}
	}
	if pg.Param.Set && pg.SizeParam.Set && sameParam(pg.In.V, pg.Param.V, pg.SizeParam.V) {
		p.errorAt(pg.SizeParam.P, path+".size_param", "size_param %q and param %q collide in the %s", pg.SizeParam.V, pg.Param.V, placeOf(pg.In.V))
	}
}

// sameParam reports whether a and b collide where in puts them: equal
// query names, equal header names (case-insensitive), or body paths of
// which one is the other or lies inside it.
func sameParam(in, a, b string) bool {
	switch in {
	case "header":
		return strings.EqualFold(a, b)
	case "body":
		return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
	}
	return a == b
}

func placeOf(in string) string {
	if in == "" {
		return "query"
	}
	return in
}

// checkGraph reports fan-out cycles with their path. Batch edges count: a
// stream waits for its batch stream.
func (p *parser) checkGraph(f *File) {
	type edge struct {
		to  *Stream
		ref Str // the for_each or batch naming it
		key string
	}
	deps := func(s *Stream) []edge {
		var out []edge
		if t, ok := f.streams[s.ForEach.V]; ok && s.ForEach.Set {
			out = append(out, edge{t, s.ForEach, "for_each"})
		}
		if t, ok := f.streams[s.Batch.V]; ok && s.Batch.Set {
			out = append(out, edge{t, s.Batch, "batch"})
		}
		return out
	}
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	reported := map[string]bool{}
	// Depth-first, with an explicit stack: chains may be thousands deep.
	type frame struct {
		s     *Stream
		edges []edge
	}
	var stack []*Stream // the active path, for naming a cycle
	var frames []frame
	push := func(s *Stream) {
		state[s.Name] = active
		stack = append(stack, s)
		frames = append(frames, frame{s, deps(s)})
	}
	for i := range f.Streams.Items {
		if s := &f.Streams.Items[i].Value; state[s.Name] == unvisited {
			push(s)
		}
		for len(frames) > 0 {
			top := &frames[len(frames)-1]
			if len(top.edges) == 0 {
				state[top.s.Name] = done
				stack = stack[:len(stack)-1]
				frames = frames[:len(frames)-1]
				continue
			}
			e := top.edges[0]
			top.edges = top.edges[1:]
			s := top.s
			switch state[e.to.Name] {
			case unvisited:
				push(e.to)
			case active:
				// The cycle is stack[i:], closed by this edge; it is read from
				// the stream whose edge closes it, where it is reported.
				cycle := stack[slices.Index(stack, e.to):]
				names := []string{s.Name}
				for _, c := range cycle {
					names = append(names, c.Name)
				}
				key := strings.Join(sortedCopy(names[1:]), ",")
				if !reported[key] {
					reported[key] = true
					if len(names) > 12 {
						names = append(append(names[:6:6], fmt.Sprintf("… %d more …", len(names)-11)), names[len(names)-5:]...)
					}
					p.errorAt(e.ref.P, "streams."+s.Name+"."+e.key, "fan-out cycle: %s (each stream waits for the next)", strings.Join(names, " -> "))
				}
			}
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func (p *parser) loadBlueprints(f *File) map[string]*Blueprint {
	if f.Port == nil || !f.Port.Blueprints.Set || p.fsys == nil {
		return nil
	}
	ref := f.Port.Blueprints
	if !fs.ValidPath(ref.V) {
		p.errorAt(ref.P, "port.blueprints", "%q: want a path inside the spec's directory, such as blueprints.json (no leading /, no ..)", ref.V)
		return nil
	}
	data, err := readLimited(p.fsys, ref.V, MaxSpecSize)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg = "file not found"
		}
		p.errorAt(ref.P, "port.blueprints", "cannot read %q: %s", ref.V, msg)
		return nil
	}
	// Problems inside the file are reported at its own lines, under the
	// name it has beside the spec.
	j := newJSONFile(path.Join(path.Dir(filepath.ToSlash(p.file)), ref.V), data)
	if len(data) > MaxSpecSize {
		e := tooLarge(j.name, data)
		p.add(e)
		return nil
	}
	if off, msg, bad := j.syntaxError(); bad {
		p.jsonErr(j, off, "", "%s", msg)
		return nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		var v any
		_ = json.Unmarshal(data, &v)
		p.jsonErr(j, skipJSONSpace(data, 0), "", "want a JSON list of blueprint bodies, got %s", jsonv.Kind(v))
		return nil
	}
	f.blueprints = raws
	out := map[string]*Blueprint{}
	first := map[string]int{}
	for i, raw := range raws {
		bp := p.checkBlueprint(j, i, raw)
		if bp == nil {
			continue
		}
		// Both would be sent, the later replacing the earlier in Port:
		// one of them is not what its author sees.
		if at, dup := first[bp.Identifier]; dup {
			off, _ := j.valueAt(i, "identifier")
			p.jsonErr(j, off, fmt.Sprintf("[%d].identifier", i), "blueprint %q is already defined at [%d]; each blueprint once", bp.Identifier, at)
			continue
		}
		first[bp.Identifier] = i
		out[bp.Identifier] = bp
	}
	// Relation targets: defined in the file, or in every Port account.
	known := append(mapKeys(out), portSystemBlueprints...)
	for i, raw := range raws {
		var body struct {
			Identifier string `json:"identifier"`
			Relations  map[string]struct {
				Target any `json:"target"`
			} `json:"relations"`
		}
		if json.Unmarshal(raw, &body) != nil {
			continue // reported
		}
		for _, name := range mapKeys(body.Relations) {
			target, ok := body.Relations[name].Target.(string)
			if !ok || target == "" || slices.Contains(known, target) {
				continue
			}
			off, _ := j.valueAt(i, "relations", name, "target")
			p.warn(&Error{File: j.name, Pos: j.pos(off), Path: fmt.Sprintf("[%d].relations.%s.target", i, name),
				Msg: fmt.Sprintf("blueprint %q is neither in %s nor one of Port's own (%s): creating %q fails unless it is already in Port%s", target, ref.V, strings.Join(portSystemBlueprints, ", "), body.Identifier, didYouMean(target, known))})
		}
	}
	return out
}

// jsonErr reports a problem at byte off of a side file.
func (p *parser) jsonErr(j *jsonFile, off int, path, format string, args ...any) {
	p.add(&Error{File: j.name, Pos: j.pos(off), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// blueprintIDRe and portKeyRe are Port's patterns for blueprint
// identifiers and for property and relation identifiers.
var (
	blueprintIDRe = regexp.MustCompile(`^[\p{L}0-9@_.+:\\/-]+$`)
	portKeyRe     = regexp.MustCompile(`^[A-Za-z0-9@_=\\-]+$`)
)

// portPropertyTypes are the property types Port accepts.
var portPropertyTypes = []string{"string", "number", "boolean", "object", "array"}

// checkBlueprint checks the i-th blueprint body as Port would when it is
// created, each problem at its place in the file; nil when the body is
// not usable to check mappings against.
func (p *parser) checkBlueprint(j *jsonFile, i int, raw json.RawMessage) *Blueprint {
	at := func(path ...any) int {
		off, _ := j.valueAt(append([]any{i}, path...)...)
		return off
	}
	where := func(path ...any) string {
		s := fmt.Sprintf("[%d]", i)
		for _, step := range path {
			s += "." + fmt.Sprint(step)
		}
		return s
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		var v any
		_ = json.Unmarshal(raw, &v)
		p.jsonErr(j, at(), where(), "want a blueprint object, got %s", jsonv.Kind(v))
		return nil
	}
	bp := &Blueprint{Raw: raw}
	idRaw, ok := body["identifier"]
	if !ok {
		p.jsonErr(j, at(), where(), "blueprint has no \"identifier\"")
		return nil
	}
	if err := json.Unmarshal(idRaw, &bp.Identifier); err != nil {
		p.jsonErr(j, at("identifier"), where("identifier"), "want a string, got %s", rawKind(idRaw))
		return nil
	}
	if !blueprintIDRe.MatchString(bp.Identifier) || utf8.RuneCountInString(bp.Identifier) > 100 {
		p.jsonErr(j, at("identifier"), where("identifier"), "invalid blueprint identifier %q: Port takes 1 to 100 letters, digits and @_.+:\\/-", bp.Identifier)
	}
	var title string
	if t, ok := body["title"]; !ok {
		p.jsonErr(j, at(), where(), "blueprint %q has no \"title\" (Port requires one)", bp.Identifier)
	} else if json.Unmarshal(t, &title) != nil || title == "" || utf8.RuneCountInString(title) > 100 {
		p.jsonErr(j, at("title"), where("title"), "want a title of 1 to 100 characters, got %s", rawKind(t))
	}
	var schema map[string]json.RawMessage
	if s, ok := body["schema"]; !ok {
		p.jsonErr(j, at(), where(), "blueprint %q has no \"schema\" (Port requires one, with \"properties\")", bp.Identifier)
	} else if json.Unmarshal(s, &schema) != nil {
		p.jsonErr(j, at("schema"), where("schema"), "want an object, got %s", rawKind(s))
	} else if props, ok := schema["properties"]; !ok {
		p.jsonErr(j, at("schema"), where("schema"), "schema has no \"properties\" (Port requires it; it may be {})")
	} else if json.Unmarshal(props, &bp.Schema.Properties) != nil {
		p.jsonErr(j, at("schema", "properties"), where("schema", "properties"), "want an object, got %s", rawKind(props))
	}
	for _, name := range mapKeys(bp.Schema.Properties) {
		def := bp.Schema.Properties[name]
		var prop struct {
			Type any `json:"type"`
		}
		switch {
		case !portKeyRe.MatchString(name):
			p.jsonErr(j, at("schema", "properties", name), where("schema", "properties", name), "invalid property identifier %q: Port takes letters, digits and @_=-", name)
		case json.Unmarshal(def, &prop) != nil:
			p.jsonErr(j, at("schema", "properties", name), where("schema", "properties", name), "want a property object, got %s", rawKind(def))
		case !slices.Contains(portPropertyTypes, fmt.Sprint(prop.Type)):
			p.jsonErr(j, at("schema", "properties", name), where("schema", "properties", name), "property needs a \"type\": one of %s", strings.Join(portPropertyTypes, ", "))
		}
	}
	if r, ok := body["relations"]; ok && json.Unmarshal(r, &bp.Relations) != nil {
		p.jsonErr(j, at("relations"), where("relations"), "want an object, got %s", rawKind(r))
	}
	for _, name := range mapKeys(bp.Relations) {
		var rel struct {
			Target any `json:"target"`
		}
		def := bp.Relations[name]
		if json.Unmarshal(def, &rel) != nil {
			p.jsonErr(j, at("relations", name), where("relations", name), "want a relation object, got %s", rawKind(def))
			continue
		}
		if target, ok := rel.Target.(string); !ok || target == "" {
			p.jsonErr(j, at("relations", name), where("relations", name), "relation needs a \"target\": the identifier of a blueprint")
		}
	}
	return bp
}

// rawKind describes a JSON value for a message, quoting a short string.
func rawKind(raw json.RawMessage) string {
	var v any
	_ = json.Unmarshal(raw, &v)
	if s, ok := v.(string); ok {
		return "string " + strconv.Quote(shorten(s))
	}
	return jsonv.Kind(v)
}

func (p *parser) checkTables(f *File) {
	names := f.Streams.Keys()
	for i := range f.Tables.Items {
		t := &f.Tables.Items[i].Value
		path := "tables." + t.Name
		if !identRE.MatchString(t.Name) {
			p.errorAt(t.Pos, "tables", "invalid table name %q: use letters, digits and _", t.Name)
		}
		if t.From.P.Line > 0 && len(t.From.V) == 0 {
			p.errorAt(t.From.P, path+".from", "an empty list names no stream: give the stream whose records become rows, or a list of them")
		}
		fromSeen := map[string]bool{}
		for j, from := range t.From.V {
			at := path + ".from"
			if len(t.From.V) > 1 {
				at = fmt.Sprintf("%s.from[%d]", path, j)
			}
			switch {
			case f.streams[from.V] == nil:
				p.errorAt(from.P, at, "unknown stream %q%s", from.V, didYouMean(from.V, names))
			case fromSeen[from.V]:
				p.errorAt(from.P, at, "stream %q is listed twice: its records would become rows twice", from.V)
			}
			fromSeen[from.V] = true
		}
		seen := map[string]bool{}
		for j, k := range t.PrimaryKey {
			if seen[k.V] {
				p.errorAt(k.P, fmt.Sprintf("%s.primary_key[%d]", path, j), "duplicate column %q", k.V)
			}
			seen[k.V] = true
		}
		if t.Mode.V == "append" && len(t.PrimaryKey) > 0 {
			p.errorAt(t.Mode.P, path+".mode", "append mode does not use a primary key")
		}
		if t.HardDelete.V && t.Mode.V != "replace" {
			p.errorAt(t.HardDelete.P, path+".hard_delete", "hard_delete needs mode: replace (only a replace table deletes rows)")
		}
		if dt := t.DeleteThreshold; dt.Set && (dt.V <= 0 || dt.V > 1) {
			p.errorAt(dt.P, path+".delete_threshold", "want a share greater than 0 and at most 1, got %v", dt.V)
		} else if dt.Set && t.Mode.V != "replace" {
			p.errorAt(dt.P, path+".delete_threshold", "delete_threshold needs mode: replace (only a replace table deletes rows)")
		}
		if t.OnDuplicate.Set && t.Mode.V == "append" {
			// Not "needs a primary_key": append refuses one just above.
			p.errorAt(t.OnDuplicate.P, path+".on_duplicate", "on_duplicate does not apply to an append table: its rows are appended, never matched by key")
		} else if t.OnDuplicate.Set && len(t.PrimaryKey) == 0 {
			p.errorAt(t.OnDuplicate.P, path+".on_duplicate", "on_duplicate needs a primary_key: without one, rows are keyed by their whole content and cannot be duplicates")
		}
	}
}

func (p *parser) checkPort(f *File, blueprints map[string]*Blueprint) {
	if f.Port == nil {
		return
	}
	if dt := f.Port.DeleteThreshold; dt.Set && (dt.V <= 0 || dt.V > 1) {
		p.errorAt(dt.P, "port.delete_threshold", "want a share greater than 0 and at most 1, got %v", dt.V)
	}
	// Two mappings of one blueprint must not disagree on a relation.
	policy := map[string]Str{}
	for i := range f.Port.Entities {
		e := &f.Port.Entities[i]
		for _, it := range e.MissingRelations.Items {
			k := e.Blueprint.V + "." + it.Key
			if prev, seen := policy[k]; seen && prev.V != it.Value.V {
				p.errorAt(it.Value.P, fmt.Sprintf("port.entities[%d].missing_relations.%s", i, it.Key), "%q here, %q on line %d for the same relation of blueprint %q", it.Value.V, prev.V, prev.P.Line, e.Blueprint.V)
			}
			policy[k] = it.Value
		}
	}
	names := f.Streams.Keys()
	var bpNames []string
	for k := range blueprints {
		bpNames = append(bpNames, k)
	}
	slices.Sort(bpNames)
	for i := range f.Port.Entities {
		e := &f.Port.Entities[i]
		path := fmt.Sprintf("port.entities[%d]", i)
		if e.From.Set && f.streams[e.From.V] == nil {
			p.errorAt(e.From.P, path+".from", "unknown stream %q%s", e.From.V, didYouMean(e.From.V, names))
		}
		if blueprints == nil || !e.Blueprint.Set {
			continue
		}
		bp, ok := blueprints[e.Blueprint.V]
		if ok {
			for _, it := range e.MissingRelations.Items {
				if _, has := bp.Relations[it.Key]; !has {
					p.errorAt(it.P, path+".missing_relations", "blueprint %q has no relation %q%s", bp.Identifier, it.Key, didYouMean(it.Key, mapKeys(bp.Relations)))
				}
			}
		}
		if !ok {
			p.errorAt(e.Blueprint.P, path+".blueprint", "unknown blueprint %q in %s%s", e.Blueprint.V, f.Port.Blueprints.V, didYouMean(e.Blueprint.V, bpNames))
			continue
		}
		props := mapKeys(bp.Schema.Properties)
		for _, it := range e.Properties.Items {
			if _, ok := bp.Schema.Properties[it.Key]; !ok {
				p.errorAt(it.P, path+".properties", "blueprint %q has no property %q%s", bp.Identifier, it.Key, didYouMean(it.Key, props))
			}
		}
		rels := mapKeys(bp.Relations)
		for _, it := range e.Relations.Items {
			if _, ok := bp.Relations[it.Key]; !ok {
				p.errorAt(it.P, path+".relations", "blueprint %q has no relation %q%s", bp.Identifier, it.Key, didYouMean(it.Key, rels))
			}
		}
	}
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
