package manager_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// discardWriter is an http.ResponseWriter that keeps the status and
// drops the body: ServeHTTP in a loop, with no connection under it.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

// BenchmarkInfoChain: what the manager does per /info request beyond
// net/http (middleware, routing, authentication, metrics, the cached
// answer), in process: its handler's ServeHTTP in a loop, next to the
// bare handler of BenchmarkInfo's baseline (the same bytes and ETag),
// in the same run. Reports nanoseconds and allocations per request of
// each, and the ratio.
func BenchmarkInfoChain(b *testing.B) {
	const n = 100_000
	fx := newInfoFixture(b)
	bare := fx.bare()
	for range b.N {
		for _, status := range []int{200, 304} {
			hdr := fx.dev.Clone()
			if status == 304 {
				hdr.Set("If-None-Match", fx.etag)
			}
			run := func(h http.Handler) (nsPerReq, allocsPerReq float64) {
				req := httptest.NewRequest("GET", "/api/v2/device_groups/edge/info", nil)
				req.Header = hdr
				w := &discardWriter{h: http.Header{}}
				one := func() {
					clear(w.h)
					w.code = 0
					r := new(http.Request) // as net/http gives each request its own
					*r = *req
					h.ServeHTTP(w, r)
				}
				for range 1000 { // warm up
					one()
				}
				if w.code != status {
					b.Fatalf("status %d, want %d", w.code, status)
				}
				start := time.Now()
				for range n {
					one()
				}
				nsPerReq = float64(time.Since(start).Nanoseconds()) / n
				return nsPerReq, testing.AllocsPerRun(1000, one)
			}
			bareNs, bareAllocs := run(bare)
			ns, allocs := run(fx.handler)
			s := map[int]string{200: "200", 304: "304"}[status]
			b.ReportMetric(ns, "nebula_"+s+"_ns/req")
			b.ReportMetric(bareNs, "bare_"+s+"_ns/req")
			b.ReportMetric(ns/bareNs, "nebula/bare_"+s)
			b.ReportMetric(allocs, "nebula_"+s+"_allocs/req")
			b.ReportMetric(bareAllocs, "bare_"+s+"_allocs/req")
		}
	}
}
