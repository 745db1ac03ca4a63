package port

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// TestSpoolReadsBackWhatWasPut puts entities of many sizes, some replaced
// by a later put and some invalid, over many puts in shuffled order, and
// reads every page back: each entity's JSON must be its latest, whole and
// alone, whether it was read with its neighbours in one piece of the data
// file or on its own (gaps wider than spanGap, one entity over spanMax).
func TestSpoolReadsBackWhatWasPut(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	body := func(id string, version, size int) []byte {
		return fmt.Appendf(nil, `{"identifier":%q,"v":%d,"pad":%q}`, id, version, strings.Repeat("x", size))
	}
	var order []int
	for i := range 3000 {
		order = append(order, i)
	}
	for version := range 2 {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for start := 0; start < len(order); start += 256 {
			var es []spooled
			for _, i := range order[start:min(start+256, len(order))] {
				if version == 1 && i%3 != 0 {
					continue // only every third entity is replaced
				}
				id := fmt.Sprintf("e%05d", i)
				size := rng.IntN(200)
				switch {
				case i == 1234:
					size = spanMax + 10 // alone over the span limit
				case i%97 == 0:
					size = 2 * spanGap // too far from its neighbours
				}
				var data []byte
				if i%50 != 7 || version == 0 {
					data = body(id, version, size)
				}
				es = append(es, spooled{bp: "b", id: id, data: data})
				want[id] = data
			}
			if err := sp.put(ctx, es); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string][]byte{}
	after := ""
	for {
		rows, err := sp.rowsAfter(ctx, "b", selAll, after, pageSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			got[r.id] = r.data
		}
		after = rows[len(rows)-1].id
	}
	if len(got) != len(want) {
		t.Fatalf("read back %d entities, put %d", len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if (w == nil) != (g == nil) || !bytes.Equal(g, w) {
			t.Fatalf("%s: read back %.80q, want %.80q", id, g, w)
		}
		if cap(g) != len(g) {
			t.Fatalf("%s: JSON read back shares its tail with the next entity's", id)
		}
	}
}

// TestAmongAnswersOnlyWhatHolds asks among the same questions before and
// after the answers change: a yes must answer only its own question
// (produced is not written) and not outlive a put that replaced the
// entity with an invalid one (the settled run's hash index then holds
// the invalid put).
func TestAmongAnswersOnlyWhatHolds(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	ask := func(done bool, want bool) {
		t.Helper()
		got, err := sp.among(ctx, "b", done, []string{"x"})
		if err != nil {
			t.Fatal(err)
		}
		if got["x"] != want {
			t.Fatalf("among(done=%v) = %v, want %v", done, got["x"], want)
		}
	}
	if err := sp.put(ctx, []spooled{{bp: "b", id: "x", data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	ask(false, true)
	ask(false, true) // asked again
	ask(true, false) // produced, not yet written
	if err := sp.setState(ctx, "b", []string{"x"}, ordinals(t, sp, "b", []string{"x"}), stateWritten, nil); err != nil {
		t.Fatal(err)
	}
	ask(true, true)
	if err := sp.put(ctx, []spooled{{bp: "b", id: "x"}}); err != nil {
		t.Fatal(err)
	}
	ask(false, false) // replaced by an invalid entity
}

// TestSplicedBodyIsTheMappedEntity holds the first pass's body made from
// the spooled JSON (relations replaced, ownership marker added) to the
// entity built whole: the same JSON object for entities with and without
// properties, with empty ones, with and without an owner, and with values
// that need escaping; and a decoded entity is never needed for it.
func TestSplicedBodyIsTheMappedEntity(t *testing.T) {
	defs := map[string]*Blueprint{
		"owned": {Identifier: "svc", Properties: map[string]Property{OwnerProperty: {Type: "string"}, "a": {Type: "string"}}},
		"plain": {Identifier: "svc", Properties: map[string]Property{"a": {Type: "string"}}},
	}
	entities := []map[string]any{
		{"identifier": "x", "title": "X <&>", "properties": map[string]any{"a": "v\u2028\"", "z": []any{1.5, nil}}, "relations": map[string]any{"app": "a1", "deps": []any{"d1", "d2"}}, "team": []any{"t"}},
		{"identifier": "y", "properties": map[string]any{}, "relations": map[string]any{}},
		{"identifier": "z", "relations": map[string]any{"app": nil}},
		{"identifier": "w", "properties": map[string]any{"a": "b"}},
	}
	for name, def := range defs {
		for _, owner := range []string{"", "team/acme \"<>\""} {
			s := &Sink{cfg: Config{Owner: owner}}
			for _, e := range entities {
				raw, err := jsonv.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				resolved := map[string]any{"app": "a2", "deps": []any{"d1"}}
				whole := &work{raw: raw, rels: resolved}
				if whole.data, err = decodeObject(raw); err != nil {
					t.Fatal(err)
				}
				want, err := decodeObject(s.entityBody(def, whole))
				if err != nil {
					t.Fatal(err)
				}
				ws, err := decodeWork(&loadOrder{}, def, []spoolRow{{id: "x", data: raw}})
				if err != nil {
					t.Fatal(err)
				}
				spliced := ws[0]
				spliced.rels = resolved
				got, err := decodeObject(s.entityBody(def, spliced))
				if err != nil {
					t.Fatalf("%s, owner %q, %s: %v", name, owner, raw, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s, owner %q, %s:\n got %v\nwant %v", name, owner, raw, got, want)
				}
				_, props := e["properties"]
				_, rels := e["relations"]
				if (spliced.data == nil) != (props && rels) {
					t.Errorf("%s, owner %q, %s: decoded whole = %v", name, owner, raw, spliced.data != nil)
				}
			}
		}
	}
}

// TestSpoolLatestPutWinsAcrossQueries interleaves puts with the queries
// that move them into the keyed table (settle): a key put again in two
// puts that no query separates, or again after a query, or replaced by an
// invalid entity, must read back as its latest put in every query (data,
// rowsAfter, among, blueprints), and a key put once stays as it was.
func TestSpoolLatestPutWinsAcrossQueries(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	v := func(id string, n int) []byte { return fmt.Appendf(nil, `{"identifier":%q,"v":%d}`, id, n) }
	put := func(es ...spooled) {
		t.Helper()
		if err := sp.put(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want map[string][]byte) {
		t.Helper()
		for id, w := range want {
			got, err := sp.data(ctx, "b", id)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, w) {
				t.Fatalf("data(%s) = %s, want %s", id, got, w)
			}
		}
		rows, err := sp.rowsAfter(ctx, "b", selAll, "", pageSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want) {
			t.Fatalf("rowsAfter: %d rows, want %d", len(rows), len(want))
		}
		var valid []string
		for _, r := range rows {
			if !bytes.Equal(r.data, want[r.id]) {
				t.Fatalf("rowsAfter: %s = %s, want %s", r.id, r.data, want[r.id])
			}
			if want[r.id] != nil {
				valid = append(valid, r.id)
			}
		}
		got, err := sp.among(ctx, "b", false, slices.Sorted(maps.Keys(want)))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(valid) {
			t.Fatalf("among: %v, want %v", got, valid)
		}
		for _, id := range valid {
			if !got[id] {
				t.Fatalf("among: %v, want %v", got, valid)
			}
		}
	}
	put(spooled{bp: "b", id: "a", data: v("a", 1)}, spooled{bp: "b", id: "k", data: v("k", 1)})
	put(spooled{bp: "b", id: "a", data: v("a", 2)}) // no query between
	put(spooled{bp: "b", id: "a", data: v("a", 3)}, spooled{bp: "b", id: "c", data: v("c", 1)})
	check(map[string][]byte{"a": v("a", 3), "c": v("c", 1), "k": v("k", 1)})
	put(spooled{bp: "b", id: "c", data: v("c", 2)}) // after a query
	put(spooled{bp: "b", id: "k"})                  // now invalid
	put(spooled{bp: "b", id: "c", data: v("c", 3)})
	check(map[string][]byte{"a": v("a", 3), "c": v("c", 3), "k": nil})
	bps, err := sp.blueprints(ctx)
	if err != nil || !slices.Equal(bps, []string{"b"}) {
		t.Fatalf("blueprints = %v, %v", bps, err)
	}
}

// TestOutcomesAreSeenByEveryQuery records outcomes (kept in memory), some
// with cycle relations left, many of them, and asks every query that reads
// outcomes: among, the second pass's selection, the counts and one
// entity's state must all see the latest outcome of each entity.
func TestOutcomesAreSeenByEveryQuery(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	n := 12_600
	var es []spooled
	var ids []string
	for i := range n {
		id := fmt.Sprintf("e%05d", i)
		ids = append(ids, id)
		es = append(es, spooled{bp: "b", id: id, data: []byte(`{}`)})
	}
	// Invalid entities count nowhere; a blueprint whose entities all wait
	// is counted.
	es = append(es, spooled{bp: "b", id: "invalid"}, spooled{bp: "c", id: "y", data: []byte(`{}`)}, spooled{bp: "d", id: "z"})
	if err := sp.put(ctx, es); err != nil {
		t.Fatal(err)
	}
	// Every entity unchanged, then every third written (every sixth with
	// cycle relations left), the last ones after the batch was inserted.
	for start := 0; start < n; start += 20 {
		if err := sp.setState(ctx, "b", ids[start:min(start+20, n)], ordinals(t, sp, "b", ids[start:min(start+20, n)]), stateUnchanged, nil); err != nil {
			t.Fatal(err)
		}
	}
	var written, cyc []string
	for i := 0; i < n; i += 3 {
		written = append(written, ids[i])
		if i%6 == 0 {
			cyc = append(cyc, ids[i])
		}
	}
	for start := 0; start < len(written); start += 20 {
		chunk := written[start:min(start+20, len(written))]
		cycle := make([]bool, len(chunk))
		for i, id := range chunk {
			cycle[i] = slices.Contains(cyc, id)
		}
		if err := sp.setState(ctx, "b", chunk, ordinals(t, sp, "b", chunk), stateWritten, cycle); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sp.among(ctx, "b", true, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("among(done): %d of %d", len(got), n)
	}
	for _, done := range []bool{false, true} {
		if got, err := sp.among(ctx, "c", done, []string{"y"}); err != nil || got["y"] != !done {
			t.Fatalf("among(c, done=%v) = %v, %v: y is produced, not written", done, got, err)
		}
	}
	// Written again without cycle relations left: out of the second pass.
	if err := sp.setState(ctx, "b", cyc[:1], ordinals(t, sp, "b", cyc[:1]), stateWritten, nil); err != nil {
		t.Fatal(err)
	}
	cyc = cyc[1:]
	var second []string
	if err := (&Sink{}).eachID(ctx, sp, "b", selCycleWritten, func(id string) { second = append(second, id) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(second, cyc) {
		t.Fatalf("second pass selects %d, want %d", len(second), len(cyc))
	}
	if err := sp.setState(ctx, "b", []string{ids[1]}, ordinals(t, sp, "b", []string{ids[1]}), stateWritten, nil); err != nil {
		t.Fatal(err)
	}
	counts, err := sp.counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := [3]int{stateWritten: len(written) + 1, stateUnchanged: n - len(written) - 1}; len(counts) != 2 || counts["b"] != want || counts["c"] != [3]int{1, 0, 0} {
		t.Fatalf("counts = %v, want b %v and c [1 0 0]", counts, want)
	}
	if err := sp.setState(ctx, "b", []string{ids[2]}, ordinals(t, sp, "b", []string{ids[2]}), stateWritten, nil); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[entityKey]int{{"b", ids[0]}: stateWritten, {"b", ids[1]}: stateWritten, {"b", ids[2]}: stateWritten, {"b", ids[4]}: stateUnchanged,
		{"b", ids[6]}: stateWritten, {"c", "y"}: stateWaiting, {"b", "invalid"}: -1, {"b", "none"}: -1} {
		if s, err := sp.stateOf(ctx, k); err != nil || s != want {
			t.Fatalf("stateOf(%v) = %d, %v, want %d", k, s, err, want)
		}
	}
}

// TestSpoolStatementsOfEveryLength inserts batches of every length up to
// past two full statements, a key repeated within one so that the later
// row must win, and asks among lists of many lengths: every answer must
// be exact.
func TestSpoolStatementsOfEveryLength(t *testing.T) {
	ctx := context.Background()
	sp := newTestSpool(t)
	for n := 1; n <= 2*rowsPerInsert+7; n++ {
		var args []any
		for i := range n {
			args = append(args, fmt.Sprint(n), fmt.Sprintf("e%03d", i%(n/2+1)), fmt.Sprint(i), []byte{})
		}
		sp.mu.Lock()
		err := sp.tx(ctx, func() error {
			return sp.insertRows(ctx, `INSERT INTO owned (bp, id, owner, body) VALUES `, ` ON CONFLICT (bp, id) DO UPDATE SET owner = excluded.owner`, 4, args)
		})
		sp.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		for k := range n/2 + 1 {
			last := k
			for i := k; i < n; i += n/2 + 1 {
				last = i
			}
			var got int
			if err := sp.conn.QueryRowContext(ctx, `SELECT owner FROM owned WHERE bp = ? AND id = ?`, fmt.Sprint(n), fmt.Sprintf("e%03d", k)).Scan(&got); err != nil || got != last {
				t.Fatalf("%d rows: e%03d = %d, %v, want %d", n, k, got, err, last)
			}
		}
	}
	var es []spooled
	for i := range 1040 + 40 {
		if i%3 != 1 {
			es = append(es, spooled{bp: "b", id: fmt.Sprintf("e%04d", i), data: []byte(`{}`)})
		}
	}
	// Asked after one put, and once every key is put again (two runs
	// merged into one, each key once).
	for round := range 2 {
		if err := sp.put(ctx, es); err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 1040+40; n += 1 + n/16 {
			var ask []string
			want := 0
			for i := range n {
				ask = append(ask, fmt.Sprintf("e%04d", i))
				if i%3 != 1 {
					want++
				}
			}
			got, err := sp.among(ctx, "b", false, ask)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != want {
				t.Fatalf("round %d: among of %d: %d, want %d", round, n, len(got), want)
			}
			for id := range got {
				if i, _ := strconv.Atoi(id[1:]); i%3 == 1 || i >= n {
					t.Fatalf("round %d: among of %d: %s", round, n, id)
				}
			}
		}
	}
}

// newTestSpool opens a spool in a temporary directory, closed when the
// test ends.
func newTestSpool(t *testing.T) *spool {
	t.Helper()
	sp, err := openSpool(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.close() })
	return sp
}

// ordinals returns the put numbers of each of ids of bp, as rowsAfter
// gives them to setState.
func ordinals(t *testing.T, sp *spool, bp string, ids []string) []int64 {
	t.Helper()
	entries := runEntries(t, sp, bp)
	ns := make([]int64, len(ids))
	for i, id := range ids {
		e, ok := entries[id]
		if !ok {
			t.Fatalf("entity %s/%s not in its run", bp, id)
		}
		ns[i] = e.n
	}
	return ns
}
