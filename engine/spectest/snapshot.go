package spectest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Line is one row or entity of a dry run's output.
type Line struct {
	Target string         // "table NAME" or "blueprint NAME"
	Key    string         // what identifies the record in its target (see KeyFunc)
	Op     string         // upsert or merge
	Data   map[string]any // the row or entity
	Text   string         // the line as printed
}

// KeyFunc says what identifies a row or entity within its table or
// blueprint: for a row, its primary key; for an entity, its identifier.
type KeyFunc func(target string, data map[string]any) string

// ParseLines reads dry-run output (or a snapshot): one JSON object per
// line, {"table", "op", "row"} or {"blueprint", "op", "entity"}.
func ParseLines(text []byte, key KeyFunc) ([]Line, error) {
	var out []Line
	for i, raw := range bytes.Split(text, []byte("\n")) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		var l struct {
			Table, Blueprint, Op string
			Row, Entity          map[string]any
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		line := Line{Op: l.Op, Text: string(raw)}
		switch {
		case l.Table != "" && l.Row != nil:
			line.Target, line.Data = "table "+l.Table, l.Row
		case l.Blueprint != "" && l.Entity != nil:
			line.Target, line.Data = "blueprint "+l.Blueprint, l.Entity
		default:
			return nil, fmt.Errorf("line %d: want a table row or a blueprint entity, got %s", i+1, clip(string(raw)))
		}
		line.Key = key(line.Target, line.Data)
		out = append(out, line)
	}
	return out, nil
}

// Sort puts lines in the snapshot's order: by target, then key, then
// data, then text. A run's order is fixed per stream but not across the
// streams that feed one target, so a snapshot is sorted, never compared
// in run order; data before text keeps the parts of a merged record in
// one order whichever of them came first (and so is the upsert).
func Sort(lines []Line) {
	slices.SortStableFunc(lines, func(a, b Line) int {
		if c := strings.Compare(a.Target, b.Target); c != 0 {
			return c
		}
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if c := strings.Compare(a.data(), b.data()); c != 0 {
			return c
		}
		return strings.Compare(a.Text, b.Text)
	})
}

// data is the row or entity alone, as canonical JSON (keys sorted).
func (l Line) data() string { return toJSON(l.Data) }

// Format writes lines as a snapshot file: one line each, sorted.
func Format(lines []Line) []byte {
	lines = slices.Clone(lines)
	Sort(lines)
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l.Text + "\n")
	}
	return b.Bytes()
}

// Diff is one difference between what a case wants and what it got.
type Diff struct {
	Target string // "table NAME" or "blueprint NAME"
	Key    string // the record's key; "" in a mapping case
	Kind   DiffKind
	Fields []FieldDiff // Kind Changed: the fields that differ
	Record string      // Kind Missing or Extra: the record, as JSON
}

// DiffKind says how a record differs.
type DiffKind int

const (
	Changed DiffKind = iota // in both, with different fields
	Missing                 // wanted, not produced
	Extra                   // produced, not wanted
)

// FieldDiff is one field that differs: its path in the record (e.g.
// properties.type, tags[2]) and both values as JSON ("" when absent).
type FieldDiff struct {
	Path      string
	Want, Got string
}

// Name names the record: `entity "web/dev"`, `row ["org","p1"]`.
func (d Diff) Name() string {
	kind := "row"
	if strings.HasPrefix(d.Target, "blueprint ") {
		kind = "entity"
	}
	if d.Key == "" {
		return kind
	}
	return kind + " " + d.Key
}

// Lines renders the difference as indented text lines.
func (d Diff) Lines() []string {
	head := d.Target + ", " + d.Name()
	switch d.Kind {
	case Missing:
		return []string{head + ": wanted, not produced: " + clip(d.Record)}
	case Extra:
		return []string{head + ": produced, not wanted: " + clip(d.Record)}
	}
	out := []string{head + ":"}
	for _, f := range d.Fields {
		out = append(out, "    "+f.String())
	}
	return out
}

func (f FieldDiff) String() string {
	switch {
	case f.Want == "":
		return fmt.Sprintf("%s: got %s, not wanted", f.Path, clip(f.Got))
	case f.Got == "":
		return fmt.Sprintf("%s: missing, want %s", f.Path, clip(f.Want))
	}
	return fmt.Sprintf("%s: got %s, want %s", f.Path, clip(f.Got), clip(f.Want))
}

// Compare lists how got differs from want, target by target and record
// by record, in snapshot order. Records are matched by key; records that
// share a key (duplicates a run wrote twice) are matched in sorted order.
func Compare(want, got []Line) []Diff {
	type group struct{ want, got []Line }
	groups := map[[2]string]*group{}
	var ids [][2]string
	at := func(l Line) *group {
		id := [2]string{l.Target, l.Key}
		g := groups[id]
		if g == nil {
			g = &group{}
			groups[id] = g
			ids = append(ids, id)
		}
		return g
	}
	for _, l := range want {
		at(l).want = append(at(l).want, l)
	}
	for _, l := range got {
		at(l).got = append(at(l).got, l)
	}
	slices.SortFunc(ids, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	var out []Diff
	for _, id := range ids {
		g := groups[id]
		Sort(g.want)
		Sort(g.got)
		// The parts of a record merged from several streams arrive in no
		// fixed order, so which one is the upsert varies from run to run:
		// with the same ops on both sides, the parts are compared alone.
		same := func(l Line) string { return l.Text }
		anyOrder := mergeGroup(g.want) && sameOps(g.want, g.got)
		if anyOrder {
			same = Line.data
		}
		// Identical lines pair up first, so one changed duplicate does not
		// show its unchanged twin as changed too.
		w, gt := dropEqual(g.want, g.got, same)
		for i := 0; i < max(len(w), len(gt)); i++ {
			d := Diff{Target: id[0], Key: id[1]}
			switch {
			case i >= len(gt):
				d.Kind, d.Record = Missing, w[i].Text
			case i >= len(w):
				d.Kind, d.Record = Extra, gt[i].Text
			default:
				d.Fields = FieldDiffs(w[i].Data, gt[i].Data)
				if w[i].Op != gt[i].Op && !anyOrder {
					d.Fields = append([]FieldDiff{{Path: "op", Want: quoteJSON(w[i].Op), Got: quoteJSON(gt[i].Op)}}, d.Fields...)
				}
				if len(d.Fields) == 0 {
					continue // the same line written otherwise (spacing, key order)
				}
			}
			out = append(out, d)
		}
	}
	return out
}

// mergeGroup reports whether the lines of one record hold a merge.
func mergeGroup(lines []Line) bool {
	return slices.ContainsFunc(lines, func(l Line) bool { return l.Op == "merge" })
}

// sameOps reports whether two groups hold each op as many times.
func sameOps(a, b []Line) bool {
	count := map[string]int{}
	for _, l := range a {
		count[l.Op]++
	}
	for _, l := range b {
		count[l.Op]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func dropEqual(want, got []Line, same func(Line) string) ([]Line, []Line) {
	var w []Line
	got = slices.Clone(got)
	for _, l := range want {
		if i := slices.IndexFunc(got, func(g Line) bool { return same(g) == same(l) }); i >= 0 {
			got = slices.Delete(got, i, i+1)
			continue
		}
		w = append(w, l)
	}
	return w, got
}

// FieldDiffs lists the fields in which got differs from want: objects
// are compared key by key, lists of equal length item by item, anything
// else as a whole.
func FieldDiffs(want, got any) []FieldDiff {
	var out []FieldDiff
	walk("", want, got, &out)
	return out
}

func walk(path string, want, got any, out *[]FieldDiff) {
	wm, wIsMap := want.(map[string]any)
	gm, gIsMap := got.(map[string]any)
	if wIsMap && gIsMap {
		keys := make([]string, 0, len(wm)+len(gm))
		for k := range wm {
			keys = append(keys, k)
		}
		for k := range gm {
			if _, ok := wm[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			w, inW := wm[k]
			g, inG := gm[k]
			p := fieldPath(path, k)
			switch {
			case !inW:
				*out = append(*out, FieldDiff{Path: p, Got: toJSON(g)})
			case !inG:
				*out = append(*out, FieldDiff{Path: p, Want: toJSON(w)})
			default:
				walk(p, w, g, out)
			}
		}
		return
	}
	wl, wIsList := want.([]any)
	gl, gIsList := got.([]any)
	if wIsList && gIsList && len(wl) == len(gl) {
		for i := range wl {
			walk(fmt.Sprintf("%s[%d]", path, i), wl[i], gl[i], out)
		}
		return
	}
	if w, g := toJSON(want), toJSON(got); w != g {
		if path == "" {
			path = "."
		}
		*out = append(*out, FieldDiff{Path: path, Want: w, Got: g})
	}
}

// fieldPath joins a key to a path, quoting keys that are not plain names.
func fieldPath(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
		}
	}
	if !plain {
		key = quoteJSON(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func toJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func quoteJSON(s string) string { return toJSON(s) }

// clip shortens a value for a message.
func clip(s string) string {
	const maxShown = 200
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
