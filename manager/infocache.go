package manager

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// infoCache holds the pre-rendered /info of device groups: the bytes a
// device gets, plain and gzipped. An entry lives until its TTL ends or the
// projection folds an event touching its group, whichever comes first, so
// reads of the projection per second are bounded by groups/TTL plus the
// rate of changes, whatever the number of polling devices. It caches data
// only: authentication and authorization run before it (2.7 cached whole
// responses in front of authentication).
type infoCache struct {
	ttl     time.Duration
	maxSize int
	read    func(group string) (Info, *projections.Rollout, bool, error)
	now     func() time.Duration // monotonic

	mu       sync.Mutex
	entries  map[string]*list.Element // of *infoEntry, most recent first
	lru      *list.List
	waiters  map[string]chan struct{} // closed when the group changes
	inflight map[string]*flight       // one build per group at a time
	gen      uint64                   // bumped by every invalidation

	hits, reads atomic.Int64
}

// flight is a read of the projection in progress, shared by the requests
// that miss the cache meanwhile (a change wakes every long-poll of a group
// at once; they must not all read the projection).
type flight struct {
	done chan struct{}
	gen  uint64 // the cache generation when the read started
	e    *infoEntry
	err  error
}

// infoEntry is one group's rendered info.
type infoEntry struct {
	group   string
	found   bool
	version int64
	body    []byte // JSON
	gz      []byte // gzipped JSON
	etag    string // etagOf(version)
	// The header values of an answer, made once (serveInfo, headerValue).
	etagHeader, bodyLength, gzLength []string
	expires                          time.Duration // monotonic()
	// While a rollout runs (or after a revert), the stable config, for
	// the devices its waves have not reached (rollout decides which).
	stable  *infoEntry
	rollout *projections.Rollout
}

// forDevice is the answer for a device (its ID and labels, from its
// poll): a handful of answers per group, never one per device.
func (e *infoEntry) forDevice(deviceID string, labels map[string]string) *infoEntry {
	if e.stable == nil || e.rollout.Reached(deviceID, labels) {
		return e
	}
	return e.stable
}

func newInfoCache(ttl time.Duration, maxSize int, read func(string) (Info, *projections.Rollout, bool, error)) *infoCache {
	return &infoCache{ttl: ttl, maxSize: max(maxSize, 1), read: read, now: monotonic,
		entries: map[string]*list.Element{}, lru: list.New(), waiters: map[string]chan struct{}{}, inflight: map[string]*flight{}}
}

// get returns the group's entry, building it on a miss.
func (c *infoCache) get(group string) (*infoEntry, error) {
	c.mu.Lock()
	if el, ok := c.entries[group]; ok {
		e := el.Value.(*infoEntry)
		if c.now() < e.expires {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			c.hits.Add(1)
			return e, nil
		}
		c.lru.Remove(el)
		delete(c.entries, group)
	}
	// Join a read in progress only if no change came since it started:
	// its result would be stale (a long-poll would park on old data).
	if b, ok := c.inflight[group]; ok && b.gen == c.gen {
		c.mu.Unlock()
		<-b.done
		c.hits.Add(1)
		return b.e, b.err
	}
	b := &flight{done: make(chan struct{}), gen: c.gen}
	c.inflight[group] = b
	gen := c.gen
	c.mu.Unlock()

	b.e, b.err = c.render(group)
	c.mu.Lock()
	if c.inflight[group] == b {
		delete(c.inflight, group)
	}
	// Cache only what no change overtook while it was read.
	if b.err == nil && c.ttl > 0 && c.gen == gen {
		c.entries[group] = c.lru.PushFront(b.e)
		for c.lru.Len() > c.maxSize {
			old := c.lru.Remove(c.lru.Back()).(*infoEntry)
			delete(c.entries, old.group)
		}
	}
	c.mu.Unlock()
	close(b.done)
	return b.e, b.err
}

// render reads the group from the projection and renders its bytes: the
// group's config, or while a rollout runs the config it rolls out and the
// stable one; after a revert, the stable one.
func (c *infoCache) render(group string) (*infoEntry, error) {
	c.reads.Add(1)
	info, ro, found, err := c.read(group)
	if err != nil {
		return nil, err
	}
	expires := c.now() + c.ttl
	if found && ro != nil && ro.State == projections.RolloutReverted {
		// The devices the rollout reached: the stable config under the
		// revert's version; the others keep theirs.
		info = ro.StableInfo
		info.DeviceGroupID = ro.Reverted
	}
	e, err := renderInfo(group, info, found, expires)
	if err != nil || !found || ro == nil || ro.State == projections.RolloutCompleted {
		return e, err
	}
	if e.stable, err = renderInfo(group, ro.StableInfo, true, expires); err != nil {
		return nil, err
	}
	e.rollout = ro
	return e, nil
}

func renderInfo(group string, info Info, found bool, expires time.Duration) (*infoEntry, error) {
	e := &infoEntry{group: group, found: found, version: info.DeviceGroupID, expires: expires}
	e.etag = etagOf(e.version)
	e.etagHeader = headerValue(e.etag)
	if !found {
		return e, nil
	}
	var err error
	if e.body, err = json.Marshal(info); err != nil {
		return nil, err
	}
	e.body = append(e.body, '\n')
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	_, _ = zw.Write(e.body)
	_ = zw.Close()
	e.gz = gz.Bytes()
	e.bodyLength, e.gzLength = headerValue(strconv.Itoa(len(e.body))), headerValue(strconv.Itoa(len(e.gz)))
	return e, nil
}

// headerValue is v as a header's values: a slice of one, its capacity one
// (adding a value to the header copies it).
func headerValue(v string) []string { return []string{v} }

// changed returns a channel closed at the next change of the group.
func (c *infoCache) changed(group string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.waiters[group]
	if !ok {
		ch = make(chan struct{})
		c.waiters[group] = ch
	}
	return ch
}

// invalidate drops the entries of groups and wakes their long-polls.
func (c *infoCache) invalidate(groups []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, g := range groups {
		if el, ok := c.entries[g]; ok {
			c.lru.Remove(el)
			delete(c.entries, g)
		}
		if ch, ok := c.waiters[g]; ok {
			close(ch)
			delete(c.waiters, g)
		}
	}
}

// invalidateAll drops every entry (the projection was rebuilt).
func (c *infoCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = map[string]*list.Element{}
	c.lru.Init()
	for g, ch := range c.waiters {
		close(ch)
		delete(c.waiters, g)
	}
}

// Invalidate is the projection's commit hook: it drops the /info of every
// group the folded events touched.
func (s *Server) Invalidate(results []projections.Result) {
	var groups []string
	for _, r := range results {
		groups = append(groups, r.Groups...)
		if k := r.Verdict.Aggregate.Kind; r.Verdict.Accepted && (k == events.KindUser || k == events.KindUserGroup) {
			s.auth.usersChanged()
		}
	}
	if len(groups) > 0 {
		s.cache.invalidate(groups)
	}
}

// InvalidateAll is the projection's reset hook.
func (s *Server) InvalidateAll() {
	s.cache.invalidateAll()
	s.auth.usersChanged()
}
