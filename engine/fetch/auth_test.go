package fetch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type seenAuth struct {
	Authorization, APIKey, Query string
}

func TestAuthKinds(t *testing.T) {
	tests := []struct {
		name string
		auth Auth
		want seenAuth
	}{
		{name: "none", auth: Auth{}, want: seenAuth{Query: "a=1"}},
		{name: "bearer", auth: Auth{Type: AuthBearer, Token: "tok1"}, want: seenAuth{Authorization: "Bearer tok1", Query: "a=1"}},
		{name: "header", auth: Auth{Type: AuthHeader, Header: "x-api-key", Token: "k1"}, want: seenAuth{APIKey: "k1", Query: "a=1"}},
		{name: "header with prefix", auth: Auth{Type: AuthHeader, Header: "Authorization", Prefix: "ApiKey ", Token: "k2"}, want: seenAuth{Authorization: "ApiKey k2", Query: "a=1"}},
		{name: "query", auth: Auth{Type: AuthQuery, Param: "token", Token: "k/3+"}, want: seenAuth{Query: "a=1&token=k%2F3%2B"}},
		{name: "basic", auth: Auth{Type: AuthBasic, Username: "u", Password: "p:w"}, want: seenAuth{Authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p:w")), Query: "a=1"}},
		// A personal access token with an empty user (Azure DevOps').
		{name: "basic with an empty user", auth: Auth{Type: AuthBasic, Password: "pat"}, want: seenAuth{Authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(":pat")), Query: "a=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got seenAuth
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				got = seenAuth{r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.URL.RawQuery}
			})
			c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, Auth: tc.auth})
			if _, err := c.Do(t.Context(), &Request{URL: "/x", Query: url.Values{"a": {"1"}}}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("request auth (-want +got):\n%s", d)
			}
		})
	}
}

func TestCredentialsStayOnOrigin(t *testing.T) {
	var got seenAuth
	var gotHeader string
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = seenAuth{r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.URL.RawQuery}
		gotHeader = r.Header.Get("X-Tenant")
	})
	api := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/landing?a=1", http.StatusFound)
	})
	p := testPool(newFakeClock(), 0, nil)
	tests := []struct {
		name string
		auth Auth
		url  string
	}{
		{"bearer absolute", Auth{Type: AuthBearer, Token: "t"}, other.URL + "/x?a=1"},
		{"query absolute", Auth{Type: AuthQuery, Param: "token", Token: "t"}, other.URL + "/x?a=1"},
		{"header redirect", Auth{Type: AuthHeader, Header: "x-api-key", Token: "t"}, "/go"},
		{"bearer redirect", Auth{Type: AuthBearer, Token: "t"}, "/go"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, gotHeader = seenAuth{}, ""
			c := mustClient(t, p, HostConfig{BaseURL: api.URL, Auth: tc.auth, Headers: map[string]string{"X-Tenant": "acme"}})
			if _, err := c.Do(t.Context(), &Request{URL: tc.url}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			if d := cmp.Diff(seenAuth{Query: "a=1"}, got); d != "" {
				t.Errorf("credentials leaked to another origin (-want +got):\n%s", d)
			}
			if gotHeader != "" {
				t.Errorf("config header sent to another origin: %q", gotHeader)
			}
		})
	}
}

// tokenServer is an OAuth2 token endpoint plus an API that accepts only
// the latest token.
type tokenServer struct {
	mu      sync.Mutex
	fetches int
	valid   string
	reject  int // API replies 401 this many more times
	reqs    []tokenReq
}

type tokenReq struct {
	Authorization, ContentType, Body string
}

func (s *tokenServer) handler(t *testing.T, style string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/oauth/token":
			b, _ := io.ReadAll(r.Body)
			s.reqs = append(s.reqs, tokenReq{r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
			s.fetches++
			s.valid = fmt.Sprintf("at-%d", s.fetches)
			if style == StyleJSON {
				fmt.Fprintf(w, `{"ok":true,"accessToken":%q,"expiresIn":3600,"tokenType":"Bearer"}`, s.valid)
				return
			}
			fmt.Fprintf(w, `{"access_token":%q,"expires_in":"3600","token_type":"bearer"}`, s.valid)
		default:
			if s.reject > 0 || r.Header.Get("Authorization") != "Bearer "+s.valid {
				s.reject--
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, `{}`)
		}
	}
}

func (s *tokenServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func TestOAuth2TokenRequest(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("my%2Bid:s%26cret"))
	tests := []struct {
		style string
		want  tokenReq
	}{
		{"", tokenReq{basic, "application/x-www-form-urlencoded", "grant_type=client_credentials&scope=read+write"}},
		{StyleForm, tokenReq{"", "application/x-www-form-urlencoded", "client_id=my%2Bid&client_secret=s%26cret&grant_type=client_credentials&scope=read+write"}},
		{StyleJSON, tokenReq{"", "application/json", `{"clientId":"my+id","clientSecret":"s\u0026cret"}`}},
	}
	for _, tc := range tests {
		t.Run("style="+tc.style, func(t *testing.T) {
			ts := &tokenServer{}
			srv := newServer(t, ts.handler(t, tc.style))
			c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, Auth: Auth{
				Type: AuthOAuth2, TokenURL: srv.URL + "/oauth/token", ClientID: "my+id", ClientSecret: "s&cret",
				Scopes: []string{"read", "write"}, AuthStyle: tc.style,
			}})
			if _, err := c.Do(t.Context(), &Request{URL: "/api"}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			if d := cmp.Diff([]tokenReq{tc.want}, ts.reqs); d != "" {
				t.Errorf("token requests (-want +got):\n%s", d)
			}
		})
	}
}

func TestOAuth2TokenLifecycle(t *testing.T) {
	clk := newFakeClock()
	ts := &tokenServer{}
	srv := newServer(t, ts.handler(t, ""))
	p := testPool(clk, 0, nil)
	cfg := HostConfig{BaseURL: srv.URL, Auth: Auth{Type: AuthOAuth2, TokenURL: srv.URL + "/oauth/token", ClientID: "id", ClientSecret: "secret"}}
	c1, c2 := mustClient(t, p, cfg), mustClient(t, p, cfg)

	// 50 concurrent requests over two clients of the same credentials
	// share one token fetch.
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			<-start
			c := c1
			if i%2 == 1 {
				c = c2
			}
			if _, err := c.Do(t.Context(), &Request{URL: "/api"}); err != nil {
				t.Errorf("Do: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := ts.count(); got != 1 {
		t.Fatalf("token fetches after 50 concurrent requests = %d, want 1", got)
	}

	steps := []struct {
		name         string
		advance      time.Duration
		reject       int
		wantFetches  int
		wantAttempts int
		wantStatus   int // 0: success
	}{
		// expires_in 3600: refreshed 5 minutes (MaxServerWait) early.
		{name: "still fresh before the margin", advance: 3250 * time.Second, wantFetches: 1, wantAttempts: 1},
		{name: "refreshed inside the margin", advance: 100 * time.Second, wantFetches: 2, wantAttempts: 1},
		{name: "expired", advance: time.Hour, wantFetches: 3, wantAttempts: 1},
		{name: "401 refreshes once and retries", reject: 1, wantFetches: 4, wantAttempts: 2},
		{name: "second 401 is final", reject: 2, wantFetches: 5, wantAttempts: 2, wantStatus: 401},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		ts.mu.Lock()
		ts.reject = st.reject
		ts.mu.Unlock()
		resp, err := c1.Do(t.Context(), &Request{URL: "/api"})
		var se *StatusError
		switch {
		case st.wantStatus == 0 && err != nil:
			t.Fatalf("%s: Do: %v", st.name, err)
		case st.wantStatus != 0 && (!errors.As(err, &se) || se.Status != st.wantStatus):
			t.Fatalf("%s: Do error = %v, want status %d", st.name, err, st.wantStatus)
		}
		if got := ts.count(); got != st.wantFetches {
			t.Errorf("%s: token fetches = %d, want %d", st.name, got, st.wantFetches)
		}
		if resp.Attempts != st.wantAttempts {
			t.Errorf("%s: attempts = %d, want %d", st.name, resp.Attempts, st.wantAttempts)
		}
	}
}

func TestOAuth2TokenErrorIsRedacted(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","got":"s3cret-value"}`)
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, Auth: Auth{
		Type: AuthOAuth2, TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: "s3cret-value",
	}})
	_, err := c.Do(t.Context(), &Request{URL: "/api"})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("Do error = %v, want a 401 StatusError from the token endpoint", err)
	}
	want := "GET " + srv.URL + "/api: oauth2 token: POST " + srv.URL + `/token: 401 Unauthorized: {"error":"invalid_client","got":"REDACTED"}: the server refused the credentials of the oauth2 auth: check the config values it reads`
	if err.Error() != want {
		t.Errorf("error =\n%s\nwant\n%s", err, want)
	}
}

func TestRefreshMargin(t *testing.T) {
	tests := []struct{ lifetime, want time.Duration }{
		{3 * time.Hour, MaxServerWait},  // Port's tokens: capped
		{10 * time.Minute, time.Minute}, // short-lived: a tenth
		{10 * time.Second, time.Second},
	}
	for _, tc := range tests {
		if got := refreshMargin(tc.lifetime); got != tc.want {
			t.Errorf("refreshMargin(%v) = %v, want %v", tc.lifetime, got, tc.want)
		}
	}
}

// Many requests that get 401 with the same token (it died while they were
// in flight) share one refresh, and each is sent again and succeeds: none
// is dropped, none counted as data without its answer. The first 401
// comes back alone; the others only once the new token is in use, so a
// 401 of the old token must not throw the new one away.
func TestConcurrent401sShareOneRefresh(t *testing.T) {
	const n = 8
	var mu sync.Mutex
	fetches, arrived, refused := 0, 0, 0
	all, renewed := make(chan struct{}), make(chan struct{})
	var renewedOnce sync.Once
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			mu.Lock()
			fetches++
			tok := fmt.Sprintf("at-%d", fetches)
			mu.Unlock()
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer"}`, tok)
			return
		}
		switch r.Header.Get("Authorization") {
		case "Bearer at-1":
			// Every request is in flight with the first token before it dies.
			mu.Lock()
			if arrived++; arrived == n {
				close(all)
			}
			mu.Unlock()
			waitFor(t, all, "the requests in flight together")
			mu.Lock()
			refused++
			first := refused == 1
			mu.Unlock()
			if !first {
				waitFor(t, renewed, "a request with the new token")
			}
			w.WriteHeader(http.StatusUnauthorized)
		case "Bearer at-2":
			renewedOnce.Do(func() { close(renewed) })
			fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, Concurrency: n,
		Auth: Auth{Type: AuthOAuth2, TokenURL: srv.URL + "/oauth/token", ClientID: "id", ClientSecret: "secret"}})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			path := fmt.Sprintf("/api/%d", i)
			resp, err := c.Do(t.Context(), &Request{URL: path})
			if err != nil {
				t.Errorf("%s: %v", path, err)
				return
			}
			if want := fmt.Sprintf(`{"path":%q}`, path); string(resp.Body) != want || resp.Attempts != 2 {
				t.Errorf("%s: body %s in %d attempts, want %s in 2", path, resp.Body, resp.Attempts, want)
			}
		})
	}
	wg.Wait()
	if fetches != 2 {
		t.Errorf("token fetches = %d, want 2: one, and one refresh shared by the %d 401s", fetches, n)
	}
}

// waitFor waits for ch, failing the test rather than hanging when it never
// comes.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Errorf("waited 10s for %s", what)
	}
}
