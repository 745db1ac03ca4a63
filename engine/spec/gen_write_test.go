package spec

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var genDir = flag.String("gen", "", "write generated specs (1 MB, 5 MB, a 2,000-deep chain) to this directory, for measuring the ferry binary")

func TestWriteGenerated(t *testing.T) {
	if *genDir == "" {
		t.Skip("-gen DIR not given")
	}
	files := map[string][]byte{
		"spec1mb.yaml":    genSpec(1 << 20),
		"spec5mb.yaml":    genSpec(5 << 20),
		"unique1mb.yaml":  genSpecUnique(1 << 20),
		"unique5mb.yaml":  genSpecUnique(5 << 20),
		"chain2000.yaml":  genChain(2000),
		"blueprints.json": []byte(genBlueprints),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(*genDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
