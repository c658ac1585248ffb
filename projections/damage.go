package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nebula-orchestrator/nebula-go/internal/badgerdir"
)

// ErrDamaged: the store's files do not match their checksums. The store
// is a cache of the log: the projector rebuilds it from offset 0.
var ErrDamaged = errors.New("the projection's files are damaged")

// Damage found at open sets the whole store aside (internal/badgerdir).
// Damage that happens while the manager runs is found by Verify, which the
// manager runs every VerifyEvery: Badger reports no error for a block whose
// checksum fails on a read (it answers as if the key were not there), so
// a periodic check of every block is what finds it.

// DefaultVerifyEvery is how often RunVerify checks the store.
const DefaultVerifyEvery = 10 * time.Minute

// Verify checks the checksum of every block of the store's table files,
// read from the files (Badger's own VerifyChecksum reads through its block
// cache, where a block read before the damage still passes). Damage found
// marks the store damaged: the projector stops folding, stops serving and
// rebuilds it from the log.
func (s *Store) Verify() error {
	if err := s.use(func(db *badger.DB) error {
		if s.opts.InMemory {
			return verifyChecksum(db)
		}
		return badgerdir.VerifyTables(s.currentOpts())
	}); err != nil {
		err = fmt.Errorf("%w: %w", ErrDamaged, err)
		s.markDamaged(err)
		return err
	}
	return nil
}

// verifyChecksum is db.VerifyChecksum, with Badger's panics on some
// damage (a nil block, a slice out of range) turned into errors.
func verifyChecksum(db *badger.DB) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("a table could not be read: %v", p)
		}
	}()
	return db.VerifyChecksum()
}

// currentOpts are the options of the database in use (its directory
// changes when a store rebuilt aside is swapped in).
func (s *Store) currentOpts() badger.Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

// RunVerify runs Verify every interval until ctx ends.
func (s *Store) RunVerify(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() { _ = s.Verify() }) // damage is logged by markDamaged
}

func (s *Store) markDamaged(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.damaged.Load() != nil {
		return
	}
	s.damaged.Store(&err)
	close(s.damagedCh)
	s.logger.Error("the projection store is damaged; rebuilding it from the event log", "err", err)
}

// damage is the damage found since the store was last emptied (nil:
// none), and a channel closed when damage is found.
func (s *Store) damage() (error, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.damaged.Load(); err != nil {
		return *err, s.damagedCh
	}
	return nil, s.damagedCh
}

// isDamaged says whether damage was found since the store was last
// emptied, without the lock.
func (s *Store) isDamaged() bool { return s.damaged.Load() != nil }

// clearDamage forgets the damage found, if any, as the store is emptied or
// replaced (s.mu held).
func (s *Store) clearDamage() {
	if s.damaged.Load() != nil {
		s.damaged.Store(nil)
		s.damagedCh = make(chan struct{})
	}
}
