package reports

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

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

// TestHeartbeatHold: a heartbeat within the hold of a device's d/ entry
// writes its k/ entry and leaves d/ as it was; one whose expiry passes the
// hold writes d/ again (to be held longer). A device whose last seen has
// expired is gone from every read while its entries are still held, and
// comes back whole with its next report, without the index entries it
// had before.
func TestHeartbeatHold(t *testing.T) {
	const ttl = 10 * time.Second // expiry: the end of the minute + 240 s; held a minute more
	s, err := Open(t.TempDir(), ttl, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if time.Now().Second() >= 55 {
		time.Sleep(6 * time.Second) // the expiry checks below need the same minute throughout
	}
	offset := int64(0)
	apply := func(ev events.DeviceEvent) {
		t.Helper()
		ev.ID = fmt.Sprint("ev-", offset)
		b, _ := json.Marshal(ev)
		if err := s.Apply([]events.Record{{Offset: offset, Value: b}}); err != nil {
			t.Fatal(err)
		}
		offset++
	}
	report := func(at time.Time, status string) {
		apply(events.DeviceEvent{Type: events.DeviceReported, DeviceID: "d1", DeviceGroup: "edge", Time: at, Report: &events.Report{DeviceID: "d1", DeviceGroup: "edge",
			Hostname: "h1", AppliedVersion: 7, AppsStatus: []events.AppStatus{{Name: "web", Version: 1, Status: status, Running: 1, Expected: 1}}}})
	}
	written := func() uint64 { // the Badger version of d1's d/ entry
		t.Helper()
		var v uint64
		err := s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(deviceKey("d1"))
			if err == nil {
				v = item.Version()
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	minute := time.Now().UTC().Truncate(time.Minute)
	t0 := minute.Add(-2 * time.Minute) // expires 3 minutes after this one, held 4
	report(t0, events.AppStatusRunning)
	v0 := written()
	apply(events.DeviceEvent{Type: events.DeviceHeartbeat, DeviceID: "d1", DeviceGroup: "edge", Time: t0.Add(30 * time.Second), Version: 7})
	if d, found, err := s.Device("d1"); err != nil || !found || !d.LastSeen.Equal(t0.Add(30*time.Second)) || len(d.Apps) != 1 {
		t.Fatalf("d1 after a heartbeat within the hold: %+v %v %v", d, found, err)
	}
	if v := written(); v != v0 {
		t.Fatalf("a heartbeat within the hold wrote d/ again (version %d, was %d)", v, v0)
	}
	apply(events.DeviceEvent{Type: events.DeviceHeartbeat, DeviceID: "d1", DeviceGroup: "edge", Time: t0.Add(3 * time.Minute), Version: 7})
	if v := written(); v == v0 {
		t.Fatal("a heartbeat past the hold left d/ to expire before the device")
	}
	if d, found, err := s.Device("d1"); err != nil || !found || !d.LastSeen.Equal(t0.Add(3*time.Minute)) || len(d.Apps) != 1 {
		t.Fatalf("d1 after a heartbeat past the hold: %+v %v %v", d, found, err)
	}

	// Last seen 5 minutes before this minute, failing: expired at the
	// start of this minute, its entries still held.
	gone := minute.Add(-5 * time.Minute).Add(5 * time.Second)
	report(gone, events.AppStatusFailed)
	if written() == 0 {
		t.Fatal("d/ is not held")
	}
	if _, found, err := s.Device("d1"); err != nil || found {
		t.Fatalf("an expired device is read: %v %v", found, err)
	}
	if devs, _, err := s.Devices(DeviceQuery{Group: "edge"}); err != nil || len(devs) != 0 {
		t.Fatalf("an expired device is listed: %+v %v", devs, err)
	}
	if st, err := s.Standing("edge", 7, time.Now(), time.Hour, 10); err != nil || st.Devices != 0 || len(st.Behind) != 0 {
		t.Fatalf("an expired device stands: %+v %v", st, err)
	}
	apply(events.DeviceEvent{Type: events.DeviceHeartbeat, DeviceID: "d1", DeviceGroup: "edge", Time: gone.Add(time.Second), Version: 7})
	if _, found, err := s.Device("d1"); err != nil || found {
		t.Fatalf("a heartbeat brought back an expired device: %v %v", found, err)
	}
	report(time.Now(), events.AppStatusRunning)
	st, err := s.Standing("edge", 7, time.Now(), time.Hour, 10)
	if err != nil || st.Devices != 1 || st.Counts[StatusConverged] != 1 || len(st.Behind) != 0 {
		t.Fatalf("d1 back: %+v %v", st, err)
	}
	failing := 0
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: append(groupPrefix(prefixStandDevice, "edge"), classFailing)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			failing++
		}
		return nil
	})
	if err != nil || failing != 0 {
		t.Fatalf("%d failing index entries left from the expired device (%v)", failing, err)
	}
}
