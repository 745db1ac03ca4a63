package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/spec"
)

const refusedBatchSpec = `
version: 1
name: rb
http:
  base_url: http://example.invalid
streams:
  orgs:
    request: {path: /orgs}
  repos:
    for_each: orgs
    incremental: {cursor: .updated_at, initial: "1970-01-01T00:00:00Z"}
    request: {path: "/orgs/${ parent.id }/repos"}
  details:
    for_each: orgs
    batch: repos
    request:
      method: POST
      path: /details
      body_jq: '{ids: [$batch[] | .id]}'
tables:
  t: {from: details, primary_key: [id], row: '{id}'}
`

// TestRefusedBatchRowHoldsBatchedCursor: a batch stream's chain has the
// partition of the chain whose records it batches (with "#batchN" for a
// later part), not one below it. A row of it the database refuses must
// hold that stream's cursor too, as a child's does: committed, the next
// sync asks past the records the refused row came from, and it is never
// read again.
func TestRefusedBatchRowHoldsBatchedCursor(t *testing.T) {
	ctx := context.Background()
	f, err := spec.Parse("rb.yaml", []byte(refusedBatchSpec), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"orgs=o1", "orgs=o1#batch2"} {
		t.Run(part, func(t *testing.T) {
			d, db, _ := refusedDest(t)
			d.f = f
			cursor := func(stream, p string) {
				t.Helper()
				if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: stream + runner.WatermarkSuffix, Partition: p, Value: json.RawMessage(`"2026"`)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Row(ctx, sink.Row{Table: "t", Stream: "details", Partition: part, Data: tooWide("bad")}); err != nil {
				t.Fatal(err)
			}
			if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "details", Partition: part, Value: json.RawMessage(`1`)}); err != nil {
				t.Fatal(err)
			}
			cursor("repos", "orgs=o1") // the batched stream's, above the refused row
			cursor("repos", "orgs=o2") // another org's
			if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "x", Value: json.RawMessage(`1`), Flush: true}); err != nil {
				t.Fatal(err)
			}
			if len(d.refused) != 1 {
				t.Fatalf("%d rows refused, want 1", len(d.refused))
			}
			// A cursor offered after the refusal stays too.
			cursor("repos", "orgs=o1")
			if err := d.Checkpoint(ctx, sink.Checkpoint{Stream: "x", Value: json.RawMessage(`2`), Flush: true}); err != nil {
				t.Fatal(err)
			}
			st, err := db.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := st["repos"+runner.WatermarkSuffix]["orgs=o1"]; ok {
				t.Errorf("the cursor of repos committed over a refused row of its batch stream details")
			}
			if _, ok := st["repos"+runner.WatermarkSuffix]["orgs=o2"]; !ok {
				t.Errorf("the cursor of repos of another org not committed")
			}
		})
	}
}
