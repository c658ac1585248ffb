package reports

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The fold of a fetch runs one transaction's worth of records (a batch) at
// a time, and commits each batch in the background while the next is
// folded: a fleet's heartbeats cost the fold or the commit, whichever is
// slower, not their sum (they took about as long as each other).
//
// A batch keeps its writes in memory; its reads see them first, then
// those of the batch before it while that one is being committed, then a
// read-only snapshot of what was committed before that. Badger makes a
// transaction opened while a commit is in flight wait for that commit, so
// each commit opens, as it ends and before the next starts, the snapshot
// the batch after it reads through. Batches commit one at a time and in
// order, each with the topic offsets of its records, so that whatever
// stops the process, the store resumes exactly after its last committed
// record; none is committed after a failed one.

// kv is what the fold and the reads of a device see of the store.
type kv interface {
	// get returns the entry at k and when it expires (Unix seconds, 0
	// never); found is false if there is none, or it has expired.
	get(k []byte) (v []byte, expiresAt uint64, found bool, err error)
}

// txnKV reads a Badger transaction.
type txnKV struct{ txn *badger.Txn }

func (t txnKV) get(k []byte) ([]byte, uint64, bool, error) {
	item, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, item.ExpiresAt(), err == nil, err
}

// write is a batch's last write of a key.
type write struct {
	v         []byte
	expiresAt uint64
	deleted   bool
}

// batch is one transaction's worth of the fold: its writes, and the offset
// after its last record of each partition (written with them).
type batch struct {
	below  kv // the batch before it while that one commits, else the snapshot
	writes map[string]write
	// count and size are what Badger counts of the transaction that
	// commits the writes, exactly (txn.checkSize): it refuses one that
	// reaches its limits.
	count     int64
	size      int64
	threshold int64 // the store's value threshold
	next      map[int32]int64
	stored    int // reports stored
	done      chan struct{}
	err       error
	// after is a snapshot opened once the batch was committed, before the
	// next commit started (nil on an error).
	after *badger.Txn
}

func (s *Store) newBatch(below kv) *batch {
	return &batch{below: below, writes: map[string]write{}, threshold: s.db.Opts().ValueThreshold,
		next: map[int32]int64{}, done: make(chan struct{})}
}

func (b *batch) get(k []byte) ([]byte, uint64, bool, error) {
	if w, ok := b.writes[string(k)]; ok {
		if w.deleted || w.expiresAt != 0 && w.expiresAt <= uint64(time.Now().Unix()) {
			return nil, 0, false, nil // as Badger reads a deleted or expired entry
		}
		return w.v, w.expiresAt, true, nil
	}
	return b.below.get(k)
}

// estimate is what Badger counts of an entry in a transaction's size.
func (b *batch) estimate(k string, w write) int64 {
	v := int64(len(w.v))
	if v >= b.threshold {
		v = 12 // a pointer into the value log
	}
	return int64(len(k)) + v + 2 + 10 // metadata, and the version in the key
}

func (b *batch) put(k string, w write) {
	if old, ok := b.writes[k]; ok {
		b.size -= b.estimate(k, old)
	} else {
		b.count++
	}
	b.writes[k] = w
	b.size += b.estimate(k, w)
}

// set writes e (its key, value and expiry); the batch keeps its slices.
// Nothing fails before the commit, which checks the transaction's size.
func (b *batch) set(e *badger.Entry) { b.put(string(e.Key), write{v: e.Value, expiresAt: e.ExpiresAt}) }

func (b *batch) delete(k []byte) { b.put(string(k), write{deleted: true}) }

// fits says whether one Badger transaction takes the batch.
func (b *batch) fits(db *badger.DB) bool {
	return b.count < db.MaxBatchCount() && b.size < db.MaxBatchSize()
}

// commit writes the batch in one transaction.
func (s *Store) commit(b *batch) error {
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			return err
		}
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for k, w := range b.writes {
		var err error
		if w.deleted {
			err = txn.Delete([]byte(k))
		} else {
			e := badger.NewEntry([]byte(k), w.v)
			e.ExpiresAt = w.expiresAt
			err = txn.SetEntry(e)
		}
		if err != nil {
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	s.folded.Add(int64(b.stored))
	return nil
}

// pipeline folds batches one after the other, each while the one before
// it commits. It has one user; close it.
type pipeline struct {
	s        *Store
	snap     *badger.Txn // under the batch in flight, or the next batch
	inflight *batch
}

// top is what the next batch is folded on.
func (p *pipeline) top() kv {
	if p.inflight != nil {
		return p.inflight
	}
	if p.snap == nil {
		p.snap = p.s.db.NewTransaction(false)
	}
	return txnKV{p.snap}
}

// commit waits for the batch in flight, puts b on the snapshot it left,
// and starts committing b.
func (p *pipeline) commit(b *batch) error {
	if err := p.wait(); err != nil {
		return err
	}
	b.below = p.top()
	p.inflight = b
	go func() {
		defer close(b.done)
		if b.err = p.s.commit(b); b.err == nil {
			b.after = p.s.db.NewTransaction(false)
		} else if errors.Is(b.err, badger.ErrTxnTooBig) {
			b.err = fmt.Errorf("a batch of device events does not fit in one transaction: %w", b.err)
		}
	}()
	return nil
}

// wait waits for the batch in flight, if any, and returns its error;
// what it committed becomes the snapshot the next batch reads.
func (p *pipeline) wait() error {
	b := p.inflight
	if b == nil {
		return nil
	}
	<-b.done
	p.inflight = nil
	if p.snap != nil {
		p.snap.Discard()
	}
	p.snap, b.after = b.after, nil
	return b.err
}

// close waits for the batch in flight and returns its error.
func (p *pipeline) close() error {
	err := p.wait()
	if p.snap != nil {
		p.snap.Discard()
		p.snap = nil
	}
	return err
}
