package kafkalog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
)

// BenchmarkAppend prints events appended per second to the embedded broker
// (log on disk): one ProduceSync per event, then batches of 500, and the
// ratio batched/one-at-a-time measured in the same run.
func BenchmarkAppend(b *testing.B) {
	const one, batched, batch = 2000, 20000, 500
	for range b.N {
		addr := testenv.StartBroker(b, b.TempDir()).Addr()
		l, err := kafkalog.Open(testenv.Context(b, time.Minute), kafkalog.Config{Brokers: []string{addr}})
		if err != nil {
			b.Fatal(err)
		}
		ctx := testenv.Context(b, 5*time.Minute)
		start := time.Now()
		for i := range one {
			if _, err := l.Append(ctx, benchEvent(i)); err != nil {
				b.Fatal(err)
			}
		}
		oneRate := one / time.Since(start).Seconds()

		envs := make([]events.Envelope, 0, batch)
		start = time.Now()
		for i := range batched {
			envs = append(envs, benchEvent(i))
			if len(envs) == batch {
				if _, err := l.AppendBatch(ctx, envs); err != nil {
					b.Fatal(err)
				}
				envs = envs[:0]
			}
		}
		batchRate := batched / time.Since(start).Seconds()
		l.Close()
		b.ReportMetric(oneRate, "one-at-a-time_events/s")
		b.ReportMetric(batchRate, "batched_events/s")
		b.ReportMetric(batchRate/oneRate, "batched/one-at-a-time")
		benchrec.Record(b, "append", "appends to the embedded broker", map[string]float64{"one_at_a_time_per_s": oneRate, "batched_per_s": batchRate, "batched_vs_one": batchRate / oneRate})
	}
}

func benchEvent(i int) events.Envelope {
	p := events.AppCreatedV{Spec: events.NewAppSpec("registry.local/app:1.0")}
	return events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: events.KindApp, Name: fmt.Sprintf("app%d", i)},
		Actor: "bench", CommandID: fmt.Sprintf("bench-%d", i), Time: time.Now(), Payload: p}
}
