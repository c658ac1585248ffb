package reports

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
)

// BenchmarkHeartbeats: the fold of a fleet's steady state. 100,000
// devices each send a full report (about 2.5 KB: five apps and their
// containers), then two heartbeats (nothing changed) 30 s apart; the
// store (on disk) folds them in fetches of 5,000, as Follow does. The
// baseline, in the same run: a second full report from every device.
// Issue 21: >= 50,000 steady-state device events folded per second, so
// that one manager keeps up with 1,000,000 devices every 30 s with room.
func BenchmarkHeartbeats(b *testing.B) {
	const devices = 100_000
	for range b.N {
		s, err := Open(b.TempDir(), time.Hour, nil)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now().Add(-10 * time.Minute).UTC()
		offset := int64(0)
		round := func(n int, heartbeat bool) []events.Record {
			recs := make([]events.Record, 0, devices)
			at := t0.Add(time.Duration(n) * 30 * time.Second)
			for i := range devices {
				dev := fmt.Sprintf("device-%07d", i)
				ev := events.DeviceEvent{Type: events.DeviceHeartbeat, ID: fmt.Sprintf("r%d-%d", n, i), DeviceID: dev,
					DeviceGroup: fmt.Sprintf("group-%02d", i%50), Time: at.Add(time.Duration(i) * time.Microsecond), Version: 42}
				if !heartbeat {
					rep := events.Report{DeviceID: dev, DeviceGroup: ev.DeviceGroup, Hostname: "host-" + dev, ReportCreationTime: at.Unix(),
						AppliedVersion: 42, Labels: map[string]string{"site": "plant-7"}}
					for a := range 5 {
						name := fmt.Sprintf("app-%d", a)
						rep.AppsStatus = append(rep.AppsStatus, events.AppStatus{Name: name, Version: 42, Status: events.AppStatusRunning, Running: 1, Expected: 1})
						rep.AppsContainers = append(rep.AppsContainers, events.ContainerStatus{ID: fmt.Sprintf("%064x", i*5+a), Name: name + "-1",
							Owner: name, State: "running", Image: fmt.Sprintf("sha256:%064x", a)})
					}
					ev.Type, ev.Version, ev.Report = events.DeviceReported, 0, &rep
				}
				v, err := json.Marshal(ev)
				if err != nil {
					b.Fatal(err)
				}
				recs = append(recs, events.Record{Offset: offset, Value: v})
				offset++
			}
			return recs
		}
		fold := func(recs []events.Record) time.Duration {
			start := time.Now()
			for len(recs) > 0 {
				n := min(len(recs), 5000)
				if err := s.Apply(recs[:n]); err != nil {
					b.Fatal(err)
				}
				recs = recs[n:]
			}
			return time.Since(start)
		}
		fold(round(0, false)) // the devices, known
		full := float64(devices) / fold(round(1, false)).Seconds()
		hb := 2 * float64(devices) / (fold(round(2, true)) + fold(round(3, true))).Seconds()
		d, found, err := s.Device("device-0000000")
		if err != nil || !found || !d.LastSeen.Equal(t0.Add(90*time.Second)) {
			b.Fatalf("after the heartbeats: %+v %v %v", d, found, err)
		}
		s.Close()
		vals := map[string]float64{"devices": devices, "heartbeats_per_s": hb, "full_reports_per_s": full, "vs_full_reports": hb / full,
			"devices_at_30s_one_manager": hb * 30}
		b.ReportMetric(hb, "heartbeats/s")
		b.ReportMetric(full, "full_reports/s")
		benchrec.Record(b, "heartbeats", fmt.Sprintf("%d devices, fetches of 5,000", devices), vals)
	}
}
