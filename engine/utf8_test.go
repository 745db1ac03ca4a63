package engine_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// utf8Spec reads three streams, one a way a JSON answer is decoded: a list
// read value by value (items), NDJSON lines (lines) and a document read
// whole (whole, whose records program is not a plain list).
const utf8Spec = specHead + `streams:
  items:
    request: {path: /items}
  lines:
    request: {path: /lines}
    response: {format: ndjson}
  whole:
    request: {path: /whole}
    records: '.data | map(.) | .[]'
tables:
  items: {from: items, primary_key: [id]}
  lines: {from: lines, primary_key: [id]}
  whole: {from: whole, primary_key: [id]}
`

// replacedLines returns the log lines that say strings were read as U+FFFD.
func replacedLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "U+FFFD") && strings.Contains(l, "level=WARN") {
			out = append(out, l)
		}
	}
	return out
}

// TestInvalidUTF8InAnswersWarned: a string of an answer holding invalid
// UTF-8, or a lone surrogate escape ("\ud800"), is written with U+FFFD in
// their place, as encoding/json and jq read it, and the run says so: one
// warning a stream, naming it and counting the strings so read (a string
// with two such places counts once; a key counts as a string). The run
// exits 0: the conversion is lossy but said. (It used to be silent: the
// value written differed from the source's without a word.)
func TestInvalidUTF8InAnswersWarned(t *testing.T) {
	fx := newFixture(t, utf8Spec, "")
	fx.raw("/items", 200, "[{\"id\": 1, \"name\": \"a\xffb\"}, {\"id\": 2, \"name\": \"\\ud800\"}, {\"id\": 3, \"name\": \"ok \\u00e9\"}]")
	fx.raw("/lines", 200, "{\"id\": 1, \"name\": \"x\xfe\"}\n{\"id\": 2, \"name\": \"\\udc00 and \xff\"}\n{\"id\": 3, \"k\xff\": \"v\"}\n{\"id\": 4, \"name\": \"fine\"}\n")
	fx.raw("/whole", 200, "{\"data\": [{\"id\": 1, \"name\": \"\\ud800\\ud800\"}, {\"id\": 2, \"name\": \"\\ud83d\\ude00\"}]}")
	var logs bytes.Buffer
	if _, err := fx.run(engine.RunOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatalf("run: %v (replacement is said, not a failure)", err)
	}
	if got := fx.query(`SELECT name FROM "nl__items" ORDER BY id`); !slices.Equal(got, []string{"a\uFFFDb", "\uFFFD", "ok é"}) {
		t.Errorf("items = %q", got)
	}
	if got := fx.query(`SELECT name FROM "nl__lines" WHERE id < 3 ORDER BY id`); !slices.Equal(got, []string{"x\uFFFD", "\uFFFD and \uFFFD"}) {
		t.Errorf("lines = %q", got)
	}
	if got := fx.query(`SELECT name FROM "nl__whole" ORDER BY id`); !slices.Equal(got, []string{"\uFFFD\uFFFD", "😀"}) {
		t.Errorf("whole = %q", got)
	}
	lines := replacedLines(logs.String())
	for stream, count := range map[string]string{"items": "2", "lines": "3", "whole": "1"} {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, "stream="+stream+" ") {
				n++
				if !strings.Contains(l, "strings="+count) {
					t.Errorf("stream %s: warning %q does not count %s strings", stream, l, count)
				}
			}
		}
		if n != 1 {
			t.Errorf("stream %s: %d warnings of strings read as U+FFFD, want 1:\n%s", stream, n, logs.String())
		}
	}
}

// TestKeysMergedByReplacementFail: two keys of one object that differ in
// the answer but are one once their invalid UTF-8 is read as U+FFFD would
// keep one value only: the page fails, naming the stream and the key, and
// the run exits non-zero, in a list read value by value, in NDJSON and
// in a document read whole alike. (They used to collapse into one, the last winning, exit 0.)
func TestKeysMergedByReplacementFail(t *testing.T) {
	for _, tc := range []struct{ stream, body string }{
		{"items", "[{\"id\": 1, \"attrs\": {\"k\xe9\": 1, \"k\xe8\": 2}}]"},
		{"items", "[{\"id\": 1, \"k\\ud800\": 1, \"k\\udc00\": 2}]"},
		{"items", "[{\"id\": 1, \"k\xff\": 1, \"k\uFFFD\": 2}]"},
		{"lines", "{\"id\": 1, \"attrs\": {\"k\xe9\": 1, \"k\xe8\": 2}}\n"},
		{"whole", "{\"data\": [{\"id\": 1, \"k\xe9\": 1, \"k\xe8\": 2}]}"},
	} {
		fx := newFixture(t, utf8Spec, "")
		fx.raw("/items", 200, `[]`)
		fx.raw("/lines", 200, "")
		fx.raw("/whole", 200, `{"data": []}`)
		fx.raw("/"+tc.stream, 200, tc.body)
		_, err := fx.run(engine.RunOptions{})
		re := runErrorOf(t, err)
		if len(re.Failures) != 1 || !strings.Contains(re.Failures[0].Error(), "stream "+tc.stream) ||
			!strings.Contains(re.Failures[0].Error(), `"k\ufffd" appears twice`) {
			t.Errorf("%q: failures = %v, want one of stream %s naming the key \"k\\ufffd\" twice", tc.body, re.Failures, tc.stream)
		}
	}
}

// TestKeyRepeatedLiterallyLastWins: a key written twice alike in one
// object keeps the last value, as jq and encoding/json read it: the
// answer says so itself, nothing of ours merged them (invalid UTF-8 alike
// in both included). The run exits 0.
func TestKeyRepeatedLiterallyLastWins(t *testing.T) {
	fx := newFixture(t, utf8Spec, "")
	fx.raw("/items", 200, "[{\"id\": 1, \"a\": \"first\", \"a\": \"last\"}, {\"id\": 2, \"a\\u0301\": 1, \"a\xcc\x81\": \"by escape\"}, {\"id\": 3, \"k\xff\": \"x\", \"k\xff\": \"bytes alike\"}]")
	fx.raw("/lines", 200, "")
	fx.raw("/whole", 200, `{"data": []}`)
	if _, err := fx.run(engine.RunOptions{}); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := fx.query(`SELECT a FROM "nl__items" WHERE id = 1`); !slices.Equal(got, []string{"last"}) {
		t.Errorf("a = %q, want the last", got)
	}
	if got := fx.query(`SELECT "a` + "\u0301" + `" FROM "nl__items" WHERE id = 2`); !slices.Equal(got, []string{"by escape"}) {
		t.Errorf("a\\u0301 = %q, want the last", got)
	}
	if got := fx.query(`SELECT "k` + "\uFFFD" + `" FROM "nl__items" WHERE id = 3`); !slices.Equal(got, []string{"bytes alike"}) {
		t.Errorf("k\\ufffd = %q, want the last", got)
	}
}
