package table

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// colType is the logical type of a destination column: one of the declared
// spec types. Each backend maps it to a native type.
type colType uint8

const (
	typeString colType = iota + 1
	typeBool
	typeInt
	typeLong
	typeDouble
	typeDecimal
	typeJSON
	typeDatetime
	typeDate
)

// parseType reads a declared spec type (case-insensitive).
func parseType(s string) (colType, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "STRING":
		return typeString, true
	case "BOOLEAN":
		return typeBool, true
	case "INT":
		return typeInt, true
	case "LONG":
		return typeLong, true
	case "DOUBLE":
		return typeDouble, true
	case "DECIMAL":
		return typeDecimal, true
	case "JSON":
		return typeJSON, true
	case "UTC_DATETIME":
		return typeDatetime, true
	case "NAIVE_DATE":
		return typeDate, true
	}
	return 0, false
}

func (t colType) String() string {
	switch t {
	case typeString:
		return "STRING"
	case typeBool:
		return "BOOLEAN"
	case typeInt:
		return "INT"
	case typeLong:
		return "LONG"
	case typeDouble:
		return "DOUBLE"
	case typeDecimal:
		return "DECIMAL"
	case typeJSON:
		return "JSON"
	case typeDatetime:
		return "UTC_DATETIME"
	case typeDate:
		return "NAIVE_DATE"
	}
	return "UNKNOWN"
}

// valueKind is the JSON kind of a row value.
type valueKind uint8

const (
	kindNull valueKind = iota
	kindBool
	kindNumber
	kindString
	kindComposite
)

// classify reports the JSON kind of v and, for numbers, their JSON literal.
// Row values are JSON-shaped, but jq may hand back Go ints or big.Ints, so
// those are accepted as numbers too; anything else is encoded as JSON.
func classify(v any) (valueKind, string) {
	switch x := v.(type) {
	case nil:
		return kindNull, ""
	case string:
		return kindString, ""
	case bool:
		return kindBool, ""
	case json.Number:
		if validNumber(string(x)) {
			return kindNumber, string(x)
		}
		return kindString, ""
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return kindString, ""
		}
		return kindNumber, formatFloat(x, 64)
	case float32:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return kindString, ""
		}
		return kindNumber, formatFloat(f, 32)
	case int:
		return kindNumber, strconv.FormatInt(int64(x), 10)
	case int64:
		return kindNumber, strconv.FormatInt(x, 10)
	case int32:
		return kindNumber, strconv.FormatInt(int64(x), 10)
	case int16:
		return kindNumber, strconv.FormatInt(int64(x), 10)
	case int8:
		return kindNumber, strconv.FormatInt(int64(x), 10)
	case uint:
		return kindNumber, strconv.FormatUint(uint64(x), 10)
	case uint64:
		return kindNumber, strconv.FormatUint(x, 10)
	case uint32:
		return kindNumber, strconv.FormatUint(uint64(x), 10)
	case uint16:
		return kindNumber, strconv.FormatUint(uint64(x), 10)
	case uint8:
		return kindNumber, strconv.FormatUint(uint64(x), 10)
	case *big.Int:
		if x == nil {
			return kindNull, ""
		}
		return kindNumber, x.String()
	}
	return kindComposite, ""
}

// stringOf renders a non-composite value as text: strings as they are,
// numbers as their literal, booleans as true/false.
func stringOf(v any, k valueKind, num string) string {
	switch k {
	case kindString:
		if s, ok := v.(string); ok {
			return s
		}
		if n, ok := v.(json.Number); ok {
			return string(n)
		}
		switch f := v.(type) {
		case float64:
			return strconv.FormatFloat(f, 'g', -1, 64)
		case float32:
			return strconv.FormatFloat(float64(f), 'g', -1, 32)
		}
	case kindNumber:
		return num
	case kindBool:
		if v.(bool) {
			return "true"
		}
		return "false"
	}
	return ""
}

// formatFloat formats like encoding/json, so a float and the json.Number it
// came from render the same.
func formatFloat(f float64, bits int) string {
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			fmtc = 'e'
		}
	}
	b := strconv.AppendFloat(nil, f, fmtc, -1, bits)
	if fmtc == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

// validNumber reports whether s is a JSON number literal.
func validNumber(s string) bool {
	i, n := 0, len(s)
	if i < n && s[i] == '-' {
		i++
	}
	if i == n {
		return false
	}
	switch {
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < n && s[i] == '.' {
		i++
		j := i
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return exponentEnds(s, i)
}

// exponentEnds reports whether s from i is an optional exponent
// ([eE][+-]?digits) and nothing after it: the tail of a number, as JSON
// and SQLite's numeric affinity both write it.
func exponentEnds(s string, i int) bool {
	n := len(s)
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < n && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == n
}

// isIntegerLiteral reports whether a valid JSON number has no fraction or
// exponent.
func isIntegerLiteral(num string) bool {
	return !strings.ContainsAny(num, ".eE")
}

// numberOf returns the JSON number literal a value stands for: a number, or
// a string holding a JSON number.
func numberOf(v any, k valueKind, num string) (string, bool) {
	switch k {
	case kindNumber:
		return num, true
	case kindString:
		if s, ok := v.(string); ok && validNumber(s) {
			return s, true
		}
	}
	return "", false
}

// toInt64 converts a value to an integer without loss: integral numbers,
// numbers like 3.0 or 1e3, and strings holding a canonical integer ("42",
// not "042", so identifiers with leading zeros are never mangled).
func toInt64(v any, k valueKind, num string) (int64, bool) {
	switch k {
	case kindNumber:
		if isIntegerLiteral(num) {
			n, err := strconv.ParseInt(num, 10, 64)
			return n, err == nil
		}
		// The literal must be its float exactly: 1.0000000000000000001,
		// 1e-400 and 9007199254740993.0 have integral floats (1, 0, 2^53)
		// but are not those integers.
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 || !exactFloat(num) {
			return 0, false
		}
		return int64(f), true
	case kindString:
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != s {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// toFloat converts a value to a finite float64.
func toFloat(v any, k valueKind, num string) (float64, bool) {
	lit, ok := numberOf(v, k, num)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(lit, 64)
	return f, err == nil
}

// exactFloat reports whether a JSON number literal survives a float64: it
// parses, and the float's shortest form has the same value (so 0.1 does,
// while 9007199254740993, 0.1000000000000000000001 and 1e-400 do not).
func exactFloat(lit string) bool {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	back := strconv.FormatFloat(f, 'g', -1, 64)
	if back == lit {
		return true
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		// big.Rat would build 10^exp: bound it (past it no float is exact
		// anyway, bar zeros, which DECIMAL holds as well).
		if e, err := strconv.Atoi(lit[i+1:]); err != nil || e > 400 || e < -400 {
			return false
		}
	}
	a, ok1 := new(big.Rat).SetString(lit)
	b, ok2 := new(big.Rat).SetString(back)
	return ok1 && ok2 && a.Cmp(b) == 0
}

// datetimeLayouts are the accepted UTC_DATETIME inputs; a value without a zone
// is taken as UTC. Fractional seconds are accepted after the seconds by
// time.Parse even though the layouts do not show them.
var datetimeLayouts = [...]string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
	"2006-01-02 15:04:05Z07",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// datetimeFormat is how UTC_DATETIME values are stored as text: UTC, fixed
// microsecond width, so text order is time order (SQLite compares text).
const datetimeFormat = "2006-01-02T15:04:05.000000Z"

func parseDatetime(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' {
		return time.Time{}, false
	}
	for _, l := range datetimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			if y := t.UTC().Year(); y < 1 || y > 9999 {
				return time.Time{}, false
			}
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// pastMicros reports whether a datetime's fraction of a second has a
// non-zero digit past the sixth: both databases keep microseconds, so
// such a time (.1234567, as .NET and Azure DevOps give) is stored cut (see
// plan: a key column widens instead).
func pastMicros(s string) bool {
	const frac = len("2006-01-02T15:04:05")
	if len(s) <= frac || s[frac] != '.' && s[frac] != ',' {
		return false
	}
	for i := frac + 1; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i > frac+6 && s[i] != '0' {
			return true
		}
	}
	return false
}

// subMicros reports a datetime string past the microsecond (pastMicros).
func subMicros(v any) bool {
	s, ok := v.(string)
	if !ok || !pastMicros(s) {
		return false
	}
	_, ok = parseDatetime(s)
	return ok
}

func parseDate(s string) bool {
	if len(s) != 10 || s[4] != '-' {
		return false
	}
	t, err := time.Parse("2006-01-02", s)
	// Year 0 parses, but PostgreSQL's DATE has none: it would fail the batch.
	return err == nil && t.Year() >= 1
}

// fits reports whether v can be stored in a column of type t without losing
// anything.
func fits(t colType, v any) bool {
	k, num := classify(v)
	if k == kindNull {
		return true
	}
	switch t {
	case typeString, typeJSON:
		return true
	case typeBool:
		if k == kindBool {
			return true
		}
		s, ok := v.(string)
		return ok && (s == "true" || s == "false")
	case typeInt:
		n, ok := toInt64(v, k, num)
		return ok && n >= math.MinInt32 && n <= math.MaxInt32
	case typeLong:
		_, ok := toInt64(v, k, num)
		return ok
	case typeDouble:
		lit, ok := numberOf(v, k, num)
		return ok && exactFloat(lit)
	case typeDecimal:
		_, ok := numberOf(v, k, num)
		return ok
	case typeDatetime:
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, ok = parseDatetime(s)
		return ok
	case typeDate:
		s, ok := v.(string)
		return ok && parseDate(s)
	}
	return false
}

// infer picks the type of a new, undeclared column from its first non-null
// value.
func infer(v any) colType {
	k, num := classify(v)
	switch k {
	case kindBool:
		return typeBool
	case kindNumber:
		if isIntegerLiteral(num) {
			if _, err := strconv.ParseInt(num, 10, 64); err == nil {
				return typeLong
			}
			return typeDecimal
		}
		if exactFloat(num) {
			return typeDouble
		}
		return typeDecimal
	case kindComposite:
		return typeJSON
	}
	return typeString
}

// widen returns the narrowest type above t that holds v (which does not fit
// t): numbers grow INT -> LONG -> DECIMAL and DOUBLE -> DECIMAL, objects and
// arrays move to JSON, everything else to STRING, which holds any value.
func widen(t colType, v any) colType {
	k, _ := classify(v)
	if k == kindComposite {
		if t == typeString || t == typeJSON {
			return typeString // JSON that jsonb cannot hold: its text
		}
		return typeJSON
	}
	switch t {
	case typeInt, typeLong:
		if t == typeInt && fits(typeLong, v) {
			return typeLong
		}
		if k == kindNumber {
			// DECIMAL, not DOUBLE: it keeps both the integers already
			// stored and the fraction exactly.
			return typeDecimal
		}
	case typeDouble:
		if k == kindNumber {
			return typeDecimal
		}
	}
	return typeString
}

// conv holds the per-backend knobs of value conversion.
type conv struct {
	text bool // every value as text (PostgreSQL COPY into a text staging table)
	pg   bool // strip NUL and invalid UTF-8, which PostgreSQL rejects
	buf  []byte
	// altered is set by value when the stored text is not the given one
	// (NUL dropped, invalid UTF-8 replaced); the caller warns and clears it.
	altered bool
}

// badText reports whether a string in v (object keys too) holds invalid
// UTF-8, or with nul a NUL byte: text that JSON, or PostgreSQL, cannot
// store as it is.
func badText(v any, nul bool) bool {
	switch x := v.(type) {
	case string:
		return !utf8.ValidString(x) || nul && strings.IndexByte(x, 0) >= 0
	case map[string]any:
		for k, e := range x {
			if badText(k, nul) || badText(e, nul) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if badText(e, nul) {
				return true
			}
		}
	}
	return false
}

// value converts v, which fits t, into a driver argument.
func (c *conv) value(t colType, v any) any {
	k, num := classify(v)
	if k == kindNull {
		return nil
	}
	switch t {
	case typeBool:
		b := false
		switch x := v.(type) {
		case bool:
			b = x
		case string:
			b = x == "true"
		}
		if c.text {
			if b {
				return "true"
			}
			return "false"
		}
		return b
	case typeInt, typeLong:
		n, _ := toInt64(v, k, num)
		if c.text {
			return strconv.FormatInt(n, 10)
		}
		return n
	case typeDouble:
		if c.text {
			lit, _ := numberOf(v, k, num)
			return lit
		}
		f, _ := toFloat(v, k, num)
		return f
	case typeDecimal:
		lit, _ := numberOf(v, k, num)
		return lit
	case typeDatetime:
		s, _ := v.(string)
		tm, _ := parseDatetime(s)
		return tm.Format(datetimeFormat)
	case typeDate:
		s, _ := v.(string)
		return s
	case typeJSON:
		c.altered = c.altered || badText(v, c.pg)
		c.buf = appendJSON(c.buf[:0], v, c.pg)
		return string(c.buf)
	}
	// STRING and anything unknown: text.
	if k == kindComposite {
		c.altered = c.altered || badText(v, c.pg)
		c.buf = appendJSON(c.buf[:0], v, c.pg)
		return string(c.buf)
	}
	if s, ok := v.(string); ok {
		if c.pg {
			if cs := cleanPG(s); cs != s {
				c.altered = true
				return cs
			}
		}
		return v // already boxed: no new allocation
	}
	s := stringOf(v, k, num)
	if c.pg {
		s = cleanPG(s)
	}
	return s
}

// StoredValue is v as a column declared typ (a spec type: "UTC_DATETIME",
// "DOUBLE", …) stores it, for telling which values are one key: a time as
// its UTC instant to the microsecond (text); a number as a json.Number:
// an INT's or LONG's integer, a DOUBLE's float in its shortest form, a
// DECIMAL's literal (whose value the column compares; "2.0" gives 2.0); a
// STRING as its text (a number as its literal, so 2.0 and 2 stay apart),
// a BOOLEAN as "true" or "false". ok is false when Write would not store
// v converted: a JSON or unknown type, or a value that does not fit typ,
// or a time past the microsecond, for which the column widens to STRING
// and keeps the value as given (see plan).
func StoredValue(typ string, v any) (stored any, ok bool) {
	t, ok := parseType(typ)
	if !ok || t == typeJSON || v == nil || !fits(t, v) || t == typeDatetime && subMicros(v) {
		return nil, false
	}
	k, num := classify(v)
	switch t {
	case typeDouble:
		// Stored as a float: two literals of one float are one value,
		// and so are -0 and 0.
		f, _ := toFloat(v, k, num)
		if f == 0 {
			f = 0
		}
		return json.Number(formatFloat(f, 64)), true
	case typeInt, typeLong, typeDecimal:
		s, _ := (&conv{text: true}).value(t, v).(string)
		return json.Number(s), true
	}
	s, _ := (&conv{text: true}).value(t, v).(string)
	return s, true
}

// StoredKeyDatetime is v as a PostgreSQL timestamp column with digits
// digits of the second stores it, as text for telling keys apart: its
// instant (local: its wall clock, the offset given ignored, as a column
// without a zone does) to the microsecond, rounded to the nearest as
// PostgreSQL reads it, then to digits, half away from 2000-01-01. ok is
// false for a value that is not a time ferry reads.
func StoredKeyDatetime(v any, digits int, local bool) (string, bool) {
	s, ok := v.(string)
	if !ok || len(s) < 10 || s[4] != '-' {
		return "", false
	}
	for _, l := range datetimeLayouts {
		tm, err := time.Parse(l, s)
		if err != nil {
			continue
		}
		if local {
			y, mo, d := tm.Date()
			h, mi, sec := tm.Clock()
			tm = time.Date(y, mo, d, h, mi, sec, tm.Nanosecond(), time.UTC)
		}
		tm = tm.UTC()
		if y := tm.Year(); y < 1 || y > 9999 {
			return "", false
		}
		// Microseconds since PostgreSQL's epoch, the nanoseconds rounded
		// half to even (rint).
		epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		sec := tm.Unix() - epoch.Unix()
		ns := int64(tm.Nanosecond())
		us, rem := ns/1000, ns%1000
		if rem > 500 || rem == 500 && us%2 == 1 {
			us++
		}
		us += sec * 1_000_000
		if digits >= 0 && digits < 6 {
			unit := int64(math.Pow10(6 - digits))
			if us >= 0 {
				us = (us + unit/2) / unit * unit
			} else {
				us = -((-us + unit/2) / unit * unit)
			}
		}
		// Back to a time: the span can pass time.Duration's 292 years.
		secs, frac := us/1_000_000, us%1_000_000
		if frac < 0 {
			secs, frac = secs-1, frac+1_000_000
		}
		return time.Unix(epoch.Unix()+secs, frac*1000).UTC().Format("2006-01-02T15:04:05.000000"), true
	}
	return "", false
}
