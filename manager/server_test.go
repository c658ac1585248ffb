package manager

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

type fakeProjection struct {
	applied, folded int64
	err             error
}

func (f fakeProjection) Applied() int64 { return f.applied }
func (f fakeProjection) Folded() int64  { return f.folded }
func (f fakeProjection) Err() error     { return f.err }
func (f fakeProjection) WaitFor(context.Context, int64) error {
	return errors.New("no projection in this test")
}
func (f fakeProjection) View(func(projections.Reader) error) error {
	return errors.New("no projection in this test")
}

type fakeLog struct {
	end int64
	err error
}

func (f fakeLog) Bounds(context.Context) (int64, int64, error) { return 0, f.end, f.err }

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStatusAndMetrics(t *testing.T) {
	srv := httptest.NewServer(New(Config{Projection: fakeProjection{applied: 41, folded: 7}, Commands: commands.New(nil, nil, nil), Log: fakeLog{end: 50}}))
	defer srv.Close()
	if code, body := httpGet(t, srv.URL+"/api/v2/status"); code != 200 || body != "{\"api_available\":true}\n" {
		t.Fatalf("status: %d %q", code, body)
	}
	if code, _ := httpGet(t, srv.URL+"/api/v2/nope"); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
	_, body := httpGet(t, srv.URL+"/metrics")
	for _, want := range []string{
		"nebula_projection_applied_offset 41\n",
		"nebula_projection_records_folded_total 7\n",
		"nebula_projection_lag_events 8\n",
		"nebula_event_log_up 1\n",
		"nebula_projection_failed 0\n",
		`nebula_http_requests_total{method="GET",route="/api/v2/status",code="200"} 1` + "\n",
		`nebula_http_requests_total{method="GET",route="unmatched",code="404"} 1` + "\n",
		`nebula_http_request_duration_seconds_bucket{le="+Inf"} 2` + "\n",
		"nebula_http_request_duration_seconds_count 2\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestMetricsWhenLogDownAndProjectionFailed(t *testing.T) {
	srv := httptest.NewServer(New(Config{Projection: fakeProjection{applied: 3, err: errors.New("bad record")}, Commands: commands.New(nil, nil, nil), Log: fakeLog{err: errors.New("down")}}))
	defer srv.Close()
	_, body := httpGet(t, srv.URL+"/metrics")
	for _, want := range []string{"nebula_event_log_up 0\n", "nebula_projection_failed 1\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "nebula_projection_lag_events") {
		t.Errorf("lag reported without a log end:\n%s", body)
	}
}

// TestRebuildDuringAnswerIsNotServed: a rebuild that begins while a
// handler reads (the store empties under it) turns its answer into a 503,
// with none of the handler's headers; an answer read with no rebuild goes
// out as written.
func TestRebuildDuringAnswerIsNotServed(t *testing.T) {
	var serving atomic.Bool
	var rebuilds atomic.Uint64
	serving.Store(true)
	s := New(Config{Projection: fakeProjection{applied: 5}, Commands: commands.New(nil, nil, nil), Serving: serving.Load, Rebuilds: rebuilds.Load})
	rebuildNow := false
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rebuildNow { // the projector: not serving, then the store empties
			serving.Store(false)
			rebuilds.Add(1)
			serving.Store(true) // and it has even caught up again before the answer starts
		}
		w.Header().Set("ETag", `"4"`)
		writeJSON(w, http.StatusOK, map[string]any{"apps": []string{}})
	})
	// whenReady alone (a writer of its own) and inside the request
	// metrics, as every route has it (it takes the metrics' writer).
	for _, chain := range []struct {
		name string
		h    http.Handler
	}{{"alone", s.whenReady(handler)}, {"in the metrics", s.metrics.middleware(s.whenReady(handler))}} {
		for _, tc := range []struct {
			rebuild bool
			code    int
			etag    string
		}{{false, 200, `"4"`}, {true, 503, ""}} {
			rebuildNow = tc.rebuild
			rec := httptest.NewRecorder()
			chain.h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v2/apps", nil))
			if rec.Code != tc.code || rec.Header().Get("ETag") != tc.etag || tc.code == 503 && !strings.Contains(rec.Body.String(), "catching up") {
				t.Errorf("%s, rebuild %v: %d %q %s", chain.name, tc.rebuild, rec.Code, rec.Header().Get("ETag"), rec.Body)
			}
		}
	}
	// The metrics count what went out: one 200 and one 503.
	var metrics strings.Builder
	s.metrics.write(&metrics)
	for _, code := range []string{"200", "503"} {
		if !regexp.MustCompile(`nebula_http_requests_total\{[^}]*code="` + code + `"[^}]*\} 1\n`).MatchString(metrics.String()) {
			t.Errorf("the metrics do not count one %s:\n%s", code, metrics.String())
		}
	}
}
