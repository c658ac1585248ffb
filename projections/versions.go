package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Versions: the past of every document, kept by the fold (issue 20).
//
// Each write of a document (app/, dg/, ro/, cron/, user/, ug/) by the
// record at offset o is also kept as a version of it, in a chunk:
//
//	v/<document key>/<first int64 BE>   repeated { o int64 BE | uvarint n | n bytes: VersionMeta (appendMeta) | 0 (deleted) or 1 + the document }
//
// A chunk holds the versions of one document that one batch of records
// wrote (a replay's batch holds tens of thousands of records, a live
// fold's a few), in offset order, keyed by the first. One Badger entry per
// version was a third of a replay's cost (skiplist inserts, the value
// log's and the write-ahead log's per-entry work, compactions of keys that
// are never deleted): BenchmarkReplay folded the mix at 27.5 µs of CPU per
// event with them, 19.5 µs without versions at all. A chunk stops growing
// at maxChunkBytes.
//
// So the document as it was at offset N is the last version at or before
// N of the last chunk whose first is at or before N (one reverse seek),
// and its history is an iteration over its chunks (docVersions). Only
// accepted records write, and a record writes its versions in the
// transaction that holds its other writes, so a past read at any offset
// the store has folded answers what a fold of the log up to that offset
// answers (TestPastReadsEqualAFold). Nothing is ever deleted from v/: the
// log is kept forever, and so is its past.
var prefixVersion = []byte("v/")

// versioned reports whether the document at key k keeps its versions.
func versioned(k []byte) bool { return versionedPrefixes.has(k) }

var versionedPrefixes = newPrefixSet(prefixApp, prefixGroup, prefixRollout, prefixCron, prefixUser, prefixUserGroup)

// versionPrefix is where the versions of the document at k are.
func versionPrefix(k []byte) []byte {
	p := make([]byte, 0, len(prefixVersion)+len(k)+1+8)
	return append(append(append(p, prefixVersion...), k...), '/')
}

// VersionMeta is who made a version and how: the record's event.
type VersionMeta struct {
	Type      events.Type      `json:"type"`
	Aggregate events.Aggregate `json:"aggregate"`
	Actor     string           `json:"actor"`
	Time      time.Time        `json:"time"`
	RevertOf  *int64           `json:"revert_of,omitempty"`
}

// revertOf is the offset a revert restores, when env is one.
func revertOf(env events.Envelope) *int64 {
	switch p := env.Payload.(type) {
	case events.AppCreatedV:
		return p.RevertOf
	case events.AppReplacedV:
		return p.RevertOf
	case events.DeviceGroupCreatedV:
		return p.RevertOf
	case events.DeviceGroupReplacedV:
		return p.RevertOf
	case events.CronJobCreatedV:
		return p.RevertOf
	case events.CronJobReplacedV:
		return p.RevertOf
	}
	return nil
}

// versioningKV is the KV the fold writes one record through: each write
// of a document also writes its version at the record's offset.
type versioningKV struct {
	KV
	off  int64
	env  *events.Envelope
	meta []byte // the record's VersionMeta, encoded at its first version
	// own says that the record wrote a version of its own aggregate's
	// document: its offset is then found among that document's versions,
	// and the object's event index (ev/) need not hold it.
	own bool
}

func (v *versioningKV) Set(k, value []byte) error {
	if err := v.KV.Set(k, value); err != nil || !versioned(k) {
		return err
	}
	return v.version(k, value, true)
}

func (v *versioningKV) Delete(k []byte) error {
	if err := v.KV.Delete(k); err != nil || !versioned(k) {
		return err
	}
	return v.version(k, nil, false)
}

func (v *versioningKV) version(k, doc []byte, exists bool) error {
	if v.meta == nil {
		v.meta = appendMeta(make([]byte, 0, 64), VersionMeta{Type: v.env.Type, Aggregate: v.env.Aggregate,
			Actor: v.env.Actor, Time: v.env.Time, RevertOf: revertOf(*v.env)})
	}
	if p, ok := docPrefix[v.env.Aggregate.Kind]; ok && len(k) == len(p)+len(v.env.Aggregate.Name) &&
		bytes.HasPrefix(k, p) && string(k[len(p):]) == v.env.Aggregate.Name {
		v.own = true
	}
	if c, ok := v.KV.(chunkingKV); ok && c.addVersion(k, v.off, v.meta, doc, exists) {
		return nil
	}
	b := appendChunkVersion(make([]byte, 0, 8+2+len(v.meta)+1+len(doc)), v.off, v.meta, doc, exists)
	return v.KV.Set(binary.BigEndian.AppendUint64(versionPrefix(k), uint64(v.off)), b)
}

// appendChunkVersion appends the version of a document the record at off
// wrote to a chunk.
func appendChunkVersion(b []byte, off int64, meta, doc []byte, exists bool) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(off))
	n := len(meta) + 1
	if exists {
		n += len(doc)
	}
	b = append(binary.AppendUvarint(b, uint64(n)), meta...)
	if !exists {
		return append(b, 0)
	}
	return append(append(b, 1), doc...)
}

// chunkingKV is a KV that gathers the versions its records write into one
// chunk per document (the applier's overlay, for a batch). ok=false: it
// does not, the version is to be set as a chunk of its own.
type chunkingKV interface {
	addVersion(k []byte, off int64, meta, doc []byte, exists bool) (ok bool)
}

// versionChunks are the chunks a batch is writing, by document key. Their
// values are encoded when the batch commits, on the committing goroutine
// (Store.commit): nothing reads versions while folding.
type versionChunks struct {
	m   map[string]*versionChunk
	all []*versionChunk // in the order made
}

type versionChunk struct {
	key   []byte // v/<document key>/<first>
	vers  []pendingVersion
	bytes int // encoded
}

// pendingVersion is a version in a chunk not encoded yet: meta and doc are
// the record's and the document's bytes, which never change once made.
type pendingVersion struct {
	off       int64
	meta, doc []byte
	exists    bool
}

func (p pendingVersion) size() int {
	n := len(p.meta) + 1
	if p.exists {
		n += len(p.doc)
	}
	return 8 + len(binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64), uint64(n))) + n
}

// maxChunkBytes ends a chunk: the next version starts another.
const maxChunkBytes = 64 << 10

func newVersionChunks() *versionChunks { return &versionChunks{m: map[string]*versionChunk{}} }

// add adds the version the record at off wrote of the document at k to the
// document's chunk, and returns the chunk and its encoded size before. A
// second version by the same record replaces the first, as a second Set
// of one key would.
func (vc *versionChunks) add(k []byte, v pendingVersion) (c *versionChunk, before int, made bool) {
	c = vc.m[string(k)]
	switch {
	case c != nil && c.vers[len(c.vers)-1].off == v.off:
		before = c.bytes
		c.bytes += v.size() - c.vers[len(c.vers)-1].size()
		c.vers[len(c.vers)-1] = v
		return c, before, false
	case c != nil && c.bytes < maxChunkBytes:
		before = c.bytes
		c.vers = append(c.vers, v)
		c.bytes += v.size()
		return c, before, false
	}
	c = &versionChunk{key: binary.BigEndian.AppendUint64(versionPrefix(k), uint64(v.off)), vers: []pendingVersion{v}, bytes: v.size()}
	vc.m[string(k)] = c
	vc.all = append(vc.all, c)
	return c, 0, true
}

// encode is the chunk's value (c.bytes long).
func (c *versionChunk) encode() []byte {
	b := make([]byte, 0, c.bytes)
	for _, v := range c.vers {
		b = appendChunkVersion(b, v.off, v.meta, v.doc, v.exists)
	}
	return b
}

// chunkVersion is one version in a chunk.
type chunkVersion struct {
	off int64
	v   []byte // VersionMeta | 0, or 1 and the document
}

// splitChunk returns the versions of the chunk b at key k.
func splitChunk(k, b []byte) ([]chunkVersion, error) { return splitChunkInto(nil, k, b) }

// splitChunkInto is splitChunk appending to out.
func splitChunkInto(out []chunkVersion, k, b []byte) ([]chunkVersion, error) {
	start := len(out)
	for len(b) > 0 {
		if len(b) < 9 {
			return nil, fmt.Errorf("projection version chunk %q is corrupt", k)
		}
		off := int64(binary.BigEndian.Uint64(b))
		n, w := binary.Uvarint(b[8:])
		if w <= 0 || n > uint64(len(b)-8-w) || len(out) > start && off <= out[len(out)-1].off {
			return nil, fmt.Errorf("projection version chunk %q is corrupt", k)
		}
		out = append(out, chunkVersion{off, b[8+w : 8+w+int(n)]})
		b = b[8+w+int(n):]
	}
	if len(out) == start {
		return nil, fmt.Errorf("projection version chunk %q is empty", k)
	}
	return out, nil
}

// lastAtOrBefore is the last version of chunk b (at key k) at or before
// offset at (found=false: none is).
func lastAtOrBefore(k, b []byte, at int64) (Version, bool, error) {
	vs, err := splitChunk(k, b)
	if err != nil {
		return Version{}, false, err
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].off <= at {
			v, err := decodeVersion(vs[i].off, vs[i].v)
			return v, err == nil, err
		}
	}
	return Version{}, false, nil
}

// docVersions calls fn with the versions of the document whose versions
// are under prefix (versionPrefix), each with its offset, from offset from
// on (reverse: from from back), until fn returns false.
func docVersions(src versionSource, prefix []byte, from int64, reverse bool, fn func(Version) (bool, error)) error {
	// emit calls fn with the versions of one chunk that keep allows;
	// more: fn wants more.
	emit := func(k, b []byte, keep func(off int64) bool) (more bool, err error) {
		var buf [64]chunkVersion // most chunks: no allocation
		vs, err := splitChunkInto(buf[:0], k, b)
		if err != nil {
			return false, err
		}
		for i := range vs {
			if reverse {
				i = len(vs) - 1 - i
			}
			if !keep(vs[i].off) {
				continue
			}
			v, err := decodeVersion(vs[i].off, vs[i].v)
			if err != nil {
				return false, err
			}
			v.Doc = bytes.Clone(v.Doc) // b is the source's, for this call only
			if more, err := fn(v); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	if reverse {
		return src.versions(prefix, from, true, func(k, b []byte) (bool, error) {
			return emit(k, b, func(off int64) bool { return off <= from })
		})
	}
	from = max(from, 0)
	atOrAfter := func(off int64) bool { return off >= from }
	// The chunk from falls in (the last whose first is at or before it),
	// then those after it.
	found, more := false, true
	err := src.versions(prefix, from, true, func(k, b []byte) (bool, error) {
		found = true
		var err error
		more, err = emit(k, b, atOrAfter)
		return false, err
	})
	if err != nil || !more {
		return err
	}
	next := from
	if found {
		next++ // no other chunk starts in (its first, from]
	}
	return src.versions(prefix, next, false, func(k, b []byte) (bool, error) { return emit(k, b, atOrAfter) })
}

// Version is one version of a document.
type Version struct {
	Offset int64
	Meta   VersionMeta
	// Doc is the document as the record left it; nil when it deleted it.
	Doc []byte
}

// appendMeta encodes m: its strings (type, kind, name, actor) each
// uvarint-length-prefixed, the time as varint Unix nanoseconds, then
// 0, or 1 and the varint RevertOf. (The fold writes one per version, so
// not JSON: that was a tenth of a replay.)
func appendMeta(b []byte, m VersionMeta) []byte {
	for _, s := range []string{string(m.Type), string(m.Aggregate.Kind), m.Aggregate.Name, m.Actor} {
		b = append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	b = binary.AppendVarint(b, m.Time.UnixNano())
	if m.RevertOf == nil {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), *m.RevertOf)
}

// readMeta decodes what appendMeta wrote at the start of b, and returns
// the rest.
func readMeta(b []byte) (VersionMeta, []byte, bool) {
	var m VersionMeta
	var strs [4]string
	for i := range strs {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return m, nil, false
		}
		strs[i], b = string(b[w:w+int(n)]), b[w+int(n):]
	}
	m.Type, m.Aggregate.Kind, m.Aggregate.Name, m.Actor = events.Type(strs[0]), events.Kind(strs[1]), strs[2], strs[3]
	t, w := binary.Varint(b)
	if w <= 0 || len(b) == w {
		return m, nil, false
	}
	m.Time, b = time.Unix(0, t).UTC(), b[w:]
	if b[0] == 1 {
		r, w := binary.Varint(b[1:])
		if w <= 0 {
			return m, nil, false
		}
		m.RevertOf, b = &r, b[1+w:]
	} else {
		b = b[1:]
	}
	return m, b, true
}

// decodeVersion decodes the version at offset off (what follows the
// offset and length in its chunk).
func decodeVersion(off int64, b []byte) (Version, error) {
	v := Version{Offset: off}
	m, rest, ok := readMeta(b)
	if !ok || len(rest) == 0 || rest[0] > 1 || rest[0] == 0 && len(rest) > 1 {
		return v, fmt.Errorf("projection version at offset %d is corrupt", off)
	}
	v.Meta = m
	if rest[0] == 1 {
		v.Doc = rest[1:]
	}
	return v, nil
}

// versionSource is a KV that can walk one document's versions: a Badger
// transaction, or a MemKV in tests.
type versionSource interface {
	// versions calls fn with the entries under prefix (their keys ending
	// in an offset) from offset from on (or, reverse, from from back),
	// until fn returns false. k and v are valid only during the call.
	versions(prefix []byte, from int64, reverse bool, fn func(k, v []byte) (bool, error)) error
	// docsAt calls fn with the key of each document under prefix that
	// existed at offset at, in reverse key order.
	docsAt(prefix []byte, at int64, fn func(doc []byte) error) error
}

// docOfVersion splits a version key into its document's key and offset.
func docOfVersion(vk []byte) ([]byte, int64, bool) {
	if len(vk) < len(prefixVersion)+1+8 || !bytes.HasPrefix(vk, prefixVersion) {
		return nil, 0, false
	}
	return vk[len(prefixVersion) : len(vk)-9], int64(binary.BigEndian.Uint64(vk[len(vk)-8:])), true
}

// docsAt walks the chunks backwards: each document's last chunk is read,
// and when it starts after at, a seek finds the one at is in; a seek to
// the document's prefix then skips its other chunks. Two seeks per
// document ever written under prefix, whatever its versions.
func (b badgerKV) docsAt(prefix []byte, at int64, fn func(doc []byte) error) error {
	vp := append(bytes.Clone(prefixVersion), prefix...)
	it := b.txn.NewIterator(badger.IteratorOptions{Prefix: vp, Reverse: true, PrefetchValues: false})
	defer it.Close()
	it.Seek(append(bytes.Clone(vp), 0xff))
	for it.Valid() {
		doc, off, ok := docOfVersion(it.Item().Key())
		if !ok {
			return fmt.Errorf("version key %q is corrupt", it.Item().Key())
		}
		doc = bytes.Clone(doc)
		if off > at {
			it.Seek(binary.BigEndian.AppendUint64(versionPrefix(doc), uint64(at)))
			if !it.Valid() {
				return nil
			}
			d, _, _ := docOfVersion(it.Item().Key())
			if !bytes.Equal(d, doc) {
				continue // the document came later: the entry is another's
			}
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		ver, found, err := lastAtOrBefore(it.Item().Key(), v, at)
		if err != nil {
			return err
		}
		if found && ver.Doc != nil {
			if err := fn(doc); err != nil {
				return err
			}
		}
		it.Seek(versionPrefix(doc)) // the document before this one
	}
	return nil
}

func (b badgerKV) versions(prefix []byte, from int64, reverse bool, fn func(k, v []byte) (bool, error)) error {
	it := b.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse, PrefetchValues: false})
	defer it.Close()
	return walk(it, prefix, from, fn)
}

// walk calls fn with the entries of it from prefix+from on, their key and
// value valid only during the call (a chunk is not copied to read one of
// its versions).
func walk(it *badger.Iterator, prefix []byte, from int64, fn func(k, v []byte) (bool, error)) error {
	for it.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(from))); it.Valid(); it.Next() {
		item := it.Item()
		more := false
		err := item.Value(func(v []byte) error {
			var err error
			more, err = fn(item.Key(), v)
			return err
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// reusingKV is a badgerKV whose version reads keep their iterators, one
// per prefix and direction, for reads of a few documents' versions many
// times over (a device's story: a group's versions for each step of it).
// Opening a Badger iterator costs more as the store grows; seeking an
// open one does not.
type reusingKV struct {
	badgerKV
	its map[string]*badger.Iterator
}

func (k *reusingKV) versions(prefix []byte, from int64, reverse bool, fn func(k, v []byte) (bool, error)) error {
	id := string(prefix)
	if reverse {
		id = "r" + id
	} else {
		id = "f" + id
	}
	it := k.its[id]
	if it == nil {
		it = k.txn.NewIterator(badger.IteratorOptions{Prefix: bytes.Clone(prefix), Reverse: reverse, PrefetchValues: false})
		k.its[id] = it
	}
	return walk(it, prefix, from, fn)
}

// Reusing returns a reader whose reads of versions keep their iterators
// open, and the function that closes them (before the view ends).
func (r Reader) Reusing() (Reader, func()) {
	b, ok := r.kv.(badgerKV)
	if !ok {
		return r, func() {}
	}
	k := &reusingKV{badgerKV: b, its: map[string]*badger.Iterator{}}
	return Reader{k}, func() {
		for _, it := range k.its {
			it.Close()
		}
	}
}

func (m MemKV) docsAt(prefix []byte, at int64, fn func(doc []byte) error) error {
	last := map[string][]byte{}
	_ = m.Keys(append(bytes.Clone(prefixVersion), prefix...), func(k []byte) error {
		if doc, off, ok := docOfVersion(k); ok && off <= at {
			last[string(doc)] = k
		}
		return nil
	})
	docs := []string{}
	for doc, k := range last {
		if v, found, err := lastAtOrBefore(k, m[string(k)], at); err != nil {
			return err
		} else if found && v.Doc != nil {
			docs = append(docs, doc)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(docs)))
	for _, d := range docs {
		if err := fn([]byte(d)); err != nil {
			return err
		}
	}
	return nil
}

func (m MemKV) versions(prefix []byte, from int64, reverse bool, fn func(k, v []byte) (bool, error)) error {
	var keys [][]byte
	_ = m.Keys(prefix, func(k []byte) error {
		keys = append(keys, k)
		return nil
	})
	if reverse {
		for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
			keys[i], keys[j] = keys[j], keys[i]
		}
	}
	seek := binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(from))
	for _, k := range keys {
		if c := bytes.Compare(k, seek); (!reverse && c < 0) || (reverse && c > 0) {
			continue
		}
		if more, err := fn(k, m[string(k)]); err != nil || !more {
			return err
		}
	}
	return nil
}

// ErrNoPast is a past read of state whose versions are not kept.
var ErrNoPast = errors.New("the projection keeps no past of this")

// pastKV reads the projection as it was at offset at: each document is
// its last version at or before at. Record blocks only grow, so a
// verdict read passes through; other state has no past.
type pastKV struct {
	src versionSource
	kv  KV
	at  int64
}

func (p pastKV) Get(k []byte) ([]byte, bool, error) {
	if bytes.HasPrefix(k, prefixRecord) {
		return p.kv.Get(k)
	}
	if !versioned(k) {
		return nil, false, fmt.Errorf("%w: %q", ErrNoPast, k)
	}
	var doc []byte
	var found bool
	err := docVersions(p.src, versionPrefix(k), p.at, true, func(v Version) (bool, error) {
		doc, found = v.Doc, v.Doc != nil
		return false, nil
	})
	return doc, found, err
}

func (p pastKV) Set([]byte, []byte) error { return errors.New("a past read does not write") }
func (p pastKV) Delete([]byte) error      { return errors.New("a past read does not write") }

// Keys lists the documents under prefix that existed at p.at (every
// version is kept, so a listing of documents has a past too; of other
// state it has not).
func (p pastKV) Keys(prefix []byte, fn func([]byte) error) error {
	if !versioned(prefix) {
		return fmt.Errorf("%w: listing %q", ErrNoPast, prefix)
	}
	var docs [][]byte
	if err := p.src.docsAt(prefix, p.at, func(doc []byte) error {
		docs = append(docs, doc)
		return nil
	}); err != nil {
		return err
	}
	for i := len(docs) - 1; i >= 0; i-- {
		if err := fn(docs[i]); err != nil {
			return err
		}
	}
	return nil
}

// At is the projection as it was at offset at (inclusive), as far as
// documents and verdicts go: every object as it was, /info as it was.
// at must be an offset the store has folded.
func (r Reader) At(at int64) (Reader, error) {
	src, ok := r.kv.(versionSource)
	if !ok {
		return Reader{}, fmt.Errorf("%w: %T keeps no versions", ErrNoPast, r.kv)
	}
	return Reader{pastKV{src: src, kv: r.kv, at: at}}, nil
}

// Versions returns up to limit versions of the document of kind/name from
// offset from on, oldest first, and the one before them (before: nil when
// the first is the document's first), for what the first one changed.
func (r Reader) Versions(kind events.Kind, name string, from int64, limit int) (versions []Version, before *Version, err error) {
	src, ok := r.kv.(versionSource)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %T keeps no versions", ErrNoPast, r.kv)
	}
	prefix, ok := docPrefix[kind]
	if !ok {
		return nil, nil, fmt.Errorf("no documents of aggregate kind %q", kind)
	}
	vp := versionPrefix(key(prefix, name))
	err = docVersions(src, vp, from, false, func(v Version) (bool, error) {
		versions = append(versions, v)
		return len(versions) < limit, nil
	})
	if err != nil || len(versions) == 0 || versions[0].Offset == 0 {
		return versions, nil, err
	}
	err = docVersions(src, vp, versions[0].Offset-1, true, func(v Version) (bool, error) {
		before = &v
		return false, nil
	})
	return versions, before, err
}

// docPrefix is where the documents of each kind are.
var docPrefix = map[events.Kind][]byte{
	events.KindApp: prefixApp, events.KindDeviceGroup: prefixGroup, events.KindCronJob: prefixCron,
	events.KindUser: prefixUser, events.KindUserGroup: prefixUserGroup,
}

// RolloutOf is the rollout of group's version target as it ended (or
// stands now): the last version of the group's rollout whose target it
// was (found=false: no rollout took target). It reads the rollout's
// versions from target on, and no further than maxRolloutSteps.
func (r Reader) RolloutOf(group string, target int64) (Rollout, bool, error) {
	var out Rollout
	found := false
	src, ok := r.kv.(versionSource)
	if !ok {
		return out, false, fmt.Errorf("%w: %T keeps no versions", ErrNoPast, r.kv)
	}
	steps := 0
	err := docVersions(src, versionPrefix(key(prefixRollout, group)), target, false, func(v Version) (bool, error) {
		if v.Doc == nil {
			return false, nil
		}
		var ro Rollout
		if err := json.Unmarshal(v.Doc, &ro); err != nil {
			return false, fmt.Errorf("version at offset %d of group %q's rollout is corrupt: %w", v.Offset, group, err)
		}
		if ro.Target != target {
			return false, nil
		}
		out, found = ro, true
		steps++
		return steps < maxRolloutSteps, nil
	})
	return out, found, err
}

// maxRolloutSteps bounds what RolloutOf reads: a rollout takes a decision
// per wave, and a few by hand.
const maxRolloutSteps = 1000

// VersionsBack returns up to limit versions of the document of kind/name
// at or before offset upTo and at or after downTo, newest first.
func (r Reader) VersionsBack(kind events.Kind, name string, upTo, downTo int64, limit int) ([]Version, error) {
	src, ok := r.kv.(versionSource)
	if !ok {
		return nil, fmt.Errorf("%w: %T keeps no versions", ErrNoPast, r.kv)
	}
	prefix, ok := docPrefix[kind]
	if !ok {
		return nil, fmt.Errorf("no documents of aggregate kind %q", kind)
	}
	var out []Version
	err := docVersions(src, versionPrefix(key(prefix, name)), upTo, true, func(v Version) (bool, error) {
		if v.Offset < downTo {
			return false, nil
		}
		out = append(out, v)
		return len(out) < limit, nil
	})
	return out, err
}
