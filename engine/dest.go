package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/port"
	"github.com/ferry-etl/ferry/engine/sink/table"
	"github.com/ferry-etl/ferry/engine/spec"
)

// DefaultDest is where tables go when no --dest is given.
const DefaultDest = "sqlite:ferry.db"

// PortOptions say how to reach Port. Credentials usually come from
// PORT_CLIENT_ID and PORT_CLIENT_SECRET (see PortFromEnv).
type PortOptions struct {
	BaseURL, ClientID, ClientSecret string
	NoDelete                        bool
	// AdoptOwners are former owners (ferryOwner values) whose entities the
	// run takes over: when the owner key changed, the old value moves to
	// the new one (produced entities are re-marked, stale ones deleted).
	AdoptOwners []string
	// AdoptUnowned lets the run overwrite entities that have no owner
	// (made by hand or by another tool); by default they are conflicts.
	AdoptUnowned bool
}

// runSecrets are what a run's pool redacts from the start: the secret
// inputs' values and both halves of Port's credential pair (Port treats its
// client id as a credential, as the token request that sends it does).
func runSecrets(cfg *Config, po PortOptions) []string {
	return append(slices.Clip(cfg.Secrets), po.ClientID, po.ClientSecret)
}

// The Port errors a run's error may wrap: entities not written (Port's
// rejections, conflicts with another owner), and blueprints whose stale
// entities could not be listed (nothing of them deleted).
var (
	ErrPortEntitiesFailed  = port.ErrEntitiesFailed
	ErrPortReconcileFailed = port.ErrReconcileFailed
)

// ErrNoPortCredentials stops a run that has Port entities before anything is
// fetched. It comes wrapped in a *UsageError.
var ErrNoPortCredentials = errors.New("this spec writes Port entities: set PORT_CLIENT_ID and PORT_CLIENT_SECRET (and PORT_BASE_URL for the US region), or use --dry-run")

// destinations is the Output of a real run: table rows go to the table
// database in batches, entities to the Port sink.
type destinations struct {
	f      *spec.File
	log    *slog.Logger
	tables *table.DB
	port   *port.Sink

	// Rows wait in pending until their page's checkpoint arrives; then they
	// and the checkpoint are ready, and are committed together. A crash
	// therefore loses only rows that the resumed run fetches again.
	mu      sync.Mutex
	pending map[partKey][]sink.Row
	rows    []sink.Row
	cps     []sink.Checkpoint
	// cpAt finds a partition's checkpoint in cps: a later one replaces it,
	// since only the last is read back (many pages of one chain often fall
	// in one batch).
	cpAt  map[partKey]int
	batch int
	// committed, when set, is told the rows of every successful commit
	// (the run's counts: a row refused by the database is not written).
	committed func(rows []sink.Row)
	resuming  bool // the destination held checkpoints of an unfinished sync
	// portCursors are the incremental cursors that wait for Port, with
	// the blueprints they feed (runner.PortCursors). Their checkpoints are
	// held, not committed, until Port has taken the run's entities: a sync
	// that is then abandoned (--resume-within) starts again from the
	// cursors Port has everything below.
	portCursors map[string][]string
	held        []sink.Checkpoint
	heldAt      map[partKey]int
	some        bool     // --streams: the run produces some streams only
	produced    []string // with some: the streams --streams names
	// sync is the resumed sync's entry (see syncState.Parts).
	sync syncState

	// refused are the rows the database refused, each a failed record;
	// blocked the partitions they came from. A blocked partition commits
	// no checkpoint more in this run, nor rows of append tables (see
	// heldBack): its stored checkpoint stays before the refused row, so the
	// next run reads it (and the rows after it) again. dropped counts the
	// rows held back.
	refused []runner.Failure
	blocked map[partKey]bool
	dropped int
	defs    map[string]table.Table
	redact  func(string) string

	// keys are the key hashes (and values' fingerprints) of the rows made
	// ready with their partition's checkpoint, committed with it (see
	// keysSuffix); keySeq numbers the next entry. saved are the keys the
	// sync's earlier runs committed, for the runner.
	keys    map[partKey]map[string]*keyList
	keySeq  int
	saved   *runner.SavedKeys
	entries map[partKey][]string // the partitions' committed entries of keys, this run's too
	// written are the entries of keys of the batch being written (see
	// withKeys): once it is committed, they are the partitions' entries.
	written []keyEntry
}

// syncKey is the state entry that dates the sync a run belongs to. It is
// committed with the sync's first rows and cleared with its last
// checkpoints; a resumed run reads it to refuse resuming a stale sync.
const syncKey = "@sync"

type syncState struct {
	Started time.Time `json:"started"`
	// Parts are the streams a --streams run read whole in this sync (a
	// --streams run never ends the sync): their checkpoints are kept, so
	// the run resuming the whole sync does not read them again (an append
	// table got their rows twice), and a later --streams run of one of
	// them begins its part anew.
	Parts []string `json:"parts,omitempty"`
	// Ended are the tables a --streams run of this sync reconciled, their
	// generation ended with its part (see partsEnded).
	Ended []string `json:"ended,omitempty"`
	// Keys are the types the sync's duplicate check keys each table's
	// primary-key columns by (table.DB.KeyTypes as its first run began):
	// every run of the sync keys alike, so that the keys its earlier runs
	// saved still match though a column was made or widened since.
	Keys map[string][]string `json:"keys,omitempty"`
}

// instanceKey is the state entry naming the source instance whose state
// the destination holds (sourceInstance): its cursors, its sync, its
// replace tables' rows. It outlives syncs, and only a full refresh
// replaces it with another instance's (see checkInstance).
const instanceKey = "@instance"

type instanceState struct {
	Instance string `json:"instance"`
}

type partKey struct{ stream, partition string }

func tableDefs(f *spec.File) []table.Table {
	var out []table.Table
	for _, it := range f.Tables.Items {
		t := it.Value
		def := table.Table{Name: t.Name, Mode: t.Mode.V, Columns: map[string]string{}, Merge: t.OnDuplicate.V == runner.DupMerge, HardDelete: t.HardDelete.V,
			DeleteThreshold: t.DeleteThreshold.V}
		for _, k := range t.PrimaryKey {
			def.PrimaryKey = append(def.PrimaryKey, k.V)
		}
		for _, c := range t.Columns.Items {
			def.Columns[c.Key] = c.Value.V
		}
		out = append(out, def)
	}
	return out
}

// openDestinations prepares every destination the spec needs, before any
// request: a missing credential or a locked database stops the run early.
func openDestinations(ctx context.Context, f *spec.File, cfg *Config, opts RunOptions, pool *fetch.Pool) (*destinations, error) {
	d := &destinations{f: f, log: opts.Logger, some: len(opts.Streams) > 0, produced: opts.Streams}
	inst, err := sourceInstance(f, cfg)
	if err != nil {
		return nil, err
	}
	if len(f.Tables.Items) > 0 {
		dest := opts.Dest
		if dest == "" {
			dest = DefaultDest
		}
		db, err := table.Open(ctx, dest, table.Options{Schema: f.Name.V, Tables: tableDefs(f), Logger: opts.Logger, Now: opts.Now})
		if errors.Is(err, table.ErrBadDestination) {
			return nil, &UsageError{Err: fmt.Errorf("--dest %s: %w", redactDSN(dest), err)}
		}
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", redactDSN(dest), err)
		}
		if err := db.Lock(ctx, fmt.Sprintf("ferry run %s (pid %d)", f.Path, os.Getpid())); err != nil {
			db.Close()
			return nil, fmt.Errorf("destination %s: %w", redactDSN(dest), err)
		}
		d.tables, d.batch, d.pending = db, db.BatchRows(), map[partKey][]sink.Row{}
		d.defs, d.redact = map[string]table.Table{}, pool.Redact
		for _, t := range tableDefs(f) {
			d.defs[t.Name] = t
		}
		// Before anything of the destination changes (a full refresh of
		// some streams clears theirs).
		st, err := db.State(ctx)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("destination %s: read state: %w", redactDSN(dest), err)
		}
		claim, err := checkInstance(f, st, inst, opts.FullRefresh, opts.Streams)
		if err != nil {
			d.close()
			return nil, err
		}
		if claim {
			if _, ok := st[instanceKey]; ok {
				d.log.Warn("full refresh: the destination held another source instance's state; it starts over for this run's", "instance", instanceInputs(f))
			}
			// Committed with the run's first rows, or at its end.
			d.cps = append(d.cps, instanceCheckpoint(inst))
		}
		switch {
		case opts.FullRefresh && len(opts.Streams) > 0:
			// Only the streams asked for start afresh: the others keep
			// their cursors and checkpoints (discarded, the next run would
			// read them all again from their initial cursors, and append
			// their rows again). The sync goes on, and so do the others'
			// tables' generations; those of the tables these streams feed
			// end, so that a row the refresh no longer reads is marked
			// deleted, though an earlier run of the sync wrote it.
			keys, err := refreshedKeys(ctx, db, opts.Streams)
			if err == nil {
				err = db.Refresh(ctx, keys, refreshedTables(f, opts.Streams))
			}
			if err != nil {
				d.close()
				return nil, fmt.Errorf("destination: full refresh: %w", err)
			}
		case opts.FullRefresh:
			// Everything but the credentials a server rotated: without them
			// the next request could not authenticate.
			// The instance stays until the run commits its own (above): a
			// run stopped before that leaves the destination the old
			// instance's still.
			if err := db.Restart(ctx, func(stream string) bool { return stream == authStateStream || stream == instanceKey }); err != nil {
				d.close()
				return nil, fmt.Errorf("destination: full refresh: %w", err)
			}
		}
	}
	if f.Port != nil && len(f.Port.Entities) > 0 {
		po := opts.Port
		if po.ClientID == "" || po.ClientSecret == "" {
			d.close()
			return nil, &UsageError{Err: ErrNoPortCredentials}
		}
		ps, err := newPortSink(f, cfg, po, pool, opts.Logger)
		if err != nil {
			d.close()
			return nil, err
		}
		if err := ps.EnsureBlueprints(ctx, f.Blueprints()); err != nil {
			d.close()
			return nil, fmt.Errorf("port: blueprints: %w", err)
		}
		d.port = ps
		if d.tables != nil {
			d.portCursors = runner.PortCursors(f)
		}
	}
	return d, nil
}

// newPortSink makes the Port sink of a run (or a plan) of f: the owner
// from the config, the spec's relation policies and delete threshold.
func newPortSink(f *spec.File, cfg *Config, po PortOptions, pool *fetch.Pool, log *slog.Logger) (*port.Sink, error) {
	owner, err := PortOwner(&Spec{f: f}, cfg)
	if err != nil {
		return nil, err
	}
	log.Info("port owner", "owner", owner)
	policy, policies := relationPolicies(f)
	ps, err := port.New(port.Config{Pool: pool, BaseURL: po.BaseURL, ClientID: po.ClientID, ClientSecret: po.ClientSecret,
		Owner: owner, AdoptOwners: po.AdoptOwners, AdoptUnowned: po.AdoptUnowned,
		NoDelete: po.NoDelete, DeleteThreshold: f.Port.DeleteThreshold.V, Logger: log,
		RelationPolicy: policy, RelationPolicies: policies})
	if err != nil {
		return nil, fmt.Errorf("port: %w", err)
	}
	return ps, nil
}

// PortOwner is the ferryOwner value a run of sp with cfg marks its Port
// entities with: the spec's name, "/", and the owner key. The key is
// port.owner rendered with the config, as written, when the spec declares
// it; otherwise the values of the spec's required, non-secret config
// inputs, in spec order, each path-escaped and joined by "/" (so no two
// configs share a key). A spec with neither owns as its name alone. A key
// holding a secret input's value is refused: Port would show it.
func PortOwner(sp *Spec, cfg *Config) (string, error) {
	f := sp.f
	key, err := ownerKey(f, cfg)
	if err != nil {
		return "", err
	}
	for _, s := range cfg.Secrets {
		if s != "" && strings.Contains(key, s) {
			return "", &ConfigError{Problems: []string{"port.owner: the owner key would hold the value of a secret input; Port shows it on every entity"}}
		}
	}
	if name := urlPasswordIn(f, cfg, key); name != "" {
		// A base URL's password is a credential though its input is not
		// marked secret (fetch redacts it from every URL it shows).
		return "", &ConfigError{Problems: []string{fmt.Sprintf("port.owner: the owner key would hold the password in input %s's URL; Port shows it on every entity: "+
			"mark %s secret: true, or declare port.owner without it", name, name)}}
	}
	if key == "" {
		return f.Name.V, nil
	}
	return f.Name.V + "/" + key, nil
}

// urlPasswordIn names the config input whose value is a URL with a
// password that key holds (as written, escaped, or decoded); "" for none.
// A password under 4 characters counts only as the URL's userinfo
// (":pw@"): alone it may be any part of the key.
func urlPasswordIn(f *spec.File, cfg *Config, key string) string {
	for _, it := range f.Config.Items {
		v, ok := cfg.Values[it.Key].(string)
		if !ok {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.User == nil {
			continue
		}
		pw, set := u.User.Password()
		if !set || pw == "" {
			continue
		}
		_, written, _ := strings.Cut(u.User.String(), ":")
		for _, form := range []string{pw, written, url.PathEscape(pw), url.QueryEscape(pw), url.PathEscape(written)} {
			if strings.Contains(key, ":"+form+"@") || len(form) >= 4 && strings.Contains(key, form) {
				return it.Key
			}
		}
	}
	return ""
}

// sourceInstance tells the instance of the source a run of f with cfg
// reads: port.owner rendered when the spec declares it, else the values
// of its required non-secret inputs but those only http.base_url reads
// (the API's address: a proxy, a region, the --demo simulator move it,
// not whose data it is). Port's owner key (ownerKey) keeps those: the
// owners of entities already written do not change. Hashed: it is kept
// in the destination's state, where a secret's value must not be.
func sourceInstance(f *spec.File, cfg *Config) (string, error) {
	key, err := keyOf(f, cfg, f.AddressInputs())
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(f.Name.V + "/" + key))
	return hex.EncodeToString(sum[:8]), nil
}

// checkInstance refuses a run of instance inst (sourceInstance) into a
// destination whose state st another instance wrote (instanceKey): its
// incremental cursors would make the run skip its own records before
// them; resumed, that instance's unfinished sync would go on from its
// pages (a saved next link is a URL of the first), the run's before them
// never read; and the run's replace tables, complete, would mark deleted
// every row of the other's, which its source still holds. All of it exit
// 0. A full refresh (without --streams, which keeps the other streams'
// state) starts the destination over for the run's instance. claim tells
// the run to keep its instance there: the destination had none (a new
// one, or one written before instances were kept), or is refreshed.
func checkInstance(f *spec.File, st map[string]map[string]json.RawMessage, inst string, fullRefresh bool, streams []string) (claim bool, err error) {
	raw, ok := st[instanceKey][""]
	if !ok {
		return true, nil
	}
	var saved instanceState
	if err := json.Unmarshal(raw, &saved); err != nil {
		return false, fmt.Errorf("destination: state %s: %w", instanceKey, err)
	}
	switch {
	case saved.Instance == inst:
		return false, nil
	case fullRefresh && len(streams) == 0:
		return true, nil
	}
	return false, &ConfigError{Problems: []string{fmt.Sprintf("the destination holds the state of another source instance than this run's "+
		"(what tells them apart: %s): its cursors would make this run skip its own records before them, its unfinished sync would go on from that instance's pages, "+
		"and the rows of the replace tables this run did not read would be marked deleted. "+
		"Run with that instance's config, give this one a destination of its own (--dest), "+
		"or run with --full-refresh (without --streams) to start this destination over for this instance (its rows replace the other's)", instanceInputs(f))}}
}

// instanceCheckpoint is the state entry keeping the instance inst.
func instanceCheckpoint(inst string) sink.Checkpoint {
	val, _ := json.Marshal(instanceState{Instance: inst}) // a struct of a string
	return sink.Checkpoint{Stream: instanceKey, Value: val}
}

// instanceInputs says what tells a spec's source instances apart, for
// messages: port.owner, or its required non-secret inputs but the
// address's (see sourceInstance).
func instanceInputs(f *spec.File) string {
	if f.Port != nil && f.Port.Owner.Template() != nil {
		return "port.owner " + f.Port.Owner.V
	}
	addr := f.AddressInputs()
	var names []string
	for _, it := range f.Config.Items {
		if it.Value.Required.V && !it.Value.Secret.V && !slices.Contains(addr, it.Key) {
			names = append(names, it.Key)
		}
	}
	if len(names) == 0 {
		return "no inputs"
	}
	return "config " + strings.Join(names, ", ")
}

// ownerKey is PortOwner's owner key, "" for none, unchecked for secrets.
func ownerKey(f *spec.File, cfg *Config) (string, error) { return keyOf(f, cfg, nil) }

// keyOf is port.owner rendered, or the values of the required non-secret
// inputs but skip's, path-escaped and joined by "/"; "" for none.
func keyOf(f *spec.File, cfg *Config, skip []string) (string, error) {
	var key string
	if f.Port != nil && f.Port.Owner.Template() != nil {
		v, err := f.Port.Owner.Template().RenderString(map[string]any{spec.VarConfig: cfg.Values})
		if err != nil {
			// The message may quote the value it failed on, a secret's too.
			red := fetch.NewPool(fetch.Options{Secrets: cfg.Secrets})
			return "", &ConfigError{Problems: []string{red.Redact(fmt.Sprintf("port.owner: %v", err))}}
		}
		if strings.TrimSpace(v) == "" {
			return "", &ConfigError{Problems: []string{fmt.Sprintf("port.owner %q renders empty: the owner key must tell this source from others", f.Port.Owner.V)}}
		}
		key = v
	} else {
		var parts []string
		for _, it := range f.Config.Items {
			if it.Value.Required.V && !it.Value.Secret.V && !slices.Contains(skip, it.Key) {
				parts = append(parts, url.PathEscape(fmt.Sprint(cfg.Values[it.Key])))
			}
		}
		key = strings.Join(parts, "/")
	}
	return key, nil
}

// RedactDest is dest with every credential hidden (see redactDSN), for
// showing a destination anywhere.
func RedactDest(dest string) string { return redactDSN(dest) }

// relationPolicies reads the spec's missing_relations: the default, and
// the per-relation ones keyed "blueprint.relation" (validation refused two
// mappings disagreeing on one).
func relationPolicies(f *spec.File) (port.RelationPolicy, map[string]port.RelationPolicy) {
	per := map[string]port.RelationPolicy{}
	for _, e := range f.Port.Entities {
		for _, it := range e.MissingRelations.Items {
			per[e.Blueprint.V+"."+it.Key] = port.RelationPolicy(it.Value.V)
		}
	}
	return port.RelationPolicy(f.Port.MissingRelations.V), per
}

// redactDSN hides every credential of a destination: the password of the
// URL's userinfo, and the value of every query parameter — or, outside a
// URL, every keyword=value pair — whose name says it holds one (password,
// sslpassword, …; matched after percent-decoding, in any case). A URL that
// does not parse is masked conservatively: everything from the first ":"
// of the userinfo to the last "@" goes, which may hide more than the
// password but never less.
func redactDSN(dsn string) string {
	scheme := strings.Index(dsn, "://")
	if scheme < 0 {
		return credentialKV.ReplaceAllString(dsn, "${1}"+redacted)
	}
	head, rest := dsn[:scheme+3], dsn[scheme+3:]
	if u, err := url.Parse(dsn); err == nil && u.Opaque == "" {
		// Go splits the authority at its last "@" and at the first "/",
		// "?" or "#": cut the raw text at the same places.
		authority := rest
		if i := strings.IndexAny(authority, "/?#"); i >= 0 {
			authority = authority[:i]
		}
		tail := rest[len(authority):]
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			if user, _, ok := strings.Cut(authority[:at], ":"); ok {
				authority = user + ":" + redacted + authority[at:]
			}
		}
		path, query, hasQuery := strings.Cut(tail, "?")
		if !hasQuery {
			return head + authority + tail
		}
		query, frag, hasFrag := strings.Cut(query, "#")
		out := head + authority + path + "?" + redactQuery(query)
		if hasFrag {
			out += "#" + frag
		}
		return out
	}
	// Unparseable: the password may hold "/", "?" or "@", so the userinfo
	// is taken to end at the last "@" of all.
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, ok := strings.Cut(rest[:at], ":"); ok {
			rest = user + ":" + redacted + rest[at:]
		}
	}
	if path, query, ok := strings.Cut(rest, "?"); ok {
		rest = path + "?" + redactQuery(query)
	}
	return head + rest
}

const redacted = "REDACTED"

// credentialKV finds keyword=value pairs whose keyword names a credential,
// as in libpq's "host=h password=secret" form; a value may be quoted.
var credentialKV = regexp.MustCompile(`(?i)(\b[\w.%-]*(?:pass|pwd|secret|token)[\w.%-]*\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)

// redactQuery masks the value of every credential parameter of a raw query.
func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		if name, err := url.QueryUnescape(k); err == nil && isCredential(name) || err != nil && isCredential(k) {
			parts[i] = k + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}

// isCredential tells a parameter that carries a secret by its name.
func isCredential(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"pass", "pwd", "secret", "token"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// state returns the checkpoints of an unfinished sync (a run that was
// interrupted or had failures), to resume from. A sync that began more
// than resumeWithin ago is not resumed: the run starts a new one (keeping
// incremental cursors), so that one failing request cannot keep every
// other stream's data old for ever.
func (d *destinations) state(ctx context.Context, now time.Time, resumeWithin time.Duration) (map[string]map[string]json.RawMessage, error) {
	if d.tables == nil {
		return nil, nil
	}
	st, err := d.tables.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination: read state: %w", err)
	}
	// Page checkpoints mean an unfinished sync; incremental cursors
	// ("<stream>@cursor") are kept across syncs and do not.
	for stream := range st {
		if isPageState(stream) {
			d.resuming = true
		}
	}
	if d.resuming {
		var sy syncState
		_ = json.Unmarshal(st[syncKey][""], &sy)
		if age := now.Sub(sy.Started); sy.Started.IsZero() || resumeWithin > 0 && age > resumeWithin {
			d.log.Warn("not resuming: the unfinished sync is too old; starting a new one", "started", sy.Started, "resume_within", resumeWithin)
			if err := d.tables.Restart(ctx, func(stream string) bool { return !isPageState(stream) }); err != nil {
				return nil, fmt.Errorf("destination: restart: %w", err)
			}
			d.resuming = false
			return d.state(ctx, now, resumeWithin)
		}
		d.sync = sy
		if err := d.keepKeyTypes(ctx); err != nil {
			return nil, err
		}
		if d.some {
			if err := d.beginParts(ctx, st); err != nil {
				return nil, err
			}
		}
		d.saved, d.keySeq, d.entries = d.readKeys(st)
		return st, nil
	}
	d.sync = syncState{Started: now.UTC()}
	if err := d.keepKeyTypes(ctx); err != nil {
		return nil, err
	}
	val, err := json.Marshal(d.sync)
	if err != nil {
		return nil, err
	}
	// Committed with the sync's first rows.
	d.cps = append(d.cps, sink.Checkpoint{Stream: syncKey, Value: val})
	return st, nil
}

// keepKeyTypes fills the sync's key types (syncState.Keys) with the
// destination's for the tables it has none for (a new sync's, a table the
// spec added since); the rest keep those the sync began with, but for a
// column the destination now keys coarser (runner.KeyTypeOf: a table made
// anew). A resumed run that changed some commits the entry with its first
// rows.
func (d *destinations) keepKeyTypes(ctx context.Context) error {
	cur, err := d.tables.KeyTypes(ctx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	added := false
	for name, types := range cur {
		if saved, ok := d.sync.Keys[name]; ok && len(saved) == len(types) {
			keep := make([]string, len(types))
			for i := range types {
				keep[i] = runner.KeyTypeOf(saved[i], types[i])
			}
			if slices.Equal(keep, saved) {
				continue
			}
			types = keep
		}
		if d.sync.Keys == nil {
			d.sync.Keys = map[string][]string{}
		}
		d.sync.Keys[name], added = types, true
	}
	if added && d.resuming {
		val, err := json.Marshal(d.sync)
		if err != nil {
			return err
		}
		d.cps = append(d.cps, sink.Checkpoint{Stream: syncKey, Value: val})
	}
	return nil
}

// KeyTypes are the types the run's duplicate check keys each table's
// primary-key columns by (runner.Options.KeyTypes).
func (d *destinations) KeyTypes() map[string][]string { return d.sync.Keys }

// beginParts readies a --streams run in an unfinished sync: the
// streams it produces whose part of the sync an earlier --streams run
// ended (syncState.Parts) are read anew, their checkpoints and saved keys
// discarded (cursors stay).
func (d *destinations) beginParts(ctx context.Context, st map[string]map[string]json.RawMessage) error {
	again := slices.DeleteFunc(slices.Clone(d.sync.Parts), func(s string) bool { return !slices.Contains(d.produced, s) })
	var drop []string
	if len(again) == 0 {
		return nil
	}
	for key := range st {
		if key != syncKey && isPageState(key) && slices.Contains(again, stateStream(key)) {
			drop = append(drop, key)
		}
	}
	slices.Sort(drop)
	if len(drop) > 0 {
		if err := d.tables.ClearState(ctx, drop); err != nil {
			return fmt.Errorf("destination: begin the part of %s anew: %w", strings.Join(again, ", "), err)
		}
		for _, key := range drop {
			delete(st, key)
		}
	}
	d.sync.Parts = slices.DeleteFunc(d.sync.Parts, func(s string) bool { return slices.Contains(again, s) })
	return d.saveSync(ctx)
}

// saveSync writes the sync's entry as it now is.
func (d *destinations) saveSync(ctx context.Context) error {
	val, err := json.Marshal(d.sync)
	if err != nil {
		return err
	}
	if err := d.tables.Write(ctx, nil, []sink.Checkpoint{{Stream: syncKey, Value: val}}); err != nil {
		return fmt.Errorf("destination: save the sync: %w", err)
	}
	return nil
}

// unreadBlueprints names the blueprints some stream feeding them ran and
// did not complete (a failed chain, its own or an ancestor's; a request a
// rule skipped) or one of whose records failed its mapping to them, with
// why: their entities the run did not write may still be in the source.
// A stream not run (--streams, a false `when`) is not counted: its
// blueprint is not read by this spec's runs so configured.
func unreadBlueprints(f *spec.File, sum *runner.Summary) map[string]string {
	// ran: fetched in this run. A stream --streams did not need is not in
	// the summary at all (nor in Complete), and counts as not run.
	ran := map[string]bool{}
	for _, s := range sum.Streams {
		ran[s.Stream] = s.SkipReason == ""
	}
	out := map[string]string{}
	if f.Port == nil {
		return out
	}
	for _, e := range f.Port.Entities {
		from := e.From.V
		if ran[from] && !sum.Complete[from] && out[e.Blueprint.V] == "" {
			out[e.Blueprint.V] = fmt.Sprintf("stream %s, which feeds blueprint %s, did not complete", from, e.Blueprint.V)
		}
	}
	// A record that failed its mapping to the blueprint is in the source
	// too, its entity unwritten: stubbed, the run that writes it once fixed
	// would find a stub that is no one's.
	for _, x := range sum.Failures {
		if x.Blueprint != "" && out[x.Blueprint] == "" {
			out[x.Blueprint] = fmt.Sprintf("a record of stream %s failed its mapping to blueprint %s", x.Stream, x.Blueprint)
		}
	}
	return out
}

// stateStream is the stream a state key belongs to: "<stream>" or
// "<stream>@<kind>"; "" for the run's own keys (@sync, @auth).
func stateStream(key string) string {
	name, _, _ := strings.Cut(key, "@")
	return name
}

// refreshedTables lists the tables whose sync generations a full refresh
// of only these streams ends: those fed by them alone. A table fed by
// several streams, only some refreshed, keeps its generation: ended, the
// rows the others wrote earlier in the sync, not read again, would be
// marked deleted when the sync reconciles it.
func refreshedTables(f *spec.File, streams []string) []string {
	var tables []string
	for _, it := range f.Tables.Items {
		if !slices.ContainsFunc(it.Value.Streams(), func(s string) bool { return !slices.Contains(streams, s) }) {
			tables = append(tables, it.Key)
		}
	}
	return tables
}

// refreshedKeys lists the state keys a full refresh of only these
// streams discards: their checkpoints, cursors and saved keys.
func refreshedKeys(ctx context.Context, db *table.DB, streams []string) ([]string, error) {
	st, err := db.State(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for key := range st {
		if slices.Contains(streams, stateStream(key)) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out, nil
}

// isPageState tells the state of a sync in progress (page checkpoints and
// the sync's date) from what outlives syncs: incremental cursors, rotated
// credentials and the destination's instance.
func isPageState(stream string) bool {
	return !strings.HasSuffix(stream, runner.WatermarkSuffix) && stream != authStateStream && stream != instanceKey
}

func (d *destinations) Row(ctx context.Context, r sink.Row) error {
	if d.tables == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := partKey{r.Stream, r.Partition}
	if d.heldBack(r) {
		d.dropped++
		return nil
	}
	d.pending[k] = append(d.pending[k], r)
	return nil
}

// Checkpoint makes the partition's pending rows ready with it, and commits
// when a batch is full or the checkpoint asks to be flushed.
func (d *destinations) Checkpoint(ctx context.Context, cp sink.Checkpoint) error {
	if d.tables == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := partKey{cp.Stream, cp.Partition}
	if d.blockedCheckpoint(cp) {
		// Its rows are written but those held back (some came before the
		// partition was blocked); the checkpoint is not, even a Flush one:
		// its value is opaque here, and one past the refused row would
		// lose it. An export job's is never dropped so: it is committed
		// when the job is made, before the partition has rows to refuse.
		for _, r := range d.pending[k] {
			if d.heldBack(r) {
				d.dropped++
			} else {
				d.rows = append(d.rows, r)
			}
		}
		delete(d.pending, k)
		if len(d.rows) >= d.batch {
			return d.flushLocked(ctx)
		}
		return nil
	}
	if _, ok := d.portCursors[cp.Stream]; ok {
		// A cursor has no rows of its own: nothing pending waits for it.
		setCheckpoint(&d.held, &d.heldAt, k, cp)
		return nil
	}
	switch {
	case cp.Fresh:
		d.dropKeys(k)
	case cp.Replaced:
		d.retireKeys(k)
	}
	d.addKeys(k, d.pending[k])
	d.addHashes(k, runner.ListedTable, cp.Listed)
	d.addHashes(k, runner.AppendedTable, cp.Appended)
	d.rows = append(d.rows, d.pending[k]...)
	delete(d.pending, k)
	setCheckpoint(&d.cps, &d.cpAt, k, cp)
	// Checkpoints count too: chains of few rows (a fan-out over thousands
	// of parents) must not pile them up in memory.
	if len(d.rows) >= d.batch || len(d.cps) >= d.batch || cp.Flush {
		return d.flushLocked(ctx)
	}
	return nil
}

// setCheckpoint puts cp into cps, replacing the one of its partition k
// (at says where each partition's is): only the latest counts.
func setCheckpoint(cps *[]sink.Checkpoint, at *map[partKey]int, k partKey, cp sink.Checkpoint) {
	if i, ok := (*at)[k]; ok {
		(*cps)[i] = cp
		return
	}
	if *at == nil {
		*at = map[partKey]int{}
	}
	(*at)[k] = len(*cps)
	*cps = append(*cps, cp)
}

func (d *destinations) flushLocked(ctx context.Context) error {
	if len(d.rows) == 0 && len(d.cps) == 0 {
		return nil
	}
	cps, entries, err := d.withKeys()
	if err == nil {
		err = d.tables.Write(ctx, d.rows, cps)
	}
	if errors.Is(err, table.ErrRefused) {
		// Only now, after a failure, is the batch probed.
		entries, err = d.writeAround(ctx, err)
	}
	if err != nil {
		return fmt.Errorf("write tables: %w", err)
	}
	d.keySeq += entries
	for _, e := range d.written {
		if d.entries == nil {
			d.entries = map[partKey][]string{}
		}
		d.entries[e.part] = append(d.entries[e.part], e.name)
	}
	if d.committed != nil {
		d.committed(d.rows)
	}
	// Drop the references: rows and states can go before the next batch fills.
	clear(d.rows)
	clear(d.cps)
	d.rows, d.cps = d.rows[:0], d.cps[:0]
	clear(d.cpAt)
	clear(d.keys)
	return nil
}

// onCommit sets what is told the rows of every successful commit.
func (d *destinations) onCommit(f func(rows []sink.Row)) {
	d.mu.Lock()
	d.committed = f
	d.mu.Unlock()
}

func (d *destinations) Entity(ctx context.Context, e sink.Entity) error {
	if d.port == nil {
		return nil
	}
	return d.port.Write(ctx, e)
}

// Report is what the destinations did, for the run summary.
type Report struct {
	Tables map[string]int // table -> rows marked deleted (replace mode)
	// Unchanged counts, per table, the rows identical to the stored ones,
	// not rewritten (upsert tables).
	Unchanged map[string]int64
	// Finished are the tables whose sync this run ended (FinishRun
	// committed): only those had their unseen rows marked. A run with
	// failures, refused rows or a failed FinishRun ends none.
	Finished map[string]bool
	// SkippedDeletes are the replace tables whose sync ended without
	// marking their unseen rows: more than the table's delete_threshold
	// of its live rows would have been. Not reconciled; the run still
	// succeeds, as a Port deletion skipped over its threshold does.
	SkippedDeletes map[string]table.SkippedDelete
	Port           *port.Report
}

// finish writes what is buffered and completes the targets. Every
// declared table exists afterwards. A run without failures ends its sync:
// replace tables whose feeding streams all completed have their unseen
// rows marked deleted, and the checkpoints are cleared, in one
// transaction. A run with failures (or interrupted) leaves its checkpoints:
// the next run resumes, fetching only what failed or was not reached.
// Port deletes stale owned entities of the blueprints the summary calls
// complete, never after an interrupt or in a resumed run.
func (d *destinations) finish(ctx context.Context, sum *runner.Summary, runErr error) (*Report, error) {
	rep := &Report{Tables: map[string]int{}, Finished: map[string]bool{}}
	fatal := runErr != nil && !isRunError(runErr)
	var errs []error
	tablesOK := false // every row and checkpoint given is committed
	if d.tables != nil {
		d.mu.Lock()
		// Rows of a page whose checkpoint never came: a resumed run fetches
		// that page again, so they are not written now (an append table
		// would get them twice).
		dropped := 0
		for k, rows := range d.pending {
			dropped += len(rows)
			delete(d.pending, k)
		}
		err := d.flushLocked(ctx)
		d.mu.Unlock()
		if dropped > 0 && !fatal {
			d.log.Warn("rows of unfinished pages not written; the next run fetches them again", "rows", dropped)
		}
		if len(d.refused) > 0 {
			d.log.Warn("rows refused by the database: their partitions' checkpoints are kept; the next run reads those partitions again", "refused", len(d.refused), "append_rows_held_back", d.dropped)
		}
		if err != nil {
			errs = append(errs, err)
		}
		tablesOK = err == nil
		if dropped > 0 && runErr == nil && err == nil {
			// Every page the runner gives rows for ends with a checkpoint;
			// ending the sync now would clear the checkpoints that make
			// the next run fetch these rows.
			err = fmt.Errorf("%d rows came without their page's checkpoint: not written; the checkpoints are kept for the next run", dropped)
			errs = append(errs, err)
		}
		rep.Unchanged = d.tables.Unchanged()
		if eerr := d.tables.EnsureTables(ctx); eerr != nil {
			errs = append(errs, fmt.Errorf("create empty tables: %w", eerr))
		}
		switch {
		case runErr == nil && err == nil && len(d.refused) == 0:
			// A refused row keeps the sync open: its partition's
			// checkpoint (kept) makes the next run read it again.
			clear := ranStreams(sum, d.produced)
			tables := sum.Tables
			switch {
			case !d.some:
				// The whole sync is done; a --streams run ends only its part.
				clear = append(clear, syncKey)
				tables = d.partsEnded(sum.Tables)
			default:
				// Its part of the sync, which stays open: its checkpoints
				// stay, so the run resuming the sync does not read these
				// streams again (their append tables would get their rows
				// twice); a later --streams run of one of them begins its
				// part anew (beginParts).
				for _, sn := range sum.Streams {
					if slices.Contains(d.produced, sn.Stream) && !slices.Contains(d.sync.Parts, sn.Stream) {
						d.sync.Parts = append(d.sync.Parts, sn.Stream)
					}
				}
				for _, t := range slices.Sorted(maps.Keys(sum.Tables)) {
					if !slices.Contains(d.sync.Ended, t) {
						d.sync.Ended = append(d.sync.Ended, t)
					}
				}
				// Saved or not (an error is reported), the checkpoints
				// stay: cleared with no part recorded, the sync would read
				// these streams again. Not saved, the run resuming the
				// sync reads them no more (their chains are done) yet
				// reconciles their tables: their generations stay open,
				// holding these rows, rather than end here.
				if serr := d.saveSync(ctx); serr != nil {
					errs = append(errs, serr)
					tables = nil
				}
				clear = nil
			}
			marked, ferr := d.tables.FinishRun(ctx, tables, clear)
			if ferr != nil {
				errs = append(errs, fmt.Errorf("finish tables: %w", ferr))
				break
			}
			for k, n := range marked {
				rep.Tables[k] = n
			}
			rep.SkippedDeletes = d.tables.SkippedDeletes()
			for k := range tables {
				rep.Finished[k] = true
			}
		case !fatal:
			d.log.Info("checkpoints kept: the next run resumes, fetching only what failed or was not reached (--full-refresh reads everything)")
		}
	}
	if d.port != nil && !fatal {
		if d.resuming {
			// Reported per blueprint that keeps stale entities, so none of
			// them is said to be reconciled.
			d.port.KeepStale("a resumed run deletes no stale entity (a run of a new sync does)")
		}
		complete := map[string]bool{}
		for bp, ok := range sum.Blueprints {
			complete[bp] = ok
		}
		d.port.UnreadTargets(unreadBlueprints(d.f, sum))
		prep, err := d.port.Finish(ctx, complete)
		rep.Port = &prep
		if cerr := d.commitPortCursors(ctx, sum, &prep, err, tablesOK); cerr != nil {
			errs = append(errs, cerr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "port: ") {
				err = fmt.Errorf("port: %w", err)
			}
			errs = append(errs, err)
		}
	}
	if len(d.held) > 0 && fatal {
		d.log.Warn("cursors of streams feeding Port not advanced: the run ended before Port was sent its entities; the next run reads those records again", "cursors", len(d.held))
	}
	return rep, errors.Join(errs...)
}

// commitPortCursors commits the held cursors of the streams whose
// entities Port took: Finish reported none of their blueprints' failed,
// and its error, if any, is only the per-entity or reconciliation one
// (after any other error the report may not tell what was sent); none
// failed its mapping either (sum). A blueprint whose relation points to
// one with a failed entity counts as failed too: its entities were sent
// with that relation dropped, and only a re-read sends them again once
// the target is in; so does one relating to a blueprint fed by a chain
// that failed or was skipped (its entities were never produced). Cursors
// are committed after their rows, so only when every row is (tablesOK). The others stay where they were: the next run
// reads those records again and sends their entities, whether it resumes
// the sync or not.
func (d *destinations) commitPortCursors(ctx context.Context, sum *runner.Summary, prep *port.Report, finishErr error, tablesOK bool) error {
	if len(d.held) == 0 {
		return nil
	}
	trusted := tablesOK && (finishErr == nil || errors.Is(finishErr, port.ErrEntitiesFailed) || errors.Is(finishErr, port.ErrReconcileFailed))
	// short: blueprints Port may lack entities of. One of theirs failed
	// (in the run's mapping or in Port), or some of their records were
	// never read (a chain feeding them, or above one, failed or a rule
	// skipped it): a relation to one of those was dropped as missing.
	short := map[string]bool{}
	for bp, c := range prep.Blueprints {
		short[bp] = short[bp] || c.Failed > 0
	}
	if sum != nil {
		var unread []string
		for _, f := range sum.Failures {
			if f.Blueprint != "" {
				short[f.Blueprint] = true
			}
			if !f.Record() {
				unread = append(unread, f.Stream)
			}
		}
		for _, sk := range sum.Skips {
			unread = append(unread, sk.Stream)
		}
		if d.f != nil && d.f.Port != nil {
			for _, e := range d.f.Port.Entities {
				for _, s := range unread {
					if e.From.V == s || d.descends(e.From.V, s) {
						short[e.Blueprint.V] = true
					}
				}
			}
		}
	}
	whole := func(bp string) bool {
		if short[bp] {
			return false
		}
		if d.port == nil {
			return true
		}
		for _, t := range d.port.RelationTargets(bp) {
			if short[t] {
				return false
			}
		}
		return true
	}
	var commit []sink.Checkpoint
	kept := map[string]bool{}
	for _, cp := range d.held {
		// A cursor above a row refused after it was held stays too.
		ok := trusted && !d.blockedCheckpoint(cp)
		for _, bp := range d.portCursors[cp.Stream] {
			ok = ok && whole(bp)
		}
		if ok {
			commit = append(commit, cp)
		} else {
			kept[strings.TrimSuffix(cp.Stream, runner.WatermarkSuffix)] = true
		}
	}
	if len(kept) > 0 {
		d.log.Warn("cursors of streams feeding Port not advanced: Port did not take all of their entities, or took them with a relation to a failed one dropped; the next run reads those records again", "streams", slices.Sorted(maps.Keys(kept)))
	}
	if err := d.tables.Write(ctx, nil, commit); err != nil {
		return fmt.Errorf("write cursors of streams feeding Port: %w", err)
	}
	return nil
}

// partsEnded is tables, the tables the run resuming a sync reconciles,
// less those a --streams run of the sync reconciled (syncState.Ended)
// that are fed by a stream whose part is done (syncState.Parts): their
// generation ended with that run, and this run did not read such a stream
// again (a parent replayed for its children writes only a record changed
// since), so reconciled now, every row it wrote before would be taken for
// unseen and marked deleted (exit 0). That holds for one stream of
// several too: a later --streams run of another that began its part anew
// and failed leaves it to this run, whose generation holds that one's
// rows alone. Their generation, if this run began one, ends unreconciled.
// (A table of several streams that separate --streams runs read kept its
// generation open, and is reconciled.)
func (d *destinations) partsEnded(tables map[string]bool) map[string]bool {
	if len(d.sync.Ended) == 0 {
		return tables
	}
	out := maps.Clone(tables)
	for t := range out {
		if d.sync.partEnded(d.f, t) {
			out[t] = false
		}
	}
	return out
}

// partEnded tells a table a --streams run of the sync reconciled that a
// stream whose part is done feeds (see partsEnded): the run resuming the
// sync leaves it unreconciled. ferry plan asks it too.
func (sy syncState) partEnded(f *spec.File, table string) bool {
	t := f.Tables.Get(table)
	return t != nil && slices.Contains(sy.Ended, table) &&
		slices.ContainsFunc(t.Streams(), func(s string) bool { return slices.Contains(sy.Parts, s) })
}

// ranStreams names the streams this run fetched and produced (all, or
// those of --streams): only their checkpoints, and the keys they saved,
// are cleared. A --streams run leaves the others' for a resume, those of
// the streams it read only to drive its own too: it wrote none of their
// rows, so their checkpoints still say what the sync has written (cleared,
// the resumed run read them from the start and appended their committed
// pages again).
func ranStreams(sum *runner.Summary, produced []string) []string {
	if sum == nil {
		return nil
	}
	out := make([]string, 0, 2*len(sum.Streams))
	for _, sn := range sum.Streams {
		if len(produced) > 0 && !slices.Contains(produced, sn.Stream) {
			continue
		}
		out = append(out, sn.Stream, sn.Stream+keysSuffix)
	}
	return out
}

func isRunError(err error) bool {
	var re *runner.RunError
	return errors.As(err, &re)
}

func (d *destinations) close() {
	if d.port != nil {
		if err := d.port.Close(); err != nil {
			d.log.Warn("close Port spool", "error", err)
		}
	}
	if d.tables != nil {
		if err := d.tables.Close(); err != nil {
			d.log.Warn("close destination", "error", err)
		}
	}
}

// writeAround writes the batch without the rows the database refuses,
// after its write failed with werr (table.ErrRefused): each such row is
// found (table.FindRefused: log2 of the batch in rolled-back trials),
// reported as a failed record, and its partition blocked, its checkpoint
// and its rows of append tables taken out of the batch (and its keys, see
// withKeys); the rest is written. entries is the number of key entries
// written.
func (d *destinations) writeAround(ctx context.Context, werr error) (entries int, err error) {
	for {
		i, reason, err := d.tables.FindRefused(ctx, d.rows)
		if err != nil {
			return 0, err
		}
		if i < 0 {
			return 0, werr // not a row's fault: the run fails as it did
		}
		d.refuse(d.rows[i], reason)
		d.rows = slices.Delete(d.rows, i, i+1)
		d.rows = slices.DeleteFunc(d.rows, func(r sink.Row) bool {
			if d.heldBack(r) {
				d.dropped++
				return true
			}
			return false
		})
		d.cps = slices.DeleteFunc(d.cps, d.blockedCheckpoint)
		d.cpAt = map[partKey]int{}
		for j, cp := range d.cps {
			d.cpAt[partKey{cp.Stream, cp.Partition}] = j
		}
		cps, n, err := d.withKeys()
		if err != nil {
			return 0, err
		}
		werr = d.tables.Write(ctx, d.rows, cps)
		if !errors.Is(werr, table.ErrRefused) {
			return n, werr
		}
	}
}

// heldBack tells a row not to write: one of an append table from a
// partition a refused row blocked. The next run reads the partition again
// and writes it then; written now, it would be there twice. A row of any
// other table is written: the next run's writes it over.
func (d *destinations) heldBack(r sink.Row) bool {
	return d.blocked[partKey{r.Stream, r.Partition}] && d.defs[r.Table].Mode == table.ModeAppend
}

// refuse reports the row r, which the database refused with reason, as a
// failed record, and blocks its partition.
func (d *destinations) refuse(r sink.Row, reason error) {
	if d.blocked == nil {
		d.blocked = map[partKey]bool{}
	}
	d.blocked[partKey{r.Stream, r.Partition}] = true
	msg := reason.Error()
	if d.redact != nil {
		msg = d.redact(msg)
	}
	what := r.Stream + "[" + d.rowKey(r) + "]"
	parents := what
	if r.Partition != "" {
		parents = r.Partition + " > " + what
	}
	d.refused = append(d.refused, runner.Failure{Stream: r.Stream, Parents: parents, Table: r.Table,
		Err: fmt.Errorf("table %s: row refused by the database, not written; the next run reads its partition again: %s", r.Table, msg)})
	d.log.Warn("row refused by the database: its partition writes nothing more in this run", "stream", r.Stream, "partition", r.Partition, "table", r.Table, "row", d.rowKey(r), "error", msg)
}

// rowKey names a row in messages: its primary key's values, or for a
// table without one the first of its id, identifier, uuid or key fields.
// Long values are cut.
func (d *destinations) rowKey(r sink.Row) string {
	names := d.defs[r.Table].PrimaryKey
	if len(names) == 0 {
		for _, f := range []string{"id", "identifier", "uuid", "key"} {
			if _, ok := r.Data[f]; ok {
				names = []string{f}
				break
			}
		}
	}
	if len(names) == 0 {
		return "no key"
	}
	parts := make([]string, len(names))
	for i, k := range names {
		v := fmt.Sprint(r.Data[k])
		if s, ok := r.Data[k].(string); ok {
			if len(s) > 64 {
				s = strings.ToValidUTF8(s[:64], "") + "…"
			}
			v = strconv.Quote(s)
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, ",")
}

// blockedCheckpoint tells a checkpoint not to commit: that of a blocked
// partition, or an incremental cursor that covers one (its own stream's
// for that partition, or an ancestor's above it): a cursor moved past a
// refused row would make the next sync skip it.
func (d *destinations) blockedCheckpoint(cp sink.Checkpoint) bool {
	if len(d.blocked) == 0 {
		return false
	}
	if d.blocked[partKey{cp.Stream, cp.Partition}] {
		return true
	}
	if base, ok := strings.CutSuffix(cp.Stream, keysSuffix); ok {
		// A blocked partition's saved keys stay as its checkpoint does.
		i := strings.LastIndexByte(cp.Partition, '|')
		return i >= 0 && d.blocked[partKey{base, cp.Partition[:i]}]
	}
	base, ok := strings.CutSuffix(cp.Stream, runner.WatermarkSuffix)
	if !ok {
		return false
	}
	for k := range d.blocked {
		if k.stream == base && k.partition == cp.Partition {
			return true
		}
	}
	// A chain below the cursor's stream has a partition under the
	// cursor's (its for_each children, "P/base=…"), or the same one (a
	// batch stream's chain, "P" or "P#batchN"); the spec tells which
	// streams are below.
	for k := range d.blocked {
		if d.descends(k.stream, base) && (cp.Partition == "" || k.partition == cp.Partition ||
			strings.HasPrefix(k.partition, cp.Partition+"/") || strings.HasPrefix(k.partition, cp.Partition+"#")) {
			return true
		}
	}
	return false
}

// descends tells whether the records of stream s descend from those of
// stream base: base is above s through for_each or batch.
func (d *destinations) descends(s, base string) bool {
	if d.f == nil {
		return false
	}
	st := d.f.Stream(s)
	return st != nil && slices.ContainsFunc(st.Upstream(), func(x *spec.Stream) bool { return x.Name == base })
}

// addRefused adds the rows the database refused to the run's failures
// (sum's, and runErr's when it lists them) and returns the run's error:
// a run that had any fails.
func (d *destinations) addRefused(sum *runner.Summary, runErr error) error {
	if len(d.refused) == 0 {
		return runErr
	}
	if sum != nil {
		sum.Failures = append(sum.Failures, d.refused...)
		for _, f := range d.refused {
			for i := range sum.Streams {
				if sum.Streams[i].Stream == f.Stream {
					sum.Streams[i].Errors++
				}
			}
			if sum.Complete != nil {
				sum.Complete[f.Stream] = false
			}
			if sum.Tables != nil {
				sum.Tables[f.Table] = false
			}
		}
	}
	if re, ok := runErr.(*runner.RunError); ok {
		re.Failures = append(re.Failures, d.refused...)
		return re
	}
	if runErr != nil {
		// A fatal error stays the run's; the summary lists the records.
		return runErr
	}
	return &runner.RunError{Failures: slices.Clone(d.refused)}
}
