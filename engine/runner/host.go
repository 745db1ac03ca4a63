package runner

import (
	"fmt"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/spec"
)

// hostConfig merges the spec's http block with the stream's overrides and
// renders their templates (which see config only).
func hostConfig(f *spec.File, s *spec.Stream, env map[string]any) (fetch.HostConfig, error) {
	var hc fetch.HostConfig
	layers := []*spec.HTTP{&f.HTTP}
	if s.HTTP != nil {
		layers = append(layers, s.HTTP)
	}
	render := func(t *spec.Tmpl, name string) (string, error) {
		if t.Template() == nil {
			return "", nil
		}
		v, err := t.Template().RenderString(env)
		if err != nil {
			return "", fmt.Errorf("http.%s: %w", name, err)
		}
		return v, nil
	}
	hc.Headers = map[string]string{}
	for _, h := range layers {
		if h.BaseURL.Set {
			v, err := render(&h.BaseURL, "base_url")
			if err != nil {
				return hc, err
			}
			hc.BaseURL = v
		}
		for i := range h.Headers.Items {
			it := &h.Headers.Items[i]
			v, err := render(&it.Value, "headers."+it.Key)
			if err != nil {
				return hc, err
			}
			hc.Headers[it.Key] = v
		}
		if h.Timeout.Set {
			hc.Timeout = h.Timeout.V
		}
		if h.Concurrency.Set {
			hc.Concurrency = h.Concurrency.V
		}
		if rl := h.RateLimit; rl != nil {
			hc.RatePerSecond = rl.PerSecond.V
			hc.Burst = rl.Burst.V
		}
		if rt := h.Retry; rt != nil {
			if rt.Attempts.Set {
				hc.Retry.Attempts = rt.Attempts.V
			}
			if rt.On != nil {
				hc.Retry.Statuses = make([]int, len(rt.On))
				for i, st := range rt.On {
					hc.Retry.Statuses[i] = st.V
				}
			}
			if rt.Initial.Set {
				hc.Retry.Initial = rt.Initial.V
			}
			if rt.Max.Set {
				hc.Retry.Max = rt.Max.V
			}
		}
		if a := h.Auth; a != nil {
			// An auth block replaces the inherited one whole: another host
			// usually means another scheme (Harness SEI's ApiKey header).
			auth := fetch.Auth{Type: a.Type.V, Header: a.Header.V, Prefix: a.Prefix.V, Param: a.Param.V}
			if auth.Type == "none" {
				auth.Type = fetch.AuthNone
			}
			for _, x := range []struct {
				t    *spec.Tmpl
				name string
				dst  *string
			}{
				{&a.Token, "token", &auth.Token}, {&a.Value, "value", &auth.Token},
				{&a.Username, "username", &auth.Username}, {&a.Password, "password", &auth.Password},
				{&a.TokenURL, "token_url", &auth.TokenURL}, {&a.ClientID, "client_id", &auth.ClientID},
				{&a.ClientSecret, "client_secret", &auth.ClientSecret},
			} {
				if x.t.Set {
					v, err := render(x.t, "auth."+x.name)
					if err != nil {
						return hc, err
					}
					*x.dst = v
				}
			}
			for _, sc := range a.Scopes {
				auth.Scopes = append(auth.Scopes, sc.V)
			}
			hc.Auth = auth
		}
	}
	if hc.BaseURL == "" && !s.Request.URL.Set {
		return hc, fmt.Errorf("no base_url: set http.base_url or request.url")
	}
	return hc, nil
}
