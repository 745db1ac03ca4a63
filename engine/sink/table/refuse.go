package table

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"github.com/ferry-etl/ferry/engine/sink"
)

// ErrRefused is wrapped by the error of a [DB.Write] that failed because of
// the rows' data, as opposed to the connection, the context or the
// destination's own state: the database refused a value (PostgreSQL
// SQLSTATE classes 22, 23 and 54, SQLite's too-big, constraint, mismatch
// and too-many-columns errors), or the sink refused a row itself (a
// primary key PostgreSQL cannot store as it is, a value a column ferry did
// not make would store changed). Nothing of the Write was
// committed; [DB.FindRefused] tells which row is at fault.
var ErrRefused = errors.New("the database refused the rows")

// refusedError marks an error as one of the data; its message is the
// database's.
type refusedError struct{ err error }

func (e *refusedError) Error() string   { return e.err.Error() }
func (e *refusedError) Unwrap() []error { return []error{e.err, ErrRefused} }

// refused marks err as the data's fault. A cancelled context is never the
// data's: the run stops as it did.
func refused(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &refusedError{err: err}
}

// FindRefused finds a row the database refuses, after a Write of rows
// failed with [ErrRefused]: the first row whose addition to the rows
// before it makes a write fail — or, when the rows need more columns than
// the database allows, the row [blameColumns] picks (the one at fault is
// not the one that crossed the limit). The writes it tries are rolled
// back, never committed; they number at most log2(len(rows))+1. It returns the row's index and
// the error the database gave for it; or -1 and nil when all of rows are
// taken (the failure lay elsewhere, in the checkpoints); or an error not
// wrapping ErrRefused, when a trial failed for another reason.
func (d *DB) FindRefused(ctx context.Context, rows []sink.Row) (int, error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return -1, nil, errClosed
	}
	// Trials change no warning, log no column added, publish no table.
	log, warned := d.log, maps.Clone(d.warned)
	quiet := slog.New(slog.DiscardHandler)
	d.log = quiet
	beLog := d.be.swapLog(quiet)
	defer func() {
		d.log, d.warned = log, warned
		d.be.swapLog(beLog)
		// A field skipped in a trial only is forgotten: its warning went
		// nowhere, and the next write must say it.
		for name, t := range d.tables {
			for k, ci := range t.keyCache {
				if ci < 0 && !warned[name+"\x00"+k] {
					delete(t.keyCache, k)
				}
			}
		}
	}()
	try := func(n int) (error, error) {
		err := d.writeLocked(ctx, rows[:n], nil, true)
		if err == nil || errors.Is(err, ErrRefused) {
			return err, nil
		}
		return nil, err
	}
	// lo rows are taken (none are, trivially), hi are not.
	lo, hi := 0, len(rows)
	reason, err := try(hi)
	if err != nil || reason == nil {
		return -1, nil, err
	}
	if i, ok := blamed(rows, reason); ok {
		return i, reason, nil
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		why, err := try(mid)
		if err != nil {
			return -1, nil, err
		}
		if i, ok := blamed(rows[:mid], why); ok {
			// Fewer rows, refused for too many columns (the rows of
			// another table, refused for their own fault, come later):
			// the row to refuse is the one blamed, not the one whose
			// addition crossed the limit.
			return i, why, nil
		}
		if why != nil {
			hi, reason = mid, why
		} else {
			lo = mid
		}
	}
	return hi - 1, reason, nil
}

// blamed is the index in rows of the row a write of rows was refused for,
// when the sink named it itself (see rowError.blame): the at-th of its
// table.
func blamed(rows []sink.Row, reason error) (int, bool) {
	var re *rowError
	if !errors.As(reason, &re) || !re.blame {
		return 0, false
	}
	n := 0
	for i, r := range rows {
		if r.Table != re.table {
			continue
		}
		if n == re.at {
			return i, true
		}
		n++
	}
	return 0, false
}

// errTrial ends a trial write: the backend rolls its transaction back.
var errTrial = errors.New("trial write: rolled back")

// rowError is a row the sink refuses itself, before the database sees it.
// With blame, it names the row at fault: at, among the write's rows of
// table (trials alone would name the row whose addition made the write
// fail, which for too many columns need not be the one at fault; for a
// value its column cannot hold it is, and naming it spares the trials).
type rowError struct {
	err   error
	blame bool
	table string
	at    int
}

// blameColumns picks the row to refuse when the rows of a write to table
// need more columns, total, than the database allows, most: the first row
// that needs too many alone (with the columns no row brings, fixed: the
// table's, the declared ones, ferry's own), else the one bringing the most
// new columns no other row needs — the last on a tie, so that the rows
// before it are kept, as writing them in order would. Which row crossed
// the limit says nothing: a row of one column after one of 1590 would be
// refused, and every row after it in turn. entries[starts[ri]:starts[ri+1]]
// are row ri's fields; the row's new columns are the n from index first.
func blameColumns(table string, entries []entry, starts []int, first, n, fixed, total, most int) (int, error) {
	rows := len(starts) - 1
	users := make([]int32, n)  // rows with a value for each new column
	marked := make([]int32, n) // the row (±(ri+1)) that last counted it
	for ri := range rows {
		for _, en := range entries[starts[ri]:starts[ri+1]] {
			if c := int(en.ci) - first; c >= 0 && en.v != nil && marked[c] != int32(ri+1) {
				marked[c] = int32(ri + 1)
				users[c]++
			}
		}
	}
	best, bestOwn := 0, -1
	for ri := range rows {
		need, own := 0, 0
		for _, en := range entries[starts[ri]:starts[ri+1]] {
			if c := int(en.ci) - first; c >= 0 && en.v != nil && marked[c] != -int32(ri+1) {
				marked[c] = -int32(ri + 1)
				need++
				if users[c] == 1 {
					own++
				}
			}
		}
		if fixed+need > most {
			return ri, fmt.Errorf("table %q: too many columns: this row alone needs %d, ferry's own included, and the database allows %d", table, fixed+need, most)
		}
		if own >= bestOwn {
			best, bestOwn = ri, own
		}
	}
	return best, fmt.Errorf("table %q: too many columns: the rows need %d, ferry's own included, and the database allows %d; this row brings the most that no other row needs (%d)", table, total, most, bestOwn)
}

func (e *rowError) Error() string { return e.err.Error() }
func (e *rowError) Unwrap() error { return e.err }
