package fetch

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClientConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  HostConfig
		want string
	}{
		{"no scheme", HostConfig{BaseURL: "api.example.com"}, `base url "api.example.com": want an absolute URL starting with https:// or http:// (https://api.example.com?)`},
		// url.Parse reads a host and port without a scheme as an error, or
		// the host as the scheme: neither said what was missing.
		{"address without scheme", HostConfig{BaseURL: "127.0.0.1:18431"}, `want an absolute URL starting with https:// or http:// (https://127.0.0.1:18431?)`},
		{"password without scheme", HostConfig{BaseURL: "user:pw-secret@h:8080"}, `base url "…@h:8080": want an absolute URL starting with https:// or http:// (https://h:8080?)`},
		{"host and port without scheme", HostConfig{BaseURL: "localhost:8080/api"}, `want an absolute URL starting with https:// or http:// (https://localhost:8080/api?)`},
		{"ftp", HostConfig{BaseURL: "ftp://h"}, "scheme must be http or https"},
		{"no host", HostConfig{BaseURL: "https:///x"}, "no host"},
		{"query", HostConfig{BaseURL: "https://h/x?a=1"}, "query and fragment are not allowed"},
		{"unknown auth", HostConfig{BaseURL: "https://h", Auth: Auth{Type: "digest"}}, `unknown auth type "digest"`},
		{"bearer without token", HostConfig{BaseURL: "https://h", Auth: Auth{Type: AuthBearer}}, "token is required"},
		{"header without name", HostConfig{BaseURL: "https://h", Auth: Auth{Type: AuthHeader, Token: "k"}}, "header is required"},
		{"query without param", HostConfig{BaseURL: "https://h", Auth: Auth{Type: AuthQuery, Token: "k"}}, "param is required"},
		{"basic without user or password", HostConfig{BaseURL: "https://h", Auth: Auth{Type: AuthBasic}}, "username or password is required"},
		{"oauth2 without secret", HostConfig{BaseURL: "https://h", Auth: Auth{Type: AuthOAuth2, TokenURL: "https://h/t", ClientID: "i"}}, "client_secret is required"},
		{"oauth2 relative token url", HostConfig{BaseURL: "https://h", Auth: Auth{Type: AuthOAuth2, TokenURL: "/t", ClientID: "i", ClientSecret: "s"}}, "must be an absolute http or https url"},
		{"oauth2 bad style", HostConfig{BaseURL: "https://h", Auth: Auth{Type: AuthOAuth2, TokenURL: "https://h/t", ClientID: "i", ClientSecret: "s", AuthStyle: "xml"}}, `unknown auth_style "xml"`},
		{"negative concurrency", HostConfig{BaseURL: "https://h", Concurrency: -1}, "negative limit"},
		{"negative body limit", HostConfig{BaseURL: "https://h", MaxBodyBytes: -1}, "negative limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPool(Options{}).Client(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Client error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name, base string
		auth       Auth
		url        string
		query      url.Values
		want       string
		wantSame   bool
	}{
		{name: "path prefix kept", base: "http://h/prod1/sei/api", url: "/v1/x", want: "http://h/prod1/sei/api/v1/x", wantSame: true},
		{name: "trailing and missing slashes", base: "http://h/api/", url: "v1/x", want: "http://h/api/v1/x", wantSame: true},
		{name: "bare host", base: "https://h", url: "/v1/x", want: "https://h/v1/x", wantSame: true},
		{name: "empty path is the base", base: "https://h/api", url: "", want: "https://h/api", wantSame: true},
		{name: "query only", base: "https://h/api", url: "?a=1", want: "https://h/api?a=1", wantSame: true},
		{name: "escaped segment kept", base: "https://h", url: "/apps/a%2Fb/envs", want: "https://h/apps/a%2Fb/envs", wantSame: true},
		{name: "own query kept, Query appended", base: "https://h", url: "/x?page=AAA%3D%3D", query: url.Values{"per_page": {"2"}}, want: "https://h/x?page=AAA%3D%3D&per_page=2", wantSame: true},
		{name: "absolute same origin", base: "https://h/api", url: "https://h/other?x=1", want: "https://h/other?x=1", wantSame: true},
		{name: "default port is the same origin", base: "https://h", url: "https://h:443/x", want: "https://h:443/x", wantSame: true},
		{name: "absolute other origin", base: "https://h", url: "https://cdn.h/x", want: "https://cdn.h/x"},
		{name: "fragment dropped", base: "https://h", url: "/x#frag", want: "https://h/x", wantSame: true},
		{name: "query auth added", base: "https://h", auth: Auth{Type: AuthQuery, Param: "token", Token: "k"}, url: "/x", query: url.Values{"a": {"1"}}, want: "https://h/x?a=1&token=k", wantSame: true},
		{name: "query auth echoed in next link sent once", base: "https://h", auth: Auth{Type: AuthQuery, Param: "token", Token: "k"}, url: "https://h/x?token=k&page=2", want: "https://h/x?page=2&token=k", wantSame: true},
		{name: "query auth not sent elsewhere", base: "https://h", auth: Auth{Type: AuthQuery, Param: "token", Token: "k"}, url: "https://other/x?page=2", want: "https://other/x?page=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustClient(t, NewPool(Options{}), HostConfig{BaseURL: tc.base, Auth: tc.auth})
			got, _, same, err := c.resolve(&Request{URL: tc.url, Query: tc.query})
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if got != tc.want || same != tc.wantSame {
				t.Errorf("resolve(%q) = %q, same origin %v; want %q, %v", tc.url, got, same, tc.want, tc.wantSame)
			}
		})
	}
}

func TestHostOfEachRequest(t *testing.T) {
	var seen []string
	a := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Host+" "+r.Header.Get("Authorization"))
	})
	b := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Host+" "+r.Header.Get("Authorization"))
	})
	p := testPool(newFakeClock(), 0, nil)
	withBase := mustClient(t, p, HostConfig{BaseURL: a.URL, Concurrency: 2, Auth: Auth{Type: AuthBearer, Token: "t"}})
	noBase := mustClient(t, p, HostConfig{Concurrency: 3, Auth: Auth{Type: AuthBearer, Token: "u"}})

	for _, step := range []struct {
		c   *Client
		url string
	}{
		{withBase, "/x"},
		{withBase, b.URL + "/next"}, // another host: its own limits, no credentials
		{noBase, b.URL + "/y"},      // no base: credentials go where the URL says
	} {
		if _, err := step.c.Do(t.Context(), &Request{URL: step.url}); err != nil {
			t.Fatalf("Do(%s): %v", step.url, err)
		}
	}
	if _, err := noBase.Do(t.Context(), &Request{URL: "/relative"}); err == nil || !strings.Contains(err.Error(), "relative url and no base url") {
		t.Errorf("relative URL without base: err = %v", err)
	}
	host := func(u string) string { return strings.TrimPrefix(u, "http://") }
	want := []string{host(a.URL) + " Bearer t", host(b.URL) + " ", host(b.URL) + " Bearer u"}
	if d := cmp.Diff(want, seen); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	hosts := p.Stats().Hosts
	// b was first met through withBase's absolute URL, so it got withBase's
	// limits; noBase then names it as its own host and tightens nothing
	// (3 > 2).
	if hosts[a.URL].Concurrency != 2 || hosts[b.URL].Concurrency != 2 || hosts[b.URL].Requests != 2 {
		t.Errorf("host stats = %+v", hosts)
	}
}
