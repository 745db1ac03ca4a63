// Package spec reads ferry spec files: YAML (version 1) decoded through
// yaml.Node so every value keeps its file position, then validated in phases
// (structure, references, fan-out graph, embedded jq and expr programs).
//
// Parse returns a *File even when it also returns an ErrorList, so `ferry
// validate` can report every problem at once (up to MaxErrors). Problems
// inside the Port blueprints file are reported at that file's own lines. Every error is positioned:
// "file:line:col: path: message", sorted by position. Errors about a value
// point at it; errors about a block as a whole (a missing field) point at the
// key that names the block; errors inside an embedded jq or expr program
// point at the offending token inside the scalar, whatever its YAML style
// (plain, quoted with escapes, literal or folded block). Lines are counted
// as YAML counts them (LF, CRLF, CR, NEL, LS, PS); columns count characters.
//
// The jq and expr programs embedded in a spec are compiled here, once, and
// kept in the File for the runner to reuse.
//
// API:
//
//	Load(path) (*File, error)                    read a file; references resolve beside it
//	Parse(name, src, fsys) (*File, error)        fsys nil: the blueprints file is not checked
//	(*File).Warnings() ErrorList                 valid but likely mistaken, positioned
//	AsList(err) ErrorList                        the *Error values inside err
//	MaxSpecSize, MaxErrors                       the largest file read; problems before Parse stops
//	(*ConfigVar).Convert(x), (*File).ExprValues  typed config inputs: checked and converted
//	Schema() []byte                              JSON Schema (draft 2020-12) of the format
//	RenderValue(tree, env) (any, error)          evaluate the templates of a Value tree
//
//	(*File).Stream(name), (*File).ConfigVar(name)
//	(*Stream).Parent, BatchOf, Ancestors         the fan-out chain
//	(*Stream).JQVars                             jq variable names, in the order values are passed
//	(*JQ).Code, (*Expr).Program, (*Tmpl).Template, (*Value).Tree   compiled forms
//
// Unset optional programs have no compiled form, except three defaults:
// a stream's records ([DefaultRecords]: the items of a list body, nothing for null; any other body is an error), a table's
// row (`.`) and an entity's selector (`true`); their Set stays false.
//
// YAML anchors, aliases and merge keys (`<<: *base`) may be used anywhere;
// errors in aliased or merged content point at the anchored text. Aliases
// that expand a value beyond the size of the file, or into itself, are
// errors. A spec is a single YAML document.
//
// The same Go types drive decoding, validation and the published JSON Schema
// (see Schema), so the three cannot drift apart.
package spec
