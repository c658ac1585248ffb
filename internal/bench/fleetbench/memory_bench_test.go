package fleetbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/reporter"
)

// BenchmarkReportsMemory: the manager's resident memory with 0, 100,000
// and 200,000 devices (one report each, about 2.5 KB, as the reporter
// writes them to the device events topic) in its reports projection,
// anonymous (heap) and file-backed (Badger's mapped tables) apart; the
// rate the flood of each 100,000 is folded at, and the manager's peak
// resident memory (VmHWM) through it. The second 100k show what a device
// costs once Badger's memtables and caches are full. Issue 21: the peak
// under 256 MB.
func BenchmarkReportsMemory(b *testing.B) {
	for range b.N {
		m := startManager(b)
		time.Sleep(2 * time.Second)
		u0 := testenv.ProcessUsage(b, m.pid)
		anon0, file0 := u0.Anon, u0.FileBack
		sample := testenv.SamplePeak(b, m.pid)
		anon1, file1, rate1 := addDevices(b, m, 0, 100_000)
		anon2, file2, rate2 := addDevices(b, m, 100_000, 100_000)
		peakAnon, peak := sample()
		// More steps, to see whether the growth levels off.
		extra, _ := strconv.Atoi(os.Getenv("FLEETBENCH_MEMORY_STEPS"))
		for i := range extra {
			a, f, _ := addDevices(b, m, (2+i)*100_000, 100_000)
			b.Logf("%dk devices: anon %.0f MB, file %.0f MB", (3+i)*100, a, f)
		}
		m.profile(b, "heap", "manager-reports-devices.heap")
		vals := map[string]float64{"anon_0_mb": anon0, "anon_100k_mb": anon1, "anon_200k_mb": anon2, "anon_mb_per_100k_devices": anon2 - anon1,
			"file_0_mb": file0, "file_200k_mb": file2, "file_mb_per_100k_devices": file2 - file1,
			"folded_per_s_first_100k": rate1, "folded_per_s_second_100k": rate2, "peak_rss_mb": peak, "peak_anon_mb": peakAnon}
		b.Logf("reports memory: %v", vals)
		b.ReportMetric(vals["anon_mb_per_100k_devices"], "anon_MB/100k_devices")
		b.ReportMetric(peak, "peak_RSS_MB")
		b.ReportMetric(peakAnon, "peak_anon_MB")
		b.ReportMetric(rate2, "reports_folded/s")
		benchrec.Record(b, "memory", "manager, devices in the reports projection", vals)
	}
}

// addDevices reports n new devices and returns the manager's resident
// memory (anonymous, file-backed) once they are stored, and how many it
// stored a second from the first report's production to the last one's
// storing.
func addDevices(b *testing.B, m manager, first, devices int) (anonMB, fileMB, perSecond float64) {
	{
		stored0 := testenv.Metric(b, m.url, "nebula_reports_stored_total")
		cl, err := kgo.NewClient(kgo.SeedBrokers(m.kafka), kgo.DefaultProduceTopic(reporter.DeviceEventsTopic), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		now := time.Now().UTC()
		start := time.Now()
		var batch []*kgo.Record
		for i := first; i < first+devices; i++ {
			dev := fmt.Sprintf("device-%08d", i)
			rep := events.Report{DeviceID: dev, DeviceGroup: fmt.Sprintf("group-%03d", i%100), Hostname: "host-" + dev,
				ReportCreationTime: now.Unix(), AppliedVersion: 42, Labels: map[string]string{"site": "plant-7", "ring": "stable"}}
			// A worker's report: five apps, their containers, usage (about 2.5 KB).
			for a := range 5 {
				name := fmt.Sprintf("app-%d", a)
				rep.AppsStatus = append(rep.AppsStatus, events.AppStatus{Name: name, Version: 42, Status: events.AppStatusRunning, Running: 1, Expected: 1})
				rep.AppsContainers = append(rep.AppsContainers, events.ContainerStatus{ID: fmt.Sprintf("%064x", i*5+a), Name: name + "-1", Owner: name,
					State: "running", Image: fmt.Sprintf("sha256:%064x", a)})
			}
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
		// The heap while the flood is folded (the evidence behind the
		// peak; the profile at the end shows what stays).
		time.Sleep(3 * time.Second)
		m.profile(b, "heap", fmt.Sprintf("manager-reports-flood-%dk.heap", first/1000))
		for testenv.Metric(b, m.url, "nebula_reports_stored_total")-stored0 < float64(devices) {
			if ctx.Err() != nil {
				b.Fatalf("the reports projection stored %.0f of %d", testenv.Metric(b, m.url, "nebula_reports_stored_total")-stored0, devices)
			}
			time.Sleep(500 * time.Millisecond)
		}
		rate := float64(devices) / time.Since(start).Seconds()
		cancel()
		time.Sleep(2 * time.Second)
		u := testenv.ProcessUsage(b, m.pid)
		return u.Anon, u.FileBack, rate
	}
}
