package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ferry-etl/ferry/engine/sink"
	"github.com/ferry-etl/ferry/engine/sink/table"
	"github.com/ferry-etl/ferry/engine/spec"
)

// authStateStream is the _ferry_state stream holding the credentials a
// server rotated (OAuth2 refresh tokens), one partition per client. It is
// no checkpoint: it outlives syncs, and neither --full-refresh, nor a
// restart, nor the end of a sync clears it.
const authStateStream = "@auth"

// credentials keeps rotated refresh tokens where the run's state lives:
// in the table destination's _ferry_state when the spec has tables (in a
// dry run too: a dry run that rotated a token and kept it elsewhere would
// leave the next real run with a used-up one), else in a state file
// beside the spec (Port-only specs). Values are secrets: never logged.
type credentials struct {
	mu     sync.Mutex
	db     *table.DB                                    // the destination's, once known
	openDB func(ctx context.Context) (*table.DB, error) // a dry run opens it only when a credential is needed
	ownDB  bool                                         // opened here: closed by close
	file   string                                       // the state file, without tables
	loaded map[string]string                            // the file's contents
	// memory, when set, is the store instead: a replayed run's tokens are
	// the cassette's placeholders, which must never replace a real
	// rotated token, and a real one must not be sent to a cassette.
	memory map[string]string
}

// newCredentials picks the store for a run of f.
func newCredentials(f *spec.File, opts RunOptions) *credentials {
	if opts.Replay != "" {
		return &credentials{memory: map[string]string{}}
	}
	c := &credentials{}
	if len(f.Tables.Items) == 0 {
		c.file = opts.StateFile
		if c.file == "" {
			c.file = DefaultStateFile(f)
		}
		return c
	}
	if opts.DryRun {
		dest := opts.Dest
		if dest == "" {
			dest = DefaultDest
		}
		c.openDB = func(ctx context.Context) (*table.DB, error) {
			return table.Open(ctx, dest, table.Options{Schema: f.Name.V, Tables: tableDefs(f), Logger: opts.Logger, Now: opts.Now})
		}
	}
	return c
}

// DefaultStateFile is where a spec without tables keeps its state: beside
// the spec, named after it (e.g. specs/port-source.state.json).
func DefaultStateFile(f *spec.File) string {
	dir := filepath.Dir(f.Path)
	return filepath.Join(dir, f.Name.V+".state.json")
}

// useDB makes the destination's state the store.
func (c *credentials) useDB(db *table.DB) {
	c.mu.Lock()
	c.db = db
	c.mu.Unlock()
}

func (c *credentials) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ownDB && c.db != nil {
		_ = c.db.Close()
		c.db = nil
	}
}

// database returns the table destination's state, opening it for a dry
// run; nil without tables. c.mu is held.
func (c *credentials) database(ctx context.Context) (*table.DB, error) {
	if c.db == nil && c.openDB != nil {
		db, err := c.openDB(ctx)
		if err != nil {
			return nil, fmt.Errorf("open the destination's state: %w", err)
		}
		c.db, c.ownDB, c.openDB = db, true, nil
	}
	if c.db == nil && c.file == "" {
		return nil, errors.New("no destination state yet")
	}
	return c.db, nil
}

// LoadCredential implements fetch.Credentials.
func (c *credentials) LoadCredential(ctx context.Context, key string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.memory != nil {
		return c.memory[key], nil
	}
	db, err := c.database(ctx)
	if err != nil {
		return "", err
	}
	if db != nil {
		st, err := db.State(ctx)
		if err != nil {
			return "", err
		}
		raw, ok := st[authStateStream][key]
		if !ok {
			return "", nil
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("%s state %s: %w", authStateStream, key, err)
		}
		return v, nil
	}
	m, err := c.readFile()
	if err != nil {
		return "", err
	}
	return m[key], nil
}

// SaveCredential implements fetch.Credentials: committed (or the file
// replaced) before it returns.
func (c *credentials) SaveCredential(ctx context.Context, key, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.memory != nil {
		c.memory[key] = value
		return nil
	}
	db, err := c.database(ctx)
	if err != nil {
		return err
	}
	if db != nil {
		raw, err := json.Marshal(value)
		if err != nil {
			return err
		}
		return db.Write(ctx, nil, []sink.Checkpoint{{Stream: authStateStream, Partition: key, Value: raw}})
	}
	m, err := c.readFile()
	if err != nil {
		return err
	}
	m[key] = value
	return c.writeFile(m)
}

// stateFile is the JSON of a state file.
type stateFile struct {
	Credentials map[string]string `json:"credentials"`
}

func (c *credentials) readFile() (map[string]string, error) {
	if c.loaded != nil {
		return c.loaded, nil
	}
	b, err := os.ReadFile(c.file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.loaded = map[string]string{}
		return c.loaded, nil
	case err != nil:
		return nil, fmt.Errorf("state file: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("state file %s: %w", c.file, err)
	}
	if sf.Credentials == nil {
		sf.Credentials = map[string]string{}
	}
	c.loaded = sf.Credentials
	return c.loaded, nil
}

// writeFile replaces the state file whole (write, sync, rename), readable
// by its owner only: it holds secrets.
func (c *credentials) writeFile(m map[string]string) error {
	b, err := json.MarshalIndent(stateFile{Credentials: m}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(c.file)
	tmp, err := os.CreateTemp(dir, "."+strings.TrimSuffix(filepath.Base(c.file), ".json")+"-*.tmp")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.file); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}
