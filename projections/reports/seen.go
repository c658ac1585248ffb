package reports

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// A heartbeat (a device saying nothing changed) moves its device's last
// seen and standing, nothing else. Rewriting the device's d/ entry (700
// bytes of JSON, in the value log) for each one was most of what folding
// it cost. So a device's d/, m/ and s/ entries are held a little past
// their expiry (holdUntil: to the end of a window of the report TTL, at
// least a minute and at most an hour), and a heartbeat within that hold
// writes only
//
//	k/<device id>   the device's standing in short (seen): group, last seen, applied version,
//	                class, and when its d/ entry expires; written with every d/ entry, and by heartbeats
//
// and moves the device's l/ entry and counters. A heartbeat past the hold
// (once a window) rewrites d/ as before. A reader of d/ takes the last
// seen from k/ when it is later (device), and treats a device whose last
// seen has expired (expiresAt) as gone, as when d/ expired then.
var prefixSeen = []byte("k/")

func seenKey(id string) []byte { return append(append([]byte(nil), prefixSeen...), id...) }

// stand is what a device's standing entries (standing.go) are made of.
type stand struct {
	id, group string
	last      time.Time
	applied   int64
	class     byte
}

func standOf(d Device) stand {
	return stand{d.DeviceID, d.DeviceGroup, d.LastSeen, d.AppliedVersion, classOf(d.Apps)}
}

// seen is a device's k/ entry.
type seen struct {
	stand
	held uint64 // when its d/, m/ and s/ entries expire (Unix seconds)
}

func (k seen) encode() []byte {
	b := binary.AppendUvarint(make([]byte, 0, 32+len(k.group)), uint64(len(k.group)))
	b = binary.BigEndian.AppendUint64(append(b, k.group...), uint64(k.last.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, flip(k.applied))
	return binary.BigEndian.AppendUint64(append(b, k.class), k.held)
}

func decodeSeen(id string, b []byte) (seen, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) != n+25 {
		return seen{}, errors.New("not a last-seen entry")
	}
	b = b[w:]
	k := seen{stand: stand{id: id, group: string(b[:n])}}
	b = b[n:]
	k.last = time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
	k.applied, k.class, k.held = unflip(binary.BigEndian.Uint64(b[8:])), b[16], binary.BigEndian.Uint64(b[17:])
	return k, nil
}

// seenOf reads a device's k/ entry.
func seenOf(r kv, id string) (seen, bool, error) {
	v, _, found, err := r.get(seenKey(id))
	if err != nil || !found {
		return seen{}, false, err
	}
	k, err := decodeSeen(id, v)
	if err != nil {
		return k, false, fmt.Errorf("last-seen entry of device %q is corrupt: %w", id, err)
	}
	return k, true, nil
}

func (k seen) entry() *badger.Entry {
	e := badger.NewEntry(seenKey(k.id), k.encode())
	e.ExpiresAt = k.held
	return e
}

// holdUntil is when the d/, m/ and s/ entries of a device last seen at
// lastSeen expire: past expiresAt, at the end of a window.
func (s *Store) holdUntil(lastSeen time.Time) uint64 {
	w := uint64(min(max(s.ttl, time.Minute), time.Hour) / time.Second)
	return (s.expiresAt(lastSeen)/w + 1) * w
}

// expired says whether a device last seen at lastSeen has left the
// inventory.
func (s *Store) expired(lastSeen time.Time) bool {
	return s.expiresAt(lastSeen) <= uint64(time.Now().Unix())
}

// beat folds a heartbeat into the device's k/ entry, if the device is
// known, the heartbeat names its group and applied version, and its
// expiry is within the hold of the device's d/ entry; handled says it
// did.
func (s *Store) beat(b *batch, sd *standingDelta, id, group string, version int64, at time.Time) (handled bool, err error) {
	k, found, err := seenOf(b, id)
	if err != nil || !found || k.group != group || k.applied != version || s.expiresAt(at) > k.held || s.expired(k.last) {
		return false, err
	}
	if !at.After(k.last) {
		return true, nil // late or again: last seen only grows
	}
	before := k.stand
	k.last = at
	sd.add(s, before, -1)
	sd.add(s, k.stand, 1)
	b.delete(lastSeenKey(before))
	b.set(s.lastSeenEntry(k.stand))
	b.set(k.entry())
	return true, nil
}
