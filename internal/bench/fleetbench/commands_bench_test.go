package fleetbench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// BenchmarkCommands: a burst of 100,000 commands from 16 clients, each
// updating its own app through the HTTP API (every answer comes once the
// event is appended and folded: read-your-writes), with the manager's
// peak resident memory (VmHWM) at its end; next to 16 goroutines
// appending records of the same size straight to the same broker (another
// topic) for 10 s. Issue 21: a burst's peak under 256 MB.
func BenchmarkCommands(b *testing.B) {
	const clients, dur = 16, 10 * time.Second
	burst := 100_000
	if n, err := strconv.Atoi(os.Getenv("FLEETBENCH_COMMANDS")); err == nil && n > 0 {
		burst = n
	}
	for range b.N {
		m := startManager(b)
		rss0 := testenv.ProcessUsage(b, m.pid).Peak
		sample := testenv.SamplePeak(b, m.pid)
		for i := range clients {
			call(b, "POST", fmt.Sprintf("%s/api/v2/apps/app%d", m.url, i), `{"docker_image": "registry.local/app:1"}`, 200)
		}
		httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
		lat := make([][]time.Duration, clients)
		var wg sync.WaitGroup
		var sent atomic.Int64
		start := time.Now()
		for i := range clients {
			wg.Go(func() {
				url := fmt.Sprintf("%s/api/v2/apps/app%d/update", m.url, i)
				for n := 0; sent.Add(1) <= int64(burst); n++ {
					req, _ := http.NewRequest("PATCH", url, strings.NewReader(fmt.Sprintf(`{"env_vars": {"N": "%d"}}`, n)))
					req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
					req.Header.Set("Authorization", "Bearer "+token)
					t0 := time.Now()
					resp, err := httpc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						b.Errorf("update: %d", resp.StatusCode)
						return
					}
					lat[i] = append(lat[i], time.Since(t0))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		all := slices.Concat(lat...)
		slices.Sort(all)
		if len(all) == 0 {
			b.Fatal("no command answered")
		}
		cmdRate := float64(len(all)) / elapsed.Seconds()
		peakAnon, peak := sample()

		// Baseline: synchronous appends of an app event's size to the
		// same broker, same concurrency.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{m.kafka}, Topic: "bench-raw-appends"})
		if err != nil {
			b.Fatal(err)
		}
		value := []byte(`{"type":"app.patched","schema":1,"kind":"app","name":"app0","payload":{"env_vars":{"N":"1"}}` + strings.Repeat(" ", 300) + `}`)
		var mu sync.Mutex
		raw := 0
		deadline := time.Now().Add(dur)
		start = time.Now()
		for range clients {
			wg.Go(func() {
				n := 0
				for time.Now().Before(deadline) {
					if _, err := l.AppendRaw(ctx, value, ""); err != nil {
						b.Error(err)
						return
					}
					n++
				}
				mu.Lock()
				raw += n
				mu.Unlock()
			})
		}
		wg.Wait()
		rawRate := float64(raw) / time.Since(start).Seconds()
		l.Close()
		cancel()
		vals := map[string]float64{"clients": clients, "commands_per_s": cmdRate, "p50_ms": ms(all[len(all)/2]), "p99_ms": ms(all[len(all)*99/100]),
			"raw_appends_per_s": rawRate, "vs_raw": cmdRate / rawRate, "commands": float64(len(all)), "peak_rss_mb": peak, "peak_anon_mb": peakAnon, "idle_rss_mb": rss0}
		b.Logf("commands: %v", vals)
		b.ReportMetric(cmdRate, "commands/s")
		b.ReportMetric(cmdRate/rawRate, "commands/raw_appends")
		b.ReportMetric(peak, "peak_RSS_MB")
		b.ReportMetric(peakAnon, "peak_anon_MB")
		benchrec.Record(b, "commands", fmt.Sprintf("%d clients, %d x PATCH /apps/<a>/update", clients, len(all)), vals)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
