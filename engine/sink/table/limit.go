package table

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// limitKind names how a column's native type, made by a user or an
// earlier spec version rather than by ferry, holds less than the type
// ferry reads it as: the database would store a value changed (rounded,
// cut, converted) without an error.
type limitKind uint8

const (
	limitNone      limitKind = iota
	limitNumeric             // PostgreSQL numeric(p,s): rounds to s digits
	limitReal                // PostgreSQL real: rounds to a float32
	limitTime                // PostgreSQL timestamp(p): rounds the second to p digits
	limitChars               // PostgreSQL varchar(n), char(n): an explicit cast cuts to n characters
	limitSQLiteNum           // SQLite INTEGER, REAL or NUMERIC affinity: numeric-looking text becomes an int64 or a float64
	limitClock               // PostgreSQL time(p), timetz(p): rounds the second to p digits
	limitBits                // PostgreSQL bit(n): an explicit cast cuts or pads with zeros to n bits
	limitVarBits             // PostgreSQL bit varying(n): an explicit cast cuts to n bits
)

// limit is a column's native type's limit (column.limit): the values it
// would store changed are refused, one row at a time, before the write.
type limit struct {
	kind limitKind
	p, s int // numeric's precision and scale; timestamp's digits; characters
}

// pgLimit is the limit of a PostgreSQL column of type native (as
// format_type gives it).
func pgLimit(native string) limit {
	if ps, ok := strings.CutPrefix(native, "numeric("); ok {
		p, s, _ := strings.Cut(strings.TrimSuffix(ps, ")"), ",")
		pn, err1 := strconv.Atoi(p)
		sn, err2 := strconv.Atoi(s)
		if err1 == nil && err2 == nil {
			return limit{kind: limitNumeric, p: pn, s: sn}
		}
		return limit{}
	}
	if native == "real" {
		return limit{kind: limitReal}
	}
	if native == "timestamp without time zone" {
		// timestamptz, ferry's own UTC_DATETIME, cuts past the microsecond
		// with a warning (see plan); a timestamp ferry did not make says
		// nothing, so it refuses.
		return limit{kind: limitTime, p: 6}
	}
	if p, ok := strings.CutPrefix(native, "timestamp("); ok {
		if i := strings.IndexByte(p, ')'); i > 0 {
			if n, err := strconv.Atoi(p[:i]); err == nil {
				return limit{kind: limitTime, p: n}
			}
		}
		return limit{}
	}
	if native == "time without time zone" || native == "time with time zone" {
		return limit{kind: limitClock, p: 6}
	}
	if p, ok := strings.CutPrefix(native, "time("); ok {
		if i := strings.IndexByte(p, ')'); i > 0 {
			if n, err := strconv.Atoi(p[:i]); err == nil {
				return limit{kind: limitClock, p: n}
			}
		}
		return limit{}
	}
	for _, l := range [...]struct {
		prefix string
		kind   limitKind
	}{{"character varying(", limitChars}, {"character(", limitChars}, {"bit varying(", limitVarBits}, {"bit(", limitBits}} {
		if n, ok := strings.CutPrefix(native, l.prefix); ok {
			if n, err := strconv.Atoi(strings.TrimSuffix(n, ")")); err == nil {
				return limit{kind: l.kind, p: n}
			}
		}
	}
	return limit{}
}

// sqliteLimit is the limit of a SQLite column declared decl that ferry did
// not make, by SQLite's affinity rules: INTEGER, REAL and NUMERIC
// affinity store text that looks like a number as one.
func sqliteLimit(decl string) limit {
	u := strings.ToUpper(decl)
	switch {
	case strings.Contains(u, "INT"):
	case strings.Contains(u, "CHAR"), strings.Contains(u, "CLOB"), strings.Contains(u, "TEXT"),
		strings.Contains(u, "BLOB"), u == "":
		return limit{}
	}
	return limit{kind: limitSQLiteNum}
}

// holds reports whether the column stores s, the text ferry sends, as the
// same value. Text the type cannot read at all is the database's to
// refuse (it does, with an error).
func (l limit) holds(s string) bool {
	switch l.kind {
	case limitNumeric:
		return !validNumber(s) || numericHolds(s, l.p, l.s)
	case limitReal:
		return !validNumber(s) || exactFloatBits(s, 32)
	case limitTime:
		return fracDigits(s) <= l.p
	case limitChars:
		return utf8.RuneCountInString(s) <= l.p
	case limitClock:
		return clockFracDigits(s) <= l.p
	case limitBits:
		return bitLength(s) == l.p
	case limitVarBits:
		return bitLength(s) <= l.p
	case limitSQLiteNum:
		if !sqliteNumber(s) {
			return true // kept as text
		}
		if !validNumber(s) {
			return false // "007", " 5", "+5", ".5": stored as a number, not as given
		}
		if isIntegerLiteral(s) {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				return true
			}
		}
		return exactFloat(s)
	}
	return true
}

// numericHolds reports whether numeric(p,s) holds the JSON number lit
// without rounding or overflow: no non-zero digit below 10^-s, none at or
// above 10^(p-s). Counted on the literal's digits, so no exponent, however
// large, builds a number.
func numericHolds(lit string, p, s int) bool {
	mant, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(lit[i+1:])
		if err != nil || e > 1<<30 || e < -(1<<30) {
			return false // far past any numeric(p,s); bounded so the sums below cannot overflow
		}
		mant, exp = lit[:i], e
	}
	mant = strings.TrimPrefix(mant, "-")
	whole, frac, _ := strings.Cut(mant, ".")
	digits := whole + frac
	first := strings.IndexFunc(digits, func(r rune) bool { return r != '0' })
	if first < 0 {
		return true // zero
	}
	last := strings.LastIndexFunc(digits, func(r rune) bool { return r != '0' })
	// Digit i of digits stands for 10^(len(whole)-1-i+exp).
	msd := len(whole) - 1 - first + exp
	lsd := len(whole) - 1 - last + exp
	return lsd >= -s && msd < p-s
}

// fracDigits is the number of digits of a time's fraction of a second, up
// to its last non-zero one; 0 for text that is not a time ferry reads.
func fracDigits(s string) int {
	if _, ok := parseDatetime(s); !ok {
		return 0
	}
	const frac = len("2006-01-02T15:04:05")
	if len(s) <= frac || s[frac] != '.' && s[frac] != ',' {
		return 0
	}
	return significantDigits(s, frac)
}

// clockFracDigits is fracDigits for a time of day ("15:04:05.678",
// with or without a zone), or for a datetime, whose time PostgreSQL takes.
func clockFracDigits(s string) int {
	if _, ok := parseDatetime(s); ok {
		return fracDigits(s)
	}
	const frac = len("15:04:05")
	if len(s) <= frac || s[2] != ':' || s[5] != ':' || s[frac] != '.' {
		return 0
	}
	return significantDigits(s, frac)
}

// significantDigits counts the digits of the fraction of a second after
// s[frac] (its point) up to the last that is not 0: 10:00:00.500 has 1.
func significantDigits(s string, frac int) int {
	n := 0
	for i := frac + 1; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if s[i] != '0' {
			n = i - frac
		}
	}
	return n
}

// bitLength is the bits a bit string's text gives: one a digit, or four
// a hex digit after an x ("x1F"). The database refuses other characters.
func bitLength(s string) int {
	if len(s) > 0 && (s[0] == 'x' || s[0] == 'X') {
		return 4 * (len(s) - 1)
	}
	return len(s)
}

// sqliteNumber reports whether SQLite's numeric affinity takes s for a
// number: optional blanks, an optional sign, digits with at most one
// point (at least one digit), an optional exponent.
func sqliteNumber(s string) bool {
	s = strings.Trim(s, " \t\n\f\r\v")
	i, n := 0, len(s)
	if i < n && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < n && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < n && s[i] == '.' {
		i++
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	return digits > 0 && exponentEnds(s, i)
}

// exactFloatBits is exactFloat for a float of bits bits (32: real).
func exactFloatBits(lit string, bits int) bool {
	if bits == 64 {
		return exactFloat(lit)
	}
	f, err := strconv.ParseFloat(lit, bits)
	if err != nil {
		return false
	}
	back := strconv.FormatFloat(f, 'g', -1, bits)
	if back == lit {
		return true
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		if e, err := strconv.Atoi(lit[i+1:]); err != nil || e > 400 || e < -400 {
			return false
		}
	}
	a, ok1 := new(big.Rat).SetString(lit)
	b, ok2 := new(big.Rat).SetString(back)
	return ok1 && ok2 && a.Cmp(b) == 0
}

// checkLimit refuses arg, the value a row gives column ci of t as ferry
// sends it, when the column's native type would store it changed; exempt
// is true for key columns that keep their type's rounding.
func checkLimit(t *tbl, ci int, arg any, exempt []bool) error {
	c := &t.cols[ci]
	if c.limit.kind == limitNone || exempt[ci] {
		return nil
	}
	s, ok := arg.(string)
	if !ok || c.limit.holds(s) {
		return nil
	}
	typ := c.native
	if typ == "" {
		typ = c.limit.String()
	}
	return fmt.Errorf("column %q, of type %s, cannot hold %s as given (it would store it %s): the row is not written", c.name, typ, quoteCut(s), c.limit.change())
}

func (l limit) String() string {
	if l.kind == limitNumeric {
		return "numeric(" + strconv.Itoa(l.p) + "," + strconv.Itoa(l.s) + ")"
	}
	return "?"
}

// change says what the column would do to a value it cannot hold.
func (l limit) change() string {
	switch l.kind {
	case limitNumeric:
		return "rounded to " + strconv.Itoa(l.s) + " digits after the point, or refused for overflow"
	case limitReal:
		return "rounded to a float32"
	case limitTime:
		return "rounded to " + strconv.Itoa(l.p) + " digits of the second"
	case limitChars:
		return "cut to " + strconv.Itoa(l.p) + " characters"
	case limitSQLiteNum:
		return "as a number, an int64 or a float64"
	case limitClock:
		return "rounded to " + strconv.Itoa(l.p) + " digits of the second"
	case limitBits:
		return "cut or padded with zeros to " + strconv.Itoa(l.p) + " bits"
	case limitVarBits:
		return "cut to " + strconv.Itoa(l.p) + " bits"
	}
	return "changed"
}

// quoteCut quotes a value for a message, cut past 100 bytes.
func quoteCut(s string) string {
	if len(s) <= 100 {
		return strconv.Quote(s)
	}
	cut := 100
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
