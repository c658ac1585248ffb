package projections

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestDeviceInventoryByGroup: a group's devices are read through the
// group index, in pages, also after a device moved to another group and
// for a store written before the index (indexed when opened).
func TestDeviceInventoryByGroup(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenReports(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs []DeviceRecord
	add := func(typ, device, group string) {
		ev := events.DeviceEvent{Type: typ, ID: fmt.Sprintf("ev-%d", len(recs)), DeviceID: device, DeviceGroup: group, Time: time.Now()}
		if typ == events.DeviceReported {
			ev.Report = &events.Report{DeviceID: device, DeviceGroup: group, Hostname: "host-" + device, AppliedVersion: 3}
		}
		b, _ := json.Marshal(ev)
		recs = append(recs, DeviceRecord{Partition: 0, Offset: int64(len(recs)), Value: b})
	}
	for i := range 5 {
		add(events.DeviceReported, fmt.Sprintf("dev-a%d", i), "alpha")
	}
	for i := range 3 {
		add(events.DeviceReported, fmt.Sprintf("dev-b%d", i), "beta")
	}
	add(events.DeviceOnline, "dev-c0", "gamma")           // known from a status event only
	add(events.DeviceReported, "dev-a1", "beta")          // moved from alpha to beta
	add(events.DeviceConverged, "dev-a1", "beta")         // its status changes too
	add(events.DeviceReported, "dev-a2", "alpha")         // reports again in the same group
	add(events.DeviceFailed, "dev-b0", "beta")            // a status change in place
	add(events.DeviceReported, "alpha-dev-0", "alphabet") // a group whose name starts like another's
	if err := s.Apply(recs); err != nil {
		t.Fatal(err)
	}

	ids := func(devs []Device) []string {
		out := []string{}
		for _, d := range devs {
			out = append(out, d.DeviceID)
		}
		return out
	}
	check := func(s *ReportStore) {
		t.Helper()
		want := map[string][]string{
			"alpha":    {"dev-a0", "dev-a2", "dev-a3", "dev-a4"},
			"beta":     {"dev-a1", "dev-b0", "dev-b1", "dev-b2"},
			"gamma":    {"dev-c0"},
			"alphabet": {"alpha-dev-0"},
			"delta":    {},
		}
		for g, w := range want {
			devs, full, err := s.Devices(DeviceQuery{Group: g})
			if err != nil || full || !slices.Equal(ids(devs), w) {
				t.Fatalf("devices of %s: %v (full %v) %v, want %v", g, ids(devs), full, err, w)
			}
			for _, d := range devs {
				if d.DeviceGroup != g {
					t.Fatalf("device %s listed in %s has group %s", d.DeviceID, g, d.DeviceGroup)
				}
			}
			if n, err := s.DeviceCount(g); err != nil || n != len(w) {
				t.Fatalf("count of %s: %d %v, want %d", g, n, err, len(w))
			}
		}
		// Pages of 2 across every group, and of one group.
		var all []string
		q := DeviceQuery{Limit: 2}
		for {
			devs, full, err := s.Devices(q)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ids(devs)...)
			if !full {
				break
			}
			q.After = devs[len(devs)-1].DeviceID
		}
		if len(all) != 10 || !slices.IsSorted(all) {
			t.Fatalf("all devices in pages: %v", all)
		}
		page, full, _ := s.Devices(DeviceQuery{Group: "beta", After: "dev-a1", Limit: 2})
		if !slices.Equal(ids(page), []string{"dev-b0", "dev-b1"}) || !full {
			t.Fatalf("page of beta after dev-a1: %v %v", ids(page), full)
		}
		onlyBeta, _, _ := s.Devices(DeviceQuery{Allowed: func(g string) bool { return g == "beta" }})
		if !slices.Equal(ids(onlyBeta), want["beta"]) {
			t.Fatalf("devices allowed: %v", ids(onlyBeta))
		}
	}
	check(s)

	// A store from before the index: its m/ entries and marker removed.
	err = s.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixGroupDevice})
		var keys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		it.Close()
		keys = append(keys, keyDeviceIndex)
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.DeviceCount("alpha"); n != 0 {
		t.Fatalf("the index was not removed: %d", n)
	}
	s.Close()
	s, err = OpenReports(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
}

// BenchmarkGroupDevices prints what reading one group's devices costs
// (a rollout, a dry run's count, GET /devices?device_group=) in an
// inventory of 100,000 devices in 1,000 groups, next to reading every
// device and keeping the group's (what it cost before the index), in the
// same run, on disk.
func BenchmarkGroupDevices(b *testing.B) {
	const devices, groups = 100_000, 1_000
	s, err := OpenReports(b.TempDir(), time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recs := make([]DeviceRecord, 0, devices)
	for i := range devices {
		ev := events.DeviceEvent{Type: events.DeviceReported, ID: fmt.Sprint(i), DeviceID: fmt.Sprintf("device-%06d", i), Time: time.Now(),
			DeviceGroup: fmt.Sprintf("group-%d", i%groups)}
		ev.Report = &events.Report{DeviceID: ev.DeviceID, DeviceGroup: ev.DeviceGroup, Hostname: "host", AppliedVersion: 7,
			AppsStatus: []events.AppStatus{{Name: "web", Version: 7, Status: events.AppStatusRunning, Running: 1, Expected: 1}}}
		v, _ := json.Marshal(ev)
		recs = append(recs, DeviceRecord{Offset: int64(i), Value: v})
	}
	if err := s.Apply(recs); err != nil {
		b.Fatal(err)
	}
	timeIt := func(f func() int) time.Duration {
		start := time.Now()
		const rounds = 5
		for range rounds {
			if n := f(); n != devices/groups {
				b.Fatalf("%d devices in the group, want %d", n, devices/groups)
			}
		}
		return time.Since(start) / rounds
	}
	for range b.N {
		indexed := timeIt(func() int {
			devs, _, err := s.Devices(DeviceQuery{Group: "group-7"})
			if err != nil {
				b.Fatal(err)
			}
			return len(devs)
		})
		scan := timeIt(func() int {
			devs, _, err := s.Devices(DeviceQuery{Allowed: func(g string) bool { return g == "group-7" }})
			if err != nil {
				b.Fatal(err)
			}
			return len(devs)
		})
		counted := timeIt(func() int {
			n, err := s.DeviceCount("group-7")
			if err != nil {
				b.Fatal(err)
			}
			return n
		})
		b.ReportMetric(float64(indexed.Microseconds()), "group_us")
		b.ReportMetric(float64(counted.Microseconds()), "count_us")
		b.ReportMetric(float64(scan.Microseconds()), "full_scan_us")
		b.ReportMetric(float64(scan)/float64(indexed), "scan/group")
	}
}
