package projections

import (
	"hash/maphash"
)

// keyFilter is a Bloom filter of the keys a store holds, for stores this
// process built from empty: a rebuild looks up mostly names that do not
// exist yet (the app a create makes, its group index, the command ID), and
// a Badger lookup of a missing key (every memtable, then the levels) was
// the largest cost of folding one. Where the filter says "absent" the key
// is absent; where it says "maybe", Badger answers.
//
// It covers every key the fold writes (a new record block is a miss too)
// but the meta keys, which Reset writes, the versions and events, and the
// buckets of recent command IDs (recent.go: the same 4,096 keys, there
// after the first batches). It grows by adding
// a filter twice as big whenever the last one is full, up to maxKeys:
// past that it lets go of its memory and answers "maybe" to everything
// (Badger answers, as for a store opened from disk). Only the goroutine
// folding the log uses it.
type keyFilter struct {
	seed    maphash.Seed
	parts   []bloom
	maxKeys int
	full    bool
}

// bloom is a blocked Bloom filter: all the bits of a key are in one block
// of 512 bits (a cache line), so a lookup costs one cache miss.
type bloom struct {
	blocks   [][8]uint64
	n, limit int
}

const (
	bloomBitsPerKey = 12 // about 1% false positives with 7 probes in a block
	bloomProbes     = 7
	bloomFirstKeys  = 1 << 20
	// bloomMaxKeys bounds the filter at about 47 MB (parts of 1M to 16M
	// keys); a log writing more keys replays the rest without it.
	bloomMaxKeys = 31 << 20
)

func newKeyFilter() *keyFilter { return &keyFilter{seed: maphash.MakeSeed(), maxKeys: bloomMaxKeys} }

// filtered reports whether k is a key the filter covers.
func filtered(k []byte) bool { return !unfiltered.has(k) }

// unfiltered are the keys the filter does not cover.
var unfiltered = newPrefixSet([]byte("meta/"), prefixVersion, prefixEvents, prefixRecent)

func (f *keyFilter) add(k []byte) {
	if f.full {
		return
	}
	if len(f.parts) == 0 || f.parts[len(f.parts)-1].n >= f.parts[len(f.parts)-1].limit {
		limit, total := bloomFirstKeys, 0
		for _, p := range f.parts {
			limit, total = 2*p.limit, total+p.limit
		}
		if total+limit > f.maxKeys {
			f.full, f.parts = true, nil
			return
		}
		f.parts = append(f.parts, bloom{blocks: make([][8]uint64, limit*bloomBitsPerKey/512), limit: limit})
	}
	p := &f.parts[len(f.parts)-1]
	h := maphash.Bytes(f.seed, k)
	b := &p.blocks[p.block(h)]
	bits := h * 0x9E3779B97F4A7C15
	for range bloomProbes {
		b[bits>>6&7] |= 1 << (bits & 63)
		bits >>= 9
	}
	p.n++
}

// mayContain is false only for keys never added.
func (f *keyFilter) mayContain(k []byte) bool {
	if f.full {
		return true
	}
	h := maphash.Bytes(f.seed, k)
	for i := range f.parts {
		p := &f.parts[i]
		b := &p.blocks[p.block(h)]
		bits := h * 0x9E3779B97F4A7C15
		found := true
		for range bloomProbes {
			if b[bits>>6&7]&(1<<(bits&63)) == 0 {
				found = false
				break
			}
			bits >>= 9
		}
		if found {
			return true
		}
	}
	return false
}

// block picks the key's block from the hash's high bits.
func (p *bloom) block(h uint64) uint64 { return (h >> 32) * uint64(len(p.blocks)) >> 32 }

// filteredKV answers from the filter the lookups of keys it knows absent.
type filteredKV struct {
	KV
	f *keyFilter
}

func (kv filteredKV) Get(k []byte) ([]byte, bool, error) {
	if filtered(k) && !kv.f.mayContain(k) {
		return nil, false, nil
	}
	return kv.KV.Get(k)
}
