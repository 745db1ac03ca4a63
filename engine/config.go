package engine

import (
	"errors"
	"fmt"
	"io"
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
// spec's defaults. Port's credentials come from the same sources, under
// the names PORT_CLIENT_ID, PORT_CLIENT_SECRET and PORT_BASE_URL.
type ConfigSources struct {
	Sets map[string]string
	// Values are typed values (a test case's config), below Sets.
	Values map[string]any
	File   string
	// FileData, when set, is the content of File (read by the caller, e.g.
	// from stdin for "--config -").
	FileData []byte
	Getenv   func(string) (string, bool)
	DotEnv   string // path of a .env file; missing is fine
}

// Config is the resolved input of a run.
type Config struct {
	Values  map[string]any
	Secrets []string // values of secret inputs, to redact everywhere
	// Port holds the Port credentials found in the sources (empty when
	// none were given); the caller adds its own options.
	Port PortOptions
}

// Names of Port's credentials in the environment, a .env file and a
// --config file.
const (
	EnvPortClientID     = "PORT_CLIENT_ID"
	EnvPortClientSecret = "PORT_CLIENT_SECRET"
	EnvPortBaseURL      = "PORT_BASE_URL"
)

func isPortKey(k string) bool {
	return k == EnvPortClientID || k == EnvPortClientSecret || k == EnvPortBaseURL
}

// ResolveConfig applies the sources to the spec's inputs. Every problem is
// reported at once: unknown keys, missing required inputs.
func ResolveConfig(sp *Spec, src ConfigSources) (*Config, error) {
	f := sp.f
	known := f.Config.Keys()
	var problems []string
	fileVals := map[string]any{}
	if src.File != "" {
		data := src.FileData
		if data == nil {
			var err error
			if data, err = os.ReadFile(src.File); err != nil {
				return nil, fmt.Errorf("config file: %w", err)
			}
		}
		if err := yaml.Unmarshal(data, &fileVals); err != nil {
			return nil, fmt.Errorf("config file %s: %w", src.File, err)
		}
		for k := range fileVals {
			if !slices.Contains(known, k) && !isPortKey(k) {
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
	// The environment variables the spec's inputs list, and Port's.
	envNames := map[string]bool{EnvPortClientID: true, EnvPortClientSecret: true, EnvPortBaseURL: true}
	for _, it := range f.Config.Items {
		for _, e := range it.Value.Env.V {
			envNames[e.V] = true
		}
	}
	for _, it := range f.Config.Items {
		name, v := it.Key, &it.Value
		val, from, ok, err := lookup(name, v, src.Sets, src.Values, fileVals, getenv, dotenv, src.File, envNames)
		if err != nil {
			problems = append(problems, fmt.Sprintf("input %q: %v", name, err))
			continue
		}
		if !ok && v.Default.Set {
			// The default as plain data: a YAML date stays the text written.
			val, from, ok = v.Default.Tree(), "the spec's default", true
		}
		if !ok {
			if v.Required.V {
				problems = append(problems, missing(name, v))
			}
			continue
		}
		typed, err := v.Convert(val)
		if err != nil {
			// A secret's value is never shown, not even a wrong one.
			if v.Secret.V {
				err = fmt.Errorf("the value does not fit type %s (not shown: the input is secret)", v.Type.V)
			}
			problems = append(problems, fmt.Sprintf("input %q (from %s): %v", name, from, err))
			continue
		}
		val = typed
		cfg.Values[name] = val
		if v.Secret.V {
			// A secret given as a YAML number or boolean in a config file is
			// still a secret, as the text it renders to.
			if s := fmt.Sprint(val); val != nil && s != "" {
				cfg.Secrets = append(cfg.Secrets, s)
			}
		}
	}
	// Port's credentials: the config file, then the environment, then .env.
	port := func(name string) string {
		if x, ok := fileVals[name]; ok && x != nil {
			return fmt.Sprint(x)
		}
		dot := func(k string) (string, bool) { s, ok := dotenv[k]; return s, ok }
		for _, get := range []struct {
			get   func(string) (string, bool)
			where string
		}{{getenv, "environment variable "}, {dot, ".env "}} {
			s, _, ok, err := fromEnv(name, get.get, get.where, envNames)
			if err != nil {
				problems = append(problems, fmt.Sprintf("Port credential %s: %v", name, err))
				return ""
			}
			if ok {
				return s
			}
		}
		return ""
	}
	cfg.Port = PortOptions{ClientID: port(EnvPortClientID), ClientSecret: port(EnvPortClientSecret), BaseURL: port(EnvPortBaseURL)}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

// ConfigError lists every config problem of a run.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

func lookup(name string, v *spec.ConfigVar, sets map[string]string, values, file map[string]any, getenv func(string) (string, bool), dotenv map[string]string, fileName string, own map[string]bool) (any, string, bool, error) {
	if s, ok := sets[name]; ok {
		return s, "--set", true, nil
	}
	if x, ok := values[name]; ok {
		return x, "the test case's config", true, nil
	}
	if x, ok := file[name]; ok {
		return x, "config file " + fileName, true, nil
	}
	for _, e := range v.Env.V {
		if s, from, ok, err := fromEnv(e.V, getenv, "environment variable ", own); ok || err != nil {
			return s, from, ok, err
		}
	}
	dot := func(k string) (string, bool) { s, ok := dotenv[k]; return s, ok }
	for _, e := range v.Env.V {
		if s, from, ok, err := fromEnv(e.V, dot, ".env ", own); ok || err != nil {
			return s, from, ok, err
		}
	}
	return nil, "", false, nil
}

// FileSuffix names, after an environment variable's name, a variable that
// holds the path of a file whose content is the value: TOKEN_FILE for
// TOKEN. Secrets mounted as files (Docker and Kubernetes secrets) are read
// so, as official container images read them.
const FileSuffix = "_FILE"

// maxValueFile bounds a value read from a NAME_FILE file: a CA bundle of
// every public root is about 250 KiB.
const maxValueFile = 8 << 20

// fromEnv reads name from get (the environment, or .env), or the file that
// name_FILE names, without its trailing line breaks (an editor's, or
// echo's), unless an input of the spec (own) lists name_FILE itself.
// Both set in one source is an error: which one is meant is unknown.
func fromEnv(name string, get func(string) (string, bool), where string, own map[string]bool) (string, string, bool, error) {
	s, ok := get(name)
	path, isFile := "", false
	if !own[name+FileSuffix] {
		// NAME_FILE that an input of the spec lists as its own (ca and
		// ca_file, K8S_CA and K8S_CA_FILE) is that input's value, a path:
		// read as this one's file too, it filled both.
		path, isFile = get(name + FileSuffix)
	}
	switch {
	case ok && s != "" && isFile && path != "":
		return "", "", false, fmt.Errorf("%s%s and %s%s are both set: one or the other", where, name, where, name+FileSuffix)
	case ok && s != "":
		return s, where + name, true, nil
	case !isFile || path == "":
		return "", "", false, nil
	}
	from := where + name + FileSuffix + " (" + path + ")"
	f, err := os.Open(path)
	if err != nil {
		return "", "", false, fmt.Errorf("%s: %w", from, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxValueFile+1))
	switch {
	case err != nil:
		return "", "", false, fmt.Errorf("%s: %w", from, err)
	case len(b) > maxValueFile:
		return "", "", false, fmt.Errorf("%s: larger than %d MiB", from, maxValueFile>>20)
	}
	// An empty file is an empty value, as an empty variable is: unset.
	v := strings.TrimRight(string(b), "\r\n")
	return v, from, v != "", nil
}

func missing(name string, v *spec.ConfigVar) string {
	var ways []string
	ways = append(ways, "--set "+name+"=…")
	if len(v.Env.V) > 0 {
		envs := make([]string, len(v.Env.V))
		for i, e := range v.Env.V {
			envs[i] = e.V
		}
		ways = append(ways, "environment variable "+strings.Join(envs, " or ")+" (also read from a .env file: "+envs[0]+"=…; or "+envs[0]+FileSuffix+" naming a file that holds it)")
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

// readDotEnv reads a .env file as docker compose and python-dotenv do:
// KEY=VALUE lines, blank lines and # comments skipped, an optional
// "export " prefix; an unquoted value ends at " #" (an inline comment) and
// is trimmed; a 'single-quoted' value is literal; a "double-quoted" value
// takes the escapes \n \r \t \" \\ and \$; a quoted value may span
// lines and be followed by a comment. Values are not interpolated.
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
	if err := parseDotEnv(string(data), out); err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return out, nil
}

// parseDotEnv adds the assignments of a .env text to out; an error starts
// with its line number.
func parseDotEnv(src string, out map[string]string) error {
	src = strings.ReplaceAll(strings.TrimPrefix(src, "\ufeff"), "\r\n", "\n")
	line := 0
	for src != "" {
		var text string
		text, src, _ = strings.Cut(src, "\n")
		line++
		at := line
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(text, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			text = strings.TrimSpace(rest)
		}
		k, v, ok := strings.Cut(text, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'#") {
			return fmt.Errorf("%d: want KEY=VALUE", at)
		}
		v = strings.TrimLeft(v, " \t")
		if v == "" || v[0] != '"' && v[0] != '\'' {
			if i := strings.IndexAny(v, "#"); i >= 0 && (i == 0 || v[i-1] == ' ' || v[i-1] == '\t') {
				v = v[:i]
			}
			out[k] = strings.TrimSpace(v)
			continue
		}
		// A quoted value runs to its closing quote, across lines if need be.
		quote := v[0]
		v = v[1:]
		var b strings.Builder
		for {
			end := closingQuote(v, quote)
			if end >= 0 {
				b.WriteString(unescape(v[:end], quote))
				if rest := strings.TrimSpace(v[end+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
					// The text may be the tail of a secret with a quote in it.
					hint := `a ' inside the value needs the value in double quotes`
					if quote == '"' {
						hint = `a " inside the value is written \"`
					}
					return fmt.Errorf("%d: %s: unexpected text after the closing quote (not shown: it may be part of a secret; %s)", line, k, hint)
				}
				break
			}
			if src == "" {
				return fmt.Errorf("%d: %s: the value's %c quote is never closed", at, k, quote)
			}
			b.WriteString(unescape(v, quote))
			b.WriteByte('\n')
			v, src, _ = strings.Cut(src, "\n")
			line++
		}
		out[k] = b.String()
	}
	return nil
}

// closingQuote is the index of the quote that ends a value in s, or -1;
// in a double-quoted value a backslash escapes the next byte.
func closingQuote(s string, quote byte) int {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quote == '"':
			i++
		case s[i] == quote:
			return i
		}
	}
	return -1
}

// unescape applies a double-quoted value's escapes; a single-quoted value
// is literal. An unknown escape is kept as written.
func unescape(s string, quote byte) string {
	if quote != '"' || !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '"', '\\', '$':
			b.WriteByte(s[i])
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
