package export

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func get(t *testing.T, u, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// A job runs for Polls polls, then its files hold every event as gzip
// NDJSON on the storage host, which refuses a presigned URL sent with an
// Authorization header.
func TestJobLifecycle(t *testing.T) {
	s := New(Options{Events: 7, Polls: 2, Parts: 3})
	defer s.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/exports", strings.NewReader(`{"format": "ndjson"}`))
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("create: %v %v", resp, err)
	}
	var created map[string]any
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	id := created["id"].(string)
	var answer struct {
		Status string
		Files  []struct{ URL string }
	}
	for i := 1; i <= 3; i++ {
		resp, b := get(t, s.URL()+"/exports/"+id, s.Token())
		json.Unmarshal(b, &answer)
		if want := map[bool]string{true: "running", false: "completed"}[i <= 2]; answer.Status != want {
			t.Fatalf("poll %d: %s, want %s", i, answer.Status, want)
		}
		if i <= 2 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("poll %d: no Retry-After while running", i)
		}
	}
	var got []Event
	for _, f := range answer.Files {
		if resp, _ := get(t, f.URL, s.Token()); resp.StatusCode != 400 {
			t.Errorf("presigned URL with Authorization: %d, want 400", resp.StatusCode)
		}
		resp, b := get(t, f.URL, "")
		if resp.Header.Get("Content-Type") != "application/gzip" {
			t.Errorf("content type %q", resp.Header.Get("Content-Type"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(zr)
		for {
			var e Event
			if err := dec.Decode(&e); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
	}
	if d := cmp.Diff(s.Events(), got); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	if resp, _ := get(t, s.URL()+"/exports/exp_9999", s.Token()); resp.StatusCode != 404 {
		t.Errorf("unknown job: %d", resp.StatusCode)
	}
}

func TestFailingJob(t *testing.T) {
	s := New(Options{Polls: 1, Fail: func(n int) bool { return n == 1 }})
	defer s.Close()
	for n := 1; n <= 2; n++ {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/exports", strings.NewReader(`{"format": "ndjson"}`))
		req.Header.Set("Authorization", "Bearer "+s.Token())
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
	}
	for id, want := range map[string]string{"exp_0001": "failed", "exp_0002": "completed"} {
		get(t, s.URL()+"/exports/"+id, s.Token())
		_, b := get(t, s.URL()+"/exports/"+id, s.Token())
		var a struct{ Status string }
		json.Unmarshal(b, &a)
		if a.Status != want {
			t.Errorf("%s: %s, want %s", id, a.Status, want)
		}
	}
}

// The CSV report is the events, quoted where RFC 4180 says.
func TestCSVReport(t *testing.T) {
	s := New(Options{Events: 30, Seed: 3})
	defer s.Close()
	_, b := get(t, s.URL()+"/reports/events.csv", s.Token())
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 31 || rows[0][4] != "note" {
		t.Fatalf("rows = %d, header %v", len(rows), rows[0])
	}
	if !bytes.Contains(b, []byte("\"two\r\nlines\"")) || !bytes.Contains(b, []byte(`"said ""hi"""`)) {
		t.Error("the report has no quoted line break or doubled quote: pick a seed that gives them")
	}
}

// ListObjectsV2 pages with continuation tokens until IsTruncated is false.
func TestListObjects(t *testing.T) {
	s := New(Options{Objects: 23, MaxKeys: 10})
	defer s.Close()
	var keys []string
	token := ""
	for pages := 1; ; pages++ {
		u := s.StorageURL() + "/bucket?list-type=2"
		if token != "" {
			u += "&continuation-token=" + url.QueryEscape(token)
		}
		_, b := get(t, u, "")
		var res listResult
		if err := xml.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Contents {
			keys = append(keys, c.Key)
		}
		if !res.IsTruncated {
			if pages != 3 {
				t.Errorf("pages = %d, want 3", pages)
			}
			break
		}
		token = res.NextContinuationToken
	}
	if d := cmp.Diff(s.Objects(), keys); d != "" {
		t.Errorf("keys (-want +got):\n%s", d)
	}
}
