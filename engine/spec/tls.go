package spec

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/ferry-etl/ferry/engine/internal/tlsfiles"
)

// checkTLS checks what a tls block needs whatever its values: a client
// certificate comes with its key, and a block that trusts no CA at all
// would refuse every host.
func (p *parser) checkTLS(t *TLS, path string) {
	if t == nil {
		return
	}
	switch {
	case t.ClientCertFile.Set && !t.ClientKeyFile.Set:
		p.errorAt(t.ClientCertFile.P, path+".client_cert_file", "a client certificate needs its key: add client_key_file")
	case t.ClientKeyFile.Set && !t.ClientCertFile.Set:
		p.errorAt(t.ClientKeyFile.P, path+".client_key_file", "a client key needs its certificate: add client_cert_file")
	}
	if t.SystemRoots.Set && !t.SystemRoots.V && !t.CAFile.Set {
		p.errorAt(t.SystemRoots.P, path+".system_roots", "system_roots: false trusts ca_file alone, and there is no ca_file: every host would be refused")
	}
}

// checkTLSFiles reads the files a tls block names literally (a template
// over config is read by the run, before its first request): a missing or
// unreadable file, one that is not PEM, a key that does not match its
// certificate, each at its option. A relative path is read from the spec's
// directory, as the run reads it; without a file system (a spec parsed in
// memory) nothing is read.
func (p *parser) checkTLSFiles(t *TLS, path string) {
	if t == nil || p.fsys == nil {
		return
	}
	type file struct {
		opt  *Tmpl
		key  string
		name string
		data []byte
		ok   bool // literal and read
	}
	read := func(x *Tmpl, key string) file {
		f := file{opt: x, key: key}
		tm := x.Template()
		if tm == nil || !tm.IsLiteral() || tm.LiteralPrefix() == "" {
			return f
		}
		f.name = tm.LiteralPrefix()
		var err error
		switch {
		case !filepath.IsAbs(f.name) && fs.ValidPath(filepath.ToSlash(f.name)):
			f.data, err = tlsfiles.ReadFS(p.fsys, key, filepath.ToSlash(f.name))
		case filepath.IsAbs(f.name):
			f.data, err = tlsfiles.ReadFile(key, f.name)
		default: // ../certs/ca.pem: beside the spec's directory
			f.data, err = tlsfiles.ReadFile(key, filepath.Join(filepath.Dir(p.file), f.name))
		}
		if err != nil {
			p.errorAt(x.P, path+"."+key, "%v", err)
			return f
		}
		f.ok = true
		return f
	}
	if ca := read(&t.CAFile, "ca_file"); ca.ok {
		if _, err := tlsfiles.ParseCAs(ca.name, ca.data); err != nil {
			p.errorAt(ca.opt.P, path+".ca_file", "%v", err)
		}
	}
	cert, key := read(&t.ClientCertFile, "client_cert_file"), read(&t.ClientKeyFile, "client_key_file")
	if !cert.ok || !key.ok {
		return // one of the pair comes from config (the run reads both), or was reported
	}
	if _, err := tlsfiles.ParseKeyPair(cert.name, cert.data, key.name, key.data); err != nil {
		at, k := cert.opt.P, cert.key
		var fe *tlsfiles.FileError
		if errors.As(err, &fe) && fe.Option == key.key {
			at, k = key.opt.P, key.key
		}
		p.errorAt(at, path+"."+k, "%v", err)
	}
}
