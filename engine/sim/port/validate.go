package port

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits and patterns from Port's OpenAPI document (testdata/port-schemas.json
// holds the source facts; schema_facts_test.go keeps these in step). Go's RE2
// has no lookahead, so the "not exactly . or .." part of the identifier
// patterns is checked separately.
const (
	maxEntityID             = 1000
	maxBlueprintID          = 100
	maxKey                  = 100
	maxTitle                = 100
	maxBlueprintDescription = 200
	maxBulkEntities         = 20
	maxBulkDelete           = 100
	maxSearchLimit          = 1000
	defaultSearchLimit      = 200

	entityIDPattern    = `^[\p{L}0-9@_.+:\\/=-]+$`
	blueprintIDPattern = `^[\p{L}0-9@_.+:\\/-]+$`
	keyPattern         = `^[A-Za-z0-9@_=\\-]+$`
	mirrorPathPattern  = `^(?:[A-Za-z0-9@_=\-$]+\.)+?(\w|\$|@|-)*?[^\.]+$`
)

// Compiled once; never modified.
var (
	entityIDRe    = regexp.MustCompile(entityIDPattern)
	blueprintIDRe = regexp.MustCompile(blueprintIDPattern)
	keyRe         = regexp.MustCompile(keyPattern)
	mirrorPathRe  = regexp.MustCompile(mirrorPathPattern)

	propertyTypes   = []string{"string", "number", "boolean", "object", "array"}
	propertyFormats = []string{"date-time", "url", "email", "idn-email", "ipv4", "ipv6", "markdown", "yaml",
		"user", "blueprints", "team", "timer", "proto", "labeled-url"}
	itemFormats = []string{"date-time", "url", "email", "idn-format", "ipv4", "ipv6", "markdown", "yaml",
		"user", "team", "timer", "proto", "labeled-url"}
	propertySpecs = []string{"open-api", "embedded-url", "async-api"}
)

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func checkID(id string, re *regexp.Regexp, maxLen int) error {
	switch {
	case id == "":
		return errors.New("must not be empty")
	case id == "." || id == "..":
		return fmt.Errorf("must not be %q", id)
	case runeLen(id) > maxLen:
		return fmt.Errorf("must be at most %d characters", maxLen)
	case !re.MatchString(id):
		return fmt.Errorf("%q must match pattern %s", id, re)
	}
	return nil
}

func checkEntityID(id string) error    { return checkID(id, entityIDRe, maxEntityID) }
func checkBlueprintID(id string) error { return checkID(id, blueprintIDRe, maxBlueprintID) }

func checkKey(k string) error {
	if runeLen(k) > maxKey {
		return fmt.Errorf("must be at most %d characters", maxKey)
	}
	if !keyRe.MatchString(k) {
		return fmt.Errorf("must match pattern %s", keyRe)
	}
	return nil
}

// checkValue checks an entity property value against its definition. null is
// accepted for any property (it clears the value); required-ness is checked
// by the caller.
func checkValue(d propDef, v any) error {
	if v == nil {
		return nil
	}
	switch d.typ {
	case "string":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("must be string, got %s", jsonType(v))
		}
		if d.minLength != nil && runeLen(s) < *d.minLength {
			return fmt.Errorf("must be at least %d characters", *d.minLength)
		}
		if d.maxLength != nil && runeLen(s) > *d.maxLength {
			return fmt.Errorf("must be at most %d characters", *d.maxLength)
		}
		if d.pattern != "" {
			if re, err := regexp.Compile(d.pattern); err == nil && !re.MatchString(s) {
				return fmt.Errorf("must match pattern %s", d.pattern)
			}
		}
		if err := checkFormat(d.format, s); err != nil {
			return err
		}
	case "number":
		f, ok := number(v)
		if !ok {
			return fmt.Errorf("must be number, got %s", jsonType(v))
		}
		if d.minimum != nil && f < *d.minimum {
			return fmt.Errorf("must be >= %v", *d.minimum)
		}
		if d.maximum != nil && f > *d.maximum {
			return fmt.Errorf("must be <= %v", *d.maximum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("must be boolean, got %s", jsonType(v))
		}
	case "object":
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("must be object, got %s", jsonType(v))
		}
	case "array":
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("must be array, got %s", jsonType(v))
		}
		if d.items != nil {
			for i, x := range list {
				if x == nil {
					return fmt.Errorf("/%d must be %s, got null", i, d.items.typ)
				}
				if err := checkValue(*d.items, x); err != nil {
					return fmt.Errorf("/%d %w", i, err)
				}
			}
		}
	}
	if len(d.enum) > 0 && !slices.ContainsFunc(d.enum, func(e any) bool { return jsonEqual(e, v) }) {
		return errors.New("must be equal to one of the allowed values")
	}
	return nil
}

// checkFormat enforces the formats whose meaning is unambiguous; the others
// (markdown, yaml, user, team, …) are free strings here.
func checkFormat(format, s string) error {
	switch format {
	case "date-time", "timer":
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("must match format %q", format)
		}
	case "url":
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("must match format %q", format)
		}
	case "email", "idn-email":
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s {
			return fmt.Errorf("must match format %q", format)
		}
	case "ipv4":
		if ip := net.ParseIP(s); ip == nil || ip.To4() == nil {
			return fmt.Errorf("must match format %q", format)
		}
	case "ipv6":
		if ip := net.ParseIP(s); ip == nil || ip.To4() != nil {
			return fmt.Errorf("must match format %q", format)
		}
	}
	return nil
}

// asDoubles copies a property map with every integer a double cannot
// hold exactly (past 2^53) replaced by the double nearest to it, written
// as JavaScript writes it: Port keeps numbers as doubles and answers
// 9007199254740992 for 9007199254740993, at any depth. Other values are
// kept as sent.
func asDoubles(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			return x
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return x
		}
		f, acc := new(big.Float).SetInt(n).Float64()
		if acc == big.Exact || math.IsInf(f, 0) {
			return x // out of range: the property check refuses it
		}
		return json.Number(jsInteger(f))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = asDoubles(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = asDoubles(e)
		}
		return out
	}
	return v
}

// jsInteger writes an integral double as JavaScript's JSON.stringify
// does: its shortest digits that read back as it, padded with zeros below
// 1e21 (18446744073709552000), in exponent form from there (1e+21).
func jsInteger(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde+XX
	if math.Abs(f) >= 1e21 {
		return e
	}
	mant, exp, _ := strings.Cut(e, "e")
	n, _ := strconv.Atoi(exp)
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	digits := strings.Replace(mant, ".", "", 1)
	if n+1 < len(digits) {
		return strconv.FormatFloat(f, 'f', -1, 64) // not integral
	}
	return sign + digits + strings.Repeat("0", n+1-len(digits))
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
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
	case []any:
		return "array"
	}
	if _, ok := number(v); ok {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if fa, ok := number(a); ok {
		if fb, ok := number(b); ok {
			return fa == fb
		}
	}
	return string(x) == string(y)
}
