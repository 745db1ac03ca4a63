package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-etl/ferry/engine/apitest/tlstest"
	"github.com/ferry-etl/ferry/engine/internal/tlsfiles"
)

func okHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`[{"id":1}]`))
}

// A server whose certificate a private CA signed is refused without
// tls.ca_file, at once (a verification failure is not retried) and with a
// message naming the host and the option; with the CA it answers.
func TestTLSCAFile(t *testing.T) {
	pki := tlstest.New(t)
	var hits atomic.Int64
	srv := tlstest.Server(t, pki.ServerConfig(t, false), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		okHandler(w, r)
	}))
	ctx := context.Background()

	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL})
	_, err := c.Do(ctx, &Request{URL: "/apps"})
	if err == nil {
		t.Fatal("request to a server of a private CA succeeded without ca_file")
	}
	host := strings.TrimPrefix(srv.URL, "https://")
	for _, want := range []string{host, "http.tls.ca_file", "not signed by a CA the system trusts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := Attempts(err); n != 1 {
		t.Errorf("verification failure took %d attempts, want 1 (not retried)", n)
	}

	c = mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, TLS: TLS{CAFile: pki.CAFile}})
	resp, err := c.Do(ctx, &Request{URL: "/apps"})
	if err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	if resp.Status != 200 || hits.Load() != 1 {
		t.Errorf("with ca_file: status %d, server hits %d; want 200 and 1", resp.Status, hits.Load())
	}

	// A bundle of another CA is no help, and says so.
	c = mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, TLS: TLS{CAFile: pki.OtherCAFile}})
	if _, err = c.Do(ctx, &Request{URL: "/apps"}); err == nil || !strings.Contains(err.Error(), "not signed by a CA of tls.ca_file") {
		t.Errorf("with another CA's bundle: error %v, want one naming tls.ca_file", err)
	}
}

// system_roots false trusts the bundle alone: a server the bundle's CA did
// not sign is refused even where the system would trust it. Here the
// system trusts neither, so what is checked is that the bundle's CA still
// verifies the server it signed.
func TestTLSNoSystemRoots(t *testing.T) {
	pki := tlstest.New(t)
	srv := tlstest.Server(t, pki.ServerConfig(t, false), http.HandlerFunc(okHandler))
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, TLS: TLS{CAFile: pki.CAFile, NoSystemRoots: true}})
	if _, err := c.Do(context.Background(), &Request{URL: "/apps"}); err != nil {
		t.Fatalf("bundle alone: %v", err)
	}
	if _, err := testPool(newFakeClock(), 0, nil).Client(HostConfig{BaseURL: srv.URL, TLS: TLS{NoSystemRoots: true}}); err == nil {
		t.Error("system roots off without a bundle was accepted: every host would be refused")
	}

	// What is trusted: the bundle alone, or the system's roots and it.
	cas, err := tlsfiles.ReadCAs(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	only := x509.NewCertPool()
	only.AddCert(cas[0])
	s, err := testPool(newFakeClock(), 0, nil).loadTLS(TLS{CAFile: pki.CAFile, NoSystemRoots: true})
	if err != nil || !s.roots.Equal(only) {
		t.Errorf("system_roots false: roots are not the bundle alone (err %v)", err)
	}
	if sys, err := x509.SystemCertPool(); err != nil || sys.Equal(x509.NewCertPool()) {
		t.Skip("no system roots here to compare with")
	}
	s, err = testPool(newFakeClock(), 0, nil).loadTLS(TLS{CAFile: pki.CAFile})
	if err != nil || s.roots.Equal(only) {
		t.Errorf("default: the system's roots were dropped (err %v)", err)
	}
}

// A server that requires a client certificate (mutual TLS, as a
// Kubernetes API server does) refuses a client without one, which is told
// to set client_cert_file; with the certificate and its key it answers.
func TestTLSClientCertificate(t *testing.T) {
	pki := tlstest.New(t)
	var seen atomic.Value
	srv := tlstest.Server(t, pki.ServerConfig(t, true), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		okHandler(w, r)
	}))
	ctx := context.Background()

	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, TLS: TLS{CAFile: pki.CAFile}})
	_, err := c.Do(ctx, &Request{URL: "/api/v1/nodes"})
	if err == nil {
		t.Fatal("a server requiring a client certificate answered a client without one")
	}
	if !strings.Contains(err.Error(), "client_cert_file") || !strings.Contains(err.Error(), strings.TrimPrefix(srv.URL, "https://")) {
		t.Errorf("error %q does not name the host and client_cert_file", err)
	}
	if n := Attempts(err); n != 1 {
		t.Errorf("a refused handshake took %d attempts, want 1: the same request meets the same refusal", n)
	}

	c = mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL,
		TLS: TLS{CAFile: pki.CAFile, ClientCertFile: pki.ClientCertFile, ClientKeyFile: pki.ClientKeyFile}})
	if _, err := c.Do(ctx, &Request{URL: "/api/v1/nodes"}); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	if got := seen.Load(); got != "ferry" {
		t.Errorf("server saw client certificate %v, want ferry's", got)
	}
}

// The CA bundle, the client certificate and its key may each be given as
// the PEM itself (a CI secret holds it) instead of a file, mixed with
// files as the secrets come; a server of the private CA that requires a
// client certificate then answers.
func TestTLSInlinePEM(t *testing.T) {
	pki := tlstest.New(t)
	var seen atomic.Value
	srv := tlstest.Server(t, pki.ServerConfig(t, true), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		okHandler(w, r)
	}))
	pemOf := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for name, tc := range map[string]TLS{
		"all inline":    {CAPEM: pemOf(pki.CAFile), ClientCertPEM: pemOf(pki.ClientCertFile), ClientKeyPEM: pemOf(pki.ClientKeyFile)},
		"key inline":    {CAFile: pki.CAFile, ClientCertFile: pki.ClientCertFile, ClientKeyPEM: pemOf(pki.ClientKeyFile)},
		"bundle inline": {CAPEM: pemOf(pki.CAFile), NoSystemRoots: true, ClientCertPEM: pemOf(pki.ClientCertFile), ClientKeyFile: pki.ClientKeyFile},
		// As environment variables and CI secrets often hold PEM.
		"on one line": {CAPEM: oneLine(pemOf(pki.CAFile)), ClientCertPEM: oneLine(pemOf(pki.ClientCertFile)), ClientKeyPEM: oneLine(pemOf(pki.ClientKeyFile))},
	} {
		t.Run(name, func(t *testing.T) {
			seen.Store("")
			c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, TLS: tc})
			if _, err := c.Do(context.Background(), &Request{URL: "/api/v1/nodes"}); err != nil {
				t.Fatalf("request: %v", err)
			}
			if got := seen.Load(); got != "ferry" {
				t.Errorf("server saw client certificate %q, want ferry's", got)
			}
		})
	}
}

// oneLine is PEM squeezed onto one line, \n sequences for its line breaks.
func oneLine(pem string) string { return strings.ReplaceAll(pem, "\n", `\n`) }

// The CA bundle verifies every host the config's requests reach (a link to
// another host of the same private CA); the client certificate, a
// credential, is offered only to the config's own host, as headers and
// auth are.
func TestTLSOtherHostGetsCANotCertificate(t *testing.T) {
	pki := tlstest.New(t)
	cfg := pki.ServerConfig(t, false)
	cfg.ClientAuth = tls.RequestClientCert // asks, does not require: records whether one came
	var offered atomic.Int64
	other := tlstest.Server(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offered.Add(int64(len(r.TLS.PeerCertificates)))
		okHandler(w, r)
	}))
	own := tlstest.Server(t, pki.ServerConfig(t, true, "localhost"), http.HandlerFunc(okHandler))
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: strings.Replace(own.URL, "127.0.0.1", "localhost", 1),
		TLS: TLS{CAFile: pki.CAFile, ClientCertFile: pki.ClientCertFile, ClientKeyFile: pki.ClientKeyFile}})
	ctx := context.Background()
	if _, err := c.Do(ctx, &Request{URL: "/own"}); err != nil {
		t.Fatalf("own host: %v", err)
	}
	if _, err := c.Do(ctx, &Request{URL: other.URL + "/export/1.json"}); err != nil {
		t.Fatalf("other host of the same CA: %v", err)
	}
	if n := offered.Load(); n != 0 {
		t.Errorf("the client certificate was offered to another host (%d certificates)", n)
	}
}

// server_name verifies a host reached by an address its certificate does
// not name (an IP, an internal alias) against the name it does hold.
func TestTLSServerName(t *testing.T) {
	pki := tlstest.New(t)
	srv := tlstest.Server(t, pki.ServerConfig(t, false, "kubernetes.default.svc"), http.HandlerFunc(okHandler))
	ctx := context.Background()
	c := mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, TLS: TLS{CAFile: pki.CAFile}})
	_, err := c.Do(ctx, &Request{URL: "/version"})
	if err == nil || !strings.Contains(err.Error(), "tls.server_name") {
		t.Fatalf("certificate for another name: error %v, want one that suggests tls.server_name", err)
	}
	c = mustClient(t, testPool(newFakeClock(), 0, nil), HostConfig{BaseURL: srv.URL, TLS: TLS{CAFile: pki.CAFile, ServerName: "kubernetes.default.svc"}})
	if _, err := c.Do(ctx, &Request{URL: "/version"}); err != nil {
		t.Fatalf("with server_name: %v", err)
	}
}

// An OAuth2 token URL of the same spec gets the same TLS: its CA and its
// client certificate (token endpoints of mTLS clients, RFC 8705).
func TestTLSTokenURL(t *testing.T) {
	pki := tlstest.New(t)
	tokens := tlstest.Server(t, pki.ServerConfig(t, true), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"tok-123456","expires_in":3600}`))
	}))
	api := tlstest.Server(t, pki.ServerConfig(t, false), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123456" {
			w.WriteHeader(401)
			return
		}
		okHandler(w, r)
	}))
	auth := Auth{Type: AuthOAuth2, TokenURL: tokens.URL + "/token", ClientID: "id", ClientSecret: "secret-value"}
	ctx := context.Background()

	// One pool: a config with other TLS does not share the token source
	// (and its client) of one with the same auth.
	p := testPool(newFakeClock(), 0, nil)
	c := mustClient(t, p, HostConfig{BaseURL: api.URL, Auth: auth, TLS: TLS{CAFile: pki.CAFile}})
	if _, err := c.Do(ctx, &Request{URL: "/apps"}); err == nil || !strings.Contains(err.Error(), "client_cert_file") {
		t.Errorf("token URL requiring a client certificate, none given: error %v, want one naming client_cert_file", err)
	}
	c = mustClient(t, p, HostConfig{BaseURL: api.URL, Auth: auth,
		TLS: TLS{CAFile: pki.CAFile, ClientCertFile: pki.ClientCertFile, ClientKeyFile: pki.ClientKeyFile}})
	if _, err := c.Do(ctx, &Request{URL: "/apps"}); err != nil {
		t.Fatalf("token URL with the spec's tls: %v", err)
	}
}

// Bad files fail Client, before any request, naming the option and the
// file and never a key's content.
func TestTLSBadFiles(t *testing.T) {
	pki := tlstest.New(t)
	keyPEM, err := os.ReadFile(pki.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	notPEM := pki.Write(t, "ca.der", []byte{0x30, 0x82, 0x01, 0x0a})
	other, err := os.ReadFile(pki.OtherKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := string(other)
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := string(ca)
	for _, tc := range []struct {
		name string
		tls  TLS
		want []string
	}{
		{"missing ca", TLS{CAFile: pki.Dir + "/nope.pem"}, []string{"tls.ca_file", "nope.pem", "no such file"}},
		{"ca not PEM", TLS{CAFile: notPEM}, []string{"tls.ca_file", "ca.der", "DER"}},
		{"key as ca", TLS{CAFile: pki.ClientKeyFile}, []string{"tls.ca_file", "private key"}},
		{"cert without key", TLS{ClientCertFile: pki.ClientCertFile}, []string{"tls.client_cert_file", "no client key (client_key_file, client_key_pem)"}},
		{"key without cert", TLS{ClientKeyFile: pki.ClientKeyFile}, []string{"tls.client_key_file", "no client certificate (client_cert_file, client_cert_pem)"}},
		{"key of another cert", TLS{ClientCertFile: pki.ClientCertFile, ClientKeyFile: pki.OtherKeyFile}, []string{"tls.client_key_file", "other-key.pem", "does not go with client_cert_file"}},
		{"min version", TLS{MinVersion: "1.1"}, []string{"tls.min_version"}},
		{"inline key of another cert", TLS{ClientCertFile: pki.ClientCertFile, ClientKeyPEM: otherKey}, []string{"tls.client_key_pem: does not go with client_cert_file"}},
		{"inline key, no cert", TLS{ClientKeyPEM: string(keyPEM)}, []string{"tls.client_key_pem: there is no client certificate"}},
		{"ca file and inline", TLS{CAFile: pki.CAFile, CAPEM: caPEM}, []string{"tls.ca_file and tls.ca_pem are both given"}},
		{"inline key as cert", TLS{ClientCertPEM: string(keyPEM), ClientKeyPEM: string(keyPEM)}, []string{"tls.client_cert_pem: starts with a private key", "its key in client_key_pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
			_, err := testPool(newFakeClock(), 0, nil).Client(HostConfig{BaseURL: srv.URL, TLS: tc.tls})
			if err == nil {
				t.Fatal("Client accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, k := range [][]byte{keyPEM, other} {
				if strings.Contains(err.Error(), string(k[30:60])) {
					t.Errorf("error %q shows key material", err)
				}
			}
			if hits.Load() != 0 {
				t.Error("a request was sent")
			}
		})
	}
}

// A recorder wrapping the pool's transports (ferry run --record) records
// through the spec's TLS, not around it.
func TestTLSWrapTransport(t *testing.T) {
	pki := tlstest.New(t)
	srv := tlstest.Server(t, pki.ServerConfig(t, true), http.HandlerFunc(okHandler))
	var wrapped atomic.Int64
	p := NewPool(Options{WrapTransport: func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			wrapped.Add(1)
			return next.RoundTrip(r)
		})
	}})
	c := mustClient(t, p, HostConfig{BaseURL: srv.URL, TLS: TLS{CAFile: pki.CAFile, ClientCertFile: pki.ClientCertFile, ClientKeyFile: pki.ClientKeyFile}})
	if _, err := c.Do(context.Background(), &Request{URL: "/apps"}); err != nil {
		t.Fatal(err)
	}
	if wrapped.Load() != 1 {
		t.Errorf("wrapper saw %d requests, want 1", wrapped.Load())
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
