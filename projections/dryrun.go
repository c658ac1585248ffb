package projections

import (
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// overlay is a KV whose writes stay in memory above a read-only base: a
// fold into it changes nothing underneath. Dry runs use one and drop it;
// the applier folds each batch into one and commits it.
type overlay struct {
	base KV
	// set is where in vals each key set is: a key set again is changed
	// in place there, without a new string for the key (the fold sets
	// its documents again and again within a batch).
	set  map[string]int32
	vals []overlayEntry
	del  map[string]bool
	// size bounds what committing the writes costs Badger: key, value
	// and overhead of each key set or deleted, once (the commit writes
	// each once, as Badger counts a transaction's size).
	size int64
	// valueLogFrom, when set, is the store's value threshold: a value
	// that long goes to the value log, and Badger counts only a pointer
	// to it in a transaction's size (as size does).
	valueLogFrom int
	// owned: Set keeps the caller's slice instead of a copy.
	owned bool
	// filter, if set, knows every key under this overlay (not yet its
	// own writes): a key it knows absent is not looked up below.
	filter *keyFilter
	// latest, if set, is the applier's hot cache: the overlay writes its
	// hot keys there too, and reads them there first (hot.go).
	latest *hotCache
	// chunks, if set, gathers the versions the records folded into this
	// overlay write into one chunk per document (versions.go), written
	// by the commit, not kept in set.
	chunks *versionChunks
	// recent, if set, holds the buckets of recent command IDs
	// (recent.go) this overlay set, by bucket, not in set: every record
	// of a replay reads and sets one, and the map's lookups were half of
	// what keeping them cost.
	recent *recentSet
}

// recentSet is an overlay's writes to the recent command IDs' buckets.
type recentSet struct {
	v [recentBuckets][]byte // nil: not set here
	n int                   // buckets set
}

// recentBucketOf is the bucket k is the key of, ok=false if it is not a
// bucket's key.
func recentBucketOf(k []byte) (b int, ok bool) {
	if len(k) != len(prefixRecent)+2 || string(k[:len(prefixRecent)]) != string(prefixRecent) {
		return 0, false
	}
	b = int(k[len(prefixRecent)])<<8 | int(k[len(prefixRecent)+1])
	return b, b < recentBuckets
}

func (o *overlay) addVersion(k []byte, off int64, meta, doc []byte, exists bool) bool {
	if o.chunks == nil {
		return false
	}
	c, before, made := o.chunks.add(k, pendingVersion{off: off, meta: meta, doc: doc, exists: exists})
	if made {
		o.size += int64(len(c.key)) + entryOverhead
	} else {
		o.size -= int64(o.valueSize(before))
	}
	o.size += int64(o.valueSize(c.bytes))
	return true
}

// entries is how many keys committing the writes sets or deletes.
func (o *overlay) entries() int64 {
	n := len(o.set) + len(o.del)
	if o.recent != nil {
		n += o.recent.n
	}
	if o.chunks != nil {
		n += len(o.chunks.all)
	}
	return int64(n)
}

// entryOverhead is more than Badger counts for an entry beyond its key and
// value (metadata, version, a value pointer).
const entryOverhead = 32

// overlayEntry is a key set in an overlay and its value.
type overlayEntry struct {
	k string
	v []byte
}

func newOverlay(base KV, sizeHint int) *overlay {
	// The entries grow as they are set: a batch's hint can be Badger's
	// whole batch limit, and a slice of pointers that long is scanned by
	// the collector whole, however little of it is used.
	return &overlay{base: base, set: make(map[string]int32, sizeHint), vals: make([]overlayEntry, 0, min(sizeHint, 1<<12)), del: map[string]bool{}}
}

// lookup is the value this overlay set at k, if it set one.
func (o *overlay) lookup(k []byte) ([]byte, bool) {
	if o.recent != nil {
		if b, ok := recentBucketOf(k); ok {
			v := o.recent.v[b]
			return v, v != nil
		}
	}
	if i, ok := o.set[string(k)]; ok {
		return o.vals[i].v, true
	}
	return nil, false
}

// each calls fn with each key this overlay set and its value.
func (o *overlay) each(fn func(k string, v []byte)) {
	for k, i := range o.set {
		fn(k, o.vals[i].v)
	}
	if o.recent != nil {
		for b, v := range o.recent.v {
			if v != nil {
				fn(string(recentKey(uint16(b))), v)
			}
		}
	}
}

// keyBytes is the length of the keys each passes.
func (o *overlay) keyBytes() int {
	n := 0
	for k := range o.set {
		n += len(k)
	}
	if o.recent != nil {
		n += o.recent.n * (len(prefixRecent) + 2)
	}
	return n
}

func (o *overlay) Get(k []byte) ([]byte, bool, error) {
	if o.latest != nil && hot(k) {
		if e, ok := o.latest.m[string(k)]; ok {
			return e.v, e.found, nil
		}
	}
	if len(o.del) > 0 && o.del[string(k)] {
		return nil, false, nil
	}
	if b, ok := recentBucketOf(k); ok && o.recent != nil {
		if v := o.recent.v[b]; v != nil {
			return v, true, nil
		}
	} else if i, ok := o.set[string(k)]; ok {
		return o.vals[i].v, true, nil
	}
	if o.filter != nil && filtered(k) && !o.filter.mayContain(k) {
		return nil, false, nil
	}
	return o.base.Get(k)
}

func (o *overlay) Set(k, v []byte) error {
	if !o.owned {
		v = append([]byte(nil), v...)
	}
	if b, ok := recentBucketOf(k); ok && o.recent != nil {
		o.setRecent(k, b, v)
		return nil
	}
	if i, ok := o.set[string(k)]; ok {
		e := &o.vals[i]
		o.size += int64(o.valueSize(len(v)) - o.valueSize(len(e.v)))
		e.v = v
		if o.latest != nil && hot(k) {
			o.latest.put(e.k, v, true)
		}
		return nil
	}
	if len(o.del) > 0 && o.del[string(k)] {
		delete(o.del, string(k))
		o.size -= int64(len(k)) + entryOverhead
	}
	ks := string(k)
	o.set[ks] = int32(len(o.vals))
	o.vals = append(o.vals, overlayEntry{ks, v})
	o.size += int64(len(k)+o.valueSize(len(v))) + entryOverhead
	if o.latest != nil && hot(k) {
		o.latest.put(ks, v, true)
	}
	return nil
}

func (o *overlay) setRecent(k []byte, b int, v []byte) {
	if len(o.del) > 0 && o.del[string(k)] {
		delete(o.del, string(k))
		o.size -= int64(len(k)) + entryOverhead
	}
	if v == nil {
		v = []byte{} // nil is "not set"
	}
	if old := o.recent.v[b]; old == nil {
		o.recent.n++
		o.size += int64(len(k)) + entryOverhead
	} else {
		o.size -= int64(o.valueSize(len(old)))
	}
	o.recent.v[b] = v
	o.size += int64(o.valueSize(len(v)))
}

// valueSize is what a value of n bytes adds to a transaction's size: its
// bytes, or nothing beyond entryOverhead when it goes to the value log.
func (o *overlay) valueSize(n int) int {
	if o.valueLogFrom > 0 && n >= o.valueLogFrom {
		return 0
	}
	return n
}

func (o *overlay) Delete(k []byte) error {
	if o.del[string(k)] {
		return nil
	}
	if b, ok := recentBucketOf(k); ok && o.recent != nil && o.recent.v[b] != nil {
		o.size -= int64(len(k)+o.valueSize(len(o.recent.v[b]))) + entryOverhead
		o.recent.v[b] = nil
		o.recent.n--
	}
	if i, ok := o.set[string(k)]; ok {
		delete(o.set, string(k))
		o.size -= int64(len(k)+o.valueSize(len(o.vals[i].v))) + entryOverhead
		o.vals[i] = overlayEntry{} // a hole, for the collector: set no longer points to it
	}
	ks := string(k)
	o.del[ks] = true
	o.size += int64(len(k)) + entryOverhead
	if o.latest != nil && hot(k) {
		o.latest.put(ks, nil, false)
	}
	return nil
}

func (o *overlay) Keys(prefix []byte, fn func([]byte) error) error {
	seen := map[string]bool{}
	err := o.base.Keys(prefix, func(k []byte) error {
		if !o.del[string(k)] {
			seen[string(k)] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k := range o.set {
		if strings.HasPrefix(k, string(prefix)) {
			seen[k] = true
		}
	}
	if o.recent != nil {
		for b, v := range o.recent.v {
			if k := string(recentKey(uint16(b))); v != nil && strings.HasPrefix(k, string(prefix)) {
				seen[k] = true
			}
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

// DryRun folds env as if it were the next record of the log, on top of
// the current state, without writing anything; fn sees the result and the
// state it would make. The version it shows is the next offset after the
// last folded one (another manager may take that offset first).
func (s *Store) DryRun(env events.Envelope, fn func(res Result, r Reader) error) error {
	b, err := events.Encode(env)
	if err != nil {
		return err
	}
	return s.checkedView(func(txn *badger.Txn) error {
		o := newOverlay(badgerKV{txn}, 0)
		res, err := Apply(o, events.Record{Offset: s.Applied() + 1, Value: b, CommandID: env.CommandID})
		if err != nil {
			return err
		}
		return fn(res, Reader{o})
	})
}
