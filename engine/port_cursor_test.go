package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ferry-etl/ferry/engine"
	portsim "github.com/ferry-etl/ferry/engine/sim/port"
)

// portCursorSpec has three incremental streams: items feeds Port (and a
// table); tickets feeds only a table, but its child comments feeds Port;
// logs feeds only a table. late reads a lookup, so it runs in a later
// stage, once the others are done: a test interrupts the run there.
const portCursorSpec = specHead + `streams:
  items:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /items
      query: {since: '${ cursor }'}
  tickets:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /tickets
      query: {since: '${ cursor }'}
  comments:
    for_each: tickets
    request:
      path: /tickets/${ parent.id }/comments
  logs:
    incremental: {cursor: .updated, initial: "0"}
    request:
      path: /logs
      query: {since: '${ cursor }'}
  kinds:
    request: {path: /kinds}
  late:
    request:
      path: /late/${ lookups.kind["k"] }
lookups:
  kind:
    from: kinds
    key: .id
    value: .name
tables:
  items: {from: items, primary_key: [id]}
  tickets: {from: tickets, primary_key: [id]}
  logs: {from: logs, primary_key: [id]}
  late: {from: late, primary_key: [id]}
port:
  blueprints: bp.json
  entities:
    - blueprint: item
      from: items
      identifier: .id
      properties: {v: .v}
    - blueprint: group
      from: comments
      identifier: .id
`

// servePortCursor serves the records of portCursorSpec; /late calls late
// (when set) before answering.
func servePortCursor(fx *fixture, late func()) {
	serveSince(fx, "/items", map[string]any{"id": "i1", "updated": "1", "v": "a"}, map[string]any{"id": "i2", "updated": "2", "v": "b"})
	serveSince(fx, "/tickets", map[string]any{"id": "t1", "updated": "1"})
	serveSince(fx, "/logs", map[string]any{"id": "l1", "updated": "5"})
	fx.json("/tickets/t1/comments", []any{map[string]any{"id": "c1"}})
	fx.json("/kinds", []any{map[string]any{"id": "k", "name": "x"}})
	fx.mu.Lock()
	fx.routes["/late/x"] = func(w http.ResponseWriter, r *http.Request) {
		if late != nil {
			late()
		}
		json.NewEncoder(w).Encode([]any{map[string]any{"id": 1}})
	}
	fx.mu.Unlock()
}

// serveSince serves at path the records updated after ?since=.
func serveSince(fx *fixture, path string, recs ...map[string]any) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.routes[path] = func(w http.ResponseWriter, r *http.Request) {
		out := []any{}
		for _, x := range recs {
			if x["updated"].(string) > r.URL.Query().Get("since") {
				out = append(out, x)
			}
		}
		json.NewEncoder(w).Encode(out)
	}
}

// runCtx is fx.run with its own context.
func (fx *fixture) runCtx(ctx context.Context, opts engine.RunOptions) (*engine.Result, error) {
	fx.t.Helper()
	cfg, err := engine.ResolveConfig(fx.spec, engine.ConfigSources{Sets: map[string]string{"url": fx.api.URL}, Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		fx.t.Fatal(err)
	}
	opts.Dest = fx.db
	opts.Port = engine.PortOptions{BaseURL: fx.port.URL(), ClientID: fx.port.ClientID(), ClientSecret: fx.port.ClientSecret()}
	return engine.Run(ctx, fx.spec, cfg, opts)
}

// TestExpiredSyncStillSendsPortEntities: a run interrupted after its
// incremental streams were read sends nothing to Port (entities go at the
// end of a run). The next run, past --resume-within, does not resume that
// sync; it must still read those records again from the cursors they were
// read under, and deliver them to Port: the entities of items, and of
// comments below the incremental tickets. The table-only logs stream keeps
// the cursor committed with its rows.
func TestExpiredSyncStillSendsPortEntities(t *testing.T) {
	fx := newFixture(t, portCursorSpec, itemBlueprint)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	servePortCursor(fx, cancel)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := fx.runCtx(ctx, engine.RunOptions{Now: func() time.Time { return start }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v, want it interrupted", err)
	}
	if n := len(fx.port.Catalog().Entities); n != 0 {
		t.Fatalf("the interrupted run sent %d entities to Port; this test needs none sent", n)
	}
	if got := fx.query(`SELECT id FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"i1", "i2"}) {
		t.Fatalf("items table after the interrupted run = %v, want its rows committed", got)
	}
	servePortCursor(fx, nil)
	// The table-only stream's cursor was committed with its rows by the
	// interrupted run: the second run asks only for what changed after it.
	fx.mu.Lock()
	fx.routes["/logs"] = func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("since"); s != "5" {
			http.Error(w, "logs asked since "+s+", want 5", http.StatusTeapot)
			return
		}
		w.Write([]byte("[]"))
	}
	fx.mu.Unlock()
	if _, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start.Add(48 * time.Hour) }}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1", "i2"}) {
		t.Errorf("item entities = %v, want i1 and i2: read under a cursor Port never got them for", got)
	}
	if got := fx.entities("group"); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("group entities = %v, want c1: its incremental parent's cursor moved past t1", got)
	}
}

// TestPortRejectionKeepsItsStreamsCursor: a run that read everything but
// whose entity Port refused ends its sync (the tables have every row), so
// nothing resumes it. The cursor of the stream feeding that blueprint must
// not have moved past the refused entity: the next run reads those records
// again and sends them. A stream whose blueprint Port took whole keeps
// its new cursor.
func TestPortRejectionKeepsItsStreamsCursor(t *testing.T) {
	// group relates to nothing here: a blueprint relating to item would
	// have had its entities sent with their relations to i1 dropped, and
	// its stream's cursor would stay too (TestRelationToAFailedTarget…).
	const blueprints = `[{"identifier": "item", "title": "Item", "schema": {"properties": {"v": {"type": "string", "title": "V"}}, "required": []}, "relations": {}},
 {"identifier": "group", "title": "Group", "schema": {"properties": {}, "required": []}, "relations": {}}]`
	fx := newFixture(t, portCursorSpec, blueprints)
	servePortCursor(fx, nil)
	fx.port.RejectEntity("item", "i1", http.StatusUnprocessableEntity, "invalid", "refused for the test")
	_, err := fx.runCtx(t.Context(), engine.RunOptions{})
	if !errors.Is(err, engine.ErrPortEntitiesFailed) {
		t.Fatalf("first run: %v, want Port's refusal", err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i2"}) {
		t.Fatalf("item entities after the first run = %v, want i2 only (i1 refused)", got)
	}
	// Port takes everything now (a fresh one: the refusal cannot be lifted).
	fx.port = portsim.New(portsim.Options{RateLimit: -1})
	t.Cleanup(fx.port.Close)
	fx.mu.Lock()
	fx.routes["/tickets"] = func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("since"); s != "1" {
			http.Error(w, "tickets asked since "+s+", want 1", http.StatusTeapot)
			return
		}
		w.Write([]byte("[]"))
	}
	fx.mu.Unlock()
	if _, err := fx.runCtx(t.Context(), engine.RunOptions{}); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := fx.entities("item"); !slices.Equal(got, []string{"i1", "i2"}) {
		t.Errorf("item entities = %v, want i1 and i2: the cursor moved past the entity Port refused", got)
	}
	if got := fx.entities("group"); len(got) != 0 {
		t.Errorf("group entities = %v, want none: Port had them, their streams' cursors moved on", got)
	}
}

// TestExpiredFullRefreshStillSendsPortEntities: a --full-refresh run reads
// from the initial cursors; interrupted before Port got its entities, and
// not resumed (too old), the next run must not start from the cursors it
// read under: the change to i1 it read reaches Port.
func TestExpiredFullRefreshStillSendsPortEntities(t *testing.T) {
	fx := newFixture(t, portCursorSpec, itemBlueprint)
	servePortCursor(fx, nil)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start }}); err != nil {
		t.Fatalf("first run: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	servePortCursor(fx, cancel)
	changed := func() {
		serveSince(fx, "/items", map[string]any{"id": "i1", "updated": "3", "v": "new"}, map[string]any{"id": "i2", "updated": "2", "v": "b"})
	}
	changed()
	_, err := fx.runCtx(ctx, engine.RunOptions{FullRefresh: true, Now: func() time.Time { return start.Add(time.Hour) }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("full refresh: %v, want it interrupted", err)
	}
	servePortCursor(fx, nil)
	changed()
	if _, err := fx.runCtx(t.Context(), engine.RunOptions{Now: func() time.Time { return start.Add(48 * time.Hour) }}); err != nil {
		t.Fatalf("third run: %v", err)
	}
	if v := fx.port.Entity("item", "i1")["properties"].(map[string]any)["v"]; v != "new" {
		t.Errorf("i1 in Port has v = %v, want the change the full refresh read", v)
	}
}
