package manager_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// BenchmarkHistory: an app's history, its state ?at= an offset and a
// time, and /events filtered by name, on a log of NEBULA_HISTORY_EVENTS
// records (200,000 by default), each next to a raw scan of the same log
// measured in the same run (history_vs_scan 2 = twice the scan's time).
func BenchmarkHistory(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("NEBULA_HISTORY_EVENTS")); err == nil && v > 0 {
		n = v
	}
	br := testenv.StartBroker(b, b.TempDir())
	ctx := testenv.Context(b, 10*time.Minute)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{br.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.Close)
	var envs []events.Envelope
	var mid string // a time halfway through the log
	for i := range n {
		if i == n/2 {
			mid = time.Now().Format(time.RFC3339Nano)
		}
		var p events.Payload = events.AppCreatedV{Spec: events.NewAppSpec("nginx")}
		name := fmt.Sprintf("app%d", i)
		if i%100 == 99 { // the app whose history is read changes now and then
			p, name = events.AppPatchedV{Patch: events.AppPatch{RunPatch: events.RunPatch{EnvVars: &map[string]string{"I": strconv.Itoa(i)}}}}, "app0"
		}
		envs = append(envs, events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: events.KindApp, Name: name},
			Actor: "bench", Time: time.Now(), Payload: p})
		if len(envs) == 1000 || i == n-1 {
			if _, err := l.AppendBatch(ctx, envs); err != nil {
				b.Fatal(err)
			}
			envs = envs[:0]
		}
	}
	api := launch(b, br.Addr(), b.TempDir(), manager.Auth{}).URL + "/api/v2"
	timed := func(f func()) float64 {
		start := time.Now()
		f()
		return time.Since(start).Seconds()
	}
	get := func(path string) {
		resp, err := testClient.Get(api + path)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
			b.Fatalf("GET %s: %s", path, resp.Status)
		}
	}
	b.ResetTimer()
	for range b.N {
		scan := timed(func() {
			if err := l.Scan(ctx, 0, func(events.Record) bool { return true }); err != nil {
				b.Fatal(err)
			}
		})
		for _, q := range []struct{ metric, path string }{
			{"history", "/apps/app0/history"},
			{"at_offset", fmt.Sprintf("/apps/app0?at=%d", n/2)},
			{"at_time", "/apps/app0?at=" + url.QueryEscape(mid)},
			{"events_by_name", "/events?name=app0&limit=1000"},
		} {
			took := timed(func() { get(q.path) })
			b.ReportMetric(took*1000, q.metric+"_ms")
			b.ReportMetric(took/scan, q.metric+"_vs_scan")
		}
		b.ReportMetric(scan*1000, "raw_scan_ms")
	}
}
