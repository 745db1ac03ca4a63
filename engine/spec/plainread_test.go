package spec

import (
	"testing"

	"github.com/ferry-etl/ferry/engine/eval"
)

// TestReadsRecordOnly: one ${ } that only reads a field of a parent, a
// lookup or the batch; anything that decides the value, other names, the
// whole record and text around it are not.
func TestReadsRecordOnly(t *testing.T) {
	for src, want := range map[string]bool{
		"${ parent.key }":                 true,
		"${parent?.key}":                  true,
		"${ parents.apps.id }":            true,
		"${ lookups.org[parent.uid] }":    true,
		"${ batch[0].id }":                true,
		"${ parent }":                     false,
		"${ parent.key ?? nil }":          false,
		"${ parent.ok ? parent.k : nil }": false,
		"${ config.since }":               false,
		"k-${ parent.key }":               false,
		"${ parent.a }${ parent.b }":      false,
		"plain":                           false,
	} {
		tm, err := eval.CompileTemplate(src, eval.Scope{VarConfig: nil, VarParent: nil, VarParents: nil, VarLookups: nil, VarBatch: nil})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := ReadsRecordOnly(tm); got != want {
			t.Errorf("ReadsRecordOnly(%q) = %v, want %v", src, got, want)
		}
	}
}
