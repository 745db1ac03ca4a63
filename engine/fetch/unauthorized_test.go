package fetch

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestUnauthorizedSaysWhichCredentials: a final 401 says what to check,
// the auth block at its position, that none was sent, or that the request
// left base_url's origin, where credentials never go.
func TestUnauthorizedSaysWhichCredentials(t *testing.T) {
	refuse := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"bad key"}`))
	}
	api, other := newServer(t, refuse), newServer(t, refuse)
	query := Auth{Type: AuthQuery, Param: "api_key", Token: "k-123", ID: "tiny.yaml:7:3"}
	tests := []struct {
		name string
		cfg  HostConfig
		url  string
		want []string
	}{
		{"auth refused", HostConfig{BaseURL: api.URL, Auth: query}, "/x",
			[]string{"refused the credentials of the query auth at tiny.yaml:7:3", "check the config values it reads"}},
		{"token endpoint refused", HostConfig{BaseURL: api.URL, Auth: Auth{Type: AuthOAuth2, TokenURL: api.URL + "/token",
			ClientID: "id", ClientSecret: "k-123", ID: "tiny.yaml:7:3"}}, "/x",
			[]string{"refused the credentials of the oauth2 auth at tiny.yaml:7:3"}},
		{"no auth", HostConfig{BaseURL: api.URL}, "/x", []string{"sent no credentials", "no http.auth"}},
		{"credential header refused", HostConfig{BaseURL: api.URL, Headers: map[string]string{"X-Key": "k-123"}, SecretHeaders: []string{"X-Key"}}, "/x",
			[]string{"refused the credentials in http.headers (X-Key)"}},
		{"another origin", HostConfig{BaseURL: api.URL, Auth: query}, other.URL + "/next",
			[]string{"sent without credentials", "only to base_url's origin " + api.URL}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustClient(t, testPool(newFakeClock(), 0, nil), tc.cfg)
			_, err := c.Do(t.Context(), &Request{URL: tc.url})
			var se *StatusError
			if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
				t.Fatalf("want a 401 StatusError, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(se.Hint, w) {
					t.Errorf("hint %q does not say %q", se.Hint, w)
				}
			}
			if strings.Contains(err.Error(), "k-123") {
				t.Errorf("the key is in the error: %v", err)
			}
		})
	}
}
