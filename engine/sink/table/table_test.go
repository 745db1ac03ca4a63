package table

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-etl/ferry/engine/sink"
)

func rowsOf(table string, data ...map[string]any) []sink.Row {
	out := make([]sink.Row, len(data))
	for i, d := range data {
		out[i] = sink.Row{Table: table, Stream: table, Data: d}
	}
	return out
}

func mustWrite(t *testing.T, d *DB, rows []sink.Row, cps ...sink.Checkpoint) {
	t.Helper()
	if err := d.Write(t.Context(), rows, cps); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func n(s string) json.Number { return json.Number(s) }

const synced0 = "2026-01-02T03:04:05.000000Z"

func TestTypeMapping(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{
			Name:       "typed",
			PrimaryKey: []string{"id"},
			Columns: map[string]string{
				"id": "STRING", "b": "BOOLEAN", "i": "INT", "l": "LONG", "f": "DOUBLE",
				"dec": "DECIMAL", "j": "JSON", "ts": "UTC_DATETIME", "day": "NAIVE_DATE",
			},
		})
		mustWrite(t, d, rowsOf("typed",
			row("id", "a", "b", true, "i", n("42"), "l", n("9007199254740993"), "f", n("1.5"),
				"dec", n("12.25"), "j", row("k", []any{n("1"), "x"}), "ts", "2024-05-06T07:08:09.123456+02:00", "day", "2024-05-06"),
			row("id", "b", "b", "false", "i", "7", "l", n("3.0"), "f", n("2"),
				"dec", "0.5", "j", "plain", "ts", "2024-05-06 07:08:09", "day", nil),
		))
		wantNative := map[string]map[string]string{
			"sqlite": {"id": "TEXT", "b": "BOOLEAN", "i": "INTEGER", "l": "BIGINT", "f": "REAL", "dec": "NUMERIC",
				"j": "JSON_TEXT", "ts": "DATETIME", "day": "DATE", ColSynced: "DATETIME", ColDeleted: "BOOLEAN"},
			"postgres": {"id": "text", "b": "boolean", "i": "integer", "l": "bigint", "f": "double precision", "dec": "numeric",
				"j": "jsonb", "ts": "timestamp with time zone", "day": "date", ColSynced: "timestamp with time zone", ColDeleted: "boolean"},
		}[e.kind]
		if diff := cmp.Diff(wantNative, nativeTypes(t, d, "typed")); diff != "" {
			t.Errorf("native types (-want +got):\n%s", diff)
		}
		want := []map[string]any{
			{"id": "a", "b": true, "i": int64(42), "l": int64(9007199254740993), "f": 1.5, "dec": "12.25",
				"j": map[string]any{"k": []any{n("1"), "x"}}, "ts": "2024-05-06T05:08:09.123456Z", "day": "2024-05-06",
				ColSynced: synced0, ColDeleted: false},
			{"id": "b", "b": false, "i": int64(7), "l": int64(3), "f": 2.0, "dec": "0.5",
				"j": "plain", "ts": "2024-05-06T07:08:09.000000Z", "day": nil,
				ColSynced: synced0, ColDeleted: false},
		}
		if diff := cmp.Diff(want, dump(t, d, "typed", "id")); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
}

func TestInference(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "inf", PrimaryKey: []string{"id"}})
		mustWrite(t, d, rowsOf("inf",
			row("id", n("1"), "flag", true, "count", n("12"), "ratio", n("0.25"), "name", "x",
				"obj", row("a", n("1")), "arr", []any{"a", nil}, "empty", nil, "huge", n("123456789012345678901234")),
		))
		wantNative := map[string]map[string]string{
			"sqlite": {"id": "BIGINT", "flag": "BOOLEAN", "count": "BIGINT", "ratio": "REAL", "name": "TEXT",
				"obj": "JSON_TEXT", "arr": "JSON_TEXT", "huge": "TEXT", ColSynced: "DATETIME", ColDeleted: "BOOLEAN"},
			"postgres": {"id": "bigint", "flag": "boolean", "count": "bigint", "ratio": "double precision", "name": "text",
				"obj": "jsonb", "arr": "jsonb", "huge": "numeric", ColSynced: "timestamp with time zone", ColDeleted: "boolean"},
		}[e.kind]
		if diff := cmp.Diff(wantNative, nativeTypes(t, d, "inf")); diff != "" {
			t.Errorf("native types (-want +got):\n%s", diff)
		}
		got := dump(t, d, "inf", "")
		want := []map[string]any{{
			"id": int64(1), "flag": true, "count": int64(12), "ratio": 0.25, "name": "x",
			"obj": map[string]any{"a": n("1")}, "arr": []any{"a", nil},
			"huge":    "123456789012345678901234", // SQLite's NUMERIC would round it: TEXT there
			ColSynced: synced0, ColDeleted: false,
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
}

func TestAddedColumn(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "t", PrimaryKey: []string{"id"}})
		mustWrite(t, d, rowsOf("t", row("id", "1", "a", "x")))
		mustWrite(t, d, rowsOf("t", row("id", "2", "b", n("5"))))
		// A new Open reads the columns from the database, not from memory.
		d.Close()
		d = e.open(t, Table{Name: "t", PrimaryKey: []string{"id"}})
		mustWrite(t, d, rowsOf("t", row("id", "3", "a", "y", "c", true)))
		want := []map[string]any{
			{"id": "1", "a": "x", "b": nil, "c": nil, ColSynced: synced0, ColDeleted: false},
			{"id": "2", "a": nil, "b": int64(5), "c": nil, ColSynced: synced0, ColDeleted: false},
			{"id": "3", "a": "y", "b": nil, "c": true, ColSynced: synced0, ColDeleted: false},
		}
		if diff := cmp.Diff(want, dump(t, d, "t", "id")); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		if !strings.Contains(e.logs.String(), "column added") {
			t.Errorf("no log line for the added column; logs:\n%s", e.logs)
		}
	})
}

func TestWidening(t *testing.T) {
	tests := []struct {
		name     string
		declared string // type of column v, "" to infer
		first    any
		later    any
		wantType colType
		want     []any // v of rows 1 and 2
		wantOne  []any // when both rows come in one Write, if not want
	}{
		{"long to string", "", n("1"), "abc", typeString, []any{"1", "abc"}, nil},
		{"bool to string", "", true, n("5"), typeString, []any{"true", "5"}, nil},
		{"long to decimal", "", n("10"), n("1.5"), typeDecimal, []any{"10", "1.5"}, nil},
		{"long to json", "", n("1"), row("a", n("1")), typeJSON, []any{n("1"), map[string]any{"a": n("1")}}, nil},
		{"string stays string", "", "x", row("a", true), typeString, []any{"x", `{"a":true}`}, nil},
		{"int to long", "INT", n("1"), n("10000000000"), typeLong, []any{int64(1), int64(10000000000)}, nil},
		// Converted and stored before the conflict, or kept as given when
		// the column is made wide at once.
		{"datetime to string", "UTC_DATETIME", "2024-01-02T03:04:05Z", "yesterday", typeString,
			[]any{"2024-01-02T03:04:05.000000Z", "yesterday"}, []any{"2024-01-02T03:04:05Z", "yesterday"}},
		{"date to string", "NAIVE_DATE", "2024-01-02", "2024-13-40", typeString, []any{"2024-01-02", "2024-13-40"}, nil},
		{"double to string", "DOUBLE", n("1.5"), "n/a", typeString, []any{"1.5", "n/a"}, nil},
		{"bool to json", "BOOLEAN", false, []any{n("1")}, typeJSON, []any{false, []any{n("1")}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Across two Writes (ALTER of an existing column) and within one
			// Write (the column is made with the wide type).
			for _, split := range []bool{true, false} {
				eachBackend(t, func(t *testing.T, e *env) {
					tab := Table{Name: "w", PrimaryKey: []string{"id"}}
					if tc.declared != "" {
						tab.Columns = map[string]string{"v": tc.declared}
					}
					d := e.open(t, tab)
					r1 := rowsOf("w", row("id", "1", "v", tc.first))
					r2 := rowsOf("w", row("id", "2", "v", tc.later))
					if split {
						mustWrite(t, d, r1)
						mustWrite(t, d, r2)
					} else {
						mustWrite(t, d, append(r1, r2...))
					}
					got := dump(t, d, "w", "id")
					var vals []any
					for _, r := range got {
						vals = append(vals, r["v"])
					}
					want := tc.want
					if !split && tc.wantOne != nil {
						want = tc.wantOne
					}
					if diff := cmp.Diff(want, vals); diff != "" {
						t.Errorf("split=%v values (-want +got):\n%s", split, diff)
					}
					if typ := d.tables["w"].cols[d.tables["w"].byFold[d.be.fold("v")]].typ; typ != tc.wantType {
						t.Errorf("split=%v column type = %v, want %v", split, typ, tc.wantType)
					}
					initial := infer(tc.first)
					if tc.declared != "" {
						initial, _ = parseType(tc.declared)
					}
					if widened := strings.Contains(e.logs.String(), "widened"); widened != (initial != tc.wantType) {
						t.Errorf("split=%v: widening logged = %v, want %v; logs:\n%s", split, widened, initial != tc.wantType, e.logs)
					}
					// The widened column still takes new values of both kinds.
					mustWrite(t, d, rowsOf("w", row("id", "3", "v", tc.first), row("id", "4", "v", tc.later)))
					if c := count(t, d, "w"); c != 4 {
						t.Errorf("split=%v: %d rows, want 4", split, c)
					}
				})
			}
		})
	}
}

func TestUpsertIdempotent(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "u", PrimaryKey: []string{"org", "id"}})
		batch := rowsOf("u",
			row("org", "a", "id", n("1"), "v", "one"),
			row("org", "a", "id", n("2"), "v", "two"),
			row("org", "b", "id", n("1"), "v", "three"),
		)
		mustWrite(t, d, batch)
		mustWrite(t, d, batch)
		if c := count(t, d, "u"); c != 3 {
			t.Fatalf("after writing the same rows twice: %d rows, want 3", c)
		}
		// A later value wins, also within one Write; a missing field
		// becomes NULL, since a row is replaced whole.
		mustWrite(t, d, rowsOf("u",
			row("org", "a", "id", n("1"), "v", "first"),
			row("org", "a", "id", n("1"), "v", "second"),
			row("org", "b", "id", n("1")),
		))
		want := []map[string]any{
			{"org": "a", "id": int64(1), "v": "second", ColSynced: synced0, ColDeleted: false},
			{"org": "a", "id": int64(2), "v": "two", ColSynced: synced0, ColDeleted: false},
			{"org": "b", "id": int64(1), "v": nil, ColSynced: synced0, ColDeleted: false},
		}
		if diff := cmp.Diff(want, dump(t, d, "u", "org, id")); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		// A row without its key is an error, not a silent drop.
		err := d.Write(t.Context(), rowsOf("u", row("org", "a", "v", "x")), nil)
		if err == nil || !strings.Contains(err.Error(), `primary key column "id"`) {
			t.Errorf("Write of a row without key: err = %v", err)
		}
	})
}

func TestNoPrimaryKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "nopk"})
		r := row("name", "x", "n", n("1"), "tags", []any{"a"})
		mustWrite(t, d, rowsOf("nopk", r, row("name", "x", "n", n("1"), "tags", []any{"a"}), row("name", "y")))
		mustWrite(t, d, rowsOf("nopk", r))
		got := dump(t, d, "nopk", "name")
		if len(got) != 2 {
			t.Fatalf("got %d rows, want 2 (identical rows collapse): %v", len(got), got)
		}
		sum := sha256.Sum256([]byte(`{"n":1,"name":"x","tags":["a"]}`))
		if id := got[0][ColID]; id != hex.EncodeToString(sum[:]) {
			t.Errorf("_ferry_id = %v, want sha256 of the canonical JSON %s", id, hex.EncodeToString(sum[:]))
		}
	})
}

func TestAppend(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "events", Mode: ModeAppend})
		batch := rowsOf("events", row("kind", "click", "at", n("1")), row("kind", "click", "at", n("1")))
		mustWrite(t, d, batch)
		mustWrite(t, d, batch)
		got := dump(t, d, "events", "")
		if len(got) != 4 {
			t.Fatalf("got %d rows, want 4: %v", len(got), got)
		}
		if got[0][ColID] != got[1][ColID] {
			t.Errorf("_ferry_id of equal rows differ: %v %v", got[0][ColID], got[1][ColID])
		}
		if _, err := Open(t.Context(), e.dest, Options{Schema: e.schema, Tables: []Table{{Name: "x", Mode: ModeAppend, PrimaryKey: []string{"id"}}}}); err == nil {
			t.Error("Open accepted an append table with a primary key")
		}
	})
}

func TestReplace(t *testing.T) {
	tab := Table{Name: "r", PrimaryKey: []string{"id"}, Mode: ModeReplace}
	ids := func(rows []map[string]any) map[string]bool {
		out := map[string]bool{}
		for _, r := range rows {
			out[r["id"].(string)] = r[ColDeleted].(bool)
		}
		return out
	}
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		run := func(complete bool, finish bool, idList ...string) int {
			t.Helper()
			e.clock.Add(time.Hour)
			d := e.open(t, tab)
			defer d.Close()
			var rs []sink.Row
			for _, id := range idList {
				rs = append(rs, rowsOf("r", row("id", id))...)
			}
			mustWrite(t, d, rs)
			if !finish {
				return -1
			}
			if !complete {
				// A failed run finishes nothing: its sync goes on in the
				// next run.
				return 0
			}
			marked, err := d.FinishRun(ctx, map[string]bool{"r": true}, nil)
			if err != nil {
				t.Fatalf("FinishRun: %v", err)
			}
			return marked["r"]
		}
		check := func(want map[string]bool) {
			t.Helper()
			d := e.open(t, tab)
			defer d.Close()
			if diff := cmp.Diff(want, ids(dump(t, d, "r", "id"))); diff != "" {
				t.Errorf("id -> deleted (-want +got):\n%s", diff)
			}
		}
		if m := run(true, true, "a", "b", "c"); m != 0 {
			t.Errorf("first complete run marked %d, want 0", m)
		}
		if m := run(false, true, "a"); m != 0 {
			t.Errorf("partial run marked %d, want 0", m)
		}
		check(map[string]bool{"a": false, "b": false, "c": false})
		// The partial run's generation is still open: the next run resumes
		// it, so "a" (written by the partial run) counts as seen.
		if m := run(true, true, "b"); m != 1 {
			t.Errorf("resumed complete run marked %d, want 1 (c)", m)
		}
		check(map[string]bool{"a": false, "b": false, "c": true})
		// Killed mid-run (no FinishRun), then a complete rerun.
		run(true, false, "c")
		if m := run(true, true, "b"); m != 1 {
			t.Errorf("complete run after a crash marked %d, want 1 (a)", m)
		}
		check(map[string]bool{"a": true, "b": false, "c": false})
		// A fresh complete run that sees nothing marks everything left
		// (with a threshold that allows it: see TestDeleteThreshold).
		e.clock.Add(time.Hour)
		all := tab
		all.DeleteThreshold = 1
		d := e.open(t, all)
		if m, err := d.FinishRun(ctx, map[string]bool{"r": true}, nil); err != nil || m["r"] != 2 {
			t.Errorf("empty complete run: marked %v, %v; want r: 2 (b, c)", m, err)
		}
		// Upsert tables never mark.
		if m, err := d.FinishRun(ctx, map[string]bool{"other": true}, nil); err != nil || m["other"] != 0 {
			t.Errorf("FinishRun of an upsert table: %v, %v", m, err)
		}
		d.Close()
	})
}

func TestReplaceHardDeleteAndState(t *testing.T) {
	tab := Table{Name: "h", PrimaryKey: []string{"id"}, Mode: ModeReplace, HardDelete: true}
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.open(t, tab)
		mustWrite(t, d, rowsOf("h", row("id", "a"), row("id", "b")))
		if _, err := d.FinishRun(ctx, map[string]bool{"h": true}, nil); err != nil {
			t.Fatal(err)
		}
		d.Close()
		e.clock.Add(time.Minute)
		d = e.open(t, tab)
		mustWrite(t, d, rowsOf("h", row("id", "b")), sink.Checkpoint{Stream: "h", Value: json.RawMessage(`{"page":9}`)})
		// The checkpoint reset commits with the deletion.
		m, err := d.FinishRun(ctx, map[string]bool{"h": true}, []string{"h"})
		if err != nil || m["h"] != 1 {
			t.Fatalf("FinishRun = %v, %v; want h: 1 deleted", m, err)
		}
		if got := dump(t, d, "h", "id"); len(got) != 1 || got[0]["id"] != "b" {
			t.Errorf("rows after hard delete: %v", got)
		}
		st, err := d.State(ctx)
		if err != nil || len(st) != 0 {
			t.Errorf("State after FinishRun = %v, %v; want empty", st, err)
		}
	})
}

func TestWriteAtomic(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.open(t, Table{Name: "a", PrimaryKey: []string{"id"}})
		boom := errors.New("boom")
		cp := sink.Checkpoint{Stream: "a", Partition: "p1", Value: json.RawMessage(`"tok-1"`)}
		d.afterRows = func() error { return boom }
		// First Write creates the table: the creation rolls back too.
		if err := d.Write(ctx, rowsOf("a", row("id", "1", "x", n("1"))), []sink.Checkpoint{cp}); !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want boom", err)
		}
		if got := dump(t, d, "a", ""); len(got) != 0 {
			t.Errorf("rows visible after a failed Write: %v", got)
		}
		if st, _ := d.State(ctx); len(st) != 0 {
			t.Errorf("state visible after a failed Write: %v", st)
		}
		d.afterRows = nil
		mustWrite(t, d, rowsOf("a", row("id", "1", "x", n("1"))), cp)
		// A failing Write that adds and widens columns leaves the table as
		// it was, and the next Write still works.
		d.afterRows = func() error { return boom }
		cp2 := sink.Checkpoint{Stream: "a", Partition: "p1", Value: json.RawMessage(`"tok-2"`)}
		if err := d.Write(ctx, rowsOf("a", row("id", "2", "x", "text", "y", true)), []sink.Checkpoint{cp2}); !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want boom", err)
		}
		d.afterRows = nil
		want := []map[string]any{{"id": "1", "x": int64(1), ColSynced: synced0, ColDeleted: false}}
		if diff := cmp.Diff(want, dump(t, d, "a", "id")); diff != "" {
			t.Errorf("rows after failed Write (-want +got):\n%s", diff)
		}
		st, err := d.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(st["a"]["p1"]); got != `"tok-1"` {
			t.Errorf("state = %s, want the first checkpoint", got)
		}
		mustWrite(t, d, rowsOf("a", row("id", "2", "x", "text", "y", true)), cp2)
		if c := count(t, d, "a"); c != 2 {
			t.Errorf("%d rows, want 2", c)
		}
	})
}

func TestState(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.open(t)
		mustWrite(t, d, nil,
			sink.Checkpoint{Stream: "s1", Value: json.RawMessage(`{"cursor":"abc"}`)},
			sink.Checkpoint{Stream: "s2", Partition: `app=a/env=b`, Value: json.RawMessage(`1`)},
			sink.Checkpoint{Stream: "s2", Partition: `app=a/env=c`, Value: json.RawMessage(`2`)},
			sink.Checkpoint{Stream: "s2", Partition: `app=a/env=c`, Value: json.RawMessage(`3`)},
			sink.Checkpoint{Stream: "s3", Value: json.RawMessage(`"x"`)},
		)
		mustWrite(t, d, nil, sink.Checkpoint{Stream: "s3"}) // empty value: forget
		got, err := d.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]json.RawMessage{
			"s1": {"": json.RawMessage(`{"cursor":"abc"}`)},
			"s2": {"app=a/env=b": json.RawMessage(`1`), "app=a/env=c": json.RawMessage(`3`)},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("State (-want +got):\n%s", diff)
		}
		if err := d.ClearState(ctx, []string{"s2"}); err != nil {
			t.Fatal(err)
		}
		got, _ = d.State(ctx)
		if _, ok := got["s2"]; ok || got["s1"] == nil {
			t.Errorf("after ClearState(s2): %v", got)
		}
		if err := d.ClearState(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ = d.State(ctx); len(got) != 0 {
			t.Errorf("after ClearState(nil): %v", got)
		}
	})
}

func TestUnicodeAndNulls(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "ユニ", PrimaryKey: []string{"clé"}, Columns: map[string]string{"note": "STRING"}})
		texts := []string{"héllo wörld", "日本語テキスト", "emoji 🚀👩‍💻", `quote " and ' and \ backslash`, "line\nbreak\ttab", "e\u0301 combining"}
		var rs []sink.Row
		for i, s := range texts {
			rs = append(rs, rowsOf("ユニ", row("clé", string(rune('a'+i)), "valeur ☃", s, "note", nil, "n", nil))...)
		}
		rs = append(rs, rowsOf("ユニ", row("clé", "nul", "valeur ☃", "a\x00b"))...)
		mustWrite(t, d, rs)
		got := dump(t, d, "ユニ", `"clé"`)
		if len(got) != len(texts)+1 {
			t.Fatalf("got %d rows", len(got))
		}
		for i, s := range texts {
			if got[i]["valeur ☃"] != s {
				t.Errorf("row %d: got %q, want %q", i, got[i]["valeur ☃"], s)
			}
			if got[i]["note"] != nil {
				t.Errorf("row %d: NULL note read back as %v", i, got[i]["note"])
			}
		}
		if _, ok := got[0]["n"]; ok {
			t.Errorf("a field that was always null made a column")
		}
		// PostgreSQL text cannot hold NUL: it is dropped there.
		wantNUL := map[string]string{"sqlite": "a\x00b", "postgres": "ab"}[e.kind]
		if v := got[len(texts)]["valeur ☃"]; v != wantNUL {
			t.Errorf("NUL row: got %q, want %q", v, wantNUL)
		}
	})
}

func TestJSONRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "j", PrimaryKey: []string{"id"}, Columns: map[string]string{"doc": "JSON"}})
		doc := map[string]any{
			"big":     n("12345678901234567890123"),
			"dec":     n("0.1"),
			"neg":     n("-7"),
			"text":    "ünïcödé \"quoted\" </script> 🚀",
			"ctrl":    "\u0001\t",
			"nested":  map[string]any{"list": []any{n("1"), "two", nil, true, map[string]any{}}, "empty": []any{}},
			"null":    nil,
			"bool":    false,
			"k\"ey":   "odd key",
			"ключ":    "значение",
			"float64": 2.5,
		}
		mustWrite(t, d, rowsOf("j", row("id", "1", "doc", doc), row("id", "2", "doc", []any{"top", n("1")}), row("id", "3", "doc", n("5"))))
		got := dump(t, d, "j", "id")
		want := map[string]any{
			"big": n("12345678901234567890123"), "dec": n("0.1"), "neg": n("-7"),
			"text": "ünïcödé \"quoted\" </script> 🚀", "ctrl": "\u0001\t",
			"nested": map[string]any{"list": []any{n("1"), "two", nil, true, map[string]any{}}, "empty": []any{}},
			"null":   nil, "bool": false, "k\"ey": "odd key", "ключ": "значение", "float64": n("2.5"),
		}
		if diff := cmp.Diff(want, got[0]["doc"]); diff != "" {
			t.Errorf("object (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]any{"top", n("1")}, got[1]["doc"]); diff != "" {
			t.Errorf("array (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(n("5"), got[2]["doc"]); diff != "" {
			t.Errorf("scalar (-want +got):\n%s", diff)
		}
	})
}

func TestExistingTableChecks(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "k", PrimaryKey: []string{"id"}})
		mustWrite(t, d, rowsOf("k", row("id", "1", "other", "x")))
		d.Close()
		d = e.open(t, Table{Name: "k", PrimaryKey: []string{"other"}})
		err := d.Write(t.Context(), rowsOf("k", row("id", "1", "other", "x")), nil)
		if err == nil || !strings.Contains(err.Error(), "primary key") {
			t.Errorf("Write with a changed primary key: err = %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		dest string
		opts Options
		want string
	}{
		{"no schema", dir + "/a.db", Options{}, "empty schema"},
		{"bad scheme", "mysql://x", Options{Schema: "s"}, "unsupported scheme"},
		{"bad mode", dir + "/a.db", Options{Schema: "s", Tables: []Table{{Name: "t", Mode: "merge"}}}, "unknown mode"},
		{"bad type", dir + "/a.db", Options{Schema: "s", Tables: []Table{{Name: "t", Columns: map[string]string{"a": "FLOAT8"}}}}, "unknown type"},
		{"reserved table", dir + "/a.db", Options{Schema: "s", Tables: []Table{{Name: "_ferry_state"}}}, "reserved"},
		{"reserved column", dir + "/a.db", Options{Schema: "s", Tables: []Table{{Name: "t", PrimaryKey: []string{"_ferry_id"}}}}, "reserved"},
		{"duplicate table", dir + "/a.db", Options{Schema: "s", Tables: []Table{{Name: "t"}, {Name: "t"}}}, "declared twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(t.Context(), tc.dest, tc.opts)
			if err == nil {
				d.Close()
				t.Fatalf("Open succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReservedFieldsSkipped(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "r", PrimaryKey: []string{"id"}})
		mustWrite(t, d, rowsOf("r", row("id", "1", ColDeleted, true, "ok", "y")))
		got := dump(t, d, "r", "")
		if len(got) != 1 || got[0][ColDeleted] != false || got[0]["ok"] != "y" {
			t.Errorf("rows = %v", got)
		}
		if !strings.Contains(e.logs.String(), "row field skipped") {
			t.Errorf("no warning for the skipped field; logs:\n%s", e.logs)
		}
	})
}

func TestWriteCancelled(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "c", PrimaryKey: []string{"id"}})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		cp := sink.Checkpoint{Stream: "c", Value: json.RawMessage(`1`)}
		if err := d.Write(ctx, rowsOf("c", row("id", "1")), []sink.Checkpoint{cp}); err == nil {
			t.Fatal("Write with a cancelled context succeeded")
		}
		if got := dump(t, d, "c", ""); len(got) != 0 {
			t.Errorf("rows after a cancelled Write: %v", got)
		}
		// The destination is still usable.
		mustWrite(t, d, rowsOf("c", row("id", "1")), cp)
		if st, err := d.State(t.Context()); err != nil || string(st["c"][""]) != "1" {
			t.Errorf("State = %v, %v", st, err)
		}
	})
}

func TestMultiTableWrite(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "apps", PrimaryKey: []string{"id"}}, Table{Name: "events", Mode: ModeAppend})
		rows := []sink.Row{
			{Table: "apps", Stream: "apps", Data: row("id", "a1", "name", "one")},
			{Table: "events", Stream: "apps", Data: row("app", "a1", "kind", "seen")},
			{Table: "apps", Stream: "apps", Data: row("id", "a2", "name", "two")},
			{Table: "undeclared", Stream: "apps", Data: row("x", n("1"))},
		}
		mustWrite(t, d, rows, sink.Checkpoint{Stream: "apps", Value: json.RawMessage(`"p2"`)})
		wantApps := []map[string]any{
			{"id": "a1", "name": "one", ColSynced: synced0, ColDeleted: false},
			{"id": "a2", "name": "two", ColSynced: synced0, ColDeleted: false},
		}
		if diff := cmp.Diff(wantApps, dump(t, d, "apps", "id")); diff != "" {
			t.Errorf("apps (-want +got):\n%s", diff)
		}
		if got := dump(t, d, "events", ""); len(got) != 1 || got[0]["kind"] != "seen" {
			t.Errorf("events = %v", got)
		}
		if got := dump(t, d, "undeclared", ""); len(got) != 1 || got[0]["x"] != int64(1) {
			t.Errorf("undeclared = %v", got)
		}
	})
}

func TestClearStateEndsGenerations(t *testing.T) {
	// Threshold 1: the two rows live when the new sync begins both go
	// (the delete threshold would keep them: 2 of 2).
	tab := Table{Name: "g", PrimaryKey: []string{"id"}, Mode: ModeReplace, DeleteThreshold: 1}
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.open(t, tab)
		mustWrite(t, d, rowsOf("g", row("id", "old")))
		if _, err := d.FinishRun(ctx, map[string]bool{"g": true}, nil); err != nil {
			t.Fatal(err)
		}
		d.Close()
		// A failed run leaves its generation open...
		e.clock.Add(time.Hour)
		d = e.open(t, tab)
		mustWrite(t, d, rowsOf("g", row("id", "partial")))
		d.Close()
		// ...but a full refresh starts over: only what it sees survives.
		e.clock.Add(time.Hour)
		d = e.open(t, tab)
		if err := d.ClearState(ctx, nil); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, d, rowsOf("g", row("id", "new")))
		if m, err := d.FinishRun(ctx, map[string]bool{"g": true}, nil); err != nil || m["g"] != 2 {
			t.Errorf("FinishRun after ClearState = %v, %v; want g: 2 (old, partial)", m, err)
		}
	})
}

// TestPGKeyNotAltered: PostgreSQL text cannot hold NUL or invalid UTF-8,
// and a value is cleaned before it is stored. In a primary key that would
// make two distinct records one row ("a\x00" and "a"; "\xff" and "\xfe"),
// the first lost without a word: such a key is an error instead.
func TestPGKeyNotAltered(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		for i, keys := range [][2]string{{"a\x00", "a"}, {"\xff", "\xfe"}} {
			name := fmt.Sprint("k", i)
			d := e.open(t, Table{Name: name, PrimaryKey: []string{"id"}})
			err := d.Write(t.Context(), rowsOf(name, row("id", keys[0], "v", "x"), row("id", keys[1], "v", "y")), nil)
			if e.kind == "sqlite" {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				if c := count(t, d, name); c != 2 {
					t.Errorf("keys %q: %d rows, want 2", keys, c)
				}
				d.Close()
				continue
			}
			if err == nil {
				t.Errorf("keys %q: Write succeeded with %d rows stored; want an error naming the key", keys, count(t, d, name))
			} else if !strings.Contains(err.Error(), "primary key") {
				t.Errorf("keys %q: error %v does not name the primary key", keys, err)
			}
			d.Close()
		}
	})
}

// TestDoubleKeepsValue: a number a DOUBLE column cannot hold exactly (an
// integer past 2^53, more digits than a float64 keeps, an underflow to
// zero) widens the column to DECIMAL rather than being rounded in silence.
func TestDoubleKeepsValue(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "dbl", PrimaryKey: []string{"id"}})
		mustWrite(t, d, rowsOf("dbl", row("id", "1", "v", n("1.5"))))
		mustWrite(t, d, rowsOf("dbl", row("id", "2", "v", n("9007199254740993")), row("id", "3", "v", n("0.25"))))
		got := dump(t, d, "dbl", "id")
		want := []any{"1.5", "9007199254740993", "0.25"}
		for i, r := range got {
			if i < len(want) && r["v"] != want[i] {
				t.Errorf("row %d: v = %#v, want %q", i, r["v"], want[i])
			}
		}
	})
}

// TestNumberKeysByValue: two rows of one Write whose number keys differ
// only in how they are written (1.0 and 1, 0 and -0) are one row, the
// later winning, as with any repeated key; PostgreSQL refused the whole
// batch ("cannot affect row a second time").
func TestNumberKeysByValue(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "nk", PrimaryKey: []string{"id"}, Columns: map[string]string{"id": "DECIMAL"}})
		mustWrite(t, d, rowsOf("nk", row("id", n("1.0"), "v", "a"), row("id", n("1"), "v", "b"), row("id", n("0"), "v", "c"), row("id", n("-0"), "v", "d")))
		got := dump(t, d, "nk", "id")
		if len(got) != 2 {
			t.Fatalf("rows = %v, want 2 (one per value)", got)
		}
		for _, r := range got {
			if r["v"] != "b" && r["v"] != "d" {
				t.Errorf("row %v: want the later row of its key", r)
			}
		}
	})
}

// TestDecimalKeepsValue: a number a float64 cannot hold exactly (beyond
// 2^63, past float64's range or precision) keeps its value. SQLite's
// NUMERIC affinity turned such text into a REAL (18446744073709551617 read
// back 1.8446744073709552e+19, 1e400 read Inf, two such keys became one
// row), so there the column is widened to STRING, which keeps the literal.
func TestDecimalKeepsValue(t *testing.T) {
	vals := []json.Number{"18446744073709551617", "18446744073709551618", "1e400", "1e-400",
		"0.1000000000000000000001", "123456789012345678901234567890.5", "-9223372036854775809"}
	for _, c := range []struct{ name, declared, key string }{
		{"declared", "DECIMAL", "id"}, {"inferred", "", "id"}, {"key", "DECIMAL", "v"},
	} {
		t.Run(c.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				tab := Table{Name: "dec", PrimaryKey: []string{c.key}}
				if c.declared != "" {
					tab.Columns = map[string]string{"v": c.declared}
				}
				d := e.open(t, tab)
				// A first Write of exact values makes the column; the rest
				// come later, as from a later page.
				mustWrite(t, d, rowsOf("dec", row("id", "0", "v", n("1.5"))))
				var rows []map[string]any
				for i, v := range vals {
					rows = append(rows, row("id", fmt.Sprint(i+1), "v", v))
				}
				mustWrite(t, d, rowsOf("dec", rows...))
				got := dump(t, d, "dec", "id")
				if len(got) != len(vals)+1 {
					t.Fatalf("%d rows, want %d: %v", len(got), len(vals)+1, got)
				}
				for _, r := range got {
					var i int
					fmt.Sscan(r["id"].(string), &i)
					want := "1.5"
					if i > 0 {
						want = string(vals[i-1])
					}
					s, _ := r["v"].(string)
					a, ok1 := new(big.Rat).SetString(s)
					b, _ := new(big.Rat).SetString(want)
					if !ok1 || a.Cmp(b) != 0 {
						t.Errorf("row %d: v = %#v, want the value %s", i, r["v"], want)
					}
				}
			})
		})
	}
}

// TestWidenedDoubleKeepsValue: a DOUBLE column widened to DECIMAL (or
// STRING) keeps the values it held. PostgreSQL's float8-to-numeric cast
// rounds to 15 digits (0.30000000000000004 became 0.3, 9007199254740992
// 9007199254740990), and float8's text depends on extra_float_digits,
// which a server may set to 0.
func TestWidenedDoubleKeepsValue(t *testing.T) {
	stored := []json.Number{"0.30000000000000004", "9007199254740992", "1.2345678901234567e+300"}
	for _, later := range []any{n("1e400"), "n/a"} {
		t.Run(fmt.Sprint(later), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				if e.kind == "postgres" {
					// As from a server whose configuration sets it.
					sep := "?"
					if strings.Contains(e.dest, "?") {
						sep = "&"
					}
					e.dest += sep + "options=-c%20extra_float_digits%3D0"
				}
				d := e.open(t, Table{Name: "w", PrimaryKey: []string{"id"}, Columns: map[string]string{"v": "DOUBLE"}})
				var rows []map[string]any
				for i, v := range stored {
					rows = append(rows, row("id", fmt.Sprint(i), "v", v))
				}
				mustWrite(t, d, rowsOf("w", rows...))
				mustWrite(t, d, rowsOf("w", row("id", "9", "v", later)))
				got := dump(t, d, "w", "id")
				for i, v := range stored {
					s, _ := got[i]["v"].(string)
					a, ok := new(big.Rat).SetString(s)
					b, _ := new(big.Rat).SetString(string(v))
					if !ok || a.Cmp(b) != 0 {
						t.Errorf("row %d: v = %#v after widening, want the value %s", i, got[i]["v"], v)
					}
				}
			})
		})
	}
}

// TestAlteredTextWarns: text that cannot be stored as given (a NUL byte on
// PostgreSQL, invalid UTF-8 in PostgreSQL text or in JSON anywhere) is
// stored cleaned, and the log says so, naming the column: it was altered
// in silence.
func TestAlteredTextWarns(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "tx", PrimaryKey: []string{"id"}, Columns: map[string]string{"note": "STRING", "doc": "JSON", "raw": "STRING"}})
		mustWrite(t, d, rowsOf("tx",
			row("id", "1", "note", "a\x00b", "doc", row("k", []any{"x\xffy"}), "raw", "b\xfe", "ok", "fine"),
			row("id", "2", "note", "clean", "doc", row("k", "clean"), "raw", "clean", "ok", "fine")))
		logs := e.logs.String()
		for col, want := range map[string]bool{"note": e.kind == "postgres", "doc": true, "raw": e.kind == "postgres", "ok": false} {
			got := false
			for _, line := range strings.Split(logs, "\n") {
				got = got || strings.Contains(line, "value stored altered") && strings.Contains(line, "column="+col+" ")
			}
			if got != want {
				t.Errorf("column %s: warned = %v, want %v; logs:\n%s", col, got, want, logs)
			}
		}
	})
}

// TestCollidingFieldsKeepKey: a field whose name lands on the primary key's
// column (another case on SQLite, the same first 63 bytes on PostgreSQL)
// never replaces the key's own value: the smaller name won, so two records
// with keys a and c and the same such field became one row, keyed by it.
// And the loss of the other field is always logged, whatever the map
// order (it was logged only when the larger name came first).
func TestCollidingFieldsKeepKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		key, other := "id", "ID"
		if e.kind == "postgres" {
			long := strings.Repeat("k", 63)
			key, other = long+"1", long+"0"
		}
		d := e.open(t, Table{Name: "c", PrimaryKey: []string{key}})
		mustWrite(t, d, rowsOf("c", row(key, "a", other, "b", "v", n("1")), row(key, "c", other, "b", "v", n("2"))))
		got := dump(t, d, "c", "v")
		col := d.be.colName(key)
		if len(got) != 2 || got[0][col] != "a" || got[1][col] != "c" {
			t.Errorf("rows = %v, want keys a and c", got)
		}
		for i := range 12 {
			name := fmt.Sprint("s", i)
			d := e.open(t, Table{Name: name})
			mustWrite(t, d, rowsOf(name, row(key, "a", other, "b")))
			d.Close()
			if strings.Count(e.logs.String(), "row fields share a column") < i+2 {
				t.Fatalf("table %s: the field that lost its column was not logged; logs:\n%s", name, e.logs)
			}
		}
	})
}

// TestDecimalBeyondNumeric: a number past what PostgreSQL's numeric holds
// (more than 131072 digits before the point or 16383 after) widens its
// column to STRING. PostgreSQL refused the whole batch ("value overflows
// numeric format"), and every resumed run refused it again.
func TestDecimalBeyondNumeric(t *testing.T) {
	vals := []json.Number{"1e-16384", "1e131072", "-1.5e-20000", "0.5e131073", json.Number("1." + strings.Repeat("0", 16384)), "1e99999999999999999999"}
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.open(t, Table{Name: "big", PrimaryKey: []string{"id"}, Columns: map[string]string{"v": "DECIMAL"}})
		// The largest it holds stay numbers.
		mustWrite(t, d, rowsOf("big", row("id", "a", "v", n("1e-16383")), row("id", "b", "v", n("0.9e131072"))))
		if e.kind == "postgres" && nativeTypes(t, d, "big")["v"] != "numeric" {
			t.Errorf("v is %s after values numeric holds, want numeric", nativeTypes(t, d, "big")["v"])
		}
		var rows []map[string]any
		for i, v := range vals {
			rows = append(rows, row("id", fmt.Sprint(i), "v", v))
		}
		if err := d.Write(t.Context(), rowsOf("big", rows...), nil); err != nil {
			t.Fatalf("Write: %v", err)
		}
		got := dump(t, d, "big", "id")
		for i, v := range vals {
			s, _ := got[i]["v"].(string)
			if s == string(v) {
				continue
			}
			a, ok := new(big.Rat).SetString(s)
			if b, _ := new(big.Rat).SetString(string(v)); !ok || a.Cmp(b) != 0 {
				t.Errorf("row %d: v = %.40q, want the value %.40s", i, s, v)
			}
		}
	})
}

// TestJSONBeyondNumeric: an object holding a number PostgreSQL's jsonb
// cannot hold (it keeps numbers as numeric) makes its column STRING, which
// keeps the JSON text. PostgreSQL refused the whole batch, and every
// resumed run again.
func TestJSONBeyondNumeric(t *testing.T) {
	for _, declared := range []string{"JSON", ""} {
		t.Run("declared="+declared, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				tab := Table{Name: "j", PrimaryKey: []string{"id"}}
				if declared != "" {
					tab.Columns = map[string]string{"v": declared}
				}
				d := e.open(t, tab)
				mustWrite(t, d, rowsOf("j", row("id", "0", "v", row("a", n("1e400")))))
				if err := d.Write(t.Context(), rowsOf("j", row("id", "1", "v", row("a", []any{n("1e-20000")})), row("id", "2", "v", n("1e200000"))), nil); err != nil {
					t.Fatalf("Write: %v", err)
				}
				got := dump(t, d, "j", "id")
				if len(got) != 3 {
					t.Fatalf("rows = %v, want 3", got)
				}
				// SQLite keeps the JSON; PostgreSQL the JSON text.
				text := func(v any) string {
					if s, ok := v.(string); ok {
						return s
					}
					b, _ := json.Marshal(v)
					return string(b)
				}
				if s := text(got[1]["v"]); s != `{"a":[1e-20000]}` {
					t.Errorf("row 1: v = %.60q, want its JSON text", s)
				}
				if s := text(got[2]["v"]); s != "1e200000" {
					t.Errorf("row 2: v = %.40q, want 1e200000", s)
				}
			})
		})
	}
}

// TestIntegerColumnKeepsValue: a number with a fraction or an exponent
// that is not an integer, though its nearest float64 is one
// (1.0000000000000000001, 0.99999999999999999999, 1e-400,
// 9007199254740993.0), does not fit an INT or LONG column: it was stored
// as that float's integer (1, 1, 0, 9007199254740992), without a word,
// and as a key it became another record's.
func TestIntegerColumnKeepsValue(t *testing.T) {
	vals := []json.Number{"1.0000000000000000001", "0.99999999999999999999", "1e-400", "9007199254740993.0", "4.0000000000000000001e0"}
	for _, c := range []struct{ name, declared, key string }{
		{"LONG", "LONG", "id"}, {"INT", "INT", "id"}, {"key", "LONG", "v"},
	} {
		t.Run(c.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				tab := Table{Name: "ints", PrimaryKey: []string{c.key}, Columns: map[string]string{"v": c.declared}}
				d := e.open(t, tab)
				// The integers the values are closest to, as keys too.
				mustWrite(t, d, rowsOf("ints", row("id", "a", "v", n("1")), row("id", "b", "v", n("0")),
					row("id", "c", "v", n("9007199254740992")), row("id", "d", "v", n("4"))))
				var rows []map[string]any
				for i, v := range vals {
					rows = append(rows, row("id", fmt.Sprint(i), "v", v))
				}
				mustWrite(t, d, rowsOf("ints", rows...))
				got := dump(t, d, "ints", "id")
				if len(got) != len(vals)+4 {
					t.Fatalf("%d rows, want %d: %v", len(got), len(vals)+4, got)
				}
				for _, r := range got {
					id := r["id"].(string)
					var i int
					if _, err := fmt.Sscan(id, &i); err != nil {
						continue
					}
					want := string(vals[i])
					var s string
					switch x := r["v"].(type) {
					case string:
						s = x
					case int64:
						s = fmt.Sprint(x)
					}
					a, ok1 := new(big.Rat).SetString(s)
					b, _ := new(big.Rat).SetString(want)
					if !ok1 || a.Cmp(b) != 0 {
						t.Errorf("row %s: v = %#v, want the value %s", id, r["v"], want)
					}
				}
			})
		})
	}
}

// TestDatetimeKeepsSubMicroseconds: a UTC_DATETIME column holds
// microseconds; a time with more digits that are not zeros
// (2024-01-02T03:04:05.1234567Z, as .NET and Azure DevOps give) was cut to
// .123456 without a word, and two keys a tenth of a microsecond apart
// became one row. A key column now widens to STRING and keeps every
// digit; another column keeps its declared type, stores the time cut to
// microseconds, and says so once.
func TestDatetimeKeepsSubMicroseconds(t *testing.T) {
	vals := []string{"2024-01-02T03:04:05.1234567Z", "2024-01-02T03:04:05.1234568Z", "2024-01-02T03:04:05.123456001+01:00"}
	cut := []string{"2024-01-02T03:04:05.123456Z", "2024-01-02T03:04:05.123456Z", "2024-01-02T02:04:05.123456Z"}
	for _, c := range []struct {
		name, key string
		want      []string
	}{{"value", "id", cut}, {"key", "at", vals}} {
		t.Run(c.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				tab := Table{Name: "times", PrimaryKey: []string{c.key}, Columns: map[string]string{"at": "UTC_DATETIME"}}
				d := e.open(t, tab)
				// Microseconds, and zeros past them, fit.
				mustWrite(t, d, rowsOf("times", row("id", "a", "at", "2024-01-02T03:04:05.123456Z"), row("id", "b", "at", "2024-01-02T03:04:05.123457000Z")))
				var rows []map[string]any
				for i, v := range vals {
					rows = append(rows, row("id", fmt.Sprint(i), "at", v))
				}
				mustWrite(t, d, rowsOf("times", rows...))
				mustWrite(t, d, rowsOf("times", row("id", "z", "at", "2024-01-02T03:04:05.9999999Z")))
				got := dump(t, d, "times", "id")
				if len(got) != len(vals)+3 {
					t.Fatalf("%d rows, want %d: %v", len(got), len(vals)+3, got)
				}
				for _, r := range got {
					var i int
					if _, err := fmt.Sscan(r["id"].(string), &i); err != nil {
						continue
					}
					if r["at"] != c.want[i] {
						t.Errorf("row %d: at = %#v, want %q", i, r["at"], c.want[i])
					}
				}
				said := strings.Count(e.logs.String(), "digits past the microsecond dropped")
				if c.key == "id" && said != 1 {
					t.Errorf("the cut was said %d times, want once:\n%s", said, e.logs.String())
				}
				if c.key == "at" && said != 0 {
					t.Errorf("a key column kept every digit, yet a cut was said:\n%s", e.logs.String())
				}
			})
		})
	}
}
