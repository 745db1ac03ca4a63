package runner

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-etl/ferry/engine/eval"
	"github.com/ferry-etl/ferry/engine/fetch"
	"github.com/ferry-etl/ferry/engine/internal/jsonv"
	"github.com/ferry-etl/ferry/engine/paginate"
	"github.com/ferry-etl/ferry/engine/spec"
)

// Defaults of an async stream.
const (
	defaultPollEvery   = 5 * time.Second
	defaultPollTimeout = time.Hour
	defaultJobExpires  = 24 * time.Hour
	// maxPollRetryAfter bounds a poll's Retry-After; the poll's timeout
	// bounds it further.
	maxPollRetryAfter = 24 * time.Hour
)

// jobState is an async stream's export job as checkpointed: its id, and
// when it was created (a job older than async.expires is not resumed).
type jobState struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

// async runs the chain of an async stream: the export job is created (or
// the one an earlier run created is polled again), polled until done, and
// each of its result URLs read as a chain of pages, the way windows are.
// Every checkpoint of the chain carries the job.
func (c *chainRun) async(client *fetch.Client, start position, restore bool) error {
	r, s := c.r, c.st.s
	a := s.Async
	expires := defaultJobExpires
	if a.Expires.Set {
		expires = a.Expires.V
	}
	var answer any
	var urls []string
	if c.cp != nil {
		c.replacedRetry = c.cp.ReplacedRetry
	}
	if job := c.savedJob(); job != nil {
		if age := r.opts.Now().Sub(job.Created); age >= expires {
			r.log.Warn("export job expired: creating a new one", "stream", s.Name, "parents", c.rn.describe(), "job", job.ID, "age", age.Round(time.Second))
		} else {
			c.job = job
			var gone bool
			var err error
			if answer, gone, err = c.poll(client, true); err != nil {
				return err
			}
			if gone {
				r.log.Warn("export job is gone: creating a new one", "stream", s.Name, "parents", c.rn.describe(), "job", job.ID)
				c.job = nil
			}
		}
	}
	if c.job != nil {
		var err error
		if urls, err = c.downloadURLs(answer); err != nil {
			return err
		}
		cp := c.cp
		read := cp != nil && (cp.Window > 0 || cp.Pages > 0 || cp.Part > 0)
		switch {
		case read && cp.Window >= len(urls):
			// The job lists fewer results than the chain had reached: what
			// the ones it no longer lists held is unknown, and going on
			// would end the chain without them.
			r.log.Warn("export job lists fewer results than were read: creating a new one", "stream", s.Name, "parents", c.rn.describe(), "job", c.job.ID, "results", len(urls), "reached", cp.Window+1)
			c.job = nil
		case read && cp.Results != "" && cp.Results != resultsDigest(urls, cp.Window):
			// The results up to where the chain stands are listed otherwise
			// (another order, another file): going on by position would read
			// one twice and never one it had not reached.
			r.log.Warn("export job lists its results otherwise than when they were read: creating a new one", "stream", s.Name, "parents", c.rn.describe(), "job", c.job.ID, "results", len(urls), "reached", cp.Window+1)
			c.job = nil
		}
	}
	if c.job == nil {
		if c.cp != nil && (c.cp.Window > 0 || c.cp.Pages > 0 || c.cp.Part > 0) {
			// What was committed came from another job: the new one is
			// read from its start, written whole. Its first checkpoint
			// replaces the old job's, but not what the partition saved
			// with it, which stays apart (see sink.Checkpoint.Replaced):
			// a run stopped before the new job's results are committed
			// leaves the next one knowing the old job's rows, which an
			// append table would get again.
			c.replacedRetry = append(slices.Clone(c.cp.Retry), c.cp.ReplacedRetry...)
			c.cp, c.replayUntil, c.retry = nil, position{}, nil
			c.checkpointed = false
			start, restore = position{0, 1}, false
			c.jobReplaced = true
		}
		if err := c.create(client); err != nil {
			return err
		}
		var err error
		if answer, _, err = c.poll(client, false); err != nil {
			return err
		}
		if urls, err = c.downloadURLs(answer); err != nil {
			return err
		}
	}
	c.downloads, c.results = urls, resultsDigests(urls)
	if len(urls) == 0 {
		// A job with no results: the chain is done, with no records.
		c.send(item{mark: c.mark(position{0, 0}, paginate.State{}, true, false)})
		return nil
	}
	env := c.jobEnv()
	for w := start.window; w < len(urls); w++ {
		req := paginate.Request{Query: url.Values{}, Header: http.Header{}}
		for _, it := range a.Download.Headers.Items {
			v, err := c.r.renderHeader(it.Value.Template(), env)
			if err != nil {
				return fmt.Errorf("async.download.headers.%s: %w", it.Key, err)
			}
			c.r.secretHeader(it.Value.Template(), v)
			req.Header.Set(it.Key, v)
		}
		if err := c.paged(client, w, start, restore, env, &req, urls[w]); err != nil {
			return err
		}
	}
	return nil
}

// savedJob is the job of the chain's checkpoint, or the one created for
// the same chain earlier in this run (a parent read again in a later stage
// polls its job rather than creating another). Not for a parent listed
// again with other values in this stage (see chainOnce): the job made for
// its earlier version answers for the children as they were then.
func (c *chainRun) savedJob() *jobState {
	if c.cp != nil && c.cp.Job != nil {
		return c.cp.Job
	}
	if c.rn.again > 0 && !c.restarted {
		return nil
	}
	if j, ok := c.st.jobs.Load(c.rn.partition); ok {
		return j.(*jobState)
	}
	return nil
}

// jobEnv is the expr environment of the poll and download requests.
func (c *chainRun) jobEnv() map[string]any {
	env := maps.Clone(c.env)
	env[spec.VarJob] = map[string]any{"id": c.job.ID}
	return env
}

// create sends the request that creates the export job, and checkpoints
// the job before polling it: a run that stops now resumes with this job.
func (c *chainRun) create(client *fetch.Client) error {
	r, st, a := c.r, c.st, c.st.s.Async
	rq := a.Create.Request()
	req, target, err := r.buildRequest(c.ctx, c.st.s, rq, c.rn, c.env, c.vars)
	if err != nil {
		return fmt.Errorf("async.create: %w", err)
	}
	key := a.Create.IdempotencyKey.V
	if key != "" {
		// One key per job, sent again with every retry of this request:
		// the source makes one job however many attempts reach it.
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set(key, rand.Text())
	}
	resp, err := client.Do(c.ctx, &fetch.Request{Method: rq.Method.V, URL: target, Query: req.Query, Header: req.Header, Body: req.Body, BodyFormat: rq.BodyFormat.V})
	st.stat.answered(attemptsOf(resp), err)
	if n := attemptsOf(resp); n > 1 && key == "" {
		// An attempt whose answer was lost may have made a job too: it is
		// never polled nor downloaded, but the source keeps it.
		r.log.Warn("export job create was sent more than once: the source may hold a job ferry does not read (async.create.idempotency_key avoids it where the API honours one)",
			"stream", st.s.Name, "parents", c.rn.describe(), "attempts", n)
	}
	if err != nil {
		if c.ctx.Err() != nil {
			return errCancelled
		}
		return fmt.Errorf("async.create: %w", err)
	}
	body, err := jsonv.Decode(resp.Body)
	if err != nil {
		return fmt.Errorf("async.create: %s %s: %d: the answer is not valid JSON: %w", rq.Method.V, resp.URL, resp.Status, err)
	}
	v, ok, err := a.Create.ID.Code().First(c.ctx, body, c.vars...)
	if err != nil {
		return fmt.Errorf("async.create.id: %w", err)
	}
	id, valid := jobID(v)
	if !ok || !valid {
		return fmt.Errorf("async.create.id: want a string or a number, got %s (answer of %s %s)", jsonv.Kind(v), rq.Method.V, resp.URL)
	}
	c.job = &jobState{ID: id, Created: r.opts.Now().UTC()}
	st.jobs.Store(c.rn.partition, c.job)
	r.log.Info("export job created", "stream", st.s.Name, "parents", c.rn.describe(), "job", id)
	mark := c.mark(position{0, 0}, paginate.State{}, false, false)
	mark.Retry, mark.flush, mark.replacing = nil, true, c.jobReplaced
	mark.committed = make(chan struct{})
	// The stream's release commits the checkpoint at once, ahead of the
	// runs before this one, and the job is polled only once it is in the
	// destination's state: a run killed in between would forget the job
	// and create another.
	select {
	case st.jobMarks <- jobMark{rn: c.rn, mark: mark}:
	case <-c.ctx.Done():
		return errCancelled
	}
	select {
	case <-mark.committed:
		return nil
	case <-c.ctx.Done():
		return errCancelled
	}
}

func jobID(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != ""
	case json.Number:
		return x.String(), true
	case float64, int:
		return fmt.Sprint(x), true
	}
	return "", false
}

// poll asks how the job stands until done (it returns the answer) or
// failed, waiting async.poll.every between polls (or what Retry-After
// says), for at most async.poll.timeout. A failed job fails the chain with
// its message and is dropped from the checkpoint, so the next run creates
// a new one; a job still running at the timeout is kept, and the next run
// polls it again. With resumed, a 404 or 410 on the first poll means the
// job is gone (gone is true).
func (c *chainRun) poll(client *fetch.Client, resumed bool) (answer any, gone bool, err error) {
	r, st, a := c.r, c.st, c.st.s.Async
	p := &a.Poll
	rq := p.Request()
	if !rq.Method.Set {
		rq.Method = spec.Str{V: http.MethodGet, Set: true}
	}
	req, target, err := r.buildRequest(c.ctx, c.st.s, rq, c.rn, c.jobEnv(), c.vars)
	if err != nil {
		return nil, false, fmt.Errorf("async.poll: %w", err)
	}
	every, timeout := defaultPollEvery, defaultPollTimeout
	if p.Every.Set {
		every = p.Every.V
	}
	if p.Timeout.Set {
		timeout = p.Timeout.V
	}
	deadline := r.opts.Now().Add(timeout)
	id := c.job.ID
	for n := 1; ; n++ {
		resp, err := client.Do(c.ctx, &fetch.Request{Method: rq.Method.V, URL: target, Query: req.Query, Header: req.Header})
		st.stat.answered(attemptsOf(resp), err)
		switch {
		case err != nil && c.ctx.Err() != nil:
			return nil, false, errCancelled
		case err != nil && resumed && n == 1 && jobGone(err):
			return nil, true, nil
		case err != nil:
			return nil, false, fmt.Errorf("export job %s: poll: %w", id, err)
		}
		body, err := jsonv.Decode(resp.Body)
		if err != nil {
			return nil, false, fmt.Errorf("export job %s: poll: %s %s: %d: the answer is not valid JSON: %w", id, rq.Method.V, resp.URL, resp.Status, err)
		}
		if failed, err := c.holds(&p.Failed, body); err != nil {
			return nil, false, fmt.Errorf("export job %s: async.poll.failed: %w", id, err)
		} else if failed {
			return nil, false, c.jobFailed(body)
		}
		done, err := c.holds(&p.Done, body)
		if err != nil {
			return nil, false, fmt.Errorf("export job %s: async.poll.done: %w", id, err)
		}
		if done {
			r.log.Debug("export job done", "stream", st.s.Name, "job", id, "polls", n)
			return body, false, nil
		}
		now := r.opts.Now()
		if !now.Before(deadline) {
			b, _ := json.Marshal(body)
			return nil, false, fmt.Errorf("export job %s: not done after %s (%d polls; the last answer: %s); the next run polls it again", id, timeout, n, shorten(string(b)))
		}
		wait := every
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
			wait = d
		}
		if err := r.opts.Sleep(c.ctx, min(wait, deadline.Sub(now))); err != nil {
			return nil, false, errCancelled
		}
	}
}

// jobGone tells a poll answered 404 or 410: the API no longer knows the
// job. A response rule that matched the answer does not change that: the
// rules say what an answer means as data, not whether the job exists.
func jobGone(err error) bool {
	status := 0
	var se *fetch.StatusError
	var re *fetch.RuleError
	switch {
	case errors.As(err, &se):
		status = se.Status
	case errors.As(err, &re):
		status = re.Status
	}
	return status == http.StatusNotFound || status == http.StatusGone
}

// holds runs a predicate: true unless it yields nothing, false or null.
func (c *chainRun) holds(q *spec.JQ, body any) (bool, error) {
	if q.Code() == nil {
		return false, nil
	}
	v, ok, err := q.Code().First(c.ctx, body, c.vars...)
	return ok && v != nil && v != false, err
}

// jobFailed drops the failed job from the checkpoint (the next run creates
// a new one, and reads its results from the start) and says why it failed.
func (c *chainRun) jobFailed(body any) error {
	id := c.job.ID
	msg := ""
	if q := c.st.s.Async.Poll.Message.Code(); q != nil {
		if v, ok, err := q.First(c.ctx, body, c.vars...); err != nil {
			msg = "(message: " + err.Error() + ")"
		} else if ok && v != nil {
			if s, isStr := v.(string); isStr {
				msg = s
			} else {
				b, _ := json.Marshal(v)
				msg = string(b)
			}
		}
	}
	if msg == "" {
		b, _ := json.Marshal(body)
		msg = shorten(string(b))
	}
	c.job = nil
	c.st.jobs.Delete(c.rn.partition)
	var mark *pageState
	if cp := c.cp; cp != nil && (cp.Window > 0 || cp.Pages > 0 || cp.Part > 0) {
		// The partition committed results of this job: the checkpoint
		// keeps where they reached (and their retry list), without the
		// job, so the next run's new job replaces them (see async) rather
		// than be taken for a first reading, whose rows they duplicate.
		kept := *cp
		kept.Job = nil
		mark = &kept
	} else {
		mark = c.mark(position{0, 0}, paginate.State{}, false, false)
		mark.Retry = nil
	}
	c.send(item{mark: mark})
	return fmt.Errorf("export job %s failed: %s", id, c.r.opts.Pool.Redact(msg))
}

// downloadURLs are the job's results: what download.urls gives on the
// last poll answer (a URL or a list), or the one path or url.
func (c *chainRun) downloadURLs(answer any) ([]string, error) {
	dl := &c.st.s.Async.Download
	env := c.jobEnv()
	switch {
	case dl.Path.Template() != nil:
		u, err := dl.Path.Template().RenderPathParts(env, c.r.nullRecordPathEach(dl.Path.Template(), c.r.secretEach(dl.Path.Template())))
		if err != nil {
			return nil, fmt.Errorf("async.download.path: %w", err)
		}
		return []string{u}, nil
	case dl.URL.Template() != nil:
		u, err := dl.URL.Template().RenderParts(env, c.r.nullRecordEach(dl.URL.Template(), c.r.secretEach(dl.URL.Template())))
		if err != nil {
			return nil, fmt.Errorf("async.download.url: %w", err)
		}
		return []string{eval.FormatScalar(u)}, nil
	}
	outs, err := dl.URLs.Code().Run(c.ctx, answer, c.vars...)
	if err != nil {
		return nil, fmt.Errorf("async.download.urls: %w", err)
	}
	var urls []string
	for _, o := range outs {
		list, isList := o.([]any)
		if !isList {
			list = []any{o}
		}
		for _, u := range list {
			s, ok := u.(string)
			if !ok || s == "" {
				// A wrong path gives null: that is no "no results".
				return nil, fmt.Errorf("async.download.urls: want a URL or a list of URLs, got %s", jsonv.Kind(u))
			}
			urls = append(urls, s)
		}
	}
	if urls == nil {
		urls = []string{}
	}
	return urls, nil
}

// resultsDigest names an export job's results up to the one at index w
// (those a chain standing there read, and that one) by their URLs without
// the query (presigned links are signed anew at every poll, for the same
// files); "" for none. Results told apart by their query only are not
// told apart here.
func resultsDigest(urls []string, w int) string {
	n := min(w+1, len(urls))
	if n <= 0 {
		return ""
	}
	return resultsDigests(urls[:n])[n-1]
}

// resultsDigests is resultsDigest of urls at every index, in one pass: a
// chain marks a checkpoint at every page, and digesting the results up to
// its own afresh each time cost a job of thousands of files time
// quadratic in their number.
func resultsDigests(urls []string) []string {
	out := make([]string, len(urls))
	h := fnv.New64a()
	for i, u := range urls {
		name := u
		if p, err := url.Parse(u); err == nil {
			p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = "", false, "", ""
			name = p.String()
		}
		h.Write([]byte(name))
		h.Write([]byte{0})
		out[i] = strconv.FormatUint(h.Sum64(), 36)
	}
	return out
}

// retryAfter reads a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		// Bounded first: an absurd value overflowed into a negative wait.
		return time.Duration(min(n, int64(maxPollRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func shorten(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// attemptsOf is an answer's attempts, 0 for none.
func attemptsOf(resp *fetch.Response) int {
	if resp == nil {
		return 0
	}
	return resp.Attempts
}
