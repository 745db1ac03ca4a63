package fetch

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/ferry-etl/ferry/engine/internal/tlsfiles"
)

// JWT algorithms (Auth.Algorithm).
const (
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256 (GitHub Apps)
	AlgES256 = "ES256" // ECDSA on P-256 with SHA-256
)

// DefaultJWTTTL is a JWT's lifetime when Auth.TTL is 0: under GitHub's
// ten-minute cap even with iat a minute back.
const DefaultJWTTTL = 9 * time.Minute

// jwtSkew backdates iat, so a server whose clock is a little behind does
// not see a token issued in its future.
const jwtSkew = time.Minute

// parseSigningKey reads a PEM private key and settles the algorithm: RS256
// for an RSA key, ES256 for a P-256 key. A key pasted into one line with
// literal \n sequences (as environment variables often hold them) is
// accepted.
func parseSigningKey(pemText, alg string) (crypto.Signer, string, error) {
	block, _ := pem.Decode(bytes.TrimSpace(tlsfiles.Unfold([]byte(pemText))))
	if block == nil {
		return nil, "", errors.New("private_key: not a PEM private key (-----BEGIN … PRIVATE KEY-----)")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("private_key: PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		// The parser's message names no key material.
		return nil, "", fmt.Errorf("private_key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg != "" && alg != AlgRS256 {
			return nil, "", fmt.Errorf("algorithm %s does not fit an RSA key (use RS256)", alg)
		}
		return k, AlgRS256, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("private_key: ES256 needs a P-256 key, got %s", k.Curve.Params().Name)
		}
		if alg != "" && alg != AlgES256 {
			return nil, "", fmt.Errorf("algorithm %s does not fit an EC key (use ES256)", alg)
		}
		return k, AlgES256, nil
	}
	return nil, "", fmt.Errorf("private_key: %T keys are not supported (RSA or P-256)", key)
}

// signJWT builds a compact JWS (RFC 7515) over claims.
func signJWT(key crypto.Signer, alg string, claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("claims: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:]); err != nil {
			return "", err
		}
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return "", err
		}
		// JWS wants r and s as two fixed 32-byte big-endian halves
		// (RFC 7518 section 3.4), not ASN.1.
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	default:
		return "", fmt.Errorf("unsupported key %T", key)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// jwt signs a fresh JWT and returns it (or the token it is exchanged
// for), ready to send, with its lifetime.
func (ts *tokenSource) jwt(ctx context.Context) (string, time.Duration, error) {
	a := ts.auth
	key, alg, err := parseSigningKey(a.PrivateKey, a.Algorithm)
	if err != nil {
		return "", 0, fmt.Errorf("jwt: %w", err)
	}
	ttl := a.TTL
	if ttl <= 0 {
		ttl = DefaultJWTTTL
	}
	now := ts.pool.now()
	claims := make(map[string]any, len(a.Claims)+2)
	for k, v := range a.Claims {
		claims[k] = v
	}
	claims["iat"] = now.Add(-jwtSkew).Unix()
	claims["exp"] = now.Add(ttl).Unix()
	token, err := signJWT(key, alg, claims)
	if err != nil {
		return "", 0, fmt.Errorf("jwt: %w", err)
	}
	ts.pool.red.addSecrets(token)
	if a.Login == nil {
		return a.prefix() + token, ttl, nil
	}
	tr, extra := a.Login, http.Header{"Authorization": {"Bearer " + token}}
	if a.Assertion != "" {
		// RFC 7523: the JWT is a field of the token request's body, beside
		// the spec's own (grant_type); a copy, the configured body kept.
		body := map[string]any{}
		if m, ok := tr.Body.(map[string]any); ok {
			maps.Copy(body, m)
		}
		body[a.Assertion] = token
		cp := *tr
		cp.Body = body
		tr, extra = &cp, nil
	}
	tok, lifetime, err := ts.tokenRequest(ctx, tr, extra)
	if err != nil {
		return "", 0, fmt.Errorf("jwt exchange: %w", err)
	}
	return a.prefix() + tok, lifetime, nil
}
