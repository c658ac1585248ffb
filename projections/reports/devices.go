package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The device inventory of the report store: d/<id> per device, and
// m/<group>\x00<id> so that a group's devices (a rollout, a dry run's
// count, GET /devices?device_group=) cost the group's size, not the
// fleet's.

func deviceKey(id string) []byte {
	return append(append([]byte(nil), prefixDevice...), id...)
}

func groupDeviceKey(group, id string) []byte {
	k := append(append([]byte(nil), prefixGroupDevice...), group...)
	return append(append(k, 0), id...)
}

// putDevice writes a device's entry, its group index entry, its k/
// entry and its standing (standing.go); before is the entry it had, as p
// found it, whose index entries go where they changed.
func (s *Store) putDevice(w *batch, sd *standingDelta, d, before Device, p presence) error {
	b, err := d.appendJSON(make([]byte, 0, 512))
	if err != nil {
		if b, err = json.Marshal(d); err != nil {
			return err
		}
	}
	sameGroup := p.found && before.DeviceGroup == d.DeviceGroup
	if p.found && !sameGroup {
		w.delete(groupDeviceKey(before.DeviceGroup, d.DeviceID))
	}
	// The index entries are written again only when they change: a
	// group, or a hold (seen.go), not at every report.
	held := s.holdUntil(d.LastSeen)
	if sameGroup && p.held >= s.expiresAt(d.LastSeen) {
		held = p.held
	}
	sameHeld := sameGroup && held == p.held
	entries := []*badger.Entry{badger.NewEntry(deviceKey(d.DeviceID), b), seen{standOf(d), held}.entry()}
	if !sameHeld {
		entries = append(entries, badger.NewEntry(groupDeviceKey(d.DeviceGroup, d.DeviceID), nil))
	}
	for _, e := range entries {
		e.ExpiresAt = held
		w.set(e)
	}
	s.putStanding(w, sd, before, p, d, held, sameHeld)
	return nil
}

// indexOnce builds an index a store written before it lacks, once (then
// marker is set): for every entry under prefix, the index key keyOf
// returns for its value, expiring with the entry.
func (s *Store) indexOnce(marker, prefix []byte, what string, keyOf func(key, value []byte) ([]byte, error)) error {
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(marker)
		return err
	})
	if err == nil || !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	start, n := time.Now(), 0
	logged := start
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var k []byte
			err := it.Item().Value(func(v []byte) error {
				var err error
				k, err = keyOf(it.Item().Key(), v)
				return err
			})
			if err != nil {
				return fmt.Errorf("%q is corrupt: %w", it.Item().Key(), err)
			}
			e := badger.NewEntry(k, nil)
			e.ExpiresAt = it.Item().ExpiresAt()
			if err := wb.SetEntry(e); err != nil {
				return err
			}
			if n++; time.Since(logged) >= ProgressEvery {
				logged = time.Now()
				s.logger.Info("indexing "+what+" (once, for a store written before the index)", "entries", n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := wb.Set(marker, nil); err != nil {
		return err
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	if n > 0 {
		s.logger.Info("indexed "+what, "entries", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// indexDevices builds m/ for a store written before it.
func (s *Store) indexDevices() error {
	return s.indexOnce(keyDeviceIndex, prefixDevice, "the devices by group", func(_, v []byte) ([]byte, error) {
		var d Device
		err := json.Unmarshal(v, &d)
		return groupDeviceKey(d.DeviceGroup, d.DeviceID), err
	})
}

// indexHostnames builds h/ for a store written before it.
func (s *Store) indexHostnames() error {
	return s.indexOnce(keyHostnameIndex, prefixReport, "the reports by hostname", func(k, v []byte) ([]byte, error) {
		var r StoredReport
		err := json.Unmarshal(v, &r)
		return hostReportKey(r.Report.Hostname, string(k[len(prefixReport):])), err
	})
}

// DeviceQuery selects devices of the inventory, in device ID order.
type DeviceQuery struct {
	Group string // "" for every group
	After string // the last device ID of the previous page
	Limit int    // at most this many (0: no limit)
	// Allowed, if set, keeps only the devices of the groups it allows.
	Allowed func(group string) bool
	// Labels keeps only the devices with every one of these labels.
	Labels map[string]string
}

func hasLabels(d Device, want map[string]string) bool {
	for k, v := range want {
		if got, ok := d.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Devices returns the devices q selects and whether the page is full
// (there may be more after its last).
func (s *Store) Devices(q DeviceQuery) ([]Device, bool, error) {
	out := []Device{}
	prefix := prefixDevice
	if q.Group != "" {
		prefix = groupDeviceKey(q.Group, "")
	}
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: q.Group == ""})
		defer it.Close()
		seek := append(append([]byte(nil), prefix...), q.After...)
		for it.Seek(seek); it.Valid() && (q.Limit == 0 || len(out) < q.Limit); it.Next() {
			id := string(it.Item().Key()[len(prefix):])
			if q.After != "" && id <= q.After {
				continue
			}
			item := it.Item()
			if q.Group != "" {
				var err error
				if item, err = txn.Get(deviceKey(id)); errors.Is(err, badger.ErrKeyNotFound) {
					continue // expired a moment before its index entry
				} else if err != nil {
					return err
				}
			}
			var d Device
			var p presence
			err := item.Value(func(v []byte) (err error) {
				d, p, err = s.deviceOf(txnKV{txn}, v, item.ExpiresAt(), id)
				return err
			})
			if err != nil {
				return err
			}
			if !p.alive {
				continue
			}
			if q.Group != "" && d.DeviceGroup != q.Group || q.Allowed != nil && !q.Allowed(d.DeviceGroup) || !hasLabels(d, q.Labels) {
				continue
			}
			out = append(out, d)
		}
		return nil
	})
	return out, q.Limit > 0 && len(out) == q.Limit, err
}

// DeviceCount is how many devices the inventory has in group (from its
// counters: a few dozen entries whatever the group's size).
func (s *Store) DeviceCount(group string) (int, error) {
	var st Standing
	st.Counts = map[string]int{}
	err := s.view(func(txn *badger.Txn) error { return countStanding(txn, &st, group, 0, 0) })
	return st.Devices, err
}

// readDevice reads a device entry into d: fast, or else as json.Unmarshal
// does.
func readDevice(b []byte, d *Device) error {
	was := *d
	if d.readJSON(b) {
		return nil
	}
	*d = was // what a reader that gave up left
	return json.Unmarshal(b, d)
}
