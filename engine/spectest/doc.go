// Package spectest holds the parts of `ferry test` that know nothing of
// running a spec: the test file format (run cases replayed from a
// cassette and compared with a snapshot, mapping cases of one record),
// the snapshot's canonical form, and the readable differences between
// what a case wants and what it got.
package spectest
