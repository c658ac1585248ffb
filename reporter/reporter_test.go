package reporter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
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

func start(t *testing.T, cfg kafkalog.Config, names reporter.Names) (stop func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := reporter.New(cfg, names, logger)
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
// lost; a restarted reporter neither loses nor repeats anything. The
// topic and group are not the defaults (KAFKA_TOPIC, KAFKA_GROUP_ID).
func TestReporter(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	cfg := kafkalog.Config{Brokers: []string{b.Addr()}}
	names := reporter.Names{Reports: "site-7.reports", Group: "site-7-reporters"}
	ctx := testenv.Context(t, 60*time.Second)
	if err := reporter.EnsureTopics(ctx, cfg, names); err != nil {
		t.Fatal(err)
	}
	pub, err := reporter.NewPublisher(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sink := reporter.NewSink(pub, names)
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
	stop := start(t, cfg, names)
	// 30 reports, and per device: online, converged at version 0.
	got := readAll(t, b.Addr(), reporter.DeviceEventsTopic, 36)
	byType := countTypes(t, got)
	if byType[events.DeviceReported] != 30 || byType[events.DeviceOnline] != 3 || byType[events.DeviceConverged] != 3 || len(got) != 36 {
		t.Fatalf("device events %v (%d in all), want 30 reports, 3 online, 3 converged", byType, len(got))
	}
	last := map[string]int64{}
	for _, r := range got {
		var ev events.DeviceEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil || string(r.Key) != ev.DeviceID {
			t.Fatalf("device event %s (key %s): %v", r.Value, r.Key, err)
		}
		if ev.Type != events.DeviceReported {
			continue
		}
		v := ev.Report.AppsStatus[0].Version
		if prev, seen := last[ev.DeviceID]; seen && v <= prev || v == 99 {
			t.Fatalf("device %s: report %d after %d (or the mis-keyed report got through)", ev.DeviceID, v, prev)
		}
		last[ev.DeviceID] = v
	}
	poison := readAll(t, b.Addr(), names.Poison(), 2)
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
	start(t, cfg, names)
	// 36 reports in all, none lost or repeated (the restarted reporter
	// says "online" again: the projections take it as no change).
	got = readAll(t, b.Addr(), reporter.DeviceEventsTopic, 48)
	if n := countTypes(t, got)[events.DeviceReported]; n != 36 {
		t.Fatalf("after a restart: %d reports, want 36", n)
	}
}

func countTypes(t *testing.T, recs []*kgo.Record) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range recs {
		var ev events.DeviceEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		out[ev.Type]++
	}
	return out
}

// TestStatusEvents: converged on a new version, failed once per failure,
// silent after the threshold, online again on the next report.
func TestStatusEvents(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	cfg := kafkalog.Config{Brokers: []string{b.Addr()}}
	ctx := testenv.Context(t, 60*time.Second)
	if err := reporter.EnsureTopics(ctx, cfg, reporter.Names{}); err != nil {
		t.Fatal(err)
	}
	pub, err := reporter.NewPublisher(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sink := reporter.NewSink(pub, reporter.Names{})
	r, err := reporter.New(cfg, reporter.Names{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.SilentAfter, r.SweepEvery = 500*time.Millisecond, 100*time.Millisecond
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(runCtx) }()
	<-r.Running()
	dev := "device-status-01"
	send := func(version int64, status string) {
		rep := events.Report{DeviceID: dev, DeviceGroup: "edge", ReportCreationTime: 1764000000, AppliedVersion: version,
			AppsStatus: []events.AppStatus{{Name: "web", Status: status, Error: map[bool]string{true: "registry down"}[status == events.AppStatusPullFailed]}}}
		body, _ := json.Marshal(rep)
		if err := sink.Publish(ctx, dev, body); err != nil {
			t.Fatal(err)
		}
	}
	send(-1, events.AppStatusPending)   // online
	send(7, events.AppStatusRunning)    // converged 7
	send(7, events.AppStatusRunning)    // nothing new
	send(7, events.AppStatusPullFailed) // failed
	send(7, events.AppStatusPullFailed) // still failed: nothing new
	time.Sleep(1500 * time.Millisecond) // silent
	send(9, events.AppStatusRunning)    // online, converged 9
	// 7 reports and 6 status events; on a busy machine the device may go
	// silent again after its last report before they are read: the
	// sequence is compared up to the last convergence.
	got := readAll(t, b.Addr(), reporter.DeviceEventsTopic, 7+6)
	var seq []string
	for _, rec := range got {
		if n := len(seq); n > 0 && seq[n-1] == events.DeviceConverged+" 9" {
			break
		}
		var ev events.DeviceEvent
		_ = json.Unmarshal(rec.Value, &ev)
		switch ev.Type {
		case events.DeviceReported:
		case events.DeviceConverged:
			seq = append(seq, fmt.Sprintf("%s %d", ev.Type, ev.Version))
		default:
			seq = append(seq, ev.Type)
		}
	}
	want := "device.online,device.converged 7,device.failed,device.silent,device.online,device.converged 9"
	if strings.Join(seq, ",") != want {
		t.Fatalf("status events %v, want %s", seq, want)
	}
}
