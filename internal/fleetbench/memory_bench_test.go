package fleetbench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/benchrec"
	"github.com/nebula-orchestrator/nebula-go/reporter"
)

// BenchmarkReportsMemory: the manager's RSS with 0, 100,000 and 200,000
// devices (one report each, as the reporter writes them to the device
// events topic) in its reports projection. The second 100k show what a
// device costs once Badger's memtables and cache are full.
func BenchmarkReportsMemory(b *testing.B) {
	for range b.N {
		m := startManager(b)
		time.Sleep(2 * time.Second)
		_, rss0 := procStat(b, m.pid)
		rss1 := addDevices(b, m, 0, 100_000)
		rss2 := addDevices(b, m, 100_000, 100_000)
		m.profile(b, "heap", "manager-200k-devices.heap")
		vals := map[string]float64{"rss_0_mb": rss0, "rss_100k_mb": rss1, "rss_200k_mb": rss2, "mb_per_100k_devices": rss2 - rss1}
		b.Logf("reports memory: %v", vals)
		b.ReportMetric(vals["mb_per_100k_devices"], "MB/100k_devices")
		benchrec.Record(b, "memory", "manager, devices in the reports projection", vals)
	}
}

// addDevices reports n new devices and returns the manager's RSS once
// they are stored.
func addDevices(b *testing.B, m manager, first, devices int) float64 {
	{
		stored0 := metric(b, m.url, "nebula_reports_stored_total")
		cl, err := kgo.NewClient(kgo.SeedBrokers(m.kafka), kgo.DefaultProduceTopic(reporter.DeviceEventsTopic), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		now := time.Now().UTC()
		var batch []*kgo.Record
		for i := first; i < first+devices; i++ {
			dev := fmt.Sprintf("device-%08d", i)
			rep := events.Report{DeviceID: dev, DeviceGroup: fmt.Sprintf("group-%03d", i%100), Hostname: "host-" + dev,
				ReportCreationTime: now.Unix(), AppliedVersion: 42,
				AppsStatus: []events.AppStatus{{Name: "web", Version: 42, Status: events.AppStatusRunning, Running: 1, Expected: 1}}}
			v, _ := json.Marshal(events.DeviceEvent{Type: events.DeviceReported, ID: fmt.Sprintf("bench-%d", i), DeviceID: dev,
				DeviceGroup: rep.DeviceGroup, Time: now, Report: &rep})
			batch = append(batch, &kgo.Record{Key: []byte(dev), Value: v})
			if len(batch) == 1000 || i == first+devices-1 {
				if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		cl.Close()
		for metric(b, m.url, "nebula_reports_stored_total")-stored0 < float64(devices) {
			if ctx.Err() != nil {
				b.Fatalf("the reports projection stored %.0f of %d", metric(b, m.url, "nebula_reports_stored_total")-stored0, devices)
			}
			time.Sleep(500 * time.Millisecond)
		}
		cancel()
		time.Sleep(2 * time.Second)
		_, rss := procStat(b, m.pid)
		return rss
	}
}
