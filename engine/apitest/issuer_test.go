package apitest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine/apitest"
)

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, s *apitest.Server, method, path string, header http.Header, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(b, &a.body)
	return a
}

func form(kv ...string) (http.Header, string) {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, v.Encode()
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestIssuerRotatesRefreshTokens(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{
		Issuer: &apitest.Issuer{Kind: apitest.IssueOAuth2, Path: "/token", ClientID: "id", ClientSecret: "sec", RefreshToken: "rt0", Rotate: true},
		Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "Bearer "},
		Routes: []apitest.Route{{Path: "/me", Body: map[string]any{"ok": true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, b := form("grant_type", "refresh_token", "refresh_token", "rt0", "client_id", "id", "client_secret", "sec")
	first := do(t, s, "POST", "/token", h, b)
	next, _ := first.body["refresh_token"].(string)
	if first.status != 200 || next == "" || next == "rt0" {
		t.Fatalf("first refresh = %d %v, want a new refresh token", first.status, first.body)
	}
	if a := do(t, s, "GET", "/me", bearer(first.body["access_token"].(string)), ""); a.status != 200 {
		t.Errorf("the access token was refused: %d", a.status)
	}
	if again := do(t, s, "POST", "/token", h, b); again.status != 400 || again.body["error"] != "invalid_grant" {
		t.Errorf("reusing the rotated-away token = %d %v, want 400 invalid_grant", again.status, again.body)
	}
	h2, b2 := form("grant_type", "refresh_token", "refresh_token", next, "client_id", "id", "client_secret", "wrong")
	if a := do(t, s, "POST", "/token", h2, b2); a.status != 401 || a.body["error"] != "invalid_client" {
		t.Errorf("wrong client secret = %d %v, want 401 invalid_client", a.status, a.body)
	}
	if got := s.IssuerStats(); got.Requests != 3 || got.Issued != 1 {
		t.Errorf("stats = %+v, want 3 requests, 1 access token", got)
	}
}

func TestIssuerSessionExpires(t *testing.T) {
	clk := apitest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := apitest.Start(apitest.Fixture{
		Issuer: &apitest.Issuer{Kind: apitest.IssueSession, Path: "/login", Fields: map[string]string{"user": "u"},
			TTL: apitest.Duration{Duration: time.Minute}, Uses: 2},
		Auth:   &apitest.AuthCheck{Header: "X-Session"},
		Routes: []apitest.Route{{Path: "/data", Items: []any{1}}},
	}, apitest.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a := do(t, s, "POST", "/login", http.Header{"Content-Type": {"application/json"}}, `{"user":"x"}`); a.status != 401 {
		t.Errorf("a login with the wrong fields = %d, want 401", a.status)
	}
	login := func() string {
		a := do(t, s, "POST", "/login", http.Header{"Content-Type": {"application/json"}}, `{"user":"u"}`)
		if a.status != 200 || a.body["expires_in"] != float64(60) {
			t.Fatalf("login = %d %v", a.status, a.body)
		}
		return a.body["token"].(string)
	}
	tok := login()
	hdr := http.Header{"X-Session": {tok}}
	got := []int{do(t, s, "GET", "/data", hdr, "").status, do(t, s, "GET", "/data", hdr, "").status, do(t, s, "GET", "/data", hdr, "").status}
	if fmt.Sprint(got) != "[200 200 401]" {
		t.Errorf("a session good for 2 uses answered %v", got)
	}
	hdr = http.Header{"X-Session": {login()}}
	clk.Advance(time.Minute)
	if a := do(t, s, "GET", "/data", hdr, ""); a.status != 401 {
		t.Errorf("a session past its TTL = %d, want 401", a.status)
	}
}

func TestIssuerJWTAndGitHubRateLimit(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	now := time.Now()
	s, err := apitest.Start(apitest.Fixture{
		Issuer:    &apitest.Issuer{Kind: apitest.IssueJWT, Path: "/app/installations/{id}/access_tokens", Iss: "7", PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))},
		Auth:      &apitest.AuthCheck{Header: "Authorization", Prefix: "token "},
		RateLimit: &apitest.RateLimit{Limit: 3, Per: apitest.Duration{Duration: time.Hour}, Style: apitest.RateStyleGitHub},
		Routes:    []apitest.Route{{Path: "/installation/repositories", Body: map[string]any{"repositories": []any{}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sign := func(k *ecdsa.PrivateKey, claims string) string {
		enc := base64.RawURLEncoding
		in := enc.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims))
		d := sha256.Sum256([]byte(in))
		r, sg, _ := ecdsa.Sign(rand.Reader, k, d[:])
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		sg.FillBytes(sig[32:])
		return in + "." + enc.EncodeToString(sig)
	}
	good := fmt.Sprintf(`{"iss":7,"iat":%d,"exp":%d}`, now.Add(-time.Minute).Unix(), now.Add(9*time.Minute).Unix())
	if a := do(t, s, "POST", "/app/installations/1/access_tokens", bearer(sign(other, good)), ""); a.status != 401 {
		t.Errorf("a JWT signed by another key = %d, want 401", a.status)
	}
	tooLong := fmt.Sprintf(`{"iss":7,"iat":%d,"exp":%d}`, now.Unix(), now.Add(time.Hour).Unix())
	if a := do(t, s, "POST", "/app/installations/1/access_tokens", bearer(sign(key, tooLong)), ""); a.status != 401 {
		t.Errorf("a JWT valid for an hour = %d, want 401", a.status)
	}
	// The third request of the hour is the last one allowed.
	a := do(t, s, "POST", "/app/installations/1/access_tokens", bearer(sign(key, good)), "")
	if a.status != 201 || !strings.HasPrefix(fmt.Sprint(a.body["token"]), "ghs_") {
		t.Fatalf("exchange = %d %v", a.status, a.body)
	}
	limited := do(t, s, "GET", "/installation/repositories", http.Header{"Authorization": {"token " + a.body["token"].(string)}}, "")
	if limited.status != 403 || limited.header.Get("X-Ratelimit-Remaining") != "0" || limited.header.Get("Retry-After") != "" {
		t.Errorf("over the limit = %d %v, want GitHub's 403 with x-ratelimit-remaining 0 and no Retry-After", limited.status, limited.header)
	}
	if reset := limited.header.Get("X-Ratelimit-Reset"); len(reset) != 10 {
		t.Errorf("x-ratelimit-reset = %q, want epoch seconds", reset)
	}
}
