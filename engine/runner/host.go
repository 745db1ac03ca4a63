package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/spec"
)

// usesSecret reports whether a template reads a secret input (see
// spec.File.SecretParts): its value is then a credential.
func usesSecret(f *spec.File, t *spec.Tmpl) bool {
	return slices.Contains(f.SecretParts(t.Template()), true)
}

// secretParts is spec.File.SecretParts of a request template, cached.
func (r *Runner) secretParts(t *eval.Template) []bool {
	parts, ok := r.secretTmpls.Load(t)
	if !ok {
		parts, _ = r.secretTmpls.LoadOrStore(t, r.f.SecretParts(t))
	}
	return parts.([]bool)
}

// secretHeader teaches the pool a request header's value when its
// template reads a secret input: whole and after its scheme word, as
// fetch does for the http block's headers.
func (r *Runner) secretHeader(t *eval.Template, v string) {
	if r.opts.Pool == nil || !slices.Contains(r.secretParts(t), true) {
		return
	}
	r.opts.Pool.AddSecrets(headerSecrets(v)...)
}

// headerSecrets are the forms of a credential header's value: whole and
// after its scheme word ("Basic ", "ApiKey ").
func headerSecrets(v string) []string {
	vals := []string{v}
	if _, rest, ok := strings.Cut(v, " "); ok {
		vals = append(vals, strings.TrimSpace(rest))
	}
	return vals
}

// secretValue teaches the pool what the templates of a rendered query or
// body value that read a secret input gave (see derivedSecrets).
func (r *Runner) secretValue(tree, v any) {
	if r.opts.Pool == nil {
		return
	}
	if vals := derivedSecrets(r.secretParts, tree, v, nil); len(vals) > 0 {
		r.opts.Pool.AddSecrets(vals...)
	}
}

// derivedSecrets appends to out what the templates of a rendered value
// (tree, as spec.RenderValue rendered it to v) that read a secret input
// gave, parts telling which do: each such template's value, not the text
// around it (a body's other fields). A value that is a list or a map
// gives its strings and scalars.
func derivedSecrets(parts func(*eval.Template) []bool, tree, v any, out []string) []string {
	switch x := tree.(type) {
	case *eval.Template:
		if slices.Contains(parts(x), true) {
			out = leafTexts(v, out)
		}
	case map[string]any:
		m, _ := v.(map[string]any)
		for k, sub := range x {
			out = derivedSecrets(parts, sub, m[k], out)
		}
	case []any:
		l, _ := v.([]any)
		for i, sub := range x {
			if i < len(l) {
				out = derivedSecrets(parts, sub, l[i], out)
			}
		}
	}
	return out
}

// leafTexts appends the strings in v to out: a boolean is one bit of a
// secret, and a number one decides is a count or a switch (a page size of
// 1000 when a key is set), not it; either redacted would garble every
// message holding the word or the figure. A secret input that is a
// number is redacted as itself.
func leafTexts(v any, out []string) []string {
	if notSecretText(v) {
		return out
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			out = leafTexts(e, out)
		}
	case []any:
		for _, e := range x {
			out = leafTexts(e, out)
		}
	default:
		out = append(out, eval.FormatScalar(x))
	}
	return out
}

// notSecretText reports whether a value a secret input decided is no
// credential to redact (see leafTexts): null, a boolean or a number.
func notSecretText(v any) bool {
	switch v.(type) {
	case nil, bool, json.Number, *big.Int:
		return true
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// secretEach is the secret each of nullRecordEach (eval.Template's
// RenderParts) for a path, a URL or a text body: it teaches the pool the
// value of each part of t that reads a secret input (a path segment, a
// query value), not the whole text. Nil when no part does.
func (r *Runner) secretEach(t *eval.Template) func(int, any, string) {
	if r.opts.Pool == nil {
		return nil
	}
	parts := r.secretParts(t)
	if !slices.Contains(parts, true) {
		return nil
	}
	return func(i int, v any, s string) {
		if secretPart(parts, i, v) {
			r.opts.Pool.AddSecrets(s)
		}
	}
}

// secretPart reports whether part i of a template, which gave v, is a
// credential: it reads a secret input (parts), and v is no boolean or
// number (see leafTexts).
func secretPart(parts []bool, i int, v any) bool {
	return i < len(parts) && parts[i] && !notSecretText(v)
}

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
	var top, own []fetch.Rule
	for i, h := range layers {
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
			if usesSecret(f, &it.Value) {
				hc.SecretHeaders = append(hc.SecretHeaders, it.Key)
			}
		}
		if h.Timeout.Set {
			hc.Timeout = h.Timeout.V
		}
		if h.Concurrency.Set {
			hc.Concurrency = h.Concurrency.V
		}
		if rl := h.RateLimit; rl != nil && i == 0 {
			// The top level's: the host's ceiling, shared by its streams.
			hc.RatePerSecond = rl.PerSecond.V
			hc.Burst = rl.Burst.V
		} else if rl != nil {
			// A stream's own: one endpoint's limit (a search API's, a
			// Slack method's tier), on its requests only; held to it, the
			// host's other streams go at the host's pace.
			hc.OwnRatePerSecond = rl.PerSecond.V
			hc.OwnBurst = rl.Burst.V
			hc.OwnRateGroup = rl.Group.V
		}
		for j, rh := range h.RateLimitHeaders.V {
			// The top level's only (validation): the host's budgets, the
			// first read before the standard headers.
			b := fetch.BudgetHeaders{Remaining: rh.Remaining.V, Reset: rh.Reset.V,
				Window: rh.Window.V, Limit: rh.Limit.V, Millis: rh.Unit.V == "ms"}
			if j == 0 {
				hc.Budget = b
			} else {
				hc.OtherBudgets = append(hc.OtherBudgets, b)
			}
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
			if rt.Post.Set {
				post := rt.Post.V
				hc.RetryPOST = &post
			}
		}
		if a := h.Auth; a != nil {
			// An auth block replaces the inherited one whole: another host
			// usually means another scheme (Harness SEI's ApiKey header).
			auth := fetch.Auth{Type: a.Type.V, Header: a.Header.V, Prefix: a.Prefix.V, Param: a.Param.V,
				Grant: a.Grant.V, Algorithm: a.Algorithm.V, TTL: a.TTL.V, Assertion: a.Assertion.V,
				ID: fmt.Sprintf("%s:%d:%d", f.Path, a.Pos.Line, a.Pos.Col)}
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
				{&a.RefreshToken, "refresh_token", &auth.RefreshToken}, {&a.PrivateKey, "private_key", &auth.PrivateKey},
				{&a.AccessKeyID, "access_key_id", &auth.AccessKeyID}, {&a.SecretAccessKey, "secret_access_key", &auth.SecretAccessKey},
				{&a.SessionToken, "session_token", &auth.SessionToken}, {&a.Region, "region", &auth.Region}, {&a.Service, "service", &auth.Service},
			} {
				if x.t.Set {
					v, err := render(x.t, "auth."+x.name)
					if err != nil {
						return hc, err
					}
					*x.dst = v
				}
			}
			for i := range a.Scopes {
				// Rendered as the other fields are: sent as written, a
				// "${ config.scope }" reached the server literally.
				v, err := render(&a.Scopes[i], fmt.Sprintf("auth.scopes[%d]", i))
				if err != nil {
					return hc, err
				}
				auth.Scopes = append(auth.Scopes, v)
			}
			switch {
			case a.BodyFormat.V == "json":
				auth.AuthStyle = fetch.StyleJSON
			case a.ClientAuth.V == "body":
				auth.AuthStyle = fetch.StyleForm
			}
			if err := authFlow(f, a, &auth, env); err != nil {
				return hc, err
			}
			hc.Auth = auth
		}
		if t := h.TLS; t != nil {
			// A tls block replaces the inherited one whole, as auth does.
			tc := fetch.TLS{NoSystemRoots: t.SystemRoots.Set && !t.SystemRoots.V, MinVersion: t.MinVersion.V}
			for _, x := range []struct {
				t    *spec.Tmpl
				name string
				dst  *string
				file bool
			}{
				{&t.CAFile, "ca_file", &tc.CAFile, true}, {&t.ClientCertFile, "client_cert_file", &tc.ClientCertFile, true},
				{&t.ClientKeyFile, "client_key_file", &tc.ClientKeyFile, true}, {&t.ServerName, "server_name", &tc.ServerName, false},
				{&t.CAPEM, "ca_pem", &tc.CAPEM, false}, {&t.ClientCertPEM, "client_cert_pem", &tc.ClientCertPEM, false},
				{&t.ClientKeyPEM, "client_key_pem", &tc.ClientKeyPEM, false},
			} {
				v, err := render(x.t, "tls."+x.name)
				if err != nil {
					return hc, err
				}
				if x.file && v != "" && !filepath.IsAbs(v) {
					// As at validation: relative to the spec, wherever ferry runs.
					v = filepath.Join(specDir(f), v)
				}
				*x.dst = v
			}
			hc.TLS = tc
		}
		if i == 0 {
			top = rules(h.Rules, env)
		} else {
			own = rules(h.Rules, env)
		}
	}
	// A stream's own rules are tried first, then the top-level ones.
	hc.Rules = append(own, top...)
	if hc.BaseURL == "" && needsBaseURL(s) {
		return hc, fmt.Errorf("no base_url: set http.base_url or request.url")
	}
	return hc, nil
}

// needsBaseURL reports whether a stream sends a request by path, which
// joins the base URL. Partitions send nothing, and a request or export job
// given by url needs no base (relative result links of a job are resolved,
// and fail, when they come).
func needsBaseURL(s *spec.Stream) bool {
	if s.Partitions != nil {
		return false
	}
	if a := s.Async; a != nil {
		return a.Create.Path.Set || a.Poll.Path.Set || a.Download.Path.Set
	}
	return !s.Request.URL.Set
}

// program binds a compiled jq program of a host setting to its one
// variable, $config.
func program(q *spec.JQ, env map[string]any) fetch.Extract {
	code := q.Code()
	if code == nil {
		return nil
	}
	cfg := env[spec.VarConfig]
	return func(ctx context.Context, body any) (any, bool, error) { return code.First(ctx, body, cfg) }
}

// rules turns an http block's response rules into fetch's.
func rules(rs []spec.Rule, env map[string]any) []fetch.Rule {
	var out []fetch.Rule
	for i := range rs {
		r := &rs[i]
		fr := fetch.Rule{Name: r.Path(), Action: r.Action.V, Body: program(&r.Body, env), Message: program(&r.Message, env),
			WaitHeader: r.WaitHeader.V, MaxWait: r.MaxWait.V, Wait: r.Wait.V}
		for _, sr := range r.Ranges() {
			fr.Statuses = append(fr.Statuses, fetch.StatusRange{Min: sr.Min, Max: sr.Max})
		}
		if r.Headers.Set {
			fr.Headers = map[string]string{}
			for _, it := range r.Headers.Items {
				fr.Headers[it.Key] = it.Value.V
			}
		}
		out = append(out, fr)
	}
	return out
}

// authFlow renders what the auth kinds that make requests need: the login
// or exchange request, and the JWT's claims.
func authFlow(f *spec.File, a *spec.Auth, auth *fetch.Auth, env map[string]any) error {
	if a.Claims.Set {
		auth.Claims = map[string]any{}
		for _, it := range a.Claims.Items {
			v, err := spec.RenderValue(it.Value.Tree(), env)
			if err != nil {
				return fmt.Errorf("http.auth.claims.%s: %w", it.Key, err)
			}
			auth.Claims[it.Key] = v
			auth.ClaimSecrets = derivedSecrets(f.SecretParts, it.Value.Tree(), v, auth.ClaimSecrets)
		}
	}
	for _, x := range []struct {
		name string
		r    *spec.AuthRequest
	}{{"login", a.Login}, {"exchange", a.Exchange}} {
		if x.r == nil {
			continue
		}
		tr, err := tokenRequest(f, x.r, env)
		if err != nil {
			return fmt.Errorf("http.auth.%s: %w", x.name, err)
		}
		auth.Login = tr
	}
	return nil
}

// tokenRequest renders a login or exchange request. The values of its
// parts that a template built from a secret input are its Secrets (see
// Runner.secretValue), which the pool redacts: the request is recorded
// in a cassette, and an answer may echo them.
func tokenRequest(f *spec.File, r *spec.AuthRequest, env map[string]any) (*fetch.TokenRequest, error) {
	tr := &fetch.TokenRequest{Method: r.Method.V, BodyFormat: r.BodyFormat.V, TokenHeader: r.TokenHeader.V, TTL: r.TTL.V,
		Token: program(&r.Token, env), ExpiresIn: program(&r.ExpiresIn, env), Query: url.Values{}, Header: http.Header{}}
	each := func(t *eval.Template) func(int, any, string) error {
		parts := f.SecretParts(t)
		return func(i int, v any, s string) error {
			if secretPart(parts, i, v) {
				tr.Secrets = append(tr.Secrets, s)
			}
			return nil
		}
	}
	var err error
	switch {
	case r.URL.Template() != nil:
		var v any
		if v, err = r.URL.Template().RenderParts(env, each(r.URL.Template())); err == nil {
			tr.URL = eval.FormatScalar(v)
		}
	case r.Path.Template() != nil:
		tr.URL, err = r.Path.Template().RenderPathParts(env, each(r.Path.Template()))
	}
	if err != nil {
		return nil, err
	}
	for _, it := range r.Query.Items {
		v, err := spec.RenderValue(it.Value.Tree(), env)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", it.Key, err)
		}
		tr.Secrets = derivedSecrets(f.SecretParts, it.Value.Tree(), v, tr.Secrets)
		for _, sv := range queryValues(v) {
			tr.Query.Add(it.Key, sv)
		}
	}
	for _, it := range r.Headers.Items {
		v, err := it.Value.Template().RenderString(env)
		if err != nil {
			return nil, fmt.Errorf("headers %s: %w", it.Key, err)
		}
		if slices.Contains(f.SecretParts(it.Value.Template()), true) {
			tr.Secrets = append(tr.Secrets, headerSecrets(v)...)
		}
		tr.Header.Set(it.Key, v)
	}
	if r.Body.Set {
		if tr.Body, err = spec.RenderValue(r.Body.Tree(), env); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		tr.Secrets = derivedSecrets(f.SecretParts, r.Body.Tree(), tr.Body, tr.Secrets)
	}
	return tr, nil
}

// specDir is the directory a spec's relative file references resolve
// against.
func specDir(f *spec.File) string {
	if f.Dir != "" {
		return f.Dir
	}
	return filepath.Dir(f.Path)
}
