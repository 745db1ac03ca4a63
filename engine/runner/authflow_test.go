package runner_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest"
)

// A Tableau-style session from the spec: a JSON login whose token is read
// by jq and sent in a header of its own; the login path is templated.
func TestSpecSessionAuth(t *testing.T) {
	s, err := apitest.Start(apitest.Fixture{
		Issuer: &apitest.Issuer{Kind: apitest.IssueSession, Path: "/api/3.22/auth/signin", TokenPath: "credentials.token", Uses: 2,
			Fields: map[string]string{"name": "ferry", "password": "pa55"}},
		Auth: &apitest.AuthCheck{Header: "X-Tableau-Auth"},
		Routes: []apitest.Route{
			{Path: "/api/3.22/sites", Items: []any{map[string]any{"id": "s1"}, map[string]any{"id": "s2"}, map[string]any{"id": "s3"}}},
			{Path: "/api/3.22/sites/{site}/workbooks", Items: []any{map[string]any{"id": "{site}-wb"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
  user: {required: true}
  password: {required: true, secret: true}
http:
  base_url: ${ config.url }/api/3.22
  concurrency: 1
  auth:
    type: session
    header: X-Tableau-Auth
    login:
      path: /auth/signin
      body:
        name: ${ config.user }
        password: ${ config.password }
      token: .credentials.token
streams:
  sites:
    request: {path: /sites}
  workbooks:
    for_each: sites
    request:
      path: /sites/${ parent.id }/workbooks
tables:
  workbooks: {from: workbooks, primary_key: [id]}
`)
	out := newCollector()
	if _, err := runSpec(t, f, map[string]any{"url": s.URL(), "user": "ferry", "password": "pa55"}, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := out.field("workbooks", "id"); strings.Join(got, ",") != "s1-wb,s2-wb,s3-wb" {
		t.Errorf("workbooks = %v", got)
	}
	// Four API requests, two per session: one login, then one renewal
	// after the first session's 401.
	if got := s.IssuerStats().Requests; got != 2 {
		t.Errorf("logins = %d, want 2", got)
	}
}

// A GitHub App from the spec: a JWT signed with the key from config, whose
// iss is a templated number, exchanged for an installation token.
func TestSpecJWTExchange(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	s, err := apitest.Start(apitest.Fixture{
		Issuer: &apitest.Issuer{Kind: apitest.IssueJWT, Path: "/app/installations/{id}/access_tokens", Iss: "4242",
			PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))},
		Auth:   &apitest.AuthCheck{Header: "Authorization", Prefix: "token "},
		Routes: []apitest.Route{{Path: "/installation/repositories", Body: map[string]any{"repositories": []any{map[string]any{"id": 1}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := mustSpec(t, `
version: 1
name: t
config:
  url: {required: true}
  app_id: {required: true}
  installation: {required: true}
  key: {required: true, secret: true}
http:
  base_url: ${ config.url }
  auth:
    type: jwt
    private_key: ${ config.key }
    claims:
      iss: ${ config.app_id }
    header: Authorization
    prefix: "token "
    exchange:
      path: /app/installations/${ config.installation }/access_tokens
      token: .token
streams:
  repos:
    request: {path: /installation/repositories}
    records: .repositories[]
tables:
  repos: {from: repos, primary_key: [id]}
`)
	out := newCollector()
	cfg := map[string]any{"url": s.URL(), "app_id": 4242, "installation": "77", "key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}
	if _, err := runSpec(t, f, cfg, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := out.field("repos", "id"); len(got) != 1 {
		t.Errorf("repos = %v", got)
	}
	if got := s.RequestsFor("POST", "/app/installations/77/access_tokens"); len(got) != 1 {
		t.Errorf("exchanges = %d, want 1", len(got))
	}
}
