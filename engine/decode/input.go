package decode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge fails a body that grows past its byte limit (after
// decompression): it is never cut short.
var ErrTooLarge = errors.New("body too large")

// input is a buffered reader that counts lines and can record the bytes it
// consumes (the raw text of one value, for digests and decoding).
type input struct {
	src  io.Reader
	buf  []byte
	pos  int   // next unread byte
	end  int   // end of the buffered bytes
	err  error // sticky error of src (io.EOF at the end)
	line int   // line of the next unread byte, 1-based

	recording bool
	rec       []byte // bytes consumed while recording
	scratch   []byte // a line that spans refills
}

const bufSize = 64 << 10

// newInput reads r through a buffer of size bytes at first.
func newInput(r io.Reader, size int) *input {
	return &input{src: r, buf: make([]byte, size), line: 1}
}

// fill reads more bytes, keeping the unread ones; it reports false at the
// end of the input (in.err says why).
func (in *input) fill() bool {
	if in.err != nil {
		return false
	}
	if in.pos > 0 {
		n := copy(in.buf, in.buf[in.pos:in.end])
		in.pos, in.end = 0, n
	}
	if in.end == len(in.buf) {
		nb := make([]byte, 2*len(in.buf))
		copy(nb, in.buf[:in.end])
		in.buf = nb
	}
	for range 100 {
		n, err := in.src.Read(in.buf[in.end:])
		in.end += n
		if err != nil {
			in.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	in.err = io.ErrNoProgress
	return false
}

// available returns the unread buffered bytes, filling when there are none;
// empty means the end of the input.
func (in *input) available() []byte {
	if in.pos == in.end && !in.fill() {
		return nil
	}
	return in.buf[in.pos:in.end]
}

// ensure buffers n unread bytes, or as many as the input still holds,
// and returns the unread bytes: what comes next even when a read split it.
func (in *input) ensure(n int) []byte {
	for in.end-in.pos < n && in.fill() {
	}
	return in.buf[in.pos:in.end]
}

// advance consumes n buffered bytes.
func (in *input) advance(n int) {
	b := in.buf[in.pos : in.pos+n]
	if n == 1 {
		if b[0] == '\n' {
			in.line++
		}
	} else {
		in.line += bytes.Count(b, newline)
	}
	if in.recording {
		in.rec = append(in.rec, b...)
	}
	in.pos += n
}

var newline = []byte{'\n'}

// peek returns the next byte without consuming it; ok is false at the end.
func (in *input) peek() (byte, bool) {
	b := in.available()
	if len(b) == 0 {
		return 0, false
	}
	return b[0], true
}

// readErr is the error for an input that ended: a read failure, or an
// unexpected end when the input simply ran out.
func (in *input) readErr(what string) error {
	if in.err != nil && in.err != io.EOF {
		return in.err
	}
	return fmt.Errorf("line %d: unexpected end of the body %s", in.line, what)
}

// startRecording begins collecting consumed bytes into a fresh record.
func (in *input) startRecording() {
	in.recording, in.rec = true, in.rec[:0]
}

// stopRecording returns the bytes consumed since startRecording; they are
// valid until the next startRecording.
func (in *input) stopRecording() []byte {
	in.recording = false
	return in.rec
}

// readLine returns the next line without its line ending (\n or \r\n);
// ok is false at the end of the input. The slice is valid until the next
// call. The last line may lack its \n.
func (in *input) readLine() (line []byte, ok bool) {
	in.scratch = in.scratch[:0]
	spanned := false
	for {
		b := in.available()
		if len(b) == 0 {
			if !spanned || in.err != io.EOF {
				// A line cut by a read error is not a line.
				return nil, false
			}
			return trimCR(in.scratch), true
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			if !spanned {
				in.advance(i + 1)
				return trimCR(b[:i]), true
			}
			in.scratch = append(in.scratch, b[:i]...)
			in.advance(i + 1)
			return trimCR(in.scratch), true
		}
		in.scratch = append(in.scratch, b...)
		spanned = true
		in.advance(len(b))
	}
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// limitReader fails with ErrTooLarge once more than max bytes were read.
type limitReader struct {
	r    io.Reader
	max  int64
	read int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.max {
		return n, fmt.Errorf("%w: over %d bytes", ErrTooLarge, l.max)
	}
	return n, err
}
