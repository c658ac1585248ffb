package reporter_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testenv"
	"github.com/nebula-orchestrator/nebula-go/reporter"
)

func report(device string, n int) []byte {
	r := events.Report{DeviceID: device, DeviceGroup: "edge", Hostname: "h-" + device, ReportCreationTime: int64(1764000000 + n),
		AppsStatus: []events.AppStatus{{Name: "web", Version: int64(n), Status: events.AppStatusRunning, Running: 1, Expected: 1}}}
	b, _ := json.Marshal(r)
	return b
}

// readAll reads every record of topic until want records arrived.
func readAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testenv.Context(t, 30*time.Second)
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: %d records, want %d", topic, len(out), want)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	// Anything more would be a duplicate: give it a moment to show.
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	cl.PollFetches(short).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	return out
}

func start(t *testing.T, cfg kafkalog.Config) (stop func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := reporter.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	select {
	case <-r.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("reporter did not start")
	}
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// TestReporter: reports become device events in order per device; bad
// reports land in the poison queue with their reason and nothing else is
// lost; a restarted reporter neither loses nor repeats anything.
func TestReporter(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	cfg := kafkalog.Config{Brokers: []string{b.Addr()}}
	ctx := testenv.Context(t, 60*time.Second)
	if err := reporter.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	pub, err := reporter.NewPublisher(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sink := reporter.NewSink(pub)
	devices := []string{"device-aaaa-0001", "device-bbbb-0002", "device-cccc-0003"}
	for n := range 10 {
		for _, d := range devices {
			if err := sink.Publish(ctx, d, report(d, n)); err != nil {
				t.Fatal(err)
			}
		}
		if n == 4 {
			// A malformed report and one keyed as another device.
			if err := sink.Publish(ctx, devices[0], []byte(`{"device_id": 7}`)); err != nil {
				t.Fatal(err)
			}
			if err := sink.Publish(ctx, devices[1], report(devices[2], 99)); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop := start(t, cfg)
	got := readAll(t, b.Addr(), reporter.DeviceEventsTopic, 30)
	if len(got) != 30 {
		t.Fatalf("%d device events, want 30", len(got))
	}
	last := map[string]int64{}
	for _, r := range got {
		var ev events.DeviceEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil || ev.Type != events.DeviceReported || string(r.Key) != ev.DeviceID {
			t.Fatalf("device event %s (key %s): %v", r.Value, r.Key, err)
		}
		v := ev.Report.AppsStatus[0].Version
		if prev, seen := last[ev.DeviceID]; seen && v <= prev || v == 99 {
			t.Fatalf("device %s: report %d after %d (or the mis-keyed report got through)", ev.DeviceID, v, prev)
		}
		last[ev.DeviceID] = v
	}
	poison := readAll(t, b.Addr(), reporter.PoisonTopic, 2)
	if len(poison) != 2 {
		t.Fatalf("%d poisoned, want 2", len(poison))
	}
	for _, p := range poison {
		reason := ""
		for _, h := range p.Headers {
			if h.Key == "reason_poisoned" {
				reason = string(h.Value)
			}
		}
		if !strings.Contains(reason, "invalid") {
			t.Fatalf("poisoned report %s without its reason (headers %v)", p.Value, p.Headers)
		}
	}

	// Restart: 6 more reports; exactly 36 events in all.
	stop()
	for _, d := range devices {
		for n := 10; n < 12; n++ {
			if err := sink.Publish(ctx, d, report(d, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	start(t, cfg)
	if got := readAll(t, b.Addr(), reporter.DeviceEventsTopic, 36); len(got) != 36 {
		t.Fatalf("after a restart: %d device events, want 36", len(got))
	}
}
