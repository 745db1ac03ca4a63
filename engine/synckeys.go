package engine

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-etl/ferry/engine/runner"
	"github.com/ferry-etl/ferry/engine/sink"
)

// The primary keys a sync's runs committed are saved in the state, so that
// a run resuming the sync finds the duplicates of rows an earlier run
// wrote: under "<stream>@keys", one entry per partition and Write,
// partition "<partition>|<n>" (n numbers the entries, so a partition's
// later pages add theirs rather than rewrite every key it had), value a
// JSON object of table -> the rows' runner.KeyHash values (8 bytes each,
// little-endian, base64), then "." and their rows' fingerprints (4 bytes
// each, as runner.SavedKeys.Add takes them), when one
// is known: a resumed run tells a collision with a committed row by them
// (an entry without them, from an older ferry, only counts). An entry is committed in the transaction of the
// checkpoint its rows came with, never for rows whose checkpoint is not
// (a partition a refused row blocked is read again). They are page state:
// a finished sync, a stale one or --full-refresh clears them. The hashes
// of the items a chain's pages listed, for its total check, are saved the
// same way under the table name runner.ListedTable, and the hashes of the
// records a partition wrote to append tables under runner.AppendedTable.
// A partition whose reading was replaced (sink.Checkpoint.Replaced) keeps
// its entries, followed by one of runner.ReplacedTable (see retireKeys).
const keysSuffix = "@keys"

// readKeys takes the saved keys out of st and returns them, with the
// number of the next entry and the entries of each partition. An entry it
// cannot read is skipped, with a warning: the duplicates of its rows go
// unnoticed. A partition's entries up to its last of runner.ReplacedTable
// (see retireKeys) are its replaced reading's: given to the runner under
// runner.ReplacedPartition.
func (d *destinations) readKeys(st map[string]map[string]json.RawMessage) (saved *runner.SavedKeys, next int, entries map[partKey][]string) {
	saved, entries = &runner.SavedKeys{}, map[partKey][]string{}
	type entry struct {
		k      partKey
		name   string
		n      int
		tables map[string]string
	}
	var read []entry
	retired := map[partKey]int{} // the number of a partition's last ReplacedTable entry
	for stream, parts := range st {
		base, ok := strings.CutSuffix(stream, keysSuffix)
		if !ok {
			continue
		}
		delete(st, stream)
		for part, raw := range parts {
			i := strings.LastIndexByte(part, '|')
			n, err := strconv.Atoi(part[i+1:])
			if i < 0 || err != nil {
				d.log.Warn("ignoring unreadable saved keys", "stream", base, "entry", part)
				continue
			}
			next = max(next, n+1)
			k := partKey{base, part[:i]}
			entries[k] = append(entries[k], part)
			var tables map[string]string
			if err := json.Unmarshal(raw, &tables); err != nil {
				d.log.Warn("ignoring unreadable saved keys", "stream", base, "entry", part, "error", err)
				continue
			}
			if _, ok := tables[runner.ReplacedTable]; ok {
				if r, ok := retired[k]; !ok || n > r {
					retired[k] = n
				}
			}
			read = append(read, entry{k, part, n, tables})
		}
	}
	for _, e := range read {
		partition := e.k.partition
		if r, ok := retired[e.k]; ok && e.n <= r {
			partition = runner.ReplacedPartition(partition)
		}
		for table, text := range e.tables {
			if table == runner.ReplacedTable {
				continue
			}
			text, fpText, withFps := strings.Cut(text, ".")
			b, err := base64.StdEncoding.DecodeString(text)
			var f []byte
			if err == nil && withFps {
				f, err = base64.StdEncoding.DecodeString(fpText)
			}
			if err != nil || len(b)%8 != 0 || withFps && len(f) != len(b)/2 {
				d.log.Warn("ignoring unreadable saved keys", "stream", e.k.stream, "entry", e.name, "table", table)
				continue
			}
			hashes := make([]uint64, len(b)/8)
			for j := range hashes {
				hashes[j] = binary.LittleEndian.Uint64(b[8*j:])
			}
			var fps []uint32
			if withFps {
				fps = make([]uint32, len(hashes))
				for j := range fps {
					fps[j] = binary.LittleEndian.Uint32(f[4*j:])
				}
			}
			saved.Add(table, e.k.stream, partition, hashes, fps...)
		}
	}
	return saved, next, entries
}

// dropKeys deletes, with the checkpoint being made ready, the entries of
// partition k committed before, and drops the keys made ready with its
// earlier checkpoints: it is read from its start again, and saves the keys
// of this reading. Those before are an earlier run's, or an earlier
// chain's of this run (its parent listed twice, changed in between).
func (d *destinations) dropKeys(k partKey) {
	for _, e := range d.entries[k] {
		stream := k.stream + keysSuffix
		setCheckpoint(&d.cps, &d.cpAt, partKey{stream, e}, sink.Checkpoint{Stream: stream, Partition: e})
	}
	delete(d.entries, k)
	delete(d.keys, k)
}

// keyEntry is an entry of saved keys: its partition and its name.
type keyEntry struct {
	part partKey
	name string
}

// addKeys notes the keys of rows made ready with partition k's checkpoint.
func (d *destinations) addKeys(k partKey, rows []sink.Row) {
	for _, r := range rows {
		if r.KeyHash == 0 {
			continue
		}
		l := d.keyList(k, r.Table)
		l.hashes = append(l.hashes, r.KeyHash)
		l.fps = append(l.fps, r.Fingerprint)
		l.known = l.known || r.Fingerprint != 0
	}
}

// retireKeys marks what partition k saved until now (its committed
// entries, and the keys made ready with its earlier checkpoints) as its
// replaced reading's (see sink.Checkpoint.Replaced): an entry of
// runner.ReplacedTable, numbered after them, says so to readKeys.
func (d *destinations) retireKeys(k partKey) {
	d.keyList(k, runner.ReplacedTable)
}

// addHashes notes hashes that partition k's checkpoint carries (see
// sink.Checkpoint.Listed and Appended), saved as its keys are, under
// pseudo-table (runner.ListedTable, runner.AppendedTable).
func (d *destinations) addHashes(k partKey, pseudo string, hashes []uint64) {
	if len(hashes) == 0 {
		return
	}
	l := d.keyList(k, pseudo)
	l.hashes = append(l.hashes, hashes...)
	l.fps = append(l.fps, make([]uint32, len(hashes))...)
}

// keyList is partition k's list of keys for table, made when new.
func (d *destinations) keyList(k partKey, table string) *keyList {
	if d.keys == nil {
		d.keys = map[partKey]map[string]*keyList{}
	}
	if d.keys[k] == nil {
		d.keys[k] = map[string]*keyList{}
	}
	l := d.keys[k][table]
	if l == nil {
		l = &keyList{}
		d.keys[k][table] = l
	}
	return l
}

// keyList is the keys of one partition's rows in one table, waiting for
// their checkpoint: hashes, and each row's fingerprint. known: some
// fingerprint is.
type keyList struct {
	hashes []uint64
	fps    []uint32
	known  bool
}

// withKeys is the batch's checkpoints and an entry of the keys of each
// partition whose checkpoint is among them (not blocked), numbered from
// keySeq; n is how many (keySeq moves on once they are committed).
func (d *destinations) withKeys() (cps []sink.Checkpoint, n int, err error) {
	d.written = d.written[:0]
	if len(d.keys) == 0 {
		return d.cps, 0, nil
	}
	out := slices.Clone(d.cps)
	ks := slices.SortedFunc(maps.Keys(d.keys), func(a, b partKey) int {
		return strings.Compare(a.stream+"\x00"+a.partition, b.stream+"\x00"+b.partition)
	})
	for _, k := range ks {
		if d.blocked[k] {
			continue
		}
		tables := map[string]string{}
		for table, l := range d.keys[k] {
			b := make([]byte, 0, 8*len(l.hashes))
			for _, h := range l.hashes {
				b = binary.LittleEndian.AppendUint64(b, h)
			}
			text := base64.StdEncoding.EncodeToString(b)
			if l.known {
				f := make([]byte, 0, 4*len(l.fps))
				for _, fp := range l.fps {
					f = binary.LittleEndian.AppendUint32(f, fp)
				}
				text += "." + base64.StdEncoding.EncodeToString(f)
			}
			tables[table] = text
		}
		val, err := json.Marshal(tables)
		if err != nil {
			return nil, 0, fmt.Errorf("saved keys: %w", err)
		}
		name := k.partition + "|" + strconv.Itoa(d.keySeq+n)
		out = append(out, sink.Checkpoint{Stream: k.stream + keysSuffix, Partition: name, Value: val})
		d.written = append(d.written, keyEntry{k, name})
		n++
	}
	return out, n, nil
}
