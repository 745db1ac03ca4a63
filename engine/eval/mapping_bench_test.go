package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"testing"
)

// entityMapping is the Port humanitecResource mapping: 8 entity fields from a
// Humanitec active-resource record.
const entityMapping = `{identifier: (.app_id + "/" + .env_id + "/" + .res_id),
 title: (.def_id | clean_title),
 blueprint: "humanitecResource",
 properties: {type, class, resource, status, updatedAt: .updated_at, driverType: .driver_type},
 relations: {humanitecWorkload: (if (.res_id|startswith("modules.")) then (.app_id + "/" + .env_id + "/" + (.res_id|split(".")[1])) else null end)}}`

// activeResources returns n JSON-encoded active-resource records of about
// 700 bytes, the same for every call.
func activeResources(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []struct{ typ, driver, class string }{
		{"k8s-cluster", "humanitec/k8s-cluster-eks", "default"},
		{"postgres", "humanitec/postgres-cloudsql", "default"},
		{"dns", "humanitec/dns-cloudflare", "default"},
		{"workload", "humanitec/template", "default"},
		{"s3", "humanitec/terraform", "private"},
	}
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	out := make([][]byte, n)
	for i := range out {
		k := kinds[rng.IntN(len(kinds))]
		app, env := fmt.Sprintf("app-%02d", rng.IntN(40)), []string{"development", "staging", "production"}[rng.IntN(3)]
		resID := []string{
			fmt.Sprintf("modules.svc-%d", rng.IntN(30)),
			fmt.Sprintf("modules.svc-%d.externals.db", rng.IntN(30)),
			"shared.db", "dns",
		}[rng.IntN(4)]
		rec := map[string]any{
			"org_id": "acme-corp", "app_id": app, "env_id": env, "env_type": env,
			"res_id": resID, "def_id": k.typ + "-" + env + "-def", "def_version_id": hex(32),
			"criteria_id": hex(16), "type": k.typ, "class": k.class, "driver_type": k.driver,
			"driver_account": "aws-" + env, "status": "active",
			"resource": map[string]any{
				"host": app + "." + env + ".internal.example.com", "port": 5432 + rng.IntN(10),
				"name": "db_" + hex(8), "region": "eu-west-1", "ready": true,
			},
			"secret_refs": map[string]any{"password": map[string]any{"store": "vault", "ref": "secrets/" + hex(12)}},
			"updated_at":  fmt.Sprintf("2026-%02d-%02dT%02d:%02d:%02d.%03dZ", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000)),
			"deploy_id":   hex(12), "gu_res_id": hex(40), "scheduled_deletion": false,
		}
		b, err := json.Marshal(rec)
		if err != nil {
			panic(err) // cannot happen: the record is plain JSON values
		}
		out[i] = b
	}
	return out
}

// recordMapper decodes, maps and encodes records; one per goroutine. Records
// are read from an endless JSON Lines stream through one Decoder, as a
// runner reads a response body, rather than with a Decoder per record.
type recordMapper struct {
	q   *JQ
	dec *json.Decoder
	buf bytes.Buffer
	enc *json.Encoder
}

func newRecordMapper(q *JQ, jsonl []byte) *recordMapper {
	m := &recordMapper{q: q, dec: json.NewDecoder(&cycleReader{data: jsonl})}
	m.dec.UseNumber()
	m.enc = json.NewEncoder(&m.buf)
	return m
}

func (m *recordMapper) do(b *testing.B) {
	var v any
	if err := m.dec.Decode(&v); err != nil {
		b.Fatal(err)
	}
	if m.q != nil {
		out, ok, err := m.q.First(b.Context(), v)
		if err != nil || !ok {
			b.Fatalf("mapping: %v %v", ok, err)
		}
		v = out
	}
	m.buf.Reset()
	if err := m.enc.Encode(v); err != nil {
		b.Fatal(err)
	}
}

// cycleReader reads data over and over.
type cycleReader struct {
	data []byte
	off  int
}

func (r *cycleReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// BenchmarkMapEntity measures one record through decode (UseNumber), the jq
// entity mapping and encode. cpu-ns/op is process CPU time (all threads,
// garbage collector included) per record; ns/op is wall time.
func BenchmarkMapEntity(b *testing.B) {
	recs := activeResources(512)
	jsonl := bytes.Join(recs, []byte("\n"))
	size := len(jsonl) / len(recs)
	q, err := CompileJQ(entityMapping, nil)
	if err != nil {
		b.Fatal(err)
	}
	gsub, err := CompileJQ(`.def_id |= gsub("[^A-Za-z0-9\\s]"; " ") | `+entityMapping, nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(name string, q *JQ, parallel bool) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			start := cpuTime()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					m := newRecordMapper(q, jsonl)
					for pb.Next() {
						m.do(b)
					}
				})
			} else {
				m := newRecordMapper(q, jsonl)
				for b.Loop() {
					m.do(b)
				}
			}
			if cpu := cpuTime() - start; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
	// The jq program alone, on records decoded beforehand.
	b.Run("jq_only", func(b *testing.B) {
		vals := make([]any, len(recs))
		for i, r := range recs {
			vals[i] = decode(b, string(r))
		}
		b.ReportAllocs()
		start := cpuTime()
		for i := 0; b.Loop(); i++ {
			if _, ok, err := q.First(b.Context(), vals[i%len(vals)]); err != nil || !ok {
				b.Fatalf("mapping: %v %v", ok, err)
			}
		}
		if cpu := cpuTime() - start; cpu > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	})
	run("baseline_decode_encode", nil, false)
	run("mapping", q, false)
	run("mapping_parallel", q, true)
	// The same two at GOGC=400, what cmd/ferry's fixed GC allowance (32 MiB
	// above the live heap) gives at a live heap of 8 MiB: with a heap of a
	// few MB, collection at 100% dominates and keeps the second core from
	// adding throughput.
	withGC := func(percent int, f func()) {
		old := debug.SetGCPercent(percent)
		defer debug.SetGCPercent(old)
		f()
	}
	withGC(400, func() {
		run("mapping_gogc400", q, false)
		run("mapping_parallel_gogc400", q, true)
	})
	// Reference: title cleaned with gsub, as in reference/baselines.md.
	run("mapping_gsub", gsub, false)
}

// TestEntityMapping checks the benchmark's mapping on generated records.
func TestEntityMapping(t *testing.T) {
	q, err := CompileJQ(entityMapping, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := activeResources(64)
	var sizes, withRel int
	for _, r := range recs {
		sizes += len(r)
		out, ok, err := q.First(t.Context(), decode(t, string(r)))
		if err != nil || !ok {
			t.Fatalf("mapping %s: %v %v", r, ok, err)
		}
		m := out.(map[string]any)
		if len(m) != 5 || len(m["properties"].(map[string]any)) != 6 {
			t.Errorf("entity %v: want 5 keys and 6 properties", m)
		}
		if rel := m["relations"].(map[string]any)["humanitecWorkload"]; rel != nil {
			withRel++
		}
	}
	if avg := sizes / len(recs); avg < 600 || avg > 800 {
		t.Errorf("records average %d bytes, want about 700", avg)
	}
	if withRel == 0 || withRel == len(recs) {
		t.Errorf("%d of %d entities have a workload relation, want some but not all", withRel, len(recs))
	}
	// Fixed values for a known record.
	v := decode(t, `{"app_id": "shop", "env_id": "dev", "res_id": "modules.api.externals.db", "def_id": "postgres.default",
		"type": "postgres", "class": "default", "resource": {"port": 5432}, "status": "active", "updated_at": "2026-01-01T00:00:00Z",
		"driver_type": "humanitec/postgres"}`)
	out, _, err := q.First(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(out)
	want := `{"blueprint":"humanitecResource","identifier":"shop/dev/modules.api.externals.db",` +
		`"properties":{"class":"default","driverType":"humanitec/postgres","resource":{"port":5432},"status":"active","type":"postgres","updatedAt":"2026-01-01T00:00:00Z"},` +
		`"relations":{"humanitecWorkload":"shop/dev/api"},"title":"Postgres Default"}`
	if string(got) != want {
		t.Errorf("mapped\n%s\nwant\n%s", got, want)
	}
}
