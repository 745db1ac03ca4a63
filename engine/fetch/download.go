package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Defaults of a Download.
const (
	// DefaultMaxDownloadBytes caps a downloaded body. It guards against a
	// runaway answer, not memory: a download is kept on disk.
	DefaultMaxDownloadBytes = 16 << 30
	// spillBytes is how much of a downloaded body stays in memory; a
	// larger one goes to a temporary file.
	spillBytes = 4 << 20
)

// Download says how [Client.Download] receives a body.
type Download struct {
	// MaxBytes caps the body as received (after the transport undid a
	// Content-Encoding); 0 means DefaultMaxDownloadBytes. A larger body
	// fails with ErrBodyTooLarge, never cut short, and is not retried.
	MaxBytes int64
	// NotJSON says the body is not meant to be JSON (CSV, NDJSON, XML):
	// a response rule's body predicate then does not match a body over
	// HostConfig.MaxBodyBytes instead of failing the request.
	NotJSON bool
}

// Spool is a received body, kept for reading: in memory when small, else
// in a temporary file that is already unlinked, so nothing is left behind
// however the process ends. Close it.
type Spool struct {
	mem  []byte
	file *os.File
	name string // to remove at Close, when it could not be unlinked at once
	size int64
	once sync.Once
}

// Size is the body's length in bytes.
func (s *Spool) Size() int64 { return s.size }

// Reader reads the body from its start; each call starts again.
func (s *Spool) Reader() io.Reader {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return bytes.NewReader(s.mem)
}

// Memory returns the body when it is held in memory (not in a file), for
// reading in place; the caller must not change it.
func (s *Spool) Memory() ([]byte, bool) {
	if s.file != nil {
		return nil, false
	}
	return s.mem, true
}

// Close releases the body (its file).
func (s *Spool) Close() error {
	var err error
	s.once.Do(func() {
		if s.file != nil {
			err = s.file.Close()
			if s.name != "" {
				err = errors.Join(err, os.Remove(s.name))
			}
		}
		s.mem = nil
	})
	return err
}

// bytes returns the body in memory when it is at most limit bytes.
func (s *Spool) bytes(limit int64) ([]byte, bool) {
	if s.size > limit {
		return nil, false
	}
	if s.file == nil {
		return s.mem, true
	}
	b := make([]byte, s.size)
	if _, err := io.ReadFull(io.NewSectionReader(s.file, 0, s.size), b); err != nil {
		return nil, false
	}
	return b, true
}

// errIdle is the cause of an attempt cancelled because its answer stalled.
type errIdle struct{ d time.Duration }

func (e *errIdle) Error() string {
	return fmt.Sprintf("no data for %s", e.d)
}
func (e *errIdle) Unwrap() error { return context.DeadlineExceeded }

// idleTimer cancels an attempt when no byte arrives for d: the timeout of
// a download bounds the waits, not the whole transfer, which may be long.
type idleTimer struct {
	t *time.Timer
	d time.Duration
}

func newIdleTimer(d time.Duration, cancel context.CancelCauseFunc) *idleTimer {
	return &idleTimer{d: d, t: time.AfterFunc(d, func() { cancel(&errIdle{d}) })}
}

func (it *idleTimer) touch() { it.t.Reset(it.d) }
func (it *idleTimer) stop()  { it.t.Stop() }

// receive reads body into a Spool of at most limit bytes, touching idle on
// every read. A read error is returned as is: the caller retries a body cut
// short like any transport failure. hint is the length expected (the
// announced one, or a guess; -1: none): a body that fits in memory is read
// straight into one buffer of that size, not through a scratch buffer into
// a growing one (most of what a run allocated per page, before this); a
// body longer than the hint only grows the buffer.
func receive(body io.Reader, limit, hint int64, idle *idleTimer) (*Spool, error) {
	s := &Spool{}
	first := int64(32 << 10)
	if hint >= 0 && hint < spillBytes {
		first = hint + 1 // the extra byte lets the read that meets EOF not grow it
	}
	if limit >= 0 && limit < first {
		first = limit + 1
	}
	mem := make([]byte, 0, first)
	var scratch []byte // once spilled: what the file's reads go through
	for {
		var chunk []byte
		if s.file == nil {
			if len(mem) == cap(mem) {
				// Doubling, but never past what spills: memory stays bounded.
				grown := make([]byte, len(mem), max(len(mem)+1, min(2*len(mem), spillBytes+1)))
				copy(grown, mem)
				mem = grown
			}
			chunk = mem[len(mem):cap(mem)]
		} else {
			chunk = scratch
		}
		n, err := body.Read(chunk)
		if n > 0 {
			idle.touch()
			s.size += int64(n)
			if s.size > limit {
				s.Close()
				return nil, fmt.Errorf("%w: over the limit of %d bytes", ErrBodyTooLarge, limit)
			}
			if s.file == nil {
				mem = mem[:len(mem)+n]
				if len(mem) > spillBytes {
					f, name, ferr := spillFile(mem)
					if ferr != nil {
						return nil, ferr
					}
					s.file, s.name = f, name
					scratch, mem = mem[:32<<10:32<<10], nil
				}
			} else if _, werr := s.file.Write(chunk[:n]); werr != nil {
				s.Close()
				return nil, fmt.Errorf("keep the body: %w", werr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.file == nil {
		s.mem = mem
	}
	return s, nil
}

// spillFile creates a temporary file holding head, unlinked at once: the
// open file stays readable, and its disk space comes back when it is
// closed, even after a crash. Where the system refuses to unlink an open
// file, name is returned, for Close to remove.
func spillFile(head []byte) (f *os.File, name string, err error) {
	f, err = os.CreateTemp("", "ferry-body-*")
	if err != nil {
		return nil, "", fmt.Errorf("keep the body: %w", err)
	}
	if os.Remove(f.Name()) != nil {
		name = f.Name()
	}
	if _, err := f.Write(head); err != nil {
		f.Close()
		if name != "" {
			os.Remove(name)
		}
		return nil, "", fmt.Errorf("keep the body: %w", err)
	}
	return f, name, nil
}
