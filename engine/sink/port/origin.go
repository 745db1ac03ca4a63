package port

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
)

// origin is where entities were mapped from: the stream and the parent
// chain (sink.Entity.Parents) of their records, for the report of an
// entity the run could not write. The spool keeps in each entity's run
// entry a reference to its origin (a uvarint), not the text.
type origin struct{ stream, parents string }

// originSpill is how many bytes of origins stay in memory before they go
// to the file.
const originSpill = 64 << 10

// origins holds the origins of one run's entities, each once for a run of
// consecutive entities that share it, in a temporary file (in dir, made
// at the first spill and unlinked at once where the OS allows it) after
// the first originSpill bytes: a fan-out whose every parent yields one
// entity has an origin an entity, which must not stay on the heap.
type origins struct {
	dir     string
	f       *os.File
	path    string // "" once unlinked
	spilled int64  // bytes in f
	buf     []byte // the bytes after them
	last    origin
	lastRef uint64
}

// ref returns the reference a run entry keeps for an entity of stream and
// parents: one more than the origin's place, shifted, with merged in the
// low bit (the entity merges several records; the origin is the last
// one's). 0 (or 1) is none: an entity written without a stream.
func (t *origins) ref(stream, parents string, merged bool) (uint64, error) {
	var r uint64
	if stream != "" || parents != "" {
		if t.lastRef != 0 && t.last == (origin{stream, parents}) {
			r = t.lastRef
		} else {
			at := t.spilled + int64(len(t.buf))
			t.buf = binary.LittleEndian.AppendUint32(t.buf, uint32(len(stream)))
			t.buf = binary.LittleEndian.AppendUint32(t.buf, uint32(len(parents)))
			t.buf = append(append(t.buf, stream...), parents...)
			r = uint64(at+1) << 1
			t.last, t.lastRef = origin{stream, parents}, r
			if len(t.buf) >= originSpill {
				if err := t.spill(); err != nil {
					return 0, err
				}
			}
		}
	}
	if merged {
		r |= 1
	}
	return r, nil
}

// spill appends the buffered origins to the file, making it first.
func (t *origins) spill() error {
	if t.f == nil {
		f, err := os.CreateTemp(t.dir, SpoolPrefix+"*.origins")
		if err != nil {
			return fmt.Errorf("port: spool: %w", err)
		}
		t.f, t.path = f, f.Name()
		if runtime.GOOS != "windows" {
			if err := os.Remove(t.path); err == nil {
				t.path = ""
			}
		}
	}
	if _, err := t.f.WriteAt(t.buf, t.spilled); err != nil {
		return fmt.Errorf("port: spool: origins: %w", err)
	}
	t.spilled += int64(len(t.buf))
	t.buf = t.buf[:0]
	return nil
}

// of returns what ref r names.
func (t *origins) of(r uint64) (o origin, merged bool, err error) {
	merged = r&1 != 0
	at := int64(r>>1) - 1
	if at < 0 {
		return origin{}, merged, nil
	}
	var head [8]byte
	if err := t.read(head[:], at); err != nil {
		return origin{}, merged, err
	}
	ns, np := binary.LittleEndian.Uint32(head[:4]), binary.LittleEndian.Uint32(head[4:])
	text := make([]byte, int(ns)+int(np))
	if err := t.read(text, at+8); err != nil {
		return origin{}, merged, err
	}
	return origin{string(text[:ns]), string(text[ns:])}, merged, nil
}

// read fills b from place at, in the file or the buffer.
func (t *origins) read(b []byte, at int64) error {
	if at >= t.spilled {
		if at-t.spilled+int64(len(b)) > int64(len(t.buf)) {
			return fmt.Errorf("port: spool: origins: no origin at %d", at)
		}
		copy(b, t.buf[at-t.spilled:])
		return nil
	}
	if _, err := t.f.ReadAt(b, at); err != nil {
		return fmt.Errorf("port: spool: origins: %w", err)
	}
	return nil
}

// close removes the file; the origins are empty after it.
func (t *origins) close() error {
	var err error
	if t.f != nil {
		err = t.f.Close()
		if t.path != "" {
			if rerr := os.Remove(t.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
	}
	*t = origins{dir: t.dir}
	if err != nil {
		return fmt.Errorf("port: spool: origins: %w", err)
	}
	return nil
}

// source is where one entity came from: its origin, and whether it
// merges several records (the origin then is the last one's).
type source struct {
	origin
	merged bool
}

// sourcesOf returns the source of each of keys that the spool holds.
func (sp *spool) sourcesOf(ctx context.Context, keys []entityKey) (map[entityKey]source, error) {
	out := make(map[entityKey]source, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if err := sp.lockRead(ctx); err != nil {
		return out, err
	}
	defer sp.mu.Unlock()
	for _, k := range keys {
		e, ok, err := sp.find(k.blueprint, k.identifier)
		if err != nil {
			return out, err
		}
		if ok {
			o, merged, err := sp.origins.of(e.from)
			if err != nil {
				return out, err
			}
			out[k] = source{o, merged}
		}
	}
	return out, nil
}
