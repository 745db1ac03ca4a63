package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/ferry-etl/ferry/engine/apitest"
)

// screen is a model of a VT100-style terminal, enough for what ferry
// writes: printable text with auto-wrap at the right margin (xterm's
// deferred wrap), CR, LF with scrolling into a scrollback, cursor up (CSI
// n A), erase below (CSI J), erase line (CSI K), cursor visibility
// (CSI ? 25 h/l) and colours (CSI … m, ignored). Any other control fails
// the test, so the live view cannot rely on something this model does not
// check.
type screen struct {
	t            *testing.T
	cols, rows   int
	grid         [][]rune
	scrollback   []string
	r, c         int
	wrapPending  bool
	cursorHidden bool
	logical      strings.Builder // the line being written since the last LF
	wraps        []string        // lines other than log records that wrapped
	frames       int             // erase-below operations: redraws of the live block
}

func newScreen(t *testing.T, cols, rows int) *screen {
	s := &screen{t: t, cols: cols, rows: rows}
	for range rows {
		s.grid = append(s.grid, s.blank())
	}
	return s
}

func (s *screen) blank() []rune {
	row := make([]rune, s.cols)
	for i := range row {
		row[i] = ' '
	}
	return row
}

func (s *screen) lineFeed() {
	s.logical.Reset()
	if s.r < s.rows-1 {
		s.r++
		return
	}
	s.scrollback = append(s.scrollback, strings.TrimRight(string(s.grid[0]), " "))
	s.grid = append(s.grid[1:], s.blank())
}

func (s *screen) put(ch rune) {
	if s.wrapPending {
		// A line wider than the terminal: only log records may do that
		// (they wrap, and stay); the live block and the summary must fit.
		if line := s.logical.String(); !strings.HasPrefix(line, "time=") && !strings.HasPrefix(line, "ferry: ") {
			s.wraps = append(s.wraps, line)
		}
		s.c, s.wrapPending = 0, false
		saved := s.logical.String()
		s.lineFeed()
		s.logical.WriteString(saved)
	}
	s.grid[s.r][s.c] = ch
	s.logical.WriteRune(ch)
	if s.c == s.cols-1 {
		s.wrapPending = true
	} else {
		s.c++
	}
}

// write interprets ferry's output.
func (s *screen) write(data []byte) {
	for len(data) > 0 {
		ch, size := utf8.DecodeRune(data)
		data = data[size:]
		switch ch {
		case '\r':
			s.c, s.wrapPending = 0, false
		case '\n':
			s.wrapPending = false
			s.lineFeed()
		case '\x1b':
			n := s.escape(data)
			data = data[n:]
		default:
			if ch < ' ' {
				s.t.Fatalf("unexpected control character %q in ferry's output", ch)
			}
			s.put(ch)
		}
	}
}

// escape handles the CSI sequence after ESC and returns its length.
func (s *screen) escape(data []byte) int {
	if len(data) == 0 || data[0] != '[' {
		s.t.Fatalf("unexpected escape sequence %q", data[:min(len(data), 8)])
	}
	i := 1
	for i < len(data) && (data[i] >= '0' && data[i] <= '9' || data[i] == ';' || data[i] == '?') {
		i++
	}
	if i == len(data) {
		s.t.Fatalf("escape sequence cut short: %q", data)
	}
	param, final := string(data[1:i]), data[i]
	switch {
	case final == 'A':
		n := 1
		if param != "" {
			n, _ = strconv.Atoi(param)
		}
		s.r, s.wrapPending = max(s.r-n, 0), false
	case final == 'J' && (param == "" || param == "0"):
		s.frames++
		for c := s.c; c < s.cols; c++ {
			s.grid[s.r][c] = ' '
		}
		for r := s.r + 1; r < s.rows; r++ {
			s.grid[r] = s.blank()
		}
	case final == 'K' && (param == "" || param == "0"):
		for c := s.c; c < s.cols; c++ {
			s.grid[s.r][c] = ' '
		}
	case final == 'l' && param == "?25":
		s.cursorHidden = true
	case final == 'h' && param == "?25":
		s.cursorHidden = false
	case final == 'm':
	default:
		s.t.Fatalf("unexpected escape sequence ESC[%s%c", param, final)
	}
	return i + 1
}

// text is everything the terminal holds: scrollback, then the screen.
func (s *screen) text() string {
	lines := append([]string{}, s.scrollback...)
	for _, row := range s.grid {
		lines = append(lines, strings.TrimRight(string(row), " "))
	}
	return strings.Join(lines, "\n")
}

// TestLiveViewInTerminal runs ferry in a pseudo-terminal at two sizes, with
// retried requests logging warnings while the live view is drawn: every
// warning stays on the terminal (above the block, or scrolled into the
// scrollback), no line but a log record is wider than the terminal, the
// live block was drawn, and the cursor is visible at the end.
func TestLiveViewInTerminal(t *testing.T) {
	bin := ferryBin(t)
	const faults = 12
	var routes []apitest.Route
	apps := make([]any, 12)
	for i := range apps {
		apps[i] = map[string]any{"id": fmt.Sprintf("app-%02d", i)}
	}
	routes = append(routes, apitest.Route{Path: "/apps", Items: apps})
	for i := range apps {
		r := apitest.Route{Path: fmt.Sprintf("/apps/app-%02d/envs", i), Latency: apitest.Duration{Duration: 60 * time.Millisecond},
			Items: []any{map[string]any{"id": fmt.Sprintf("dev-%02d", i)}, map[string]any{"id": fmt.Sprintf("prod-%02d", i)}}}
		if i < faults {
			r.Faults = []apitest.Fault{{Status: 503}}
		}
		routes = append(routes, r)
	}
	for _, size := range []struct {
		cols, rows int
		env        string // "": a capable terminal
	}{{100, 30, ""}, {60, 8, ""}, {100, 30, "TERM=dumb"}, {100, 30, "NO_COLOR=1"}} {
		t.Run(strings.TrimSpace(fmt.Sprintf("%dx%d %s", size.cols, size.rows, size.env)), func(t *testing.T) {
			api := apitest.New(apitest.Fixture{Routes: routes})
			t.Cleanup(api.Close)
			dir := t.TempDir()
			spec := filepath.Join(dir, "live.yaml")
			err := os.WriteFile(spec, []byte(`version: 1
name: live_view_with_a_long_name
config:
  url: {required: true}
http:
  base_url: ${ config.url }
  concurrency: 2
  retry: {attempts: 3, initial: 10ms, max: 20ms}
streams:
  apps:
    request: {path: /apps}
  environments_of_every_application:
    for_each: apps
    request:
      path: /apps/${ parent.id }/envs
tables:
  apps: {from: apps, primary_key: [id]}
  envs: {from: environments_of_every_application, primary_key: [id]}
`), 0o644)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "run", spec, "--set", "url="+api.URL(), "--dest", "sqlite:x.db")
			cmd.Dir = dir
			cmd.Env = append(withoutEnv(os.Environ(), "NO_COLOR", "TERM"), "TERM=xterm")
			if size.env != "" {
				cmd.Env = append(cmd.Env, size.env)
			}
			term, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(size.cols), Rows: uint16(size.rows)})
			if err != nil {
				t.Fatal(err)
			}
			defer term.Close()
			var out bytes.Buffer
			_, err = io.Copy(&out, term)
			var pe *os.PathError
			if err != nil && !(errors.As(err, &pe) && errors.Is(pe.Err, syscall.EIO)) {
				t.Fatal(err) // EIO: the child closed the terminal
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("ferry: %v\n%s", err, out.String())
			}
			scr := newScreen(t, size.cols, size.rows)
			scr.write(out.Bytes())
			text := scr.text()
			if got := strings.Count(text, `msg="http retry"`); got != faults {
				t.Errorf("%d retry warnings on the terminal, want %d:\n%s", got, faults, text)
			}
			for _, w := range scr.wraps {
				t.Errorf("a line wider than %d columns: %q", size.cols, w)
			}
			switch live := strings.Contains(out.String(), "ferry live_view"); {
			case size.env != "" && (live || strings.Contains(out.String(), "\x1b[")):
				// TERM=dumb and NO_COLOR ask for plain lines: no redrawing.
				t.Errorf("%s: terminal controls in the output:\n%q", size.env, out.String())
			case size.env == "" && (!live || scr.frames < 2):
				t.Errorf("the live block was not drawn (%d frames):\n%q", scr.frames, out.String())
			}
			if scr.cursorHidden {
				t.Error("the cursor is left hidden")
			}
			if !strings.Contains(text, "environments_of_every_application") || !strings.Contains(text, "total") {
				t.Errorf("no summary at the end:\n%s", text)
			}
		})
	}
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && k != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
