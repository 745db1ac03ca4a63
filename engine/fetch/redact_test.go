package fetch

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/itchyny/gojq"
)

func TestRedactionInErrorsAndLogs(t *testing.T) {
	const (
		apiKey = "q$ecret/+key"
		bearer = "b3arer-t0ken"
		extra  = "extra-s3cret"
		pass   = "pa55word"
	)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		// A server that echoes credentials back in its error bodies.
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":"bad key %s","q":%q,"auth":%q,"x":%q}`, apiKey, r.URL.RawQuery, r.Header.Get("Authorization"), extra)
	})
	var logs syncBuffer
	clk := newFakeClock()
	p := NewPool(Options{Logger: textLogger(&logs), Secrets: []string{extra}, Sleep: clk.Sleep, Now: clk.Now})
	tests := []struct {
		name    string
		auth    Auth
		wantErr string
	}{
		{
			name:    "query key",
			auth:    Auth{Type: AuthQuery, Param: "token", Token: apiKey},
			wantErr: `GET ` + srv.URL + `/x?accountIdentifier=a&token=REDACTED: 404 Not Found: {"error":"bad key REDACTED","q":"accountIdentifier=a&token=REDACTED","auth":"","x":"REDACTED"}`,
		},
		{
			name:    "bearer",
			auth:    Auth{Type: AuthBearer, Token: bearer},
			wantErr: `GET ` + srv.URL + `/x?accountIdentifier=a: 404 Not Found: {"error":"bad key REDACTED","q":"accountIdentifier=a","auth":"Bearer REDACTED","x":"REDACTED"}`,
		},
		{
			name:    "basic",
			auth:    Auth{Type: AuthBasic, Username: "me", Password: pass},
			wantErr: `GET ` + srv.URL + `/x?accountIdentifier=a: 404 Not Found: {"error":"bad key REDACTED","q":"accountIdentifier=a","auth":"REDACTED","x":"REDACTED"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Auth: tc.auth, Retry: Retry{Statuses: []int{404}, Attempts: 2}})
			_, err := c.Do(t.Context(), &Request{URL: "/x", Query: url.Values{"accountIdentifier": {"a"}}})
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Do error = %v, want *StatusError", err)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error =\n%s\nwant\n%s", err, tc.wantErr)
			}
		})
	}

	// A network error names the request, redacted too.
	dead := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	dead.Close()
	c := mustClient(t, p, HostConfig{BaseURL: dead.URL, Auth: Auth{Type: AuthQuery, Param: "api_key", Token: apiKey}, Retry: Retry{Attempts: 2}})
	_, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err == nil || !strings.HasPrefix(err.Error(), "GET "+dead.URL+"/x?api_key=REDACTED: ") {
		t.Errorf("network error = %v, want it to start with the redacted request", err)
	}

	out := logs.String()
	for _, s := range []string{apiKey, url.QueryEscape(apiKey), bearer, extra, pass, base64.StdEncoding.EncodeToString([]byte("me:" + pass))} {
		if strings.Contains(out, s) || strings.Contains(err.Error(), s) {
			t.Errorf("secret %q reached the logs or an error", s)
		}
	}
	for _, want := range []string{"level=WARN msg=\"http retry\"", "level=DEBUG msg=\"http request\"", "token=REDACTED", "status=404", "attempt=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

func TestRedact(t *testing.T) {
	p := NewPool(Options{Secrets: []string{"opt-secret"}})
	for _, a := range []Auth{
		{Type: AuthBearer, Token: "tok-a"},
		{Type: AuthHeader, Header: "x-api-key", Token: "key with space"},
		{Type: AuthOAuth2, TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: "cs-1"},
		{Type: AuthQuery, Param: "apikey", Token: "qk"},
	} {
		if _, err := p.Client(HostConfig{BaseURL: "https://api.example", Auth: a}); err != nil {
			t.Fatalf("Client: %v", err)
		}
	}
	tests := []struct {
		name, in, want string
		url            bool
	}{
		{name: "plain", in: "token tok-a and opt-secret", want: "token REDACTED and REDACTED"},
		{name: "query escaped", in: "k=key+with+space", want: "k=REDACTED"},
		{name: "path escaped", in: "/key%20with%20space/", want: "/REDACTED/"},
		{name: "client secret", in: `{"client_secret":"cs-1"}`, want: `{"client_secret":"REDACTED"}`},
		{name: "nothing secret", in: "hello", want: "hello"},
		{name: "too short to redact", in: "a qk b", want: "a qk b"},
		{name: "auth param whatever its value", url: true, in: "https://api.example/x?apikey=other&page=2#f", want: "https://api.example/x?apikey=REDACTED&page=2#f"},
		{name: "access_token param", url: true, in: "https://h/x?access_token=zzz", want: "https://h/x?access_token=REDACTED"},
		{name: "presigned S3 link", url: true, in: "https://b.s3.amazonaws.com/e/part-0.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101&X-Amz-Expires=3600&X-Amz-Signature=abc123", want: "https://b.s3.amazonaws.com/e/part-0.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Expires=3600&X-Amz-Signature=REDACTED"},
		{name: "Azure SAS", url: true, in: "https://a.blob.core.windows.net/c/f?sv=2022&sig=s1gn", want: "https://a.blob.core.windows.net/c/f?sv=2022&sig=REDACTED"},
		{name: "userinfo password", url: true, in: "https://u:pw@h/x", want: "https://u:REDACTED@h/x"},
		{name: "url keeps other params", url: true, in: "https://h/x?a=1&b", want: "https://h/x?a=1&b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Redact(tc.in)
			if tc.url {
				got = p.RedactURL(tc.in)
			}
			if got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestErrorBodyTruncated(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	got := errorBody([]byte(long), func(s string) string { return s })
	if len(got) > maxErrorBody+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("errorBody kept %d bytes: %q", len(got), got)
	}
}

// A secret comes back escaped: in JSON a server wrote (Go escapes & < >,
// PHP escapes /), and cut short in a jq error's preview of a value, which
// keeps its first bytes. Each form is redacted.
func TestRedactEscapedAndPreviewedSecrets(t *testing.T) {
	const tok = "ab/cd+ef&gh<ij>kl-0123456789-abcdefghij"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		b, _ := json.Marshal(map[string]string{"error": "bad token " + r.Header.Get("Authorization")})
		w.Write(b)
	})
	p := NewPool(Options{})
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Auth: Auth{Type: AuthBearer, Token: tok}})
	_, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err == nil {
		t.Fatal("Do succeeded on a 401")
	}
	if want := `"bad token Bearer REDACTED"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to hold %s", err, want)
	}
	php := strings.ReplaceAll(tok, "/", `\/`)
	tests := []struct{ name, in, want string }{
		{"php json", `{"error":"bad token ` + php + `"}`, `{"error":"bad token REDACTED"}`},
		{"jq preview of the string", "cannot add: number (1) and string (" + gojq.Preview(tok) + ")", `cannot add: number (1) and string ("REDACTED ...")`},
		{"jq preview of an object", "cannot iterate over: object (" + gojq.Preview(map[string]any{"k": tok}) + ")", `cannot iterate over: object ({"k":"REDACTED ...})`},
		{"jq preview of a short secret", "string (" + gojq.Preview("s3cret") + ")", `string ("REDACTED")`},
	}
	p.Client(HostConfig{BaseURL: "https://h", Auth: Auth{Type: AuthBearer, Token: "s3cret"}})
	for _, tc := range tests {
		if got := p.Redact(tc.in); got != tc.want {
			t.Errorf("%s: redact(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// The signature of a presigned link is secret by its parameter's name,
// whatever its value, in any text: an error body that echoes the link a
// redirect led to, a JSON answer (where Go escapes & as \u0026), HTML.
func TestRedactSecretParamsInText(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/export" {
			http.Redirect(w, r, "/bucket/part-0?X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=deadbeef01&x=1", http.StatusFound)
			return
		}
		http.Error(w, "no such key: "+r.URL.String(), http.StatusNotFound)
	})
	p := NewPool(Options{})
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL})
	_, err := c.Do(t.Context(), &Request{URL: "/export"})
	if err == nil {
		t.Fatal("Do succeeded on a 404")
	}
	if want := "no such key: /bucket/part-0?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&x=1"; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error = %v\nwant it to end with %s", err, want)
	}
	tests := []struct{ in, want string }{
		{`{"url":"https://h/f?sv=1\u0026sig=s1gn%2Bx\u0026se=2"}`, `{"url":"https://h/f?sv=1\u0026sig=REDACTED\u0026se=2"}`},
		{`<a href="https://h/f?a=1&amp;Signature=abc~d">`, `<a href="https://h/f?a=1&amp;Signature=REDACTED">`},
		{"see https://h/f?access_token=zz#top, then", "see https://h/f?access_token=REDACTED#top, then"},
		{"sig=kept: not in a query", "sig=kept: not in a query"},
		{"https://h/f?design=1&signal=2", "https://h/f?design=1&signal=2"},
	}
	for _, tc := range tests {
		if got := p.Redact(tc.in); got != tc.want {
			t.Errorf("redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// A session of several cookies is sent as one Cookie header, but each
// cookie is a credential of its own: an answer that names one (an error
// body, the login's own Set-Cookie headers in a cassette) hides it.
func TestSessionCookiesRedactedOneByOne(t *testing.T) {
	const sid, route = "sid-7a6b5c4d3e", "route-9z8y7x6w"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: sid, Path: "/"})
			http.SetCookie(w, &http.Cookie{Name: "route", Value: route, Path: "/"})
			return
		}
		c, _ := r.Cookie("JSESSIONID")
		http.Error(w, "session "+c.Value+" expired", http.StatusInternalServerError)
	})
	p := NewPool(Options{})
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Auth: Auth{Type: AuthSession, Login: &TokenRequest{URL: "/login", TokenHeader: "Set-Cookie"}}})
	_, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err == nil || !strings.Contains(err.Error(), "session REDACTED expired") {
		t.Errorf("error = %v, want the cookie's value redacted", err)
	}
	if got := p.Redact("Set-Cookie: route=" + route + "; Path=/"); strings.Contains(got, route) {
		t.Errorf("redact kept the cookie: %s", got)
	}
}

// Basic auth with a key for username and no password (Stripe's): the key
// is the credential, and the header carries it in base64.
func TestBasicKeyWithoutPasswordRedacted(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjtT1"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":"bad credentials","auth":%q}`, r.Header.Get("Authorization"))
	})
	p := NewPool(Options{})
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Auth: Auth{Type: AuthBasic, Username: key}})
	_, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err == nil {
		t.Fatal("Do succeeded on a 401")
	}
	if want := `"auth":"REDACTED"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to hold %s", err, want)
	}
	if got := p.Redact("key " + key); got != "key REDACTED" {
		t.Errorf("redact = %q, want the key hidden", got)
	}
	for _, s := range p.Secrets() {
		if s == base64.StdEncoding.EncodeToString([]byte(key+":")) {
			return
		}
	}
	t.Errorf("Secrets() lacks the header's base64, which a cassette must not hold: %v", p.Secrets())
}

// A base URL that does not parse is named without its password: url.Parse
// quotes the URL it was given whole.
func TestUnparsableBaseURLRedacted(t *testing.T) {
	p := NewPool(Options{})
	_, err := p.Client(HostConfig{BaseURL: "https://ferry:pa%zz55word@api.example.com/v1"})
	if err == nil {
		t.Fatal("Client accepted a base url that does not parse")
	}
	if strings.Contains(err.Error(), "pa%zz55word") || !strings.Contains(err.Error(), "api.example.com") {
		t.Errorf("error = %v, want the url without its password", err)
	}
	// A request path that does not parse, below a base URL with a password.
	c := mustClient(t, p, HostConfig{BaseURL: "https://ferry:pw-1234@api.example.com"})
	_, err = c.Do(t.Context(), &Request{URL: "/items/%zz"})
	if err == nil || strings.Contains(err.Error(), "pw-1234") || !strings.Contains(err.Error(), "/items/") {
		t.Errorf("error = %v, want the url without its password", err)
	}
}

// A password in the base URL's userinfo is a credential as basic auth's
// is: Go sends it as a Basic header, which an answer may echo and a
// cassette would hold.
func TestBaseURLPasswordIsASecret(t *testing.T) {
	const pass = "pw-5678-xyz"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"auth":%q}`, r.Header.Get("Authorization"))
	})
	p := NewPool(Options{})
	c := mustClient(t, p, HostConfig{BaseURL: strings.Replace(srv.URL, "://", "://ferry:"+pass+"@", 1)})
	_, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err == nil || !strings.Contains(err.Error(), `{"auth":"REDACTED"}`) {
		t.Errorf("error = %v, want the echoed header redacted", err)
	}
	if got := p.Redact("password " + pass); got != "password REDACTED" {
		t.Errorf("redact = %q", got)
	}
}

// Other encoders escape a secret otherwise than Go: JavaScript's
// encodeURIComponent keeps !'()* and writes a space %20, and some write
// the hex digits in lower case.
func TestRedactOtherURLEscapes(t *testing.T) {
	const secret = "p@ss w0rd!(x)/y"
	p := NewPool(Options{Secrets: []string{secret}})
	for _, in := range []string{
		"p%40ss%20w0rd!(x)%2Fy",       // encodeURIComponent
		"p%40ss+w0rd%21%28x%29%2fy",   // lower-case hex
		"p%40ss%20w0rd%21%28x%29%2fy", // both
	} {
		if got := p.Redact("key=" + in); got != "key=REDACTED" {
			t.Errorf("redact(%q) = %q", in, got)
		}
	}
}

// A token endpoint may answer the client credentials grant with a refresh
// token too (and an OpenID id_token): each is a credential the run got,
// kept out of errors and of a cassette (Secrets) as the access token is,
// though the run never sends them.
func TestFetchedTokensAllRedacted(t *testing.T) {
	const access, refresh, idTok = "acc-1a2b3c4d5e", "ref-9f8e7d6c5b", "eyJhbGciOi.idt-0a1b2c"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"id_token":%q,"token_type":"bearer","expires_in":3600}`, access, refresh, idTok)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"error":"session %s / %s / %s revoked"}`, access, refresh, idTok)
	})
	p := NewPool(Options{})
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, Auth: Auth{Type: AuthOAuth2, TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: "cs-secret-1"}})
	_, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err == nil {
		t.Fatal("Do succeeded on a 403")
	}
	known := strings.Join(p.Secrets(), "\n")
	for _, s := range []string{access, refresh, idTok} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error holds %q: %v", s, err)
		}
		if !strings.Contains(known, s) {
			t.Errorf("Secrets() lacks %q, which a cassette of the token answer would hold", s)
		}
	}
}

// A configured Authorization or Cookie header is a credential whatever it
// holds, and a header HostConfig.SecretHeaders names is one too: an answer
// echoing them shows neither the value nor what follows its scheme.
func TestConfiguredCredentialHeadersRedacted(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("Authorization"), r.Header.Get("Cookie"), r.Header.Get("X-Key"))
	})
	p := NewPool(Options{})
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, SecretHeaders: []string{"x-key"},
		Headers: map[string]string{"Authorization": "Token tk-11aa22bb", "Cookie": "sid=ck-33cc44dd; lang=en", "X-Key": "xk-55ee66ff", "X-Other": "plain-value"}})
	_, err := c.Do(t.Context(), &Request{URL: "/x"})
	if err == nil {
		t.Fatal("Do succeeded on a 401")
	}
	for _, s := range []string{"tk-11aa22bb", "ck-33cc44dd", "xk-55ee66ff"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error holds %q: %v", s, err)
		}
	}
	if got := p.Redact("plain-value"); got != "plain-value" {
		t.Errorf("a header not secret was redacted: %q", got)
	}
}
