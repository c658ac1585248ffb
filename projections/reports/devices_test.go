package reports

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
	s, err := Open(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs deviceRecords
	add := recs.add
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
	check := func(s *Store) {
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
	s = reopenWithout(t, s, dir, keyDeviceIndex, prefixGroupDevice)
	defer s.Close()
	check(s)
}

// deviceRecords builds records of the device events topic.
type deviceRecords []events.Record

// add appends an event of type typ; a report's hostname is host-<device>.
func (r *deviceRecords) add(typ, device, group string) {
	ev := events.DeviceEvent{Type: typ, ID: fmt.Sprintf("ev-%d", len(*r)), DeviceID: device, DeviceGroup: group, Time: time.Now()}
	if typ == events.DeviceReported {
		ev.Report = &events.Report{DeviceID: device, DeviceGroup: group, Hostname: "host-" + device, AppliedVersion: 3, ReportCreationTime: int64(1000 + len(*r))}
	}
	b, _ := json.Marshal(ev)
	*r = append(*r, events.Record{Partition: 0, Offset: int64(len(*r)), Value: b})
}

// reopenWithout removes an index (the keys under its prefixes and its
// marker), as a store written before it was, and opens the store again.
func reopenWithout(t *testing.T, s *Store, dir string, marker []byte, prefixes ...[]byte) *Store {
	t.Helper()
	err := s.db.Update(func(txn *badger.Txn) error {
		keys := [][]byte{marker}
		for _, prefix := range prefixes {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			n := len(keys)
			for it.Rewind(); it.Valid(); it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			it.Close()
			if len(keys) == n {
				return fmt.Errorf("no index under %q to remove", prefix)
			}
		}
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
	s.Close()
	s, err = Open(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReportsByHostname: a hostname's reports are read through their
// index, in id order and in pages, alone or with a group, also in a store
// written before the index (indexed when opened).
func TestReportsByHostname(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs deviceRecords
	for range 3 {
		for i := range 4 {
			recs.add(events.DeviceReported, fmt.Sprintf("d%d", i), []string{"edge", "core"}[i%2])
		}
		recs.add(events.DeviceReported, "d1", "edge") // d1 moved to edge: both groups have its reports
	}
	recs.add(events.DeviceReported, "d10", "core") // a hostname that starts like another
	if err := s.Apply(recs); err != nil {
		t.Fatal(err)
	}
	host := func(h string) *string { return &h }
	times := func(rs []StoredReport) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.Report.ReportCreationTime)
		}
		return out
	}
	all := func(string) bool { return true }
	check := func(s *Store) {
		t.Helper()
		got, err := s.Reports(Query{PageSize: 100, Hostname: host("host-d1")}, all)
		if err != nil || fmt.Sprint(times(got)) != "[1001 1004 1006 1009 1011 1014]" {
			t.Fatalf("reports of host-d1: %v %v", times(got), err)
		}
		got, _ = s.Reports(Query{PageSize: 100, Hostname: host("host-d1"), DeviceGroup: host("edge")}, all)
		if fmt.Sprint(times(got)) != "[1004 1009 1014]" {
			t.Fatalf("reports of host-d1 in edge: %v", times(got))
		}
		p1, _ := s.Reports(Query{PageSize: 4, Hostname: host("host-d1")}, all)
		p2, _ := s.Reports(Query{PageSize: 4, Hostname: host("host-d1"), LastID: p1[len(p1)-1].ID}, all)
		if fmt.Sprint(times(p1), times(p2)) != "[1001 1004 1006 1009] [1011 1014]" {
			t.Fatalf("pages of host-d1: %v %v", times(p1), times(p2))
		}
		if got, _ := s.Reports(Query{PageSize: 100, Hostname: host("host-d1")}, func(g string) bool { return g == "core" }); fmt.Sprint(times(got)) != "[1001 1006 1011]" {
			t.Fatalf("reports of host-d1 allowed in core: %v", times(got))
		}
		if got, _ := s.Reports(Query{PageSize: 100, Hostname: host("nobody")}, all); len(got) != 0 {
			t.Fatalf("reports of an unknown host: %v", times(got))
		}
	}
	check(s)
	s = reopenWithout(t, s, dir, keyHostnameIndex, prefixHostReport)
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
	s, err := Open(b.TempDir(), time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recs := make([]events.Record, 0, devices)
	for i := range devices {
		ev := events.DeviceEvent{Type: events.DeviceReported, ID: fmt.Sprint(i), DeviceID: fmt.Sprintf("device-%06d", i), Time: time.Now(),
			DeviceGroup: fmt.Sprintf("group-%d", i%groups)}
		ev.Report = &events.Report{DeviceID: ev.DeviceID, DeviceGroup: ev.DeviceGroup, Hostname: "host", AppliedVersion: 7,
			AppsStatus: []events.AppStatus{{Name: "web", Version: 7, Status: events.AppStatusRunning, Running: 1, Expected: 1}}}
		v, _ := json.Marshal(ev)
		recs = append(recs, events.Record{Offset: int64(i), Value: v})
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

// BenchmarkReportFold prints device reports folded per second into the
// report store on disk (decode, the report, its indexes, the device's
// entry), next to writing the same records as they are, one Badger entry
// each in transactions of the same size, in the same run. The reports
// are a worker's: 3 apps of 2 containers and the group's config.
func BenchmarkReportFold(b *testing.B) {
	const n = 50_000
	reply, _ := json.Marshal(map[string]any{"apps": []any{
		map[string]any{"app_name": "web", "app_id": 7, "docker_image": "registry.local/web:7", "env_vars": map[string]string{"MODE": "prod"}, "starting_ports": []any{80}},
		map[string]any{"app_name": "api", "app_id": 5, "docker_image": "registry.local/api:5", "env_vars": map[string]string{"LOG": "info"}, "starting_ports": []any{8080}},
		map[string]any{"app_name": "agent", "app_id": 3, "docker_image": "registry.local/agent:3", "env_vars": map[string]string{}, "starting_ports": []any{}},
	}, "apps_list": []string{"web", "api", "agent"}, "device_group_id": 7, "prune_id": 1, "cron_jobs": []any{}, "cron_jobs_list": []string{}})
	recs := make([]events.Record, 0, n)
	for i := range n {
		device := fmt.Sprintf("device-%06d", i%10_000)
		rep := &events.Report{DeviceID: device, DeviceGroup: fmt.Sprintf("group-%d", i%100), Hostname: "host-" + device, ReportCreationTime: 1764000000,
			AppliedVersion: 7, CurrentConfig: events.CurrentConfig{StatusCode: 200, Reply: reply}, Errors: []string{},
			MemoryUsage: events.MemoryUsage{Total: 4096, Used: 1024, Free: 3072, Available: 3000}}
		for _, app := range []string{"web", "api", "agent"} {
			rep.AppsStatus = append(rep.AppsStatus, events.AppStatus{Name: app, Version: 7, Status: events.AppStatusRunning, Running: 2, Expected: 2})
			for c := range 2 {
				rep.AppsContainers = append(rep.AppsContainers, events.ContainerStatus{ID: fmt.Sprintf("%064d", i*10+c), Name: fmt.Sprintf("%s-%d", app, c+1),
					Owner: app, State: "running", Image: "sha256:" + fmt.Sprintf("%064d", c)})
			}
		}
		v, _ := json.Marshal(events.DeviceEvent{Type: events.DeviceReported, ID: fmt.Sprint("ev-", i), DeviceID: device, DeviceGroup: rep.DeviceGroup,
			Time: time.Now(), Report: rep})
		recs = append(recs, events.Record{Partition: int32(i % 12), Offset: int64(i / 12), Value: v})
	}
	for range b.N {
		s, err := Open(b.TempDir(), time.Hour, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < n; i += 1000 {
			if err := s.Apply(recs[i : i+1000]); err != nil {
				b.Fatal(err)
			}
		}
		folded := float64(n) / time.Since(start).Seconds()
		if s.Folded() != n {
			b.Fatalf("folded %d of %d", s.Folded(), n)
		}
		s.Close()

		raw, err := Open(b.TempDir(), time.Hour, nil)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		for i := 0; i < n; i += reportsPerTxn {
			err := raw.db.Update(func(txn *badger.Txn) error {
				for j, r := range recs[i:min(i+reportsPerTxn, n)] {
					if err := txn.SetEntry(badger.NewEntry([]byte(fmt.Sprint("raw/", i+j)), r.Value).WithTTL(time.Hour)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		stored := float64(n) / time.Since(start).Seconds()
		raw.Close()
		b.Logf("report size %d bytes", len(recs[0].Value))
		b.ReportMetric(folded, "reports_folded/s")
		b.ReportMetric(stored, "raw_stored/s")
		b.ReportMetric(folded/stored, "folded/raw")
	}
}
