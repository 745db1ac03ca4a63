package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-etl/ferry/engine"
)

// liveView renders a run's progress as the live block: a header line,
// then one line per stream (and one for Port), fitted to the terminal.
type liveView struct {
	spec    string
	parents map[string]string // stream -> the stream it fans out from or batches
	live    *engine.Live
	rates   rates
	color   bool
}

func newLiveView(sp *engine.Spec, live *engine.Live, color bool) *liveView {
	v := &liveView{spec: sp.Name(), parents: map[string]string{}, live: live, color: color}
	for _, s := range sp.Graph().Streams {
		v.parents[s.Name] = orDefault(s.ForEach, s.BatchOf)
	}
	return v
}

// streamState names where a stream stands.
func streamState(s engine.Snapshot) string {
	switch {
	case s.SkipReason != "":
		return "skipped"
	case s.Done && s.Errors > 0:
		return "failed"
	case s.Done:
		return "done"
	case s.Chains > 0 || s.Requests > 0:
		return "running"
	}
	return "waiting"
}

// statePriority orders streams for the lines a short terminal has room for.
var statePriority = map[string]int{"port": 0, "running": 1, "failed": 2, "waiting": 3, "done": 4, "skipped": 5}

var stateColor = map[string]string{"running": "36", "done": "32", "failed": "31", "waiting": "2", "skipped": "2", "uploading": "36", "queued": "2"}

func (v *liveView) render(width, height int) []string {
	p := v.live.Progress()
	v.rates.add(p)
	maxLines := max(1, min(height-1, max(2, height*2/3)))
	width = max(width-1, 10) // never the last column: some terminals wrap there

	var recs, retries, errs, done, active int64
	for _, s := range p.Streams {
		recs, retries, errs = recs+s.Records, retries+s.Retries, errs+s.Errors
		if s.SkipReason == "" {
			active++
			if s.Done {
				done++
			}
		}
	}
	phase := p.Phase
	var port *engine.HostProgress
	for i := range p.Hosts {
		if p.Hosts[i].Port {
			port = &p.Hosts[i]
			retries += port.Retries
		}
	}
	if phase == engine.PhaseWriting && port != nil {
		phase = "uploading to Port"
	}
	head := []segment{
		{"ferry " + v.spec, 0}, {phase, 1}, {clock(p.Elapsed), 2},
		{fmt.Sprintf("%d/%d streams done", done, active), 4},
		{count(recs) + " records", 5}, {rate(v.rates.total()), 6},
		{plural(retries, "retry", "retries"), 7}, {plural(errs, "error", "errors"), 3},
	}
	lines := []string{fitSegments(head, width)}
	if maxLines == 1 {
		return lines
	}

	type row struct {
		state string
		cells []string
	}
	var rows []row
	for _, s := range p.Streams {
		st := streamState(s)
		chains := ""
		switch parent := v.parents[s.Stream]; {
		case st == "skipped":
			chains = s.SkipReason
		case parent != "":
			chains = fmt.Sprintf("%d/%d %s", s.ChainsDone, s.Chains, parent)
		default:
			chains = plural(s.Pages, "page", "pages")
		}
		r := ""
		if st == "running" {
			r = rate(v.rates.of(s.Stream))
		}
		rows = append(rows, row{st, []string{s.Stream, st, chains, count(s.Records) + " rec", r, plural(s.Retries, "retry", "retries"), plural(s.Errors, "error", "errors")}})
	}
	if port != nil || p.EntitiesTotal > 0 {
		st := "queued"
		if p.Phase == engine.PhaseWriting {
			st = "uploading"
		}
		limit := ""
		var req, rt, er int64
		if port != nil {
			req, rt, er = port.Requests, port.Retries, port.Errors
			if port.RatePerSecond > 0 {
				limit = fmt.Sprintf("limit %s/s", strconv.FormatFloat(port.RatePerSecond, 'f', -1, 64))
			}
		}
		rows = append(rows, row{"port", []string{"Port", st, count(p.EntitiesTotal) + " entities", plural(req, "request", "requests"), limit, plural(rt, "retry", "retries"), plural(er, "error", "errors")}})
	}

	room := maxLines - 1
	show := make([]bool, len(rows))
	if len(rows) <= room {
		for i := range show {
			show[i] = true
		}
	} else {
		// Keep the streams that matter now, in spec order; count the rest.
		room--
		for prio := 0; prio <= 5 && room > 0; prio++ {
			for i, r := range rows {
				key := r.state
				if r.cells[0] == "Port" {
					key = "port"
				}
				if statePriority[key] == prio && room > 0 {
					show[i], room = true, room-1
				}
			}
		}
	}
	var table [][]string
	var states, names []string
	hidden := map[string]int{}
	for i, r := range rows {
		if show[i] {
			table = append(table, r.cells)
			states, names = append(states, r.cells[1]), append(names, r.cells[0])
		} else {
			hidden[r.state]++
		}
	}
	// Columns are dropped, least useful first, until the rows fit.
	prio := []int{0, 1, 4, 2, 5, 6, 3}
	lines = append(lines, fitTable(table, prio, 3, width)...)
	if v.color {
		for i := range states {
			lines[i+1] = colorWord(lines[i+1], names[i], states[i])
		}
	}
	if len(hidden) > 0 {
		var parts []string
		n := 0
		for _, st := range []string{"running", "failed", "waiting", "done", "skipped"} {
			if hidden[st] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", hidden[st], st))
				n += hidden[st]
			}
		}
		lines = append(lines, truncate(fmt.Sprintf("  … %d more: %s", n, strings.Join(parts, ", ")), width))
	}
	return lines
}

// colorWord colours the state word that follows the name in line.
func colorWord(line, name, state string) string {
	code, ok := stateColor[state]
	from := min(2+len(name), len(line))
	i := strings.Index(line[from:], state)
	if !ok || i < 0 {
		return line
	}
	i += from
	return line[:i] + "\x1b[" + code + "m" + state + "\x1b[0m" + line[i+len(state):]
}

type segment struct {
	text string
	prio int // lower is kept longer
}

// fitSegments joins segments with " · ", leaving out the least important
// ones until the line fits width.
func fitSegments(segs []segment, width int) string {
	keep := len(segs)
	for {
		var parts []string
		for _, s := range segs {
			if s.prio < keep && s.text != "" {
				parts = append(parts, s.text)
			}
		}
		line := strings.Join(parts, " · ")
		if utf8.RuneCountInString(line) <= width || keep <= 1 {
			return truncate(line, width)
		}
		keep--
	}
}

// fitTable lays rows out in aligned columns, those from index right on
// right-aligned (counters), dropping columns by prio (highest first)
// until a row fits width; a row still too long is cut.
func fitTable(rows [][]string, prio []int, right, width int) []string {
	if len(rows) == 0 {
		return nil
	}
	cols := len(rows[0])
	keep := cols
	for {
		widths := make([]int, cols)
		for _, r := range rows {
			for c, cell := range r {
				widths[c] = max(widths[c], utf8.RuneCountInString(cell))
			}
		}
		total := 2
		for c := range cols {
			if prio[c] < keep && widths[c] > 0 {
				total += widths[c] + 2
			}
		}
		if total-2 <= width || keep <= 2 {
			out := make([]string, len(rows))
			for i, r := range rows {
				var b strings.Builder
				b.WriteString("  ")
				for c, cell := range r {
					if prio[c] >= keep || widths[c] == 0 {
						continue
					}
					pad := strings.Repeat(" ", widths[c]-utf8.RuneCountInString(cell))
					if c >= right {
						b.WriteString(pad + cell + "  ")
					} else {
						b.WriteString(cell + pad + "  ")
					}
				}
				out[i] = truncate(strings.TrimRight(b.String(), " "), width)
			}
			return out
		}
		keep--
	}
}

// truncate cuts s to width runes, marking the cut with "…".
func truncate(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	if width <= 1 {
		return string(r[:max(width, 0)])
	}
	return string(r[:width-1]) + "…"
}

// clock formats an elapsed time as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int(d.Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// count formats n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(n) + " " + many
}

func rate(perSecond float64) string {
	if perSecond <= 0 {
		return ""
	}
	if perSecond < 10 {
		return fmt.Sprintf("%.1f/s", perSecond)
	}
	return count(int64(perSecond+0.5)) + "/s"
}

// rates computes current record rates from the last few seconds of
// samples (not the average since the start, which hides a stall).
type rates struct{ samples []sample }

type sample struct {
	at    time.Duration
	recs  map[string]int64
	total int64
}

const rateWindow = 3 * time.Second

func (r *rates) add(p engine.Progress) {
	s := sample{at: p.Elapsed, recs: map[string]int64{}}
	for _, st := range p.Streams {
		s.recs[st.Stream] = st.Records
		s.total += st.Records
	}
	r.samples = append(r.samples, s)
	// Keep one sample older than the window, as the rate's start.
	for len(r.samples) > 2 && p.Elapsed-r.samples[1].at >= rateWindow {
		r.samples = r.samples[1:]
	}
}

func (r *rates) span() (first, last sample, ok bool) {
	if len(r.samples) < 2 {
		return sample{}, sample{}, false
	}
	first, last = r.samples[0], r.samples[len(r.samples)-1]
	return first, last, last.at > first.at
}

func (r *rates) of(stream string) float64 {
	first, last, ok := r.span()
	if !ok {
		return 0
	}
	return float64(last.recs[stream]-first.recs[stream]) / (last.at - first.at).Seconds()
}

func (r *rates) total() float64 {
	first, last, ok := r.span()
	if !ok {
		return 0
	}
	return float64(last.total-first.total) / (last.at - first.at).Seconds()
}

// startLogProgress runs logProgress on a goroutine of its own, guarded
// (see guard), until stop is closed; the channel it returns is closed
// once that goroutine ended, a panic of its kept.
func (a *app) startLogProgress(log *slog.Logger, v *liveView, every time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.guard(func() { logProgress(log, v, every, stop) })
	}()
	return done
}

// logProgress logs the run's progress every interval, for logs and
// terminals that cannot redraw: one line for the run, one per stream
// running.
func logProgress(log *slog.Logger, v *liveView, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p := v.live.Progress()
		v.rates.add(p)
		var recs, retries, errs, done, active int64
		for _, s := range p.Streams {
			recs, retries, errs = recs+s.Records, retries+s.Retries, errs+s.Errors
			if s.SkipReason == "" {
				active++
				if s.Done {
					done++
				}
			}
		}
		log.Info("progress", "phase", p.Phase, "elapsed", p.Elapsed.Round(time.Second).String(), "streams_done", fmt.Sprintf("%d/%d", done, active),
			"records", recs, "records_per_second", int64(v.rates.total()), "retries", retries, "errors", errs, "entities", p.EntitiesTotal)
		for _, s := range p.Streams {
			if streamState(s) == "running" {
				log.Info("progress", "stream", s.Stream, "chains_done", s.ChainsDone, "chains", s.Chains, "records", s.Records,
					"records_per_second", int64(v.rates.of(s.Stream)), "retries", s.Retries, "errors", s.Errors)
			}
		}
	}
}
