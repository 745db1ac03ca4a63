package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/panics"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/port"
	"github.com/ferry-etl/ferry/engine/sink/table"
)

// PlanOptions configure a plan: the run options that decide what a run
// would change.
type PlanOptions struct {
	Dest         string      // table destination URL; "" means DefaultDest
	Port         PortOptions // Port credentials, when the spec has entities
	Streams      []string    // only these streams (and what drives them)
	FullRefresh  bool        // the run would ignore checkpoints and cursors
	ResumeWithin time.Duration
	StateFile    string
	Logger       *slog.Logger
	Now          func() time.Time
	// Transport, when set, is the network (tests route it to simulators).
	Transport http.RoundTripper
}

// Plan is what a run would change, per table and Port blueprint, found by
// extracting as a dry run does and reading the destinations; its JSON form
// is `ferry plan --format json`.
type Plan struct {
	Spec string `json:"spec"`
	// Changes is whether applying the plan would change anything (a
	// create, update or delete, of a row, an entity or a blueprint).
	Changes bool `json:"changes"`
	// Complete is false when extraction had failures: the plan then shows
	// what a run would do with what it could read (refusing deletions),
	// and the plan fails.
	Complete bool            `json:"complete"`
	Tables   []TablePlan     `json:"tables"`
	Port     *PortPlan       `json:"port,omitempty"`
	Failures []FailureReport `json:"failures"`
	Summary  *Summary        `json:"-"`
}

// TablePlan is what a run would do to one table.
type TablePlan struct {
	Name      string       `json:"name"`
	Create    int          `json:"create"`
	Update    int          `json:"update"`
	Delete    int          `json:"delete"`
	Unchanged int          `json:"unchanged"`
	Creates   []RowKey     `json:"creates"` // the new rows' keys
	Updates   []RowChange  `json:"updates"`
	Deletes   []RowKey     `json:"deletes"` // marked _ferry_deleted, or deleted (hard_delete)
	Hard      bool         `json:"hard_delete,omitempty"`
	Refused   *RefusedPlan `json:"deletes_refused,omitempty"`
}

// RowKey is a row's primary key (or _ferry_id): column -> value.
type RowKey map[string]any

// RowChange is one row a run would change.
type RowChange struct {
	Key     RowKey   `json:"key"`
	Changes []Change `json:"changes"`
}

// Change is one field that would change: a column, or an entity's title,
// icon, team, properties.NAME or relations.NAME. Old or New is null when
// absent (NULL).
type Change struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// RefusedPlan are deletions the safety rules would refuse.
type RefusedPlan struct {
	Count       int      `json:"count"`
	Owned       int      `json:"owned,omitempty"` // Port: the blueprint's owned entities
	Reason      string   `json:"reason"`
	Identifiers []string `json:"identifiers,omitempty"` // Port entities
}

// PortPlan is what a run would do in Port.
type PortPlan struct {
	Owner      string          `json:"owner"`
	Schemas    []SchemaPlan    `json:"schemas"` // the blueprints' definitions
	Blueprints []BlueprintPlan `json:"blueprints"`
}

// SchemaPlan is what a run would do to a blueprint's definition.
type SchemaPlan struct {
	Blueprint string   `json:"blueprint"`
	Action    string   `json:"action"` // create, update, unchanged
	Changes   []string `json:"changes,omitempty"`
}

// BlueprintPlan is what a run would do to one blueprint's entities.
type BlueprintPlan struct {
	Name      string         `json:"name"`
	Create    int            `json:"create"`
	Update    int            `json:"update"`
	Delete    int            `json:"delete"`
	Unchanged int            `json:"unchanged"`
	Creates   []string       `json:"creates"`
	Updates   []EntityChange `json:"updates"`
	Deletes   []string       `json:"deletes"`
	Refused   *RefusedPlan   `json:"deletes_refused,omitempty"`
	// Conflicts are entities of another owner (or none) the run produces:
	// not written. Invalid would be rejected before reaching Port.
	Conflicts []ConflictPlan `json:"conflicts"`
	Invalid   []InvalidPlan  `json:"invalid"`
}

// EntityChange is one entity a run would overwrite.
type EntityChange struct {
	Identifier string `json:"identifier"`
	// AdoptedFrom is the owner it would be taken over from; "nobody" for
	// an entity without one (--adopt-unowned).
	AdoptedFrom string   `json:"adopted_from,omitempty"`
	Changes     []Change `json:"changes"`
}

// ConflictPlan is an entity the run produces that another owner holds.
type ConflictPlan struct {
	Identifier string `json:"identifier"`
	Owner      string `json:"owner"` // "" for none (made by hand or by another tool)
}

// InvalidPlan is an entity Port would not get.
type InvalidPlan struct {
	Identifier string `json:"identifier"`
	Error      string `json:"error"`
}

// PlanRun extracts the spec as a dry run does and compares what it maps
// with what the destinations hold: the tables (read-only) and the owned
// Port entities of the spec's blueprints (searches only). Nothing is
// written anywhere — except, as in a dry run, an OAuth2 refresh token the
// source rotated, which must be kept for the next run. The plan comes
// back even when extraction failed (its error is then a RunError and
// Plan.Complete is false).
func PlanRun(ctx context.Context, sp *Spec, cfg *Config, opts PlanOptions) (_ *Plan, err error) {
	f := sp.f
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var logs *logRedaction
	opts.Logger, logs = redactingLogger(opts.Logger, Redactor(cfg, opts.Port))
	// A panic on this goroutine (the runner's and the Port sink's recover
	// theirs) is the error, redacted as the logs are: by the pool's
	// redaction once it exists, which knows the tokens fetched (Port's),
	// as a run's is (see runGuarded).
	defer panics.Recover(&err, logs.text, opts.Logger)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx = eval.ContextWithClock(ctx, opts.Now)
	if opts.ResumeWithin == 0 {
		opts.ResumeWithin = DefaultResumeWithin
	}
	if opts.Dest == "" {
		opts.Dest = DefaultDest
	}
	for _, name := range opts.Streams {
		if f.Stream(name) == nil {
			return nil, usage("--streams: unknown stream %q%s (the spec has: %s)", name, didYouMean(name, f.Streams.Keys()), strings.Join(f.Streams.Keys(), ", "))
		}
	}
	plan := &Plan{Spec: f.Name.V, Complete: true, Tables: []TablePlan{}, Failures: []FailureReport{}}
	ro := RunOptions{DryRun: true, Dest: opts.Dest, StateFile: opts.StateFile, Logger: opts.Logger, Now: opts.Now}
	creds := newCredentials(f, ro)
	defer creds.close()
	secrets := runSecrets(cfg, opts.Port)
	pool := fetch.NewPool(fetch.Options{Logger: opts.Logger, Secrets: secrets, Now: newPoolClock(opts.Now).now, Credentials: creds, Transport: opts.Transport})
	logs.use(pool.Redact)
	ropts := runner.Options{Config: cfg.Values, Pool: pool, Streams: opts.Streams, Logger: opts.Logger, Now: opts.Now}

	// What a run would resume from: incremental cursors (it reads only
	// what changed since) and whether it resumes an unfinished sync (it
	// then deletes no Port entity).
	var reader *table.Reader
	refuse := ""
	var resumed syncState // the sync the run would resume, when it resumes one whole
	if len(f.Tables.Items) > 0 {
		r, err := table.OpenReader(ctx, opts.Dest, table.Options{Schema: f.Name.V, Tables: tableDefs(f), Logger: opts.Logger, Now: opts.Now})
		if errors.Is(err, table.ErrBadDestination) {
			return nil, &UsageError{Err: fmt.Errorf("--dest %s: %w", redactDSN(opts.Dest), err)}
		}
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", redactDSN(opts.Dest), err)
		}
		defer r.Close()
		reader = r
		st, err := r.State(ctx)
		if err != nil {
			return nil, fmt.Errorf("destination %s: read state: %w", redactDSN(opts.Dest), err)
		}
		// A run of another instance than the destination's is refused.
		inst, err := sourceInstance(f, cfg)
		if err != nil {
			return nil, err
		}
		if _, err := checkInstance(f, st, inst, opts.FullRefresh, opts.Streams); err != nil {
			return nil, err
		}
		// The duplicate check keys by the tables' types, as a new sync's
		// run would (the plan reads no saved keys).
		if ropts.KeyTypes, err = r.KeyTypes(ctx); err != nil {
			return nil, fmt.Errorf("destination %s: %w", redactDSN(opts.Dest), err)
		}
		// The replace tables' open sync generations the run would end
		// before writing (a new sync counts the rows live when it begins;
		// a resumed one, those live when it began): as openDestinations
		// and destinations.state do.
		if !opts.FullRefresh {
			ropts.State = map[string]map[string]json.RawMessage{}
			for stream, parts := range st {
				if strings.HasSuffix(stream, runner.WatermarkSuffix) {
					ropts.State[stream] = parts
				}
			}
			refuse = resumeRefusal(st, opts.Now(), opts.ResumeWithin)
			if refuse != "" && len(opts.Streams) == 0 {
				_ = json.Unmarshal(st[syncKey][""], &resumed)
			}
			if _, _, restarts := unfinishedSync(st, opts.Now(), opts.ResumeWithin); restarts {
				r.EndGenerations(true, nil)
			}
		} else if len(opts.Streams) > 0 {
			// A full refresh of some streams discards only their state and
			// goes on with an unfinished sync (see openDestinations): the
			// run resumes it, and deletes no Port entity.
			left := maps.Clone(st)
			maps.DeleteFunc(left, func(key string, _ map[string]json.RawMessage) bool {
				return slices.Contains(opts.Streams, stateStream(key))
			})
			refuse = resumeRefusal(left, opts.Now(), opts.ResumeWithin)
			_, _, restarts := unfinishedSync(left, opts.Now(), opts.ResumeWithin)
			r.EndGenerations(restarts, refreshedTables(f, opts.Streams))
		} else {
			r.EndGenerations(true, nil)
		}
	}

	var ps *port.Sink
	if sp.WritesPort() {
		if opts.Port.ClientID == "" || opts.Port.ClientSecret == "" {
			return nil, &UsageError{Err: ErrNoPortCredentials}
		}
		var err error
		if ps, err = newPortSink(f, cfg, opts.Port, pool, opts.Logger); err != nil {
			return nil, err
		}
		defer ps.Close()
		schemas, err := ps.PlanBlueprints(ctx, f.Blueprints())
		if err != nil {
			return nil, fmt.Errorf("port: blueprints: %w", err)
		}
		plan.Port = &PortPlan{Blueprints: []BlueprintPlan{}}
		for _, s := range schemas {
			plan.Port.Schemas = append(plan.Port.Schemas, SchemaPlan{Blueprint: s.Blueprint, Action: s.Action, Changes: s.Changes})
			plan.Changes = plan.Changes || s.Action != port.ActionUnchanged
		}
	}

	r, err := runner.New(f, ropts)
	if err != nil {
		return nil, err
	}
	out := &planOutput{port: ps, rows: map[string][]sink.Row{}}
	sum, runErr := r.Run(ctx, out)
	plan.Summary = sum
	if runErr != nil && !isRunError(runErr) {
		return plan, runErr
	}
	if runErr != nil {
		plan.Complete = false
		for _, fl := range sum.Failures {
			fr := FailureReport{Kind: "chain", Stream: fl.Stream, Parents: fl.Parents, Table: fl.Table, Blueprint: fl.Blueprint, Lookup: fl.Lookup, Error: fl.Err.Error()}
			if fl.Record() {
				fr.Kind = "record"
			}
			plan.Failures = append(plan.Failures, fr)
		}
	}

	for _, name := range sp.Tables() {
		tp := &table.TablePlan{Table: name}
		if reader != nil {
			ended := resumed.partEnded(f, name)
			if tp, err = reader.Plan(ctx, name, out.rows[name], sum.Tables[name] && !ended); err != nil {
				return plan, fmt.Errorf("destination %s: %w", redactDSN(opts.Dest), err)
			}
			if ended && sum.Tables[name] && tp.Refused != "" {
				tp.Refused = "a --streams run of the unfinished sync the run would resume reconciled it, and that run leaves it so (--full-refresh reconciles it anew): no row is marked deleted"
			}
		}
		plan.Tables = append(plan.Tables, tablePlan(tp))
		plan.Changes = plan.Changes || tp.Changes()
	}
	if ps != nil {
		pp, err := ps.Plan(ctx, sum.Blueprints, refuse)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "port: ") {
				err = fmt.Errorf("port: %w", err)
			}
			return plan, err
		}
		plan.Port.Owner = pp.Owner
		for _, b := range pp.Blueprints {
			plan.Port.Blueprints = append(plan.Port.Blueprints, blueprintPlan(b))
		}
		plan.Changes = plan.Changes || pp.Changes()
	}
	redactPlan(plan, pool.Redact)
	if runErr == nil {
		runErr = plan.notWritten()
	}
	return plan, runErr
}

// notWritten fails a plan whose run would leave entities unwritten
// (conflicts with another owner, entities Port would reject): that run
// fails, so the plan must not pass as "no changes" while records of the
// source never reach Port.
func (p *Plan) notWritten() error {
	if p.Port == nil {
		return nil
	}
	var conflicts, invalid int
	for _, b := range p.Port.Blueprints {
		conflicts += len(b.Conflicts)
		invalid += len(b.Invalid)
	}
	if conflicts+invalid == 0 {
		return nil
	}
	return fmt.Errorf("%d entities would not be written (%d conflict(s) with another owner, %d invalid): a run would fail", conflicts+invalid, conflicts, invalid)
}

// resumeRefusal says why a run would delete no Port entity: it would
// resume an unfinished sync (see destinations.state); "" otherwise.
func resumeRefusal(st map[string]map[string]json.RawMessage, now time.Time, within time.Duration) string {
	sy, resumes, _ := unfinishedSync(st, now, within)
	if !resumes {
		return "" // none, or too old to resume: the run starts a new sync
	}
	return fmt.Sprintf("the next run resumes the unfinished sync begun %s, and a resumed run deletes no Port entity (--full-refresh without --streams starts afresh)", sy.Started.UTC().Format(time.RFC3339))
}

// unfinishedSync reads the unfinished sync the state st holds, if any
// (page checkpoints): a run resumes it, or restarts when it began more
// than within ago (see destinations.state), ending every sync generation.
func unfinishedSync(st map[string]map[string]json.RawMessage, now time.Time, within time.Duration) (sy syncState, resumes, restarts bool) {
	unfinished := false
	for stream := range st {
		unfinished = unfinished || isPageState(stream)
	}
	if !unfinished {
		return sy, false, false
	}
	_ = json.Unmarshal(st[syncKey][""], &sy)
	if sy.Started.IsZero() || within > 0 && now.Sub(sy.Started) > within {
		return sy, false, true
	}
	return sy, true, false
}

// planOutput is a plan's runner Output: rows are kept in memory per table
// (a plan compares them at the end, to know a replace table's unseen
// rows), entities go to the Port sink's spool.
type planOutput struct {
	port *port.Sink

	mu   sync.Mutex
	rows map[string][]sink.Row
}

func (o *planOutput) Row(ctx context.Context, r sink.Row) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rows[r.Table] = append(o.rows[r.Table], r)
	return nil
}

func (o *planOutput) Entity(ctx context.Context, e sink.Entity) error {
	if o.port == nil {
		return nil
	}
	return o.port.Write(ctx, e)
}

func tablePlan(tp *table.TablePlan) TablePlan {
	out := TablePlan{Name: tp.Table, Create: len(tp.Create), Update: len(tp.Update), Delete: len(tp.Delete), Unchanged: tp.Unchanged,
		Creates: []RowKey{}, Updates: []RowChange{}, Deletes: []RowKey{}, Hard: tp.HardDelete && len(tp.Delete) > 0}
	for _, k := range tp.Create {
		out.Creates = append(out.Creates, RowKey(k))
	}
	for _, u := range tp.Update {
		rc := RowChange{Key: RowKey(u.Key)}
		for _, c := range u.Changes {
			rc.Changes = append(rc.Changes, Change{Field: c.Column, Old: c.Old, New: c.New})
		}
		out.Updates = append(out.Updates, rc)
	}
	for _, k := range tp.Delete {
		out.Deletes = append(out.Deletes, RowKey(k))
	}
	if tp.Refused != "" {
		out.Refused = &RefusedPlan{Count: tp.Kept, Reason: tp.Refused}
	}
	return out
}

func blueprintPlan(b port.BlueprintPlan) BlueprintPlan {
	out := BlueprintPlan{Name: b.Blueprint, Create: len(b.Create), Update: len(b.Update), Delete: len(b.Delete), Unchanged: b.Unchanged,
		Creates: append([]string{}, b.Create...), Updates: []EntityChange{}, Deletes: append([]string{}, b.Delete...),
		Conflicts: []ConflictPlan{}, Invalid: []InvalidPlan{}}
	for _, u := range b.Update {
		ec := EntityChange{Identifier: u.Identifier, AdoptedFrom: u.AdoptedFrom, Changes: []Change{}}
		if u.Unowned {
			ec.AdoptedFrom = "nobody"
		}
		for _, c := range u.Changes {
			ec.Changes = append(ec.Changes, Change{Field: c.Field, Old: c.Old, New: c.New})
		}
		out.Updates = append(out.Updates, ec)
	}
	if b.Refused != nil {
		out.Refused = &RefusedPlan{Count: len(b.Refused.Identifiers), Owned: b.Refused.Owned, Reason: b.Refused.Reason, Identifiers: b.Refused.Identifiers}
	}
	for _, c := range b.Conflicts {
		out.Conflicts = append(out.Conflicts, ConflictPlan{Identifier: c.Identifier, Owner: c.Owner})
	}
	for _, e := range b.Invalid {
		out.Invalid = append(out.Invalid, InvalidPlan{Identifier: e.Identifier, Error: e.Message})
	}
	return out
}

// redactPlan replaces every secret inside the plan's strings (keys,
// values old and new, identifiers, messages) as str does: the pool's
// redaction, which knows the secret inputs, the tokens fetched and the
// presigned links' signatures.
func redactPlan(p *Plan, str func(string) string) {
	var val func(v any) any
	val = func(v any) any {
		switch x := v.(type) {
		case string:
			return str(x)
		case json.Number:
			return json.Number(str(string(x)))
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = val(e)
			}
			return out
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[str(k)] = val(e)
			}
			return out
		}
		return v
	}
	key := func(k RowKey) RowKey { return RowKey(val(map[string]any(k)).(map[string]any)) }
	changes := func(cs []Change) {
		for i := range cs {
			cs[i].Old, cs[i].New = val(cs[i].Old), val(cs[i].New)
		}
	}
	ids := func(list []string) {
		for i := range list {
			list[i] = str(list[i])
		}
	}
	for i := range p.Tables {
		t := &p.Tables[i]
		for j := range t.Creates {
			t.Creates[j] = key(t.Creates[j])
		}
		for j := range t.Deletes {
			t.Deletes[j] = key(t.Deletes[j])
		}
		for j := range t.Updates {
			t.Updates[j].Key = key(t.Updates[j].Key)
			changes(t.Updates[j].Changes)
		}
	}
	for i := range p.Failures {
		p.Failures[i].Error = str(p.Failures[i].Error)
	}
	if p.Port == nil {
		return
	}
	for i := range p.Port.Blueprints {
		b := &p.Port.Blueprints[i]
		ids(b.Creates)
		ids(b.Deletes)
		for j := range b.Updates {
			b.Updates[j].Identifier = str(b.Updates[j].Identifier)
			changes(b.Updates[j].Changes)
		}
		if b.Refused != nil {
			ids(b.Refused.Identifiers)
		}
		for j := range b.Conflicts {
			b.Conflicts[j].Identifier = str(b.Conflicts[j].Identifier)
		}
		for j := range b.Invalid {
			b.Invalid[j].Identifier, b.Invalid[j].Error = str(b.Invalid[j].Identifier), str(b.Invalid[j].Error)
		}
	}
}
