// Package runner executes a validated spec: it fetches every stream, fans
// child streams out from parent records, maps records to rows and entities,
// and hands them to an Output.
//
// Execution is streaming. Each stream has one releaser goroutine that takes
// the stream's runs (one per parent record, or one for a root stream) in a
// fixed order and releases their records in that order: records are mapped,
// written, and used to start child runs. Runs themselves fetch concurrently,
// ahead of the releaser, within a bounded window per stream, so children start
// while parents are still paging, memory stays bounded by window × page, and
// the output order of every stream is deterministic. HTTP concurrency and rate
// limits are per host, in package fetch, shared by every stream and level.
package runner
