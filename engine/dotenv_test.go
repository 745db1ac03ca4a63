package engine

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseDotEnv: .env files read as docker compose and python-dotenv
// read them.
func TestParseDotEnv(t *testing.T) {
	tests := []struct {
		name, src string
		want      map[string]string
		err       string
	}{
		{"plain and spaces", "A=1\n  B = two words  \n", map[string]string{"A": "1", "B": "two words"}, ""},
		{"comments and blanks", "# c\n\nA=1 # trailing\nB=x#not-a-comment\nC=\n", map[string]string{"A": "1", "B": "x#not-a-comment", "C": ""}, ""},
		{"export", "export A=1\nexport\tB=2\nexporter=3\n", map[string]string{"A": "1", "B": "2", "exporter": "3"}, ""},
		{"double quotes with comment", `A="v" # comment` + "\n" + `B="a # b"`, map[string]string{"A": "v", "B": "a # b"}, ""},
		{"single quotes literal", `A='x\ny $Z' # c`, map[string]string{"A": `x\ny $Z`}, ""},
		{"escapes", `A="l1\nl2\t\"q\" \\ \$HOME \z"`, map[string]string{"A": "l1\nl2\t\"q\" \\ $HOME \\z"}, ""},
		{"multi-line", "A=\"first\nsecond\"\nB='x\ny'\nC=3", map[string]string{"A": "first\nsecond", "B": "x\ny", "C": "3"}, ""},
		{"crlf and bom", "\ufeffA=1\r\nB=\"2\"\r\n", map[string]string{"A": "1", "B": "2"}, ""},
		{"equals in value", "URL=postgres://u:p@h/db?x=1", map[string]string{"URL": "postgres://u:p@h/db?x=1"}, ""},
		{"no equals", "A=1\nJUNK\n", nil, "2: want KEY=VALUE"},
		{"unclosed quote", "A=1\nB=\"open\nC=2\n", nil, `2: B: the value's " quote is never closed`},
		// The text may be a secret's tail (a quote inside a single-quoted
		// password): it is not shown.
		{"text after quote", `TOKEN='it's-s3cret'`, nil, `1: TOKEN: unexpected text after the closing quote (not shown: it may be part of a secret; a ' inside the value needs the value in double quotes)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			err := parseDotEnv(tc.src, got)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("parseDotEnv error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseDotEnv (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPortCredentialSources: Port's credentials come from a --config
// file, the environment and .env, in that order, as spec inputs do; the
// config file may hold them without being called unknown inputs.
func TestPortCredentialSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sp, err := Load(write("s.yaml", "version: 1\nname: s\nconfig:\n  url: {default: x}\nstreams:\n  a:\n    request: {url: http://127.0.0.1/}\n"))
	if err != nil {
		t.Fatal(err)
	}
	dotenv := write(".env", "PORT_CLIENT_ID=\"from-dotenv\" # the id\nPORT_CLIENT_SECRET='dotenv-secret'\nPORT_BASE_URL=https://api.us.port.io\n")
	file := write("c.yaml", "PORT_CLIENT_SECRET: file-secret\nurl: y\n")
	env := map[string]string{"PORT_BASE_URL": "https://env.example"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	cfg, err := ResolveConfig(sp, ConfigSources{File: file, DotEnv: dotenv, Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	want := PortOptions{ClientID: "from-dotenv", ClientSecret: "file-secret", BaseURL: "https://env.example"}
	if !reflect.DeepEqual(cfg.Port, want) {
		t.Errorf("Port = %+v, want %+v", cfg.Port, want)
	}
	cfg, err = ResolveConfig(sp, ConfigSources{DotEnv: dotenv, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port.ClientSecret != "dotenv-secret" || cfg.Port.BaseURL != "https://api.us.port.io" {
		t.Errorf("Port from .env = %+v", cfg.Port)
	}
	// A secret mounted as a file: PORT_CLIENT_SECRET_FILE names it.
	env["PORT_CLIENT_SECRET_FILE"] = write("port-secret", "mounted-secret\n")
	cfg, err = ResolveConfig(sp, ConfigSources{DotEnv: dotenv, Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port.ClientSecret != "mounted-secret" || cfg.Port.ClientID != "from-dotenv" {
		t.Errorf("Port with PORT_CLIENT_SECRET_FILE = %+v", cfg.Port)
	}
	delete(env, "PORT_CLIENT_SECRET_FILE")
	_, err = ResolveConfig(sp, ConfigSources{File: write("bad.yaml", "PORT_CLIENT_IDX: x\n"), Getenv: getenv})
	if err == nil || !strings.Contains(err.Error(), `unknown input "PORT_CLIENT_IDX"`) {
		t.Errorf("a misspelt Port key: error = %v", err)
	}
}
