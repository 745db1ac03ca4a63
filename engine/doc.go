// Package engine is ferry's façade: it loads a spec, resolves its config
// inputs, and runs it into the chosen destination. cmd/ferry needs nothing
// else.
package engine
