package projections

// hotCache holds the latest values the fold knows of the documents and
// indexes it reads most (apps, groups, rollouts, cron jobs, user groups,
// their indexes), so that a change to an app already read, or written,
// reads no Badger and looks through no overlay. A fleet's log changes the
// same few thousand objects over and over: reading them from Badger
// (memtables, then each level's tables) was the largest share of a
// replay's fold, and then looking through the batch being folded, the
// batch being committed and this cache, one map each, a fifth of it.
//
// A value read from the snapshot goes in as read; a write by the batch
// being folded goes in as it is made (overlay.Set, overlay.latest), so
// what it holds is never older than what the overlays and the snapshot
// hold: the applier's overlays read a hot key here first, and the cache
// also sits under them, above the snapshot (hotKV). A batch folded again
// (one that outgrew a transaction) or a commit that failed empties it.
// Only the fold writes these prefixes (Reset drops everything, and drops
// the applier's cache with it: an applier does not outlive a Reset). It
// is bounded: past hotMaxBytes it is emptied and fills again. Only the
// goroutine folding the log uses it.
type hotCache struct {
	m     map[string]hotValue
	bytes int
}

type hotValue struct {
	v     []byte
	found bool
}

// hotMaxBytes bounds the cache's keys and values (plus a map entry's
// overhead each).
const hotMaxBytes = 16 << 20

const hotEntryOverhead = 64

var hotPrefixes = newPrefixSet(prefixApp, prefixGroup, prefixRollout, prefixCron, prefixUserGroup, []byte("idx/"))

// hot reports whether the cache keeps the key k.
func hot(k []byte) bool { return hotPrefixes.has(k) }

func newHotCache() *hotCache { return &hotCache{m: map[string]hotValue{}} }

func (c *hotCache) put(k string, v []byte, found bool) {
	if old, ok := c.m[k]; ok {
		c.bytes -= len(k) + len(old.v) + hotEntryOverhead
	}
	if c.bytes+len(k)+len(v)+hotEntryOverhead > hotMaxBytes {
		clear(c.m)
		c.bytes = 0
	}
	c.m[k] = hotValue{v, found}
	c.bytes += len(k) + len(v) + hotEntryOverhead
}

// reset empties the cache.
func (c *hotCache) reset() {
	clear(c.m)
	c.bytes = 0
}

// hotKV reads through the cache to the snapshot under it.
type hotKV struct {
	KV
	c *hotCache
}

func (kv hotKV) Get(k []byte) ([]byte, bool, error) {
	if !hot(k) {
		return kv.KV.Get(k)
	}
	if e, ok := kv.c.m[string(k)]; ok {
		return e.v, e.found, nil
	}
	v, found, err := kv.KV.Get(k)
	if err == nil {
		kv.c.put(string(k), v, found)
	}
	return v, found, err
}
