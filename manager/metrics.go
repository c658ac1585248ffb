package manager

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
)

// requestMetrics counts requests by route pattern (not raw path, so the
// number of series stays bounded) and status code.
type requestMetrics struct {
	mu     sync.Mutex
	counts map[routeCode]uint64
	// patterns: the router's route patterns (a fixed set, not paths)
	// to their labels.
	patternsMu sync.RWMutex
	patterns   map[string]string
	// durations: how long requests took, but long-polls (held on
	// purpose), in the buckets of durationBuckets plus +Inf.
	durations [len(durationBuckets) + 1]atomic.Uint64
	durSum    atomic.Int64 // microseconds
}

// durationBuckets are the upper bounds (seconds) of the request duration
// histogram.
var durationBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func (m *requestMetrics) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(durationBuckets) && sec > durationBuckets[i] {
		i++
	}
	m.durations[i].Add(1)
	m.durSum.Add(d.Microseconds())
}

type routeCode struct {
	method, route string
	code          int
}

func newRequestMetrics() *requestMetrics { return &requestMetrics{counts: map[routeCode]uint64{}} }

// pattern is chi's RoutePattern, computed once per route: chi joins the
// patterns and rewrites their wildcards on every call, which the CPU
// profile of /info under load showed at 7% of the manager's time.
func (m *requestMetrics) pattern(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	var buf [256]byte // the parts joined, as the key: on the stack, as a lookup's string(key) is
	key := buf[:0]
	for _, part := range parts {
		key = append(key, part...)
	}
	m.patternsMu.RLock()
	p, ok := m.patterns[string(key)]
	m.patternsMu.RUnlock()
	if ok {
		return p
	}
	p = (&chi.Context{RoutePatterns: parts}).RoutePattern()
	m.patternsMu.Lock()
	if m.patterns == nil {
		m.patterns = map[string]string{}
	}
	m.patterns[string(key)] = p
	m.patternsMu.Unlock()
	return p
}

func (m *requestMetrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := &respWriter{ResponseWriter: w}
		// ServeHTTP, which serves polls unrouted, sets their pattern
		// before this; the router sets a pattern later, on the way in,
		// of which only its first part reaches this request, and an
		// outer mux may have set one of its own: neither is a label.
		unrouted := r.Pattern == pollRoute
		start := monotonic()
		next.ServeHTTP(ww, r)
		if r.URL.RawQuery == "" || !r.URL.Query().Has("wait") { // no query to parse on most requests
			m.observe(monotonic() - start)
		}
		route := "unmatched"
		if unrouted {
			route = pollRoute
		} else if rc := chi.RouteContext(r.Context()); rc != nil {
			if p := m.pattern(rc.RoutePatterns); p != "" {
				route = p
			}
		}
		code := ww.status
		if code == 0 {
			code = http.StatusOK
		}
		if code == http.StatusNotFound && strings.HasSuffix(route, "*") {
			route = "unmatched" // a subrouter's catch-all, not a route
		}
		m.mu.Lock()
		m.counts[routeCode{r.Method, route, code}]++
		m.mu.Unlock()
	})
}

func (m *requestMetrics) write(w io.Writer) {
	m.mu.Lock()
	keys := make([]routeCode, 0, len(m.counts))
	for k := range m.counts {
		keys = append(keys, k)
	}
	counts := make(map[routeCode]uint64, len(m.counts))
	for k, v := range m.counts {
		counts[k] = v
	}
	m.mu.Unlock()
	slices.SortFunc(keys, func(a, b routeCode) int {
		return cmp.Or(cmp.Compare(a.route, b.route), cmp.Compare(a.method, b.method), cmp.Compare(a.code, b.code))
	})
	header(w, "nebula_http_requests_total", "counter", "HTTP requests served, by method, route pattern and status code.")
	for _, k := range keys {
		fmt.Fprintf(w, "nebula_http_requests_total{method=%q,route=%q,code=\"%d\"} %d\n", k.method, k.route, k.code, counts[k])
	}
	header(w, "nebula_http_request_duration_seconds", "histogram", "Time to answer a request (long-polls, held on purpose, are not counted).")
	var cum uint64
	for i, le := range durationBuckets {
		cum += m.durations[i].Load()
		fmt.Fprintf(w, "nebula_http_request_duration_seconds_bucket{le=\"%s\"} %d\n", strconv.FormatFloat(le, 'g', -1, 64), cum)
	}
	cum += m.durations[len(durationBuckets)].Load()
	fmt.Fprintf(w, "nebula_http_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(w, "nebula_http_request_duration_seconds_sum %g\n", float64(m.durSum.Load())/1e6)
	fmt.Fprintf(w, "nebula_http_request_duration_seconds_count %d\n", cum)
}

func header(w io.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// serveMetrics writes the Prometheus text exposition format.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	applied := s.proj.Applied()
	header(w, "nebula_projection_applied_offset", "gauge", "Offset of the last event folded into this manager's projection (-1: none).")
	fmt.Fprintf(w, "nebula_projection_applied_offset %d\n", applied)
	header(w, "nebula_projection_records_folded_total", "counter", "Events this process folded into the projection (not those it found folded on disk).")
	fmt.Fprintf(w, "nebula_projection_records_folded_total %d\n", s.proj.Folded())
	failed := 0
	if s.proj.Err() != nil {
		failed = 1
	}
	header(w, "nebula_projection_failed", "gauge", "1 when the projection stopped on an event it cannot fold (see the manager's log).")
	fmt.Fprintf(w, "nebula_projection_failed %d\n", failed)
	s.refused.writeMetrics(w)

	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	up := 1
	_, end, err := s.log.Bounds(ctx)
	if err != nil || s.eventLogUp(ctx) != nil {
		up = 0
	}
	header(w, "nebula_event_log_up", "gauge", "1 when the event log answered this scrape and no append failed in the last 30 s.")
	fmt.Fprintf(w, "nebula_event_log_up %d\n", up)
	if up == 1 {
		header(w, "nebula_event_log_end_offset", "gauge", "Offset the next event appended to the log will get.")
		fmt.Fprintf(w, "nebula_event_log_end_offset %d\n", end)
		header(w, "nebula_projection_lag_events", "gauge", "Events in the log not yet folded into this manager's projection.")
		fmt.Fprintf(w, "nebula_projection_lag_events %s\n", strconv.FormatInt(max(end-1-applied, 0), 10))
	}
	header(w, "nebula_info_cache_hits_total", "counter", "Device group /info answers served from memory.")
	fmt.Fprintf(w, "nebula_info_cache_hits_total %d\n", s.cache.hits.Load())
	header(w, "nebula_info_backend_reads_total", "counter", "Device group /info reads of the projection (cache misses): bounded by groups/CACHE_TIME plus changes, whatever the number of devices.")
	fmt.Fprintf(w, "nebula_info_backend_reads_total %d\n", s.cache.reads.Load())
	if f, ok := s.reports.(interface{ Folded() int64 }); ok {
		header(w, "nebula_reports_stored_total", "counter", "Device reports this manager stored in its report projection.")
		fmt.Fprintf(w, "nebula_reports_stored_total %d\n", f.Folded())
	}
	if s.reports != nil {
		if lag := s.reports.Lag(); lag >= 0 {
			header(w, "nebula_device_events_lag", "gauge", "Device events not yet folded into this manager's report projection, as of its last check (every 10 s); growing means the fleet reports faster than this manager folds.")
			fmt.Fprintf(w, "nebula_device_events_lag %d\n", lag)
		}
	}
	s.metrics.write(w)
}
