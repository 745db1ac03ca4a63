package spec

import (
	"fmt"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"
)

// BenchmarkValidate parses and validates generated specs of 1 MB and 5 MB;
// BenchmarkYAMLOnly decodes the same bytes with yaml.v3 alone, the
// baseline validate is compared with.
func BenchmarkValidate(b *testing.B) {
	for _, mb := range []int{1, 5} {
		src := genSpec(mb << 20)
		fsys := fstest.MapFS{"blueprints.json": {Data: []byte(genBlueprints)}}
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := Parse("gen.yaml", src, fsys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("chain2000", func(b *testing.B) {
		src := genChain(2000)
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, err := Parse("gen.yaml", src, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkYAMLOnly(b *testing.B) {
	for _, mb := range []int{1, 5} {
		src := genSpec(mb << 20)
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				var n yaml.Node
				if err := yaml.Unmarshal(src, &n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
