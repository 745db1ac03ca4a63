package fetch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/apitest"
	"github.com/google/go-cmp/cmp"
)

// statuses lists the statuses a simulator answered, in order.
func statuses(s *apitest.Server) []int {
	var out []int
	for _, r := range s.Requests() {
		out = append(out, r.Status)
	}
	return out
}

func count401(s *apitest.Server) int {
	n := 0
	for _, st := range statuses(s) {
		if st == 401 {
			n++
		}
	}
	return n
}

func sessionFixture(is apitest.Issuer, auth apitest.AuthCheck) apitest.Fixture {
	is.Kind, is.Path = apitest.IssueSession, "/api/login"
	if is.Fields == nil {
		is.Fields = map[string]string{"username": "ferry", "password": "pa55word"}
	}
	return apitest.Fixture{Issuer: &is, Auth: &auth, Routes: []apitest.Route{
		{Path: "/api/incidents", Items: []any{map[string]any{"id": "INC1"}}},
	}}
}

func loginBody() map[string]any {
	return map[string]any{"username": "ferry", "password": "pa55word"}
}

// A session whose lifetime the login announces is renewed before it
// expires: no request ever sees the 401 of an expired session.
func TestSessionRenewsBeforeExpiry(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, sessionFixture(apitest.Issuer{TTL: apitest.Duration{Duration: 10 * time.Minute}},
		apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "}), clk)
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Auth: Auth{Type: AuthSession, Login: &TokenRequest{
		URL: "/api/login", Body: loginBody(), Token: jqx(t, ".token"), ExpiresIn: jqx(t, ".expires_in"),
	}}})
	steps := []struct {
		advance    time.Duration
		wantLogins int
	}{
		{0, 1},
		{8 * time.Minute, 1},                // still inside the lifetime minus a tenth
		{90 * time.Second, 2},               // 9m30s: renewed early
		{8*time.Minute + 40*time.Second, 2}, // 18m10s: the new one (due at 18m30s) is still good
		{10 * time.Minute, 3},               // long expired: renewed
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		if _, err := c.Do(t.Context(), &Request{URL: "/api/incidents"}); err != nil {
			t.Fatalf("step %d: Do: %v", i, err)
		}
		if got := s.IssuerStats().Requests; got != st.wantLogins {
			t.Errorf("step %d: logins = %d, want %d", i, got, st.wantLogins)
		}
	}
	if n := count401(s); n != 0 {
		t.Errorf("%d answers were 401; a session with a known lifetime is renewed before it expires", n)
	}
}

// A session that dies without warning (here after two requests) is
// renewed once on its 401 and the request sent again.
func TestSessionRenewsOnceOn401(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, sessionFixture(apitest.Issuer{Uses: 2, TokenPath: "result.session"},
		apitest.AuthCheck{Header: "X-Auth-Token"}), clk)
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Auth: Auth{Type: AuthSession, Header: "X-Auth-Token", Login: &TokenRequest{
		URL: "/api/login", BodyFormat: FormatForm, Body: loginBody(), Token: jqx(t, ".result.session"),
	}}})
	for i := range 5 {
		if _, err := c.Do(t.Context(), &Request{URL: "/api/incidents"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := s.IssuerStats().Requests; got != 3 {
		t.Errorf("logins = %d, want 3 (two requests per session)", got)
	}
	login := s.RequestsFor("POST", "/api/login")[0]
	if ct := login.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" || string(login.Body) != "password=pa55word&username=ferry" {
		t.Errorf("login sent %q as %s, want a form body", login.Body, ct)
	}

	// A session the server never accepts: one renewal, then the 401 stands.
	bad := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Auth: Auth{Type: AuthSession, Header: "X-Wrong", Login: &TokenRequest{
		URL: "/api/login", Body: loginBody(), Token: jqx(t, ".result.session"),
	}}})
	before := s.IssuerStats().Requests
	var se *StatusError
	if _, err := bad.Do(t.Context(), &Request{URL: "/api/incidents"}); !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("Do = %v, want the 401 after one renewal", err)
	}
	if got := s.IssuerStats().Requests - before; got != 2 {
		t.Errorf("logins for a rejected session = %d, want 2 (the first and one renewal)", got)
	}
}

// Where the session token comes from and goes: a response header, a
// cookie (ServiceNow's JSESSIONID), a query parameter.
func TestSessionTokenPlaces(t *testing.T) {
	tests := []struct {
		name  string
		is    apitest.Issuer
		check apitest.AuthCheck
		auth  Auth
	}{
		{"header to header", apitest.Issuer{TokenHeader: "X-Subject-Token"}, apitest.AuthCheck{Header: "X-Auth-Token"},
			Auth{Type: AuthSession, Header: "X-Auth-Token", Login: &TokenRequest{URL: "/api/login", TokenHeader: "X-Subject-Token"}}},
		{"cookie", apitest.Issuer{Cookie: "JSESSIONID"}, apitest.AuthCheck{Header: "Cookie"},
			Auth{Type: AuthSession, Login: &TokenRequest{URL: "/api/login", TokenHeader: "Set-Cookie"}}},
		{"query", apitest.Issuer{}, apitest.AuthCheck{Query: "session_id"},
			Auth{Type: AuthSession, Param: "session_id", Login: &TokenRequest{URL: "/api/login", Token: jqx(t, ".token")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			s := startSim(t, sessionFixture(tc.is, tc.check), clk)
			tc.auth.Login.Body = loginBody()
			log := &syncBuffer{}
			p := NewPool(Options{Now: clk.Now, Sleep: clk.Sleep, Logger: textLogger(log)})
			c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Auth: tc.auth})
			resp, err := c.Do(t.Context(), &Request{URL: "/api/incidents", Query: url.Values{"limit": {"5"}}})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if strings.Contains(resp.URL, "sess-") || strings.Contains(log.String(), "sess-") {
				t.Errorf("the session token leaked: url %s, log:\n%s", resp.URL, log)
			}
		})
	}
}

// memStore is a Credentials kept in memory, shared by "runs".
type memStore struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memStore) LoadCredential(_ context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

func (s *memStore) SaveCredential(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[key] = value
	return nil
}

// A server that rotates refresh tokens accepts each one once: the rotated
// token is kept in the credential store, and the next run starts from it.
func TestOAuth2RefreshTokenRotation(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, apitest.Fixture{
		Issuer: &apitest.Issuer{Kind: apitest.IssueOAuth2, Path: "/oauth/v1/token", ClientID: "app", ClientSecret: "app-secret",
			RefreshToken: "rt-first-one", Rotate: true, TTL: apitest.Duration{Duration: 30 * time.Minute}},
		Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "},
		Routes: []apitest.Route{{Path: "/crm/v3/objects/contacts", Items: []any{map[string]any{"id": "1"}}}},
	}, clk)
	auth := Auth{Type: AuthOAuth2, Grant: GrantRefreshToken, TokenURL: s.URL() + "/oauth/v1/token", ClientID: "app",
		ClientSecret: "app-secret", RefreshToken: "rt-first-one", AuthStyle: StyleForm}
	store := &memStore{}
	run := func(store Credentials, log *syncBuffer) error {
		p := NewPool(Options{Now: clk.Now, Sleep: clk.Sleep, Credentials: store, Logger: textLogger(log)})
		c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Auth: auth})
		for range 2 {
			if _, err := c.Do(t.Context(), &Request{URL: "/crm/v3/objects/contacts"}); err != nil {
				return err
			}
			clk.Advance(time.Hour) // the access token expires: refreshed again
		}
		return nil
	}
	log := &syncBuffer{}
	if err := run(store, log); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if err := run(store, log); err != nil {
		t.Fatalf("second run, from the saved token: %v", err)
	}
	if got := s.IssuerStats().Requests; got != 4 {
		t.Errorf("token requests = %d, want 4 (two per run)", got)
	}
	saved := store.m[CredentialKey(auth.TokenURL, auth.ClientID)]
	if !strings.Contains(saved, `"refresh_token":"rt-`) || strings.Contains(saved, "rt-first-one") {
		t.Errorf("saved = %q, want the latest rotated token", saved)
	}
	if strings.Contains(log.String(), "rt-") {
		t.Errorf("a refresh token reached the log:\n%s", log)
	}

	// Without the store, the next run starts from the used-up token.
	var se *StatusError
	err := run(nil, &syncBuffer{})
	if !errors.As(err, &se) || se.Status != 400 || !strings.Contains(se.Body, "invalid_grant") {
		t.Fatalf("run without a store = %v, want invalid_grant", err)
	}
	if strings.Contains(err.Error(), "rt-first-one") {
		t.Errorf("the refresh token is in the error: %v", err)
	}

	// A new refresh token in the config starts a new line: the saved one
	// (rotated from the old) is not used for it.
	fresh := auth
	fresh.RefreshToken = "rt-someone-else"
	p := NewPool(Options{Now: clk.Now, Sleep: clk.Sleep, Credentials: store})
	c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Auth: fresh})
	if _, err := c.Do(t.Context(), &Request{URL: "/crm/v3/objects/contacts"}); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("Do with an unknown configured token = %v, want invalid_grant (the saved token belongs to the old one)", err)
	}
}

// Port's token call takes JSON {clientId, clientSecret} and answers
// {accessToken, expiresIn}; a client_credentials form with the client in
// the body is RFC 6749's other way.
func TestOAuth2ClientCredentialsAgainstSimulator(t *testing.T) {
	for _, style := range []string{StyleJSON, StyleForm, StyleBasic} {
		t.Run(style, func(t *testing.T) {
			clk := newFakeClock()
			s := startSim(t, apitest.Fixture{
				Issuer: &apitest.Issuer{Kind: apitest.IssueOAuth2, Path: "/v1/auth/access_token", ClientID: "cid", ClientSecret: "c/secret+",
					TTL: apitest.Duration{Duration: time.Hour}},
				Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "},
				Routes: []apitest.Route{{Method: "POST", Path: "/v1/blueprints/service/entities/search", Body: map[string]any{"ok": true}}},
			}, clk)
			c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Auth: Auth{Type: AuthOAuth2,
				TokenURL: s.URL() + "/v1/auth/access_token", ClientID: "cid", ClientSecret: "c/secret+", AuthStyle: style}})
			if _, err := c.Do(t.Context(), &Request{Method: "POST", URL: "/v1/blueprints/service/entities/search", Body: map[string]any{"limit": 10}}); err != nil {
				t.Fatalf("Do: %v", err)
			}
		})
	}
}

func testKeys(t *testing.T) (rsaPEM, rsaPub, ecPEM, ecPub string) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	rpub, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	eder, _ := x509.MarshalECPrivateKey(ek)
	epub, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	return enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), enc("PUBLIC KEY", rpub), enc("EC PRIVATE KEY", eder), enc("PUBLIC KEY", epub)
}

// A GitHub App signs a JWT with its private key and exchanges it for an
// installation token that expires in an hour; the token is renewed
// before it expires, and the JWT is accepted as is where the API takes it.
func TestJWT(t *testing.T) {
	rsaKey, rsaPub, ecKey, ecPub := testKeys(t)
	for _, k := range []struct{ name, key, pub string }{{"RS256", rsaKey, rsaPub}, {"ES256", ecKey, ecPub}} {
		t.Run(k.name+" exchange", func(t *testing.T) {
			clk := newFakeClock()
			s := startSim(t, apitest.Fixture{
				Issuer: &apitest.Issuer{Kind: apitest.IssueJWT, Path: "/app/installations/{id}/access_tokens", PublicKey: k.pub, Iss: "12345",
					TTL: apitest.Duration{Duration: time.Hour}},
				Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "token "},
				Routes: []apitest.Route{{Path: "/installation/repositories", Body: map[string]any{"repositories": []any{}}}},
			}, clk)
			log := &syncBuffer{}
			p := NewPool(Options{Now: clk.Now, Sleep: clk.Sleep, Logger: textLogger(log)})
			c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Auth: Auth{Type: AuthJWT, PrivateKey: k.key,
				Claims: map[string]any{"iss": 12345}, Header: "Authorization", Prefix: "token ",
				Login: &TokenRequest{URL: "/app/installations/99/access_tokens", Token: jqx(t, ".token"), ExpiresIn: jqx(t, ".expires_at")}}})
			for i, adv := range []time.Duration{0, 50 * time.Minute, 5 * time.Minute} {
				clk.Advance(adv)
				if _, err := c.Do(t.Context(), &Request{URL: "/installation/repositories"}); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			// 0 and 50m use the first token; 55m is inside its last tenth.
			if got := s.IssuerStats().Issued; got != 2 {
				t.Errorf("installation tokens = %d, want 2", got)
			}
			if n := count401(s); n != 0 {
				t.Errorf("%d answers were 401", n)
			}
			if strings.Contains(log.String(), "ghs_") || strings.Contains(log.String(), "eyJ") {
				t.Errorf("a token reached the log:\n%s", log)
			}
		})
	}
	t.Run("direct", func(t *testing.T) {
		clk := newFakeClock()
		s := startSim(t, apitest.Fixture{
			Issuer: &apitest.Issuer{Kind: apitest.IssueJWT, Path: "/app/installations/{id}/access_tokens", PublicKey: ecPub, Iss: "Iv1.abc", Direct: true},
			Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "},
			Routes: []apitest.Route{{Path: "/app/installations", Items: []any{map[string]any{"id": 99}}}},
		}, clk)
		c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Auth: Auth{Type: AuthJWT, PrivateKey: ecKey,
			Claims: map[string]any{"iss": "Iv1.abc"}}})
		for i, adv := range []time.Duration{0, 8 * time.Minute, 9 * time.Minute} {
			clk.Advance(adv)
			if _, err := c.Do(t.Context(), &Request{URL: "/app/installations"}); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if n := count401(s); n != 0 {
			t.Errorf("%d answers were 401: an expired JWT was sent", n)
		}
	})
	// RFC 7523's jwt-bearer grant (Google service accounts, Salesforce):
	// the JWT goes in the exchange's form as assertion, beside the
	// spec's own fields, and not as Authorization.
	t.Run("assertion", func(t *testing.T) {
		clk := newFakeClock()
		s := startSim(t, apitest.Fixture{
			Issuer: &apitest.Issuer{Kind: apitest.IssueJWT, Assertion: true, Path: "/services/oauth2/token", PublicKey: rsaPub, Iss: "3MVG9client",
				TTL: apitest.Duration{Duration: time.Hour}},
			Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "},
			Routes: []apitest.Route{{Path: "/services/data/v62.0/limits", Body: map[string]any{}}},
		}, clk)
		log := &syncBuffer{}
		p := NewPool(Options{Now: clk.Now, Sleep: clk.Sleep, Logger: textLogger(log)})
		c := mustClient(t, p, HostConfig{BaseURL: s.URL(), Auth: Auth{Type: AuthJWT, PrivateKey: rsaKey, Assertion: "assertion",
			Claims: map[string]any{"iss": "3MVG9client", "sub": "etl@acme.example", "aud": "https://login.salesforce.com"},
			Login: &TokenRequest{URL: "/services/oauth2/token", BodyFormat: FormatForm, Body: map[string]any{"grant_type": apitest.GrantJWTBearer},
				Token: jqx(t, ".access_token"), ExpiresIn: jqx(t, ".expires_in")}}})
		for i, adv := range []time.Duration{0, 50 * time.Minute, 5 * time.Minute} {
			clk.Advance(adv)
			if _, err := c.Do(t.Context(), &Request{URL: "/services/data/v62.0/limits"}); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if got := s.IssuerStats().Issued; got != 2 {
			t.Errorf("access tokens = %d, want 2 (the first renewed in its last tenth)", got)
		}
		if n := count401(s); n != 0 {
			t.Errorf("%d answers were 401", n)
		}
		if strings.Contains(log.String(), "at_") || strings.Contains(log.String(), "eyJ") {
			t.Errorf("a token reached the log:\n%s", log)
		}
	})
	t.Run("a wrong issuer is refused", func(t *testing.T) {
		clk := newFakeClock()
		s := startSim(t, apitest.Fixture{
			Issuer: &apitest.Issuer{Kind: apitest.IssueJWT, Path: "/app/installations/{id}/access_tokens", PublicKey: rsaPub, Iss: "12345"},
			Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "},
			Routes: []apitest.Route{{Path: "/x"}},
		}, clk)
		c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Auth: Auth{Type: AuthJWT, PrivateKey: rsaKey,
			Claims: map[string]any{"iss": 999}, Login: &TokenRequest{URL: "/app/installations/1/access_tokens", Token: jqx(t, ".token")}}})
		_, err := c.Do(t.Context(), &Request{URL: "/x"})
		if err == nil || !strings.Contains(err.Error(), "jwt exchange") || !strings.Contains(err.Error(), "401") {
			t.Fatalf("Do = %v, want the exchange's 401", err)
		}
	})
}

func TestJWTKeys(t *testing.T) {
	rsaKey, _, ecKey, _ := testKeys(t)
	tests := []struct {
		name, key, alg, want, wantErr string
	}{
		{name: "rsa picks RS256", key: rsaKey, want: AlgRS256},
		{name: "ec picks ES256", key: ecKey, want: AlgES256},
		{name: "escaped newlines", key: strings.ReplaceAll(strings.TrimSpace(ecKey), "\n", `\n`), want: AlgES256},
		{name: "rsa with ES256", key: rsaKey, alg: AlgES256, wantErr: "does not fit an RSA key"},
		{name: "ec with RS256", key: ecKey, alg: AlgRS256, wantErr: "does not fit an EC key"},
		{name: "not PEM", key: "hunter2", wantErr: "not a PEM private key"},
		{name: "public key", key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", wantErr: "is not a private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, alg, err := parseSigningKey(tc.key, tc.alg)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || alg != tc.want):
				t.Errorf("alg = %q, %v; want %s", alg, err, tc.want)
			}
		})
	}
	if _, err := NewPool(Options{}).Client(HostConfig{BaseURL: "http://h", Auth: Auth{Type: AuthJWT, PrivateKey: "nope"}}); err == nil {
		t.Error("a client with an unreadable key was made; it must fail before any request")
	}
}

// A stream's request body can be form encoded (body_format: form).
func TestFormBody(t *testing.T) {
	var got *http.Request
	var body string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		_ = r.ParseForm()
		body = r.PostForm.Encode()
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
	_, err := c.Do(t.Context(), &Request{Method: "POST", URL: "/search", BodyFormat: FormatForm,
		Body: map[string]any{"q": "a b&c", "n": 5, "on": true, "tags": []any{"x", "y"}, "skip": nil}})
	if err != nil {
		t.Fatal(err)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("content type = %q", ct)
	}
	if want := "n=5&on=true&q=a+b%26c&tags=x&tags=y"; body != want {
		t.Errorf("form = %q, want %q", body, want)
	}
	_, err = c.Do(t.Context(), &Request{Method: "POST", URL: "/search", BodyFormat: FormatForm, Body: map[string]any{"filter": map[string]any{"a": 1}}})
	if err == nil || !strings.Contains(err.Error(), `form field "filter": an object has no form encoding`) {
		t.Errorf("nested object: err = %v", err)
	}
}

// A text body (body_format: text) is sent byte for byte, as text/plain
// unless the request names its own Content-Type, on every attempt of a
// retried request; anything but a string is refused, never encoded.
func TestTextBody(t *testing.T) {
	var mu sync.Mutex
	var bodies, types []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, types = append(bodies, string(b)), append(types, r.Header.Get("Content-Type"))
		n := len(bodies)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
	const q = `items.find({"repo":"libs"}).sort({"$asc":["name"]}).offset(0).limit(100)`
	if _, err := c.Do(t.Context(), &Request{Method: "POST", URL: "/aql", BodyFormat: FormatText, Body: q}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(t.Context(), &Request{Method: "POST", URL: "/aql", BodyFormat: FormatText, Body: "x",
		Header: http.Header{"Content-Type": {"text/x-aql"}}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if d := cmp.Diff([]string{q, q, "x"}, bodies); d != "" {
		t.Errorf("bodies (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"text/plain", "text/plain", "text/x-aql"}, types); d != "" {
		t.Errorf("content types (-want +got):\n%s", d)
	}
	mu.Unlock()
	_, err := c.Do(t.Context(), &Request{Method: "POST", URL: "/aql", BodyFormat: FormatText, Body: map[string]any{"q": 1}})
	if err == nil || !strings.Contains(err.Error(), "a text body must be a string") {
		t.Errorf("an object as a text body: err = %v", err)
	}
}

// Requests queued behind a host's one connection each take the session
// when their turn comes, not before they queue: one taken before would
// die while the others spend it (a session serving one request here), and
// the retry its 401 earns, queued again behind them, would meet a dead
// one again and fail. Each request is renewed at most once.
func TestQueuedRequestsTakeTheSessionAtTheirTurn(t *testing.T) {
	clk := newFakeClock()
	s := startSim(t, sessionFixture(apitest.Issuer{Uses: 1},
		apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "}), clk)
	c := mustClient(t, testPool(clk, 0, nil), HostConfig{BaseURL: s.URL(), Concurrency: 1, Auth: Auth{Type: AuthSession, Login: &TokenRequest{
		URL: "/api/login", Body: loginBody(), Token: jqx(t, ".token"),
	}}})
	const n = 6
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Do(t.Context(), &Request{URL: "/api/incidents"})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Do: %v", err)
		}
	}
}
