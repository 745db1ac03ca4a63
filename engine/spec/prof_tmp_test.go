package spec

import (
	"bytes"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/ferry-etl/ferry/engine/eval"
	"gopkg.in/yaml.v3"
)

func liveMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

func TestPhases(t *testing.T) {
	runtime.MemProfileRate = 4096
	src, _ := os.ReadFile("/tmp/gen/unique5mb.yaml")
	t.Logf("start %.0f", liveMB())
	f := &File{Path: "x"}
	d := &decoder{file: "x"}
	p := &parser{decoder: d, lines: splitLines(string(src)), maxValueNodes: 100_000 + len(src), cache: eval.NewCache()}
	t.Logf("lines %.0f", liveMB())
	var doc yaml.Node
	yaml.NewDecoder(bytes.NewReader(src)).Decode(&doc)
	t.Logf("yaml %.0f", liveMB())
	root := doc.Content[0]
	p.decode(root, reflectValue(f), "", nodePos(root))
	t.Logf("decoded %.0f", liveMB())
	doc = yaml.Node{}
	root = nil
	p.merged = nil
	t.Logf("yaml freed %.0f", liveMB())
	p.validate(f)
	t.Logf("compiled %.0f", liveMB())
	fh, _ := os.Create("/tmp/heap.prof")
	pprof.WriteHeapProfile(fh)
	fh.Close()
	runtime.KeepAlive(f)
}
