package runner_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
)

const oauthFanoutSpec = `
version: 1
name: t
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  concurrency: 1
  auth:
    type: oauth2
    grant: refresh_token
    token_url: ${ config.url }/oauth/token
    client_id: cid
    client_secret: csecret
    client_auth: body
    refresh_token: rt-0
streams:
  accounts:
    request: {path: /accounts}
  contacts:
    for_each: accounts
    request:
      path: /accounts/${ parent.id }/contacts
tables:
  contacts: {from: contacts, primary_key: [id]}
`

// An access token that dies without notice in the middle of a fan-out
// (the server says no expires_in, and stops honouring it after 12
// requests): the child that gets 401 with it renews it (the server
// rotates refresh tokens: the rotated one is used for the next renewal)
// and is sent again, and every record is read.
func TestOAuth2TokenDiesMidFanout(t *testing.T) {
	var accounts []any
	for i := range 40 {
		accounts = append(accounts, map[string]any{"id": fmt.Sprintf("a%d", i)})
	}
	s, err := apitest.Start(apitest.Fixture{
		Issuer: &apitest.Issuer{Kind: apitest.IssueOAuth2, Path: "/oauth/token", ClientID: "cid", ClientSecret: "csecret",
			RefreshToken: "rt-0", Rotate: true, Silent: true, Uses: 12},
		Auth: &apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "},
		Routes: []apitest.Route{
			{Path: "/accounts", Items: accounts},
			{Path: "/accounts/{acc}/contacts", Items: []any{map[string]any{"id": "{acc}-c1"}, map[string]any{"id": "{acc}-c2"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := newCollector()
	if _, err := runSpec(t, mustSpec(t, oauthFanoutSpec), map[string]any{"url": s.URL()}, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := len(out.field("contacts", "id")); got != 80 {
		t.Errorf("contacts = %d, want 80", got)
	}
	st := s.IssuerStats()
	// 41 API requests, 12 per token.
	if st.Issued != 4 || st.Requests != 4 {
		t.Errorf("token requests = %d, tokens issued = %d, want 4 and 4", st.Requests, st.Issued)
	}
}

// A refresh that fails mid-run (the refresh token was revoked) fails the
// run, naming the stream and parent whose request could not be sent; the
// records read before it are kept, none after it is counted as read.
func TestOAuth2RefreshFailsMidRun(t *testing.T) {
	var mu sync.Mutex
	tokens, uses := 0, 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if tokens > 0 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"refresh token revoked"}`)
			return
		}
		tokens++
		fmt.Fprint(w, `{"access_token":"at-1","token_type":"bearer"}`)
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uses++
		ok := r.Header.Get("Authorization") == "Bearer at-1" && uses <= 3
		mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"token expired"}`)
			return
		}
		if r.URL.Path == "/accounts" {
			fmt.Fprint(w, `[{"id":"a1"},{"id":"a2"},{"id":"a3"},{"id":"a4"}]`)
			return
		}
		fmt.Fprintf(w, `[{"id":"%s-c1"}]`, strings.Split(r.URL.Path, "/")[2])
	})
	s := httptest.NewServer(mux)
	defer s.Close()
	spec := oauthFanoutSpec
	out := newCollector()
	_, err := runSpec(t, mustSpec(t, spec), map[string]any{"url": s.URL}, out)
	if err == nil {
		t.Fatalf("run: no error; contacts %v", out.field("contacts", "id"))
	}
	if !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("run error %q does not say why the token could not be renewed", err)
	}
	// Two children were read with the first token; the other two are
	// reported, each by its parent: every parent is one or the other.
	got := out.field("contacts", "id")
	if len(got) != 2 {
		t.Errorf("contacts = %v, want 2", got)
	}
	for _, a := range []string{"a1", "a2", "a3", "a4"} {
		read := slices.Contains(got, a+"-c1")
		reported := strings.Contains(err.Error(), "stream contacts (accounts[id="+a+"])")
		if read == reported {
			t.Errorf("account %s: contact read %v, failure reported %v; want one of them", a, read, reported)
		}
	}
}
