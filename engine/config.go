package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferry-etl/ferry/engine/internal/suggest"

	"github.com/ferry-etl/ferry/engine/spec"
)

// ConfigSources are where config values come from, highest precedence first:
// Sets (--set k=v), File (--config FILE, YAML or JSON), the environment
// (each input's env names), DotEnv (a .env file's KEY=VALUE lines), then the
// spec's defaults.
type ConfigSources struct {
	Sets map[string]string
	// Values are typed values (a test case's config), below Sets.
	Values map[string]any
	File   string
	Getenv func(string) (string, bool)
	DotEnv string // path of a .env file; missing is fine
}

// Config is the resolved input of a run.
type Config struct {
	Values  map[string]any
	Secrets []string // values of secret inputs, to redact everywhere
}

// ResolveConfig applies the sources to the spec's inputs. Every problem is
// reported at once: unknown keys, missing required inputs.
func ResolveConfig(sp *Spec, src ConfigSources) (*Config, error) {
	f := sp.f
	known := f.Config.Keys()
	var problems []string
	fileVals := map[string]any{}
	if src.File != "" {
		data, err := os.ReadFile(src.File)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(data, &fileVals); err != nil {
			return nil, fmt.Errorf("config file %s: %w", src.File, err)
		}
		for k := range fileVals {
			if !slices.Contains(known, k) {
				problems = append(problems, fmt.Sprintf("config file %s: unknown input %q%s", src.File, k, didYouMean(k, known)))
			}
		}
	}
	for k := range src.Sets {
		if !slices.Contains(known, k) {
			problems = append(problems, fmt.Sprintf("--set %s: unknown input%s (the spec has: %s)", k, didYouMean(k, known), strings.Join(known, ", ")))
		}
	}
	for k := range src.Values {
		if !slices.Contains(known, k) {
			problems = append(problems, fmt.Sprintf("config: unknown input %q%s (the spec has: %s)", k, didYouMean(k, known), strings.Join(known, ", ")))
		}
	}
	dotenv, err := readDotEnv(src.DotEnv)
	if err != nil {
		return nil, err
	}
	getenv := src.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	cfg := &Config{Values: map[string]any{}}
	for _, it := range f.Config.Items {
		name, v := it.Key, &it.Value
		val, ok := lookup(name, v, src.Sets, src.Values, fileVals, getenv, dotenv)
		if !ok && v.Default.Set {
			// The default as plain data: a YAML date stays the text written.
			val, ok = v.Default.Tree(), true
		}
		if !ok {
			if v.Required.V {
				problems = append(problems, missing(name, v))
			}
			continue
		}
		cfg.Values[name] = val
		if v.Secret.V {
			// A secret given as a YAML number or boolean in a config file is
			// still a secret, as the text it renders to.
			if s := fmt.Sprint(val); val != nil && s != "" {
				cfg.Secrets = append(cfg.Secrets, s)
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

// ConfigError lists every config problem of a run.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

func lookup(name string, v *spec.ConfigVar, sets map[string]string, values, file map[string]any, getenv func(string) (string, bool), dotenv map[string]string) (any, bool) {
	if s, ok := sets[name]; ok {
		return s, true
	}
	if x, ok := values[name]; ok {
		return x, true
	}
	if x, ok := file[name]; ok {
		return x, true
	}
	for _, e := range v.Env.V {
		if s, ok := getenv(e.V); ok && s != "" {
			return s, true
		}
	}
	for _, e := range v.Env.V {
		if s, ok := dotenv[e.V]; ok && s != "" {
			return s, true
		}
	}
	return nil, false
}

func missing(name string, v *spec.ConfigVar) string {
	var ways []string
	ways = append(ways, "--set "+name+"=…")
	if len(v.Env.V) > 0 {
		envs := make([]string, len(v.Env.V))
		for i, e := range v.Env.V {
			envs[i] = e.V
		}
		ways = append(ways, "environment variable "+strings.Join(envs, " or "))
	}
	ways = append(ways, "a --config file")
	msg := fmt.Sprintf("missing required input %q: give it with %s", name, strings.Join(ways, ", "))
	if v.Description.Set {
		msg += " (" + v.Description.V + ")"
	}
	return msg
}

func didYouMean(name string, known []string) string {
	if best := suggest.Closest(name, known); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

// readDotEnv reads KEY=VALUE lines (optional "export ", quotes, # comments).
func readDotEnv(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf(".env: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		} else if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, sc.Err()
}
