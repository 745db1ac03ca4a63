package port

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/big"
	"slices"
	"strconv"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// canonEntity is an entity reduced to what a write sets and normalised the
// way Port stores it, so that the entity the run would send and the one
// Port holds encode to the same bytes exactly when writing would change
// nothing:
//
//   - only identifier, title, icon, team, and the properties and relations
//     the blueprint declares count (Port adds meta-properties, calculated,
//     mirror and aggregation properties; they are not written);
//   - null and absent are the same (Port answers null for what was not
//     sent); a property equal to its default is kept, for Port may hold
//     null there (an entity updated with null, or made before the default
//     was declared), and then the value must be sent — [sameAsStored]
//     takes a null against the default Port gave for the same;
//   - an empty many-relation, a null one and an absent one are the same,
//     and many-relations are sets (Port does not keep their order);
//   - team is a sorted list (a single team is a list of one);
//   - numbers compare as Port keeps them, as JSON doubles (1 and 1.0,
//     -0 and 0, a big integer and the double nearest to it).
func canonEntity(def *Blueprint, m map[string]any) map[string]any {
	out := map[string]any{"identifier": m["identifier"]}
	for _, k := range []string{"title", "icon"} {
		if v, ok := m[k]; ok && v != nil {
			out[k] = v
		}
	}
	if t := canonIDs(m["team"]); len(t) > 0 {
		out["team"] = t
	}
	props := map[string]any{}
	in, _ := m["properties"].(map[string]any)
	for k := range def.Properties {
		if v := canonValue(in[k]); v != nil {
			props[k] = v
		}
	}
	out["properties"] = props
	rels := map[string]any{}
	rin, _ := m["relations"].(map[string]any)
	for k, r := range def.Relations {
		switch v := rin[k].(type) {
		case nil:
		case string:
			if r.Many {
				rels[k] = []any{v}
			} else {
				rels[k] = v
			}
		case []any:
			if ids := canonIDs(v); len(ids) > 0 {
				rels[k] = ids
			}
		default:
			rels[k] = canonValue(v) // a search query: never equal to what Port stores
		}
	}
	out["relations"] = rels
	return out
}

// sameAsStored reports whether the canonical entity next (the run's)
// is what Port holds, stored (canonical, encoded): byte-equal, or equal
// once each property next leaves null and Port holds at its default is
// taken as that default. Port gives a property's default to an entity
// created without it, so the default is what ferry's null became there;
// sending the null again would change nothing, every run. The reverse is
// not the same: a value equal to the default against Port's null is a
// change, and is sent.
func sameAsStored(def *Blueprint, next map[string]any, stored []byte) bool {
	if bytes.Equal(encodeCanon(next), stored) {
		return true
	}
	if !hasDefault(def) {
		return false
	}
	var old map[string]any
	if err := json.Unmarshal(stored, &old); err != nil {
		return false
	}
	filled := withStoredDefaults(def, next, old)
	return filled != nil && bytes.Equal(encodeCanon(filled), stored)
}

// hasDefault reports whether a property of def has a default.
func hasDefault(def *Blueprint) bool {
	for _, p := range def.Properties {
		if p.Default != nil {
			return true
		}
	}
	return false
}

// withStoredDefaults returns a copy of the canonical entity next with the
// default put in for each property next leaves null and old (what Port
// holds, canonical) has at its default; nil when there is none.
func withStoredDefaults(def *Blueprint, next, old map[string]any) map[string]any {
	props, _ := next["properties"].(map[string]any)
	held, _ := old["properties"].(map[string]any)
	var out map[string]any
	for k, p := range def.Properties {
		if p.Default == nil || props[k] != nil || held[k] == nil || !sameJSON(held[k], canonValue(p.Default)) {
			continue
		}
		if out == nil {
			out = maps.Clone(next)
			props = maps.Clone(props)
			if props == nil {
				props = map[string]any{}
			}
			out["properties"] = props
		}
		props[k] = canonValue(p.Default)
	}
	return out
}

// canonIDs is a sorted, de-duplicated list of the strings in v (a string
// or a list); nil when there are none.
func canonIDs(v any) []any {
	var ids []string
	switch x := v.(type) {
	case string:
		ids = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				ids = append(ids, s)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]any, len(ids))
	for i, s := range ids {
		out[i] = s
	}
	return out
}

// canonValue turns numbers into float64, as Port keeps them (-0 as 0); maps and lists
// are copied with their values normalised.
func canonValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f + 0 // -0 is 0: Port answers 0 for it
		}
		return string(x)
	case float64:
		return x + 0
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case *big.Int:
		// A big integer (jq's, past int64) is sent whole; Port keeps the
		// double nearest to it.
		f, _ := new(big.Float).SetInt(x).Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canonValue(e)
		}
		return out
	}
	return v
}

// encodeCanon encodes a canonical entity (map keys sorted, no HTML
// escaping); nil if it cannot be encoded.
func encodeCanon(m map[string]any) []byte {
	b, err := jsonv.Append(nil, m, false)
	if err != nil {
		return nil
	}
	return b
}

// FieldChange is one field of an entity that a write would change: title,
// icon, team, properties.NAME or relations.NAME. Old or New is nil when
// the field is absent on that side.
type FieldChange struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// diffCanon lists the fields in which two canonical entities differ, in
// order.
func diffCanon(old, new map[string]any) []FieldChange {
	var out []FieldChange
	add := func(field string, a, b any) {
		if !sameJSON(a, b) {
			out = append(out, FieldChange{Field: field, Old: a, New: b})
		}
	}
	for _, k := range []string{"title", "icon", "team"} {
		add(k, old[k], new[k])
	}
	for _, group := range []string{"properties", "relations"} {
		a, _ := old[group].(map[string]any)
		b, _ := new[group].(map[string]any)
		keys := slices.Collect(maps.Keys(a))
		for k := range b {
			if _, ok := a[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			add(group+"."+k, a[k], b[k])
		}
	}
	return out
}
