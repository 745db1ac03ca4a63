package port

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
)

// searchEntities serves POST /v1/blueprints/{bp}/entities/search: rules are
// evaluated in memory, results are in no particular order (see idsLocked),
// and `next` is an opaque cursor (after the last entity returned) to send
// back as `from`; a full page carries one even when nothing follows.
func (s *Server) searchEntities(bpID string, body []byte) (int, any, *apiError) {
	m, err := decodeObject(body)
	if err != nil {
		return 0, nil, err
	}
	for k := range m {
		if !slices.Contains([]string{"query", "include", "exclude", "limit", "from"}, k) {
			return 0, nil, invalid("body must NOT have additional properties: %q", k)
		}
	}
	limit := defaultSearchLimit
	if v, ok := m["limit"]; ok {
		f, ok := number(v)
		if !ok || f < 1 || f > maxSearchLimit || f != float64(int(f)) {
			return 0, nil, invalid("body/limit must be an integer in 1..%d", maxSearchLimit)
		}
		limit = int(f)
	}
	after := ""
	if v, ok := m["from"]; ok {
		str, ok := v.(string)
		if !ok {
			return 0, nil, invalid("body/from must be string")
		}
		raw, derr := base64.RawURLEncoding.DecodeString(str)
		if derr != nil || !strings.HasPrefix(string(raw), "after:") {
			return 0, nil, invalid("body/from is not a cursor returned by this route")
		}
		after = strings.TrimPrefix(string(raw), "after:")
	}
	include, err := stringList(m, "include")
	if err != nil {
		return 0, nil, err
	}
	exclude, err := stringList(m, "exclude")
	if err != nil {
		return 0, nil, err
	}
	var query map[string]any
	if v, ok := m["query"]; ok {
		query, ok = v.(map[string]any)
		if !ok {
			return 0, nil, invalid("body/query must be object")
		}
		if err := checkQuery(query); err != nil {
			return 0, nil, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupBlueprintLocked(bpID); err != nil {
		return 0, nil, err
	}
	s.catchUpLocked(s.opts.Now())
	out := []any{}
	next := ""
	ids := s.idsLocked(bpID)
	if cand := identifiersIn(query); cand != nil {
		ids = cand // only these can match: no scan of the blueprint
	}
	start := 0
	if after != "" {
		start, _ = slices.BinarySearchFunc(ids, after, func(id, key string) int { return strings.Compare(searchKey(id), key) })
	}
	for _, id := range ids[start:] {
		e, ok := s.index[bpID][id]
		if !ok || after != "" && searchKey(id) <= after {
			continue
		}
		v := e.view(bpID)
		if query != nil && !matchQuery(query, v) {
			continue
		}
		out = append(out, v)
		if len(out) == limit {
			// A full page always has a cursor, whether or not more follow:
			// the client learns the end from a page without one.
			next = base64.RawURLEncoding.EncodeToString([]byte("after:" + searchKey(id)))
			break
		}
	}
	for i, x := range out {
		out[i] = project(x.(map[string]any), include, exclude)
	}
	resp := map[string]any{"ok": true, "entities": out}
	switch {
	case next != "":
		resp["next"] = next
	case after != "":
		// Port's last page has next null or no next at all: a later
		// page says null, a first page leaves it out, so clients meet both.
		resp["next"] = nil
	}
	return http.StatusOK, resp, nil
}

// identifiersIn returns, in search order, the identifiers of an "and" query's
// top-level `$identifier in [...]` rule, nil when it has none.
func identifiersIn(q map[string]any) []string {
	if q == nil || q["combinator"] != "and" {
		return nil
	}
	for _, r := range q["rules"].([]any) {
		rm := r.(map[string]any)
		if rm["property"] != "$identifier" || rm["operator"] != "in" {
			continue
		}
		ids := []string{}
		for _, v := range rm["value"].([]any) {
			if id, ok := v.(string); ok {
				ids = append(ids, id)
			}
		}
		slices.SortFunc(ids, compareSearchOrder)
		return slices.Compact(ids)
	}
	return nil
}

func stringList(m map[string]any, k string) ([]string, *apiError) {
	v, ok := m[k]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, invalid("body/%s must be array", k)
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		str, ok := x.(string)
		if !ok {
			return nil, invalid("body/%s must contain strings", k)
		}
		out = append(out, str)
	}
	return out, nil
}

var supportedOperators = []string{"=", "!=", "in", "notIn", "contains", "doesNotContains",
	"beginsWith", "doesNotBeginsWith", "endsWith", "doesNotEndsWith", "isEmpty", "isNotEmpty"}

// checkQuery rejects query shapes the Port simulator does not evaluate, so a test never
// silently passes on an unsupported rule.
func checkQuery(q map[string]any) *apiError {
	c, _ := q["combinator"].(string)
	if c != "and" && c != "or" {
		return invalid("query/combinator must be and or or")
	}
	rules, ok := q["rules"].([]any)
	if !ok {
		return invalid("query/rules must be array")
	}
	for _, r := range rules {
		rm, ok := r.(map[string]any)
		if !ok {
			return invalid("query/rules must contain objects")
		}
		if _, nested := rm["combinator"]; nested {
			if err := checkQuery(rm); err != nil {
				return err
			}
			continue
		}
		if _, ok := rm["property"].(string); !ok {
			return invalid("query rule: property must be a string (the Port simulator supports property rules only)")
		}
		op, _ := rm["operator"].(string)
		if !slices.Contains(supportedOperators, op) {
			return invalid("query rule: operator %q is not supported by the Port simulator", op)
		}
		if op == "in" || op == "notIn" {
			if _, ok := rm["value"].([]any); !ok {
				return invalid("query rule: operator %s needs an array value", op)
			}
		}
	}
	return nil
}

func matchQuery(q map[string]any, e map[string]any) bool {
	and := q["combinator"] == "and"
	for _, r := range q["rules"].([]any) {
		rm := r.(map[string]any)
		var ok bool
		if _, nested := rm["combinator"]; nested {
			ok = matchQuery(rm, e)
		} else {
			ok = matchRule(rm, e)
		}
		if and && !ok {
			return false
		}
		if !and && ok {
			return true
		}
	}
	return and
}

// field resolves a rule property: $-prefixed meta-properties, then
// properties, then relations.
func field(e map[string]any, name string) any {
	if meta, ok := strings.CutPrefix(name, "$"); ok {
		return e[meta]
	}
	if v, ok := e["properties"].(map[string]any)[name]; ok {
		return v
	}
	return e["relations"].(map[string]any)[name]
}

func matchRule(r map[string]any, e map[string]any) bool {
	v := field(e, r["property"].(string))
	want := r["value"]
	str, isStr := v.(string)
	wantStr, _ := want.(string)
	switch r["operator"] {
	case "=":
		return jsonEqual(v, want)
	case "!=":
		return !jsonEqual(v, want)
	case "in", "notIn":
		in := slices.ContainsFunc(want.([]any), func(x any) bool { return jsonEqual(v, x) })
		return in == (r["operator"] == "in")
	case "contains", "doesNotContains":
		has := false
		if isStr {
			has = strings.Contains(str, wantStr)
		} else if list, ok := v.([]any); ok {
			has = slices.ContainsFunc(list, func(x any) bool { return jsonEqual(x, want) })
		}
		return has == (r["operator"] == "contains")
	case "beginsWith":
		return isStr && strings.HasPrefix(str, wantStr)
	case "doesNotBeginsWith":
		return !isStr || !strings.HasPrefix(str, wantStr)
	case "endsWith":
		return isStr && strings.HasSuffix(str, wantStr)
	case "doesNotEndsWith":
		return !isStr || !strings.HasSuffix(str, wantStr)
	case "isEmpty", "isNotEmpty":
		empty := v == nil || v == "" || (isList(v) && len(v.([]any)) == 0)
		return empty == (r["operator"] == "isEmpty")
	}
	return false
}

func isList(v any) bool { _, ok := v.([]any); return ok }

// project applies include/exclude; names are meta-properties with a "$"
// prefix, or property/relation identifiers.
func project(e map[string]any, include, exclude []string) map[string]any {
	keep := func(name string) bool {
		if slices.Contains(exclude, name) {
			return false
		}
		return len(include) == 0 || slices.Contains(include, name)
	}
	out := map[string]any{}
	for k, v := range e {
		if k == "properties" || k == "relations" {
			continue
		}
		if keep("$" + k) {
			out[k] = v
		}
	}
	for _, group := range []string{"properties", "relations"} {
		sub := map[string]any{}
		for k, v := range e[group].(map[string]any) {
			if keep(k) {
				sub[k] = v
			}
		}
		if len(include) == 0 || len(sub) > 0 {
			out[group] = sub
		}
	}
	return out
}
