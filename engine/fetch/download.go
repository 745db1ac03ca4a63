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

// touch and stop do nothing on a nil timer: Do's attempts have a deadline
// instead.
func (it *idleTimer) touch() {
	if it != nil {
		it.t.Reset(it.d)
	}
}

func (it *idleTimer) stop() {
	if it != nil {
		it.t.Stop()
	}
}

// receive reads body into a Spool of at most limit bytes, touching idle on
// every read. A read error is returned as is: the caller retries a body cut
// short like any transport failure. hint is the announced length (-1:
// none). A body over spill bytes goes to a temporary file (a download's
// 2xx passes spillBytes; a body returned in memory passes its limit, so
// it never needs a file). A body that stays in memory costs one allocation of its own size:
// with a hint it is read straight into it; without one, into chunks taken
// from a pool and copied out at the end (a growing buffer allocated about
// three times the body, and a scratch buffer per response before that).
func receive(body io.Reader, limit, hint, spill int64, idle *idleTimer, lend *chunks) (*Spool, error) {
	if hint >= 0 && hint <= spillBytes {
		return receiveSized(body, limit, hint, spill, idle, lend)
	}
	s := &Spool{}
	var held []*[]byte // in memory, full but the last
	n := 0             // bytes in the last chunk
	defer func() {
		for _, c := range held {
			lend.put(c)
		}
	}()
	for {
		if len(held) == 0 || n == chunkSize {
			held, n = append(held, lend.get()), 0
		}
		last := *held[len(held)-1]
		k, err := body.Read(last[n:])
		if k > 0 {
			idle.touch()
			s.size += int64(k)
			if s.size > limit {
				s.Close()
				return nil, fmt.Errorf("%w: over the limit of %d bytes", ErrBodyTooLarge, limit)
			}
			if s.file != nil {
				if _, werr := s.file.Write(last[:k]); werr != nil {
					s.Close()
					return nil, fmt.Errorf("keep the body: %w", werr)
				}
			} else if n += k; s.size > spill {
				f, name, ferr := spillFile(nil)
				if ferr != nil {
					return nil, ferr
				}
				s.file, s.name = f, name
				for i, c := range held {
					part := *c
					if i == len(held)-1 {
						part = part[:n]
					}
					if _, werr := f.Write(part); werr != nil {
						s.Close()
						return nil, fmt.Errorf("keep the body: %w", werr)
					}
				}
				// From here on one chunk is the scratch the reads go through.
				for _, c := range held[1:] {
					lend.put(c)
				}
				held, n = held[:1], 0
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
		s.mem = make([]byte, 0, s.size)
		for _, c := range held {
			s.mem = append(s.mem, (*c)[:min(chunkSize, int(s.size)-len(s.mem))]...)
		}
	}
	return s, nil
}

// receiveSized is receive for a body whose length was announced (and is
// at most spillBytes): read into one buffer of that size. A body longer
// than announced (a transport that does not hold the server to it) grows
// the buffer, and spills past spillBytes.
func receiveSized(body io.Reader, limit, hint, spill int64, idle *idleTimer, lend *chunks) (*Spool, error) {
	s := &Spool{}
	// The extra byte lets the read that meets EOF not grow it.
	mem := make([]byte, 0, min(hint, limit)+1)
	for {
		if len(mem) == cap(mem) {
			if len(mem) > spillBytes {
				// Longer than announced, past what memory holds: the
				// rest as a body of unknown length does.
				return receive(io.MultiReader(bytes.NewReader(mem), body), limit, -1, spill, idle, lend)
			}
			grown := make([]byte, len(mem), max(len(mem)+1, min(2*len(mem), spillBytes+1)))
			copy(grown, mem)
			mem = grown
		}
		k, err := body.Read(mem[len(mem):cap(mem)])
		if k > 0 {
			idle.touch()
			if s.size += int64(k); s.size > limit {
				return nil, fmt.Errorf("%w: over the limit of %d bytes", ErrBodyTooLarge, limit)
			}
			mem = mem[:len(mem)+k]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	s.mem = mem
	return s, nil
}

// chunkSize is the size of the chunks a body of unknown length is read
// into.
const chunkSize = 32 << 10

// chunks lends the chunks bodies of unknown length are read into; each
// Pool has its own.
type chunks struct{ pool sync.Pool }

func (c *chunks) get() *[]byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, chunkSize)
	return &b
}

func (c *chunks) put(b *[]byte) { c.pool.Put(b) }

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
