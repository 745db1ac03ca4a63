package apitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Issuer kinds.
const (
	IssueSession = "session" // a login that hands out a session token
	IssueOAuth2  = "oauth2"  // an RFC 6749 token endpoint (or Port's JSON one)
	IssueJWT     = "jwt"     // GitHub App style: a signed JWT exchanged for a token
)

// GrantJWTBearer is RFC 7523's grant_type for a JWT sent as assertion.
const GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// Issuer is the API's own token endpoint, as unkind as real ones: its
// tokens expire (after TTL on the server's Clock, or after Uses requests),
// a rotated refresh token is good once, and a JWT must verify, name the
// right issuer and be fresh. With an Issuer the fixture's AuthCheck
// accepts only tokens it issued that are still valid (AuthCheck.Value is
// not used): in AuthCheck.Header after AuthCheck.Prefix, in
// AuthCheck.Query, or (session with Cookie) in that cookie. The endpoint
// itself is public, rate-limited and delayed like any route.
type Issuer struct {
	Kind   string `json:"kind" yaml:"kind"`
	Path   string `json:"path" yaml:"path"`                         // the token endpoint
	Method string `json:"method,omitempty" yaml:"method,omitempty"` // default POST

	// session: the login body (JSON or form) must hold these fields.
	Fields map[string]string `json:"fields,omitempty" yaml:"fields,omitempty"`
	// session: where the token goes in the answer: TokenPath (a dotted
	// path in the JSON body, default "token"), TokenHeader, or the cookie
	// named Cookie (Set-Cookie), which requests must then send back.
	TokenPath   string `json:"token_path,omitempty" yaml:"token_path,omitempty"`
	TokenHeader string `json:"token_header,omitempty" yaml:"token_header,omitempty"`
	Cookie      string `json:"cookie,omitempty" yaml:"cookie,omitempty"`

	// oauth2: the client credentials, accepted as HTTP basic auth, form
	// fields, or Port's JSON {clientId, clientSecret} (answered as
	// {accessToken, expiresIn, tokenType}).
	ClientID     string `json:"client_id,omitempty" yaml:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty" yaml:"client_secret,omitempty"`
	// oauth2: the refresh token the refresh_token grant accepts first.
	RefreshToken string `json:"refresh_token,omitempty" yaml:"refresh_token,omitempty"`
	// oauth2: every refresh hands out a new refresh token, and the one
	// used is refused from then on (invalid_grant), as rotating servers do.
	Rotate bool `json:"rotate,omitempty" yaml:"rotate,omitempty"`

	// jwt: the PEM public key (PKIX or PKCS #1) that verifies the JWT sent
	// as Authorization: Bearer, whose iss must be Iss and whose exp at
	// most ten minutes ahead. The answer is GitHub's {token, expires_at}.
	PublicKey string `json:"public_key,omitempty" yaml:"public_key,omitempty"`
	Iss       string `json:"iss,omitempty" yaml:"iss,omitempty"`
	// jwt: requests may also authenticate with the JWT itself, as
	// GitHub's /app endpoints take it.
	Direct bool `json:"direct,omitempty" yaml:"direct,omitempty"`
	// jwt: the JWT comes as the form field assertion, with grant_type
	// urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523, as Google's
	// and Salesforce's token endpoints take it), not as Authorization;
	// the answer is {access_token, token_type, expires_in} and errors
	// RFC 6749's {error, error_description}.
	Assertion bool `json:"assertion,omitempty" yaml:"assertion,omitempty"`

	TTL  Duration `json:"ttl" yaml:"ttl"`                       // lifetime of a token (0: no limit)
	Uses int      `json:"uses,omitempty" yaml:"uses,omitempty"` // requests a token serves (0: no limit)
	// Silent: the answer does not say when the token expires
	// (expires_in/expires_at), as some login endpoints do not.
	Silent bool `json:"silent,omitempty" yaml:"silent,omitempty"`
}

func (is *Issuer) validate(auth *AuthCheck) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("issuer: "+format, args...)) }
	if _, err := compilePath(is.Path); err != nil {
		add("path: %v", err)
	}
	if auth == nil {
		add("needs auth: the header or query where its tokens are checked")
	}
	switch is.Kind {
	case IssueSession:
		if is.TokenHeader != "" && is.Cookie != "" {
			add("token_header and cookie: give one")
		}
	case IssueOAuth2:
		if is.ClientID == "" || is.ClientSecret == "" {
			add("oauth2 needs client_id and client_secret")
		}
	case IssueJWT:
		if _, err := parsePublicKey(is.PublicKey); err != nil {
			add("public_key: %v", err)
		}
		if is.Iss == "" {
			add("jwt needs iss")
		}
	default:
		add("kind %q: want session, oauth2 or jwt", is.Kind)
	}
	if is.Uses < 0 {
		add("uses must not be negative")
	}
	return errs
}

// issued is one token the issuer handed out.
type issued struct {
	expires time.Time // zero: no time limit
	uses    int       // requests served
}

// issuerState is the tokens handed out so far.
type issuerState struct {
	cfg *Issuer
	pub crypto.PublicKey

	mu      sync.Mutex
	tokens  map[string]*issued
	refresh map[string]bool // refresh tokens still accepted
	count   int             // tokens handed out
	logins  int             // requests to the endpoint
}

func newIssuerState(cfg *Issuer) *issuerState {
	st := &issuerState{cfg: cfg, tokens: map[string]*issued{}, refresh: map[string]bool{}}
	if cfg.RefreshToken != "" {
		st.refresh[cfg.RefreshToken] = true
	}
	if cfg.Kind == IssueJWT {
		st.pub, _ = parsePublicKey(cfg.PublicKey) // checked by validate
	}
	return st
}

// IssuerStats counts the requests to the Issuer's endpoint and the
// tokens it handed out.
type IssuerStats struct {
	Requests, Issued int
}

// IssuerStats reports what the Issuer did (zero without one).
func (s *Server) IssuerStats() IssuerStats {
	if s.issuer == nil {
		return IssuerStats{}
	}
	s.issuer.mu.Lock()
	defer s.issuer.mu.Unlock()
	return IssuerStats{Requests: s.issuer.logins, Issued: s.issuer.count}
}

func (st *issuerState) handles(r *http.Request) bool {
	m := st.cfg.Method
	if m == "" {
		m = http.MethodPost
	}
	pp, err := compilePath(st.cfg.Path)
	if err != nil || !strings.EqualFold(r.Method, m) {
		return false
	}
	_, ok := pp.match(r.URL.EscapedPath())
	return ok
}

// newToken hands out a token valid from now; the caller holds st.mu.
func (st *issuerState) newToken(prefix string, now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	st.count++
	// '+' and '/' in it: a client that does not escape it breaks.
	tok := fmt.Sprintf("%s%d.%s", prefix, st.count, base64.StdEncoding.EncodeToString(b[:]))
	t := &issued{}
	if st.cfg.TTL.Duration > 0 {
		t.expires = now.Add(st.cfg.TTL.Duration)
	}
	st.tokens[tok] = t
	return tok
}

// valid reports whether tok is a live token, and counts the use.
func (st *issuerState) valid(tok string, now time.Time) bool {
	if st.cfg.Kind == IssueJWT && st.cfg.Direct && strings.Count(tok, ".") == 2 && verifyJWT(tok, st.pub, st.cfg.Iss, now) == "" {
		return true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := st.tokens[tok]
	if !ok || !t.expires.IsZero() && !now.Before(t.expires) {
		return false
	}
	if st.cfg.Uses > 0 && t.uses >= st.cfg.Uses {
		return false
	}
	t.uses++
	return true
}

// credential finds the token a request carries where auth says.
func (st *issuerState) credential(rq *request, auth *AuthCheck) string {
	if st.cfg.Kind == IssueSession && st.cfg.Cookie != "" {
		if c, err := rq.r.Cookie(st.cfg.Cookie); err == nil {
			return c.Value
		}
		return ""
	}
	if auth.Header != "" {
		if v := rq.r.Header.Get(auth.Header); v != "" {
			if tok, ok := strings.CutPrefix(v, auth.Prefix); ok {
				return tok
			}
		}
	}
	if auth.Query != "" {
		return rq.query.Get(auth.Query)
	}
	return ""
}

// reply answers a request to the token endpoint.
func (st *issuerState) reply(rq *request, now time.Time) reply {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.logins++
	switch st.cfg.Kind {
	case IssueSession:
		return st.login(rq, now)
	case IssueOAuth2:
		return st.oauth2(rq, now)
	}
	return st.exchange(rq, now)
}

func (st *issuerState) lifetime() (int, bool) {
	if st.cfg.Silent || st.cfg.TTL.Duration <= 0 {
		return 0, false
	}
	return int(math.Round(st.cfg.TTL.Seconds())), true
}

func (st *issuerState) login(rq *request, now time.Time) reply {
	fields := requestFields(rq)
	for k, want := range st.cfg.Fields {
		if fields.Get(k) != want {
			return errorReply(http.StatusUnauthorized, "invalid_credentials", "the login was refused")
		}
	}
	tok := st.newToken("sess-", now)
	h := http.Header{}
	body := map[string]any{}
	switch {
	case st.cfg.Cookie != "":
		// The session cookie among others, not first, as ServiceNow sends it.
		h.Add("Set-Cookie", (&http.Cookie{Name: "glide_user_route", Value: "r1", Path: "/"}).String())
		h.Add("Set-Cookie", (&http.Cookie{Name: st.cfg.Cookie, Value: tok, Path: "/", HttpOnly: true, Secure: true}).String())
		body["status"] = "ok"
	case st.cfg.TokenHeader != "":
		h.Set(st.cfg.TokenHeader, tok)
		body["status"] = "ok"
	default:
		path := st.cfg.TokenPath
		if path == "" {
			path = "token"
		}
		setPath(body, path, tok)
	}
	if secs, ok := st.lifetime(); ok {
		body["expires_in"] = secs
	}
	return jsonReply(http.StatusOK, h, body)
}

func (st *issuerState) oauth2(rq *request, now time.Time) reply {
	var doc map[string]any
	if json.Unmarshal(rq.body, &doc) == nil && strings.HasPrefix(rq.r.Header.Get("Content-Type"), "application/json") {
		// Port's token call.
		if doc["clientId"] != st.cfg.ClientID || doc["clientSecret"] != st.cfg.ClientSecret {
			return errorReply(http.StatusUnauthorized, "invalid_client", "wrong client credentials")
		}
		body := map[string]any{"ok": true, "accessToken": st.newToken("at-", now), "tokenType": "Bearer"}
		if secs, ok := st.lifetime(); ok {
			body["expiresIn"] = secs
		}
		return jsonReply(http.StatusOK, nil, body)
	}
	if !strings.HasPrefix(rq.r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return oauthError(http.StatusBadRequest, "invalid_request", "the token request must be form encoded")
	}
	form := requestFields(rq)
	id, secret, basic := rq.r.BasicAuth()
	if basic {
		// RFC 6749 2.3.1: form-encoded before base64.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id != st.cfg.ClientID || secret != st.cfg.ClientSecret {
		return oauthError(http.StatusUnauthorized, "invalid_client", "client authentication failed")
	}
	body := map[string]any{"token_type": "bearer"}
	switch form.Get("grant_type") {
	case "client_credentials":
	case "refresh_token":
		rt := form.Get("refresh_token")
		if !st.refresh[rt] {
			return oauthError(http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or already used")
		}
		if st.cfg.Rotate {
			delete(st.refresh, rt)
			next := st.newRefresh()
			st.refresh[next] = true
			body["refresh_token"] = next
		}
	default:
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+form.Get("grant_type"))
	}
	body["access_token"] = st.newToken("at-", now)
	if secs, ok := st.lifetime(); ok {
		body["expires_in"] = secs
	}
	return jsonReply(http.StatusOK, nil, body)
}

func (st *issuerState) newRefresh() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "rt-" + hex.EncodeToString(b[:])
}

func oauthError(status int, code, desc string) reply {
	return jsonReply(status, nil, map[string]any{"error": code, "error_description": desc})
}

// exchange answers GitHub's POST /app/installations/{id}/access_tokens,
// or with Assertion an RFC 7523 token endpoint.
func (st *issuerState) exchange(rq *request, now time.Time) reply {
	if st.cfg.Assertion {
		f := requestFields(rq)
		if f.Get("grant_type") != GrantJWTBearer {
			return oauthError(http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
		}
		if problem := verifyJWT(f.Get("assertion"), st.pub, st.cfg.Iss, now); problem != "" {
			return oauthError(http.StatusBadRequest, "invalid_grant", problem)
		}
		body := map[string]any{"access_token": st.newToken("at_", now), "token_type": "Bearer"}
		if !st.cfg.Silent && st.cfg.TTL.Duration > 0 {
			body["expires_in"] = int(st.cfg.TTL.Duration.Seconds())
		}
		return jsonReply(http.StatusOK, nil, body)
	}
	jwt, ok := strings.CutPrefix(rq.r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return githubError(http.StatusUnauthorized, "A JSON web token could not be decoded")
	}
	if problem := verifyJWT(jwt, st.pub, st.cfg.Iss, now); problem != "" {
		return githubError(http.StatusUnauthorized, problem)
	}
	body := map[string]any{"token": st.newToken("ghs_", now)}
	if !st.cfg.Silent && st.cfg.TTL.Duration > 0 {
		body["expires_at"] = now.Add(st.cfg.TTL.Duration).UTC().Format(time.RFC3339)
	}
	return jsonReply(http.StatusCreated, nil, body)
}

func githubError(status int, msg string) reply {
	return jsonReply(status, nil, map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

// requestFields reads a form body, or a flat JSON object as fields.
func requestFields(rq *request) url.Values {
	if strings.HasPrefix(rq.r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		v, _ := url.ParseQuery(string(rq.body))
		return v
	}
	out := url.Values{}
	var doc map[string]any
	if json.Unmarshal(rq.body, &doc) == nil {
		for k, v := range doc {
			if s, ok := v.(string); ok {
				out.Set(k, s)
			}
		}
	}
	return out
}

func parsePublicKey(pemText string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("not a PEM public key")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	}
	return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
}

// verifyJWT checks a compact JWS the way GitHub checks an App's JWT:
// signature (RS256 or ES256), iss, and an exp in the future but at most
// ten minutes ahead, with an iat not in the future. It returns what is
// wrong in GitHub's words, or "".
func verifyJWT(tok string, pub crypto.PublicKey, iss string, now time.Time) (problem string) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "A JSON web token could not be decoded"
	}
	enc := base64.RawURLEncoding
	hb, err1 := enc.DecodeString(parts[0])
	pb, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if errors.Join(err1, err2, err3) != nil {
		return "A JSON web token could not be decoded"
	}
	var head struct{ Alg string }
	if json.Unmarshal(hb, &head) != nil {
		return "A JSON web token could not be decoded"
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if head.Alg != "RS256" || rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) != nil {
			return "'Authorization' header is malformed or the signature does not verify"
		}
	case *ecdsa.PublicKey:
		if head.Alg != "ES256" || len(sig) != 64 ||
			!ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return "'Authorization' header is malformed or the signature does not verify"
		}
	default:
		return "unsupported key"
	}
	var claims struct {
		Iss any   `json:"iss"`
		Iat int64 `json:"iat"`
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(pb, &claims) != nil {
		return "A JSON web token could not be decoded"
	}
	switch {
	case fmt.Sprint(claims.Iss) != iss:
		return "'Issuer' claim ('iss') must be an Integer or the app's client ID"
	case claims.Exp == 0 || claims.Iat == 0:
		return "'Expiration time' and 'Issued at' claims are required"
	case time.Unix(claims.Exp, 0).After(now.Add(10 * time.Minute)):
		return "'Expiration time' claim ('exp') is too far in the future"
	case !time.Unix(claims.Exp, 0).After(now):
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	case time.Unix(claims.Iat, 0).After(now.Add(time.Minute)):
		return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	}
	return ""
}
