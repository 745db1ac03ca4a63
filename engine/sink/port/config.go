package port

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/panics"
	"github.com/ferry-etl/ferry/engine/sink"
)

// RelationPolicy says what to do with a relation whose target entity is
// neither produced by this run nor already in Port.
type RelationPolicy string

const (
	// RelationDrop removes the missing target from the relation and logs a
	// warning; the entity is still written. The default.
	RelationDrop RelationPolicy = "drop"
	// RelationStub writes the entity with create_missing_related_entities=true,
	// so Port creates an empty stub target.
	RelationStub RelationPolicy = "stub"
	// RelationFail fails the entity (reported like a Port rejection).
	RelationFail RelationPolicy = "fail"
)

// OwnerProperty is the string property the sink adds to every blueprint it
// ensures and stamps on every entity it writes when Config.Owner is set.
// Reconciliation deletes only entities whose OwnerProperty equals Owner.
const OwnerProperty = "ferryOwner"

// Defaults.
const (
	DefaultBaseURL         = "https://api.port.io"
	DefaultConcurrency     = 4
	DefaultDeleteThreshold = sink.DefaultDeleteThreshold
	DefaultMaxAttempts     = 10
	maxBodyBytes           = 1 << 20 // Port's request body limit
	maxBulkEntities        = 20
	maxBulkDelete          = 100
	searchPageSize         = 1000
	lookupChunk            = 100
)

// Config configures a Sink.
type Config struct {
	BaseURL      string // default DefaultBaseURL; "/v1" is appended
	ClientID     string // required
	ClientSecret string // required; never logged

	Concurrency int // bulk requests in flight; default DefaultConcurrency

	// DeleteThreshold is the largest share (0..1] of a blueprint's owned
	// entities one run may delete; above it deletion is skipped with a
	// warning. Default DefaultDeleteThreshold.
	DeleteThreshold float64
	NoDelete        bool // never delete

	// Owner names the source instance that owns what this sink writes
	// (ferry's engine: the spec's name and owner key). Every entity is
	// marked with it; an entity Port holds under another owner, or under
	// none, is not overwritten but reported as a Conflict; only entities
	// of this owner are deleted. Empty disables the ownership property,
	// the check and therefore every deletion.
	Owner string
	// AdoptOwners are former owners (an owner key that changed) whose
	// entities this run takes over: produced ones are overwritten and
	// re-marked, stale ones deleted like Owner's own.
	AdoptOwners []string
	// AdoptUnowned lets the run overwrite, and mark as Owner's, entities
	// that have no owner (made by hand or by another tool). Unowned
	// entities the run does not produce are never deleted.
	AdoptUnowned bool

	// RelationPolicy is the default for missing relation targets (default
	// RelationDrop). RelationPolicies overrides it per "blueprint" or per
	// "blueprint.relation" (the more specific key wins).
	RelationPolicy   RelationPolicy
	RelationPolicies map[string]RelationPolicy

	Logger    *slog.Logger // default discard
	UserAgent string       // default "ferry"

	// Pool carries every request to Port (token, retries, Port's
	// rate-limit headers, redaction), so a run can share one pool between
	// its sources and Port. Default: a pool of the sink's own, made from
	// Logger, Now and Sleep.
	Pool *fetch.Pool

	// Now and Sleep are the clock (token expiry, rate-limit resets) and the
	// sleeper (rate-limit waits, backoff) of the default Pool; a given
	// Pool brings its own. Defaults: fetch's, time.Now and a timer that
	// honours ctx. Tests inject a fake pair.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	MaxAttempts int // per request, for 408/429/5xx/network errors; default DefaultMaxAttempts

	// SpoolDir is where the sink makes the temporary files that hold a
	// run's entities until they are sent (ferry-port-spool-*.sqlite and
	// *.data, *.origins); default os.TempDir(). Where the OS allows it the files are
	// unlinked as soon as they are open, so they never outlive the process.
	SpoolDir string
}

func (c Config) withDefaults() (Config, error) {
	if c.ClientID == "" || c.ClientSecret == "" {
		return c, errors.New("port: client id and client secret are required")
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimSuffix(strings.TrimSuffix(c.BaseURL, "/"), "/v1")
	if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return c, fmt.Errorf("port: base url %q: want http(s)://host", c.BaseURL)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.DeleteThreshold == 0 {
		c.DeleteThreshold = DefaultDeleteThreshold
	}
	if c.DeleteThreshold < 0 || c.DeleteThreshold > 1 {
		return c, fmt.Errorf("port: delete threshold %v: want a share in (0, 1]", c.DeleteThreshold)
	}
	for _, o := range c.AdoptOwners {
		if o == "" {
			return c, errors.New("port: an adopted owner is empty (entities without an owner are adopted with AdoptUnowned)")
		}
	}
	if c.Owner == "" && (len(c.AdoptOwners) > 0 || c.AdoptUnowned) {
		return c, errors.New("port: adopting entities needs an owner")
	}
	if c.RelationPolicy == "" {
		c.RelationPolicy = RelationDrop
	}
	for k, p := range c.RelationPolicies {
		if err := p.check(); err != nil {
			return c, fmt.Errorf("port: relation policy %q: %w", k, err)
		}
	}
	if err := c.RelationPolicy.check(); err != nil {
		return c, fmt.Errorf("port: relation policy: %w", err)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.UserAgent == "" {
		c.UserAgent = "ferry"
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	return c, nil
}

func (p RelationPolicy) check() error {
	switch p {
	case RelationDrop, RelationStub, RelationFail:
		return nil
	}
	return fmt.Errorf("unknown policy %q (want drop, stub or fail)", string(p))
}

// policy returns the policy for one relation of one blueprint.
func (c Config) policy(blueprint, relation string) RelationPolicy {
	if len(c.RelationPolicies) == 0 {
		return c.RelationPolicy // the usual case, without a key to build
	}
	if p, ok := c.RelationPolicies[blueprint+"."+relation]; ok {
		return p
	}
	if p, ok := c.RelationPolicies[blueprint]; ok {
		return p
	}
	return c.RelationPolicy
}

// Sink loads entities into Port. Create it with New; call EnsureBlueprints,
// then Write for every entity (from any goroutine), then Finish once (or
// Close, for a run that stops before). For a plan, call PlanBlueprints,
// Write, then Plan: nothing is written to Port.
type Sink struct {
	cfg Config
	log *slog.Logger
	api *apiClient

	mu      sync.Mutex
	bps     map[string]*Blueprint // as Port holds them (after EnsureBlueprints or a GET), or as a plan would make them
	absent  map[string]bool       // a plan's blueprints that Port does not hold yet
	spool   *spool                // the queued entities, opened by the first Write
	buf     []spooled             // entities not yet moved to the spool
	bufAt   map[entityKey]int     // index in buf of each key
	invalid []EntityError
	// invalidAt holds the keys (identifier set) that invalid has an entry
	// of: a later version of one replaces its failure (Write).
	invalidAt map[entityKey]bool
	origins   origins // the streams and parent chains of the queued entities
	keep      string  // KeepStale's reason: Finish deletes nothing
	// unread are the blueprints whose source streams did not all complete
	// (UnreadTargets), with why: a missing target of theirs is not stubbed.
	unread map[string]string

	// merging makes a merge (read the queued entity, merge, queue the
	// result) one step: two parts of one entity written at once must not
	// both merge into the same earlier one, the later losing the other.
	merging sync.Mutex

	// encoding holds *[]byte scratch buffers Write encodes an entity into
	// (then copied at its size): grown from nothing for each entity, the
	// encoding spent more on growing than on writing.
	encoding sync.Pool
}

// guard is f, run on a goroutine of its own, with a panic in it its
// error, redacted (see package panics), not the end of the process.
func (s *Sink) guard(f func() error) func() error { return panics.Guard(f, s.api.redact, s.log) }

// New validates cfg and returns a Sink. It does no I/O.
func New(cfg Config) (*Sink, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	api, err := newAPIClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Sink{
		cfg:     cfg,
		log:     cfg.Logger,
		api:     api,
		bps:     map[string]*Blueprint{},
		absent:  map[string]bool{},
		bufAt:   map[entityKey]int{},
		origins: origins{dir: cfg.SpoolDir},
	}, nil
}
