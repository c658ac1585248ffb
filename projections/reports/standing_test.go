package reports

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestStandingEqualsAScan: a group's standing read from its counters and
// indexes equals StatusOf over the group's inventory, for generated
// reports, heartbeats and status events (devices moving between groups and versions,
// apps failing and settling, reports out of time order), at versions,
// times and silences that put the start of silence inside seconds with
// devices in them; and again for a store written before the counters
// (indexed when opened).
func TestStandingEqualsAScan(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(19, 20))
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	groups := []string{"edge", "edge2", "lab"}
	statuses := []string{events.AppStatusRunning, events.AppStatusStopped, events.AppStatusPending, events.AppStatusFailed, events.AppStatusExited}
	var recs []events.Record
	add := func(ev events.DeviceEvent) {
		ev.ID = fmt.Sprint("ev-", len(recs))
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, events.Record{Offset: int64(len(recs)), Value: b})
	}
	for range 3000 {
		dev := fmt.Sprintf("dev-%03d", rng.IntN(400))
		group := groups[rng.IntN(len(groups))]
		if rng.IntN(4) > 0 { // most devices stay in their group
			group = groups[int(dev[6]-'0')%len(groups)]
		}
		// Reports mostly move forward in time, some arrive late; many
		// share a second.
		at := base.Add(time.Duration(rng.IntN(600_000)) * time.Millisecond)
		if rng.IntN(10) == 0 {
			at = time.Time{}.Add(time.Duration(rng.IntN(10)) * time.Hour) // long gone: expired at once
		}
		switch rng.IntN(7) {
		case 6:
			add(events.DeviceEvent{Type: events.DeviceHeartbeat, DeviceID: dev, DeviceGroup: group, Time: at, Version: int64(rng.IntN(5)) - 1})
		case 0:
			add(events.DeviceEvent{Type: events.DeviceFailed, DeviceID: dev, DeviceGroup: group, Time: at, Detail: "x"})
		case 1:
			add(events.DeviceEvent{Type: events.DeviceConverged, DeviceID: dev, DeviceGroup: group, Time: at, Version: int64(rng.IntN(4))})
		default:
			var apps []events.AppStatus
			for i := range rng.IntN(3) {
				apps = append(apps, events.AppStatus{Name: fmt.Sprint("app", i), Status: statuses[rng.IntN(len(statuses))]})
			}
			add(events.DeviceEvent{Type: events.DeviceReported, DeviceID: dev, DeviceGroup: group, Time: at, Report: &events.Report{
				DeviceID: dev, DeviceGroup: group, Hostname: "h-" + dev, AppliedVersion: int64(rng.IntN(5)) - 1, AppsStatus: apps}})
		}
	}
	// In several batches, so that counters are read back as well as
	// gathered within one transaction.
	for i := 0; i < len(recs); i += 700 {
		if err := s.Apply(recs[i:min(i+700, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store) {
		t.Helper()
		listed := 0
		for _, g := range append(groups, "none") {
			devs, _, err := s.Devices(DeviceQuery{Group: g})
			if err != nil {
				t.Fatal(err)
			}
			for _, version := range []int64{-1, 0, 2, 4} {
				for _, silentAfter := range []time.Duration{2 * time.Minute, 5*time.Minute + 300*time.Millisecond, 9 * time.Minute, time.Hour} {
					now := time.Now()
					st, err := s.Standing(g, version, now, silentAfter, 15)
					if err != nil {
						t.Fatal(err)
					}
					want := map[string]int{StatusConverged: 0, StatusPending: 0, StatusFailed: 0, StatusSilent: 0}
					behind := 0
					for _, d := range devs {
						st := StatusOf(d, version, now, silentAfter)
						want[st]++
						if st != StatusConverged {
							behind++
						}
					}
					if st.Devices != len(devs) || !maps.Equal(st.Counts, want) {
						t.Fatalf("%s at version %d, silent after %s: %d devices %v, a scan says %d %v", g, version, silentAfter, st.Devices, st.Counts, len(devs), want)
					}
					if len(st.Behind) != min(15, behind) {
						t.Fatalf("%s at version %d: %d listed behind of %d", g, version, len(st.Behind), behind)
					}
					seen, rank := map[string]bool{}, 0
					order := map[string]int{StatusFailed: 0, StatusSilent: 1, StatusPending: 2}
					for _, d := range st.Behind {
						status := StatusOf(d, version, now, silentAfter)
						if status == StatusConverged || seen[d.DeviceID] || d.DeviceGroup != g || order[status] < rank {
							t.Fatalf("%s at version %d: listed %s (%s) after rank %d: %v", g, version, d.DeviceID, status, rank, st.Behind)
						}
						seen[d.DeviceID], rank = true, order[status]
					}
					listed += len(st.Behind)
				}
			}
		}
		if listed == 0 {
			t.Fatal("no device listed behind: the generated fleet tests nothing")
		}
	}
	check(s)
	s = reopenWithout(t, s, dir, keyStandingIndex, prefixStandCount, prefixLastSeen, prefixStandDevice)
	defer s.Close()
	check(s)
}
