package reports

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestLongKeysSplitTheTransaction: 500 reports whose device IDs and
// hostnames are 2,000 characters make keys of about 5 MB, more than one
// Badger transaction holds (15% of a memtable); every report is folded
// all the same, in smaller transactions.
func TestLongKeysSplitTheTransaction(t *testing.T) {
	s, err := Open(t.TempDir(), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Second)
	long := strings.Repeat("x", 2000)
	var recs []events.Record
	for i := range reportsPerTxn {
		dev := fmt.Sprintf("%s-%04d", long, i)
		rep := events.Report{DeviceID: dev, DeviceGroup: "edge", Hostname: "h" + dev, AppliedVersion: 3, ReportCreationTime: now.Unix()}
		b, err := json.Marshal(events.DeviceEvent{Type: events.DeviceReported, ID: fmt.Sprint("ev-", i), DeviceID: dev, DeviceGroup: "edge", Time: now, Report: &rep})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, events.Record{Offset: int64(i), Value: b})
	}
	if err := s.Apply(recs); err != nil {
		t.Fatal(err)
	}
	if got := s.Folded(); got != reportsPerTxn {
		t.Fatalf("%d reports folded, want %d", got, reportsPerTxn)
	}
	for _, i := range []int{0, 249, 499} {
		dev := fmt.Sprintf("%s-%04d", long, i)
		if d, found, err := s.Device(dev); err != nil || !found || d.AppliedVersion != 3 || d.Hostname != "h"+dev {
			t.Fatalf("device %d: found %v, %v, version %d", i, found, err, d.AppliedVersion)
		}
	}
	if next, err := s.Offsets(); err != nil || next[0] != reportsPerTxn {
		t.Fatalf("next offset %v, %v; want %d", next, err, reportsPerTxn)
	}
}
