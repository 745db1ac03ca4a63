package runner

import (
	"slices"
	"testing"

	"github.com/ferry-etl/ferry/engine/spec"
)

// TestMetNearKeepsTheShiftsOrderAndBounds: a page repeating the last
// records of the one before, in their order, is a shift's repeat; the page
// before's records out of that order, or farther back than the nearMax it
// keeps, are not (appended twice, never lost); a huge page keeps at most
// 2·nearMax sums.
func TestMetNearKeepsTheShiftsOrderAndBounds(t *testing.T) {
	f := parseItemsSpec(t, `
  items: {from: items, primary_key: [id], row: '{id}'}
  log: {from: items, mode: append, row: '{id, amount}'}
`)
	var tables []*spec.Table
	for i := range f.Tables.Items {
		tables = append(tables, &f.Tables.Items[i].Value)
	}
	s := f.Streams.Get("items")
	newChain := func() *chainRun {
		return &chainRun{st: &streamState{stream: &stream{s: s}, tables: tables}}
	}
	const n = 3 * nearMax
	page := func(c *chainRun, p int, sums ...uint64) []bool {
		var out []bool
		for _, h := range sums {
			out = append(out, c.metNear(h, h != 0, position{0, p}))
		}
		return out
	}
	c := newChain()
	first := make([]uint64, n)
	for i := range first {
		first[i] = uint64(i + 1)
	}
	page(c, 1, first...)
	if len(c.near.cur) > 2*nearMax {
		t.Errorf("a page of %d records keeps %d sums, want at most %d", n, len(c.near.cur), 2*nearMax)
	}
	want := []bool{true, true, false, false}
	if got := page(c, 2, n-1, n, 7, n); !slices.Equal(got, want) {
		t.Errorf("page 2 beginning with page 1's last two, in order: %v, want %v", got, want)
	}
	c = newChain()
	page(c, 1, first...)
	if got := page(c, 2, n-1, 5); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("page 1's last but one, then one from its start: %v, want [true false]", got)
	}
	c = newChain()
	page(c, 1, first...)
	if got := page(c, 2, uint64(n-nearMax)); got[0] {
		t.Error("a record farther back than nearMax is taken for a shift's repeat")
	}
	c = newChain()
	page(c, 1, 1, 0, 3)
	if got := page(c, 2, 0, 3); !slices.Equal(got, []bool{false, false}) {
		t.Errorf("a record without a sum: %v, want [false false]", got)
	}
}
