package runner

import (
	"encoding/json"
	"fmt"
	"testing"
)

// BenchmarkCursorMax: the largest of 1,000 records' cursors, as a chain
// takes it (cursors): each record's cursor read once against the largest
// kept read. The figure is per 1,000 records.
func BenchmarkCursorMax(b *testing.B) {
	kinds := map[string]func(i int) any{
		"time":   func(i int) any { return fmt.Sprintf("2026-03-05T10:%02d:%02d.%03dZ", i/60%60, i%60, i) },
		"offset": func(i int) any { return fmt.Sprintf("2026-03-05T10:%02d:%02d.000+0100", i/60%60, i%60) },
		"number": func(i int) any { return json.Number(fmt.Sprint(1761353400000000000 + i)) },
		"digits": func(i int) any { return fmt.Sprint(1761353400000 + i) },
		"int":    func(i int) any { return 1761353400 + i },
		"float":  func(i int) any { return 1761353400.5 + float64(i) },
		"text":   func(i int) any { return fmt.Sprintf("v%05d", i) },
	}
	for name, gen := range kinds {
		cs := make([]any, 1000)
		for i := range cs {
			cs[i] = gen(i)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var max cursorKey
				for _, c := range cs {
					if k := keyOf(c); k.after(max) {
						max = k
					}
				}
			}
		})
	}
}
