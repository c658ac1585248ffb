package projections

import (
	"bytes"
	"hash/maphash"
)

// keyFilter is a Bloom filter of the keys a store holds, for stores this
// process built from empty: a rebuild looks up mostly names that do not
// exist yet (the app a create makes, its group index, the command ID), and
// a Badger lookup of a missing key (every memtable, then the levels) was
// the largest cost of folding one. Where the filter says "absent" the key
// is absent; where it says "maybe", Badger answers.
//
// It covers the keys named after objects and command IDs; the meta keys
// and the record blocks (verdicts, chain) bypass it. It grows by adding
// a filter twice as big whenever the last one is full. Only the goroutine
// folding the log uses it.
type keyFilter struct {
	seed  maphash.Seed
	parts []bloom
}

type bloom struct {
	bits     []uint64
	n, limit int
}

const (
	bloomBitsPerKey = 10 // about 1% false positives with 7 probes
	bloomProbes     = 7
	bloomFirstKeys  = 1 << 16
)

func newKeyFilter() *keyFilter { return &keyFilter{seed: maphash.MakeSeed()} }

// filtered reports whether k is a key the filter covers.
func filtered(k []byte) bool {
	return !bytes.HasPrefix(k, []byte("meta/")) && !bytes.HasPrefix(k, prefixRecord)
}

func (f *keyFilter) add(k []byte) {
	if len(f.parts) == 0 || f.parts[len(f.parts)-1].n >= f.parts[len(f.parts)-1].limit {
		limit := bloomFirstKeys
		if len(f.parts) > 0 {
			limit = 2 * f.parts[len(f.parts)-1].limit
		}
		f.parts = append(f.parts, bloom{bits: make([]uint64, limit*bloomBitsPerKey/64), limit: limit})
	}
	p := &f.parts[len(f.parts)-1]
	h1, h2 := f.hash(k)
	m := uint64(len(p.bits) * 64)
	for i := range uint64(bloomProbes) {
		bit := (h1 + i*h2) % m
		p.bits[bit/64] |= 1 << (bit % 64)
	}
	p.n++
}

// mayContain is false only for keys never added.
func (f *keyFilter) mayContain(k []byte) bool {
	h1, h2 := f.hash(k)
	for i := range f.parts {
		p := &f.parts[i]
		m := uint64(len(p.bits) * 64)
		found := true
		for j := range uint64(bloomProbes) {
			bit := (h1 + j*h2) % m
			if p.bits[bit/64]&(1<<(bit%64)) == 0 {
				found = false
				break
			}
		}
		if found {
			return true
		}
	}
	return false
}

func (f *keyFilter) hash(k []byte) (uint64, uint64) {
	h := maphash.Bytes(f.seed, k)
	return h, h>>33 | 1
}

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
