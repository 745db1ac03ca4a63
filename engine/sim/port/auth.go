package port

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// handleToken serves POST /v1/auth/access_token. One live token per
// credential pair: asking again before it expires returns the same token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		writeError(w, notFound("route %s /v1/auth/access_token not found", r.Method))
		return
	}
	m, err := decodeObject(body)
	if err != nil {
		writeError(w, err)
		return
	}
	for k := range m {
		if k != "clientId" && k != "clientSecret" {
			writeError(w, invalid("body must NOT have additional properties: %q", k))
			return
		}
	}
	id, ok1 := m["clientId"].(string)
	secret, ok2 := m["clientSecret"].(string)
	if !ok1 || !ok2 {
		writeError(w, invalid("body must have string properties clientId and clientSecret"))
		return
	}
	if id != s.opts.ClientID || secret != s.opts.ClientSecret {
		writeError(w, &apiError{status: http.StatusUnauthorized, code: "unauthorized", msg: "invalid client credentials"})
		return
	}
	now := s.opts.Now()
	s.mu.Lock()
	tok := s.current
	if exp, ok := s.tokens[tok]; tok == "" || !ok || !now.Before(exp) {
		s.tokenSeq++
		tok = fmt.Sprintf("portsim-token-%d", s.tokenSeq)
		s.current = tok
		s.tokens[tok] = now.Add(s.opts.TokenTTL)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"ok":          true,
		"accessToken": tok,
		"expiresIn":   int64(s.opts.TokenTTL / time.Second),
		"tokenType":   "Bearer",
	})
}

// authorize checks the bearer token of a non-auth route.
func (s *Server) authorize(r *http.Request) *apiError {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return &apiError{status: http.StatusUnauthorized, code: "unauthorized"}
	}
	now := s.opts.Now()
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	if !known {
		return &apiError{status: http.StatusUnauthorized, code: "unauthorized"}
	}
	if !now.Before(exp) {
		return &apiError{status: http.StatusUnauthorized, code: "token_expired"}
	}
	return nil
}
