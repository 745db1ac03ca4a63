// Package table is ferry's table destination: rows mapped by a spec's
// `tables` section land in an embedded SQLite file (modernc.org/sqlite, no
// cgo) or in PostgreSQL (pgx), with Fivetran-like semantics, and the
// runner's checkpoints land in the same transaction as the rows they cover.
//
// # API
//
//	d, err := table.Open(ctx, dest, table.Options{Schema: spec.Name, Tables: …, Logger: log, Now: clock})
//	err = d.Lock(ctx, holder)                      // ErrLocked if another live run holds it
//	st, err := d.State(ctx)                         // stream -> partition -> checkpoint
//	err = d.ClearState(ctx, streams)                // --full-refresh; nil = every stream
//	err = d.Refresh(ctx, streams, tables)           // --full-refresh --streams: their state, their tables' generations
//	err = d.Restart(ctx, keep)                      // abandon an unfinished sync, keeping some state
//	err = d.Write(ctx, rows, checkpoints)           // one transaction, ~BatchRows rows
//	i, reason, err := d.FindRefused(ctx, rows)      // after ErrRefused: the row at fault
//	err = d.EnsureTables(ctx)                       // declared tables exist, empty if need be
//	marked, err := d.FinishRun(ctx, complete, clearStreams) // end the sync, in one transaction
//	skipped := d.SkippedDeletes()                  // replace tables left unmarked over their threshold
//	err = d.Close()                                 // releases the lock
//
// dest is "sqlite:PATH", a plain file path, or a "postgres://" /
// "postgresql://" URL. A DB serialises its methods; both databases take one
// writer at a time anyway.
//
// # Where tables go
//
// PostgreSQL: each spec table becomes "<schema>"."<table>" in a schema named
// after the spec (Options.Schema), created if absent. Names are quoted, so
// their case is kept; names longer than 63 bytes are cut as PostgreSQL
// itself would cut them.
//
// SQLite: one file can hold several specs, so every table name is prefixed
// with the spec name: "<schema>__<table>" (two underscores). One flat
// namespace keeps the file usable from any SQLite tool with no ATTACH.
// ferry's own tables are "<schema>___ferry_state", "…___ferry_sync" and
// "…___ferry_lock". SQLite column names are case-insensitive (ASCII): two
// fields that differ only in case share one column (the primary key's own
// field wins, else the smaller name, with a warning; so do two names cut
// to the same 63 bytes on PostgreSQL).
//
// # Columns and types
//
// Declared types map to native types; undeclared fields are inferred from
// their first non-null value (bool -> BOOLEAN, integral number -> LONG, other
// number -> DOUBLE, or DECIMAL when a float64 cannot hold it exactly, string
// -> STRING, object/array -> JSON). A field that is null in every row seen
// so far makes no column yet. A later number a DOUBLE column cannot hold
// exactly (9007199254740993, 1e-400) widens it to DECIMAL. On SQLite, whose
// NUMERIC affinity keeps a number only as an int64 or a float64, a number
// neither holds exactly (2^64+1, 1e400, 0.1000000000000000000001) widens a
// DECIMAL column to STRING, which keeps its literal; on PostgreSQL, so does
// a number beyond numeric's range (131072 digits before the point, 16383
// after), which it would refuse, and so does a JSON column a value holding
// such a number (jsonb keeps numbers as numeric).
//
//	declared      PostgreSQL         SQLite (declared type, storage)
//	STRING        text               TEXT
//	BOOLEAN       boolean            BOOLEAN (0/1)
//	INT           integer            INTEGER
//	LONG          bigint             BIGINT
//	DOUBLE        double precision   REAL
//	DECIMAL       numeric            NUMERIC (SQLite numeric affinity: exact up to int64/double)
//	JSON          jsonb              JSON_TEXT (canonical JSON text; TEXT affinity keeps it exact)
//	UTC_DATETIME  timestamptz        DATETIME (text 2006-01-02T15:04:05.000000Z, sorts as time)
//	NAIVE_DATE    date               DATE (text 2006-01-02)
//
// The SQLite type names are distinct so that a later run reads the logical
// types back. Numbers are json.Number and are converted per column type
// without going through float64 unless the column is DOUBLE. Strings holding
// a canonical integer ("42", not "042") fit INT/LONG columns, numeric strings
// fit DOUBLE/DECIMAL, "true"/"false" fit BOOLEAN, RFC 3339 strings (a missing
// zone means UTC) fit UTC_DATETIME. Both databases keep microseconds: a
// time with non-zero digits past them (.1234567) is stored cut, which a
// warning says once a column, and widens a key column to STRING instead
// (two keys 100 ns apart would be one row). A
// number with a fraction or exponent fits INT/LONG only when it is exactly
// an integer (3.0, 1e3; not 1.0000000000000000001, whose float64 is 1).
//
// A field that appears later adds a column (ALTER TABLE ADD COLUMN);
// columns are never dropped, and an existing column keeps its type even if
// the spec now declares a narrower one. A value that does not fit its column widens the
// column, with a slog warning, and never fails the run or loses the value:
// INT -> LONG -> DECIMAL and DOUBLE -> DECIMAL for numbers, anything ->
// JSON for objects and arrays, anything else -> STRING (which holds every
// value; objects become their JSON text). Stored values are converted in
// place (PostgreSQL ALTER COLUMN … TYPE … USING; SQLite rebuilds the table,
// dropping indexes users added to it).
//
// A column ferry did not make keeps its type, and where that type would
// store a value changed without an error (column.limit: PostgreSQL
// numeric(p,s) rounding, real's float32, timestamp(p), time(p) and
// interval(p) rounding the second, timestamp and time without time zone
// dropping an offset, money rounding to its currency's digits, an
// interval of fields cutting below its last one, varchar(n), character(n)
// and bit varying(n) cutting, bit(n) cutting or padding; SQLite INTEGER, REAL and
// NUMERIC affinity turning numeric-looking text into an int64 or a
// float64), the row is refused before the write, naming table, column,
// type and value (a rowError with blame: FindRefused names it at once),
// unless the column is a key whose type's rounding KeyTypes keys by.
//
// Every row carries _ferry_synced (the UTC time of the run that last wrote
// it: Options.Now at Open, to the microsecond) and _ferry_deleted (false).
// Fields named like these or _ferry_id are skipped with a warning.
//
// Change-only writes: in an upsert table (not merge) a row identical to
// the stored one — every column equal, and not marked deleted — is left
// as it is, _ferry_synced included, so _ferry_synced there is the time of
// the run that last changed (or first wrote) the row. Unchanged reports
// how many rows a DB left so. Replace and merge tables rewrite every row
// they see, identical or not: reconciliation marks the rows whose
// _ferry_synced is older than the sync, and merging reads it too, so
// there _ferry_synced stays the time of the last sync that saw the row.
// (BenchmarkReload: an unchanged re-load of 200k rows takes 0.76 of the
// time of rewriting them on PostgreSQL, 0.89 on SQLite; a re-load where
// every row changed, 0.93 and 1.09.)
//
// # Modes
//
// upsert (default): rows are upserted by the primary key and replaced whole
// (a field missing from the new row becomes NULL), unless identical (see
// change-only writes above). A later row with the same
// key wins, also within one Write. A row without a key value is an error
// (the runner fails such a record before it gets here). On PostgreSQL,
// whose text holds neither NUL bytes nor invalid UTF-8 (other values lose
// their NULs and have invalid bytes replaced, with a warning once per
// column), a key value holding either
// is an error: cleaned, it could be another record's key. With Table.Merge, a
// row whose key the sync already wrote keeps the stored value of every
// column the new row has null (within one Write too): the table keeps a
// sync generation, as replace tables do, and a stored row counts as this
// sync's when its _ferry_synced is not before the generation's start. A
// table without a primary key is keyed by _ferry_id, the sha256 (hex) of the
// canonical JSON of the row's data (keys sorted, numbers as their literal):
// identical rows collapse into one, and a re-sent row lands on itself.
//
// append: no key; every row is inserted, with _ferry_id (same hash, not
// unique) for reference. Exactly-once across a crash comes from the
// checkpoints, not from the ids: rows and checkpoints commit together, so
// the contract for the caller is that a Write never holds rows that its own
// checkpoints (or earlier ones) do not cover — flush whole pages with the
// checkpoint that follows them. Then a resumed run re-fetches exactly the
// pages whose rows never committed.
//
// replace: upsert, plus deletion of rows a complete sync did not see. Each
// replace (or merge) table has a "generation" recorded in _ferry_sync: the
// first Write of rows to the table in a sync begins one (started_at = run
// time) unless an unfinished one exists, which is then resumed — an
// interrupted or failed run followed by a resuming run counts as one sync.
// FinishRun ends the sync in one transaction: each table it names ends its
// generation, a complete replace table first having the rows with
// _ferry_synced before the generation's start marked (_ferry_deleted =
// true, or DELETE with HardDelete) — unless they are more than its
// DeleteThreshold (default 0.9) of the rows not marked deleted when the
// sync began (counted as its generation begins, before the sync's first
// rows land, and kept in _ferry_sync.live_at_start: the rows a sync
// inserts do not dilute the share, and a resumed sync counts from its
// start; a generation begun by a ferry that kept no count counts the
// rows live at its end), when none is marked, the generation still ends, a warning names the table, the
// counts and the option, and SkippedDeletes reports it (an API answering
// a complete-looking empty list must not empty the table; no floor for
// small tables: at 0.9 a table of ten rows or fewer may lose any of them
// but not all at once, and 1 allows all); the checkpoints it names are
// deleted with it, so a crash can never leave a finished generation with stale
// checkpoints that would make the next run "resume" and delete everything it
// did not re-fetch. A row seen again is un-deleted. ClearState with no
// streams, and Restart, also discard open generations. The clock going
// backwards between runs can only make deletions late, never wrong: rows of
// a resumed generation are stamped no earlier than its start.
//
// EnsureTables creates the declared tables that do not exist yet, with
// their declared columns and key; a key column whose type is not declared
// is made STRING, and in a table that holds no row yet, a column whose type
// was not declared, and is of a type ferry makes (not a user's
// numeric(10,2)), takes the type of its first value (as a new column
// would), so a table made empty first ends like one made with rows.
//
// # State and atomicity
//
// Checkpoints live in _ferry_state(stream, partition, value, updated_at)
// per schema; value is the checkpoint's JSON text, returned as given. A
// Write commits its rows, any table or column changes they need, and its
// checkpoints in one transaction; a checkpoint with an empty Value deletes
// that partition's state. Killed at any moment (even SIGKILL), a run leaves
// either all of a Write or nothing, so resuming from State gives no loss
// and no duplicates.
//
// # Refused rows
//
// A Write that fails because of its rows' data wraps ErrRefused: the
// database refused a value (PostgreSQL SQLSTATE classes 22 data exception,
// 23 integrity, 54 program limit — a key too long for its btree index, more
// than 1600 columns; SQLite's SQLITE_TOOBIG, SQLITE_CONSTRAINT,
// SQLITE_MISMATCH and "too many columns", over 2000), or the sink refused a
// row itself (a key value PostgreSQL would store altered, a value a column
// ferry did not make would store changed, a row without a
// key value, rows that would give the table more columns than the
// database allows: counted before any is added). A cancelled context, a lost connection or any other error is
// not wrapped: it is no row's fault. Nothing of the Write is committed.
// FindRefused then finds the row at fault, the first whose addition to
// the rows before it makes the write fail, by trial writes that do all
// of a Write but roll back — but for too many columns, where the row that
// crossed the limit may be one of a single column after one of 1590, the
// first row that needs too many alone, else the one bringing the most
// columns no other row needs (no trial) (log2 of the rows plus one of them; no table,
// column, state or warning survives them). The caller (the engine) writes
// the batch again without it, keeping back its partition's checkpoint (the
// next run reads the partition again) and its rows of append tables. A
// Write that succeeds pays nothing for this.
//
// # Lock
//
// Lock refuses a second concurrent run of the same spec on the same
// destination with an error wrapping ErrLocked that names the holder
// (holder string, pid, host, time, from the _ferry_lock row). Other specs
// are not blocked. Stale locks cannot block: the lock is held by the
// operating system or the server on behalf of the live process, not by a
// row.
//   - SQLite: an exclusive SQLite lock held for the whole run on a sidecar
//     file "<path>.ferry-<schema>.lock" (kept between runs; deleting it while
//     a run holds it would defeat the lock). The kernel drops it when the
//     process exits, however it exits.
//   - PostgreSQL: a session-level advisory lock (pg_try_advisory_lock of
//     hashtextextended('ferry:<schema>')). The server drops it when the
//     session ends — at once when a killed client's socket closes; after TCP
//     keepalive timeouts if the client host vanished, or use
//     pg_terminate_backend on the session named in the error.
//
// # Performance
//
// SQLite: WAL, synchronous=NORMAL, a 2000 KiB page cache (see sqliteDSN), one connection,
// statements prepared once, rows written with multi-row INSERT … ON
// CONFLICT statements inside the Write's transaction (aim for ~1000 rows per
// Write; BatchRows reports the configured figure). PostgreSQL: per Write,
// COPY into a temp staging table (all text, kept per connection, emptied at
// commit), then one INSERT … SELECT … ON CONFLICT DO UPDATE per table with
// casts to the column types; rows with the same key in one Write are
// reduced to the last one first. BenchmarkLoad compares both against bare
// driver loops.
package table
