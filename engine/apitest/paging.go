package apitest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// request is one incoming request as the reply builders see it.
type request struct {
	r      *http.Request
	query  url.Values
	body   []byte
	params map[string]string

	parsed  bool
	jsonDoc any
}

// bodyValue looks a dotted path up in the JSON request body and returns
// the value as text.
func (rq *request) bodyValue(path string) (string, bool) {
	if !rq.parsed {
		rq.parsed = true
		if len(bytes.TrimSpace(rq.body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(rq.body))
			dec.UseNumber()
			if dec.Decode(&rq.jsonDoc) != nil {
				rq.jsonDoc = nil
			}
		}
	}
	v, ok := lookupPath(rq.jsonDoc, path)
	if !ok || v == nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	default:
		return fmt.Sprint(v), true
	}
}

// reply is a response before it is written (or damaged by a fault).
type reply struct {
	status int
	header http.Header
	body   []byte
}

func jsonReply(status int, header http.Header, v any) reply {
	if header == nil {
		header = http.Header{}
	}
	if header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/json")
	}
	return reply{status: status, header: header, body: encodeJSON(v)}
}

// errorReply uses the {error, message} shape most APIs share.
func errorReply(status int, code, msg string) reply {
	return jsonReply(status, nil, map[string]any{"error": code, "message": msg})
}

func encodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep & in next URLs readable
	if err := enc.Encode(v); err != nil {
		// Only a Go-side ItemsFunc/BodyFunc can produce unencodable values.
		return encodeJSON(map[string]any{"error": "apitest", "message": "encode reply: " + err.Error()})
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// Page tokens are opaque base64 of the offset behind a binary prefix, so
// they always contain '+' and '/' (and often '='): a client that forgets to
// escape them in a query string breaks, as it would against a real API.
const tokenPrefix = "\xfb\xff\xbfo"

func encodeToken(offset int) string {
	return base64.StdEncoding.EncodeToString([]byte(tokenPrefix + strconv.Itoa(offset)))
}

func decodeToken(tok string) (int, error) {
	b, err := base64.StdEncoding.DecodeString(tok)
	digits, ok := strings.CutPrefix(string(b), tokenPrefix)
	if err != nil || !ok {
		return 0, errors.New("invalid page token")
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return 0, errors.New("invalid page token")
	}
	return n, nil
}

func (p *Paging) param() string {
	if p.Param != "" {
		return p.Param
	}
	switch p.Type {
	case PageNext:
		return "cursor"
	case PageLink, PageNumber:
		return "page"
	case PageOffset:
		return "offset"
	}
	return ""
}

func (p *Paging) sizeParam() string {
	if p.SizeParam == "" && p.Type == PageOffset {
		return "limit"
	}
	return p.SizeParam
}

// position finds the request's page position: header, then JSON body
// field, then query parameter.
func (p *Paging) position(rq *request) (string, bool) {
	if p.Header != "" {
		if v := rq.r.Header.Get(p.Header); v != "" {
			return v, true
		}
	}
	if p.BodyField != "" {
		if v, ok := rq.bodyValue(p.BodyField); ok && v != "" {
			return v, true
		}
	}
	if name := p.param(); name != "" {
		if v := rq.query.Get(name); v != "" {
			return v, true
		}
	}
	return "", false
}

// size reads the requested page size (query, then JSON body, then
// header) and applies the cap.
func (p *Paging) size(rq *request) (int, *reply) {
	size := p.pageSize()
	name := p.sizeParam()
	if name == "" {
		return size, nil
	}
	raw := rq.query.Get(name)
	if raw == "" {
		raw, _ = rq.bodyValue(name)
	}
	if raw == "" {
		raw = rq.r.Header.Get(name)
	}
	if raw == "" {
		return size, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		r := errorReply(http.StatusBadRequest, "bad_request", name+" must be a positive integer")
		return 0, &r
	}
	if p.MaxSize > 0 && n > p.MaxSize {
		if !p.Clamp {
			r := errorReply(http.StatusBadRequest, "bad_request", fmt.Sprintf("%s must be at most %d", name, p.MaxSize))
			return 0, &r
		}
		n = p.MaxSize
	}
	return n, nil
}

// collectionReply serves one page of the route's collection.
func (s *Server) collectionReply(rq *request, cr *compiledRoute) reply {
	items := cr.collection(rq.params)
	header := cr.replyHeaders(rq.params)
	status := statusOr(cr.Status, http.StatusOK)
	p := cr.Paginate
	if p == nil {
		return jsonReply(status, header, nonNil(items))
	}
	total := len(items)
	size, bad := p.size(rq)
	if bad != nil {
		return *bad
	}
	if p.Type == PageNone {
		size = max(total, 1)
	}

	offset := 0
	raw, has := p.position(rq)
	if p.TokenParam != "" {
		if tok := rq.query.Get(p.TokenParam); tok != "" {
			raw, has = tok, true
		}
	}
	tokenKind := p.Type == PageCursor || p.Type == PageNext || p.Type == PageLink ||
		(p.TokenParam != "" && rq.query.Get(p.TokenParam) != "")
	switch {
	case !has || p.Type == PageNone:
	case tokenKind:
		n, err := decodeToken(raw)
		if err != nil {
			return errorReply(http.StatusBadRequest, "bad_request", err.Error())
		}
		offset = n
	case p.Type == PageNumber:
		n, err := strconv.Atoi(raw)
		if err != nil || n < p.Start {
			return errorReply(http.StatusBadRequest, "bad_request", fmt.Sprintf("%s must be an integer >= %d", p.param(), p.Start))
		}
		if n-p.Start > total/size+1 {
			offset = total // far past the end; avoid overflow
		} else {
			offset = (n - p.Start) * size
		}
	case p.Type == PageOffset:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return errorReply(http.StatusBadRequest, "bad_request", p.param()+" must be a non-negative integer")
		}
		offset = n
	}
	if p.RepeatToken && (p.Type == PageNumber || p.Type == PageOffset) {
		offset = 0 // the bug: the position parameter is ignored
	}

	start := min(offset, total)
	end := start + min(size, total-start)
	page := make([]any, 0, end-start)
	page = append(page, items[start:end]...)
	hasNext := end < total
	next := end
	if p.RepeatToken {
		next = size
		if p.Type != PageNumber && p.Type != PageOffset {
			hasNext = true
		}
	}

	if p.Type == PageLink {
		if link := s.linkHeader(rq, p, offset, size, total, next, hasNext); link != "" {
			header.Set("Link", link)
		}
	}
	if p.Envelope == "" {
		return jsonReply(status, header, page)
	}

	env, _ := substitute(cr.bodyTemplate(rq.params), nil, "").(map[string]any)
	if env == nil {
		env = map[string]any{}
	}
	setPath(env, p.Envelope, page)
	if p.TokenPath != "" {
		if hasNext {
			setPath(env, p.TokenPath, encodeToken(next))
		} else {
			setLast(env, p.TokenPath, p.LastToken, "omit")
		}
	}
	if p.Type == PageNext {
		if hasNext {
			setPath(env, p.NextPath, s.pageURL(rq, p, encodeToken(next)))
		} else {
			setLast(env, p.NextPath, p.LastToken, "null")
		}
	}
	pages := (total + size - 1) / size
	if p.TotalPagesPath != "" {
		setPath(env, p.TotalPagesPath, pages)
	}
	pageNo := offset/size + p.Start
	for path, field := range p.Meta {
		var v any
		switch field {
		case "total_items":
			v = total
		case "total_pages":
			v = pages
		case "page":
			v = pageNo
		case "page_size":
			v = size
		case "item_count":
			v = len(page)
		case "has_next":
			v = hasNext
		case "offset":
			v = offset
		case "empty":
			v = len(page) == 0
		case "next_page":
			if hasNext {
				v = pageNo + 1
			}
		}
		setPath(env, path, v)
	}
	return jsonReply(status, header, env)
}

func nonNil(items []any) []any {
	if items == nil {
		return []any{}
	}
	return items
}

// setLast writes what a last page carries where a token would be.
func setLast(env map[string]any, path, mode, def string) {
	if mode == "" {
		mode = def
	}
	switch mode {
	case "empty":
		setPath(env, path, "")
	case "null":
		setPath(env, path, nil)
	}
}

// pageURL is the request's own URL with the page parameter replaced, so
// every other parameter (page size included) carries over.
func (s *Server) pageURL(rq *request, p *Paging, token string) string {
	q := url.Values{}
	for k, v := range rq.query {
		q[k] = append([]string(nil), v...)
	}
	q.Set(p.param(), token)
	u := rq.r.URL.EscapedPath() + "?" + q.Encode()
	if p.RelativeURL {
		return u
	}
	return s.url + u
}

// linkHeader writes GitHub-style relations: prev, next, last, first. The
// last page keeps first and prev, so a client that follows any link rather
// than rel="next" loops.
func (s *Server) linkHeader(rq *request, p *Paging, offset, size, total, next int, hasNext bool) string {
	var links []string
	add := func(off int, rel string) {
		links = append(links, fmt.Sprintf("<%s>; rel=%q", s.pageURL(rq, p, encodeToken(off)), rel))
	}
	if offset > 0 {
		add(max(offset-size, 0), "prev")
	}
	if hasNext {
		add(next, "next")
		add(max((total-1)/size*size, 0), "last")
	}
	if offset > 0 {
		add(0, "first")
	}
	return strings.Join(links, ", ")
}

func (cr *compiledRoute) bodyTemplate(params map[string]string) any {
	if cr.BodyFunc != nil {
		return cr.BodyFunc(params)
	}
	return substitute(cr.Body, replacer(params, ""), "")
}

func (cr *compiledRoute) replyHeaders(params map[string]string) http.Header {
	h := http.Header{}
	rep := replacer(params, "")
	for k, v := range cr.Headers {
		if rep != nil {
			v = rep.Replace(v)
		}
		h.Set(k, v)
	}
	return h
}

// staticReply serves Body (JSON), BodyFunc or RawBody (verbatim).
func (s *Server) staticReply(rq *request, cr *compiledRoute) reply {
	status := statusOr(cr.Status, http.StatusOK)
	header := cr.replyHeaders(rq.params)
	switch {
	case cr.RawBody != "":
		body := cr.RawBody
		if rep := replacer(rq.params, ""); rep != nil {
			body = rep.Replace(body)
		}
		return reply{status: status, header: header, body: []byte(body)}
	case cr.BodyFunc != nil || cr.Body != nil:
		return jsonReply(status, header, cr.bodyTemplate(rq.params))
	default:
		return reply{status: status, header: header}
	}
}

// echoReply describes the request, for asserting templated requests.
func echoReply(rq *request, cr *compiledRoute) reply {
	headers := make(map[string]string, len(rq.r.Header))
	for k, v := range rq.r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	query := make(map[string][]string, len(rq.query))
	for k, v := range rq.query {
		query[k] = v
	}
	var body any
	if len(rq.body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(rq.body))
		dec.UseNumber()
		if dec.Decode(&body) != nil {
			body = string(rq.body)
		}
	}
	params := rq.params
	if params == nil {
		params = map[string]string{}
	}
	return jsonReply(statusOr(cr.Status, http.StatusOK), cr.replyHeaders(rq.params), map[string]any{
		"method":  rq.r.Method,
		"path":    rq.r.URL.Path,
		"query":   query,
		"headers": headers,
		"body":    body,
		"params":  params,
	})
}

// setPath sets a dotted path in m, creating (or replacing non-object)
// intermediate objects.
func setPath(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		child, ok := m[k].(map[string]any)
		if !ok {
			child = map[string]any{}
			m[k] = child
		}
		m = child
	}
	m[keys[len(keys)-1]] = v
}

func lookupPath(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}
