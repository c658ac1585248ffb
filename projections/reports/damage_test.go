package reports_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// TestDamagedReportStoreIsRebuilt (finding 2 of issue 22, for the report
// store): a table written into while the store is open makes the next read
// answer ErrDamaged (Badger reads a damaged block as a missing key, with no
// error), and Follow, idle, rebuilds the store from the device events
// topic at once.
func TestDamagedReportStoreIsRebuilt(t *testing.T) {
	const devices = 300
	topic := "device-events-damage"
	cfg, ctx, produce := eventsTopic(t, topic, 3, devices)
	produce(3 * devices)
	follow := func(s *reports.Store) (stop func()) {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			reports.Follow(fctx, s, func(from map[int32]int64) (*kafkalog.TopicReader, error) {
				return kafkalog.NewTopicReader(fctx, cfg, topic, from)
			})
		}()
		return func() { cancel(); <-done }
	}
	count := func(s *reports.Store) (int, error) { return s.DeviceCount("edge") }

	dir := t.TempDir()
	s, err := reports.Open(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := follow(s)
	testenv.WaitFor(t, "the events folded", 30*time.Second, func() bool { n, _ := count(s); return n == devices })
	stop()
	s.Close() // writes the tables

	var logs testenv.LogBuffer
	s, err = reports.Open(dir, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop = follow(s)
	defer stop()
	testenv.WaitFor(t, "the reopened store caught up", 30*time.Second, func() bool { c, _ := s.CatchingUp(); return !c })
	if n, err := count(s); n != devices || err != nil {
		t.Fatalf("a sound store: %d devices, %v", n, err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table file to damage")
	}
	for _, table := range tables {
		if err := testenv.WriteJunk(table); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := count(s); !errors.Is(err, reports.ErrDamaged) {
		t.Fatalf("a damaged store: %d devices, %v; want ErrDamaged", n, err)
	}
	testenv.WaitFor(t, "the rebuild", 30*time.Second, func() bool { n, err := count(s); return err == nil && n == devices })
	if !strings.Contains(logs.String(), "rebuilding it from the device events topic") {
		t.Fatalf("the rebuild was not logged:\n%s", logs.String())
	}
}
