// Package tlstest makes, at test time, the certificates a test of
// http.tls needs: a private CA with a server certificate, a client CA with
// a client certificate, and PEM files of them. Nothing here is committed
// key material; every key lives for one test.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test's certificates and the PEM files written for them.
type PKI struct {
	Dir string // where the files are

	CAFile         string // the server CA, PEM
	OtherCAFile    string // a CA that signed nothing the servers use
	ClientCertFile string // a client certificate signed by the client CA
	ClientKeyFile  string // its key (PKCS #8)
	OtherKeyFile   string // a key that is not the client certificate's

	ca, clientCA *issuer
	clientPool   *x509.CertPool
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// New makes a PKI whose files are in a temporary directory of t.
func New(t testing.TB) *PKI {
	t.Helper()
	k := &PKI{Dir: t.TempDir()}
	k.ca = newCA(t, "ferry test server CA")
	k.clientCA = newCA(t, "ferry test client CA")
	other := newCA(t, "ferry test unrelated CA")
	k.clientPool = x509.NewCertPool()
	k.clientPool.AddCert(k.clientCA.cert)

	clientKey, clientDER := k.clientCA.sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "ferry", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	otherKey, _ := k.clientCA.sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "someone else"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	k.CAFile = k.write(t, "ca.pem", pemBlock("CERTIFICATE", k.ca.der))
	k.OtherCAFile = k.write(t, "other-ca.pem", pemBlock("CERTIFICATE", other.der))
	k.ClientCertFile = k.write(t, "client.pem", pemBlock("CERTIFICATE", clientDER))
	k.ClientKeyFile = k.write(t, "client-key.pem", keyPEM(t, clientKey))
	k.OtherKeyFile = k.write(t, "other-key.pem", keyPEM(t, otherKey))
	return k
}

// Write writes a file into the PKI's directory and returns its path.
func (k *PKI) Write(t testing.TB, name string, data []byte) string { return k.write(t, name, data) }

func (k *PKI) write(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(k.Dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ServerConfig is the TLS of a server whose certificate, signed by the
// PKI's CA, is for names (DNS names or IP addresses; none: 127.0.0.1 and
// localhost). With clientCert the server requires a client certificate
// signed by the client CA.
func (k *PKI) ServerConfig(t testing.TB, clientCert bool, names ...string) *tls.Config {
	t.Helper()
	if len(names) == 0 {
		names = []string{"127.0.0.1", "localhost"}
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	key, der := k.ca.sign(t, tmpl)
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	if clientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = k.clientPool
	}
	return cfg
}

// Server starts an HTTPS test server with cfg (from ServerConfig).
func Server(t testing.TB, cfg *tls.Config, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = cfg
	// The handshake errors a test provokes are expected: keep them quiet.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func newCA(t testing.TB, name string) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{cert: cert, key: key, der: der}
}

// sign issues a leaf certificate from tmpl with a new key.
func (is *issuer) sign(t testing.TB, tmpl *x509.Certificate) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.cert, &key.PublicKey, is.key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func keyPEM(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}
