package examples_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/ferry-etl/ferry/engine"
)

// s3Listing answers ListObjectsV2 for /bucket as S3 does: at most
// max-keys (here 10) Contents an answer, IsTruncated true while more
// follow, with a NextContinuationToken to send back as
// continuation-token (S3's documentation: "NextContinuationToken is sent
// when isTruncated is true"). dropToken leaves the token out of that
// answer (0: never), as a broken S3-compatible store or a proxy that
// rewrites the body would: IsTruncated still says there is more.
type s3Listing struct {
	objects   int
	maxKeys   int
	dropToken int // the answer (1-based) whose NextContinuationToken is left out
	answers   int
}

func (s *s3Listing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/bucket" || r.URL.Query().Get("list-type") != "2" {
		http.NotFound(w, r)
		return
	}
	s.answers++
	from := 0
	if tok := r.URL.Query().Get("continuation-token"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		from = n
	}
	to := min(from+s.maxKeys, s.objects)
	type object struct {
		Key          string
		LastModified string
		ETag         string
		Size         int
	}
	type result struct {
		XMLName               xml.Name `xml:"ListBucketResult"`
		Name                  string
		KeyCount              int
		MaxKeys               int
		IsTruncated           bool
		NextContinuationToken string `xml:",omitempty"`
		Contents              []object
	}
	res := result{Name: "bucket", KeyCount: to - from, MaxKeys: s.maxKeys, IsTruncated: to < s.objects}
	for i := from; i < to; i++ {
		res.Contents = append(res.Contents, object{Key: fmt.Sprintf("obj/%03d", i), LastModified: "2026-01-02T03:04:05.000Z", ETag: fmt.Sprintf("\"%032x\"", i), Size: 100 * (i + 1)})
	}
	if res.IsTruncated && s.answers != s.dropToken {
		res.NextContinuationToken = strconv.Itoa(to)
	}
	out, _ := xml.Marshal(res)
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(append([]byte(xml.Header), out...))
}

func runObjects(t *testing.T, s *s3Listing) vendorRun {
	t.Helper()
	srv := httptest.NewServer(s)
	defer srv.Close()
	return runVendorOpts(t, "exports.yaml", map[string]string{"api_url": "http://127.0.0.1:1", "token": "t", "storage_url": srv.URL},
		engine.RunOptions{DryRun: true, Streams: []string{"objects"}})
}

// An S3 listing is read to its last page, IsTruncated false.
func TestExportsS3ListingWhole(t *testing.T) {
	t.Parallel()
	r := runObjects(t, &s3Listing{objects: 25, maxKeys: 10})
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.said)
	}
	if got := len(r.rows["objects"]); got != 25 {
		t.Errorf("objects = %d, want 25", got)
	}
}

// An answer that says IsTruncated true without a NextContinuationToken
// fails the listing, naming it, rather than end it with the objects after
// it unread and exit 0.
func TestExportsS3TruncatedWithoutTokenFails(t *testing.T) {
	t.Parallel()
	r := runObjects(t, &s3Listing{objects: 25, maxKeys: 10, dropToken: 2})
	failedRun(t, r, []string{"IsTruncated"})
}
