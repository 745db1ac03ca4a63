package jsonl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/redact"
	"github.com/ferry-etl/ferry/engine/sink"
)

// oldWriter is Writer as it was before jsonv and copy-on-change: every
// object and list copied, lines through encoding/json. The oracle of
// TestLinesAreTheOldLines and the baseline of BenchmarkEntity.
type oldWriter struct {
	enc    *json.Encoder
	redact func(string) string
}

func newOldWriter(w io.Writer, redact func(string) string) *oldWriter {
	o := &oldWriter{redact: redact}
	o.enc = json.NewEncoder(w)
	o.enc.SetEscapeHTML(false)
	return o
}

type oldRowLine struct {
	Table string         `json:"table"`
	Op    string         `json:"op"`
	Row   map[string]any `json:"row"`
}

type oldEntityLine struct {
	Blueprint string         `json:"blueprint"`
	Op        string         `json:"op"`
	Entity    map[string]any `json:"entity"`
}

func (o *oldWriter) Row(r sink.Row) error {
	return o.enc.Encode(oldRowLine{Table: r.Table, Op: op(r.Merge), Row: o.clean(r.Data)})
}

func (o *oldWriter) Entity(e sink.Entity) error {
	return o.enc.Encode(oldEntityLine{Blueprint: e.Blueprint, Op: op(e.Merge), Entity: o.clean(e.Data)})
}

func (o *oldWriter) clean(m map[string]any) map[string]any {
	if o.redact == nil {
		return m
	}
	return o.value(m).(map[string]any)
}

func (o *oldWriter) value(v any) any {
	switch x := v.(type) {
	case string:
		return o.redact(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[o.redact(k)] = o.value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = o.value(e)
		}
		return out
	}
	return v
}

// oldPoolRedact is fetch's Pool.Redact as it was before its pre-checks:
// QueryParams, then a Replacer over every secret form, longest first, on
// every text.
func oldPoolRedact(p *fetch.Pool) func(string) string {
	forms := p.Secrets()
	slices.SortFunc(forms, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var args []string
	for _, s := range forms {
		to := fetch.Redacted
		if strings.HasSuffix(s, " ...") {
			to = `"` + fetch.Redacted + " ..."
		}
		args = append(args, s, to)
	}
	rep := strings.NewReplacer(args...)
	params := map[string]bool{}
	for _, n := range p.SecretParams() {
		params[n] = true
	}
	return func(s string) string {
		s = redact.QueryParams(s, func(name string) bool { return params[strings.ToLower(name)] }, fetch.Redacted)
		return rep.Replace(s)
	}
}

var diffSecrets = []string{"s3cr3t-T0KEN", "T0KEN-xyz", "pä/ss+wörd€", `q"u<o>t&e\s`}

// randomString holds secrets whole or cut, parameters, and the bytes JSON
// escapes differently (quotes, control characters, HTML, U+2028, invalid
// UTF-8).
func randomString(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(5) {
		switch rng.IntN(6) {
		case 0:
			b.WriteString(diffSecrets[rng.IntN(len(diffSecrets))])
		case 1:
			s := diffSecrets[rng.IntN(len(diffSecrets))]
			b.WriteString(s[:rng.IntN(len(s))])
		case 2:
			b.WriteString([]string{"https://h/f?sig=abc&x=1", "?X-Amz-Signature=", "&", "=", "REDACTED"}[rng.IntN(5)])
		case 3:
			b.WriteString([]string{"<", ">", "&", `"`, `\`, "\n", "\x01", "\u2028", "\u2029", "\xff", "é", "🙂", "\x7f"}[rng.IntN(13)])
		default:
			b.WriteString([]string{"app", "prod", " ", "0", "T0", "s3"}[rng.IntN(6)])
		}
	}
	return b.String()
}

// randomValue is a JSON-shaped value. Keys start "k<n>~" (no secret starts
// with k, a digit or ~), so no two keys of an object are redacted alike:
// which of those the old writer kept depended on map order.
func randomValue(rng *rand.Rand, depth int) any {
	k := rng.IntN(12)
	if depth > 3 && k >= 9 {
		k = 0
	}
	switch k {
	case 0, 1, 2:
		return randomString(rng)
	case 3:
		return json.Number([]string{"1", "-0.50", "1e10", "12345678901234567890"}[rng.IntN(4)])
	case 4:
		return []any{1.5, 1e21, 1e-7, float64(3), int64(-2), float32(0.1)}[rng.IntN(6)]
	case 5:
		return rng.IntN(2) == 0
	case 6:
		return nil
	case 7:
		if rng.IntN(4) == 0 {
			return []any(nil)
		}
		l := make([]any, rng.IntN(4))
		for i := range l {
			l[i] = randomValue(rng, depth+1)
		}
		return l
	default:
		return randomObject(rng, depth+1)
	}
}

func randomObject(rng *rand.Rand, depth int) map[string]any {
	if rng.IntN(10) == 0 {
		return nil
	}
	m := map[string]any{}
	for i := range rng.IntN(6) {
		m[fmt.Sprintf("k%d~", i)+randomString(rng)] = randomValue(rng, depth)
	}
	return m
}

// TestLinesAreTheOldLines: the Writer prints, byte for byte, what the old
// one printed (every value copied, encoding/json, the old Pool.Redact), for
// random rows and entities with secrets in keys and values at any depth;
// an unencodable value fails the same way.
func TestLinesAreTheOldLines(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pool := fetch.NewPool(fetch.Options{Secrets: diffSecrets})
	var got, want bytes.Buffer
	w := NewRedact(&got, pool.Redact)
	o := newOldWriter(&want, oldPoolRedact(pool))
	ctx := t.Context()
	redacted := 0
	for i := range 20000 {
		data := randomObject(rng, 0)
		if i%500 == 0 {
			data = map[string]any{"x": []any{math.NaN()}}
		}
		name := randomString(rng)
		merge := rng.IntN(2) == 0
		var err, oerr error
		if i%2 == 0 {
			err = w.Row(ctx, sink.Row{Table: name, Data: data, Merge: merge})
			oerr = o.Row(sink.Row{Table: name, Data: data, Merge: merge})
		} else {
			err = w.Entity(ctx, sink.Entity{Blueprint: name, Data: data, Merge: merge})
			oerr = o.Entity(sink.Entity{Blueprint: name, Data: data, Merge: merge})
		}
		if (err == nil) != (oerr == nil) || err != nil && err.Error() != "encode: "+oerr.Error() {
			t.Fatalf("%d: error %v, the old writer's %v", i, err, oerr)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%d: %#v\n got %s\nwant %s", i, data, got.Bytes(), want.Bytes())
		}
		if bytes.Contains(got.Bytes(), []byte("REDACTED")) {
			redacted++
		}
		got.Reset()
		want.Reset()
	}
	t.Logf("%d of 20000 lines with a redaction", redacted)
	if redacted < 5000 {
		t.Errorf("only %d lines redacted: the test hardly tries redaction", redacted)
	}
}

// TestKeyRedactedIntoAnothersName: a key redacted into the name of
// another key that is itself redacted keeps its value: every changed key
// leaves the copy before any comes back under its new name.
func TestKeyRedactedIntoAnothersName(t *testing.T) {
	for range 50 { // whichever key map order gives first
		var out bytes.Buffer
		w := New(&out, "zzzz", "DACT")
		if err := w.Row(t.Context(), sink.Row{Table: "t", Data: map[string]any{"zzzz": 1, "REDACTED": 2, "a": 3}}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if want := `{"table":"t","op":"upsert","row":{"REDACTED":1,"REREDACTEDED":2,"a":3}}` + "\n"; out.String() != want {
			t.Fatalf("got %s want %s", out.String(), want)
		}
	}
}

// portEntity is an entity as a Port mapping makes it: identifier, title,
// a dozen properties of the usual kinds, relations.
func portEntity(i int) sink.Entity {
	id := fmt.Sprintf("app-%06d-env-production", i)
	return sink.Entity{Blueprint: "humanitecWorkload", Data: map[string]any{
		"identifier": id,
		"title":      fmt.Sprintf("Workload %d of app %d", i%7, i),
		"properties": map[string]any{
			"name":        fmt.Sprintf("workload-%d", i),
			"description": "A workload deployed by Humanitec to the production environment & kept in sync",
			"url":         "https://app.humanitec.io/orgs/acme/apps/" + id + "/envs/production",
			"createdAt":   "2026-01-02T03:04:05Z",
			"status":      "running",
			"replicas":    json.Number("3"),
			"cpu":         0.25,
			"public":      true,
			"owner":       "platform-team@acme.example",
			"tags":        []any{"prod", "eu-west-1", "tier-1"},
			"labels":      map[string]any{"team": "platform", "cost-center": "cc-4711"},
		},
		"relations": map[string]any{
			"environment": "production",
			"application": fmt.Sprintf("app-%06d", i),
			"resources":   []any{"db-" + id, "dns-" + id},
		},
	}}
}

// BenchmarkEntity prints realistic Port entities through a Pool's
// redaction with two secrets (as a dry run of the Humanitec spec): old is
// the writer and Pool.Redact before copy-on-change, jsonv and the
// pre-checks, new is the Writer. Compare the two in one run.
func BenchmarkEntity(b *testing.B) {
	pool := fetch.NewPool(fetch.Options{Secrets: []string{"hum_0123456789abcdef0123456789abcdef", "port-client-secret-9f8e7d6c5b4a"}})
	ents := make([]sink.Entity, 1000)
	for i := range ents {
		ents[i] = portEntity(i)
	}
	b.Run("old", func(b *testing.B) {
		o := newOldWriter(io.Discard, oldPoolRedact(pool))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := o.Entity(ents[i%len(ents)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		w := NewRedact(io.Discard, pool.Redact)
		ctx := b.Context()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := w.Entity(ctx, ents[i%len(ents)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
