package reports

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestHeartbeat: a heartbeat moves a device's last seen (and where it
// stands) and keeps no report; a late one moves nothing; one from a
// device the store does not know (its full report lost) makes its entry
// from what the heartbeat says.
func TestHeartbeat(t *testing.T) {
	s, err := Open(t.TempDir(), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	var recs []events.Record
	add := func(ev events.DeviceEvent) {
		ev.ID = fmt.Sprint("ev-", len(recs))
		b, _ := json.Marshal(ev)
		recs = append(recs, events.Record{Offset: int64(len(recs)), Value: b})
	}
	add(events.DeviceEvent{Type: events.DeviceReported, DeviceID: "d1", DeviceGroup: "edge", Time: t0, Report: &events.Report{DeviceID: "d1", DeviceGroup: "edge",
		Hostname: "h1", AppliedVersion: 7, AppsStatus: []events.AppStatus{{Name: "web", Version: 1, Status: events.AppStatusRunning, Running: 1, Expected: 1}}}})
	add(events.DeviceEvent{Type: events.DeviceHeartbeat, DeviceID: "d1", DeviceGroup: "edge", Time: t0.Add(9 * time.Minute), Version: 7})
	add(events.DeviceEvent{Type: events.DeviceHeartbeat, DeviceID: "d1", DeviceGroup: "edge", Time: t0.Add(time.Minute), Version: 7}) // late
	add(events.DeviceEvent{Type: events.DeviceHeartbeat, DeviceID: "d2", DeviceGroup: "edge", Time: t0.Add(9 * time.Minute), Version: 5})
	if err := s.Apply(recs); err != nil {
		t.Fatal(err)
	}
	d, found, err := s.Device("d1")
	if err != nil || !found || !d.LastSeen.Equal(t0.Add(9*time.Minute)) || d.AppliedVersion != 7 || len(d.Apps) != 1 || d.Hostname != "h1" {
		t.Fatalf("d1 after its heartbeats: %+v %v %v", d, found, err)
	}
	reps, err := s.Reports(Query{PageSize: 10}, func(string) bool { return true })
	if err != nil || len(reps) != 1 {
		t.Fatalf("reports kept: %d %v (heartbeats keep none)", len(reps), err)
	}
	d2, found, err := s.Device("d2")
	if err != nil || !found || d2.DeviceGroup != "edge" || d2.AppliedVersion != 5 {
		t.Fatalf("d2 known from a heartbeat only: %+v %v %v", d2, found, err)
	}
	// Silent after 5 minutes without the heartbeat; not with it.
	st, err := s.Standing("edge", 7, time.Now(), 5*time.Minute, 10)
	if err != nil || st.Devices != 2 || st.Counts[StatusConverged] != 1 || st.Counts[StatusPending] != 1 || st.Counts[StatusSilent] != 0 {
		t.Fatalf("edge's standing: %+v %v", st, err)
	}
}
