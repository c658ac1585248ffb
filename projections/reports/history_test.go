package reports

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestDeviceStory: a device's story holds the reports that changed its
// applied version or group, oldest first, a page at a time, and nothing
// of other devices (one whose ID starts like its own included); the same
// report delivered twice is one step.
func TestDeviceStory(t *testing.T) {
	s, err := Open(t.TempDir(), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var recs []events.Record
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	report := func(device, group string, version int64) {
		n := len(recs)
		ev := events.DeviceEvent{Type: events.DeviceReported, ID: fmt.Sprintf("ev-%d", n), DeviceID: device, DeviceGroup: group,
			Time:   start.Add(time.Duration(n) * time.Second),
			Report: &events.Report{DeviceID: device, DeviceGroup: group, Hostname: "h", AppliedVersion: version, ReportCreationTime: int64(n)}}
		b, _ := json.Marshal(ev)
		recs = append(recs, events.Record{Offset: int64(n), Value: b})
	}
	for _, step := range []struct {
		group   string
		version int64
	}{{"g", 5}, {"g", 5}, {"g", 9}, {"g", 9}, {"g", 9}, {"h", 9}, {"h", 14}, {"h", 14}} {
		report("dev-1", step.group, step.version)
		report("dev-10", "g", 100+step.version)
	}
	if err := s.Apply(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(recs[2:6]); err != nil { // redelivered
		t.Fatal(err)
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		steps, more, err := s.AppliedVersions("dev-1", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range steps {
			got = append(got, fmt.Sprintf("%s@%d<-%s@%d", a.DeviceGroup, a.Version, a.PreviousGroup, a.Previous))
			after = a.Report
		}
		if !more {
			break
		}
		if page > 5 {
			t.Fatal("pages never end")
		}
	}
	if want := "[g@5<-@0 g@9<-@5 h@9<-g@9 h@14<-@9]"; fmt.Sprint(got) != want {
		t.Fatalf("dev-1's story: %v, want %s", got, want)
	}
	if steps, more, err := s.AppliedVersions("dev-404", "", 10); err != nil || more || len(steps) != 0 {
		t.Fatalf("an unknown device: %v %v %v", steps, more, err)
	}
}
