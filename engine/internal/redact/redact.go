// Package redact holds what package fetch and package cassette both hide
// from text.
package redact

import (
	"net/url"
	"strings"
)

// maxParamName bounds the name looked up after a query separator.
const maxParamName = 64

// valueEnd holds the bytes that end a parameter's value in text: those of
// a query, and those around a link in text, JSON or HTML.
const valueEnd = "&#;:\"'<>,()[]{} \t\r\n\\"

// QueryParams replaces with `with` the value of every parameter secret
// names (given the name unescaped) that follows a query separator in s:
// "?", "&" or ";", as written in HTML ("&amp;") or escaped in JSON
// ("\u0026"). A value that starts with a byte of valueEnd (empty, or a
// placeholder "<...>") is left as it is.
func QueryParams(s string, secret func(name string) bool, with string) string {
	if strings.IndexByte(s, '=') < 0 {
		return s
	}
	var b strings.Builder
	done := 0
	for i := 0; i < len(s); i++ {
		start := -1
		switch {
		case s[i] == '?' || s[i] == '&' || s[i] == ';':
			start = i + 1
		case s[i] == '\\' && len(s) >= i+6 && strings.EqualFold(s[i:i+6], `\u0026`):
			start = i + 6
		}
		if start < 0 {
			continue
		}
		eq := strings.IndexByte(s[start:min(len(s), start+maxParamName+1)], '=')
		if eq <= 0 {
			continue
		}
		name, err := url.QueryUnescape(s[start : start+eq])
		if err != nil {
			name = s[start : start+eq]
		}
		if !secret(name) {
			continue
		}
		from := start + eq + 1
		end := from
		for end < len(s) && strings.IndexByte(valueEnd, s[end]) < 0 {
			end++
		}
		if end == from {
			continue
		}
		b.WriteString(s[done:from])
		b.WriteString(with)
		done, i = end, end-1
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}
