package projections

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// objectPrefix is where the offsets of an object's events are (ev/).
func objectPrefix(a events.Aggregate) []byte {
	k := make([]byte, 0, len(prefixEvents)+len(a.Kind)+len(a.Name)+2+8)
	k = append(append(append(k, prefixEvents...), a.Kind...), '/')
	return append(append(k, a.Name...), '/')
}

func objectEventKey(a events.Aggregate, off int64) []byte {
	return binary.BigEndian.AppendUint64(objectPrefix(a), uint64(off))
}

// EventOffsets returns the offsets of the events of object a (accepted or
// not), ascending, from offset from up to offset to (-1: the end), at most
// limit of them. It reads that object's index (ev/) and the versions of
// its document its own accepted events made (which the index leaves out),
// nothing else.
func (r Reader) EventOffsets(a events.Aggregate, from, to int64, limit int) ([]int64, error) {
	src, ok := r.kv.(versionSource)
	if !ok {
		return nil, ErrNoPast
	}
	var indexed, versioned []int64
	err := src.versions(objectPrefix(a), from, false, func(k, _ []byte) (bool, error) {
		off := int64(binary.BigEndian.Uint64(k[len(k)-8:]))
		if to >= 0 && off > to {
			return false, nil
		}
		indexed = append(indexed, off)
		return len(indexed) < limit, nil
	})
	if p, ok := docPrefix[a.Kind]; ok && err == nil {
		err = src.versions(versionPrefix(key(p, a.Name)), from, false, func(k, b []byte) (bool, error) {
			v, err := decodeVersion(k, b)
			if err != nil || to >= 0 && v.Offset > to {
				return false, err
			}
			if v.Meta.Aggregate == a { // not a group's version an app's change made
				versioned = append(versioned, v.Offset)
			}
			return len(versioned) < limit, nil
		})
	}
	out := append(indexed, versioned...)
	slices.Sort(out)
	return out[:min(len(out), limit)], err
}

// Chain is the log's hash chain after the record at offset (events/chain).
func (r Reader) Chain(offset int64) ([]byte, bool, error) { return chainAt(r.kv, offset) }

// OffsetAt is the offset of the last event at or before t among the
// records 0 to last (inclusive) in log order: the record before the first
// one whose event time is after t (-1: the first is). Each record's entry
// holds the latest event time up to it, which never decreases, so this is
// a binary search over the record blocks: no read of the log.
func (r Reader) OffsetAt(t time.Time, last int64) (int64, error) {
	ns := t.UnixNano()
	lo, hi := int64(0), last+1 // the answer + 1 is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, found, err := getRecord(r.kv, mid)
		if err != nil {
			return 0, err
		}
		if !found {
			return 0, fmt.Errorf("the projection has no record at offset %d", mid)
		}
		if e.latest > ns {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo - 1, nil
}

// Checkpoint is the last checkpoint of the log's hash chain the fold
// accepted: its head matched the chain the fold computed up to Covers.
type Checkpoint struct {
	Offset int64     `json:"offset"` // the checkpoint's own record
	Covers int64     `json:"covers"`
	Head   string    `json:"head"`
	KeyID  string    `json:"key_id"`
	Time   time.Time `json:"time"`
}

// LastCheckpoint is the last checkpoint the fold accepted (found=false:
// none yet).
func (r Reader) LastCheckpoint() (Checkpoint, bool, error) {
	return getDoc[Checkpoint](r.kv, keyCheckpoint)
}
