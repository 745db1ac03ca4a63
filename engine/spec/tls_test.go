package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/apitest/tlstest"
)

// Validation reads the files a tls block names literally, relative to the
// spec's directory or absolute, and reports each problem at its option:
// a missing file, one that is not PEM, a key given as the CA, a key that
// is not the certificate's. Good files pass. The certificates are made by
// the test; no key is committed.
func TestTLSFilesValidate(t *testing.T) {
	pki := tlstest.New(t)
	pki.Write(t, "ca.der", []byte{0x30, 0x82, 0x01, 0x0a})
	pki.Write(t, "encrypted-key.pem", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBAA==\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	spec := func(ca, cert, key string) string {
		return "version: 1\nname: demo\nhttp:\n  base_url: https://k8s.example.com:6443\n  tls:\n" +
			"    ca_file: " + ca + "\n    client_cert_file: " + cert + "\n    client_key_file: " + key + "\n" +
			"streams:\n  a:\n    request:\n      path: /a\n"
	}
	for _, tc := range []struct {
		name, ca, cert, key string
		want                string
	}{
		{name: "good, relative", ca: "ca.pem", cert: "client.pem", key: "client-key.pem"},
		{name: "good, absolute", ca: pki.CAFile, cert: pki.ClientCertFile, key: pki.ClientKeyFile},
		{name: "missing", ca: "nope.pem", cert: "client.pem", key: "client-key.pem",
			want: "spec.yaml:6:14: http.tls.ca_file: nope.pem: no such file\n"},
		{name: "missing absolute", ca: "/nonexistent/ca.pem", cert: "client.pem", key: "client-key.pem",
			want: "spec.yaml:6:14: http.tls.ca_file: /nonexistent/ca.pem: no such file\n"},
		{name: "DER", ca: "ca.der", cert: "client.pem", key: "client-key.pem",
			want: "spec.yaml:6:14: http.tls.ca_file: ca.der: binary (DER), not PEM: convert it with openssl x509 -inform der -in FILE -out FILE.pem\n"},
		{name: "key as CA", ca: "client-key.pem", cert: "client.pem", key: "client-key.pem",
			want: "spec.yaml:6:14: http.tls.ca_file: client-key.pem: holds a private key (PRIVATE KEY) block: want CERTIFICATE blocks only\n"},
		{name: "cert and key swapped", ca: "ca.pem", cert: "client-key.pem", key: "client.pem",
			want: "spec.yaml:7:23: http.tls.client_cert_file: client-key.pem: starts with a private key (PRIVATE KEY) block: want the client certificate (CERTIFICATE) here, its key in client_key_file\n"},
		{name: "encrypted key", ca: "ca.pem", cert: "client.pem", key: "encrypted-key.pem",
			want: "spec.yaml:8:22: http.tls.client_key_file: encrypted-key.pem: the key is encrypted: give it decrypted (openssl pkey -in KEY -out KEY.plain), in a file only ferry's user can read\n"},
		{name: "another key", ca: "ca.pem", cert: "client.pem", key: "other-key.pem",
			want: "spec.yaml:8:22: http.tls.client_key_file: other-key.pem: does not go with client_cert_file client.pem: tls: private key does not match public key\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(pki.Dir, "spec.yaml")
			if err := os.WriteFile(path, []byte(spec(tc.ca, tc.cert, tc.key)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			got := strings.ReplaceAll(errorLines(t, err), path, "spec.yaml")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
