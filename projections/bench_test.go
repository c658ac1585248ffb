package projections

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/testenv"

	"github.com/nebula-orchestrator/nebula-go/internal/benchrec"
)

// BenchmarkAppendToApplied prints how long an event takes from Append to
// being readable in the projection (WaitFor returns), on the embedded
// broker with the log and the projection on disk. Target: p99 < 5 ms.
func BenchmarkAppendToApplied(b *testing.B) {
	const warmup, n = 200, 3000
	for range b.N {
		l := openLog(b, testenv.StartBroker(b, b.TempDir()).Addr())
		s := openStore(b, b.TempDir())
		runProjector(b, s, l)
		ctx := testenv.Context(b, 5*time.Minute)
		lat := make([]time.Duration, 0, n)
		for i := range warmup + n {
			start := time.Now()
			off, err := l.Append(ctx, ev(events.KindApp, fmt.Sprintf("app%d", i), events.AppCreatedV{Spec: events.NewAppSpec("nginx")}))
			if err != nil {
				b.Fatal(err)
			}
			if err := s.WaitFor(ctx, off); err != nil {
				b.Fatal(err)
			}
			if i >= warmup {
				lat = append(lat, time.Since(start))
			}
		}
		slices.Sort(lat)
		ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(ms(0.50), "p50_ms")
		b.ReportMetric(ms(0.99), "p99_ms")
		b.ReportMetric(ms(1), "max_ms")
		benchrec.Record(b, "applied", "append to applied (read-your-writes)", map[string]float64{"p50_ms": ms(0.50), "p99_ms": ms(0.99), "max_ms": ms(1)})
	}
}

// BenchmarkReplay prints a full rebuild of the projection from offset 0
// in events/s next to the raw consume speed of the same log (the same
// reader, doing nothing with the records), measured in the same run.
// Target: replay/raw >= 0.5.
func BenchmarkReplay(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("NEBULA_REPLAY_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		l := openLog(b, testenv.StartBroker(b, b.TempDir()).Addr())
		last := appendApps(b, l, "app", n)
		ctx := testenv.Context(b, 10*time.Minute)

		start := time.Now()
		r, err := l.NewReader(0)
		if err != nil {
			b.Fatal(err)
		}
		var seen int64 = -1
		for seen < last {
			recs, err := r.Fetch(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) > 0 {
				seen = recs[len(recs)-1].Offset
			}
		}
		r.Close()
		raw := float64(n) / time.Since(start).Seconds()

		s := openStore(b, b.TempDir())
		start = time.Now()
		if err := Rebuild(ctx, s, l, opener(l)); err != nil {
			b.Fatal(err)
		}
		replay := float64(n) / time.Since(start).Seconds()
		if s.Applied() != last || s.Folded() != int64(n) {
			b.Fatalf("rebuild applied %d (want %d), folded %d (want %d)", s.Applied(), last, s.Folded(), n)
		}
		b.ReportMetric(raw, "raw_consume_events/s")
		b.ReportMetric(replay, "replay_events/s")
		b.ReportMetric(replay/raw, "replay/raw")
		benchrec.Record(b, "replay", fmt.Sprintf("rebuild from %d events", n), map[string]float64{"events": float64(n), "replay_per_s": replay, "raw_consume_per_s": raw, "replay_vs_raw": replay / raw})
	}
}
