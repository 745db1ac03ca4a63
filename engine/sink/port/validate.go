package port

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"

	"github.com/ferry-etl/ferry/engine/sink"
)

// Port's identifier rules (OpenAPI patterns; RE2 has no lookahead, so "not
// exactly . or .." is checked apart). testdata/port-schemas.json holds the
// source facts and validate_test.go keeps these in step with them.
const (
	entityIDPattern    = `^[\p{L}0-9@_.+:\\/=-]+$`
	blueprintIDPattern = `^[\p{L}0-9@_.+:\\/-]+$`
	maxEntityID        = 1000
	maxBlueprintID     = 100
)

// Compiled once; never modified.
var (
	entityIDRe    = regexp.MustCompile(entityIDPattern)
	blueprintIDRe = regexp.MustCompile(blueprintIDPattern)
	propertyTypes = []string{"string", "number", "boolean", "object", "array"}
)

// entityKeys are an entity's fields, at the key* indexes.
var entityKeys = [...]string{"identifier", "title", "icon", "team", "properties", "relations"}

const (
	keyIdentifier = iota
	keyTitle
	keyIcon
	keyTeam
	keyProperties
	keyRelations
)

// entityField is the index of k in entityKeys, -1 if it is none.
func entityField(k string) int {
	switch k {
	case "identifier":
		return keyIdentifier
	case "title":
		return keyTitle
	case "icon":
		return keyIcon
	case "team":
		return keyTeam
	case "properties":
		return keyProperties
	case "relations":
		return keyRelations
	}
	return -1
}

// FieldError is one validation problem of an entity.
type FieldError struct {
	Field   string // e.g. "identifier", "properties.createdAt", "relations.app"
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func checkID(id string, re *regexp.Regexp, symbols string, maxLen int) error {
	switch {
	case id == "":
		return errors.New("must not be empty")
	case id == "." || id == "..":
		return fmt.Errorf("must not be %q", id)
	case len(id) > maxLen && utf8.RuneCountInString(id) > maxLen: // no longer in runes than in bytes
		return fmt.Errorf("must be at most %d characters", maxLen)
	case !asciiID(id, symbols) && !re.MatchString(id):
		return fmt.Errorf("%q has characters outside Unicode letters, digits and the allowed symbols", id)
	}
	return nil
}

// asciiID reports whether id is made only of ASCII letters, digits and
// symbols: what the pattern allows, decided without the regexp for the
// usual identifier (every entity is checked; false sends it to the regexp).
func asciiID(id, symbols string) bool {
	for i := range len(id) {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < utf8.RuneSelf && strings.IndexByte(symbols, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// The symbols of entityIDPattern and blueprintIDPattern.
const (
	entityIDSymbols    = `@_.+:\/=-`
	blueprintIDSymbols = `@_.+:\/-`
)

func checkEntityID(id string) error { return checkID(id, entityIDRe, entityIDSymbols, maxEntityID) }
func checkBlueprintID(id string) error {
	return checkID(id, blueprintIDRe, blueprintIDSymbols, maxBlueprintID)
}

// ValidateEntity checks an entity offline against its blueprint, the way
// Port will: allowed top-level keys, identifier rules, declared and
// type-correct properties (formats date-time, url and email checked; enum),
// required properties, declared relations with the right shape (a string
// or null unless many, a list of identifiers if many; search-query objects
// pass unchecked) and required relations; and, beyond Port's own checks,
// what Port would not hold as mapped: numbers out of a double's range,
// integers a double cannot hold exactly (past 2^53), and
// strings or keys that are not valid UTF-8 or hold U+0000, at any depth. It does not
// check that relation targets exist. The result is nil when the entity is
// valid.
func ValidateEntity(bp *Blueprint, e sink.Entity) []error {
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
	// The entity's fields are read in the same one pass (not looked up one
	// by one: every entity is checked).
	var field [len(entityKeys)]any
	var has [len(entityKeys)]bool
	from := len(errs)
	for k, v := range e.Data {
		i := entityField(k)
		if i < 0 {
			add(k, "unknown entity field (want one of %v)", entityKeys)
			continue
		}
		field[i], has[i] = v, true
	}
	sortFields(errs[from:])
	switch id := field[keyIdentifier].(type) {
	case string:
		if err := checkEntityID(id); err != nil {
			add("identifier", "%v", err)
		}
	case nil:
		add("identifier", "is required")
	default:
		add("identifier", "must be a string, got %s", jsonType(id))
	}
	for _, i := range [...]int{keyTitle, keyIcon} {
		if v, k := field[i], entityKeys[i]; has[i] {
			if s, ok := v.(string); !ok {
				add(k, "must be a string, got %s", jsonType(v))
			} else if err := checkUTF8(s); err != nil {
				add(k, "%v", err)
			}
		}
	}
	if v, ok := field[keyTeam], has[keyTeam]; ok && !isStringOrStrings(v) {
		add("team", "must be a string or a list of strings")
	} else if err := checkNested(v); ok && err != nil {
		add("team", "%v", err)
	}

	props, ok := asObject(field[keyProperties])
	if !ok {
		add("properties", "must be an object, got %s", jsonType(field[keyProperties]))
	}
	from = len(errs)
	for k, v := range props {
		def, ok := bp.Properties[k]
		if !ok {
			add("properties."+k, "is not declared in blueprint %q", bp.Identifier)
			continue
		}
		if err := checkValue(def, v); err != nil {
			add("properties."+k, "%v", err)
		}
	}
	sortFields(errs[from:])
	for _, k := range bp.Required {
		if props[k] == nil {
			add("properties."+k, "is required by blueprint %q", bp.Identifier)
		}
	}

	rels, ok := asObject(field[keyRelations])
	if !ok {
		add("relations", "must be an object, got %s", jsonType(field[keyRelations]))
	}
	from = len(errs)
	for k, v := range rels {
		def, ok := bp.Relations[k]
		if !ok {
			add("relations."+k, "is not declared in blueprint %q", bp.Identifier)
			continue
		}
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

// sortFields sorts errors (all *FieldError) by field, keeping the order of
// one field's own errors.
func sortFields(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int {
		return strings.Compare(a.(*FieldError).Field, b.(*FieldError).Field)
	})
}

func checkValue(d Property, v any) error {
	if v == nil {
		return nil
	}
	switch d.Type {
	case "string":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("must be a string, got %s", jsonType(v))
		}
		if err := checkUTF8(s); err != nil {
			return err
		}
		if err := checkFormat(d.Format, s); err != nil {
			return err
		}
	case "number":
		if err := checkDouble(v); err != nil {
			return err
		}
		if _, ok := jsonv.Float(v); !ok {
			return fmt.Errorf("must be a number, got %s", jsonType(v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("must be a boolean, got %s", jsonType(v))
		}
	case "object":
		if _, ok := asObject(v); !ok {
			return fmt.Errorf("must be an object, got %s", jsonType(v))
		}
		if err := checkNested(v); err != nil {
			return err
		}
	case "array":
		list, ok := asList(v)
		if !ok {
			return fmt.Errorf("must be an array, got %s", jsonType(v))
		}
		if err := checkNested(v); err != nil {
			return err
		}
		if d.Items != nil {
			for i, x := range list {
				if x == nil {
					return fmt.Errorf("item %d must be a %s, got null", i, d.Items.Type)
				}
				if err := checkValue(*d.Items, x); err != nil {
					return fmt.Errorf("item %d %w", i, err)
				}
			}
		}
	}
	if len(d.Enum) > 0 && !slices.ContainsFunc(d.Enum, func(e any) bool { return sameJSON(e, v) }) {
		return fmt.Errorf("must be one of %v", d.Enum)
	}
	return nil
}

// checkNested finds what in v, at any depth (an object or array
// property is sent as it is), Port would not hold as mapped: a number
// checkDouble refuses, a string or object key that is not valid UTF-8.
// The first problem in key order is named.
func checkNested(v any) error {
	if nestedOK(v) {
		return nil // the usual case, without sorting every object's keys
	}
	return nestedErr(v)
}

// nestedOK is checkNested's answer without the message.
func nestedOK(v any) bool {
	switch x := v.(type) {
	case string:
		return textOK(x)
	case map[string]any:
		for k, e := range x {
			if !textOK(k) || !nestedOK(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !nestedOK(e) {
				return false
			}
		}
	case []string:
		for _, e := range x {
			if !textOK(e) {
				return false
			}
		}
	default:
		return checkDouble(v) == nil
	}
	return true
}

func nestedErr(v any) error {
	switch x := v.(type) {
	case string:
		return checkUTF8(x)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if err := checkUTF8(k); err != nil {
				return fmt.Errorf("key %q %w", k, err)
			}
			if err := nestedErr(x[k]); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	case []any:
		for i, e := range x {
			if err := nestedErr(e); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
	case []string:
		for i, e := range x {
			if err := checkUTF8(e); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
	default:
		return checkDouble(v)
	}
	return nil
}

// checkUTF8 refuses a string Port would not hold as it is: one that is
// not valid UTF-8 (jq's @base64d can make one) — JSON cannot carry it,
// encoding writes U+FFFD for each bad byte, so Port would hold another
// string, and two object keys that differ only there would become one, a
// value lost — or one holding U+0000: JSON stores such as PostgreSQL's
// jsonb refuse \u0000 ("unsupported Unicode escape sequence"), and where
// Port keeps its entities is not documented, so sent, the entity's whole
// bulk request may fail or the string be stored otherwise. Identifiers and relation targets refuse it
// by their pattern.
func checkUTF8(s string) error {
	switch {
	case textOK(s):
		return nil
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8 (Port would get U+FFFD in its place)")
	}
	return errors.New(`holds U+0000 (NUL), which Port cannot store in text; remove it in the mapping (e.g. gsub("\\u0000"; ""))`)
}

// textOK is checkUTF8's answer without the message.
func textOK(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// checkDouble refuses a number beyond the range of a double (1e400), not
// a number at all (NaN), or an integer Port would answer as another
// (9007199254740993, past 2^53; 9007199254740993.0 and 9007199254740993e0
// too: an integer in any form): Port keeps numbers as doubles, so it
// would hold something else (infinity, null, a neighbouring integer),
// silently. Other values pass, decimals too (a double holds few exactly,
// and that is what a decimal number means in JSON).
func checkDouble(v any) error {
	var f float64
	switch x := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(x), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil // not a number literal: encoding reports it
		}
		if !math.IsInf(f, 0) && math.Abs(f) >= 1<<53 {
			// Finite: the exponent is small enough to read it exactly.
			if r, ok := new(big.Rat).SetString(string(x)); ok && r.IsInt() {
				return checkExactInt(r.Num())
			}
		}
	case *big.Int:
		f, _ = new(big.Float).SetInt(x).Float64()
		if !math.IsInf(f, 0) {
			return checkExactInt(x)
		}
	case int:
		return checkExactInt64(int64(x))
	case int64:
		return checkExactInt64(x)
	case uint64:
		if x > 1<<53 {
			return checkExactInt(new(big.Int).SetUint64(x))
		}
		return nil
	case float64:
		f = x
	case float32:
		f = float64(x)
	default:
		return nil
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		s := fmt.Sprint(v)
		if len(s) > 40 {
			s = s[:37] + "..."
		}
		return fmt.Errorf("number %s is not a finite double, the only numbers Port keeps", s)
	}
	return nil
}

// checkExactInt64 is checkExactInt for the integers jq and decoding give
// as int: those within ±2^53 are always exact.
func checkExactInt64(x int64) error {
	if -1<<53 <= x && x <= 1<<53 {
		return nil
	}
	return checkExactInt(big.NewInt(x))
}

// checkExactInt refuses an integer Port would answer as another: it
// answers the double nearest to it, as the integer when exact, else in
// that double's shortest digits (JavaScript's): 2^64+1 as
// 18446744073709552000. An integer written as those digits (2^64 as
// JavaScript and Go write it) is answered as itself, and passes.
func checkExactInt(n *big.Int) error {
	f, acc := new(big.Float).SetInt(n).Float64()
	if acc == big.Exact {
		return nil
	}
	port := strconv.FormatFloat(f, 'f', -1, 64)
	if m, ok := new(big.Int).SetString(port, 10); ok && m.Cmp(n) == 0 {
		return nil
	}
	return fmt.Errorf("integer %s is not exactly a double, the only numbers Port keeps: Port would hold %s; map it as a string (tostring) to keep it whole",
		n, port)
}

func checkFormat(format, s string) error {
	switch format {
	case "date-time":
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("must be an RFC 3339 date-time, got %q", s)
		}
	case "url":
		if u, err := url.Parse(s); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("must be an absolute URL, got %q", s)
		}
	case "email":
		if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
			return fmt.Errorf("must be an email address, got %q", s)
		}
	}
	return nil
}

// relationIDs returns the identifiers of a string or list relation value,
// and whether it was a list; ids is nil when v has another shape.
func relationIDs(v any) (ids []string, isList bool) {
	switch t := v.(type) {
	case string:
		return []string{t}, false
	case []string:
		return append([]string{}, t...), true
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, true
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func isStringOrStrings(v any) bool {
	if _, ok := v.(string); ok {
		return true
	}
	ids, isList := relationIDs(v)
	return isList && ids != nil
}

func asObject(v any) (map[string]any, bool) {
	if v == nil {
		return nil, true
	}
	m, ok := v.(map[string]any)
	return m, ok
}

func asList(v any) ([]any, bool) {
	switch t := v.(type) {
	case []any:
		return t, true
	case []string:
		out := make([]any, len(t))
		for i, s := range t {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any, []string:
		return "array"
	}
	if _, ok := jsonv.Float(v); ok {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

func sameJSON(a, b any) bool {
	if x, ok := jsonv.Float(a); ok {
		y, ok := jsonv.Float(b)
		return ok && x == y
	}
	x, err1 := jsonv.Marshal(a)
	y, err2 := jsonv.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
