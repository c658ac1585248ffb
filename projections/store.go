package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
	"github.com/nebula-orchestrator/nebula-go/internal/badgerdir"
)

// Store is the Badger projection: the folded state and the offset of the
// last record folded, always written in the same transaction, so that a
// crash at any point resumes exactly after the last committed record.
// It is safe for concurrent use; one process owns a directory.
type Store struct {
	// cur is the database: replaced when a rebuild made aside (aside.go)
	// is swapped in. Readers go through use; the projector's own
	// goroutine (the applier) through db().
	cur    atomic.Pointer[dbRef]
	logger *slog.Logger
	// base is the directory Open was given ("" in memory); dir is where
	// the database is now (base, or base+".next" after a rebuild aside),
	// gen its generation; tweak the options' tweak, for the store aside.
	base, dir string
	gen       int
	tweak     func(*badger.Options)
	opts      badger.Options // as the database in dir was opened

	mu sync.Mutex
	// applied is the offset of the last folded record, -1 if none: set
	// with s.mu held (with changed, for WaitFor), read without it (every
	// poll reads it).
	applied atomic.Int64
	changed chan struct{} // closed and replaced at every commit
	failed  error         // set when the projection stopped for good
	// trust, when set, is the keys whose signatures the fold requires
	// (events/signing); set before the projector runs.
	trust *signing.Trust
	// damaged is set when Verify found damage (until Reset empties the
	// store); damagedCh is closed then. Both change with s.mu held;
	// damaged is read without it too (every request asks whether the
	// projection is serving).
	damaged   atomic.Pointer[error]
	damagedCh chan struct{}

	// filter knows every name key of a store this process built from
	// empty (nil otherwise). Set by Reset, used by the applier only.
	filter *keyFilter

	folded   atomic.Int64 // records folded by this process
	onCommit func([]Result)
	onReset  func()
	// afterFold, when set (tests), runs after each record is folded into
	// the open transaction, before the commit.
	afterFold func(offset int64)
	// beforeCommit, when set (tests), runs as the commit of the batch
	// ending at offset last starts; an error fails the commit.
	beforeCommit func(last int64) error
}

// Open opens (or creates) the store in dir; dir "" keeps it in memory.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	return open(dir, logger, nil)
}

func open(dir string, logger *slog.Logger, tweak func(*badger.Options)) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gen := 0
	if dir != "" {
		var err error
		if gen, err = resolveGenerations(dir, logger); err != nil {
			return nil, fmt.Errorf("open projection store %s: %w", dir, err)
		}
	}
	return openAt(dir, dir, gen, logger, tweak)
}

// openAt opens the database in path as the store of base.
func openAt(base, path string, gen int, logger *slog.Logger, tweak func(*badger.Options)) (*Store, error) {
	dir := path
	opts := badger.DefaultOptions(dir).
		WithLogger(badgerdir.Logger(logger)).
		WithNumVersionsToKeep(1).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		// Sized for a manager's peak memory under a burst of writes
		// (issue 21; docs/projections.md, "Memory"): a memtable flush
		// builds its table in a buffer twice the memtable's size, so
		// 16 MiB memtables, two of them (one filling, one flushing). No
		// compression: its block buffers were the largest share of the
		// peak, and without it Badger reads tables through their mapping,
		// so no block cache. A transaction's share of a memtable bounds a
		// fold batch: ApplyBatch splits a fetch to fit.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		// No write transaction here reads (the applier's commits and
		// Reset only write), so Badger's conflict detection could never
		// find a conflict: it only hashed every key of every commit into
		// a map, on the commit's goroutine.
		WithDetectConflicts(false)
	// Tables of 2 MiB at every level: a compaction builds several at once,
	// each in a buffer twice its size (no setter for it).
	opts.TableSizeMultiplier = 1
	if dir == "" {
		opts = opts.WithInMemory(true)
	} else {
		// Values over 64 bytes (documents, their versions, record
		// blocks) go to the value log, written once; the LSM tree
		// holds pointers. The versions are never deleted, so a tree
		// holding them rewrote them at every compaction: a replay of
		// 1,000,000 events of a fleet's mix folded 15,000 a second,
		// 34,000 with the values apart (BenchmarkReplay). The app and
		// group documents, rewritten, leave garbage that RunGC
		// reclaims. (In memory, Badger refuses values over the
		// threshold.)
		opts = opts.WithValueThreshold(64)
	}
	if tweak != nil {
		tweak(&opts)
	}
	db, err := badgerdir.Open(opts, "the projection store", logger)
	if err != nil {
		return nil, fmt.Errorf("open projection store %s: %w", dir, err)
	}
	s := &Store{logger: logger, changed: make(chan struct{}), damagedCh: make(chan struct{}), base: base, dir: dir, gen: gen, tweak: tweak, opts: opts}
	ref := &dbRef{db: db}
	if !opts.InMemory {
		ref.watch = badgerdir.NewWatch(db, opts)
	}
	s.cur.Store(ref)
	err = db.View(func(txn *badger.Txn) error {
		b, found, err := badgerKV{txn}.Get(keyApplied)
		s.setApplied(-1)
		if found {
			s.setApplied(decodeInt(b))
		}
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database. Waiters are released with an error.
func (s *Store) Close() error {
	s.Fail(errors.New("projection store closed"))
	r := s.cur.Load()
	if r.watch != nil {
		r.watch.Close()
	}
	return r.db.Close()
}

// OnCommit registers fn, called after each commit with the results of the
// records it folded (in offset order). Register before the projector runs.
func (s *Store) OnCommit(fn func([]Result)) { s.onCommit = fn }

// SetTrust makes the fold require records signed by one of trust's keys
// (once the log holds one). Set it before the projector runs: a store
// built with another set of keys is rebuilt.
func (s *Store) SetTrust(trust *signing.Trust) { s.trust = trust }

// OnReset registers fn, called after the store was emptied for a rebuild.
func (s *Store) OnReset(fn func()) { s.onReset = fn }

// Applied is the offset of the last folded record, -1 if none.
func (s *Store) Applied() int64 { return s.applied.Load() }

// setApplied sets applied (s.mu held, or the store not yet shared).
func (s *Store) setApplied(off int64) { s.applied.Store(off) }

// Folded counts the records this process folded (not those it found
// already folded in the store).
func (s *Store) Folded() int64 { return s.folded.Load() }

// WaitFor blocks until the record at offset is folded (read-your-writes:
// a command appends, then waits for its own offset), the context ends, or
// the projection stops.
func (s *Store) WaitFor(ctx context.Context, offset int64) error {
	for {
		s.mu.Lock()
		applied, ch, failed := s.applied.Load(), s.changed, s.failed
		s.mu.Unlock()
		if applied >= offset {
			return nil
		}
		if failed != nil {
			return fmt.Errorf("waiting for offset %d: %w", offset, failed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for offset %d (applied %d): %w", offset, applied, ctx.Err())
		}
	}
}

// Fail marks the projection as stopped: waiters get err.
func (s *Store) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// Meta is what the store knows about how it was built.
type Meta struct {
	Identity    *events.LogIdentity
	FoldVersion int64
	Applied     int64
	Stats       Stats
	// Trust is the fingerprint of the keys the fold trusted ("": none).
	Trust string
}

// Meta reads the store's metadata.
func (s *Store) Meta() (Meta, error) {
	m := Meta{Applied: -1}
	err := s.view(func(txn *badger.Txn) error {
		kv := badgerKV{txn}
		id, found, err := getDoc[events.LogIdentity](kv, keyIdentity)
		if err != nil {
			return err
		}
		if found {
			m.Identity = &id
		}
		if b, found, err := kv.Get(keyFoldVersion); err != nil {
			return err
		} else if found {
			m.FoldVersion = decodeInt(b)
		}
		if b, found, err := kv.Get(keyApplied); err != nil {
			return err
		} else if found {
			m.Applied = decodeInt(b)
		}
		if b, found, err := kv.Get(keyTrust); err != nil {
			return err
		} else if found {
			m.Trust = string(b)
		}
		m.Stats, _, err = getDoc[Stats](kv, keyStats)
		return err
	})
	return m, err
}

// Reset empties the store and records that it will be built from the log
// with identity id by this fold version, starting at offset 0.
func (s *Store) Reset(id events.LogIdentity) error {
	s.filter = nil
	if err := s.db().DropAll(); err != nil {
		return fmt.Errorf("reset projection: %w", err)
	}
	if w := s.cur.Load().watch; w != nil {
		w.Forget() // the damaged tables are gone
	}
	err := s.db().Update(func(txn *badger.Txn) error {
		kv := badgerKV{txn}
		if err := putDoc(kv, keyIdentity, id); err != nil {
			return err
		}
		if fp := s.trust.Fingerprint(); fp != "" {
			if err := kv.Set(keyTrust, []byte(fp)); err != nil {
				return err
			}
		}
		return kv.Set(keyFoldVersion, encodeInt(FoldVersion))
	})
	if err != nil {
		return fmt.Errorf("reset projection: %w", err)
	}
	s.filter = newKeyFilter() // the store is empty: every key it gets, the filter gets
	s.mu.Lock()
	s.setApplied(-1)
	s.clearDamage()
	s.mu.Unlock()
	if s.onReset != nil {
		s.onReset()
	}
	return nil
}

// decoded is a record's envelope or why it cannot be read.
type decoded struct {
	env     events.Envelope
	err     error
	invalid error  // env.Validate(): a rejection, not an error
	head    []byte // the hash chain after the record, when read ahead computed it
	signed  bool   // a trusted key signed it (when the fold checks signatures)
}

// decodeAll decodes and validates records on every core, and checks their
// signatures against trust (nil: not checked): all of it is pure, and the
// fold, which must stay sequential, is the bottleneck of a replay (an
// ed25519 check costs more than folding an app event).
func decodeAll(recs []events.Record, trust *signing.Trust) []decoded {
	out := make([]decoded, len(recs))
	workers := min(runtime.GOMAXPROCS(0), len(recs)/64+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(recs); i += workers {
				env, err := events.Decode(recs[i].Value)
				if err != nil {
					out[i] = decoded{err: &RecordError{Offset: recs[i].Offset, Err: err}}
					continue
				}
				out[i] = decoded{env: env, invalid: env.Validate(), signed: trust != nil && trust.Verify(recs[i].Value, recs[i].Signature)}
			}
		})
	}
	wg.Wait()
	return out
}

// committed publishes a commit: the hook first (caches drop what changed),
// then the waiters, so that whoever WaitFor releases sees no stale cache.
func (s *Store) committed(last int64, results []Result) {
	s.folded.Add(int64(len(results)))
	if s.onCommit != nil {
		s.onCommit(results)
	}
	s.mu.Lock()
	s.setApplied(last)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// RunGC reclaims value-log space every interval until ctx ends.
func (s *Store) RunGC(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		_ = s.use(func(db *badger.DB) error {
			badgerdir.ReclaimValueLog(ctx, db)
			return nil
		})
	})
}

// every runs fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// View runs fn with a consistent read-only view of the projection.
func (s *Store) View(fn func(r Reader) error) error {
	return s.checkedView(func(txn *badger.Txn) error { return fn(Reader{badgerKV{txn}}) })
}

// Reader reads the projection inside View.
type Reader struct{ kv KV }

// NewReader reads a projection held in kv (a fold to a past offset into a
// MemKV, for time travel).
func NewReader(kv KV) Reader { return Reader{kv} }

// App returns an app.
func (r Reader) App(name string) (App, bool, error) { return getDoc[App](r.kv, key(prefixApp, name)) }

// DeviceGroup returns a device group.
func (r Reader) DeviceGroup(name string) (DeviceGroup, bool, error) {
	return getDoc[DeviceGroup](r.kv, key(prefixGroup, name))
}

// CronJob returns a cron job.
func (r Reader) CronJob(name string) (CronJob, bool, error) {
	return getDoc[CronJob](r.kv, key(prefixCron, name))
}

// User returns a user.
func (r Reader) User(name string) (User, bool, error) {
	return getDoc[User](r.kv, key(prefixUser, name))
}

// UserByToken returns the user whose token has the given SHA-256 (hex).
func (r Reader) UserByToken(sha string) (User, bool, error) {
	name, found, err := r.kv.Get(key(prefixToken, sha))
	if err != nil || !found {
		return User{}, false, err
	}
	return r.User(string(name))
}

// UserGroup returns a user group.
func (r Reader) UserGroup(name string) (UserGroup, bool, error) {
	return getDoc[UserGroup](r.kv, key(prefixUserGroup, name))
}

// UserGroupsOf returns the user groups the user is a member of, sorted.
func (r Reader) UserGroupsOf(user string) ([]UserGroup, error) {
	names, err := indexed(r.kv, nil, prefixIdxGroupUser, user)
	if err != nil {
		return nil, err
	}
	var out []UserGroup
	for _, n := range names {
		ug, found, err := r.UserGroup(n)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, ug)
		}
	}
	return out, nil
}

// Verdict returns the fold's verdict on the record at offset.
func (r Reader) Verdict(offset int64) (Verdict, bool, error) {
	e, found, err := getRecord(r.kv, offset)
	if err != nil || !found {
		return Verdict{}, false, err
	}
	b := e.verdict
	var v Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		return Verdict{}, false, fmt.Errorf("verdict of offset %d is corrupt: %w", offset, err)
	}
	return v, true, nil
}

// CommandOffset returns the offset of the first record that carried the
// command ID.
func (r Reader) CommandOffset(id string) (int64, bool, error) {
	b, found, err := r.kv.Get(key(prefixCommand, id))
	if err != nil || !found {
		return 0, false, err
	}
	return decodeInt(b), true, nil
}

// Names lists the names of one kind of aggregate, sorted.
func (r Reader) Names(kind events.Kind) ([]string, error) {
	prefix, ok := docPrefix[kind]
	if !ok {
		return nil, fmt.Errorf("no names for aggregate kind %q", kind)
	}
	names := []string{}
	err := r.kv.Keys(prefix, func(k []byte) error {
		names = append(names, string(k[len(prefix):]))
		return nil
	})
	return names, err
}

// badgerKV is the KV of one Badger transaction.
type badgerKV struct{ txn *badger.Txn }

func (b badgerKV) Get(k []byte) ([]byte, bool, error) {
	item, err := b.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

func (b badgerKV) Set(k, v []byte) error { return b.txn.Set(k, v) }
func (b badgerKV) Delete(k []byte) error { return b.txn.Delete(k) }

func (b badgerKV) Keys(prefix []byte, fn func([]byte) error) error {
	it := b.txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: prefix})
	defer it.Close()
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	// fn runs after the iterator is done with the keys, so it may read.
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Err is why the projection stopped for good (nil while it runs).
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// ChainHead returns the offset of the last folded record and the log's
// hash chain after it (for checkpoints).
func (s *Store) ChainHead() (int64, []byte, error) {
	var off int64 = -1
	var head []byte
	err := s.view(func(txn *badger.Txn) error {
		kv := badgerKV{txn}
		b, found, err := kv.Get(keyApplied)
		if err != nil || !found {
			return err
		}
		off = decodeInt(b)
		head, _, err = kv.Get(keyChainHead)
		return err
	})
	return off, head, err
}
