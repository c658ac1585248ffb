package projections

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"
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
		err = docVersions(src, versionPrefix(key(p, a.Name)), from, false, func(v Version) (bool, error) {
			if to >= 0 && v.Offset > to {
				return false, nil
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
// a binary search over the record blocks: no read of the log. ix (nil:
// none) narrows the search to one stretch of ix's stride before any read.
func (r Reader) OffsetAt(t time.Time, last int64, ix *TimeIndex) (int64, error) {
	ns := t.UnixNano()
	s := recordSearch{kv: r.kv}
	lo, hi := int64(0), last+1 // the answer + 1 is in [lo, hi]
	if ix != nil {
		var err error
		if lo, hi, err = ix.narrow(&s, ns, last); err != nil {
			return 0, err
		}
	}
	at, err := s.search(ns, lo, hi)
	if err != nil || ix == nil {
		return at, err
	}
	// The index is a memory of this store's records; were they not these
	// (a store folded again from another log), the answer's neighbours
	// say so: search it all again, and forget the index.
	if ok, err := s.isAnswer(ns, at, last); err != nil || ok {
		return at, err
	}
	ix.forget()
	return s.search(ns, 0, last+1)
}

// recordSearch reads record entries' latest event times, one block read
// for the entries of one block.
type recordSearch struct {
	kv    KV
	block int64 // which block times holds (nil times: none)
	first int64
	times []int64
}

func (s *recordSearch) latest(off int64) (int64, error) {
	if b := off / recordsPerBlock; s.times == nil || b != s.block {
		s.block, s.first, s.times = b, b*recordsPerBlock, s.times[:0]
		err := readRecordBlock(s.kv, b, func(o int64, e recordEntry) bool {
			if o != s.first+int64(len(s.times)) {
				return false // not in order: leave the rest unread
			}
			s.times = append(s.times, e.latest)
			return true
		})
		if err != nil {
			return 0, err
		}
	}
	if i := off - s.first; i >= 0 && i < int64(len(s.times)) {
		return s.times[i], nil
	}
	return 0, fmt.Errorf("the projection has no record at offset %d", off)
}

// search is the last offset whose latest time is at or before ns, knowing
// that the first offset after it is in [lo, hi].
func (s *recordSearch) search(ns, lo, hi int64) (int64, error) {
	for lo < hi {
		mid := lo + (hi-lo)/2
		l, err := s.latest(mid)
		if err != nil {
			return 0, err
		}
		if l > ns {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo - 1, nil
}

// isAnswer is whether at is the last offset up to last whose latest time
// is at or before ns.
func (s *recordSearch) isAnswer(ns, at, last int64) (bool, error) {
	if at >= 0 {
		if l, err := s.latest(at); err != nil || l > ns {
			return false, err
		}
	}
	if at < last {
		if l, err := s.latest(at + 1); err != nil || l <= ns {
			return false, err
		}
	}
	return true, nil
}

// TimeIndex is the latest event time of every stride-th record, kept in
// memory and extended as the log grows, so that OffsetAt reads the
// store's record blocks of one stride only (issue 20): at a million
// records, 7 reads instead of 20. It is safe for concurrent use.
type TimeIndex struct {
	stride int64
	mu     sync.Mutex
	latest []int64 // latest[i]: the latest time at offset (i+1)*stride-1
}

// NewTimeIndex returns an empty index of the given stride (records).
func NewTimeIndex(stride int64) *TimeIndex {
	return &TimeIndex{stride: max(stride, recordsPerBlock)}
}

// narrow extends the index up to last and returns where in [0, last+1]
// the first offset after ns is.
func (ix *TimeIndex) narrow(s *recordSearch, ns, last int64) (lo, hi int64, err error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if int64(len(ix.latest))*ix.stride-1 > last {
		ix.latest = ix.latest[:0] // a store behind the index: not the records it saw
	}
	for off := int64(len(ix.latest)+1)*ix.stride - 1; off <= last; off += ix.stride {
		e, found, err := getRecord(s.kv, off)
		if err != nil {
			return 0, 0, err
		}
		if !found {
			return 0, 0, fmt.Errorf("the projection has no record at offset %d", off)
		}
		ix.latest = append(ix.latest, e.latest)
	}
	i := int64(sort.Search(len(ix.latest), func(i int) bool { return ix.latest[i] > ns }))
	if i == int64(len(ix.latest)) {
		return i * ix.stride, last + 1, nil
	}
	return i * ix.stride, (i+1)*ix.stride - 1, nil
}

func (ix *TimeIndex) forget() {
	ix.mu.Lock()
	ix.latest = ix.latest[:0]
	ix.mu.Unlock()
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
