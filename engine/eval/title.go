package eval

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// TitleCase returns s title-cased exactly as Python's str.title() does: a rune
// is title-cased when the rune before it is not cased and lower-cased when it
// is; anything that is not a cased letter (digits, spaces, '-', '_', …) makes
// the next letter start a word. "v2beta" -> "V2Beta", "AppV2" -> "Appv2",
// "k8s-x" -> "K8S-X", "ǆemal" -> "ǅemal".
//
// Unicode follows Python: "cased" is the Unicode Cased property, and the full
// (multi-rune) mappings of SpecialCasing.txt apply ("ß" -> "Ss", "ﬁ" -> "Fi",
// "İ" lower-cases to "i̇"), as does the final-sigma rule for "Σ". The case
// tables are Go's (Unicode 15), so a code point whose casing changed between
// Unicode versions may differ from a given Python build.
func TitleCase(s string) string {
	// Fast path: pure ASCII, the only case ferry's identifiers hit in practice.
	if isASCII(s) {
		b := make([]byte, len(s))
		prevCased := false
		for i := 0; i < len(s); i++ {
			c := s[i]
			upper, lower := 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z'
			switch {
			case prevCased && upper:
				c += 'a' - 'A'
			case !prevCased && lower:
				c -= 'a' - 'A'
			}
			b[i] = c
			prevCased = upper || lower
		}
		return string(b)
	}
	var b strings.Builder
	b.Grow(len(s))
	prevCased := false
	for i, r := range s {
		switch {
		case prevCased && r == 'Σ':
			b.WriteRune(finalSigma(s, i))
		case prevCased && r == 'İ':
			// The one rune whose full lower-case mapping is longer than a rune.
			b.WriteString("i\u0307")
		case prevCased:
			b.WriteRune(unicode.ToLower(r))
		default:
			if m, ok := specialTitle(r); ok {
				b.WriteString(m)
			} else {
				b.WriteRune(unicode.ToTitle(r))
			}
		}
		prevCased = isCased(r)
	}
	return b.String()
}

// CleanTitle replaces every rune that is not an ASCII letter, an ASCII digit or
// whitespace with one space (rune for rune: nothing is collapsed or trimmed,
// and non-ASCII letters are replaced too), then applies [TitleCase].
// "k8s-x" -> "K8S X", "x--y" -> "X  Y", "__x" -> "  X", "café" -> "Caf ".
// Whitespace is Python's (str.isspace): Go's unicode.IsSpace plus U+001C–U+001F.
func CleanTitle(s string) string {
	if isASCII(s) {
		b := []byte(s)
		for i, c := range b {
			if !isASCIIAlnum(c) && !isPySpace(rune(c)) {
				b[i] = ' '
			}
		}
		return TitleCase(string(b))
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r < utf8.RuneSelf && isASCIIAlnum(byte(r)) || isPySpace(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte(' ')
		}
	}
	return TitleCase(b.String())
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isASCIIAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isPySpace reports whether Python's str.isspace (and so re's \s) holds for r:
// Go's White_Space set plus the information separators U+001C–U+001F, which
// Python counts as whitespace through their bidirectional class.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || 0x1C <= r && r <= 0x1F
}

// isCased is the Unicode Cased property: Lu, Ll, Lt, Other_Lowercase, Other_Uppercase.
func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// isCaseIgnorable approximates the Unicode Case_Ignorable property: Mn, Me,
// Cf, Lm, Sk and the Word_Break MidLetter, MidNumLet and Single_Quote runes.
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0x00B7, 0x0387, 0x055F, 0x05F4, 0x2018, 0x2019, 0x2024,
		0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// finalSigma lower-cases the capital sigma at byte offset i of s: "ς" when it
// ends a word (a cased rune before it and none after it, case-ignorable runes
// skipped), "σ" otherwise. Same rule as Python's str.lower.
func finalSigma(s string, i int) rune {
	before := false
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if !isCaseIgnorable(r) {
			before = isCased(r)
			break
		}
	}
	if !before {
		return 'σ'
	}
	for _, r := range s[i+len("Σ"):] {
		if !isCaseIgnorable(r) {
			if isCased(r) {
				return 'σ'
			}
			break
		}
	}
	return 'ς'
}

// specialTitle returns the title-case mappings of SpecialCasing.txt that are
// longer than one rune; every other rune uses unicode.ToTitle.
func specialTitle(r rune) (string, bool) {
	switch r {
	case 0x00DF:
		return "\u0053\u0073", true
	case 0x0149:
		return "\u02BC\u004E", true
	case 0x01F0:
		return "\u004A\u030C", true
	case 0x0390:
		return "\u0399\u0308\u0301", true
	case 0x03B0:
		return "\u03A5\u0308\u0301", true
	case 0x0587:
		return "\u0535\u0582", true
	case 0x1E96:
		return "\u0048\u0331", true
	case 0x1E97:
		return "\u0054\u0308", true
	case 0x1E98:
		return "\u0057\u030A", true
	case 0x1E99:
		return "\u0059\u030A", true
	case 0x1E9A:
		return "\u0041\u02BE", true
	case 0x1F50:
		return "\u03A5\u0313", true
	case 0x1F52:
		return "\u03A5\u0313\u0300", true
	case 0x1F54:
		return "\u03A5\u0313\u0301", true
	case 0x1F56:
		return "\u03A5\u0313\u0342", true
	case 0x1FB2:
		return "\u1FBA\u0345", true
	case 0x1FB4:
		return "\u0386\u0345", true
	case 0x1FB6:
		return "\u0391\u0342", true
	case 0x1FB7:
		return "\u0391\u0342\u0345", true
	case 0x1FC2:
		return "\u1FCA\u0345", true
	case 0x1FC4:
		return "\u0389\u0345", true
	case 0x1FC6:
		return "\u0397\u0342", true
	case 0x1FC7:
		return "\u0397\u0342\u0345", true
	case 0x1FD2:
		return "\u0399\u0308\u0300", true
	case 0x1FD3:
		return "\u0399\u0308\u0301", true
	case 0x1FD6:
		return "\u0399\u0342", true
	case 0x1FD7:
		return "\u0399\u0308\u0342", true
	case 0x1FE2:
		return "\u03A5\u0308\u0300", true
	case 0x1FE3:
		return "\u03A5\u0308\u0301", true
	case 0x1FE4:
		return "\u03A1\u0313", true
	case 0x1FE6:
		return "\u03A5\u0342", true
	case 0x1FE7:
		return "\u03A5\u0308\u0342", true
	case 0x1FF2:
		return "\u1FFA\u0345", true
	case 0x1FF4:
		return "\u038F\u0345", true
	case 0x1FF6:
		return "\u03A9\u0342", true
	case 0x1FF7:
		return "\u03A9\u0342\u0345", true
	case 0xFB00:
		return "\u0046\u0066", true
	case 0xFB01:
		return "\u0046\u0069", true
	case 0xFB02:
		return "\u0046\u006C", true
	case 0xFB03:
		return "\u0046\u0066\u0069", true
	case 0xFB04:
		return "\u0046\u0066\u006C", true
	case 0xFB05:
		return "\u0053\u0074", true
	case 0xFB06:
		return "\u0053\u0074", true
	case 0xFB13:
		return "\u0544\u0576", true
	case 0xFB14:
		return "\u0544\u0565", true
	case 0xFB15:
		return "\u0544\u056B", true
	case 0xFB16:
		return "\u054E\u0576", true
	case 0xFB17:
		return "\u0544\u056D", true
	}
	return "", false
}
