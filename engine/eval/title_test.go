package eval

import (
	"encoding/json"
	"os"
	"testing"
)

func TestTitleCase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"k8s-x", "K8S-X"},
		{"v2beta", "V2Beta"},
		{"AppV2", "Appv2"},
		{"hello world", "Hello World"},
		{"HELLO", "Hello"},
		{"x--y", "X--Y"},
		{"they're", "They'Re"},
		{"ǆemal", "ǅemal"},   // titlecase digraph, not upper case
		{"ǄEMAL", "ǅemal"},   // lower-cased after a cased rune
		{"straße", "Straße"}, // ß after a cased rune: lower case, unchanged
		{"ßa", "Ssa"},        // full title mapping of ß
		{"ﬁsh", "Fish"},      // ligature expands
		{"aİ", "Ai̇"},        // full lower mapping of İ: i + combining dot
		{"ΑΣ ΑΣ", "Ας Ας"},   // final sigma
		{"ΣΑΣ", "Σας"},
		{"café", "Café"},
		{"日本語 abc", "日本語 Abc"},
	}
	for _, tc := range tests {
		if got := TitleCase(tc.in); got != tc.want {
			t.Errorf("TitleCase(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCleanTitle(t *testing.T) {
	tests := []struct{ in, want string }{
		{"k8s-x", "K8S X"},
		{"x--y", "X  Y"},
		{"__x", "  X"},
		{"café", "Caf "},
		{"AWS-secrets", "Aws Secrets"},
		{"postgres.default", "Postgres Default"},
		{"4b3d9f0a", "4B3D9F0A"},
		{"my-app", "My App"},
		{"hello_world", "Hello World"},
		{"k8s-cluster", "K8S Cluster"},
		{"v2beta", "V2Beta"},
		{"AppV2", "Appv2"},
		{"tab\there", "Tab\tHere"},   // whitespace is kept as is
		{"nb\u00a0sp", "Nb\u00a0Sp"}, // Unicode whitespace too
		{"fs\x1cx", "Fs\x1cX"},       // Python counts U+001C as space
		{"üBER-ärger", " Ber  Rger"}, // non-ASCII letters become spaces
		{"日本", "  "},                 // one space per rune, not per byte
		{"modules.api", "Modules Api"},
	}
	for _, tc := range tests {
		if got := CleanTitle(tc.in); got != tc.want {
			t.Errorf("CleanTitle(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestTitlePython compares with outputs of Python's str.title() and of
// re.sub(r"[^A-Za-z0-9\s]", " ", s).title(), recorded by
// testdata/gen_python_title.py.
func TestTitlePython(t *testing.T) {
	data, err := os.ReadFile("testdata/python_title.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct{ In, Title, Clean string }
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 10 {
		t.Fatalf("python_title.json has %d cases", len(ref.Cases))
	}
	for _, c := range ref.Cases {
		if got := TitleCase(c.In); got != c.Title {
			t.Errorf("TitleCase(%q) = %q, python %q", c.In, got, c.Title)
		}
		if got := CleanTitle(c.In); got != c.Clean {
			t.Errorf("CleanTitle(%q) = %q, python %q", c.In, got, c.Clean)
		}
	}
}

func FuzzCleanTitle(f *testing.F) {
	for _, s := range []string{"k8s-x", "café", "ΑΣ ΑΣ", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := CleanTitle(s)
		// Rune for rune: the output has as many runes as the input (invalid
		// bytes count as one rune each and become one space).
		if n, m := len([]rune(s)), len([]rune(got)); n != m {
			t.Errorf("CleanTitle(%q) = %q: %d runes, want %d", s, got, m, n)
		}
		if !isASCII(got) {
			for _, r := range got {
				if r >= 0x80 && !isPySpace(r) {
					t.Errorf("CleanTitle(%q) = %q keeps non-ASCII %q", s, got, r)
				}
			}
		}
	})
}
