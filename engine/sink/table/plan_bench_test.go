package table

import (
	"path/filepath"
	"testing"
)

// BenchmarkPlan measures ferry's own CPU per row before the database:
// typing, conversion, JSON encoding (1000-row batches of BenchmarkLoad's rows).
func BenchmarkPlan(b *testing.B) {
	rows, _ := benchRows(1000)
	d, err := Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "p.db"), Options{Schema: "s",
		Tables: []Table{{Name: "res", PrimaryKey: []string{"id"}, Columns: map[string]string{"data": "JSON"}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	t, err := d.table(b.Context(), "res")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := d.plan(t, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N*len(rows)), "cpu-ns/row")
}
