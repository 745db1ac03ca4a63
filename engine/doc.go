// Package engine is ferry's façade: it loads a spec, resolves its config
// inputs, and runs it into the chosen destination, or offline from a
// cassette (RunOptions.Record and Replay); it maps single records
// (MapRecord) and runs specs' test files (FindTests, RunTests). cmd/ferry
// needs nothing else.
package engine
