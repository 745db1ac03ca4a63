package fetch

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/go-resty/resty/v2"

	"github.com/ferry-etl/ferry/engine/internal/tlsfiles"
)

// TLS says how a config's requests verify their hosts and prove who sends
// them, for self-hosted APIs behind a private CA. The zero value is Go's
// default: the system's roots, no client certificate.
//
// The CA bundle and the lowest version apply to every host the config's
// requests reach (its base URL's, its token URL's, links to other hosts):
// trusting a CA sends nothing. The client certificate, a credential, goes
// only where the config's credentials go (its base URL's host, and the
// auth's token, login and exchange requests; without a BaseURL, every
// host, as credentials); ServerName only to the base URL's host (and a
// token request to that host), as it names that host.
//
// Each PEM comes from a file or inline (the *PEM fields: a CI secret that
// holds the PEM itself), not both.
type TLS struct {
	CAFile         string // PEM bundle trusted besides the system's roots
	CAPEM          string // or the bundle itself
	NoSystemRoots  bool   // trust the bundle alone
	ClientCertFile string // PEM client certificate (mutual TLS), with
	ClientKeyFile  string // its unencrypted PEM key
	ClientCertPEM  string // or the certificate itself,
	ClientKeyPEM   string // and the key itself
	ServerName     string // the name the base URL's host is verified against, and its SNI
	MinVersion     string // "1.2" or "1.3"; "" is Go's default (1.2)
}

func (t TLS) zero() bool { return t == TLS{} }

// tlsSetup is a TLS with its files read, shared by every client of equal
// settings.
type tlsSetup struct {
	roots      *x509.CertPool // nil: the system's
	certs      []tls.Certificate
	min        uint16
	serverName string
}

// SetupError is a TLS setting that cannot be used (a file missing,
// unreadable or malformed, a certificate without its key): the config's
// problem, told before any request, not a failed run.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// loadTLS reads t's files once per pool and settings: a missing, unreadable
// or malformed file fails Pool.Client, before any request, with a
// SetupError.
func (p *Pool) loadTLS(t TLS) (*tlsSetup, error) {
	s, err := p.readTLS(t)
	if err != nil {
		return nil, &SetupError{Err: err}
	}
	return s, nil
}

func (p *Pool) readTLS(t TLS) (*tlsSetup, error) {
	if t.zero() {
		return nil, nil
	}
	p.mu.Lock()
	s, ok := p.tlsSetups[t]
	p.mu.Unlock()
	if ok {
		return s, nil
	}
	s = &tlsSetup{serverName: t.ServerName}
	if t.MinVersion != "" {
		v, ok := tlsfiles.MinVersions[t.MinVersion]
		if !ok {
			return nil, fmt.Errorf("tls.min_version %q: want 1.2 or 1.3", t.MinVersion)
		}
		s.min = v
	}
	ca, err := pemSource(t.CAFile, t.CAPEM, "ca_file", "ca_pem")
	if err != nil {
		return nil, err
	}
	switch {
	case t.NoSystemRoots && ca == nil:
		return nil, errors.New("tls.system_roots is false and there is no CA bundle (ca_file, ca_pem): every host would be refused")
	case ca != nil:
		data, err := tlsfiles.Data(*ca, t.CAPEM)
		if err != nil {
			return nil, tlsFileErr(err)
		}
		cas, err := tlsfiles.ParseCAs(*ca, data)
		if err != nil {
			return nil, tlsFileErr(err)
		}
		if t.NoSystemRoots {
			s.roots = x509.NewCertPool()
		} else if s.roots, err = x509.SystemCertPool(); err != nil {
			// No system pool (an unusual platform): the bundle alone,
			// which is what was asked to be trusted.
			s.roots = x509.NewCertPool()
		}
		for _, c := range cas {
			s.roots.AddCert(c)
		}
	}
	cert, err := pemSource(t.ClientCertFile, t.ClientCertPEM, "client_cert_file", "client_cert_pem")
	if err != nil {
		return nil, err
	}
	key, err := pemSource(t.ClientKeyFile, t.ClientKeyPEM, "client_key_file", "client_key_pem")
	if err != nil {
		return nil, err
	}
	switch {
	case cert != nil && key != nil:
		certPEM, err := tlsfiles.Data(*cert, t.ClientCertPEM)
		if err != nil {
			return nil, tlsFileErr(err)
		}
		keyPEM, err := tlsfiles.Data(*key, t.ClientKeyPEM)
		if err != nil {
			return nil, tlsFileErr(err)
		}
		pair, err := tlsfiles.ParseKeyPair(*cert, certPEM, *key, keyPEM)
		if err != nil {
			return nil, tlsFileErr(err)
		}
		s.certs = []tls.Certificate{pair}
	case cert != nil:
		return nil, fmt.Errorf("tls.%s: there is no client key (client_key_file, client_key_pem)", cert)
	case key != nil:
		return nil, fmt.Errorf("tls.%s: there is no client certificate (client_cert_file, client_cert_pem)", key)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.tlsSetups[t]; ok {
		return prev, nil
	}
	p.tlsSetups[t] = s
	return s, nil
}

// pemSource is where one PEM comes from: the file, the PEM given inline,
// or neither (nil); both is an error, as a spec cannot mean both.
func pemSource(file, inline, fileOpt, inlineOpt string) (*tlsfiles.Source, error) {
	switch {
	case file != "" && inline != "":
		return nil, fmt.Errorf("tls.%s and tls.%s are both given: one or the other", fileOpt, inlineOpt)
	case file != "":
		return &tlsfiles.Source{Option: fileOpt, Path: file}, nil
	case inline != "":
		return &tlsfiles.Source{Option: inlineOpt}, nil
	}
	return nil, nil
}

func tlsFileErr(err error) error {
	var fe *tlsfiles.FileError
	if errors.As(err, &fe) {
		if fe.Path == "" {
			return fmt.Errorf("tls.%s: %w", fe.Option, err)
		}
		return fmt.Errorf("tls.%s %w", fe.Option, err)
	}
	return fmt.Errorf("tls: %w", err)
}

// config is the tls.Config of a transport: own is the config's own host
// (client certificate, and serverName when not empty).
func (s *tlsSetup) config(own bool, serverName string) *tls.Config {
	c := &tls.Config{RootCAs: s.roots, MinVersion: s.min}
	if own {
		c.Certificates = s.certs
		c.ServerName = serverName
	}
	return c
}

// restKey identifies one transport made for a TLS setup.
type restKey struct {
	origin     string
	setup      *tlsSetup
	own        bool
	serverName string
}

// restFor returns the resty client that sends c's requests to origin
// through h: the host's own when c has no TLS settings (or the pool's
// transport replaces them all), else one whose transport carries them.
// Limits stay the host's, whichever transport sends.
func (c *Client) restFor(origin string, h *host) *resty.Client {
	if c.tls == nil || c.pool.transport != nil {
		return h.rest
	}
	own := origin == c.origin || c.base == nil
	k := restKey{origin: origin, setup: c.tls, own: own}
	if own {
		k.serverName = c.tlsName
	}
	p := c.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if rc, ok := p.tlsRest[k]; ok {
		return rc
	}
	limit, _ := h.gate.stats()
	tr := p.hostTransport(limit)
	tr.TLSClientConfig = c.tls.config(own, k.serverName)
	rc := p.restClient(tr, true)
	p.tlsRest[k] = rc
	return rc
}

// connBuffer is the size of a connection's write and read buffers (Go's
// default is 4 KiB): a Port bulk write of 20 entities or an API page goes
// out in one write and comes in with few reads, where 4 KiB cost a system
// call each (a Humanitec run to Port made 26% fewer writes and 22% fewer
// reads, and spent about 5% less CPU).
const connBuffer = 64 << 10

// hostTransport is a transport for a host of concurrency requests at once.
func (p *Pool) hostTransport(concurrency int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = max(tr.MaxIdleConns, concurrency)
	tr.MaxIdleConnsPerHost = concurrency
	tr.MaxConnsPerHost = concurrency
	tr.WriteBufferSize, tr.ReadBufferSize = connBuffer, connBuffer
	return tr
}

// tlsHint is what to do about a TLS failure, for its message; "" when the
// error is not one.
func tlsHint(err error, hostname string, c *Client) string {
	var (
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &uae):
		if c.tls != nil && c.tls.roots != nil {
			return fmt.Sprintf("the certificate of %s is not signed by a CA of tls.ca_file (nor the system's): give the bundle of the CA that signed it", hostname)
		}
		return fmt.Sprintf("the certificate of %s is not signed by a CA the system trusts: set http.tls.ca_file to the PEM bundle of the CA that signed it (a private or corporate CA)", hostname)
	case errors.As(err, &hne):
		return fmt.Sprintf("the certificate of %s is for other names: fix the URL's host, or set http.tls.server_name to a name the certificate holds", hostname)
	case errors.As(err, &cie):
		return fmt.Sprintf("the certificate of %s is not valid (expired, or not for a server); the server's certificate must be renewed", hostname)
	case remoteAlert(err, clientCertAlerts...):
		if c.tls == nil || len(c.tls.certs) == 0 {
			return fmt.Sprintf("%s asks for a client certificate: set http.tls.client_cert_file and client_key_file", hostname)
		}
		return fmt.Sprintf("%s refused the client certificate of tls.client_cert_file (not signed by a CA it trusts, or expired)", hostname)
	}
	return ""
}

// clientCertAlerts are the alerts a server refuses a client certificate,
// or its absence, with (RFC 8446, section 6.2).
var clientCertAlerts = []string{"bad certificate", "certificate required", "unknown certificate authority", "certificate unknown", "unsupported certificate", "certificate expired", "certificate revoked", "access denied"}

// remoteAlert reports whether err is a TLS alert the server sent, with one
// of the descriptions given. crypto/tls does not export the alert it
// received: its text is what there is ("remote error: tls: bad
// certificate").
func remoteAlert(err error, descs ...string) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return false
	}
	return slices.Contains(descs, strings.TrimPrefix(oe.Err.Error(), "tls: "))
}
