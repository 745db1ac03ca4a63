package spec

// Recursive reports whether the stream fans out from its own records.
func (s *Stream) Recursive() bool { return s.Recurse != nil }

// checkRecurse checks the streams that fan out from their own records.
// What a tree's chains cannot be is refused here rather than half done:
//   - incremental: a folder that did not change since the cursor is not
//     listed, so the subtree below it (where changes happen) would never
//     be read again;
//   - partitions, async: no request chain to run per record;
//   - batch, or being another stream's batch: a batch is one list per
//     parent record, and a tree's records have parents of their own.
func (p *parser) checkRecurse(f *File) {
	batchedBy := map[string]string{}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		if s.Batch.Set {
			if _, ok := batchedBy[s.Batch.V]; !ok {
				batchedBy[s.Batch.V] = s.Name
			}
		}
	}
	for i := range f.Streams.Items {
		s := &f.Streams.Items[i].Value
		rc := s.Recurse
		if rc == nil {
			continue
		}
		path := "streams." + s.Name + ".recurse"
		if rc.MaxDepth.Set && rc.MaxDepth.V < 1 {
			p.errorAt(rc.MaxDepth.P, path+".max_depth", "must be at least 1 (the records of a root chain are level 1)")
		}
		switch {
		case s.Incremental != nil:
			p.errorAt(rc.Pos, path, "a recursive stream cannot be incremental: a record that did not change since the cursor is not listed, and the children below it (where the changes are) would never be read again")
		case s.Partitions != nil:
			p.errorAt(rc.Pos, path, "a stream with partitions sends no request: it has no chain to run again per record")
		case s.Async != nil:
			p.errorAt(rc.Pos, path, "an async stream's export job is not run per record: recurse has no use here")
		case s.Batch.Set:
			p.errorAt(rc.Pos, path, "a recursive stream cannot take a batch: a batch is one list per parent record, and its own records are parents too")
		case batchedBy[s.Name] != "":
			p.errorAt(rc.Pos, path, "stream %q takes this stream as its batch: a recursive stream's records have many parents, not one list per parent", batchedBy[s.Name])
		}
	}
}
