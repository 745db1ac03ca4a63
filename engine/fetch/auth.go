package fetch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Auth types.
const (
	AuthNone    = ""
	AuthBearer  = "bearer"    // Authorization: Bearer <Token>
	AuthHeader  = "header"    // <Header>: <Prefix><Token>
	AuthQuery   = "query"     // ?<Param>=<Token>
	AuthBasic   = "basic"     // Authorization: Basic base64(<Username>:<Password>)
	AuthOAuth2  = "oauth2"    // an OAuth2 grant, token sent as Authorization
	AuthSession = "session"   // a login request whose token is sent as a header or parameter
	AuthJWT     = "jwt"       // a signed JWT, sent as is or exchanged for an access token
	AuthSigV4   = "aws_sigv4" // every request signed with AWS Signature Version 4
)

// OAuth2 token request styles (Auth.AuthStyle).
const (
	StyleBasic = "basic" // form body, client id and secret as HTTP basic auth (default)
	StyleForm  = "form"  // form body with client_id and client_secret
	StyleJSON  = "json"  // Port-style JSON body {"clientId", "clientSecret"}
)

// OAuth2 grants (Auth.Grant).
const (
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
)

// Auth is how requests to a host authenticate. Credentials are sent only
// to BaseURL's scheme and host, never to an absolute URL elsewhere.
type Auth struct {
	Type string
	// Token is the bearer token, or the API key for "header" and "query".
	Token string
	// Header names the header carrying the key ("header"), or the session
	// or JWT token ("session", "jwt"; default Authorization).
	Header string
	// Prefix goes before the value in Header, e.g. "ApiKey "; for
	// "session" and "jwt" with no Header it is "Bearer ".
	Prefix string
	// Param names the query parameter carrying the key ("query"), or the
	// session or JWT token instead of a header.
	Param string

	Username, Password string // "basic"

	// "oauth2". The token is cached until expires_in minus a margin (a
	// tenth of the lifetime, at most MaxServerWait), shared by every client
	// of the pool with the same credentials, and refreshed when a request
	// gets 401 (see exchange.renewed).
	TokenURL, ClientID, ClientSecret string
	Scopes                           []string
	AuthStyle                        string // StyleBasic (default), StyleForm or StyleJSON
	Grant                            string // GrantClientCredentials (default) or GrantRefreshToken
	// RefreshToken starts the refresh_token grant. When the server rotates
	// it, the new one is kept in Options.Credentials and used by later
	// runs for as long as RefreshToken stays the one it descends from.
	RefreshToken string

	// Login is the login request of "session", or the exchange of the
	// JWT for an access token of "jwt" (nil: the JWT is the credential).
	Login *TokenRequest

	// "jwt": claims signed with PrivateKey (PEM: PKCS #1, PKCS #8 or SEC 1)
	// by Algorithm (RS256 or ES256; "" picks it from the key). iat (a
	// minute back, for clock drift) and exp (iat's minute plus TTL,
	// default 9 minutes) are added.
	PrivateKey string
	Algorithm  string
	Claims     map[string]any
	// ClaimSecrets are the values of claims that a template built from a
	// secret input: credentials the token endpoint may echo.
	ClaimSecrets []string `json:"-"`
	TTL          time.Duration
	// Assertion names the field of the exchange's body (an object, or
	// none) that carries the JWT, as RFC 7523's jwt-bearer grant sends
	// it (assertion); "" sends it as Authorization: Bearer.
	Assertion string

	// "aws_sigv4": the credentials (SessionToken only for temporary
	// ones), and the region and service the requests are signed for.
	AccessKeyID, SecretAccessKey, SessionToken string
	Region, Service                            string

	// ID names the auth block in a spec: clients whose Auth has the same
	// ID and values share one token. Blocks whose programs (TokenRequest's
	// Extract funcs) differ must have different IDs.
	ID string
}

// TokenRequest is a request that obtains a token: a session login, or
// the exchange of a JWT for an access token.
type TokenRequest struct {
	Method     string // default POST
	URL        string // absolute, or a path joined to BaseURL
	Query      url.Values
	Header     http.Header
	Body       any    // a JSON value
	BodyFormat string // FormatJSON (default) or FormatForm
	// Token reads the token from the JSON body; TokenHeader from a
	// response header instead. "Set-Cookie" takes the cookies the answer
	// sets, sent back as a Cookie header (unless Auth names another place).
	Token       Extract `json:"-"`
	TokenHeader string
	// ExpiresIn reads the token's lifetime: seconds (a number or numeric
	// string) or an expiry time (RFC 3339). Without it TTL is the lifetime;
	// with neither the token is used until a request gets 401.
	ExpiresIn Extract `json:"-"`
	TTL       time.Duration
	// Secrets are the values of its parts that a template built from a
	// secret input (a toBase64 of it, a signature): credentials, though
	// they do not hold the secret as it is. Made of the request's own
	// fields, so no part of the token's key.
	Secrets []string `json:"-"`
}

func (a Auth) validate() error {
	need := func(field, v string) error {
		if v == "" {
			return fmt.Errorf("auth %q: %s is required", a.Type, field)
		}
		return nil
	}
	switch a.Type {
	case AuthNone:
		return nil
	case AuthBearer:
		return need("token", a.Token)
	case AuthHeader:
		return errors.Join(need("header", a.Header), need("token", a.Token))
	case AuthQuery:
		return errors.Join(need("param", a.Param), need("token", a.Token))
	case AuthBasic:
		// Either may be empty: a key as the user (Stripe's) or a token as
		// the password with an empty user (Azure DevOps' PAT); not both.
		if a.Username == "" && a.Password == "" {
			return fmt.Errorf("auth %q: username or password is required", a.Type)
		}
		return nil
	case AuthOAuth2:
		if err := errors.Join(need("token_url", a.TokenURL), need("client_id", a.ClientID), need("client_secret", a.ClientSecret)); err != nil {
			return err
		}
		if _, err := tokenOrigin(a.TokenURL); err != nil {
			return fmt.Errorf("auth %q: %w", a.Type, err)
		}
		switch a.Grant {
		case "", GrantClientCredentials:
		case GrantRefreshToken:
			if err := need("refresh_token", a.RefreshToken); err != nil {
				return err
			}
			if a.AuthStyle == StyleJSON {
				return fmt.Errorf("auth %q: the refresh_token grant takes a form body (RFC 6749)", a.Type)
			}
		default:
			return fmt.Errorf("auth %q: unknown grant %q", a.Type, a.Grant)
		}
		switch a.AuthStyle {
		case "", StyleBasic, StyleForm, StyleJSON:
			return nil
		}
		return fmt.Errorf("auth %q: unknown auth_style %q", a.Type, a.AuthStyle)
	case AuthSession:
		if a.Login == nil {
			return fmt.Errorf("auth %q: login is required", a.Type)
		}
		return a.Login.validate("login")
	case AuthJWT:
		if _, _, err := parseSigningKey(a.PrivateKey, a.Algorithm); err != nil {
			return fmt.Errorf("auth %q: %w", a.Type, err)
		}
		if a.Login != nil {
			if _, isObj := a.Login.Body.(map[string]any); a.Assertion != "" && a.Login.Body != nil && !isObj {
				return fmt.Errorf("auth %q: assertion: the exchange's body must be an object to carry the JWT", a.Type)
			}
			return a.Login.validate("exchange")
		}
		if a.Assertion != "" {
			return fmt.Errorf("auth %q: assertion needs an exchange request to carry the JWT", a.Type)
		}
		return nil
	case AuthSigV4:
		return errors.Join(need("access_key_id", a.AccessKeyID), need("secret_access_key", a.SecretAccessKey),
			need("region", a.Region), need("service", a.Service))
	}
	return fmt.Errorf("unknown auth type %q", a.Type)
}

func (r *TokenRequest) validate(name string) error {
	switch {
	case r.URL == "":
		return fmt.Errorf("%s: url is required", name)
	case r.Token == nil && r.TokenHeader == "":
		return fmt.Errorf("%s: token or token_header is required", name)
	case r.BodyFormat != "" && r.BodyFormat != FormatJSON && r.BodyFormat != FormatForm:
		return fmt.Errorf("%s: unknown body format %q", name, r.BodyFormat)
	}
	return nil
}

func basicValue(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// oauthBasicValue form-encodes the client credentials before base64, as
// RFC 6749 section 2.3.1 asks.
func oauthBasicValue(id, secret string) string {
	return basicValue(url.QueryEscape(id), url.QueryEscape(secret))
}

// registerSecrets teaches the redactor every secret of a.
func (p *Pool) registerSecrets(a Auth) {
	if a.Login != nil {
		p.red.addSecrets(a.Login.Secrets...)
	}
	switch a.Type {
	case AuthBearer, AuthHeader:
		p.red.addSecrets(a.Token)
	case AuthQuery:
		p.red.addSecrets(a.Token)
		p.red.addParam(a.Param)
	case AuthBasic:
		// The header is a credential whatever it holds; without a password
		// the username is the key (Stripe's).
		v := basicValue(a.Username, a.Password)
		p.red.addSecrets(a.Password, v, strings.TrimPrefix(v, "Basic "))
		if a.Password == "" {
			p.red.addSecrets(a.Username)
		}
	case AuthOAuth2:
		v := oauthBasicValue(a.ClientID, a.ClientSecret)
		p.red.addSecrets(a.ClientSecret, v, strings.TrimPrefix(v, "Basic "), a.RefreshToken)
		p.red.addParam("refresh_token")
	case AuthSession, AuthJWT:
		p.red.addSecrets(a.PrivateKey)
		p.red.addSecrets(a.ClaimSecrets...)
		p.red.addParam(a.Param)
	case AuthSigV4:
		// The access key id is no secret (it names the key, as a user
		// name does), and the signatures are made anew per request.
		p.red.addSecrets(a.SecretAccessKey, a.SessionToken)
	}
}

// registerHeaders teaches the redactor the configured headers that carry a
// credential: a header a spec builds itself (Basic of a base64 it makes
// with toBase64) holds no secret as it is, yet an answer may echo it. The
// value is registered whole and after its scheme word ("Basic ", "ApiKey ").
func (p *Pool) registerHeaders(cfg HostConfig) {
	for k, v := range cfg.Headers {
		switch {
		case strings.EqualFold(k, "Authorization"), strings.EqualFold(k, "Proxy-Authorization"), strings.EqualFold(k, "Cookie"):
		case slices.ContainsFunc(cfg.SecretHeaders, func(s string) bool { return strings.EqualFold(s, k) }):
		default:
			continue
		}
		vals := []string{v}
		if _, rest, ok := strings.Cut(v, " "); ok {
			vals = append(vals, strings.TrimSpace(rest))
		}
		if strings.EqualFold(k, "Cookie") {
			// Each cookie is a credential of its own (see session.go).
			for _, c := range strings.Split(v, ";") {
				if _, cv, ok := strings.Cut(c, "="); ok {
					vals = append(vals, strings.TrimSpace(cv))
				}
			}
		}
		p.red.addSecrets(vals...)
	}
}

// static returns the header or query parameter of the auth kinds whose
// credential never changes.
func (a Auth) static() (header, value, param, paramValue string) {
	switch a.Type {
	case AuthBearer:
		return "Authorization", "Bearer " + a.Token, "", ""
	case AuthHeader:
		return a.Header, a.Prefix + a.Token, "", ""
	case AuthQuery:
		return "", "", a.Param, a.Token
	case AuthBasic:
		return "Authorization", basicValue(a.Username, a.Password), "", ""
	}
	return "", "", "", ""
}

// dynamic reports whether the credential is obtained at run time (and
// renewed on expiry and on a 401).
func (a Auth) dynamic() bool {
	return a.Type == AuthOAuth2 || a.Type == AuthSession || a.Type == AuthJWT
}

// placement says where a fetched credential goes: a header (whose value
// the token source builds whole, prefix included) or a query parameter.
func (a Auth) placement() (header, param string) {
	switch {
	case a.Type == AuthOAuth2:
		return "Authorization", ""
	case a.Param != "":
		return "", a.Param
	case a.Header != "":
		return a.Header, ""
	case a.Login != nil && isSetCookie(a.Login.TokenHeader):
		return "Cookie", ""
	}
	return "Authorization", ""
}

// prefix is what goes before a session or JWT token in its header.
func (a Auth) prefix() string {
	header, param := a.placement()
	switch {
	case param != "":
		return ""
	case a.Header == "" && header == "Authorization":
		return "Bearer "
	}
	return a.Prefix
}

func isSetCookie(h string) bool { return strings.EqualFold(h, "Set-Cookie") }

// tokenOrigin checks a token URL and returns its scheme and host; unlike
// a BaseURL it may carry a query.
func tokenOrigin(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("token url %q: %w", shownURL(raw), parseError(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("token url %q: must be an absolute http or https url", shownURL(raw))
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
