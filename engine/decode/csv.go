package decode

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// CSVOptions say how a CSV body is laid out (RFC 4180 by default).
type CSVOptions struct {
	// NoHeader: the first row is data. Rows are then objects keyed by
	// Columns, or lists of strings without Columns.
	NoHeader bool
	Columns  []string
	// Delimiter separates fields (default ',').
	Delimiter byte
	// Quote encloses a field that holds delimiters, quotes (doubled) or
	// line breaks (default '"'); NoQuote makes it plain text.
	Quote   byte
	NoQuote bool
}

// csvReader reads RFC 4180 records: fields separated by the delimiter,
// records by \n or \r\n, quoted fields holding anything (a quote doubled).
type csvReader struct {
	in     *input
	opts   CSVOptions
	names  []string
	header bool // the header row is still to be read
	field  []byte
	fields []string
}

var (
	utf8BOM = []byte{0xEF, 0xBB, 0xBF}
	crlf    = []byte{'\r', '\n'}
)

func newCSVReader(in *input, opts CSVOptions) (*csvReader, error) {
	if opts.Delimiter == 0 {
		opts.Delimiter = ','
	}
	if opts.Quote == 0 {
		opts.Quote = '"'
	}
	if !opts.NoQuote && opts.Quote == opts.Delimiter {
		return nil, fmt.Errorf("csv: the quote and the delimiter are both %q", opts.Delimiter)
	}
	c := &csvReader{in: in, opts: opts, header: !opts.NoHeader}
	if opts.NoHeader && len(opts.Columns) > 0 {
		c.names = opts.Columns
		if err := checkNames(c.names, 0); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkNames refuses repeated column names: one would overwrite the other.
func checkNames(names []string, line int) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			if line > 0 {
				return fmt.Errorf("line %d: column %q appears twice in the header", line, n)
			}
			return fmt.Errorf("csv: column %q is named twice", n)
		}
		seen[n] = true
	}
	return nil
}

// nextRow returns the next row as an object (or a list without names).
func (d *Decoder) nextRow() (any, error) {
	c := d.csv
	for {
		fields, line, err := c.record()
		if err != nil {
			return nil, err
		}
		d.raw, d.line = c.in.rec, line
		if c.header {
			c.header = false
			c.names = append([]string(nil), fields...)
			if err := checkNames(c.names, line); err != nil {
				return nil, err
			}
			continue
		}
		if c.names == nil {
			row := make([]any, len(fields))
			for i, f := range fields {
				row[i] = f
			}
			return row, nil
		}
		if len(fields) != len(c.names) {
			return nil, fmt.Errorf("line %d: %d fields, but %d columns", line, len(fields), len(c.names))
		}
		row := make(map[string]any, len(fields))
		for i, f := range fields {
			row[c.names[i]] = f
		}
		return row, nil
	}
}

// record reads the next record, skipping empty lines; io.EOF after the
// last. Its text is left in c.in.rec.
func (c *csvReader) record() (fields []string, line int, err error) {
	in := c.in
	for {
		b, ok := in.peek()
		if !ok {
			if in.err != nil && in.err != io.EOF {
				return nil, in.line, fmt.Errorf("line %d: %w", in.line, in.err)
			}
			return nil, in.line, io.EOF
		}
		if b == '\n' {
			in.advance(1)
			continue
		}
		if b == '\r' {
			if rest := in.ensure(2); len(rest) > 1 && rest[1] == '\n' {
				in.advance(2)
				continue
			}
		}
		break
	}
	line = in.line
	in.startRecording()
	defer in.stopRecording()
	c.fields = c.fields[:0]
	for {
		end, err := c.readField()
		if err != nil {
			return nil, line, err
		}
		c.fields = append(c.fields, string(c.field))
		if end {
			return c.fields, line, nil
		}
	}
}

// readField reads one field into c.field; end is true when it ended its
// record (a line break or the end of the body).
func (c *csvReader) readField() (end bool, err error) {
	in, delim, quote := c.in, c.opts.Delimiter, c.opts.Quote
	c.field = c.field[:0]
	if q, ok := in.peek(); ok && q == quote && !c.opts.NoQuote {
		start := in.line
		in.advance(1)
		// A line break inside a quoted field is \n, whichever the file
		// uses between records (as encoding/csv reads it).
		defer func() {
			if bytes.IndexByte(c.field, '\r') >= 0 {
				c.field = bytes.ReplaceAll(c.field, crlf, newline)
			}
		}()
		for {
			b := in.available()
			if len(b) == 0 {
				if in.err != nil && in.err != io.EOF {
					return false, fmt.Errorf("line %d: %w", in.line, in.err)
				}
				return false, fmt.Errorf("line %d: quoted field not closed before the end of the body", start)
			}
			i := bytes.IndexByte(b, quote)
			if i < 0 {
				c.field = append(c.field, b...)
				in.advance(len(b))
				continue
			}
			c.field = append(c.field, b[:i]...)
			in.advance(i + 1)
			next, ok := in.peek()
			switch {
			case !ok:
				return true, nil
			case next == quote:
				c.field = append(c.field, quote)
				in.advance(1)
			case next == delim:
				in.advance(1)
				return false, nil
			case next == '\n':
				in.advance(1)
				return true, nil
			case next == '\r':
				if end, err := c.lineEnd(); end || err != nil {
					return end, err
				}
				fallthrough
			default:
				return false, fmt.Errorf("line %d: %s after the closing quote of a field (a quote inside a quoted field is written twice)", in.line, strconv.Quote(string(rune(next))))
			}
		}
	}
	for {
		b := in.available()
		if len(b) == 0 {
			if in.err != nil && in.err != io.EOF {
				return false, fmt.Errorf("line %d: %w", in.line, in.err)
			}
			return true, nil
		}
		i := 0
		for i < len(b) && b[i] != delim && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		c.field = append(c.field, b[:i]...)
		if i == len(b) {
			in.advance(i)
			continue
		}
		if b[i] == '\r' && delim != '\r' {
			in.advance(i)
			if end, err := c.lineEnd(); end || err != nil {
				return end, err
			}
			// A lone \r would make one record of many (classic Mac
			// line endings): the rows would be lost in the header.
			return false, fmt.Errorf("line %d: a carriage return without a line feed outside quotes (records end with \\n or \\r\\n; a field holding a line break is quoted)", in.line)
		}
		in.advance(i + 1)
		if b[i] == delim {
			return false, nil
		}
		return true, nil
	}
}

// lineEnd consumes the \r\n, or the \r that ends the body, at the input;
// end is false, nothing consumed, when the \r is followed by anything else.
func (c *csvReader) lineEnd() (end bool, err error) {
	in := c.in
	rest := in.ensure(2)
	switch {
	case len(rest) > 1 && rest[1] == '\n':
		in.advance(2)
		return true, nil
	case len(rest) == 1:
		if in.err != nil && in.err != io.EOF {
			return false, fmt.Errorf("line %d: %w", in.line, in.err)
		}
		in.advance(1)
		return true, nil
	}
	return false, nil
}
