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
// record at offset o is also written under
//
//	v/<document key>/<o int64 BE>   VersionMeta (appendMeta) | 0 (deleted) or 1 + the document
//
// so the document as it was at offset N is the last of its versions at or
// before N (one reverse seek), and its history is an iteration over its
// versions. Only accepted records write, and a record writes its versions
// in the transaction that holds its other writes, so a past read at any
// offset the store has folded answers what a fold of the log up to that
// offset answers (TestPastReadsEqualAFold). Nothing is ever deleted from
// v/: the log is kept forever, and so is its past.
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
	b := make([]byte, 0, len(v.meta)+1+len(doc))
	b = append(b, v.meta...)
	if exists {
		b = append(append(b, 1), doc...)
	} else {
		b = append(b, 0)
	}
	if p, ok := docPrefix[v.env.Aggregate.Kind]; ok && len(k) == len(p)+len(v.env.Aggregate.Name) &&
		bytes.HasPrefix(k, p) && string(k[len(p):]) == v.env.Aggregate.Name {
		v.own = true
	}
	return v.KV.Set(binary.BigEndian.AppendUint64(versionPrefix(k), uint64(v.off)), b)
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

func decodeVersion(k, b []byte) (Version, error) {
	if len(k) < 8 {
		return Version{}, fmt.Errorf("projection version key %q is corrupt", k)
	}
	v := Version{Offset: int64(binary.BigEndian.Uint64(k[len(k)-8:]))}
	m, rest, ok := readMeta(b)
	if !ok || len(rest) == 0 {
		return v, fmt.Errorf("projection version %q is corrupt", k)
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
	// versions calls fn with the versions under prefix from offset from
	// on (or, reverse, from from back), until fn returns false.
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

// docsAt walks the versions backwards: each document's last version is
// read, and when it is after at, a seek finds its last one at or before
// at; a seek to the document's prefix then skips its other versions. Two
// seeks per document ever written under prefix, whatever its versions.
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
		ver, err := decodeVersion(it.Item().Key(), v)
		if err != nil {
			return err
		}
		if ver.Doc != nil {
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

// walk calls fn with the entries of it from prefix+from on.
func walk(it *badger.Iterator, prefix []byte, from int64, fn func(k, v []byte) (bool, error)) error {
	for it.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(from))); it.Valid(); it.Next() {
		value, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if more, err := fn(it.Item().KeyCopy(nil), value); err != nil || !more {
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
		if v, err := decodeVersion(k, m[string(k)]); err != nil {
			return err
		} else if v.Doc != nil {
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
	err := p.src.versions(versionPrefix(k), p.at, true, func(vk, b []byte) (bool, error) {
		v, err := decodeVersion(vk, b)
		doc, found = v.Doc, v.Doc != nil
		return false, err
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
	err = src.versions(vp, from, false, func(k, b []byte) (bool, error) {
		v, err := decodeVersion(k, b)
		versions = append(versions, v)
		return len(versions) < limit, err
	})
	if err != nil || len(versions) == 0 || versions[0].Offset == 0 {
		return versions, nil, err
	}
	err = src.versions(vp, versions[0].Offset-1, true, func(k, b []byte) (bool, error) {
		v, err := decodeVersion(k, b)
		before = &v
		return false, err
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
	err := src.versions(versionPrefix(key(prefixRollout, group)), target, false, func(k, b []byte) (bool, error) {
		v, err := decodeVersion(k, b)
		if err != nil || v.Doc == nil {
			return false, err
		}
		var ro Rollout
		if err := json.Unmarshal(v.Doc, &ro); err != nil {
			return false, fmt.Errorf("rollout version %q is corrupt: %w", k, err)
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
	err := src.versions(versionPrefix(key(prefix, name)), upTo, true, func(k, b []byte) (bool, error) {
		v, err := decodeVersion(k, b)
		if err != nil || v.Offset < downTo {
			return false, err
		}
		out = append(out, v)
		return len(out) < limit, nil
	})
	return out, err
}
