// Package tlsfiles reads the PEM files of a spec's http.tls: a CA bundle
// and a client certificate with its key. Package spec checks them at
// validation, package fetch loads them for the run; both say the same
// thing about a bad file. Messages name the file, never its content (a
// key is a secret).
package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// MaxFileSize bounds a PEM file read: a CA bundle of every public root is
// about 250 KiB.
const MaxFileSize = 8 << 20

// MinVersions are the values of tls.min_version. Go's client already
// refuses anything older than 1.2; lowering it is not offered.
var MinVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// FileError is a problem with one file of a tls block. Its message is
// "PATH: what is wrong"; Option names the option that gave the path.
type FileError struct {
	Option string // ca_file, client_cert_file or client_key_file
	Path   string
	Err    error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

var errNoFile = errors.New("no such file")

// read reads a file of at most MaxFileSize bytes.
func read(option, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, pathErr(option, path, err)
	}
	defer f.Close()
	return readAll(option, path, f)
}

// ReadFile reads the file of option, of at most MaxFileSize bytes.
func ReadFile(option, path string) ([]byte, error) { return read(option, path) }

// ReadFS is ReadFile from fsys.
func ReadFS(fsys fs.FS, option, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, pathErr(option, name, err)
	}
	defer f.Close()
	return readAll(option, name, f)
}

func pathErr(option, path string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// One wording, whether read from the OS or from a spec's fs.FS.
		err = errNoFile
	case errors.As(err, &pe):
		err = pe.Err // its text repeats the path
	}
	return &FileError{Option: option, Path: path, Err: err}
}

func readAll(option, path string, r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, pathErr(option, path, err)
	}
	if len(b) > MaxFileSize {
		return nil, pathErr(option, path, fmt.Errorf("larger than %d MiB: not a PEM file", MaxFileSize>>20))
	}
	return b, nil
}

// ReadCAs reads a PEM bundle of CA certificates. A file holding no
// certificate, a block that is not one (a key given as the CA) or a
// certificate that does not parse is an error: trusting part of a bundle
// would fail later, at a host, with a less clear message.
func ReadCAs(path string) ([]*x509.Certificate, error) {
	data, err := read("ca_file", path)
	if err != nil {
		return nil, err
	}
	return ParseCAs(path, data)
}

// ParseCAs is ReadCAs of a file already read.
func ParseCAs(path string, data []byte) ([]*x509.Certificate, error) {
	fail := func(err error) error { return &FileError{Option: "ca_file", Path: path, Err: err} }
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fail(fmt.Errorf("holds a %s block: want CERTIFICATE blocks only", blockName(b.Type)))
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fail(fmt.Errorf("certificate %d does not parse: %w", len(certs)+1, err))
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fail(errors.New(noPEM(data, "CA certificates")))
	}
	return certs, nil
}

// ReadKeyPair reads a client certificate (with its chain) and its private
// key, and checks that they belong together. A mismatch is reported as a
// problem of the key file.
func ReadKeyPair(certPath, keyPath string) (tls.Certificate, error) {
	certPEM, err := read("client_cert_file", certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := read("client_key_file", keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	return ParseKeyPair(certPath, certPEM, keyPath, keyPEM)
}

// ParseKeyPair is ReadKeyPair of files already read.
func ParseKeyPair(certPath string, certPEM []byte, keyPath string, keyPEM []byte) (tls.Certificate, error) {
	certErr := func(err error) error { return &FileError{Option: "client_cert_file", Path: certPath, Err: err} }
	keyErr := func(err error) error { return &FileError{Option: "client_key_file", Path: keyPath, Err: err} }
	if b, _ := pem.Decode(certPEM); b == nil {
		return tls.Certificate{}, certErr(errors.New(noPEM(certPEM, "a certificate")))
	} else if b.Type != "CERTIFICATE" {
		return tls.Certificate{}, certErr(fmt.Errorf("starts with a %s block: want the client certificate (CERTIFICATE) here, its key in client_key_file", blockName(b.Type)))
	}
	b, _ := pem.Decode(keyPEM)
	switch {
	case b == nil:
		return tls.Certificate{}, keyErr(errors.New(noPEM(keyPEM, "a private key")))
	case strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") || b.Type == "ENCRYPTED PRIVATE KEY":
		return tls.Certificate{}, keyErr(errors.New("the key is encrypted: give it decrypted (openssl pkey -in KEY -out KEY.plain), in a file only ferry's user can read"))
	case !strings.HasSuffix(b.Type, "PRIVATE KEY"):
		return tls.Certificate{}, keyErr(fmt.Errorf("starts with a %s block: want the private key of client_cert_file", b.Type))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's messages name block types and mismatches, never bytes.
		return tls.Certificate{}, keyErr(fmt.Errorf("does not go with client_cert_file %s: %w", certPath, err))
	}
	return pair, nil
}

// noPEM says what a file holding no PEM block is likely to be.
func noPEM(data []byte, want string) string {
	if len(bytes.TrimSpace(data)) == 0 {
		return "empty: want " + want + " in PEM (-----BEGIN …)"
	}
	if data[0] == 0x30 {
		// An ASN.1 SEQUENCE: DER, the binary form.
		return "binary (DER), not PEM: convert it with openssl x509 -inform der -in FILE -out FILE.pem"
	}
	return "no PEM block (-----BEGIN …) in it: want " + want + " in PEM"
}

// blockName names a PEM block type in a message, briefly.
func blockName(t string) string {
	if strings.Contains(t, "PRIVATE KEY") {
		return "private key (" + t + ")"
	}
	return t
}
