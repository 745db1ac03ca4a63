package spec

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferry-etl/ferry/engine/eval"
)

// StatusRange is an inclusive range of HTTP statuses a rule matches.
type StatusRange struct{ Min, Max int }

// Path names the rule as the spec does, e.g. streams.a.http.rules[1].
func (r *Rule) Path() string { return r.path }

// Ranges returns the statuses the rule matches, parsed at validation;
// empty means any status.
func (r *Rule) Ranges() []StatusRange { return r.ranges }

// hostJQVars are the jq variables of a rule's body and message programs,
// and of a login's token and expires_in: like every host setting they are
// resolved once per run, so they see $config only.
func hostJQVars() eval.Vars { return varNames{VarConfig} }

// parseStatus reads one status condition: 404, 500-599 or 4xx.
func parseStatus(s string) (StatusRange, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 3 && s[0] >= '1' && s[0] <= '5' && strings.EqualFold(s[1:], "xx") {
		base := int(s[0]-'0') * 100
		return StatusRange{base, base + 99}, true
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(strings.TrimSpace(lo))
	if err != nil {
		return StatusRange{}, false
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
			return StatusRange{}, false
		}
	}
	if a < 100 || b > 599 || a > b {
		return StatusRange{}, false
	}
	return StatusRange{a, b}, true
}

// checkRules checks the response rules of an http block.
func (p *parser) checkRules(h *HTTP, path string) {
	for i := range h.Rules {
		r := &h.Rules[i]
		rp := fmt.Sprintf("%s.rules[%d]", path, i)
		r.ranges, r.path = nil, rp
		for _, st := range r.Status.V {
			sr, ok := parseStatus(st.V)
			if !ok {
				p.errorAt(st.P, rp+".status", "invalid status %q: want a status (404), a range (500-599) or a class (4xx), within 100-599", st.V)
				continue
			}
			r.ranges = append(r.ranges, sr)
		}
		if len(r.Status.V) == 0 && !r.Headers.Set && !r.Body.Set {
			p.errorAt(r.Pos, rp, "a rule needs a condition: status, headers or body (one that matches every answer would hide them all)")
		}
		if !r.Action.Set {
			continue
		}
		act := r.Action.V
		if act != "retry" {
			for key, f := range map[string]Str{"wait_header": r.WaitHeader, "max_wait": r.MaxWait.str(), "wait": r.Wait.str()} {
				if f.Set {
					p.errorAt(f.P, rp+"."+key, "%s is only used by action retry, not %s", key, act)
				}
			}
		}
		if r.Message.Set && (act == "ok" || act == "empty") {
			p.errorAt(r.Message.P, rp+".message", "message is only used by actions fail, skip, retry and restart, not %s", act)
		}
	}
}

// warnRuleTakes429 warns of a rule that takes a 429 away from the retry
// that would wait the rate limit out: a catch-all for the API's error
// bodies (status 4xx, action fail) then fails the run at its first rate
// limit. Rules are tried in order, a stream's (h) before the top level's
// (top, nil for the top level itself): the first rule whose status covers
// 429 decides, and a retry there (with any further condition) is taken as
// the spec's way of handling rate limits. Nothing is said when retry.on
// leaves 429 out: it is not retried anyway. The top level's own rules are
// warned of once, at the top level.
func (p *parser) warnRuleTakes429(h, top *HTTP) {
	var on []Int
	switch {
	case h.Retry != nil && h.Retry.On != nil:
		on = h.Retry.On
	case top != nil && top.Retry != nil && top.Retry.On != nil:
		on = top.Retry.On
	}
	if on != nil && !slices.ContainsFunc(on, func(st Int) bool { return st.V == http.StatusTooManyRequests }) {
		return
	}
	for i := range h.Rules {
		r := &h.Rules[i]
		k := slices.IndexFunc(r.ranges, func(sr StatusRange) bool {
			return sr.Min <= http.StatusTooManyRequests && http.StatusTooManyRequests <= sr.Max
		})
		if k < 0 || k >= len(r.Status.V) || !r.Action.Set {
			continue
		}
		if r.Action.V != "retry" && onlyStatus(r.ranges, http.StatusTooManyRequests) && (r.Body.Set || len(r.Headers.Items) > 0) {
			// Some 429s, picked on purpose (HubSpot's DAILY limit, failed
			// rather than waited out for hours): the next rule decides.
			continue
		}
		if r.Action.V != "retry" {
			what := map[string]string{"fail": "fails its chain", "skip": "is skipped",
				"ok": "is stored as data", "empty": "ends its chain as empty", "restart": "restarts its chain"}[r.Action.V]
			p.warnAt(r.Status.V[k].P, r.path+".status", "%s also matches 429: a rate limit %s instead of being retried after the server's wait; put a rule {status: 429, action: retry} before it", r.Status.V[k].V, what)
		}
		return
	}
}

// onlyStatus reports whether ranges are the one status st.
func onlyStatus(ranges []StatusRange, st int) bool {
	return len(ranges) == 1 && ranges[0].Min == st && ranges[0].Max == st
}

// warnGraphQLErrorsUnread warns of a GraphQL request (a body whose
// query is a string) that no response rule guards: GraphQL answers its
// errors in a 200, beside data that is null or partial (a null where a
// node could not be read), so without a rule whose body reads .errors a
// partial page would pass as data, and its stream as complete. A rule
// of the stream's or of the top level counts when its body names
// errors and its action is not ok or empty.
func (p *parser) warnGraphQLErrorsUnread(s *Stream, top *HTTP) {
	b := s.Request.Body
	if !b.Set || b.Node == nil || b.Node.Kind != yaml.MappingNode {
		return
	}
	var query *yaml.Node
	for i := 0; i+1 < len(b.Node.Content); i += 2 {
		if k, v := b.Node.Content[i], b.Node.Content[i+1]; k.Value == "query" && v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
			query = k
		}
	}
	if query == nil {
		return
	}
	rules := top.Rules
	if s.HTTP != nil {
		rules = append(slices.Clip(s.HTTP.Rules), rules...)
	}
	for _, r := range rules {
		if r.Body.Set && strings.Contains(r.Body.V, "errors") && r.Action.V != "ok" && r.Action.V != "empty" {
			return
		}
	}
	p.warnAt(nodePos(query), "streams."+s.Name+".request.body.query",
		"a GraphQL query, and no response rule reads .errors: a 200 whose errors say its data is partial or missing would pass as data; add a rule {status: 200, body: '(.errors // []) | length > 0', action: fail, message: '[.errors[].message] | join(\"; \")'}")
}

func (d Duration) str() Str { return Str{P: d.P, Set: d.Set} }

// checkCursor checks what a cursor needs: a token from the body or a
// header, and a param unless the token is the path.
func (p *parser) checkCursor(pg *Paginate, path string) {
	if pg.Type.V != "cursor" {
		if pg.In.V == "path" {
			p.errorAt(pg.In.P, path+".in", "in: path is only for cursor pagination (the token is the next path)")
		}
		return
	}
	switch {
	case pg.Token.Set && pg.TokenHeader.Set:
		p.errorAt(pg.TokenHeader.P, path+".token_header", "give token or token_header, not both")
	case !pg.Token.Set && !pg.TokenHeader.Set:
		p.errorAt(pg.Pos, path, "pagination type %q needs field %q (or %q)", "cursor", "token", "token_header")
	}
	switch {
	case pg.In.V == "path" && pg.Param.Set:
		p.errorAt(pg.Param.P, path+".param", "not used with in: path: the token is the next request's path")
	case pg.In.V == "path" && pg.SizeParam.Set:
		p.errorAt(pg.SizeParam.P, path+".size_param", "a page size cannot go in the path: send it in request.query")
	case pg.In.V != "path" && !pg.Param.Set:
		p.errorAt(pg.Pos, path, "pagination type %q needs field %q", "cursor", "param")
	}
}

// checkAuthFlow checks the auth kinds that make requests of their own.
func (p *parser) checkAuthFlow(a *Auth, path string) {
	path += ".auth"
	switch a.Type.V {
	case "oauth2":
		refresh := a.Grant.V == "refresh_token"
		switch {
		case refresh && !a.RefreshToken.Set:
			p.errorAt(a.Grant.P, path+".grant", "grant refresh_token needs field %q", "refresh_token")
		case !refresh && a.RefreshToken.Set:
			p.errorAt(a.RefreshToken.P, path+".refresh_token", "refresh_token is only used with grant: refresh_token")
		}
		if a.BodyFormat.V == "json" {
			if refresh {
				p.errorAt(a.BodyFormat.P, path+".body_format", "the refresh_token grant takes a form body (RFC 6749)")
			}
			if a.ClientAuth.Set {
				p.errorAt(a.ClientAuth.P, path+".client_auth", "client_auth is for a form token request; a json one carries clientId and clientSecret in its body")
			}
		}
	case "session":
		if a.Login == nil {
			p.errorAt(a.Pos, path, "auth type %q needs field %q", "session", "login")
			return
		}
		p.checkAuthRequest(a.Login, path+".login")
		if a.Header.Set && a.Param.Set {
			p.errorAt(a.Param.P, path+".param", "give header or param, not both")
		}
	case "jwt":
		if !a.PrivateKey.Set {
			p.errorAt(a.Pos, path, "auth type %q needs field %q", "jwt", "private_key")
		}
		for _, it := range a.Claims.Items {
			if it.Key == "iat" || it.Key == "exp" {
				p.errorAt(it.P, path+".claims", "claim %q is set by ferry at each signing (exp from ttl): remove it", it.Key)
			}
		}
		if a.Exchange != nil {
			p.checkAuthRequest(a.Exchange, path+".exchange")
		}
		if a.Assertion.Set && a.Exchange == nil {
			p.errorAt(a.Assertion.P, path+".assertion", "assertion names the exchange's body field that carries the JWT: give an exchange")
		}
		if a.Assertion.Set && a.Exchange != nil && a.Exchange.Body.Set && a.Exchange.Body.Node.Kind != yaml.MappingNode {
			p.errorAt(a.Exchange.Body.P, path+".exchange.body", "with assertion the body must be an object, to carry the JWT as a field")
		}
		if a.Assertion.Set && a.Exchange != nil && strings.EqualFold(a.Exchange.Method.V, "GET") {
			p.errorAt(a.Exchange.Method.P, path+".exchange.method", "with assertion the JWT goes in the body: the exchange needs method POST, PUT or PATCH, not GET")
		}
		if a.Header.Set && a.Param.Set {
			p.errorAt(a.Param.P, path+".param", "give header or param, not both")
		}
	}
}

func (p *parser) checkAuthRequest(r *AuthRequest, path string) {
	switch {
	case r.Pos.Line == 0:
	case r.Path.Set && r.URL.Set:
		p.errorAt(r.URL.P, path+".url", "give path or url, not both")
	case !r.Path.Set && !r.URL.Set:
		p.errorAt(r.Pos, path, "missing required field %q (or %q)", "path", "url")
	}
	switch {
	case r.Pos.Line == 0:
	case r.Token.Set && r.TokenHeader.Set:
		p.errorAt(r.TokenHeader.P, path+".token_header", "give token or token_header, not both")
	case !r.Token.Set && !r.TokenHeader.Set:
		p.errorAt(r.Pos, path, "missing required field %q (or %q): where the answer holds the token", "token", "token_header")
	}
	if r.Body.Set && r.Method.V == "GET" {
		p.errorAt(r.Body.P, path+".body", "a request body needs method POST, PUT or PATCH, not GET")
	}
	p.checkFormBody(r.BodyFormat, r.Body, path)
}

// checkRequestFormat checks a stream request's body_format.
func (p *parser) checkRequestFormat(r *Request, path string) {
	if r.BodyFormat.Set && !r.Body.Set && !r.BodyJQ.Set {
		p.errorAt(r.BodyFormat.P, path+".body_format", "body_format needs body or body_jq")
	}
	p.checkFormBody(r.BodyFormat, r.Body, path)
	if r.BodyFormat.V == BodyText {
		switch n := resolveAlias(r.Body.Node); {
		case r.BodyJQ.Set:
			p.errorAt(r.BodyJQ.P, path+".body_jq", "body_format text sends body, one string (a template), as it is: give body, not body_jq")
		case r.Body.Set && (n.Kind != yaml.ScalarNode || n.Tag != "!!str"):
			p.errorAt(r.Body.P, path+".body", "body_format text sends body as it is: give one string (a template), not %s", kindName(n))
		}
	}
}

// checkFormBody refuses a literal form body that is not a mapping of
// fields.
func (p *parser) checkFormBody(format Str, body Value, path string) {
	if format.V != "form" || !body.Set {
		return
	}
	if n := resolveAlias(body.Node); n.Kind != yaml.MappingNode {
		p.errorAt(body.P, path+".body", "a form body is a mapping of fields, got %s", kindName(n))
	}
}

// compileRules compiles the rules' programs; they see $config only.
func (p *parser) compileRules(h *HTTP, path string) {
	for i := range h.Rules {
		r := &h.Rules[i]
		rp := fmt.Sprintf("%s.rules[%d]", path, i)
		p.compileJQ(&r.Body, rp+".body", hostJQVars())
		p.compileJQ(&r.Message, rp+".message", hostJQVars())
	}
}

// compileAuthFlow compiles the templates and programs of the auth kinds
// that make requests; like every host setting they see config only.
func (p *parser) compileAuthFlow(a *Auth, path string, sc *eval.Env) {
	path += ".auth"
	p.compileTmpl(&a.RefreshToken, path+".refresh_token", sc)
	p.compileTmpl(&a.PrivateKey, path+".private_key", sc)
	for j := range a.Claims.Items {
		it := &a.Claims.Items[j]
		p.compileValue(&it.Value, path+".claims."+it.Key, sc)
	}
	for name, r := range map[string]*AuthRequest{"login": a.Login, "exchange": a.Exchange} {
		if r == nil {
			continue
		}
		rp := path + "." + name
		p.compileTmpl(&r.Path, rp+".path", sc)
		p.compileTmpl(&r.URL, rp+".url", sc)
		for j := range r.Query.Items {
			it := &r.Query.Items[j]
			p.compileValue(&it.Value, rp+".query."+it.Key, sc)
		}
		for j := range r.Headers.Items {
			it := &r.Headers.Items[j]
			p.compileTmpl(&it.Value, rp+".headers."+it.Key, sc)
		}
		p.compileValue(&r.Body, rp+".body", sc)
		p.compileJQ(&r.Token, rp+".token", hostJQVars())
		p.compileJQ(&r.ExpiresIn, rp+".expires_in", hostJQVars())
	}
}
