package runner_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// A child request's query value that only reads the parent's record or a
// lookup (${ parent.key }, ${ lookups.org[parent.uid] }) and is null
// would go out without its filter: the API answers for more than this
// parent (every space's posts, every org's orders), written under it with
// exit 0. That fails the chain, naming the parameter, and so does such a
// part of a longer value ("s-${ parent.key }" would send "s-"); a value null on
// purpose (`?? nil`, a condition) is left out as before, and so is an
// optional config input.
func TestNullRecordReadInQueryFails(t *testing.T) {
	s := nullSpacesAPI(t)
	for _, tc := range []struct {
		name, query, fails string
		sent               []string // the query parameters the s2 request carried
	}{
		{"parent field", `key: "${ parent.key }"`, "request query key: parent.key is null", nil},
		{"lookup miss", `org: "${ lookups.org[parent.uid] }"`, "request query org: lookups.org[parent.uid] is null", nil},
		{"null on purpose", `key: "${ parent.key ?? nil }"`, "", []string{}},
		{"condition", `key: "${ parent.id == 's2' ? nil : parent.key }"`, "", []string{}},
		{"parent field in text", `p: "s-${ parent.key }"`, "request query p: parent.key is null", nil}, // "s-" would go out
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Requests())
			out := newStateful()
			_, err := runWith(t, mustSpec(t, nullSpacesSpec(`path: /posts, query: {since: "${ config.since }", `+tc.query+`}`)), runOpts{cfg: map[string]any{"url": s.URL()}}, out)
			if tc.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fails) || !strings.Contains(err.Error(), "s2") {
					t.Fatalf("err = %v, want the chain under s2 failed with %q", err, tc.fails)
				}
				if !strings.Contains(err.Error(), "?? nil") {
					t.Errorf("err = %v, want it to say how to leave the parameter out on purpose", err)
				}
			} else if err != nil {
				t.Fatalf("run: %v", err)
			}
			var s2 []url.Values
			for _, r := range s.Requests()[before:] {
				if r.Path == "/posts" && !slices.Contains(r.Query["key"], "K1") && !slices.Contains(r.Query["org"], "o1") && !slices.Contains(r.Query["p"], "s-K1") {
					s2 = append(s2, r.Query)
				}
			}
			switch {
			case tc.sent == nil && len(s2) > 0:
				t.Errorf("the s2 request went out: %v", s2)
			case tc.sent != nil && len(s2) != 1:
				t.Errorf("s2 requests %v, want one", s2)
			case tc.sent != nil:
				var keys []string
				for k := range s2[0] {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, tc.sent) {
					t.Errorf("s2 request's parameters %v, want %v (since, null from an unset input, left out)", keys, tc.sent)
				}
			}
		})
	}
}
