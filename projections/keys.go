package projections

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// Key layout of the Badger store. Names are validated by the fold before
// they become keys (letters, digits, _ . - and @ for users: never '/').
//
//	meta/applied                 int64 BE: the offset of the last record folded
//	meta/identity                JSON events.LogIdentity of the log folded
//	meta/fold_version            int64 BE: FoldVersion of the code that built the state
//	meta/stats                   JSON Stats: counters of what was folded
//	meta/trust                   the key ids the fold trusts (signing.Trust.Fingerprint), when it checks signatures
//	meta/signed_from             int64 BE: the offset of the log's first record signed by a trusted key
//	meta/checkpoint              JSON Checkpoint: the last checkpoint the fold accepted
//
//	app/<name>                   JSON App
//	dg/<name>                    JSON DeviceGroup
//	ro/<name>                    JSON Rollout: the rollout of a device group with a policy (rollout.go)
//	cron/<name>                  JSON CronJob
//	user/<name>                  JSON User
//	token/<sha256 hex>           user name: Bearer tokens looked up in O(1)
//	ug/<name>                    JSON UserGroup
//
//	idx/dg-app/<app>             JSON sorted []string: the device groups listing app <app>
//	idx/dg-cron/<cron>           JSON sorted []string: the device groups listing cron job <cron>
//	idx/ug-user/<user>           JSON sorted []string: the user groups with member <user>
//
// An index is one key per first name, never one key per pair: the fold
// must not iterate inside its write transaction (a Badger iterator there
// sorts every pending write, so a replay batch would go quadratic).
//
//	rec/<offset/16 int64 BE>     what the fold knows of each record, 16 offsets per key:
//	                             repeated { offset int64 BE | chain 32 bytes | time int64 BE | uvarint n | n bytes JSON Verdict }
//	                             (chain: the hash chain after that record, docs/events.md; time: the latest
//	                             event time, Unix ns, of the records up to it, which never decreases, so
//	                             the offset of a time is a binary search: OffsetAt)
//	cmd/<command id>             int64 BE: offset of the first record with that command ID, for a client's
//	                             idempotency key ("<actor>/<key>")
//	cmdr/<bucket uint16 BE>      the random command IDs of the last recentWindow offsets whose SHA-256 falls in
//	                             the bucket (recent.go): the first one's offset int64 BE, then repeated
//	                             { offset after it uint16 BE | 10 bytes of the SHA-256 }, in offset order
//	ev/<kind>/<name>/<offset BE> empty: the record at offset is an event of that object (accepted or not),
//	                             so one object's events are read without reading the log (events.go)
//	meta/chain_head              32 bytes: the hash chain after the last record folded
//
// Records share a key by 16 so that a replay writes one Badger entry per 16
// records for them instead of two per record (a live fold rewrites the
// block it appends to: a few KB). Big-endian blocks sort in log order.
var (
	keyApplied     = []byte("meta/applied")
	keyIdentity    = []byte("meta/identity")
	keyFoldVersion = []byte("meta/fold_version")
	keyStats       = []byte("meta/stats")
	keyChainHead   = []byte("meta/chain_head")
	keyTrust       = []byte("meta/trust")
	keySignedFrom  = []byte("meta/signed_from")
	keyCheckpoint  = []byte("meta/checkpoint")

	prefixApp       = []byte("app/")
	prefixGroup     = []byte("dg/")
	prefixRollout   = []byte("ro/")
	prefixCron      = []byte("cron/")
	prefixUser      = []byte("user/")
	prefixToken     = []byte("token/")
	prefixUserGroup = []byte("ug/")

	prefixIdxGroupApp  = []byte("idx/dg-app/")
	prefixIdxGroupCron = []byte("idx/dg-cron/")
	prefixIdxGroupUser = []byte("idx/ug-user/")

	prefixRecord  = []byte("rec/")
	prefixCommand = []byte("cmd/")
	prefixEvents  = []byte("ev/")
)

// recordsPerBlock is how many offsets share a rec/ key.
const recordsPerBlock = 16

// recordEntrySize is an entry's fixed part: offset, chain and time.
const recordEntrySize = 8 + 32 + 8

func key(prefix []byte, name string) []byte {
	k := make([]byte, 0, len(prefix)+len(name))
	return append(append(k, prefix...), name...)
}

func offsetKey(prefix []byte, off int64) []byte {
	k := make([]byte, 0, len(prefix)+8)
	return binary.BigEndian.AppendUint64(append(k, prefix...), uint64(off))
}

func encodeInt(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeInt(b []byte) int64 {
	if len(b) != 8 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(b))
}

// putRecord stores what the fold decided about the record at off: the
// hash chain after it and its verdict, appended to its block, with the
// latest event time up to it (at, the record's event time, or the one
// before it).
func putRecord(kv KV, off int64, head []byte, v Verdict, at time.Time) error {
	if len(head) != 32 {
		return fmt.Errorf("chain head of offset %d has %d bytes", off, len(head))
	}
	latest := at.UnixNano()
	k := offsetKey(prefixRecord, off/recordsPerBlock)
	// The block the applier's overlay got from putRecord in this batch
	// (below), if any: it holds the record before, usually.
	var mine []byte
	o, owned := kv.(*overlay)
	if owned = owned && o.owned; owned {
		mine, _ = o.lookup(k)
	}
	if off > 0 {
		var prev recordEntry
		found := false
		if mine != nil {
			err := eachRecord(k, mine, func(o int64, e recordEntry) bool {
				if o == off-1 {
					prev, found = e, true
				}
				return !found
			})
			if err != nil {
				return err
			}
		}
		if !found {
			var err error
			if prev, found, err = getRecord(kv, off-1); err != nil {
				return err
			}
		}
		if found && prev.latest > latest {
			latest = prev.latest
		}
	}
	vj, err := v.appendJSON(make([]byte, 0, 192))
	if err != nil {
		return err
	}
	entry := func(b []byte) []byte {
		b = binary.BigEndian.AppendUint64(b, uint64(off))
		b = append(b, head...)
		b = binary.BigEndian.AppendUint64(b, uint64(latest))
		b = binary.AppendUvarint(b, uint64(len(vj)))
		return append(b, vj...)
	}
	// A block the applier's overlay got from putRecord in this batch is
	// the overlay's alone: extend it in place (appending never changes
	// the bytes a reader of the shorter block sees).
	if mine != nil {
		grown := entry(mine)
		o.vals[o.set[string(k)]].v = grown // no new string for the key
		o.size += int64(o.valueSize(len(grown)) - o.valueSize(len(mine)))
		return nil
	}
	block, _, err := kv.Get(k)
	if err != nil {
		return err
	}
	out := make([]byte, 0, len(block)+recordsPerBlock*(recordEntrySize+256))
	out = append(out, block...) // a copy: the block read may be shared
	return kv.Set(k, entry(out))
}

// recordEntry is what the fold stored of a record (putRecord).
type recordEntry struct {
	head    []byte // the hash chain after it
	latest  int64  // the latest event time up to it, Unix ns
	verdict []byte // JSON Verdict
}

// getRecord returns what the fold stored of the record at off.
func getRecord(kv KV, off int64) (e recordEntry, found bool, err error) {
	err = readRecordBlock(kv, off/recordsPerBlock, func(o int64, entry recordEntry) bool {
		if o == off {
			e, found = entry, true
		}
		return !found
	})
	return e, found, err
}

// readRecordBlock calls fn with each record of block (offsets block*16 to
// block*16+15) the fold stored, in log order, until fn returns false.
func readRecordBlock(kv KV, block int64, fn func(off int64, e recordEntry) bool) error {
	k := offsetKey(prefixRecord, block)
	b, found, err := kv.Get(k)
	if err != nil || !found {
		return err
	}
	return eachRecord(k, b, fn)
}

// eachRecord calls fn with each record of block b (at key k), in log
// order, until fn returns false.
func eachRecord(k, b []byte, fn func(off int64, e recordEntry) bool) error {
	for len(b) > 0 {
		if len(b) < recordEntrySize {
			return fmt.Errorf("projection record block %q is corrupt", k)
		}
		o := int64(binary.BigEndian.Uint64(b))
		n, w := binary.Uvarint(b[recordEntrySize:])
		end := recordEntrySize + w + int(n)
		if w <= 0 || n > uint64(len(b)) || end > len(b) {
			return fmt.Errorf("projection record block %q is corrupt", k)
		}
		if !fn(o, recordEntry{head: b[8:40], latest: int64(binary.BigEndian.Uint64(b[40:48])), verdict: b[recordEntrySize+w : end]}) {
			return nil
		}
		b = b[end:]
	}
	return nil
}

// prefixSet answers whether a key starts with one of a few prefixes,
// comparing only those that start with the key's first byte (the fold
// asks this of every key it reads and writes).
type prefixSet [256][][]byte

func newPrefixSet(ps ...[]byte) *prefixSet {
	var s prefixSet
	for _, p := range ps {
		s[p[0]] = append(s[p[0]], p)
	}
	return &s
}

func (s *prefixSet) has(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, p := range s[k[0]] {
		if bytes.HasPrefix(k, p) {
			return true
		}
	}
	return false
}
