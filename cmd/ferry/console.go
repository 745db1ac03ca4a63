package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Terminal controls used by the live view (ANSI/VT100, which every
// terminal ferry draws on understands; TERM=dumb gets log lines instead).
const (
	hideCursor = "\x1b[?25l"
	showCursor = "\x1b[?25h"
	eraseDown  = "\x1b[J" // from the cursor to the end of the screen
)

// console owns stderr during a run. Everything written to it (log
// records) is printed above the live block, which is redrawn below: one
// write per frame, the cursor hidden only while the frame is written, so
// that whatever ends ferry leaves the cursor visible.
type console struct {
	mu     sync.Mutex
	w      io.Writer
	size   func() (width, height int)
	render func(width, height int) []string // the live block; nil: none
	drawn  int                              // lines of the block on screen
	tail   []byte                           // a log write's unfinished last line
	stop   chan struct{}
	done   sync.WaitGroup
}

// newConsole returns a console drawing on w, whose size comes from the
// terminal fd (following resizes), else 80×24.
func newConsole(w io.Writer, fd int) *console {
	c := &console{w: w, size: func() (int, int) { return 80, 24 }}
	if fd >= 0 {
		c.size = func() (int, int) {
			width, height, err := term.GetSize(fd)
			if err != nil || width <= 0 || height <= 0 {
				return 80, 24
			}
			return width, height
		}
	}
	return c
}

// liveAllowed says whether the environment allows redrawing in place: a
// terminal that is not TERM=dumb, and no NO_COLOR (https://no-color.org:
// plain output asked for).
func liveAllowed(w io.Writer) (int, bool) {
	fd, tty := isTerminal(w)
	if !tty || os.Getenv("TERM") == "dumb" || os.Getenv("NO_COLOR") != "" {
		return fd, false
	}
	return fd, true
}

// Write prints p above the live block. Only whole lines are printed; a
// partial last line waits for its end.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.render == nil && c.drawn == 0 {
		return c.w.Write(p)
	}
	c.tail = append(c.tail, p...)
	i := bytes.LastIndexByte(c.tail, '\n')
	if i < 0 {
		return len(p), nil
	}
	logs := c.tail[:i+1]
	c.frame(logs)
	c.tail = append(c.tail[:0], c.tail[i+1:]...)
	return len(p), nil
}

// frame erases the block, prints logs, and draws the block again, in one
// write. Called with mu held.
func (c *console) frame(logs []byte) {
	var b bytes.Buffer
	b.WriteString(hideCursor)
	if c.drawn > 0 {
		// The cursor is at the start of the line below the block.
		fmt.Fprintf(&b, "\r\x1b[%dA", c.drawn)
	}
	b.WriteString(eraseDown)
	b.Write(logs)
	c.drawn = 0
	if c.render != nil {
		width, height := c.size()
		for _, line := range c.render(width, height) {
			b.WriteString(line)
			b.WriteString("\n")
			c.drawn++
		}
	}
	b.WriteString(showCursor)
	c.w.Write(b.Bytes())
}

// startLive draws render every interval until stopLive, on a goroutine
// whose work guard runs (the app's guard: a panic drawing is the
// command's error, kept before stopLive returns). After a panic there the
// block is no longer drawn.
func (c *console) startLive(render func(width, height int) []string, every time.Duration, guard func(func())) {
	c.mu.Lock()
	c.render = render
	c.stop = make(chan struct{})
	c.frame(nil)
	c.mu.Unlock()
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		guard(c.draw(every))
	}()
}

// draw is the live goroutine's work: a frame every interval until stop.
func (c *console) draw(every time.Duration) func() {
	return func() {
		stopped := false
		defer func() {
			if !stopped {
				c.mu.Lock()
				c.render = nil
				c.mu.Unlock()
			}
		}()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				stopped = true
				return
			case <-t.C:
				c.redraw()
			}
		}
	}
}

// redraw draws the block again, the lock released even if drawing panics.
func (c *console) redraw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frame(nil)
}

// stopLive erases the block (what follows, the summary, says it all) and
// prints any unfinished log line.
func (c *console) stopLive() {
	if c.stop == nil {
		return
	}
	close(c.stop)
	c.done.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.render = nil
	tail := c.tail
	if len(tail) > 0 {
		tail = append(tail, '\n')
	}
	c.frame(tail)
	c.tail = nil
	c.stop = nil
}

// restore leaves the terminal usable when ferry is forced to quit in the
// middle of a frame: cursor shown, on a fresh line.
func (c *console) restore() {
	io.WriteString(c.w, "\r\n"+showCursor)
}
