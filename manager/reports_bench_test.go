package manager_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/reporter"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
)

// BenchmarkReports prints device reports ingested per second end to end
// (POST /api/v2/reports -> reports topic -> reporter -> device events ->
// the manager's report projection, until the last one is stored) next to
// the raw produce rate of records of the same size to the same broker,
// measured in the same run.
func BenchmarkReports(b *testing.B) {
	const n, clients = 5000, 16
	for range b.N {
		br := testenv.StartBroker(b, b.TempDir())
		m := testmanager.Start(b, br.Addr(), b.TempDir(), manager.Auth{Enabled: true, Token: "bench-token"})
		testmanager.StartReporter(b, br.Addr())
		bodies := make([][]byte, n)
		for i := range n {
			r := events.Report{DeviceID: fmt.Sprintf("device-%08d", i%1000), DeviceGroup: "edge", Hostname: fmt.Sprintf("host-%d", i%1000),
				ReportCreationTime: int64(1764000000 + i), AppliedVersion: 3,
				AppsStatus: []events.AppStatus{{Name: "web", Version: 2, Status: events.AppStatusRunning, Running: 2, Expected: 2}}}
			bodies[i], _ = json.Marshal(r)
		}

		// Raw produce of the same bytes to the same broker, on a topic
		// partitioned as the reports topic.
		ctx := testenv.Context(b, 5*time.Minute)
		if err := kafkalog.EnsureTopic(ctx, kafkalog.Config{Brokers: []string{br.Addr()}}, "bench-raw", reporter.Partitions, nil); err != nil {
			b.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.DefaultProduceTopic("bench-raw"))
		if err != nil {
			b.Fatal(err)
		}
		var once sync.Once
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 1000)), Value: bodies[i]}, func(_ *kgo.Record, err error) {
				if err != nil {
					once.Do(func() { b.Error(err) })
				}
				wg.Done()
			})
		}
		wg.Wait()
		raw := n / time.Since(start).Seconds()
		cl.Close()

		tr := &http.Transport{MaxIdleConnsPerHost: clients}
		client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		stored := func() int64 { return metricValue(b, m.URL, "nebula_reports_stored_total") }
		base := stored()
		start = time.Now()
		work := make(chan []byte)
		for range clients {
			wg.Go(func() {
				for body := range work {
					req, _ := http.NewRequest("POST", m.URL+"/api/v2/reports", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer bench-token")
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Errorf("POST report: %v", err)
						continue // drain the queue: a return would leave the sender blocked
					}
					if resp.StatusCode != 202 {
						b.Errorf("POST report: %s", resp.Status)
					}
					resp.Body.Close()
				}
			})
		}
		for _, body := range bodies {
			work <- body
		}
		close(work)
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		for stored()-base < n {
			if time.Since(start) > 3*time.Minute {
				b.Fatalf("only %d of %d reports stored", stored()-base, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		e2e := n / time.Since(start).Seconds()
		tr.CloseIdleConnections()
		b.ReportMetric(raw, "raw_produce_records/s")
		b.ReportMetric(e2e, "reports_end_to_end/s")
		b.ReportMetric(e2e/raw, "end_to_end/raw")
		benchrec.Record(b, "reports", "reports over HTTP, queryable", map[string]float64{"end_to_end_per_s": e2e, "raw_produce_per_s": raw, "end_to_end_vs_raw": e2e / raw})
	}
}
