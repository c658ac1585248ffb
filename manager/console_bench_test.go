package manager

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// BenchmarkGroupStanding: what a device group's console page (and its live
// part, every 2 s) costs to compute at 1,000, 10,000 and 100,000 devices
// in the group: the group from the projection, where its devices stand
// from the report store's counters on disk; against the baseline of the
// same answer from the group's whole inventory (what it cost before the
// counters). Issue 19 asks for every page under 50 ms at 100,000 devices.
func BenchmarkGroupStanding(b *testing.B) {
	store, err := projections.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if err := store.Reset(events.LogIdentity{ClusterID: "c", Topic: "t", TopicID: "x"}); err != nil {
		b.Fatal(err)
	}
	var recs []events.Record
	for i, env := range []events.Envelope{
		{Type: events.AppCreated, Aggregate: events.Aggregate{Kind: events.KindApp, Name: "web"}, Payload: events.AppCreatedV{Spec: events.NewAppSpec("nginx")}},
		{Type: events.DeviceGroupCreated, Aggregate: events.Aggregate{Kind: events.KindDeviceGroup, Name: "edge"},
			Payload: events.DeviceGroupCreatedV{Spec: events.DeviceGroupSpec{Apps: []string{"web"}, CronJobs: []string{}}}},
	} {
		env.Actor, env.Time = "bench", time.Now().UTC()
		v, err := events.Encode(env)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, events.Record{Offset: int64(i), Value: v})
	}
	if _, err := store.ApplyBatch(recs); err != nil {
		b.Fatal(err)
	}
	rs, err := reports.Open(b.TempDir(), time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	s := &Server{proj: store, reports: rs}
	have := 0
	for _, n := range []int{1000, 10_000, 100_000} {
		var batch []events.Record
		for ; have < n; have++ {
			ev := events.DeviceEvent{Type: events.DeviceReported, ID: fmt.Sprint("ev-", have), DeviceID: fmt.Sprintf("device-%08d", have), DeviceGroup: "edge",
				Time: time.Now(), Report: &events.Report{DeviceID: fmt.Sprintf("device-%08d", have), DeviceGroup: "edge", Hostname: "h", AppliedVersion: int64(have % 2),
					AppsStatus: []events.AppStatus{{Name: "web", Version: 0, Status: events.AppStatusRunning, Running: 1, Expected: 1}}}}
			v, _ := json.Marshal(ev)
			batch = append(batch, events.Record{Offset: int64(have), Value: v})
			if len(batch) == 5000 {
				if err := rs.Apply(batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if err := rs.Apply(batch); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var took, scan time.Duration
			for range b.N {
				start := time.Now()
				_, st, err := s.groupStanding("edge")
				took += time.Since(start)
				if err != nil || st.Devices != n {
					b.Fatalf("standing of %d devices: %d, %v", n, st.Devices, err)
				}
				// The baseline: the group's inventory, every device placed.
				start = time.Now()
				devs, _, err := rs.Devices(reports.DeviceQuery{Group: "edge"})
				counts := map[string]int{}
				for _, d := range devs {
					counts[reports.StatusOf(d, st.Version, start, DefaultSilentAfter)]++
				}
				scan += time.Since(start)
				if err != nil || counts[RolloutPending] != st.Counts[RolloutPending] || counts[RolloutConverged] != st.Counts[RolloutConverged] {
					b.Fatalf("the inventory says %v, the counters %v (%v)", counts, st.Counts, err)
				}
			}
			ms, scanMs := float64(took.Microseconds())/1000/float64(b.N), float64(scan.Microseconds())/1000/float64(b.N)
			b.ReportMetric(ms, "ms/page")
			b.ReportMetric(scanMs, "ms/inventory")
			benchrec.Record(b, "console", fmt.Sprintf("a device group's page, %d devices", n), map[string]float64{"devices": float64(n), "ms_per_page": ms,
				"ms_inventory_read": scanMs, "x_faster": scanMs / ms})
		})
	}
}
