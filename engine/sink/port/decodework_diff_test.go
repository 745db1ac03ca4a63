package port

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

func oldDecodeWork(o *loadOrder, def *Blueprint, rows []spoolRow) ([]*work, error) {
	ws := make([]*work, 0, len(rows))
	var spans [len(bodyMembers)][2]int
	cyclic := false
	for _, r := range def.Relations {
		cyclic = cyclic || o.inCycle(def.Identifier, r)
	}
	for _, r := range rows {
		w := &work{key: entityKey{def.Identifier, r.id}, n: r.n, raw: r.data, stored: r.body}
		var rels map[string]any
		if r.body != nil {
			data, err := decodeObject(r.data)
			if err != nil {
				return nil, fmt.Errorf("port: spool: entity %q: %w", r.id, err)
			}
			w.data = data
			rels, _ = data["relations"].(map[string]any)
		} else if err := jsonv.Members(r.data, bodyMembers[:], spans[:]); err != nil {
			return nil, fmt.Errorf("port: spool: entity %q: %w", r.id, err)
		} else if spans[1][1] > 0 {
			v, err := jsonv.Decode(r.data[spans[1][0]:spans[1][1]])
			if err != nil {
				return nil, fmt.Errorf("port: spool: entity %q: %w", r.id, err)
			}
			rels, _ = v.(map[string]any)
			w.propAt, w.relAt, w.relFound = spans[0], spans[1], true
		}
		if !cyclic && rels != nil {
			// Nothing to keep for the second pass: the decoded map is
			// this pass's, resolved in place.
			w.rels = rels
			ws = append(ws, w)
			continue
		}
		w.rels, w.deferred = map[string]any{}, map[string]any{}
		for rk, v := range rels {
			if o.inCycle(def.Identifier, def.Relations[rk]) {
				w.deferred[rk] = v
			} else {
				w.rels[rk] = v
			}
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// decodeWork makes the work oldDecodeWork (before one Decoder per page,
// one slice of work, the decoded map kept) made, on random pages of a
// blueprint with cycle relations and of one without: the same fields, a
// deferred map that is nil where it was empty. Then every work's
// relations and deferred ones are rewritten in turn, as resolve and early
// do: no work, and no map of it, may see another's rewrite (a map or list
// shared between them would).
func TestDecodeWorkAsBefore(t *testing.T) {
	rels := map[string]Relation{
		"app":  {Target: "app"},                 // another level
		"deps": {Target: "svc", Many: true},     // itself: a cycle
		"peer": {Target: "other"},               // the same cycle
		"ext":  {Target: "nowhere", Many: true}, // not loaded
	}
	o := &loadOrder{defs: map[string]*Blueprint{"svc": {}, "other": {}, "app": {}}, comp: map[string]int{"svc": 1, "other": 1, "app": 2}}
	cyclic := &Blueprint{Identifier: "svc", Relations: rels}
	plain := &Blueprint{Identifier: "svc", Relations: map[string]Relation{"app": rels["app"], "ext": rels["ext"]}}
	rng := rand.New(rand.NewPCG(3, 5))
	target := func() any {
		switch rng.IntN(5) {
		case 0:
			return nil
		case 1:
			return []any{"t1", "t2", "t1"}
		case 2:
			return map[string]any{"combinator": "and", "rules": []any{}}
		}
		return fmt.Sprint("t", rng.IntN(3))
	}
	for round := range 400 {
		def := cyclic
		if round%3 == 0 {
			def = plain
		}
		var rows []spoolRow
		for i := range rng.IntN(8) {
			ent := map[string]any{"identifier": fmt.Sprint("e", i), "properties": map[string]any{"p": "v"}}
			switch rng.IntN(6) {
			case 0: // no relations
			case 1:
				ent["relations"] = nil
			case 2:
				ent["relations"] = "x"
			default:
				m := map[string]any{}
				for rk := range def.Relations {
					if rng.IntN(3) > 0 {
						m[rk] = target()
					}
				}
				ent["relations"] = m
			}
			raw, err := jsonv.Marshal(ent)
			if err != nil {
				t.Fatal(err)
			}
			r := spoolRow{id: fmt.Sprint("e", i), n: int64(i), data: raw}
			if rng.IntN(3) == 0 {
				r.body = []byte(`{"stored":true}`)
			}
			rows = append(rows, r)
		}
		want, werr := oldDecodeWork(o, def, rows)
		got, gerr := decodeWork(o, def, rows)
		if (werr == nil) != (gerr == nil) || len(got) != len(want) {
			t.Fatalf("round %d: %d works (%v), want %d (%v)", round, len(got), gerr, len(want), werr)
		}
		same := func(step string) {
			t.Helper()
			for i := range want {
				g, w := *got[i], *want[i]
				if len(g.deferred) == 0 && len(w.deferred) == 0 {
					g.deferred, w.deferred = nil, nil
				}
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("round %d, %s, work %d:\n got %+v\nwant %+v", round, step, i, g, w)
				}
			}
		}
		same("decoded")
		for i := range want {
			for _, ws := range [][]*work{want, got} {
				w := ws[i]
				for rk, v := range w.rels {
					w.rels[rk] = []any{"rewritten", rk, v}
				}
				for rk, v := range w.deferred {
					w.deferred[rk] = "deferred " + fmt.Sprint(v)
				}
				if w.data != nil {
					w.data["seen"] = i
				}
			}
			same(fmt.Sprint("work ", i, " rewritten"))
		}
	}
}
