package humanitec

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkGenerate(b *testing.B) {
	for _, tc := range []struct {
		name string
		size Size
	}{{"small", Small()}, {"demo", Demo()}, {"large", Large()}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				Generate(1, tc.size)
			}
		})
	}
}

// BenchmarkServe measures the handler alone on a large org: the app list,
// one env's resources, and one page of pipelines.
func BenchmarkServe(b *testing.B) {
	org := Generate(1, Large())
	h := NewServer(org, Options{})
	a := org.Apps[0]
	for _, tc := range []struct{ name, target string }{
		{"apps", "/orgs/" + org.ID + "/apps"},
		{"resources", "/orgs/" + org.ID + "/apps/" + a.ID + "/envs/development/resources"},
		{"pipelines page", "/orgs/" + org.ID + "/pipelines?per_page=100"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, tc.target, nil)
			req.Header.Set("Authorization", "Bearer "+DefaultToken)
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
