package apitest

import (
	"os"
	"testing"
)

// FuzzParse: any input either parses into a fixture that validates, or
// returns an error; it never panics.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/humanitec.yaml", "testdata/harness.json"} {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("routes:\n  - path: /a/{b}\n    paginate: {type: cursor, param: c, token_path: n, envelope: d}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		fx, err := Parse(src)
		if err != nil {
			return
		}
		if err := fx.Validate(); err != nil {
			t.Fatalf("Parse accepted a fixture that does not validate: %v", err)
		}
	})
}
