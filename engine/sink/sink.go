// Package sink holds the small contract shared by the runner and the
// destinations: what a mapped row, a mapped entity and a checkpoint look like.
// Each destination (table/, port/, the dry-run printer) has its own package
// and its own API; the engine façade wires them.
package sink

import "encoding/json"

// Row is one destination-table row produced by a spec's `tables` mapping.
type Row struct {
	Table     string         // spec table name
	Stream    string         // stream that produced it
	Partition string         // the stream's partition (see Checkpoint) the row came from
	Data      map[string]any // JSON-shaped values only (string, json.Number, float64, bool, nil, []any, map[string]any)
	// Merge marks a row whose primary key an earlier row of the run had,
	// in a table with on_duplicate: merge.
	Merge bool
	// KeyHash is the hash of the row's primary key (runner.KeyHash), 0
	// without one. A table destination commits it with the row's
	// checkpoint, for the duplicate check of a run that resumes the sync.
	KeyHash uint64
	// Fingerprint is the row's (runner: its chain and values), 0 unknown:
	// committed with KeyHash, so that a resumed run tells a collision with
	// the committed row from the same record met again.
	Fingerprint uint32
}

// Entity is one Port entity produced by a spec's `port.entities` mapping.
type Entity struct {
	Blueprint string
	Stream    string
	Partition string
	// Parents names the parent chain its record was read under, as a
	// failed record's report does (apps[id=a] > envs[id=dev]); "" for a
	// root stream. One string for every entity of a chain: a destination
	// keeps it for the reports of an entity it cannot write.
	Parents string
	// Data holds identifier, title, properties, relations (and optionally
	// icon, team), exactly as it would be sent to Port.
	Data map[string]any
	// Merge asks the destination to merge this entity into the one of the
	// same blueprint and identifier the run produced before (on_duplicate:
	// merge): later non-null values win, many-relations are united.
	Merge bool
}

// Checkpoint is the resumable state of one stream, or of one parent's
// partition of a fanned-out stream. A table destination commits it in the same
// transaction as the rows it covers.
type Checkpoint struct {
	Stream    string
	Partition string          // "" for a stream that does not fan out; else a stable key of the parent chain
	Value     json.RawMessage // opaque to sinks: page token, cursor, watermark
	// Flush asks for the checkpoint to be committed now, with what is
	// ready, rather than with a later batch: it records a change made on
	// the source (an export job created) that a crash must not forget.
	Flush bool
	// Fresh: the partition is being read from its start again, though the
	// sync committed a checkpoint of it (its parent changed, say): what a
	// destination kept of the earlier reading with that checkpoint (the
	// primary keys of its rows) goes, with this one.
	Fresh bool
	// Listed are the hashes of the items the chain's pages listed since
	// its last checkpoint, for a paginate.total check (runner.ListedTable):
	// a table destination saves them with the partition's keys, so a run
	// that resumes the chain tells an item a later page lists again from
	// a new one.
	Listed []uint64
	// Replaced: the partition's earlier reading is replaced by one that
	// does not write its rows again (an export job replaced by a new
	// one): what a destination kept of it (keys) stays, told apart from
	// what the partition keeps from now on, so that a run resuming the
	// sync still knows which of the old reading's rows are in the tables.
	// It carries no rows of the new reading.
	Replaced bool
	// Appended are the hashes of the records (runner.AppendedTable) whose
	// rows to append tables were made ready since the partition's last
	// checkpoint: a table destination saves them with its keys, so that a
	// resumed run tells a record appended as it is now from a new version.
	Appended []uint64
}
