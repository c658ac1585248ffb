package projections

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestRandomCommandIDsRepeatWithinTheWindow: a random command ID repeated
// by one of the recentWindow offsets after its record is a duplicate, one
// more offset later it is not; a client's key (with a '/') is a duplicate
// at any distance. The store (Badger, batches of 700 and 4,500) answers as a fold of
// one record at a time, and the buckets drop what is out of the window.
func TestRandomCommandIDsRepeatWithinTheWindow(t *testing.T) {
	const w = recentWindow
	ids := map[int64]string{0: "r-a", w: "r-a", 1: "r-b", w + 2: "r-b", 2: "alice/k", 2*w + 10: "alice/k"}
	want := map[int64]int64{w: 0, 2*w + 10: 2} // offset -> the duplicate's first record
	n := int64(2*w + 11)
	var recs []events.Record
	for off := int64(0); off < n; off++ {
		env := ev(events.KindApp, "web", events.AppRestartedV{})
		if off == 0 {
			env = app("web", "nginx")
		}
		env.CommandID = fmt.Sprintf("%032x", off) // as a manager's: 32 hex digits
		if id, ok := ids[off]; ok {
			env.CommandID = id
		}
		recs = append(recs, record(t, off, env))
	}
	ref := MemKV{}
	for _, rec := range recs {
		res, err := Apply(ref, rec)
		if err != nil {
			t.Fatal(err)
		}
		v := res.Verdict
		first, dup := want[rec.Offset]
		if dup != (v.Reason == ReasonDuplicate) || v.Accepted == dup || (dup && v.DuplicateOf != first) {
			t.Fatalf("offset %d (command %q): verdict %+v; want duplicate=%v of %d", rec.Offset, v.CommandID, v, dup, first)
		}
	}
	// Fetches of 700 and 4,500 records: an overlay keeps the buckets in
	// its map of keys, or apart in an array (overlay.recent).
	s := openStore(t, t.TempDir())
	for i, size := 0, 700; i < len(recs); i, size = i+size, 5200-size {
		if _, err := s.ApplyBatch(recs[i:min(i+size, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	got := dump(t, s)
	sameKV(t, got, ref)

	// Without the pruning the buckets would hold all 2w+9 random IDs.
	entries, small := 0, 0
	for k, v := range got {
		if !strings.HasPrefix(k, string(prefixRecent)) {
			continue
		}
		offs := recentOffsets(v)
		if len(offs) == 0 || !slices.IsSorted(offs) || offs[len(offs)-1]-offs[0] > w {
			t.Fatalf("bucket %q holds %v: not a window in offset order", k, offs)
		}
		entries += len(offs)
		if len(v) < 64 {
			small++ // under the store's value threshold
		}
	}
	if small < recentBuckets*3/4 {
		t.Fatalf("%d buckets of %d are under 64 bytes", small, recentBuckets)
	}
	if entries < w || entries > w+w/2 {
		t.Fatalf("the buckets hold %d IDs, want about %d (the window)", entries, w)
	}
	if _, found := got[string(key(prefixCommand, "r-a"))]; found {
		t.Fatal("a random command ID has a cmd/ key")
	}
	if _, found := got[string(key(prefixCommand, "alice/k"))]; !found {
		t.Fatal("a client's key has no cmd/ key")
	}
}

// TestDamagedRecentBucketIsAnError: a bucket that is not a base offset and
// whole entries stops the fold (an error, not a verdict).
func TestDamagedRecentBucketIsAnError(t *testing.T) {
	kv := MemKV{}
	for b := range uint16(recentBuckets) {
		kv[string(recentKey(b))] = []byte("short")
	}
	env := app("web", "nginx")
	env.CommandID = "0123456789abcdef0123456789abcdef"
	b, err := encodeUnchecked(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(kv, events.Record{Offset: 0, Value: b}); err == nil || !strings.Contains(err.Error(), "not a base and whole entries") {
		t.Fatalf("fold over a damaged bucket: %v", err)
	}
}

// recentOffsets are the offsets a bucket's value holds.
func recentOffsets(v []byte) []int64 {
	if len(v) < recentBaseSize {
		return nil
	}
	base, out := int64(binary.BigEndian.Uint64(v)), []int64{}
	for i := recentBaseSize; i+recentEntrySize <= len(v); i += recentEntrySize {
		out = append(out, base+int64(binary.BigEndian.Uint16(v[i:])))
	}
	return out
}
