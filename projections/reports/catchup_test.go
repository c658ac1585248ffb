package reports_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// gatedReader passes on the first 100 records it reads, then holds the
// rest until open is closed.
type gatedReader struct {
	reports.Reader
	held  []events.Record
	first bool
	open  <-chan struct{}
}

func (g *gatedReader) Fetch(ctx context.Context) ([]events.Record, error) {
	if !g.first {
		g.first = true
		recs, err := g.Reader.Fetch(ctx)
		if len(recs) > 100 {
			recs, g.held = recs[:100], recs[100:]
		}
		return recs, err
	}
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if held := g.held; held != nil {
		g.held = nil
		return held, nil
	}
	return g.Reader.Fetch(ctx)
}

// TestReportStoreCatchingUp: a report store that starts on a device
// events topic already holding events says it is catching up, and how
// many events are left, until it has folded them; opened again, it is
// caught up at once.
func TestReportStoreCatchingUp(t *testing.T) {
	const n = 3000
	topic := "device-events-catch-up"
	cfg, ctx, produce := eventsTopic(t, topic, 6, 300)
	produced := produce(n)

	dir := t.TempDir()
	var logs testenv.LogBuffer
	s, err := reports.Open(dir, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if catchingUp, left := s.CatchingUp(); !catchingUp || left != -1 || s.Lag() != -1 {
		t.Fatalf("before following: catching up %v, left %d, lag %d", catchingUp, left, s.Lag())
	}
	s.LagEvery = 20 * time.Millisecond
	open := make(chan struct{})
	follow := func(s *reports.Store, open <-chan struct{}) (stop func()) {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			reports.Follow(fctx, s, func(from map[int32]int64) (reports.Reader, error) {
				r, err := kafkalog.NewTopicReader(fctx, cfg, topic, from)
				if err != nil {
					return nil, err
				}
				return &gatedReader{Reader: r, open: open}, nil
			})
		}()
		return func() { cancel(); <-done }
	}
	stop := follow(s, open)
	// The first batch is folded and counted; the next fetch is held.
	testenv.WaitFor(t, "the first batch", 30*time.Second, func() bool { _, left := s.CatchingUp(); return left >= 0 && left < n })
	catchingUp, left := s.CatchingUp()
	if !catchingUp || left <= 0 || left != n-s.Folded() {
		t.Fatalf("after %d of %d events: catching up %v, left %d", s.Folded(), n, catchingUp, left)
	}
	testenv.WaitFor(t, "the lag to be measured", 30*time.Second, func() bool { return s.Lag() == left })
	// Events keep coming and none is folded: the store falls behind, and
	// says so once.
	for i := range 3 {
		produced = produce(50)
		testenv.WaitFor(t, "the lag to grow", 30*time.Second, func() bool { return s.Lag() == left+int64(50*(i+1)) })
	}
	testenv.WaitFor(t, "the store to say it falls behind", 30*time.Second, func() bool { return strings.Contains(logs.String(), "come faster than this manager folds") })
	close(open)
	testenv.WaitFor(t, "the store to catch up", 30*time.Second, func() bool { c, _ := s.CatchingUp(); return !c })
	testenv.WaitFor(t, "no lag", 30*time.Second, func() bool { return s.Lag() == 0 })
	if s.Folded() != int64(produced) {
		t.Fatalf("caught up after %d of %d events", s.Folded(), produced)
	}
	testenv.WaitFor(t, "the store to say it keeps up again", 30*time.Second, func() bool { return strings.Contains(logs.String(), "folded as fast as they come again") })
	if n := strings.Count(logs.String(), "come faster than this manager folds"); n != 1 {
		t.Fatalf("falling behind logged %d times:\n%s", n, logs.String())
	}
	stop()
	s.Close()

	// Opened again on what it folded: nothing is left.
	s, err = reports.Open(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop = follow(s, nil) // no fetch gets past the first: nothing new is needed
	defer stop()
	testenv.WaitFor(t, "the reopened store to be caught up", 30*time.Second, func() bool { c, _ := s.CatchingUp(); return !c })
}
