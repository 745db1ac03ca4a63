// Package runner executes a validated spec: it fetches every stream, fans
// child streams out from parent records, maps records to rows and entities,
// and hands them to an Output.
//
// Execution is streaming. Each stream has one releaser goroutine that takes
// the stream's runs (request chains: one per parent record, or one for a
// root stream) in a fixed order and releases their records in that order:
// records are mapped, written, and used to start child runs. Runs
// themselves fetch (and map, in parallel) ahead of the releaser, within a
// bounded window per stream, so children start while parents are still
// paging, memory stays bounded by window × page, and the output order of
// every stream is deterministic. HTTP concurrency and rate limits are per
// host, in package fetch, shared by every stream and level.
//
// Files: runner.go (New, stages, Run), chain.go (one request chain: pages,
// windows, partitions), release.go (release order, delivery, the cursor
// gates of incremental parents), mapping.go (rows, entities, lookup
// entries of one record), state.go (checkpoints, resume, partition keys),
// dupes.go (duplicate keys), appends.go (a restarted chain's append
// rows), lookups.go, complete.go (the completeness
// rule, computed once), host.go (a stream's HTTP settings), stats.go.
//
// Rules the code keeps, each pinned by a test:
//   - A page is sent whole or not at all: its records, then its checkpoint;
//     a failure after a page's records checkpoints a "redo" so a resumed
//     chain asks that page again without writing it twice.
//   - A record that fails a mapping fails alone (a failed record of that
//     target), and the resumed run tries it again for that table only.
//   - Stages: a stream that reads a lookup runs after the stream that fills
//     it; ancestors from earlier stages are read again without writing,
//     and a record the second reading lists differently fails the run
//     (firstReadings).
//   - An incremental parent's cursor is committed only when every chain
//     below its records finished without failure (cursorGate).
//   - Completeness (summary): a target may be reconciled only when every
//     chain and record feeding it, and their ancestors, completed, the run
//     was not cut short, and the streams were read in full.
//   - A chain restarted by a rule appends only the rows its refused
//     reading did not, matched by content and counted (appendLedger).
//
// Output receives rows and entities from each stream's releaser (one
// goroutine per stream); Checkpointer.Checkpoint is also called from the
// releaser that completes a cursor gate, so an Output that keeps state must
// be safe for concurrent use (the table destination is).
package runner
