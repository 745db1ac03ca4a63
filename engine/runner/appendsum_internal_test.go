package runner

import (
	"context"
	"strconv"
	"testing"

	"github.com/ferry-etl/ferry/engine/spec"
)

// TestAppendSumTellsAFingerprintCollision: two versions of record a whose
// keyed rows (id and amount) share their 16-bit fingerprint, as about one
// pair in 65,536 does. The keyed table's saved key and fingerprint take
// the second for the committed first (committedSame, the rule for a
// partition an older ferry committed); the 64-bit appendSum the partition
// saves tells them apart, so appendedBefore appends the new version.
func TestAppendSumTellsAFingerprintCollision(t *testing.T) {
	f := parseItemsSpec(t, `
  items: {from: items, primary_key: [id], row: '{id, amount}'}
  log: {from: items, mode: append, row: '{id, amount}'}
`)
	var items, log *spec.Table
	for i := range f.Tables.Items {
		switch it := &f.Tables.Items[i]; it.Key {
		case "items":
			items = &it.Value
		case "log":
			log = &it.Value
		}
	}
	if items == nil || log == nil {
		t.Fatal("tables not parsed")
	}
	rec := func(amount string) map[string]any { return map[string]any{"id": "a", "amount": amount} }
	// Two amounts whose rows' fingerprints match.
	seen := map[uint16]string{}
	var x, y string
	for i := 0; y == ""; i++ {
		amount := strconv.Itoa(i)
		fp := max(uint16(valueHash(rec(amount))), 1)
		if was, ok := seen[fp]; ok {
			x, y = was, amount
		}
		seen[fp] = amount
	}
	sumOf := func(r map[string]any) (uint64, string) {
		var a appendSum
		key := ""
		for _, tb := range []*spec.Table{items, log} {
			rows, errs := tableRows(context.Background(), tb, nil, "items", r, nil)
			if len(errs) > 0 || len(rows) != 1 {
				t.Fatalf("table %s: %v", tb.Name, errs)
			}
			a.add(tb, rows[0].key, rows[0].data)
			if rows[0].key != "" {
				key = rows[0].key
			}
		}
		h, ok := a.value()
		if !ok {
			t.Fatal("no key tells the record")
		}
		return h, key
	}
	hx, key := sumOf(rec(x))
	hy, _ := sumOf(rec(y))
	saved := &SavedKeys{}
	from := origin{stream: "items"}
	saved.Add("items", "items", "", []uint64{KeyHash(key)}, fingerprintOf(from, rec(x)))
	saved.Add(AppendedTable, "items", "", []uint64{hx})
	ts := newTargets(f, saved)
	if !ts.committedSame("items", key, "items", "", rec(y), false) {
		t.Fatalf("amounts %s and %s: committedSame tells them apart; the test wants a fingerprint collision", x, y)
	}
	if same, known := ts.appendedSame("items", "", hy, false); same || !known {
		t.Errorf("amount %s after %s: appendedSame = %v, %v; want a new version (false), known", y, x, same, known)
	}
	if same, _ := ts.appendedSame("items", "", hx, false); !same {
		t.Errorf("amount %s: appendedSame = false, want the committed version", x)
	}
}

// parseItemsSpec parses a spec of one stream, items, and the tables given
// (the YAML under tables:, indented by two).
func parseItemsSpec(t *testing.T, tables string) *spec.File {
	t.Helper()
	f, err := spec.Parse("spec.yaml", []byte(`version: 1
name: t
http: {base_url: "https://x"}
streams:
  items:
    request: {path: /items}
tables:`+tables), nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
