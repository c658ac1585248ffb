package fleetbench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/worker/sim"
)

func groupVersion(tb testing.TB, url, group string) int64 {
	h, _ := call(tb, "GET", url+"/api/v2/device_groups/"+group, "", 200)
	v, err := strconv.ParseInt(strings.Trim(h.Get("ETag"), `"`), 10, 64)
	if err != nil {
		tb.Fatalf("ETag %q", h.Get("ETag"))
	}
	return v
}

// fanoutMarks changes the group's app and returns the time until 50%,
// 99% and 100% of the fleet applied the new version.
func fanoutMarks(tb testing.TB, ctx context.Context, url string, fleet *sim.Fleet, devices int, image string) [3]time.Duration {
	tb.Helper()
	start := time.Now()
	call(tb, "PATCH", url+"/api/v2/apps/web/update", `{"docker_image": "`+image+`"}`, 202)
	v := groupVersion(tb, url, "edge")
	var marks [3]time.Duration
	targets := []int{devices / 2, devices * 99 / 100, devices}
	for i := 0; i < 3; {
		n := fleet.AtVersion(v)
		for i < 3 && n >= targets[i] {
			marks[i] = time.Since(start)
			i++
		}
		if ctx.Err() != nil {
			tb.Fatalf("%d of %d devices at the new version (versions %v)", n, devices, fleet.Versions())
		}
		// Counting 100k devices takes a lock each: often enough for
		// marks in seconds, rarely enough not to load the simulator.
		time.Sleep(100 * time.Millisecond)
	}
	return marks
}

func waitAll(tb testing.TB, ctx context.Context, url string, fleet *sim.Fleet, devices int) {
	tb.Helper()
	v := groupVersion(tb, url, "edge")
	for fleet.AtVersion(v) < devices {
		if ctx.Err() != nil {
			tb.Fatalf("%d of %d devices at version %d", fleet.AtVersion(v), devices, v)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// BenchmarkFleetPolls: 10,000 and 100,000 simulated devices polling
// plainly (2.7's way, no long-poll) every 30 s against one manager
// (`nebula dev`, its own process): over a 30 s window the manager's CPU,
// its RSS, the polls' p99, and the projection reads per second (which
// must stay at groups/CACHE_TIME whatever the number of devices); then
// one API call and the time until 50%, 99%, 100% of devices applied it.
func BenchmarkFleetPolls(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if s := os.Getenv("FLEETBENCH_DEVICES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, _ := strconv.Atoi(f)
			sizes = append(sizes, n)
		}
	}
	const checkIn, window = 30 * time.Second, 30 * time.Second
	for range b.N {
		for _, devices := range sizes {
			m := startManager(b)
			url, pid := m.url, m.pid
			call(b, "POST", url+"/api/v2/apps/web", `{"docker_image": "registry.local/web:1"}`, 200)
			call(b, "POST", url+"/api/v2/device_groups/edge", `{"apps": ["web"]}`, 200)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			fleet := sim.Start(ctx, sim.Config{Devices: devices, Group: "edge", Manager: url, Token: token, CheckIn: checkIn,
				StartSpread: checkIn, NoLongPoll: true, MaxConns: 256})
			waitAll(b, ctx, url, fleet, devices)
			time.Sleep(5 * time.Second) // past the start: steady polling
			fleet.Requests()
			cpu0 := testenv.ProcessUsage(b, pid).CPU
			reads0 := testenv.Metric(b, url, "nebula_info_backend_reads_total")
			bounds, hist0 := testenv.Histogram(b, url, "nebula_http_request_duration_seconds")
			time.Sleep(window)
			_, hist1 := testenv.Histogram(b, url, "nebula_http_request_duration_seconds")
			u := testenv.ProcessUsage(b, pid)
			cpu1, rss := u.CPU, u.RSS
			reads1 := testenv.Metric(b, url, "nebula_info_backend_reads_total")
			count, samples := fleet.Requests()
			slices.Sort(samples)
			p99 := 0.0
			if len(samples) > 0 {
				p99 = float64(samples[len(samples)*99/100].Microseconds()) / 1000
			}
			vals := map[string]float64{
				"devices":            float64(devices),
				"polls_per_s":        float64(count) / window.Seconds(),
				"manager_cpu_pct":    100 * (cpu1 - cpu0).Seconds() / window.Seconds(),
				"manager_rss_mb":     rss,
				"poll_p99_ms":        p99,
				"manager_p99_ms":     1000 * testenv.Quantile(bounds, hist0, hist1, 0.99),
				"projection_reads_s": (reads1 - reads0) / window.Seconds(),
			}
			// Every device polls once per check-in (+-10% jitter): more
			// means devices re-poll at once (a slow answer taken for a
			// long-poll), fewer that polls are lost.
			if want := float64(devices) / checkIn.Seconds(); vals["polls_per_s"] > 1.25*want {
				b.Errorf("%.0f polls/s from %d devices polling every %v, want about %.0f", vals["polls_per_s"], devices, checkIn, want)
			} else if vals["polls_per_s"] < 0.8*want {
				// The simulator (100k goroutines on the same 2 cores)
				// could not keep up: the numbers are of a lighter load.
				b.Logf("warning: only %.0f polls/s from %d devices (want about %.0f): the simulator is the limit", vals["polls_per_s"], devices, want)
			}
			marks := fanoutMarks(b, ctx, url, fleet, devices, "registry.local/web:2")
			vals["fanout_50_s"], vals["fanout_99_s"], vals["fanout_100_s"] = marks[0].Seconds(), marks[1].Seconds(), marks[2].Seconds()
			cancel()
			fleet.Wait()
			b.Logf("%d devices, plain polls every %v: %v", devices, checkIn, vals)
			benchrec.Record(b, "polls", fmt.Sprintf("%d devices", devices), vals)
			b.ReportMetric(vals["projection_reads_s"], fmt.Sprintf("reads/s_%d", devices))
		}
	}
}
