package fetch

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Credentials keeps what a server hands out that must outlive a run: a
// rotated OAuth2 refresh token, without which the next run could not
// authenticate (the one in the config was used up). Values are secrets:
// an implementation stores them, never logs them. It must be safe for
// concurrent use.
type Credentials interface {
	// LoadCredential returns the value saved under key, "" when none.
	LoadCredential(ctx context.Context, key string) (string, error)
	// SaveCredential replaces the value under key, durably, before it
	// returns.
	SaveCredential(ctx context.Context, key, value string) error
}

// refreshState is the refresh_token grant's current token and where it
// is kept.
type refreshState struct {
	token string
	key   string // the Credentials key of these client credentials
	seed  string // hash of Auth.RefreshToken: a saved token descends from it
}

// savedRefresh is the JSON a rotated refresh token is kept as.
type savedRefresh struct {
	Seed  string `json:"seed"`
	Token string `json:"refresh_token"`
}

func hashHex(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CredentialKey is the key the rotated refresh token of these client
// credentials is saved under: a hash of the token URL and client id, so
// that the key itself tells nothing.
func CredentialKey(tokenURL, clientID string) string {
	return "oauth2:" + hashHex(tokenURL, clientID)[:24]
}

// currentRefresh returns the refresh token to send: the one saved by an
// earlier run when it descends from the configured one, else the
// configured one.
func (ts *tokenSource) currentRefresh(ctx context.Context) (*refreshState, error) {
	if ts.refresh != nil {
		return ts.refresh, nil
	}
	a := ts.auth
	rs := &refreshState{token: a.RefreshToken, key: CredentialKey(a.TokenURL, a.ClientID), seed: hashHex(a.RefreshToken)}
	if store := ts.pool.creds; store != nil {
		raw, err := store.LoadCredential(ctx, rs.key)
		if err != nil {
			return nil, fmt.Errorf("read the saved refresh token: %w", err)
		}
		var saved savedRefresh
		if raw != "" && json.Unmarshal([]byte(raw), &saved) == nil && saved.Seed == rs.seed && saved.Token != "" {
			// A new refresh_token in the config starts a new line: only a
			// token rotated from the configured one replaces it.
			rs.token = saved.Token
			ts.pool.red.addSecrets(saved.Token)
		}
	}
	ts.refresh = rs
	return rs, nil
}

// rotate keeps a refresh token the server replaced: in memory for the
// rest of the run, and in the pool's Credentials for the next one, before
// the access token that came with it is used.
func (ts *tokenSource) rotate(ctx context.Context, rs *refreshState, next string) error {
	if next == "" || next == rs.token {
		return nil
	}
	ts.pool.red.addSecrets(next)
	rs.token = next
	store := ts.pool.creds
	if store == nil {
		ts.pool.log.Warn("oauth2 refresh token rotated; no credential store, so the next run starts from the configured one", "token_url", ts.pool.red.url(ts.auth.TokenURL))
		return nil
	}
	b, err := json.Marshal(savedRefresh{Seed: rs.seed, Token: next})
	if err != nil {
		return err
	}
	if err := store.SaveCredential(ctx, rs.key, string(b)); err != nil {
		return fmt.Errorf("the server rotated the refresh token and it could not be saved (the next run needs a new refresh_token): %w", err)
	}
	ts.pool.log.Info("oauth2 refresh token rotated and saved", "token_url", ts.pool.red.url(ts.auth.TokenURL))
	return nil
}

// oauth2 fetches an access token with the client credentials or refresh
// token grant.
func (ts *tokenSource) oauth2(ctx context.Context) (value string, lifetime time.Duration, err error) {
	c, err := ts.tokenClient()
	if err != nil {
		return "", 0, err
	}
	a := ts.auth
	req := &Request{Method: http.MethodPost, URL: a.TokenURL, Header: http.Header{}}
	var rs *refreshState
	switch {
	case a.AuthStyle == StyleJSON:
		req.Body = map[string]string{"clientId": a.ClientID, "clientSecret": a.ClientSecret}
	default:
		form := url.Values{"grant_type": {GrantClientCredentials}}
		if a.Grant == GrantRefreshToken {
			if rs, err = ts.currentRefresh(ctx); err != nil {
				return "", 0, err
			}
			form = url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {rs.token}}
		}
		if len(a.Scopes) > 0 {
			form.Set("scope", strings.Join(a.Scopes, " "))
		}
		if a.AuthStyle == StyleForm {
			form.Set("client_id", a.ClientID)
			form.Set("client_secret", a.ClientSecret)
		} else {
			req.Header.Set("Authorization", oauthBasicValue(a.ClientID, a.ClientSecret))
		}
		req.form = form
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return "", 0, err
	}
	var body struct {
		AccessToken   string          `json:"access_token"`
		AccessTokenC  string          `json:"accessToken"`
		TokenType     string          `json:"token_type"`
		TokenTypeC    string          `json:"tokenType"`
		ExpiresIn     json.RawMessage `json:"expires_in"`
		ExpiresInC    json.RawMessage `json:"expiresIn"`
		RefreshToken  string          `json:"refresh_token"`
		RefreshTokenC string          `json:"refreshToken"`
		IDToken       string          `json:"id_token"`
		IDTokenC      string          `json:"idToken"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return "", 0, fmt.Errorf("token response from %s: %w", resp.URL, err)
	}
	tok := cmp.Or(body.AccessToken, body.AccessTokenC)
	if tok == "" {
		return "", 0, fmt.Errorf("token response from %s: no access_token", resp.URL)
	}
	// Every token of the answer is a credential, though only the access
	// token is sent: a refresh token the client credentials grant gave
	// anyway, an OpenID id_token. A cassette of the answer must not hold
	// them, nor an error body that echoes them.
	ts.pool.red.addSecrets(tok, body.RefreshToken, body.RefreshTokenC, body.IDToken, body.IDTokenC)
	if rs != nil {
		if err := ts.rotate(ctx, rs, cmp.Or(body.RefreshToken, body.RefreshTokenC)); err != nil {
			return "", 0, err
		}
	}
	typ := cmp.Or(body.TokenType, body.TokenTypeC)
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer"
	}
	exp := body.ExpiresIn
	if len(exp) == 0 {
		exp = body.ExpiresInC
	}
	// Some servers send expires_in as a string.
	if n, err := strconv.ParseFloat(strings.Trim(string(exp), `"`), 64); err == nil && n > 0 {
		lifetime = secs(n)
	}
	return typ + " " + tok, lifetime, nil
}
