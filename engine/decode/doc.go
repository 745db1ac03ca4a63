// Package decode turns a response body into JSON-shaped values, one at a
// time, so that a huge answer never sits whole in memory.
//
// A body is JSON, NDJSON (one JSON value per line), CSV or XML, possibly
// gzip-compressed. NDJSON and CSV are always read value by value (a line,
// a row). JSON is read value by value when the stream's records program is
// a path to an array followed by an iteration (see [Split]): the elements of
// that array are the values; otherwise the document is the one value. XML
// is decoded whole into the usual JSON shape.
//
// Every problem is an error, never a shorter list: a malformed line or row
// fails with its line number, a truncated document fails where it ends,
// and a body over its byte limit fails instead of being cut short.
package decode
