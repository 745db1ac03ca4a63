// Package export (engine/sim/export) is an in-process bulk-export API:
// the answers a source gives that are not a JSON page. Two hosts, as in
// the services it imitates: the API, and object storage holding the
// results.
//
// The API ([Server.URL]; every request needs Authorization: Bearer
// Options.Token):
//
//   - POST /exports {"format": "ndjson", "since": RFC 3339 time or absent}
//     creates an export job: 202 {"id", "status": "queued"}.
//   - GET /exports/{id} asks how it stands: {"id", "status": "running",
//     "progress"} with Retry-After for Options.Polls polls, then
//     {"status": "completed", "files": [{"url"}]}, the URLs presigned
//     storage links (X-Amz-Signature in the query), or, for a job that
//     fails (Options.Fail), {"status": "failed", "error": {"code",
//     "message"}}. An unknown or expired job is a 404.
//   - GET /events.ndjson?cursor= is the event log as NDJSON, PageSize lines
//     a page, the next page's cursor in X-Next-Cursor (absent on the last).
//   - GET /reports/events.csv is the same events as RFC 4180 CSV with a
//     header row and CRLF line ends: notes hold commas, doubled quotes and
//     line breaks, so a line is not a record.
//
// Storage ([Server.StorageURL]) is S3-shaped:
//
//   - GET /{bucket}/exports/{id}/part-{n}.ndjson.gz is one result file,
//     gzip-compressed NDJSON (Content-Type application/gzip). Like S3, it
//     refuses a request carrying both a presigned signature and an
//     Authorization header (400), so a client that sent its API token
//     across hosts fails.
//   - GET /{bucket}?list-type=2 is ListObjectsV2: XML, at most max-keys
//     (default and cap Options.MaxKeys) Contents per answer, IsTruncated and
//     an opaque NextContinuationToken to pass back as continuation-token.
//
// Every event is generated from Options.Seed, so a test knows what a full
// read gives; [Server.Requests] logs what the client asked.
package export
