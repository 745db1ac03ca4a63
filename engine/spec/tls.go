package spec

import (
	"errors"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ferry-etl/ferry/engine/internal/tlsfiles"
)

// checkTLS checks what a tls block needs whatever its values: each PEM
// from a file or inline, not both; a client certificate comes with its
// key; a block that trusts no CA at all would refuse every host; and a
// client key given inline comes from a secret input, never the spec.
func (p *parser) checkTLS(t *TLS, path string) {
	if t == nil {
		return
	}
	for _, x := range []struct {
		file, inline       *Tmpl
		fileKey, inlineKey string
	}{
		{&t.CAFile, &t.CAPEM, "ca_file", "ca_pem"},
		{&t.ClientCertFile, &t.ClientCertPEM, "client_cert_file", "client_cert_pem"},
		{&t.ClientKeyFile, &t.ClientKeyPEM, "client_key_file", "client_key_pem"},
	} {
		if x.file.Set && x.inline.Set {
			p.errorAt(x.inline.P, path+"."+x.inlineKey, "%s and %s are both given: one or the other (the file, or the PEM itself)", x.fileKey, x.inlineKey)
		}
	}
	cert, key := t.ClientCertFile.Set || t.ClientCertPEM.Set, t.ClientKeyFile.Set || t.ClientKeyPEM.Set
	switch {
	case cert && !key:
		at, k := t.ClientCertFile.P, "client_cert_file"
		if !t.ClientCertFile.Set {
			at, k = t.ClientCertPEM.P, "client_cert_pem"
		}
		p.errorAt(at, path+"."+k, "a client certificate needs its key: add client_key_file (or client_key_pem)")
	case key && !cert:
		at, k := t.ClientKeyFile.P, "client_key_file"
		if !t.ClientKeyFile.Set {
			at, k = t.ClientKeyPEM.P, "client_key_pem"
		}
		p.errorAt(at, path+"."+k, "a client key needs its certificate: add client_cert_file (or client_cert_pem)")
	}
	if t.SystemRoots.Set && !t.SystemRoots.V && !t.CAFile.Set && !t.CAPEM.Set {
		p.errorAt(t.SystemRoots.P, path+".system_roots", "system_roots: false trusts ca_file (or ca_pem) alone, and there is neither: every host would be refused")
	}
	if k := t.ClientKeyPEM; k.Set && !strings.Contains(k.V, "${") {
		p.errorAt(k.P, path+".client_key_pem", "a private key written in the spec: give it from a secret config input (client_key_pem: ${ config.client_key }, with secret: true)")
	}
}

// configRefRE finds the config inputs a template reads by name.
var configRefRE = regexp.MustCompile(`\bconfig\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)`)

// checkInlineKeys warns of a client key given inline from config inputs
// none of which is secret: its value would not be redacted from logs and
// errors. (One written in the spec is an error of checkTLS.)
func (p *parser) checkInlineKeys(f *File) {
	check := func(h *HTTP, path string) {
		if h == nil || h.TLS == nil || !h.TLS.ClientKeyPEM.Set {
			return
		}
		k := h.TLS.ClientKeyPEM
		if !strings.Contains(k.V, "${") {
			return
		}
		var names []string
		for _, m := range configRefRE.FindAllStringSubmatch(k.V, -1) {
			names = append(names, m[1])
		}
		for _, it := range f.Config.Items {
			if it.Value.Secret.V && slices.Contains(names, it.Key) {
				return
			}
		}
		p.warnAt(k.P, path+".tls.client_key_pem", "the client key comes from no secret input: mark its config input secret: true, so that its value is redacted from logs and errors")
	}
	check(&f.HTTP, "http")
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		check(s.HTTP, "streams."+s.Name+".http")
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
	// inline is PEM written in the spec itself (a CA bundle or a
	// certificate: public); from config, the run checks it.
	inline := func(x *Tmpl, key string) file {
		f := file{opt: x, key: key}
		if tm := x.Template(); tm != nil && tm.IsLiteral() && tm.LiteralPrefix() != "" {
			f.data, f.ok = []byte(tm.LiteralPrefix()), true
		}
		return f
	}
	either := func(fileOpt *Tmpl, fileKey string, inlineOpt *Tmpl, inlineKey string) file {
		if inlineOpt.Set {
			return inline(inlineOpt, inlineKey)
		}
		return read(fileOpt, fileKey)
	}
	src := func(f file) tlsfiles.Source { return tlsfiles.Source{Option: f.key, Path: f.name} }
	if ca := either(&t.CAFile, "ca_file", &t.CAPEM, "ca_pem"); ca.ok {
		if _, err := tlsfiles.ParseCAs(src(ca), ca.data); err != nil {
			p.errorAt(ca.opt.P, path+"."+ca.key, "%v", err)
		}
	}
	cert := either(&t.ClientCertFile, "client_cert_file", &t.ClientCertPEM, "client_cert_pem")
	key := read(&t.ClientKeyFile, "client_key_file") // a key written inline is an error of checkTLS
	if !cert.ok || !key.ok {
		return // one of the pair comes from config (the run reads both), or was reported
	}
	if _, err := tlsfiles.ParseKeyPair(src(cert), cert.data, src(key), key.data); err != nil {
		at, k := cert.opt.P, cert.key
		var fe *tlsfiles.FileError
		if errors.As(err, &fe) && fe.Option == key.key {
			at, k = key.opt.P, key.key
		}
		p.errorAt(at, path+"."+k, "%v", err)
	}
}
