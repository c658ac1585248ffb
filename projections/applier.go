package projections

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/chain"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
)

// applier folds batches of records in memory and commits each batch (its
// writes, the stats and its last offset, in one Badger transaction) in the
// background while the next batch is folded: a replay then costs the fold
// or the commit, whichever is slower, not their sum.
//
// Batch N is folded into an overlay whose reads fall through to the
// overlays of the batches still being committed (newest first) and then to
// a read-only snapshot holding everything committed before the oldest of
// them. Up to maxInflight batches wait for or are in their commit, and
// they commit one at a time, in order: a commit that is slower than the
// fold now and then (a memtable flush in its way, the other core taken by
// the read-ahead) does not stop the fold. Each commit holds whole records
// and the offset of the last one, so a crash at any point resumes exactly
// after the last committed record; after a failed commit none that follows
// it runs. A commit publishes itself (Applied, WaitFor, OnCommit) as soon
// as it is durable, so following the live log adds no delay.
//
// An applier has one user at a time; it must be closed.
type applier struct {
	s        *Store
	snap     *badger.Txn // read-only snapshot under the oldest overlay
	inflight []*pending  // the batches handed to their commits, oldest first
	folded   int64       // offset of the last record folded (committed or not)
	filter   *keyFilter  // the store's, if it has one
	hot      *hotCache   // what the snapshot holds of the hot documents
	memo     *memos      // the documents the fold wrote, decoded
	// results of the committed batches, when the caller wants them
	keep    bool
	results []Result
	// batchLen is how many records the last batch held: the next one's
	// results are made that long (growing them was a twentieth of a
	// replay's fold).
	batchLen int
}

// maxInflight is how many folded batches may wait for or be in their
// commit while the next is folded.
const maxInflight = 2

// pending is a folded batch and its commit.
type pending struct {
	writes  *overlay
	last    int64
	results []Result
	done    chan struct{}
	err     error
	// after is a snapshot opened once the batch was committed, before the
	// next commit started: everything up to the batch (nil on an error).
	after *badger.Txn
}

func (s *Store) newApplier(keepResults bool) *applier {
	return &applier{s: s, folded: s.Applied(), filter: s.filter, hot: newHotCache(), memo: newMemos(), keep: keepResults}
}

// apply folds recs (decoded: decodeAll(recs)) in offset order, skipping
// those already folded, and starts committing them. It returns once they
// are folded; close (or a later apply) reports whether they were
// committed. On a record the fold cannot read, the records before it are
// committed and the *RecordError returned.
func (a *applier) apply(recs []events.Record, decoded []decoded) error {
	for len(recs) > 0 {
		n, batch, recErr, err := a.fold(recs, decoded)
		if err != nil {
			return err
		}
		if batch != nil {
			if err := a.commit(batch); err != nil {
				return err
			}
		}
		recs, decoded = recs[n:], decoded[n:]
		if recErr != nil {
			if err := a.wait(); err != nil {
				return err
			}
			return recErr
		}
	}
	return nil
}

// fold folds the records of recs that fit in one transaction into a new
// overlay and returns how many it consumed, the batch (nil if every record
// was folded before), and the error of an unreadable record it stopped at.
func (a *applier) fold(recs []events.Record, envs []decoded) (int, *pending, error, error) {
	maxCount, maxSize := a.s.db().MaxBatchCount()-4, a.s.db().MaxBatchSize()-(4<<10)
	// A batch writes a few keys per record and ends before maxCount; a
	// fetch can hold a hundred thousand records.
	cur := newOverlay(a.base(), int(min(4*int64(len(recs)), maxCount)))
	cur.owned = true // the fold never changes a value it has set
	// The filter holds the keys of the batches before this one (added
	// below as each is folded): a new name or command ID is known absent
	// without looking through the batch being committed to the snapshot.
	cur.filter = a.filter
	cur.latest = a.hot
	cur.chunks = newVersionChunks()
	if len(recs) >= recentBuckets {
		// A replay's batch sets most buckets: an array of them (96 KiB)
		// beats the map; a live batch of a few records sets a few.
		cur.recent = &recentSet{}
	}
	if !a.s.opts.InMemory {
		cur.valueLogFrom = int(a.s.opts.ValueThreshold)
	}
	stats, _, err := getDoc[Stats](cur, keyStats)
	if err != nil {
		return 0, nil, nil, err
	}
	// A batch ends before the record that could take it past Badger's
	// limits: most records write far less than a quarter of them. One
	// that does write more is folded again in the next batch (below);
	// ending every batch that way folded each record twice.
	fullCount, fullSize := maxCount-maxCount/4, maxSize-maxSize/4
	last := a.folded
	results := make([]Result, 0, min(len(recs), a.batchLen+a.batchLen/8+16))
	var recErr error
	// The chain's head after the last record read ahead (readAhead
	// computed it): written once for the batch, not once per record.
	var chainHead []byte
	n := 0
	for ; n < len(recs); n++ {
		rec := recs[n]
		if rec.Offset <= last {
			continue // folded before (a resumed or repeated fetch)
		}
		if len(results) > 0 && (cur.entries() >= fullCount || cur.size >= fullSize) {
			break
		}
		if envs[n].err != nil {
			recErr = envs[n].err // unreadable: commit what comes before it
			break
		}
		head := envs[n].head
		if head != nil {
			chainHead = head // set once, after the batch's last record
		} else {
			if chainHead != nil { // extendChain reads it
				if err := cur.Set(keyChainHead, chainHead); err != nil {
					return 0, nil, nil, err
				}
				chainHead = nil
			}
			if head, err = extendChain(cur, rec); err != nil {
				return 0, nil, nil, err
			}
		}
		unsigned, err := notSigned(cur, a.s.trust != nil, envs[n].signed, rec.Offset)
		if err != nil {
			return 0, nil, nil, err
		}
		res, err := applyEnvelope(cur, rec.Offset, envs[n].env, envs[n].invalid, head, unsigned, a.memo)
		if err != nil {
			return 0, nil, nil, err
		}
		if cur.entries() >= maxCount || cur.size >= maxSize {
			if len(results) == 0 {
				return 0, nil, nil, fmt.Errorf("event at offset %d does not fit in one projection transaction", rec.Offset)
			}
			// Fold again without this record: it starts the next batch.
			// The hot cache holds this overlay's writes: dropped.
			a.hot.reset()
			n, batch, _, err := a.fold(recs[:n], envs[:n])
			return n, batch, nil, err
		}
		stats.count(res.Verdict.Accepted)
		results = append(results, res)
		last = rec.Offset
		if a.s.afterFold != nil {
			a.s.afterFold(rec.Offset)
		}
	}
	if last == a.folded {
		return n, nil, recErr, nil
	}
	if chainHead != nil {
		if err := cur.Set(keyChainHead, chainHead); err != nil {
			return 0, nil, nil, err
		}
	}
	if err := putDoc(cur, keyStats, stats); err != nil {
		return 0, nil, nil, err
	}
	if err := cur.Set(keyApplied, encodeInt(last)); err != nil {
		return 0, nil, nil, err
	}
	a.folded = last
	a.batchLen = len(results)
	if a.filter != nil {
		for k := range cur.set {
			if filtered([]byte(k)) {
				a.filter.add([]byte(k))
			}
		}
	}
	return n, &pending{writes: cur, last: last, results: results, done: make(chan struct{})}, recErr, nil
}

// base is what the next batch is folded on top of.
func (a *applier) base() KV {
	if n := len(a.inflight); n > 0 {
		return a.inflight[n-1].writes
	}
	if a.snap == nil {
		a.snap = a.s.db().NewTransaction(false)
	}
	return a.snapshot()
}

// snapshot reads the snapshot, through the hot cache and the key filter
// if there is one.
func (a *applier) snapshot() KV {
	if a.filter != nil {
		return hotKV{filteredKV{badgerKV{a.snap}, a.filter}, a.hot}
	}
	return hotKV{badgerKV{a.snap}, a.hot}
}

// commit hands b (folded on base()) to its commit, which starts once the
// commits before it are done, after making room for it.
func (a *applier) commit(b *pending) error {
	if err := a.reap(len(a.inflight)+1-maxInflight, b); err != nil {
		return err
	}
	var prev *pending
	if n := len(a.inflight); n > 0 {
		prev = a.inflight[n-1]
	}
	a.inflight = append(a.inflight, b)
	go func() {
		defer close(b.done)
		if prev != nil {
			if <-prev.done; prev.err != nil {
				b.err = fmt.Errorf("not committed after the batch before it failed: %w", prev.err)
				return
			}
		}
		if b.err = a.s.commit(b); b.err == nil {
			b.after = a.s.db().NewTransaction(false)
		}
	}()
	return nil
}

// reap takes the committed batches off the front of the batches in flight,
// waiting for at least the first atLeast of them, and puts the oldest that
// remains (or else next, the batch about to be handed on, if any) on a
// snapshot holding the ones taken.
func (a *applier) reap(atLeast int, next *pending) error {
	var done *pending
	for len(a.inflight) > 0 {
		b := a.inflight[0]
		if atLeast > 0 {
			<-b.done
		} else if !isDone(b) {
			break
		}
		atLeast--
		a.inflight = a.inflight[1:]
		if b.err != nil {
			a.drop(done)
			a.drop(b)
			return a.fail(b.err)
		}
		if a.keep {
			a.results = append(a.results, b.results...)
		}
		a.drop(done)
		done = b
	}
	if done == nil {
		return nil
	}
	if a.snap != nil {
		a.snap.Discard()
	}
	a.snap, done.after = done.after, nil
	switch {
	case len(a.inflight) > 0:
		a.inflight[0].writes.base = a.snapshot()
	case next != nil:
		next.writes.base = a.snapshot()
	}
	return nil
}

func isDone(b *pending) bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// drop discards b's snapshot, if b is a batch that has one.
func (a *applier) drop(b *pending) {
	if b != nil && b.after != nil {
		b.after.Discard()
		b.after = nil
	}
}

// fail waits for every commit still in flight (none runs after a failed
// one), drops the snapshot and the hot cache (what is committed is not
// known), and returns err.
func (a *applier) fail(err error) error {
	for _, b := range a.inflight {
		<-b.done
		a.drop(b)
	}
	a.inflight = nil
	if a.snap != nil {
		a.snap.Discard()
		a.snap = nil
	}
	a.hot.reset()
	return err
}

// wait waits for the commits in flight and returns the first error.
func (a *applier) wait() error {
	err := a.reap(len(a.inflight), nil)
	if a.snap != nil {
		a.snap.Discard()
		a.snap = nil
	}
	return err
}

// close waits for the last commit and returns its error.
func (a *applier) close() error { return a.wait() }

// commit writes a folded batch in one transaction and publishes it.
func (s *Store) commit(b *pending) error {
	if s.beforeCommit != nil {
		if err := s.beforeCommit(b.last); err != nil {
			return commitErr(b, err)
		}
	}
	txn := s.db().NewTransaction(true)
	defer txn.Discard()
	// The keys, copied into one buffer (Badger keeps them until the
	// commit): a slice for each of a batch's tens of thousands of keys was
	// a tenth of the commit.
	n := b.writes.keyBytes()
	for k := range b.writes.del {
		n += len(k)
	}
	keys := make([]byte, 0, n)
	keyOf := func(k string) []byte {
		keys = append(keys, k...)
		return keys[len(keys)-len(k) : len(keys) : len(keys)]
	}
	var err error
	b.writes.each(func(k string, v []byte) {
		if err == nil {
			err = txn.Set(keyOf(k), v)
		}
	})
	if err != nil {
		return commitErr(b, err)
	}
	for k := range b.writes.del {
		if err := txn.Delete(keyOf(k)); err != nil {
			return commitErr(b, err)
		}
	}
	if c := b.writes.chunks; c != nil {
		for _, c := range c.all {
			if err := txn.Set(c.key, c.encode()); err != nil {
				return commitErr(b, err)
			}
		}
	}
	if err := txn.Commit(); err != nil {
		return commitErr(b, err)
	}
	s.committed(b.last, b.results)
	return nil
}

func commitErr(b *pending, err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		err = fmt.Errorf("the batch ending at offset %d does not fit in one projection transaction: %w", b.last, err)
	}
	return fmt.Errorf("commit projection up to offset %d: %w", b.last, err)
}

// ApplyBatch folds records in offset order, skipping those already folded,
// in as few transactions as fit (usually one per fetch), and returns once
// they are committed. On a record the fold cannot read, the records before
// it are committed and the *RecordError returned.
func (s *Store) ApplyBatch(recs []events.Record) ([]Result, error) {
	a := s.newApplier(true)
	err := a.apply(recs, decodeAll(recs, s.trust))
	if cerr := a.close(); err == nil {
		err = cerr
	}
	return a.results, err
}

// fetched is a batch read and decoded ahead of the fold.
type fetched struct {
	recs    []events.Record
	decoded []decoded
	err     error
}

// chainState is where the hash chain stands: the head after offset.
type chainState struct {
	offset int64
	head   []byte
}

// readAhead fetches, decodes and validates the next batch while the
// current one is folded, and extends the hash chain over it, which
// depends on the records alone, from where the store's chain stands (from
// its ChainHead, read before anything is folded). stop ends it and waits
// for it: call it before closing r. After an error, nothing more comes.
func readAhead(ctx context.Context, r RecordReader, from chainState, trust *signing.Trust) (next <-chan fetched, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan fetched, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			recs, err := r.Fetch(ctx)
			f := fetched{recs: recs, err: err}
			if err == nil {
				f.decoded = decodeAll(recs, trust)
				from = chainAhead(from, recs, f.decoded)
			}
			select {
			case ch <- f:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() { cancel(); <-done }
}

// chainAhead sets the chain head of each record after c (the fold skips
// the others: they were folded before) and returns where the chain stands.
func chainAhead(c chainState, recs []events.Record, out []decoded) chainState {
	h := chain.NewHasher()
	heads := make([]byte, 0, sha256.Size*len(recs)) // the batch's heads in one buffer
	for i, rec := range recs {
		if rec.Offset <= c.offset {
			continue
		}
		heads = h.AppendNext(heads, c.head, rec.Offset, rec.Value)
		c = chainState{rec.Offset, heads[len(heads)-sha256.Size : len(heads) : len(heads)]}
		out[i].head = c.head
	}
	return c
}

// receive waits for the next batch of readAhead.
func receive(ctx context.Context, next <-chan fetched) (fetched, error) {
	select {
	case f := <-next:
		return f, f.err
	case <-ctx.Done():
		return fetched{}, ctx.Err()
	}
}
