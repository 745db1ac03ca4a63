// Package tlsfiles reads the PEM of a spec's http.tls, from files or given
// inline (a CI secret holds the PEM itself): a CA bundle and a client
// certificate with its key. Package spec checks them at validation,
// package fetch loads them for the run; both say the same thing about bad
// PEM. Messages name the option and the file, never the content (a key is
// a secret).
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

// FileError is a problem with the PEM of one option of a tls block. Its
// message is "PATH: what is wrong", or only what is wrong for PEM given
// inline; Option names the option.
type FileError struct {
	Option string // ca_file, ca_pem, client_cert_file, client_cert_pem…
	Path   string // "" for PEM given inline
	Err    error
}

func (e *FileError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}
func (e *FileError) Unwrap() error { return e.Err }

// Source is where PEM comes from: the option that gives it, and the file
// it names, or no Path for PEM given inline.
type Source struct{ Option, Path string }

func (s Source) fail(err error) error { return &FileError{Option: s.Option, Path: s.Path, Err: err} }

// String names the source in a message: the option, and the file if any.
func (s Source) String() string {
	if s.Path == "" {
		return s.Option
	}
	return s.Option + " " + s.Path
}

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

// Unfold gives PEM pasted into one line with literal \n sequences (as
// environment variables and CI secrets often hold it) its line breaks
// back; other text is returned as it is.
func Unfold(pem []byte) []byte {
	if bytes.IndexByte(pem, '\n') < 0 && bytes.Contains(pem, []byte(`\n`)) {
		return bytes.ReplaceAll(pem, []byte(`\n`), []byte("\n"))
	}
	return pem
}

// Data is the PEM of src: its file's content, or inline when src names no
// file.
func Data(src Source, inline string) ([]byte, error) {
	if src.Path == "" {
		return []byte(inline), nil
	}
	return read(src.Option, src.Path)
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
	return ParseCAs(Source{"ca_file", path}, data)
}

// ParseCAs is ReadCAs of PEM already read, or given inline.
func ParseCAs(src Source, data []byte) ([]*x509.Certificate, error) {
	fail := src.fail
	data = Unfold(data)
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
	return ParseKeyPair(Source{"client_cert_file", certPath}, certPEM, Source{"client_key_file", keyPath}, keyPEM)
}

// ParseKeyPair is ReadKeyPair of PEM already read, or given inline.
func ParseKeyPair(cert Source, certPEM []byte, key Source, keyPEM []byte) (tls.Certificate, error) {
	certErr, keyErr := cert.fail, key.fail
	certPEM, keyPEM = Unfold(certPEM), Unfold(keyPEM)
	if b, _ := pem.Decode(certPEM); b == nil {
		return tls.Certificate{}, certErr(errors.New(noPEM(certPEM, "a certificate")))
	} else if b.Type != "CERTIFICATE" {
		return tls.Certificate{}, certErr(fmt.Errorf("starts with a %s block: want the client certificate (CERTIFICATE) here, its key in %s", blockName(b.Type), key.Option))
	}
	b, _ := pem.Decode(keyPEM)
	switch {
	case b == nil:
		return tls.Certificate{}, keyErr(errors.New(noPEM(keyPEM, "a private key")))
	case strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") || b.Type == "ENCRYPTED PRIVATE KEY":
		return tls.Certificate{}, keyErr(errors.New("the key is encrypted: give it decrypted (openssl pkey -in KEY -out KEY.plain), in a file only ferry's user can read"))
	case !strings.HasSuffix(b.Type, "PRIVATE KEY"):
		return tls.Certificate{}, keyErr(fmt.Errorf("starts with a %s block: want the private key of %s", b.Type, cert.Option))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's messages name block types and mismatches, never bytes.
		return tls.Certificate{}, keyErr(fmt.Errorf("does not go with %s: %w", cert, err))
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
