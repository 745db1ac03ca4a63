package engine

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ferry-etl/ferry/engine/cassette"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/spec"
)

// network is what is under a run's HTTP client: the real network, or a
// cassette being recorded or replayed.
type network struct {
	transport http.RoundTripper // nil: the pool's own per-host transports
	// wrap records through the pool's own transports, which carry the
	// spec's TLS settings (a recorder over a default transport would not).
	wrap      func(http.RoundTripper) http.RoundTripper
	rec       *cassette.Recorder
	replaying bool
	pool      *fetch.Pool // set once made: it knows the secrets fetched during the run
}

// newNetwork sets up --record or --replay. Both hold config secrets and
// URL values by name (see package cassette).
func newNetwork(f *spec.File, cfg *Config, opts RunOptions) (*network, error) {
	n := &network{transport: opts.Transport}
	if opts.Record == "" && opts.Replay == "" {
		return n, nil
	}
	if opts.Record != "" && opts.Replay != "" {
		return nil, usage("--record and --replay: give one")
	}
	vals := cassetteValues(f, cfg)
	vals.Known, vals.Params = n.secrets, n.secretParams
	if opts.Record != "" {
		n.rec = cassette.NewRecorder(opts.Record, opts.Transport, vals)
		if opts.Transport != nil {
			n.transport = n.rec
		} else {
			n.wrap = n.rec.Wrap
		}
		return n, nil
	}
	p, err := cassette.Open(opts.Replay, vals)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	n.transport, n.replaying = p, true
	return n, nil
}

func (n *network) secrets() []string {
	if n.pool == nil {
		return nil
	}
	return n.pool.Secrets()
}

func (n *network) secretParams() []string {
	if n.pool == nil {
		return nil
	}
	return n.pool.SecretParams()
}

// sleep is the pool's wait: none in a replay, where there is no server to
// spare and no rate to keep (a run's rate limit would only slow it down);
// the pool's clock jumps instead, so a recorded hold ends at once.
func (n *network) sleep(clock *poolClock) func(context.Context, time.Duration) error {
	if !n.replaying {
		return nil
	}
	return clock.skip
}

// save writes a recorded cassette; only a run that succeeded replaces it
// whole (see cassette.Recorder.Save).
func (n *network) save(opts RunOptions, runErr error) error {
	if n.rec == nil {
		return nil
	}
	st, err := n.rec.Save(runErr == nil)
	if err != nil {
		return err
	}
	opts.Logger.Info("cassette recorded", "dir", opts.Record, "exchanges", st.Exchanges, "files", st.Files, "removed", st.Removed)
	return nil
}

// cassetteValues names the config values a cassette must not hold as they
// are: secrets, and URLs (so a cassette replays against any base URL); and
// the headers of ferry's own random values (idempotency keys, AWS signatures).
func cassetteValues(f *spec.File, cfg *Config) cassette.Values {
	vals := cassette.Values{Secrets: map[string]string{}, URLs: map[string]string{}}
	for _, it := range f.Config.Items {
		v, ok := cfg.Values[it.Key]
		if !ok || v == nil {
			continue
		}
		s := fmt.Sprint(v)
		switch {
		case it.Value.Secret.V:
			vals.Secrets[it.Key] = s
		case cassette.IsURL(s):
			vals.URLs[it.Key] = s
		}
	}
	signed := f.HTTP.Auth != nil && f.HTTP.Auth.Type.V == "aws_sigv4"
	for _, it := range f.Streams.Items {
		if a := it.Value.Async; a != nil && a.Create.IdempotencyKey.V != "" {
			vals.Volatile = append(vals.Volatile, a.Create.IdempotencyKey.V)
		}
		if h := it.Value.HTTP; h != nil && h.Auth != nil && h.Auth.Type.V == "aws_sigv4" {
			signed = true
		}
	}
	if signed {
		// A signature is made anew for each request, at its time: held
		// as it is, it would never match a replay, and it is a credential
		// for its request until AWS's clock moves 5 minutes past it.
		vals.Volatile = append(vals.Volatile, "Authorization", "X-Amz-Date")
	}
	return vals
}
