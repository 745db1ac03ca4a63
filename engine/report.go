package engine

import (
	_ "embed"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink/port"
	"github.com/ferry-etl/ferry/engine/spec"
)

//go:embed report.schema.json
var reportSchema []byte

// ReportSchema returns the JSON Schema of RunReport's JSON form.
func ReportSchema() []byte { return reportSchema }

// RunReport is the machine-readable outcome of a run (`ferry run --report`),
// for orchestrators. Its JSON form is described by ReportSchema; fields are
// only ever added.
type RunReport struct {
	Spec     string    `json:"spec"`      // the spec's name
	SpecFile string    `json:"spec_file"` // the file it was loaded from ("-": stdin)
	DryRun   bool      `json:"dry_run"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	Seconds  float64   `json:"duration_seconds"`
	ExitCode int       `json:"exit_code"`
	Status   string    `json:"status"` // ok, failed, usage, invalid_spec, interrupted
	Error    string    `json:"error,omitempty"`

	Streams    []StreamReport    `json:"streams"`
	Tables     []TableReport     `json:"tables"`
	Blueprints []BlueprintReport `json:"blueprints"`
	Port       *PortSummary      `json:"port,omitempty"` // nil when Port was not written (dry run, no entities, stopped early)
	Failures   []FailureReport   `json:"failures"`       // every failed request chain and record
	// SkippedRequests are the requests a response rule skipped: not
	// failures, but what they would have read was not written.
	SkippedRequests []SkipReport      `json:"skipped_requests"`
	Duplicates      []DuplicateReport `json:"duplicates"`
	Hosts           []HostReport      `json:"hosts"` // HTTP attempts per host, Port's included
}

// StreamReport is what one stream read.
type StreamReport struct {
	Name     string `json:"name"`
	State    string `json:"state"` // done, failed, skipped, incomplete (cut short)
	Chains   int64  `json:"chains"`
	Requests int64  `json:"requests"` // HTTP attempts, retries included
	Retries  int64  `json:"retries"`
	Pages    int64  `json:"pages"`
	Records  int64  `json:"records"` // records read
	// Outputs are the rows and entities its records mapped to: a record
	// may map to several tables and blueprints, or (a selector) to none.
	Outputs        int64  `json:"outputs"`
	Failures       int64  `json:"failures"`        // failed chains and records
	SkippedParents int64  `json:"skipped_parents"` // requests not sent: a `when` false for the parent, or a response rule's skip
	Empty          int64  `json:"empty"`           // answers a response rule read as "no data"
	WindowsDone    int64  `json:"windows_done,omitempty"`
	WindowsTotal   int64  `json:"windows_total,omitempty"` // the time windows of a windowed stream
	Complete       bool   `json:"complete"`                // everything it should have read was read
	SkipReason     string `json:"skip_reason,omitempty"`
}

// TableReport is what one table received.
type TableReport struct {
	Name string `json:"name"`
	// RowsWritten were committed (on a dry run: printed), a repeated
	// primary key once; RowsDeleted are
	// rows of a replace table not seen in this full sync, marked deleted.
	RowsWritten int64 `json:"rows_written"`
	RowsDeleted int   `json:"rows_deleted"`
	// Reconciled: every stream feeding it was complete and the run ended
	// its sync (replace: unseen rows marked deleted). A run whose sync end
	// failed or did not happen (failures, refused rows) reconciles none.
	Reconciled bool `json:"reconciled"`
	// SkippedDelete is why a complete sync of a replace table marked none
	// of its unseen rows: more than its delete_threshold of its live rows
	// would have gone (the table is then not reconciled).
	SkippedDelete string `json:"skipped_delete,omitempty"`
	// RowsUnchanged are rows written that were identical to the row the
	// table held: not rewritten (upsert tables; see README).
	RowsUnchanged int64 `json:"rows_unchanged"`
}

// BlueprintReport is what one blueprint received.
type BlueprintReport struct {
	Name string `json:"name"`
	// Produced are the entities mapped (a duplicate identifier once);
	// Upserted those sent that Port accepted; Unchanged those Port already
	// held exactly as mapped (not sent); Rejected those not written (see
	// Port.Errors).
	Produced   int64 `json:"produced"`
	Upserted   int64 `json:"upserted"`
	Rejected   int64 `json:"rejected"`
	Reconciled bool  `json:"reconciled"` // complete, and its stale entities deleted (not skipped over the threshold)
	Unchanged  int64 `json:"unchanged"`
	Deleted    int64 `json:"deleted"` // stale entities of the run's owner deleted
}

// PortSummary is what Port did.
type PortSummary struct {
	Owner            string   `json:"owner"` // the ferryOwner value this run writes
	Upserted         int      `json:"upserted"`
	Unchanged        int      `json:"unchanged"` // held by Port as the run would write them: not sent
	Rejected         int      `json:"rejected"`
	Deleted          int      `json:"deleted"` // stale owned entities deleted
	DroppedRelations int      `json:"dropped_relations"`
	Adopted          int      `json:"adopted"`   // entities taken over from another owner, or none
	Conflicts        []string `json:"conflicts"` // entities of another owner, not overwritten; each names the stream and parents it came from
	// Errors are the entities not written (Port refused them, offline
	// validation, conflicts, relation policy "fail"), one line each:
	// blueprint, identifier, the stream and parent chain of the record it
	// was mapped from, and why; EntityErrors are the same as fields.
	Errors          []string           `json:"errors"`
	EntityErrors    []PortEntityReport `json:"entity_errors"`
	SkippedDeletes  []string           `json:"skipped_deletes"`
	ReconcileErrors []string           `json:"reconcile_errors"` // blueprints whose stale entities could not be listed: nothing deleted
	// DeleteErrors are stale entities Port did not delete (another entity
	// relates to them, or Port still holds them): their blueprint is not
	// reconciled.
	DeleteErrors []string `json:"delete_errors"`
}

// PortEntityReport is one entity not written, and the record it came
// from, as a FailureReport names a failed record.
type PortEntityReport struct {
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
	Stream     string `json:"stream,omitempty"`  // the stream of the record it was mapped from
	Parents    string `json:"parents,omitempty"` // that record's parent chain, e.g. apps[id=a] > envs[id=dev]
	// Merged: the entity merges several records (on_duplicate: merge);
	// Stream and Parents name the last one.
	Merged bool   `json:"merged,omitempty"`
	Error  string `json:"error"`
}

// FailureReport is one failed request chain or record.
type FailureReport struct {
	Kind      string `json:"kind"` // chain or record
	Stream    string `json:"stream"`
	Parents   string `json:"parents,omitempty"` // e.g. apps[id=a] > envs[id=dev]
	Table     string `json:"table,omitempty"`
	Blueprint string `json:"blueprint,omitempty"`
	Lookup    string `json:"lookup,omitempty"`
	Error     string `json:"error"`
}

// SkipReport is one request a response rule skipped.
type SkipReport struct {
	Stream  string `json:"stream"`
	Parents string `json:"parents,omitempty"` // the parent chain it was for, e.g. apps[id=a] > envs[id=dev]
	Window  string `json:"window,omitempty"`  // a windowed stream's window, start..end
	// Page is the request's page, from 1; 0 when not known: a request an
	// earlier run of the sync skipped, still unread (see Reason).
	Page   int    `json:"page"`
	Reason string `json:"reason"`
}

// DuplicateReport counts the rows or entities that repeated a key.
type DuplicateReport struct {
	Kind     string         `json:"kind"` // table or blueprint
	Name     string         `json:"name"`
	Count    int            `json:"count"`
	Modes    map[string]int `json:"modes"`
	Examples []string       `json:"examples"`
}

// HostReport counts the HTTP attempts sent to one host.
type HostReport struct {
	Host     string `json:"host"`
	Port     bool   `json:"port"`
	Requests int64  `json:"requests"`
	Retries  int64  `json:"retries"`
	Errors   int64  `json:"errors"`
	// RateCuts are the times the host's answers (a rate limit, a 503) cut
	// the rate sent to it; PacedPerSecond is that rate at the end (0: not
	// paced).
	RateCuts       int64   `json:"rate_cuts"`
	PacedPerSecond float64 `json:"paced_per_second"`
}

// ExitStatus names an exit code in a report.
func ExitStatus(code int) string {
	switch code {
	case ExitOK:
		return "ok"
	case ExitUsage:
		return "usage"
	case ExitInvalidSpec:
		return "invalid_spec"
	case ExitInterrupted:
		return "interrupted"
	}
	return "failed"
}

// NewRunReport builds the report of a run of the spec at path (sp is nil
// when it could not be loaded) that ended with res (nil if it never
// started), err and the exit code the CLI returns.
func NewRunReport(sp *Spec, path string, res *Result, err error, code int, dryRun bool, now time.Time) *RunReport {
	rep := &RunReport{SpecFile: path, DryRun: dryRun, ExitCode: code, Status: ExitStatus(code),
		Streams: []StreamReport{}, Tables: []TableReport{}, Blueprints: []BlueprintReport{}, Failures: []FailureReport{},
		SkippedRequests: []SkipReport{}, Duplicates: []DuplicateReport{}, Hosts: []HostReport{}}
	if sp == nil {
		sp = &Spec{f: &spec.File{}}
	} else {
		rep.Spec = sp.Name()
	}
	if err != nil {
		rep.Error = err.Error()
	}
	if res == nil {
		res = &Result{}
	}
	rep.Started, rep.Ended = res.Started, res.Ended
	if rep.Started.IsZero() {
		rep.Started = now
	}
	if rep.Ended.IsZero() {
		rep.Ended = now
	}
	rep.Started, rep.Ended = rep.Started.UTC(), rep.Ended.UTC()
	rep.Seconds = rep.Ended.Sub(rep.Started).Seconds()
	sum := res.Summary
	cut := cutShort(err)
	dups := map[string]int64{} // kind/name -> repeats that did not fail
	if sum != nil {
		for _, s := range sum.Streams {
			sr := StreamReport{Name: s.Stream, Chains: s.Chains, Requests: s.Requests, Retries: s.Retries, Pages: s.Pages,
				Records: s.Records, Outputs: s.Outputs, Failures: s.Errors, SkippedParents: s.Skipped, Empty: s.Empty,
				WindowsDone: s.WindowsDone, WindowsTotal: s.WindowsTotal, Complete: sum.Complete[s.Stream], SkipReason: s.SkipReason}
			switch {
			case s.SkipReason != "":
				sr.State = "skipped"
			case s.Errors > 0:
				sr.State = "failed"
			case !s.Done || cut:
				sr.State = "incomplete"
			default:
				sr.State = "done"
			}
			rep.Streams = append(rep.Streams, sr)
		}
		incompleteBelowFailed(sp, rep.Streams)
		for _, f := range sum.Failures {
			fr := FailureReport{Kind: "chain", Stream: f.Stream, Parents: f.Parents, Table: f.Table, Blueprint: f.Blueprint, Lookup: f.Lookup, Error: f.Err.Error()}
			if f.Record() {
				fr.Kind = "record"
			}
			rep.Failures = append(rep.Failures, fr)
		}
		for _, s := range sum.Skips {
			rep.SkippedRequests = append(rep.SkippedRequests, SkipReport{Stream: s.Stream, Parents: s.Parents, Window: s.Window, Page: s.Page, Reason: s.Reason})
		}
		for _, d := range sum.Duplicates {
			dr := DuplicateReport{Kind: d.Kind, Name: d.Name, Count: d.Count, Modes: map[string]int{}, Examples: append([]string{}, d.Examples...)}
			maps.Copy(dr.Modes, d.Modes)
			rep.Duplicates = append(rep.Duplicates, dr)
			// A row whose key an earlier run of the sync wrote is this
			// run's first of it: written, and counted once.
			dups[d.Kind+"/"+d.Name] = int64(d.Count - d.Modes["fail"] - d.Earlier)
		}
	}
	for _, name := range sp.Tables() {
		// A repeated primary key overwrote (or merged into) its row.
		// So did a row of a reading that replaced an earlier one of its
		// partition (Rewritten).
		tr := TableReport{Name: name, RowsWritten: max(res.Rows[name]-dups["table/"+name]-rewritten(sum, name), 0)}
		if sum != nil {
			// A dry run cut short (a broken pipe) printed only part of
			// what its streams read. A run's destination says below what
			// it did: an error after it (a cassette not saved) undoes
			// nothing.
			tr.Reconciled = sum.Tables[name] && (res.Dest != nil || !cut)
		}
		if res.Dest != nil {
			// Reconciled only if the sync ended: unseen rows were marked
			// (a dry run, without destinations, says what a run would do).
			tr.Reconciled = tr.Reconciled && res.Dest.Finished[name]
			if sk, ok := res.Dest.SkippedDeletes[name]; ok {
				tr.Reconciled, tr.SkippedDelete = false, sk.Reason
			}
			tr.RowsDeleted = res.Dest.Tables[name]
			tr.RowsUnchanged = min(res.Dest.Unchanged[name], tr.RowsWritten)
		}
		rep.Tables = append(rep.Tables, tr)
	}
	var prep *PortSummary
	rejected := map[string]int64{}
	notReconciled := map[string]bool{} // its deletion was skipped, its listing failed or an entity stayed
	if res.Dest != nil && res.Dest.Port != nil {
		p := res.Dest.Port
		prep = &PortSummary{Owner: p.Owner, Upserted: p.Upserted, Unchanged: p.Unchanged, Rejected: p.Failed, Deleted: p.Deleted, DroppedRelations: p.DroppedRelations,
			Adopted: p.Adopted, Conflicts: []string{}, Errors: []string{}, EntityErrors: []PortEntityReport{}, SkippedDeletes: []string{}, ReconcileErrors: []string{}, DeleteErrors: []string{}}
		for _, c := range p.Conflicts {
			owner := c.Owner
			if owner == "" {
				owner = "nobody (made by hand or by another tool)"
			}
			prep.Conflicts = append(prep.Conflicts, fmt.Sprintf("blueprint %s entity %q%s: owned by %s", c.Blueprint, c.Identifier, c.From(), owner))
		}
		for _, e := range p.ReconcileErrors {
			prep.ReconcileErrors = append(prep.ReconcileErrors, e.Blueprint+": "+e.Message)
			notReconciled[e.Blueprint] = true
		}
		for _, e := range p.Errors {
			prep.Errors = append(prep.Errors, e.Error())
			prep.EntityErrors = append(prep.EntityErrors, PortEntityReport{Blueprint: e.Blueprint, Identifier: e.Identifier,
				Stream: e.Stream, Parents: e.Parents, Merged: e.Merged, Error: e.Message})
			rejected[e.Blueprint]++
		}
		for _, e := range p.DeleteErrors {
			prep.DeleteErrors = append(prep.DeleteErrors, e.Error())
			notReconciled[e.Blueprint] = true
		}
		for _, s := range p.SkippedDeletes {
			prep.SkippedDeletes = append(prep.SkippedDeletes, s.Blueprint+": "+s.Reason)
			notReconciled[s.Blueprint] = true
		}
		rep.Port = prep
	}
	for _, name := range sp.Blueprints() {
		// An entity of a reading that replaced an earlier one of its
		// partition was produced twice, as a rewritten row was written.
		var again int64
		if sum != nil {
			again = int64(sum.RewrittenEntities[name])
		}
		br := BlueprintReport{Name: name, Produced: max(res.Entities[name]-dups["blueprint/"+name]-again, 0), Rejected: rejected[name]}
		if prep != nil {
			c := res.Dest.Port.Blueprints[name]
			br.Upserted, br.Unchanged, br.Deleted = int64(c.Upserted), int64(c.Unchanged), int64(c.Deleted)
		}
		if sum != nil {
			// Complete, and its stale entities were deleted (not skipped
			// over the threshold, nor left for a listing that failed).
			// A run's Port did so if it was sent the entities (prep), a
			// dry run's only if its output was not cut short.
			sent := !cut
			if res.Dest != nil {
				sent = prep != nil
			}
			br.Reconciled = sum.Blueprints[name] && !notReconciled[name] && sent
		}
		rep.Blueprints = append(rep.Blueprints, br)
	}
	for _, h := range res.Hosts {
		rep.Hosts = append(rep.Hosts, HostReport{Host: h.Host, Port: h.Port, Requests: h.Requests, Retries: h.Retries, Errors: h.Errors,
			RateCuts: h.RateCuts, PacedPerSecond: math.Round(h.AdaptiveRate*100) / 100})
	}
	if res.redact != nil {
		redactReport(rep, res.redact)
	}
	return rep
}

// redactReport hides the secrets redact knows (the run's: its inputs' and
// the tokens it fetched) from every free text of rep: values of records
// (a repeated key, an entity's identifier, a parent chain, an error
// quoting a value) and answers of APIs may echo one. Most come redacted
// already, where they are made; not the duplicate keys' examples, nor
// Port's conflicts, rejected identifiers and their parent chains.
func redactReport(rep *RunReport, redact func(string) string) {
	rep.Error = redact(rep.Error)
	for i := range rep.Streams {
		rep.Streams[i].SkipReason = redact(rep.Streams[i].SkipReason)
	}
	for i := range rep.Tables {
		rep.Tables[i].SkippedDelete = redact(rep.Tables[i].SkippedDelete)
	}
	for i := range rep.Failures {
		f := &rep.Failures[i]
		f.Parents, f.Error = redact(f.Parents), redact(f.Error)
	}
	for i := range rep.SkippedRequests {
		s := &rep.SkippedRequests[i]
		s.Parents, s.Reason = redact(s.Parents), redact(s.Reason)
	}
	for _, d := range rep.Duplicates {
		for i, ex := range d.Examples {
			d.Examples[i] = redact(ex)
		}
	}
	if p := rep.Port; p != nil {
		for _, list := range [][]string{p.Conflicts, p.Errors, p.SkippedDeletes, p.ReconcileErrors, p.DeleteErrors} {
			for i, x := range list {
				list[i] = redact(x)
			}
		}
		for i := range p.EntityErrors {
			e := &p.EntityErrors[i]
			e.Identifier, e.Parents, e.Error = redact(e.Identifier), redact(e.Parents), redact(e.Error)
		}
	}
}

// incompleteBelowFailed calls incomplete a stream done whose parent or
// batch source failed or is incomplete: it was asked for the records that
// stream gave, not for all it should have, as its Complete says; "done"
// read as read in full.
func incompleteBelowFailed(sp *Spec, streams []StreamReport) {
	byName := map[string]*StreamReport{}
	for i := range streams {
		byName[streams[i].Name] = &streams[i]
	}
	var short func(name string, depth int) bool
	short = func(name string, depth int) bool {
		sr, st := byName[name], sp.f.Streams.Get(name)
		if sr == nil || st == nil || depth > len(streams) { // a cycle, which validation refuses
			return false
		}
		if sr.State == "failed" || sr.State == "incomplete" {
			return true
		}
		for _, up := range []*spec.Stream{st.Parent(), st.BatchOf()} {
			if up != nil && up.Name != name && short(up.Name, depth+1) {
				return true
			}
		}
		return false
	}
	for i := range streams {
		if sr := &streams[i]; sr.State == "done" && !sr.Complete && short(sr.Name, 0) {
			sr.State = "incomplete"
		}
	}
}

// cutShort tells whether err stopped the run before its streams' reading
// was written (an interrupt, a destination that failed): any error of the
// ones it joins but failed chains and records, entities a dry run finds
// invalid, and Port's rejected entities or failed reconciliation, which
// leave every stream read.
func cutShort(err error) bool {
	switch x := err.(type) {
	case nil, *runner.RunError, *InvalidEntitiesError:
		return false
	case interface{ Unwrap() []error }:
		return slices.ContainsFunc(x.Unwrap(), cutShort)
	case interface{ Unwrap() error }:
		return cutShort(x.Unwrap())
	}
	return err != port.ErrEntitiesFailed && err != port.ErrReconcileFailed
}

// rewritten is how many rows of table rewrote an earlier reading's row of
// their key in the run (see runner.Summary.Rewritten).
func rewritten(sum *Summary, table string) int64 {
	if sum == nil {
		return 0
	}
	return int64(sum.Rewritten[table])
}
