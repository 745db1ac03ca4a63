package paginate

import (
	"maps"
	"strings"
	"testing"
)

func TestNextLink(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"humanitec style", []string{`<https://api.humanitec.io/orgs/o/pipelines?page=AAA%3D&per_page=50>; rel="next"`}, "https://api.humanitec.io/orgs/o/pipelines?page=AAA%3D&per_page=50"},
		{"github style, next not first", []string{`<https://h/x?page=1>; rel="prev", <https://h/x?page=3>; rel="next", <https://h/x?page=9>; rel="last"`}, "https://h/x?page=3"},
		{"last page has no next", []string{`<https://h/x?page=1>; rel="first", <https://h/x?page=8>; rel="prev"`}, ""},
		{"bare rel and spaces", []string{`< https://h/x?p=2 > ; rel=next`}, "https://h/x?p=2"},
		{"several rels in one", []string{`<https://h/x?p=2>; rel="next last"`}, "https://h/x?p=2"},
		{"case-insensitive", []string{`<https://h/x?p=2>; REL="Next"`}, "https://h/x?p=2"},
		{"comma inside the URL", []string{`<https://h/x?ids=a,b&p=2>; rel="next"`}, "https://h/x?ids=a,b&p=2"},
		{"split over header values", []string{`<https://h/x?p=1>; rel="prev"`, `<https://h/x?p=3>; rel="next"`}, "https://h/x?p=3"},
		{"other params before rel", []string{`<https://h/x?p=2>; title="more"; rel="next"`}, "https://h/x?p=2"},
		{"nextish is not next", []string{`<https://h/x?p=2>; rel="nextpage"`}, ""},
		{"no header", nil, ""},
		{"garbage", []string{`rel="next"`, `<unterminated; rel="next"`}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextLink(tc.values); got != tc.want {
				t.Errorf("NextLink(%q) = %q, want %q", tc.values, got, tc.want)
			}
		})
	}
}

// FuzzNextLink: never panics, and a result is always a target that was
// inside <…> in the input.
func FuzzNextLink(f *testing.F) {
	f.Add(`<https://h/x?p=2>; rel="next"`)
	f.Add(`<a>; rel=prev, <b>; rel="next last"`)
	f.Add(`<<>>;rel=next,<`)
	f.Fuzz(func(t *testing.T, v string) {
		got := NextLink([]string{v})
		if got != "" && !strings.Contains(v, got) {
			t.Errorf("NextLink(%q) = %q, not taken from the input", v, got)
		}
	})
}

// TestNextLinkParams: a Link parameter's quoted value may hold ';', ',',
// '<' and escaped quotes (RFC 8288 quoted-string): none of it is read as
// a parameter, nor as another link, so a next link never takes a
// stop_params value from inside another parameter (the chain would end
// early, its remaining pages unread), nor a rel from one.
func TestNextLinkParams(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
		params map[string]string
	}{
		{"semicolon in a quoted value", []string{`<https://h/x?c=2>; rel="next"; title="a;results=false"`},
			"https://h/x?c=2", map[string]string{"rel": "next", "title": "a;results=false"}},
		{"comma and link in a quoted value", []string{`<https://h/x?c=2>; rel="next"; title="see, <https://h/y>; results=false"; results="true"`},
			"https://h/x?c=2", map[string]string{"rel": "next", "title": "see, <https://h/y>; results=false", "results": "true"}},
		{"escaped quote", []string{`<https://h/x?c=2>; rel="next"; title="say \"hi\"; results=false"`},
			"https://h/x?c=2", map[string]string{"rel": "next", "title": `say "hi"; results=false`}},
		{"rel inside a quoted value is no rel", []string{`<https://h/x?c=1>; title="x;rel=next"; rel="prev", <https://h/x?c=3>; rel="next"; results="false"`},
			"https://h/x?c=3", map[string]string{"rel": "next", "results": "false"}},
		{"spaces, case, the first of a repeated name", []string{`<https://h/x?c=2> ;  REL = "next" ; Results = "false" ; results="true"`},
			"https://h/x?c=2", map[string]string{"rel": "next", "results": "false"}},
		{"bare values", []string{`<https://h/x?c=2>; rel=next; results=false, <https://h/x?c=9>; rel=last`},
			"https://h/x?c=2", map[string]string{"rel": "next", "results": "false"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, params := nextLink(tc.values)
			if got != tc.want || !maps.Equal(params, tc.params) {
				t.Errorf("nextLink(%q) = %q, %q; want %q, %q", tc.values, got, params, tc.want, tc.params)
			}
		})
	}
}
