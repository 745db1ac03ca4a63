package port

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/sink"
)

// oldEntityKeys and oldValidateEntity are ValidateEntity as it was before
// it read the entity's fields in one pass (076fdcb), the reference the
// differential test compares with.
var oldEntityKeys = []string{"identifier", "title", "icon", "team", "properties", "relations"}

func oldValidateEntity(bp *Blueprint, e sink.Entity) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if bp == nil {
		return []error{&FieldError{Field: "blueprint", Message: fmt.Sprintf("blueprint %q is unknown", e.Blueprint)}}
	}
	if e.Blueprint != "" && e.Blueprint != bp.Identifier {
		add("blueprint", "entity is for %q, validated against %q", e.Blueprint, bp.Identifier)
	}
	// The loops over maps add their errors in no order; each sorts what it
	// added by field (sorting the keys of every valid entity cost more).
	from := len(errs)
	for k := range e.Data {
		if !slices.Contains(oldEntityKeys, k) {
			add(k, "unknown entity field (want one of %v)", oldEntityKeys)
		}
	}
	sortFields(errs[from:])
	switch id := e.Data["identifier"].(type) {
	case string:
		if err := checkEntityID(id); err != nil {
			add("identifier", "%v", err)
		}
	case nil:
		add("identifier", "is required")
	default:
		add("identifier", "must be a string, got %s", jsonType(id))
	}
	for _, k := range []string{"title", "icon"} {
		if v, ok := e.Data[k]; ok {
			if s, ok := v.(string); !ok {
				add(k, "must be a string, got %s", jsonType(v))
			} else if err := checkUTF8(s); err != nil {
				add(k, "%v", err)
			}
		}
	}
	if v, ok := e.Data["team"]; ok && !isStringOrStrings(v) {
		add("team", "must be a string or a list of strings")
	} else if err := checkNested(v); ok && err != nil {
		add("team", "%v", err)
	}

	props, ok := asObject(e.Data["properties"])
	if !ok {
		add("properties", "must be an object, got %s", jsonType(e.Data["properties"]))
	}
	from = len(errs)
	for k := range props {
		def, ok := bp.Properties[k]
		if !ok {
			add("properties."+k, "is not declared in blueprint %q", bp.Identifier)
			continue
		}
		if err := checkValue(def, props[k]); err != nil {
			add("properties."+k, "%v", err)
		}
	}
	sortFields(errs[from:])
	for _, k := range bp.Required {
		if props[k] == nil {
			add("properties."+k, "is required by blueprint %q", bp.Identifier)
		}
	}

	rels, ok := asObject(e.Data["relations"])
	if !ok {
		add("relations", "must be an object, got %s", jsonType(e.Data["relations"]))
	}
	from = len(errs)
	for k := range rels {
		def, ok := bp.Relations[k]
		if !ok {
			add("relations."+k, "is not declared in blueprint %q", bp.Identifier)
			continue
		}
		v := rels[k]
		if _, query := v.(map[string]any); query || v == nil {
			// A search query is sent as it is: checked as a property's
			// object is (a NUL in it could fail the whole bulk request).
			if err := checkNested(v); err != nil {
				add("relations."+k, "%v", err)
			}
			continue
		}
		ids, isList := relationIDs(v)
		switch {
		case ids == nil:
			add("relations."+k, "must be a string, a list of strings, null or a search query, got %s", jsonType(v))
			continue
		case def.Many && !isList:
			add("relations."+k, "must be a list (relation is many)")
		case !def.Many && isList:
			add("relations."+k, "must be a single identifier (relation is not many)")
		}
		for _, id := range ids {
			if err := checkEntityID(id); err != nil {
				add("relations."+k, "target %v", err)
			}
		}
	}
	sortFields(errs[from:])
	from = len(errs)
	for k, def := range bp.Relations {
		if !def.Required {
			continue
		}
		if ids, _ := relationIDs(rels[k]); len(ids) == 0 {
			if _, query := rels[k].(map[string]any); !query {
				add("relations."+k, "is required by blueprint %q", bp.Identifier)
			}
		}
	}
	sortFields(errs[from:])
	return errs
}

// ValidateEntity gives what it gave before its one-pass rewrite, errors
// and their order alike, on random entities: every field present or
// not, of any JSON type, with unknown and case-folded fields, invalid
// UTF-8 and NUL, declared and undeclared properties and relations.
func TestValidateEntityAsBefore(t *testing.T) {
	bp := testBlueprint(t)
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	str := func() string {
		return pick("", "x", "svc-1", "app-1", "a b", ".", "..", "ü/ñ", "a\x00b", "a\xffb", "gold", "https://x.y", "2026-01-02T03:04:05Z", strings.Repeat("é", 1001))
	}
	var value func(depth int) any
	value = func(depth int) any {
		switch rng.IntN(9) {
		case 0:
			return nil
		case 1:
			return rng.IntN(2) == 0
		case 2:
			return json.Number(pick("1", "-2.5", "1e400", "9007199254740993"))
		case 3:
			return rng.IntN(1000)
		case 4:
			if depth < 2 {
				l := make([]any, rng.IntN(3))
				for i := range l {
					l[i] = value(depth + 1)
				}
				return l
			}
		case 5:
			if depth < 2 {
				m := map[string]any{}
				for range rng.IntN(3) {
					m[pick("a", "b", "k\x00", "rules", "combinator")] = value(depth + 1)
				}
				return m
			}
		case 6:
			l := make([]any, rng.IntN(3))
			for i := range l {
				l[i] = str()
			}
			return l
		}
		return str()
	}
	object := func(keys ...string) any {
		switch rng.IntN(8) {
		case 0:
			return nil
		case 1:
			return value(1)
		}
		m := map[string]any{}
		for range rng.IntN(len(keys) + 1) {
			m[pick(keys...)] = value(0)
		}
		return m
	}
	fields := []string{"identifier", "title", "icon", "team", "properties", "relations", "Title", "ICON", "extra", "blueprint", ""}
	for i := range 20000 {
		d := map[string]any{}
		for _, f := range fields {
			if rng.IntN(3) == 0 {
				continue
			}
			switch f {
			case "properties":
				d[f] = object("s", "n", "b", "o", "a", "when", "home", "mail", "tier", "must", "undeclared", "S")
			case "relations":
				d[f] = object("app", "deps", "other", "App")
			default:
				d[f] = value(0)
			}
		}
		e := sink.Entity{Blueprint: pick("", "svc", "app"), Data: d}
		want, got := oldValidateEntity(bp, e), ValidateEntity(bp, e)
		if !slices.EqualFunc(got, want, func(a, b error) bool { return a.Error() == b.Error() }) {
			t.Fatalf("entity %d %#v:\n got %v\nwant %v", i, e, fmt.Sprint(got), fmt.Sprint(want))
		}
	}
}
