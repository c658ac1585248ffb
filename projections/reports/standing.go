package reports

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Where a group's devices stand against its version, without reading the
// group's inventory: the fold keeps, per group, counters of its devices by
// the minute of their last report, their applied version and their class
// (below), with the second within the minute; and two indexes that list
// the devices behind. A page that shows 100,000 devices' standing reads a
// few dozen counters, whatever the group's size (docs/reports.md).
//
//	c/<group>\x00<minute u32 BE><applied BE><class>  60 x uint32 BE: devices last seen in each second of
//	                                                the minute (expires with those devices)
//	l/<group>\x00<last seen ns BE><device id>       applied BE + class: the group's devices by last report
//	s/<group>\x00<class><applied BE><device id>     empty: the group's devices by class and applied version
//
// applied is the version with its sign bit flipped, so that -1 sorts first.
// A device's c/ and l/ entries expire 24 x the report TTL after the end of
// the minute of its last report (expiresAt); its s/ entry with its d/
// entry, held a little longer (seen.go).

// Statuses of a device against its group's version.
const (
	StatusConverged = "converged" // applied the group's current version, every app as wanted
	StatusPending   = "pending"   // not yet
	StatusFailed    = "failed"    // an app failed (engine refused, image not pullable, exited, unhealthy)
	StatusSilent    = "silent"    // not heard from for silentAfter
)

// Classes of a device by its apps' statuses.
const (
	classFailing   byte = 'f' // an app fails
	classOK        byte = 'o' // every app running or stopped as wanted
	classUnsettled byte = 'u' // an app is on its way (pulling, starting, ...)
)

func classOf(apps []events.AppStatus) byte {
	c := classOK
	for _, a := range apps {
		if a.Failing() {
			return classFailing
		}
		if a.Status != events.AppStatusRunning && a.Status != events.AppStatusStopped {
			c = classUnsettled
		}
	}
	return c
}

// StatusOf places a device against its group's version at now.
func StatusOf(d Device, version int64, now time.Time, silentAfter time.Duration) string {
	if now.Sub(d.LastSeen) > silentAfter {
		return StatusSilent
	}
	return statusOfClass(classOf(d.Apps), d.AppliedVersion, version)
}

// statusOfClass is StatusOf for a device heard from.
func statusOfClass(class byte, applied, version int64) string {
	switch {
	case class == classFailing:
		return StatusFailed
	case applied < version || class == classUnsettled:
		return StatusPending
	}
	return StatusConverged
}

// Standing is where a group's devices stand against a version.
type Standing struct {
	Devices int
	Counts  map[string]int // by status, every status present
	// Behind lists devices not converged, at most as many as asked:
	// failed first, then silent (the longest first), then pending (the
	// oldest version first).
	Behind []Device
}

// standingScan bounds the entries a list of Standing examines per status,
// for a group whose devices are mostly of another status than the index
// entries say (those are read from d/ to be sure).
const standingScan = 2000

func seconds(t time.Time) uint64 { return uint64(max(t.Unix(), 0)) }

func flip(v int64) uint64 { return uint64(v) ^ 1<<63 }

func unflip(u uint64) int64 { return int64(u ^ 1<<63) }

// expiresAt is when a device last seen at lastSeen leaves the inventory.
func (s *Store) expiresAt(lastSeen time.Time) uint64 {
	return (seconds(lastSeen)/60+1)*60 + uint64(24*s.ttl/time.Second)
}

func groupPrefix(prefix []byte, group string) []byte {
	return append(append(append([]byte(nil), prefix...), group...), 0)
}

func countKey(group string, lastSeen time.Time, applied int64, class byte) []byte {
	k := binary.BigEndian.AppendUint32(groupPrefix(prefixStandCount, group), uint32(seconds(lastSeen)/60))
	return append(binary.BigEndian.AppendUint64(k, flip(applied)), class)
}

func lastSeenFrom(group string, lastSeen time.Time) []byte {
	return binary.BigEndian.AppendUint64(groupPrefix(prefixLastSeen, group), uint64(max(lastSeen.UnixNano(), 0)))
}

func lastSeenKey(st stand) []byte { return append(lastSeenFrom(st.group, st.last), st.id...) }

func classKey(st stand) []byte {
	return append(binary.BigEndian.AppendUint64(append(groupPrefix(prefixStandDevice, st.group), st.class), flip(st.applied)), st.id...)
}

// standingDelta gathers a transaction's changes to the counters, written
// once each at its end (a batch of heartbeats moves many devices between
// the same few counters).
type standingDelta struct {
	counts  map[string]*[60]int32
	expires map[string]uint64
}

func newStandingDelta() *standingDelta {
	return &standingDelta{counts: map[string]*[60]int32{}, expires: map[string]uint64{}}
}

func (sd *standingDelta) add(s *Store, st stand, n int32) {
	k := string(countKey(st.group, st.last, st.applied, st.class))
	c := sd.counts[k]
	if c == nil {
		c = new([60]int32)
		sd.counts[k] = c
		sd.expires[k] = s.expiresAt(st.last)
	}
	c[seconds(st.last)%60] += n
}

// putStanding moves a device's standing entries from before (as p
// found it) to d; held is when d's d/ entry expires, and its s/ entry
// with it (sameHeld: as before's). The counters count before only if it
// was alive; an expired device's index entries may still be there.
func (s *Store) putStanding(w *batch, sd *standingDelta, before Device, p presence, d Device, held uint64, sameHeld bool) {
	b, st := standOf(before), standOf(d)
	sameClass := p.found && b.group == st.group && b.class == st.class && b.applied == st.applied
	if p.alive {
		sd.add(s, b, -1)
	}
	if p.found {
		if b.group != st.group || !b.last.Equal(st.last) {
			w.delete(lastSeenKey(b))
		}
		if !sameClass {
			w.delete(classKey(b))
		}
	}
	sd.add(s, st, 1)
	w.set(s.lastSeenEntry(st))
	if !sameClass || !sameHeld {
		w.set(classEntry(st, held))
	}
}

// lastSeenEntry is a device's l/ entry: it expires with the device.
func (s *Store) lastSeenEntry(st stand) *badger.Entry {
	e := badger.NewEntry(lastSeenKey(st), append(binary.BigEndian.AppendUint64(nil, flip(st.applied)), st.class))
	e.ExpiresAt = s.expiresAt(st.last)
	return e
}

// classEntry is a device's s/ entry: it expires with its d/ entry.
func classEntry(st stand, held uint64) *badger.Entry {
	e := badger.NewEntry(classKey(st), nil)
	e.ExpiresAt = held
	return e
}

// indexStanding builds c/, l/ and s/ for a store written before them,
// once; the devices' entries are written again to expire with them.
func (s *Store) indexStanding() error {
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(keyStandingIndex)
		return err
	})
	if err == nil || !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	start, n := time.Now(), 0
	logged := start
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	sd := newStandingDelta()
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixDevice, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d Device
			b, err := it.Item().ValueCopy(nil)
			if err == nil {
				err = readDevice(b, &d)
			}
			if err != nil {
				return fmt.Errorf("%q is corrupt: %w", it.Item().Key(), err)
			}
			st, held := standOf(d), s.holdUntil(d.LastSeen)
			sd.add(s, st, 1)
			k := seen{st, held}
			dev, member := badger.NewEntry(deviceKey(d.DeviceID), b), badger.NewEntry(groupDeviceKey(d.DeviceGroup, d.DeviceID), nil)
			dev.ExpiresAt, member.ExpiresAt = held, held
			es := []*badger.Entry{s.lastSeenEntry(st), classEntry(st, held), k.entry(), dev, member}
			for _, e := range es {
				if err := wb.SetEntry(e); err != nil {
					return err
				}
			}
			if n++; time.Since(logged) >= ProgressEvery {
				logged = time.Now()
				s.logger.Info("indexing the devices' standing (once, for a store written before it)", "devices", n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, c := range sd.counts {
		e := badger.NewEntry([]byte(k), encodeCounts(c))
		e.ExpiresAt = sd.expires[k]
		if err := wb.SetEntry(e); err != nil {
			return err
		}
	}
	if err := wb.Set(keyStandingIndex, nil); err != nil {
		return err
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	if n > 0 {
		s.logger.Info("indexed the devices' standing", "devices", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func encodeCounts[N int32 | uint32](c *[60]N) []byte {
	b := make([]byte, 0, 240)
	for _, n := range c {
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return b
}

// flush adds the gathered changes to the stored counters.
func (sd *standingDelta) flush(w *batch) error {
	for k, delta := range sd.counts {
		var c [60]uint32
		v, _, found, err := w.get([]byte(k))
		if err != nil {
			return err
		}
		if found {
			if err := readCounts(v, &c); err != nil {
				return fmt.Errorf("standing counter %q: %w", k, err)
			}
		}
		total := uint32(0)
		for i, n := range delta {
			c[i] = uint32(int32(c[i]) + n)
			if int32(c[i]) < 0 {
				c[i] = 0 // an expired device's count, not to go below nothing
			}
			total += c[i]
		}
		if total == 0 {
			w.delete([]byte(k))
			continue
		}
		e := badger.NewEntry([]byte(k), encodeCounts(&c))
		e.ExpiresAt = sd.expires[k]
		w.set(e)
	}
	return nil
}

func readCounts(b []byte, c *[60]uint32) error {
	if len(b) != 240 {
		return fmt.Errorf("%d bytes, not 240", len(b))
	}
	for i := range c {
		c[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return nil
}

// counted is one counter: its devices' minute, applied version and class.
type counted struct {
	minute  uint64
	applied int64
	class   byte
}

func readCountKey(k []byte, prefixLen int) (counted, bool) {
	k = k[prefixLen:]
	if len(k) != 4+8+1 {
		return counted{}, false
	}
	return counted{uint64(binary.BigEndian.Uint32(k)), unflip(binary.BigEndian.Uint64(k[4:])), k[12]}, true
}

// Standing places group's devices against version at now, listing at
// most limit of those behind. It reads the group's counters, and the
// devices last seen in the second silence begins; the list reads a few
// entries per device listed.
func (s *Store) Standing(group string, version int64, now time.Time, silentAfter time.Duration, limit int) (Standing, error) {
	st := Standing{Counts: map[string]int{StatusConverged: 0, StatusPending: 0, StatusFailed: 0, StatusSilent: 0}, Behind: []Device{}}
	cutoff := now.Add(-silentAfter)
	cutSec := seconds(cutoff)
	err := s.view(func(txn *badger.Txn) error {
		if err := countStanding(txn, &st, group, version, cutSec); err != nil {
			return err
		}
		// The second silence begins in: its devices last seen before the
		// cutoff are silent too.
		from := lastSeenFrom(group, time.Unix(int64(cutSec), 0))
		to := uint64(max(cutoff.UnixNano(), 0))
		ls := txn.NewIterator(badger.IteratorOptions{Prefix: groupPrefix(prefixLastSeen, group), PrefetchValues: true})
		defer ls.Close()
		for ls.Seek(from); ls.Valid(); ls.Next() {
			applied, class, at, ok := readLastSeen(ls.Item(), len(from)-8)
			if !ok {
				return fmt.Errorf("last seen entry %q is corrupt", ls.Item().Key())
			}
			if at >= to {
				break
			}
			st.Counts[statusOfClass(class, applied, version)]--
			st.Counts[StatusSilent]++
		}
		if limit > 0 {
			return s.listBehind(txn, &st, group, version, now, silentAfter, limit)
		}
		return nil
	})
	return st, err
}

// countStanding adds group's counters to st, those last seen in a second
// before cutSec as silent.
func countStanding(txn *badger.Txn, st *Standing, group string, version int64, cutSec uint64) error {
	prefix := groupPrefix(prefixStandCount, group)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	var c [60]uint32
	for it.Rewind(); it.Valid(); it.Next() {
		k, ok := readCountKey(it.Item().Key(), len(prefix))
		if !ok {
			return fmt.Errorf("standing counter %q: a key of %d bytes", it.Item().Key(), len(it.Item().Key()))
		}
		if err := it.Item().Value(func(b []byte) error { return readCounts(b, &c) }); err != nil {
			return fmt.Errorf("standing counter %q: %w", it.Item().Key(), err)
		}
		live := statusOfClass(k.class, k.applied, version)
		for i, n := range c {
			st.Devices += int(n)
			if k.minute*60+uint64(i) < cutSec {
				st.Counts[StatusSilent] += int(n)
			} else {
				st.Counts[live] += int(n)
			}
		}
	}
	return nil
}

func readLastSeen(item *badger.Item, prefixLen int) (applied int64, class byte, at uint64, ok bool) {
	k := item.Key()
	if len(k) < prefixLen+8 {
		return 0, 0, 0, false
	}
	at = binary.BigEndian.Uint64(k[prefixLen:])
	err := item.Value(func(v []byte) error {
		if len(v) != 9 {
			return errors.New("short")
		}
		applied, class = unflip(binary.BigEndian.Uint64(v)), v[8]
		return nil
	})
	return applied, class, at, err == nil
}

// listBehind lists the devices not converged: failed, silent, then pending.
func (s *Store) listBehind(txn *badger.Txn, st *Standing, group string, version int64, now time.Time, silentAfter time.Duration, limit int) error {
	// want reads a device an index entry names and lists it if its status
	// is status.
	want := func(id, status string) (bool, error) {
		d, found, err := s.live(txnKV{txn}, id)
		if err != nil || !found || d.DeviceGroup != group || StatusOf(d, version, now, silentAfter) != status {
			return false, err
		}
		st.Behind = append(st.Behind, d)
		return true, nil
	}
	// scan lists from the entries under prefix, in order, while more(key).
	scan := func(prefix []byte, status string, more func(k []byte) bool) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		examined := 0
		for it.Rewind(); it.Valid() && len(st.Behind) < limit && examined < standingScan; it.Next() {
			k := it.Item().Key()
			if !more(k) {
				return nil
			}
			examined++
			if _, err := want(string(k[len(prefix)+8:]), status); err != nil {
				return err
			}
		}
		return nil
	}
	always := func([]byte) bool { return true }
	failing := append(groupPrefix(prefixStandDevice, group), classFailing)
	if err := scan(failing, StatusFailed, always); err != nil {
		return err
	}
	lsPrefix := groupPrefix(prefixLastSeen, group)
	to := uint64(max(now.Add(-silentAfter).UnixNano(), 0))
	if err := scan(lsPrefix, StatusSilent, func(k []byte) bool { return binary.BigEndian.Uint64(k[len(lsPrefix):]) < to }); err != nil {
		return err
	}
	ok := append(groupPrefix(prefixStandDevice, group), classOK)
	if err := scan(ok, StatusPending, func(k []byte) bool { return unflip(binary.BigEndian.Uint64(k[len(ok):])) < version }); err != nil {
		return err
	}
	return scan(append(groupPrefix(prefixStandDevice, group), classUnsettled), StatusPending, always)
}
