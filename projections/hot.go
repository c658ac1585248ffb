package projections

// hotCache holds the committed values of the documents and indexes the
// fold reads most (apps, groups, rollouts, cron jobs, user groups, their
// indexes), so that a change to an app already read, or written, by an
// earlier batch reads no Badger. A fleet's log changes the same few
// thousand objects over and over: reading them from Badger (memtables,
// then each level's tables) was the largest share of a replay's fold.
//
// It sits under the applier's overlays, on top of its snapshot, and
// holds what that snapshot holds: a value read from the snapshot goes in
// as read; a batch's writes go in once its commit is done (applier.wait),
// just before the next snapshot is opened. Only the fold writes these
// prefixes (Reset drops everything, and drops the applier's cache with
// it: an applier does not outlive a Reset). It is bounded: past
// hotMaxBytes it is emptied and fills again. Only the goroutine folding
// the log uses it.
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

// committed records the writes of a batch whose commit is done.
func (c *hotCache) committed(o *overlay) {
	for k, v := range o.set {
		if hot([]byte(k)) {
			c.put(k, v, true)
		}
	}
	for k := range o.del {
		if hot([]byte(k)) {
			c.put(k, nil, false)
		}
	}
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
