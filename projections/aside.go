package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nebula-orchestrator/nebula-go/internal/badgerdir"
)

// A rebuild made aside. When a serving manager must rebuild its projection
// from offset 0 (the log was wiped or restored under it, or it trusts other
// record keys), it does not empty the store it serves: a second store is
// built next to it (base+".next", or base when the store already lives in
// .next) by a projector of its own, while the first keeps answering reads
// (and every poll) with the last consistent state; commands are refused
// meanwhile (the offsets of a new log mean nothing to the old state). Once
// the second has caught up, it is marked complete (its generation file)
// and swapped in; the first is closed when its last reader is done, and
// deleted. At open, the complete store of the highest generation wins and
// lives at base again (resolveGenerations).

// dbRef is a database and how many readers use it.
type dbRef struct {
	db     *badger.DB
	active atomic.Int64
	// watch finds tables changed on disk while the database is open (nil
	// in memory).
	watch *badgerdir.Watch
}

// generationFile holds a store's generation: written once a store built
// aside is complete, so that a crash before then leaves it incomplete.
const generationFile = "NEBULA_GENERATION"

// db is the database, for the projector's own goroutine (nothing swaps it
// under that goroutine: the swap runs there).
func (s *Store) db() *badger.DB { return s.cur.Load().db }

// use runs fn with the database, which is not closed while fn runs.
func (s *Store) use(fn func(db *badger.DB) error) error {
	r := s.acquire()
	defer r.active.Add(-1)
	return fn(r.db)
}

// acquire returns the database in use, counted as read until the caller
// does r.active.Add(-1).
func (s *Store) acquire() *dbRef {
	for {
		r := s.cur.Load()
		r.active.Add(1)
		if s.cur.Load() == r {
			return r
		}
		r.active.Add(-1) // swapped meanwhile: use the new one
	}
}

// view is db.View through use, for the store's own reads (its metadata:
// a damaged store must still say what it was built from, to be rebuilt).
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	return s.use(func(db *badger.DB) error { return db.View(fn) })
}

// checkedView is view for the reads whose answers are served. A read
// that finds a table of the store changed on disk and damaged (Badger
// answers a damaged block as a missing key, with no error) returns
// ErrDamaged instead of what it read, and the store is marked damaged:
// the projector stops serving and rebuilds it.
func (s *Store) checkedView(fn func(txn *badger.Txn) error) error {
	r := s.acquire()
	defer r.active.Add(-1)
	err := r.db.View(fn)
	if r.watch != nil {
		if derr := r.watch.Check(); derr != nil {
			derr = fmt.Errorf("%w: %w", ErrDamaged, derr)
			s.markDamaged(derr)
			return derr
		}
	}
	return err
}

// canRebuildAside says whether the store lives on disk (a store in memory
// is rebuilt in place).
func (s *Store) canRebuildAside() bool { return s.base != "" }

// asideDir is where a store built aside goes.
func (s *Store) asideDir() string {
	if s.dir == s.base {
		return s.base + ".next"
	}
	return s.base
}

// openAside opens an empty store in asideDir, trusting what s trusts.
func (s *Store) openAside() (*Store, error) {
	dir := s.asideDir()
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	side, err := openAt(s.base, dir, s.gen+1, s.logger, s.tweak)
	if err != nil {
		return nil, err
	}
	side.trust = s.trust
	return side, nil
}

// discard closes and deletes a store built aside that will not be used.
func (side *Store) discard() {
	_ = side.Close()
	_ = os.RemoveAll(side.dir)
}

// swapIn makes side, complete, this store's database: marked complete
// first (a crash after this keeps it), then swapped in; the old database
// is closed when its last reader is done, and deleted.
func (s *Store) swapIn(side *Store) error {
	if err := writeGeneration(side.dir, side.gen); err != nil {
		side.discard()
		return err
	}
	oldDir := s.dir
	old := s.cur.Swap(side.cur.Load())
	s.mu.Lock()
	s.dir, s.gen, s.opts = side.dir, side.gen, side.opts
	s.setApplied(side.Applied())
	s.filter = side.filter
	s.clearDamage()
	close(s.changed) // waiters see the new applied offset
	s.changed = make(chan struct{})
	s.mu.Unlock()
	for old.active.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	err := old.db.Close()
	if old.watch != nil {
		old.watch.Close()
	}
	if rerr := os.RemoveAll(oldDir); err == nil {
		err = rerr
	}
	if s.onReset != nil {
		s.onReset()
	}
	if err != nil {
		s.logger.Warn("the replaced projection store could not be closed or deleted", "dir", oldDir, "err", err)
	}
	return nil
}

func writeGeneration(dir string, gen int) error {
	path := filepath.Join(dir, generationFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.Itoa(gen) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// generation reads a store directory's generation: found=false when the
// directory does not exist; a directory without the file is generation 0
// (and, for base+".next", incomplete).
func generation(dir string) (gen int, hasFile, found bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return 0, false, false, nil
	} else if err != nil {
		return 0, false, false, err
	}
	b, err := os.ReadFile(filepath.Join(dir, generationFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, true, nil
	}
	if err != nil {
		return 0, false, true, err
	}
	gen, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false, true, fmt.Errorf("%s: %w", filepath.Join(dir, generationFile), err)
	}
	return gen, true, true, nil
}

// resolveGenerations leaves the complete store of the highest generation
// at base: a store built aside and swapped in (at base+".next") is moved
// to base, and an incomplete one (a crash during a rebuild aside) is
// deleted. It returns base's generation.
func resolveGenerations(base string, logger *slog.Logger) (int, error) {
	next := base + ".next"
	gb, _, baseFound, err := generation(base)
	if err != nil {
		return 0, err
	}
	gn, nextComplete, nextFound, err := generation(next)
	if err != nil {
		return 0, err
	}
	switch {
	case !nextFound:
	case !nextComplete || baseFound && gn <= gb:
		logger.Info("deleting a projection store left by a rebuild aside", "dir", next)
		return gb, os.RemoveAll(next)
	default:
		if err := os.RemoveAll(base); err != nil {
			return 0, err
		}
		if err := os.Rename(next, base); err != nil {
			return 0, err
		}
		return gn, nil
	}
	return gb, nil
}

// RebuildingAside says whether the projector is building a store aside:
// reads are served from the last consistent state, commands must wait.
func (p *Projector) RebuildingAside() bool { return p.aside.Load() }

// rebuildAside builds the projection from offset 0 in a store aside, with
// a projector of its own, while this store keeps serving; then swaps it in.
func (p *Projector) rebuildAside(ctx context.Context, reason string) error {
	p.logger.Warn("rebuilding the projection from offset 0 in a store aside; serving the last consistent state meanwhile, commands wait",
		"reason", reason)
	p.aside.Store(true)
	defer p.aside.Store(false)
	side, err := p.store.openAside()
	if err != nil {
		return err
	}
	sub := NewProjector(side, p.log, p.open, p.logger.With("rebuild", "aside"))
	sub.Hold, sub.Backoff = p.Hold, p.Backoff
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sub.Run(subCtx) }()
	select {
	case <-sub.Ready():
		cancel()
		<-done
		if err := p.store.swapIn(side); err != nil {
			return err
		}
		p.logger.Info("the projection rebuilt aside is swapped in", "applied_offset", p.store.Applied())
		return nil
	case err := <-done:
		side.discard()
		if err == nil {
			err = ctx.Err()
		}
		return err
	case <-ctx.Done():
		cancel()
		<-done
		side.discard()
		return ctx.Err()
	}
}
