package table

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"
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
	limitTime                // PostgreSQL timestamp(p): rounds the second to p digits; without time zone (local), drops an offset
	limitChars               // PostgreSQL varchar(n), char(n): an explicit cast cuts to n characters
	limitSQLiteNum           // SQLite INTEGER, REAL or NUMERIC affinity: numeric-looking text becomes an int64 or a float64
	limitClock               // PostgreSQL time(p), timetz(p): rounds the second to p digits; without time zone (local), drops an offset
	limitBits                // PostgreSQL bit(n): an explicit cast cuts or pads with zeros to n bits
	limitVarBits             // PostgreSQL bit varying(n): an explicit cast cuts to n bits
	limitMoney               // PostgreSQL money: rounds to the currency's p fraction digits
	limitInterval            // PostgreSQL interval(p) and interval fields: rounds the second to p digits, cuts below its last field
)

// The last field an interval column keeps (limit.s of limitInterval):
// PostgreSQL cuts what lies below it. ivSecond keeps all, to p digits.
const (
	ivSecond = iota
	ivMinute
	ivHour
	ivDay
	ivMonth
	ivYear
)

// limit is a column's native type's limit (column.limit): the values it
// would store changed are refused, one row at a time, before the write.
type limit struct {
	kind limitKind
	p, s int // numeric's precision and scale; timestamp's digits; characters; money's and interval's digits, interval's last field
	// local is a timestamp or time without time zone: PostgreSQL drops an
	// offset given with the time, keeping its wall clock (another instant).
	local bool
	// blank is character(n): trailing blanks are no part of its value
	// (cut past n without an error, and never read back), so they do not
	// count toward n.
	blank bool
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
		return limit{kind: limitTime, p: 6, local: true}
	}
	if p, ok := strings.CutPrefix(native, "timestamp("); ok {
		if i := strings.IndexByte(p, ')'); i > 0 {
			if n, err := strconv.Atoi(p[:i]); err == nil {
				return limit{kind: limitTime, p: n, local: strings.HasSuffix(p, " without time zone")}
			}
		}
		return limit{}
	}
	if native == "money" {
		// The fraction digits are lc_monetary's; load reads them from the
		// server (load: scale(0::money::numeric)). 2 is C's and en_US's.
		return limit{kind: limitMoney, p: 2}
	}
	if rest, ok := strings.CutPrefix(native, "interval"); ok {
		return intervalLimit(rest)
	}
	if native == "time without time zone" || native == "time with time zone" {
		return limit{kind: limitClock, p: 6, local: native == "time without time zone"}
	}
	if p, ok := strings.CutPrefix(native, "time("); ok {
		if i := strings.IndexByte(p, ')'); i > 0 {
			if n, err := strconv.Atoi(p[:i]); err == nil {
				return limit{kind: limitClock, p: n, local: strings.HasSuffix(p, " without time zone")}
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
				return limit{kind: l.kind, p: n, blank: l.prefix == "character("}
			}
		}
	}
	return limit{}
}

// intervalLimit is the limit of a PostgreSQL interval column given what
// format_type names after "interval": "", "(3)", " second(3)", " day to
// second(2)", " hour to minute", ... Checked on PostgreSQL 15: a cast
// reads the text as a full interval, then cuts the fields below the last
// one the type names (interval day given "1 day 02:03:04" stores 1 day;
// interval hour given "1", a second, stores 00:00:00) and rounds the
// second to p digits (interval(3) given "PT1.2345S" stores 00:00:01.235).
func intervalLimit(rest string) limit {
	l := limit{kind: limitInterval, p: 6}
	if i := strings.IndexByte(rest, '('); i >= 0 {
		n, err := strconv.Atoi(strings.TrimSuffix(rest[i+1:], ")"))
		if err != nil || !strings.HasSuffix(rest, ")") {
			return limit{}
		}
		l.p, rest = n, rest[:i]
	}
	switch rest {
	case "", " second", " day to second", " hour to second", " minute to second":
	case " year":
		l.s = ivYear
	case " month", " year to month":
		l.s = ivMonth
	case " day":
		l.s = ivDay
	case " hour", " day to hour":
		l.s = ivHour
	case " minute", " day to minute", " hour to minute":
		l.s = ivMinute
	default:
		return limit{}
	}
	return l
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
		return secondFracDigits(s) <= l.p && !(l.local && zoneShifted(s))
	case limitMoney:
		return moneyFracDigits(s) <= l.p
	case limitInterval:
		return intervalHolds(s, l)
	case limitChars:
		if l.blank {
			s = strings.TrimRight(s, " ")
		}
		return utf8.RuneCountInString(s) <= l.p
	case limitClock:
		return !dateGiven(s) && secondFracDigits(s) <= l.p && !(l.local && zoneShifted(s))
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

// secondFracDigits is the number of digits of the fraction of the second
// of s's time of day (h:mm:ss.f, or m:ss.f: two fields with a fraction),
// up to its last non-zero one; 0 without one. The time is read wherever
// it stands: PostgreSQL 15 rounds the second of every form it reads
// ("2024-01-01 10:00:00.5 UTC", "Jan 1 2024 10:00:00.5", "9:00:00.5",
// "10:00.5" to time(0): 00:10:01), not only ferry's datetimes.
func secondFracDigits(s string) int {
	at := clockAt(s)
	if at < 0 {
		return 0
	}
	i := at
	for i < len(s) && (isDigit(s[i]) || s[i] == ':') {
		i++
	}
	if i >= len(s) || s[i] != '.' && s[i] != ',' {
		return 0
	}
	return significantDigits(s, i)
}

// zoneShifted reports whether s, text for a column without time zone,
// names a zone (a word that is no month, weekday, meridiem or era: PST,
// America/New_York) or gives an offset from UTC other than 0 after its
// time of day, led by a sign (2024-01-01T10:00:00+02:00, 10:00:00+02,
// 10:00:00 +02, UTC+2, 10:00 PM -05, 20240101T100000+0200): PostgreSQL 15
// drops both, storing the wall clock (2024-01-01T10:00:00+02:00 is stored
// 10:00, the instant of 08:00 UTC lost). UTC, GMT, Z, +00:00 or no zone
// keep the instant read as UTC, as ferry reads it.
func zoneShifted(s string) bool {
	for i := 0; i < len(s); {
		if !asciiLetter(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && asciiLetter(s[j]) {
			j++
		}
		if !plainTimeWord(strings.ToLower(s[i:j])) {
			return true
		}
		i = j
	}
	at := clockAt(s)
	if at < 0 {
		return false
	}
	rest := strings.TrimLeft(s[at:], "0123456789:.,")
	for len(rest) > 0 && (rest[0] == ' ' || asciiLetter(rest[0])) {
		rest = rest[1:] // blanks, and the plain words (UTC, PM) read above
	}
	if rest == "" || rest[0] != '+' && rest[0] != '-' {
		return false
	}
	off := rest[1:]
	end := 0
	for end < len(off) && (off[end] >= '0' && off[end] <= '9' || off[end] == ':') {
		end++
	}
	return strings.Trim(off[:end], "0:") != ""
}

// plainTimeWord tells whether w, a word of a time's text in lower case,
// names no zone.
func plainTimeWord(w string) bool {
	switch w {
	case "t", "z", "zulu", "utc", "ut", "gmt", "am", "pm", "bc", "ad",
		"jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june",
		"jul", "july", "aug", "august", "sep", "sept", "september", "oct", "october", "nov", "november", "dec", "december",
		"mon", "monday", "tue", "tues", "tuesday", "wed", "wednesday", "thu", "thur", "thurs", "thursday",
		"fri", "friday", "sat", "saturday", "sun", "sunday",
		"epoch", "now", "today", "tomorrow", "yesterday", "infinity", "allballs":
		return true
	}
	return false
}

func asciiLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// clockAt is where s's time of day (h:mm or hh:mm) starts, -1 if none.
// Without one, ISO 8601's basic form is read: hhmm[ss] after a date's T
// ("20240101T100000+0200"), or s's leading hhmmss ("100000.5"), which
// PostgreSQL 15 reads as a time too.
func clockAt(s string) int {
	for i := 1; i+2 < len(s); i++ {
		if s[i] == ':' && isDigit(s[i-1]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			if i >= 2 && isDigit(s[i-2]) {
				return i - 2
			}
			return i - 1
		}
	}
	digitsAt := func(i int) int {
		n := 0
		for i+n < len(s) && isDigit(s[i+n]) {
			n++
		}
		return n
	}
	for i := 1; i < len(s); i++ {
		if (s[i] == 'T' || s[i] == 't') && isDigit(s[i-1]) && digitsAt(i+1) >= 4 {
			return i + 1
		}
	}
	if digitsAt(0) == 6 {
		return 0
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// datePrefixed reports whether s starts with a date (2024-01-02): given
// to a time column, PostgreSQL 15 stores "2024-01-02 10:00:00" as
// 10:00:00, its date dropped (and refuses the T form).
func datePrefixed(s string) bool {
	if len(s) < len("2006-01-02") || s[4] != '-' || s[7] != '-' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9} {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// dateGiven reports whether s, text for a time column, gives a date:
// ISO 8601's (datePrefixed), or any digit before its time of day
// ("01/02/2024 10:00:00", "2024/01/02 10:00", "02.01.2024 10:00"):
// PostgreSQL 15 stores each as its time of day, the date dropped.
func dateGiven(s string) bool {
	if datePrefixed(s) {
		return true
	}
	at := clockAt(s)
	return at > 0 && strings.ContainsAny(s[:at], "0123456789")
}

// moneyFracDigits is the number of digits after the point of s, text for
// a money column, up to the last that is not 0: PostgreSQL 15 (lc_monetary
// C) stores "1.005" as $1.01 and "1.230001" as $1.23, reading the point
// as '.' and skipping ',' among the digits ("1.23,4" is $1.23), so those
// count too. A locale whose point is not '.' is not read here (none was
// at hand to check). Range overflow is PostgreSQL's error, not a change.
func moneyFracDigits(s string) int {
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return 0
	}
	n, d := 0, 0
	for _, c := range []byte(s[i+1:]) {
		if c == ',' {
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		d++
		if c != '0' {
			n = d
		}
	}
	return n
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
	return fmt.Errorf("column %q, of type %s, cannot hold %s as given (it would store it %s): the row is not written", c.name, typ, quoteCut(s), c.limit.change(s))
}

func (l limit) String() string {
	if l.kind == limitNumeric {
		return "numeric(" + strconv.Itoa(l.p) + "," + strconv.Itoa(l.s) + ")"
	}
	return "?"
}

// change says what the column would do to a value it cannot hold.
func (l limit) change(s string) string {
	switch l.kind {
	case limitTime, limitClock:
		if l.kind == limitClock && dateGiven(s) {
			return "as its time of day alone, its date dropped"
		}
		if l.local && zoneShifted(s) {
			return "as its wall clock, its offset or zone dropped: another instant"
		}
		return "rounded to " + strconv.Itoa(l.p) + " digits of the second"
	case limitNumeric:
		return "rounded to " + strconv.Itoa(l.s) + " digits after the point, or refused for overflow"
	case limitReal:
		return "rounded to a float32"
	case limitChars:
		return "cut to " + strconv.Itoa(l.p) + " characters"
	case limitSQLiteNum:
		return "as a number, an int64 or a float64"
	case limitMoney:
		return "rounded to " + strconv.Itoa(l.p) + " digits after the point"
	case limitInterval:
		if v, ok := parseInterval(s); ok && v.signSplit {
			return "with its leading sign on its first unit alone (-1h30m0s as -00:30:00)"
		}
		if l.s != ivSecond {
			return "cut to whole " + [...]string{ivMinute: "minutes", ivHour: "hours", ivDay: "days", ivMonth: "months", ivYear: "years"}[l.s]
		}
		return "rounded to " + strconv.Itoa(l.p) + " digits of the second, or a year's fraction to whole months"
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

// ivParts is an interval's text as PostgreSQL reads it before the column's
// type cuts or rounds it: months, days and seconds (its time), kept apart
// as PostgreSQL keeps them. inexact is a part that reading itself rounds:
// a year's fraction to whole months (PostgreSQL 15: "0.55 years" is 7
// mons), a second's past the microsecond ("1.5 microseconds" is 1 µs).
type ivParts struct {
	months, days, secs big.Rat
	inexact            bool
	// signSplit is a sign before units run together ("-1h30m0s", Go's
	// -1.5 hours): PostgreSQL 15 reads it as the first unit's alone,
	// storing -00:30:00.
	signSplit bool
}

// ivUnit is an interval unit: n years (in months), months, days or
// seconds, as per says (ivYear, ivMonth, ivDay, ivSecond).
type ivUnit struct {
	per int
	n   *big.Rat
}

// ivUnits are PostgreSQL's interval units (datetime.c's deltatktbl), by
// their names lowercased and cut to 10 characters, as it reads them.
var ivUnits = func() map[string]ivUnit {
	m := map[string]ivUnit{}
	for _, u := range [...]struct {
		names string
		per   int
		n     int64
		per10 int64 // n/per10: ms and µs
	}{
		{"y yr yrs year years", ivYear, 12, 1},
		{"dec decs decade decades", ivYear, 120, 1},
		{"c cent century centuries", ivYear, 1200, 1},
		{"mil mils millennia millennium", ivYear, 12000, 1},
		{"mon mons month months", ivMonth, 1, 1},
		{"w week weeks", ivDay, 7, 1},
		{"d day days", ivDay, 1, 1},
		{"h hr hrs hour hours", ivSecond, 3600, 1},
		{"m min mins minute minutes", ivSecond, 60, 1},
		{"s sec secs second seconds", ivSecond, 1, 1},
		{"ms msec msecs msecond mseconds millisecon", ivSecond, 1, 1000},
		{"us usec usecs usecond useconds microsecon", ivSecond, 1, 1000000},
	} {
		for _, name := range strings.Fields(u.names) {
			m[name] = ivUnit{u.per, big.NewRat(u.n, u.per10)}
		}
	}
	return m
}()

// isoUnits are ISO 8601's designators before T and after it.
var isoUnits = [2]map[byte]string{{'Y': "y", 'M': "mon", 'W': "w", 'D': "d"}, {'H': "h", 'M': "m", 'S': "s"}}

// add adds x of unit u as PostgreSQL 15 does: a year's fraction rounded
// to months; a month's fraction spread as 30 days, a day's as 86400
// seconds; seconds rounded to the microsecond.
func (v *ivParts) add(x *big.Rat, u ivUnit) {
	x = new(big.Rat).Mul(x, u.n)
	switch u.per {
	case ivYear:
		v.inexact = v.inexact || !x.IsInt()
		v.months.Add(&v.months, x)
	case ivMonth:
		whole := ratTrunc(x)
		v.months.Add(&v.months, whole)
		v.addDays(x.Mul(x.Sub(x, whole), big.NewRat(30, 1)))
	case ivDay:
		v.addDays(x)
	default:
		v.addSecs(x)
	}
}

func (v *ivParts) addDays(x *big.Rat) {
	whole := ratTrunc(x)
	v.days.Add(&v.days, whole)
	v.addSecs(new(big.Rat).Mul(new(big.Rat).Sub(x, whole), big.NewRat(86400, 1)))
}

func (v *ivParts) addSecs(x *big.Rat) {
	v.inexact = v.inexact || !new(big.Rat).Mul(x, big.NewRat(1000000, 1)).IsInt()
	v.secs.Add(&v.secs, x)
}

// ratTrunc is x's whole part, toward zero.
func ratTrunc(x *big.Rat) *big.Rat {
	return new(big.Rat).SetInt(new(big.Int).Quo(x.Num(), x.Denom()))
}

// ratPer reports whether x is a whole multiple of 1/n (n > 0).
func ratPer(x *big.Rat, n *big.Int) bool {
	return new(big.Rat).Mul(x, new(big.Rat).SetInt(n)).IsInt()
}

// intervalHolds reports whether interval column l stores s as given. Text
// in a form parseInterval does not read is taken as held only where no
// part can be cut or rounded: the column keeps every field, and s has no
// fraction.
func intervalHolds(s string, l limit) bool {
	v, ok := parseInterval(s)
	if !ok {
		return l.s == ivSecond && strings.IndexByte(s, '.') < 0
	}
	if v.inexact || v.signSplit {
		return false
	}
	nothingBelow := func(x *big.Rat, per int64) bool { return new(big.Rat).Quo(x, big.NewRat(per, 1)).IsInt() }
	switch l.s {
	case ivYear:
		return nothingBelow(&v.months, 12) && v.days.Sign() == 0 && v.secs.Sign() == 0
	case ivMonth:
		return v.days.Sign() == 0 && v.secs.Sign() == 0
	case ivDay:
		return v.secs.Sign() == 0
	case ivHour:
		return nothingBelow(&v.secs, 3600)
	case ivMinute:
		return nothingBelow(&v.secs, 60)
	}
	return ratPer(&v.secs, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(l.p, 0))), nil))
}

// parseInterval reads the interval forms PostgreSQL 15 reads that a source
// likely sends: ISO 8601 with designators ("P1DT2H3.5S"), PostgreSQL's own
// ("@ 1 day 02:03:04.5 ago", "1.5 hours", "2 03:04", "12:34.5" as minutes
// and seconds), SQL's year-month ("1-2"), a bare number of seconds
// (JSON's 1.5), units run together (Go's "1h30m0.5s") and fields apart by
// commas (Python's "1 day, 2:00:00"). ok is false for other text (ISO 8601's alternative form,
// a lone sign). A sign is kept where it could matter: no check looks at
// one but a year-month's against its months.
func parseInterval(s string) (v ivParts, ok bool) {
	if rest, iso := strings.CutPrefix(s, "P"); iso {
		return parseISOInterval(rest)
	}
	f := strings.Fields(strings.ReplaceAll(s, ",", " ")) // PostgreSQL reads a comma between fields as a blank
	if len(f) > 0 && f[0] == "@" {
		f = f[1:]
	}
	if len(f) > 0 && strings.EqualFold(f[len(f)-1], "ago") {
		f = f[:len(f)-1] // negates every part: no check depends on it
	}
	if len(f) == 0 {
		return v, false
	}
	for i := 0; i < len(f); i++ {
		tok := f[i]
		if strings.IndexByte(tok, ':') >= 0 {
			secs, ok := clockSecs(tok)
			if !ok {
				return v, false
			}
			v.addSecs(secs)
			continue
		}
		if y, m, ok := strings.Cut(strings.TrimLeft(tok, "+-"), "-"); ok {
			yn, ok1 := ivNumber(y)
			mn, ok2 := ivNumber(m)
			if !ok1 || !ok2 || !yn.IsInt() || !mn.IsInt() {
				return v, false
			}
			months := yn.Add(yn.Mul(yn, big.NewRat(12, 1)), mn)
			if strings.HasPrefix(tok, "-") {
				months.Neg(months)
			}
			v.months.Add(&v.months, months)
			continue
		}
		n, unit, ok := numberPrefix(tok)
		if !ok {
			return v, false
		}
		switch {
		case unit != "":
			// Units run together: PostgreSQL reads each number with the
			// letters after it, and a sign before the first as its alone.
			if j := strings.IndexFunc(unit, func(r rune) bool { return r > unicode.MaxASCII || !asciiLetter(byte(r)) }); j > 0 {
				f = slices.Insert(f, i+1, unit[j:])
				unit = unit[:j]
				v.signSplit = v.signSplit || strings.HasPrefix(tok, "-")
			}
		case i+1 < len(f) && strings.IndexByte(f[i+1], ':') >= 0:
			unit = "d" // "2 03:04": days before a time
		case i+1 < len(f):
			unit = f[i+1]
			i++
		default:
			unit = "s" // a last number alone: seconds
		}
		unit = strings.ToLower(unit)
		if len(unit) > 10 {
			unit = unit[:10]
		}
		u, known := ivUnits[unit]
		if !known {
			return v, false
		}
		v.add(n, u)
	}
	return v, true
}

// parseISOInterval reads what follows ISO 8601's P: numbers (a fraction or
// an exponent allowed, as PostgreSQL's strtod reads them) each followed by
// Y, M, W or D, then after T by H, M or S.
func parseISOInterval(s string) (v ivParts, ok bool) {
	if s == "" {
		return v, false
	}
	inTime := 0
	for s != "" {
		if s[0] == 'T' && inTime == 0 {
			inTime, s = 1, s[1:]
			continue
		}
		n, rest, ok := numberPrefix(s)
		if !ok || rest == "" {
			return v, false
		}
		unit, known := isoUnits[inTime][rest[0]]
		if !known {
			return v, false
		}
		v.add(n, ivUnits[unit])
		s = rest[1:]
	}
	return v, true
}

// numberPrefix splits s into the decimal number it starts with (a sign,
// digits with at most one point, an exponent of at most 3 digits) and the
// rest.
func numberPrefix(s string) (*big.Rat, string, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits, point := 0, false
	for ; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			digits++
		} else if c == '.' && !point {
			point = true
		} else {
			break
		}
	}
	if digits == 0 {
		return nil, "", false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j && k-j <= 3 {
			i = k
		}
	}
	n, ok := ivNumber(s[:i])
	return n, s[i:], ok
}

// ivNumber is a decimal number's exact value.
func ivNumber(s string) (*big.Rat, bool) {
	if s == "" || strings.ContainsAny(s, "/xXpP_") {
		return nil, false
	}
	return new(big.Rat).SetString(strings.TrimPrefix(s, "+"))
}

// clockSecs reads a time in an interval: [sign]h:m, h:m:s[.f], or m:s.f
// (two fields, the second with a point: PostgreSQL 15 reads "12:34.5" as
// 12 minutes 34.5 seconds), as seconds.
func clockSecs(s string) (*big.Rat, bool) {
	f := strings.Split(strings.TrimLeft(s, "+-"), ":")
	if len(f) < 2 || len(f) > 3 {
		return nil, false
	}
	mult := []int64{3600, 60, 1}
	if len(f) == 2 && strings.IndexByte(f[1], '.') >= 0 {
		mult = mult[1:]
	}
	secs := new(big.Rat)
	for i, x := range f {
		if x == "" || strings.Trim(x, "0123456789.") != "" || i < len(f)-1 && strings.IndexByte(x, '.') >= 0 {
			return nil, false
		}
		n, ok := ivNumber(x)
		if !ok {
			return nil, false
		}
		secs.Add(secs, n.Mul(n, big.NewRat(mult[i], 1)))
	}
	if strings.HasPrefix(s, "-") {
		secs.Neg(secs)
	}
	return secs, true
}
