package port

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestAccessToken(t *testing.T) {
	tests := []struct {
		name string
		body any
		want int
	}{
		{"valid", map[string]any{"clientId": DefaultClientID, "clientSecret": DefaultClientSecret}, http.StatusOK},
		{"wrong secret", map[string]any{"clientId": DefaultClientID, "clientSecret": "nope"}, http.StatusUnauthorized},
		{"wrong id", map[string]any{"clientId": "x", "clientSecret": DefaultClientSecret}, http.StatusUnauthorized},
		{"missing secret", map[string]any{"clientId": DefaultClientID}, http.StatusUnprocessableEntity},
		{"extra key", map[string]any{"clientId": DefaultClientID, "clientSecret": DefaultClientSecret, "scope": "x"}, http.StatusUnprocessableEntity},
		{"not json", "{", http.StatusUnprocessableEntity},
	}
	srv := New(Options{})
	defer srv.Close()
	c := &client{t: t, srv: srv}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := c.with(t)
			r := c.do("POST", "/v1/auth/access_token", tc.body)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.raw)
			}
			if tc.want != http.StatusOK {
				if r.body["ok"] != false || r.body["error"] == "" {
					t.Errorf("error body %s, want {ok:false, error}", r.raw)
				}
				return
			}
			if r.body["ok"] != true || r.body["tokenType"] != "Bearer" || r.body["expiresIn"] != json.Number("10800") || r.body["accessToken"] == "" {
				t.Errorf("token body %s", r.raw)
			}
		})
	}
}

func TestTokenLifetime(t *testing.T) {
	clk := newClock()
	srv := New(Options{Now: clk.Now})
	defer srv.Close()
	c := newClient(t, srv)
	first := c.token

	again := newClient(t, srv)
	if again.token != first {
		t.Fatalf("re-ask before expiry: token %q, want the same %q", again.token, first)
	}
	c.must("GET", "/v1/blueprints", nil, http.StatusOK)

	clk.Add(3*time.Hour - time.Second)
	c.must("GET", "/v1/blueprints", nil, http.StatusOK)
	clk.Add(time.Second)
	r := c.must("GET", "/v1/blueprints", nil, http.StatusUnauthorized)
	if r.body["ok"] != false {
		t.Errorf("401 body %s", r.raw)
	}

	fresh := newClient(t, srv)
	if fresh.token == first {
		t.Fatalf("after expiry: got the expired token again")
	}
	fresh.must("GET", "/v1/blueprints", nil, http.StatusOK)

	srv.ExpireTokens()
	fresh.must("GET", "/v1/blueprints", nil, http.StatusUnauthorized)
}

func TestUnauthenticated(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	routes := []struct{ method, path string }{
		{"GET", "/v1/blueprints"},
		{"POST", "/v1/blueprints"},
		{"GET", "/v1/blueprints/x"},
		{"POST", "/v1/blueprints/x/entities/bulk"},
		{"POST", "/v1/blueprints/x/entities/search"},
		{"POST", "/v1/blueprints/x/bulk/entities/delete"},
		{"DELETE", "/v1/blueprints/x/entities/y"},
	}
	for _, tokName := range []string{"", "garbage"} {
		for _, rt := range routes {
			t.Run(tokName+" "+rt.method+" "+rt.path, func(t *testing.T) {
				c := &client{t: t, srv: srv, token: tokName}
				c.must(rt.method, rt.path, "{}", http.StatusUnauthorized)
			})
		}
	}
}

// Token requests are Port's unauthenticated requests: limited apart from
// the rest (100 per window by default), so a client that asks for a token
// per request is refused.
func TestTokenRateLimit(t *testing.T) {
	clk := newClock()
	srv := New(Options{Now: clk.Now, AuthRateLimit: 3, Window: time.Minute})
	defer srv.Close()
	c := newClient(t, srv)
	ask := func() int {
		return c.do(http.MethodPost, "/v1/auth/access_token", map[string]any{"clientId": srv.ClientID(), "clientSecret": srv.ClientSecret()}).status
	}
	if a, b, third := ask(), ask(), ask(); a != http.StatusOK || b != http.StatusOK || third != http.StatusTooManyRequests {
		t.Errorf("token requests 2-4: %d %d %d, want 200 200 429", a, b, third)
	}
	c.must("GET", "/v1/blueprints", nil, http.StatusOK) // other routes unaffected
	clk.Add(time.Minute)
	if got := ask(); got != http.StatusOK {
		t.Errorf("next window: %d", got)
	}
	if newServer(Options{}).opts.AuthRateLimit != DefaultAuthRateLimit || newServer(Options{RateLimit: -1}).opts.AuthRateLimit >= 0 {
		t.Error("AuthRateLimit defaults")
	}
}
