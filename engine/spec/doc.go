// Package spec reads ferry spec files: YAML (version 1) decoded through
// yaml.Node so every value keeps its file position, then validated in phases
// (structure, references, fan-out graph, embedded jq and expr programs).
//
// Parse returns a *File even when it also returns an ErrorList, so `ferry
// validate` can report every problem at once. Every error is positioned:
// "file:line:col: path: message". The jq and expr programs embedded in a spec
// are compiled here, once, and kept in the File for the runner to reuse.
//
// The same Go types drive decoding, validation and the published JSON Schema
// (see Schema), so the three cannot drift apart.
package spec
