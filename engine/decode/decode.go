package decode

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/ferry-etl/ferry/engine/internal/jsonv"
)

// Formats of a response body.
const (
	JSON   = "json"
	NDJSON = "ndjson"
	CSV    = "csv"
	XML    = "xml"
)

// Compression settings.
const (
	Auto = "auto" // gzip when Content-Encoding or Content-Type say so, or the body starts with gzip's magic bytes
	Gzip = "gzip"
	None = "none"
)

// ErrEmpty is returned by the first Next of a JSON or XML body that holds
// no document at all (nothing or white space only). NDJSON and CSV bodies
// may be empty: they then hold no values.
var ErrEmpty = errors.New("empty body")

// Options say how to read a body.
type Options struct {
	Format      string // JSON (default), NDJSON, CSV or XML
	Compression string // Auto (default), Gzip or None
	// ContentType and ContentEncoding are the response's headers, read by
	// Auto.
	ContentType, ContentEncoding string
	// MaxBytes limits the body after decompression; 0 means no limit.
	MaxBytes int64

	// JSON only. With Stream set, the values are the elements of the
	// array at Path (keys from the document's root; none: the document
	// itself), or, when an object is there, its values in key order;
	// without it, the document is the one value.
	Stream bool
	Path   []string
	// Default gives the default records program's meaning to a streamed
	// body with an empty Path: null holds no values, and anything but an
	// array is an error.
	Default bool
	// Capture lists the paths (off Path) whose values a streamed body
	// keeps, for Doc: what pagination programs read.
	Capture [][]string
	// Shared, when set, is the decoder the body's values are read with:
	// one reused for the bodies of one stream, one body at a time, keeps
	// the keys and short values it met (see jsonv.Decoder.KeepValues).
	Shared *jsonv.Decoder
	// Members, when set, are the only members a streamed element that is
	// an object keeps: the others are checked as JSON but not built (the
	// caller knows nothing reads them). The raw text (Raw) is whole.
	Members map[string]bool

	CSV CSVOptions
}

// Decoder yields the values of one body. It is not safe for concurrent
// use.
type Decoder struct {
	opts  Options
	in    *input
	gz    *gzip.Reader
	next  func() (any, error)
	raw   []byte
	line  int
	doc   any
	json  *jsonStream
	csv   *csvReader
	ended bool
	jv    *jsonv.Decoder // every value's (their keys shared): Options.Shared or its own
}

// New prepares to decode r. It reads nothing yet but the first bytes:
// with Auto compression those that tell whether the body is gzip, and for
// JSON and NDJSON the three of a byte order mark.
func New(r io.Reader, opts Options) (*Decoder, error) {
	if opts.Format == "" {
		opts.Format = JSON
	}
	d := &Decoder{opts: opts}
	src, err := d.decompress(r)
	if err != nil {
		return nil, err
	}
	if opts.MaxBytes > 0 {
		src = &limitReader{r: src, max: opts.MaxBytes}
	}
	size := bufSize
	if sz, ok := r.(interface{ Size() int64 }); ok && d.gz == nil && sz.Size() < bufSize {
		// A body known to be small gets a buffer its size (one byte more
		// to see its end at once), not 64 KiB zeroed per page.
		size = max(int(sz.Size())+1, 512)
	}
	return d.start(newInput(src, size))
}

// NewBytes is New over a body already in memory, read in place: b is
// never written to and, unless it is compressed or over MaxBytes (then it
// is read as New reads it), not copied into a buffer of the decoder's own.
// Every page a run reads comes here.
func NewBytes(b []byte, opts Options) (*Decoder, error) {
	switch opts.Compression {
	case None:
	case Auto, "":
		if isGzip(opts.ContentEncoding, opts.ContentType) || bytes.HasPrefix(b, gzipMagic) {
			return New(bytes.NewReader(b), opts)
		}
	default:
		return New(bytes.NewReader(b), opts)
	}
	if opts.MaxBytes > 0 && int64(len(b)) > opts.MaxBytes {
		return New(bytes.NewReader(b), opts)
	}
	if opts.Format == "" {
		opts.Format = JSON
	}
	d := &Decoder{opts: opts}
	// All of it is buffered already: the end is known, so nothing ever
	// refills (and so moves) the buffer.
	return d.start(&input{buf: b, end: len(b), err: io.EOF, line: 1})
}

// start reads from in.
func (d *Decoder) start(in *input) (*Decoder, error) {
	opts := d.opts
	d.in = in
	d.jv = opts.Shared
	if d.jv == nil {
		d.jv = &jsonv.Decoder{}
	}
	d.jv.Replaced = 0 // this body's
	// A byte order mark before the text (Windows exports write one) is
	// neither JSON (RFC 8259 lets a reader ignore it) nor part of a CSV
	// body's first field, quoted or not.
	if bytes.HasPrefix(d.in.ensure(len(utf8BOM)), utf8BOM) {
		d.in.advance(len(utf8BOM))
	}
	switch opts.Format {
	case JSON:
		if opts.Stream {
			d.json = &jsonStream{in: d.in, jv: d.jv, path: opts.Path, capture: opts.Capture, dflt: opts.Default && len(opts.Path) == 0, only: opts.Members}
			d.next = d.nextStreamed
		} else {
			d.next = d.nextDocument
		}
	case NDJSON:
		d.next = d.nextLine
	case CSV:
		c, err := newCSVReader(d.in, opts.CSV)
		if err != nil {
			return nil, err
		}
		d.csv = c
		d.next = d.nextRow
	case XML:
		d.next = d.nextXML
	default:
		return nil, fmt.Errorf("unknown format %q", opts.Format)
	}
	return d, nil
}

// decompress wraps r in a gzip reader when the body is gzip.
func (d *Decoder) decompress(r io.Reader) (io.Reader, error) {
	switch d.opts.Compression {
	case None:
		return r, nil
	case Gzip:
	case Auto, "":
		br := bufio.NewReaderSize(r, 512)
		r = br
		if !isGzip(d.opts.ContentEncoding, d.opts.ContentType) {
			magic, _ := br.Peek(2)
			if !bytes.Equal(magic, gzipMagic) {
				return r, nil
			}
		}
	default:
		return nil, fmt.Errorf("unknown compression %q", d.opts.Compression)
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	d.gz = gz
	return gz, nil
}

var gzipMagic = []byte{0x1f, 0x8b}

// isGzip reads the headers: a Content-Encoding that names gzip (when the
// HTTP client did not already decode it), or a gzip Content-Type.
func isGzip(encoding, contentType string) bool {
	for _, e := range strings.Split(encoding, ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e == "gzip" || e == "x-gzip" {
			return true
		}
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/gzip" || mt == "application/x-gzip")
}

// Next returns the next value, or io.EOF after the last. An error (with
// the line where it was found) ends the body: later calls return it again.
func (d *Decoder) Next() (any, error) {
	if d.ended {
		return nil, io.EOF
	}
	v, err := d.next()
	if err != nil {
		d.ended = err == io.EOF
		if !d.ended {
			d.next = func() (any, error) { return nil, err }
		}
	}
	return v, err
}

// Raw returns the text of the value Next returned last (a line, a row, an
// array element; nil for a whole document), valid until the next call.
func (d *Decoder) Raw() []byte { return d.raw }

// Line is the line the value Next returned last starts on.
func (d *Decoder) Line() int { return d.line }

// Doc returns, once Next has returned io.EOF, the document: for a streamed
// JSON body only the captured paths' values (nil when none), for NDJSON and
// CSV nil.
func (d *Decoder) Doc() any {
	if d.json != nil {
		if d.json.doc == nil {
			return nil
		}
		return d.json.doc
	}
	return d.doc
}

// Replaced counts the strings of the values read so far (keys included)
// that held invalid UTF-8 or a lone surrogate escape, read as U+FFFD: the
// caller says that they are not written as the source wrote them. CSV
// and XML count none (CSV keeps the bytes as they are).
func (d *Decoder) Replaced() int {
	return d.jv.Replaced
}

// Close releases the decompressor. It does not close the body.
func (d *Decoder) Close() error {
	if d.gz != nil {
		return d.gz.Close()
	}
	return nil
}

func (d *Decoder) nextStreamed() (any, error) {
	v, err := d.json.next()
	d.raw, d.line = d.json.raw, d.json.line
	return v, err
}

// nextDocument decodes the whole document, once.
func (d *Decoder) nextDocument() (any, error) {
	d.next = func() (any, error) { return nil, io.EOF }
	in := d.in
	in.skipSpace()
	if _, ok := in.peek(); !ok {
		if in.err != nil && in.err != io.EOF {
			return nil, in.err
		}
		return nil, ErrEmpty
	}
	data := in.available()
	in.advance(len(data))
	if in.src != nil { // not NewBytes's: more may follow, gather it
		var buf bytes.Buffer
		buf.Write(data)
		for b := in.available(); len(b) > 0; b = in.available() {
			buf.Write(b)
			in.advance(len(b))
		}
		data = buf.Bytes()
	}
	if in.err != nil && in.err != io.EOF {
		return nil, in.err
	}
	v, err := d.jv.Decode(data)
	if err != nil {
		return nil, jsonError(data, err)
	}
	d.doc, d.line = v, 1
	return v, nil
}

// jsonError puts the line of a syntax error in its message.
func jsonError(b []byte, err error) error {
	offset := -1
	var syn *json.SyntaxError
	var vsyn *jsonv.SyntaxError
	var key *jsonv.KeyError
	switch {
	case errors.As(err, &syn):
		offset = int(syn.Offset)
	case errors.As(err, &vsyn):
		offset = vsyn.Offset
	case errors.As(err, &key):
		offset = key.Offset
	}
	if offset < 0 {
		return err
	}
	line := 1 + bytes.Count(b[:min(offset, len(b))], newline)
	return fmt.Errorf("line %d: %w", line, err)
}

// nextLine decodes the next non-blank line of an NDJSON body.
func (d *Decoder) nextLine() (any, error) {
	in := d.in
	for {
		line := in.line
		b, ok := in.readLine()
		if !ok {
			if in.err != nil && in.err != io.EOF {
				return nil, fmt.Errorf("line %d: %w", in.line, in.err)
			}
			return nil, io.EOF
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		d.raw, d.line = b, line
		v, err := decodeValue(d.jv, b)
		if err != nil {
			return nil, valueError(line, err)
		}
		return v, nil
	}
}
