package projections

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// A command ID is remembered in one of two ways.
//
// An ID a client chose (an Idempotency-Key: "<actor>/<key>", the only IDs
// with a '/') can come back at any time, as the same client's retry, so it
// is remembered for the whole log: one cmd/ key each.
//
// Any other ID is random, made by the manager for one request and never
// sent again: it repeats only when the same record was appended twice, a
// writer retrying a write that had in fact landed (a manager's own retries
// do not: franz-go's idempotent producer drops them). Such a copy lands
// behind the record it repeats, among the writes in flight with it, so
// these IDs are remembered for the recentWindow offsets after their record
// (seconds of the busiest log), in recentBuckets keys that each hold the
// recent IDs whose hash falls in them. A copy appended later than that (a
// writer retrying after a long timeout, on a busy log) is folded as a new
// command. A replay writes one key per bucket per batch (a batch holds
// about 10,000 records) instead of one per record: the cmd/ keys were 61%
// of the Badger entries a replay wrote, and most of its allocations.
//
// The rule is the log's, not the batch's: a record repeats a random ID when
// one of the recentWindow offsets before it carried the same ID, whatever
// was pruned when; every manager folds the same verdict.
//
// Most buckets stay under the store's value threshold (64 bytes: four
// IDs), so a live manager's commands do not grow the value log with them.
// A bucket is the offset of its first entry (int64 BE), then for each ID,
// in offset order, its offset after that one (uint16 BE: the entries kept
// span at most recentWindow offsets) and 10 bytes of its SHA-256 (a false
// match is a 2^-80 chance per pair).
const (
	recentWindow  = 10_000
	recentBuckets = 4096

	recentBaseSize  = 8
	recentEntrySize = 2 + 10
)

var prefixRecent = []byte("cmdr/")

// keyedCommand reports whether a command ID is a client's idempotency key,
// remembered for the whole log.
func keyedCommand(id string) bool { return strings.IndexByte(id, '/') >= 0 }

// dedupeRecent rejects a record whose random command ID one of the
// recentWindow offsets before it carried, and otherwise remembers the ID
// in its bucket, dropping the entries that are out of the window.
func (f *folder) dedupeRecent(id string) error {
	sum := sha256.Sum256([]byte(id))
	fp := sum[2 : 2+recentEntrySize-2]
	k := recentKey(binary.BigEndian.Uint16(sum[:2]) % recentBuckets)
	old, found, err := f.kv.Get(k)
	if err != nil {
		return err
	}
	var base int64
	if found {
		if len(old) < recentBaseSize || (len(old)-recentBaseSize)%recentEntrySize != 0 {
			return fmt.Errorf("recent command IDs %q: %d bytes is not a base and whole entries", k, len(old))
		}
		base, old = int64(binary.BigEndian.Uint64(old)), old[recentBaseSize:]
	}
	from := f.off - recentWindow
	keep, newBase := len(old), f.off
	for i := 0; i < len(old); i += recentEntrySize {
		off := base + int64(binary.BigEndian.Uint16(old[i:]))
		if off < from {
			continue
		}
		if keep == len(old) {
			keep, newBase = i, off
		}
		if bytes.Equal(old[i+2:i+recentEntrySize], fp) {
			return &rejection{reason: ReasonDuplicate, detail: fmt.Sprintf("command %q was folded at offset %d", id, off), duplicateOf: off}
		}
	}
	// Entries are in offset order: those out of the window are a prefix;
	// those kept are counted from the first of them.
	v := make([]byte, 0, recentBaseSize+len(old)-keep+recentEntrySize)
	v = binary.BigEndian.AppendUint64(v, uint64(newBase))
	for i := keep; i < len(old); i += recentEntrySize {
		off := base + int64(binary.BigEndian.Uint16(old[i:]))
		v = append(binary.BigEndian.AppendUint16(v, uint16(off-newBase)), old[i+2:i+recentEntrySize]...)
	}
	v = append(binary.BigEndian.AppendUint16(v, uint16(f.off-newBase)), fp...)
	return f.kv.Set(k, v)
}

func recentKey(bucket uint16) []byte {
	return binary.BigEndian.AppendUint16(append(make([]byte, 0, len(prefixRecent)+2), prefixRecent...), bucket)
}
