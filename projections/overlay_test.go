package projections

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestOverlayIsAMap: random sets (new keys and keys set again), deletes
// and sets after deletes on an overlay over a base read as one map: every
// Get, Keys, the writes it hands the commit (each, del) and its size (the
// sum of what it would commit) agree with a plain map's. The keys include
// buckets of recent command IDs, which an applier's overlay keeps apart
// (overlay.recent).
func TestOverlayIsAMap(t *testing.T) {
	for _, buckets := range []bool{false, true} {
		t.Run(fmt.Sprint("buckets apart ", buckets), func(t *testing.T) { overlayIsAMap(t, buckets) })
	}
}

func overlayIsAMap(t *testing.T, bucketsApart bool) {
	rnd := rand.New(rand.NewPCG(3, 4))
	// keys: 40 plain ones, then 8 buckets' (4 of them in the base).
	keyOf := func(i int) string {
		if i < 40 {
			return fmt.Sprintf("k%02d", i)
		}
		return string(recentKey(uint16(i - 40 + recentBuckets - 6)))
	}
	base := MemKV{}
	for i := range 20 {
		base[keyOf(i)] = []byte(fmt.Sprint("base", i))
		if i < 4 {
			base[keyOf(40+i)] = []byte(fmt.Sprint("base bucket", i))
		}
	}
	want := maps.Clone(map[string][]byte(base))
	o := newOverlay(base, 4)
	o.owned = rnd.IntN(2) == 0
	if bucketsApart {
		o.recent = &recentSet{}
	}
	for step := range 2000 {
		k := keyOf(rnd.IntN(48))
		switch rnd.IntN(3) {
		case 0, 1:
			v := []byte(fmt.Sprint("v", step))
			if err := o.Set([]byte(k), v); err != nil {
				t.Fatal(err)
			}
			want[k] = v
		case 2:
			if err := o.Delete([]byte(k)); err != nil {
				t.Fatal(err)
			}
			delete(want, k)
		}
		probe := keyOf(rnd.IntN(48))
		got, found, err := o.Get([]byte(probe))
		if w, ok := want[probe]; err != nil || found != ok || string(got) != string(w) {
			t.Fatalf("step %d: Get(%s) = %q %v %v, want %q %v", step, probe, got, found, err, w, ok)
		}
	}
	for _, prefix := range []string{"k", string(prefixRecent)} {
		var keys []string
		if err := o.Keys([]byte(prefix), func(k []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
			t.Fatal(err)
		}
		var wantKeys []string
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if strings.HasPrefix(k, prefix) {
				wantKeys = append(wantKeys, k)
			}
		}
		if !slices.Equal(keys, wantKeys) {
			t.Fatalf("Keys(%q) = %q, want %q", prefix, keys, wantKeys)
		}
	}
	// What a commit writes over the base gives the same map.
	committed := maps.Clone(map[string][]byte(base))
	var size int64
	o.each(func(k string, v []byte) {
		committed[k] = v
		size += int64(len(k)+len(v)) + entryOverhead
	})
	for k := range o.del {
		delete(committed, k)
		size += int64(len(k)) + entryOverhead
	}
	if !maps.EqualFunc(committed, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("committed %v, want %v", committed, want)
	}
	written, keyBytes := 0, 0
	o.each(func(k string, _ []byte) { written, keyBytes = written+1, keyBytes+len(k) })
	if keyBytes != o.keyBytes() {
		t.Fatalf("keyBytes %d, the keys written %d", o.keyBytes(), keyBytes)
	}
	if size != o.size || int64(written+len(o.del)) != o.entries() {
		t.Fatalf("size %d, entries %d; the writes count %d and %d", o.size, o.entries(), size, written+len(o.del))
	}
	if bucketsApart == (o.recent == nil || o.recent.n == 0) {
		t.Fatalf("buckets apart %v, but the overlay holds %v", bucketsApart, o.recent)
	}
}
