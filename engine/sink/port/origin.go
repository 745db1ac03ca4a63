package port

import "context"

// origin is where entities were mapped from: the stream and the parent
// chain (sink.Entity.Parents) of their records, for the report of an
// entity the run could not write. The entities of one chain share one, so
// the spool keeps each entity's index in the sink's table of them (a
// uvarint in its run entry), not the text.
type origin struct{ stream, parents string }

// origins interns the origins of one run's entities. Index 0 is none (an
// entity written without a stream).
type origins struct {
	list []origin
	at   map[origin]uint32
	last uint32 // the index given last: consecutive entities mostly share it
}

// ref returns the reference a run entry keeps for an entity of stream and
// parents: the origin's index, shifted, with merged in the low bit (the
// entity merges several records; the origin is the last one's).
func (t *origins) ref(stream, parents string, merged bool) uint64 {
	var i uint32
	if stream != "" || parents != "" {
		if int(t.last) < len(t.list) && t.list[t.last] == (origin{stream, parents}) {
			i = t.last
		} else {
			o := origin{stream, parents}
			var ok bool
			if i, ok = t.at[o]; !ok {
				if len(t.list) == 0 {
					t.list = append(t.list, origin{})
				}
				i = uint32(len(t.list))
				t.list = append(t.list, o)
				if t.at == nil {
					t.at = map[origin]uint32{}
				}
				t.at[o] = i
			}
			t.last = i
		}
	}
	r := uint64(i) << 1
	if merged {
		r |= 1
	}
	return r
}

// of returns what ref r names.
func (t *origins) of(r uint64) (o origin, merged bool) {
	if i := r >> 1; i > 0 && i < uint64(len(t.list)) {
		o = t.list[i]
	}
	return o, r&1 != 0
}

// source is where one entity came from: its origin, and whether it
// merges several records (the origin then is the last one's).
type source struct {
	origin
	merged bool
}

// sourcesOf returns the source of each of keys that the spool holds.
func (sp *spool) sourcesOf(ctx context.Context, keys []entityKey) (map[entityKey]source, error) {
	out := make(map[entityKey]source, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if err := sp.lockRead(ctx); err != nil {
		return out, err
	}
	defer sp.mu.Unlock()
	for _, k := range keys {
		e, ok, err := sp.find(k.blueprint, k.identifier)
		if err != nil {
			return out, err
		}
		if ok {
			o, merged := sp.origins.of(e.from)
			out[k] = source{o, merged}
		}
	}
	return out, nil
}
