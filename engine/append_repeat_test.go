package engine_test

import (
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// TestRepeatedRecordAppendedOnce: the source lists b twice in one reading
// (offset paging: a record added ahead of it shifts it onto the next page
// too). Its keyed row is written once, counted as a duplicate; its append
// row was written twice, exit 0. A record met again, the same in what its
// append rows and one-record keys hold, at the start of the next page (as
// a shift puts it), is appended once; c, listed twice with another amount (changed
// while read), is a new version: appended again.
func TestRepeatedRecordAppendedOnce(t *testing.T) {
	fx := newFixture(t, specHead+`streams:
  items:
    request: {path: /items}
    paginate: {type: offset, param: offset}
tables:
  items: {from: items, primary_key: [id], row: '{id}'}
  log: {from: items, mode: append, row: '{id, amount}'}
`, "")
	item := func(id, amount string) map[string]any { return map[string]any{"id": id, "amount": amount} }
	fx.pages("/items", []any{item("a", "1"), item("b", "2"), item("b", "2"), item("c", "3"), item("c", "4"), item("d", "5")})
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a:1", "b:2", "c:3", "c:4", "d:5"}
	if got := fx.query(`SELECT id || ':' || amount FROM "nl__log" ORDER BY id, amount`); !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v: b's repeat is the record met twice", got, want)
	}
	if got := fx.query(`SELECT id FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("items = %v", got)
	}
}
