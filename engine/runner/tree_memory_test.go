package runner_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine/sink"
)

// heapAtRows reads the live heap when the n-th and the m-th row arrive.
type heapAtRows struct {
	collector
	n, m       int
	rows       int
	base, peak uint64
}

func (h *heapAtRows) Row(ctx context.Context, r sink.Row) error {
	h.rows++
	if h.rows == h.n || h.rows == h.m {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if h.rows == h.n {
			h.base = ms.HeapAlloc
		} else {
			h.peak = ms.HeapAlloc
		}
	}
	return nil
}

// TestTreeWideLevelMemory: a level of 4,000 folders, each with children to
// read, queues 4,000 chains while its own chain is released; a queued
// chain holds its parent record, not yet the buffer of records it will
// send (128 items, about 8 KiB, made when it starts fetching), so the
// queue grows by well under that per chain.
func TestTreeWideLevelMemory(t *testing.T) {
	const wide = 4000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/children/")
		body := map[string]any{"items": []any{}}
		if id == "root" {
			start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
			end := min(start+500, wide)
			items := make([]any, 0, end-start)
			for i := start; i < end; i++ {
				items = append(items, map[string]any{"id": "f" + strconv.Itoa(i), "folder": true})
			}
			body["items"] = items
			if end < wide {
				body["next"] = strconv.Itoa(end)
			}
		}
		_ = json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	f := mustSpec(t, `
version: 1
name: t
http: {base_url: `+srv.URL+`, concurrency: 1}
streams:
  folders:
    recurse: {when: .folder, max_depth: 3}
    request:
      path: /children/${ parent?.id ?? "root" }
    records: .items[]
    paginate: {type: cursor, token: .next, param: cursor}
tables:
  folders: {from: folders, primary_key: [id]}
`)
	out := &heapAtRows{collector: *newCollector(), n: 1000, m: wide}
	if _, err := runSpec(t, f, nil, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if out.rows != wide {
		t.Fatalf("%d folders written, want %d", out.rows, wide)
	}
	per := (int64(out.peak) - int64(out.base)) / (wide - 1000)
	t.Logf("live heap per queued chain: %d bytes", per)
	if per > 4096 {
		t.Errorf("live heap grows by %d bytes per queued chain, want under 4 KiB", per)
	}
}
