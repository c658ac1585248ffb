package badgerdir

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/table"
)

// ScanEvery is how often a Watch lists the store's directory for tables
// that compactions added or removed.
const ScanEvery = time.Second

// Watch finds, at the next read, a table file of an open store that
// something other than Badger changed: Badger never writes a table again
// once it is built, so a table whose size or modification time changed
// since it was seen was damaged (truncated, or written into). Badger
// itself would not say so: a block whose checksum fails reads as a
// missing key, with no error. Check costs one read of the kernel's feed
// of the directory's changes (Linux; elsewhere, and when the feed
// overflows, one fstat per table on an open descriptor), and one fstat per
// table the feed names; a changed table is verified (every block read
// from the file) before it is called damaged, so a touch is not damage.
//
// What the file system does not see (a bit flipped by the disk) is found
// by VerifyTables, which the owner runs periodically.
type Watch struct {
	db   *badger.DB
	opts badger.Options

	mu       sync.RWMutex
	files    map[string]*watched // by path
	lastScan time.Time
	scanning sync.Mutex
	damage   error
	// changes, when the kernel feeds them (Linux), names the files
	// changed since the last Check: only those are looked at.
	changes *changes
}

type watched struct {
	f     *os.File
	size  int64
	mtime time.Time
}

// NewWatch watches the tables of db, opened with opts, as they are now
// (call it right after Open, which verified them).
func NewWatch(db *badger.DB, opts badger.Options) *Watch {
	w := &Watch{db: db, opts: opts, files: map[string]*watched{}, changes: watchChanges(opts.Dir)}
	w.scan()
	return w
}

// Check returns an error when a table of the store was changed by
// something other than Badger and its blocks do not match their checksums
// (Damaged says true of it). Once it has found damage it keeps returning
// it.
func (w *Watch) Check() error {
	var evented map[string]bool
	all := true
	if c := w.changes; c != nil {
		// One reader at a time, so that a reader that finds no change
		// queued is not ahead of another still rechecking what it read.
		c.mu.Lock()
		defer c.mu.Unlock()
		evented, all = c.drain()
	}
	w.mu.RLock()
	if w.damage != nil {
		defer w.mu.RUnlock()
		return w.damage
	}
	var changed []string
	look := func(path string, f *watched) {
		fi, err := f.f.Stat()
		if err != nil || fi.Size() != f.size || !fi.ModTime().Equal(f.mtime) {
			changed = append(changed, path)
		}
	}
	if all {
		for path, f := range w.files {
			look(path, f)
		}
	} else {
		for path := range evented {
			if f := w.files[path]; f != nil {
				look(path, f)
			}
		}
	}
	scanDue := time.Since(w.lastScan) >= ScanEvery
	w.mu.RUnlock()
	for _, path := range changed {
		if err := w.recheck(path); err != nil {
			return err
		}
	}
	if scanDue {
		w.scan()
	}
	return nil
}

// recheck verifies a table whose file changed: damaged, it is the store's
// damage; sound (touched, or compacted away meanwhile), its new size and
// time are what it is watched for.
func (w *Watch) recheck(path string) error {
	err := verifyTable(path, w.opts)
	if err != nil && !w.live(path) {
		err = nil // compacted away: Badger empties a table's file before removing it
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.damage == nil {
			w.damage = fmt.Errorf("table %s changed on disk while the store was open: %w", filepath.Base(path), markChecksum(err))
		}
		return w.damage
	}
	if f := w.files[path]; f != nil {
		if fi, err := f.f.Stat(); err == nil {
			f.size, f.mtime = fi.Size(), fi.ModTime()
		}
	}
	return nil
}

// VerifyAll verifies every table of the store from its file, for the
// damage the file system does not see (bits flipped by the disk): found,
// it is the store's damage (Check returns it from then on).
func (w *Watch) VerifyAll() error {
	for _, t := range w.db.Tables() {
		path := table.NewFilename(t.ID, w.opts.Dir)
		if err := verifyTable(path, w.opts); err != nil && w.live(path) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.damage == nil {
				w.damage = fmt.Errorf("table %s: %w", filepath.Base(path), markChecksum(err))
			}
			return w.damage
		}
	}
	return nil
}

// live says whether the table in path is one of the store's levels.
func (w *Watch) live(path string) bool {
	for _, t := range w.db.Tables() {
		if table.NewFilename(t.ID, w.opts.Dir) == path {
			return true
		}
	}
	return false
}

// scan watches the tables added since the last scan and forgets the ones
// removed. The tables are those of Badger's levels: a table file being
// written by a compaction is not one of them yet. A new table was just
// written by Badger: it is watched as it is.
func (w *Watch) scan() {
	if !w.scanning.TryLock() {
		return // another reader scans
	}
	defer w.scanning.Unlock()
	var paths []string
	for _, t := range w.db.Tables() {
		paths = append(paths, table.NewFilename(t.ID, w.opts.Dir))
	}
	present := make(map[string]bool, len(paths))
	var added []*watched
	var addedPaths []string
	w.mu.RLock()
	for _, p := range paths {
		present[p] = true
		if w.files[p] == nil {
			addedPaths = append(addedPaths, p)
		}
	}
	w.mu.RUnlock()
	for _, p := range addedPaths {
		f, err := os.Open(p)
		if err != nil {
			continue // compacted away since listed
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		added = append(added, &watched{f: f, size: fi.Size(), mtime: fi.ModTime()})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, f := range added {
		w.files[addedPaths[i]] = f
	}
	for p, f := range w.files {
		if !present[p] {
			f.f.Close()
			delete(w.files, p)
		}
	}
	w.lastScan = time.Now()
}

// Forget starts over with the tables the store holds now, with no damage
// (after the store was emptied for a rebuild).
func (w *Watch) Forget() {
	w.closeFiles()
	w.mu.Lock()
	w.damage = nil
	w.mu.Unlock()
	w.scan()
}

// Close closes the descriptors the watch holds.
func (w *Watch) Close() {
	w.closeFiles()
	if c := w.changes; c != nil {
		c.mu.Lock()
		c.close()
		c.mu.Unlock()
	}
}

// closeFiles closes the tables' descriptors.
func (w *Watch) closeFiles() {
	w.scanning.Lock()
	defer w.scanning.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, f := range w.files {
		f.f.Close()
		delete(w.files, p)
	}
}

// damagedError marks damage found by a Watch for Damaged, whatever words
// Badger's table code used (a panic on a truncated table names no
// checksum).
type damagedError struct{ err error }

func (e damagedError) Error() string { return e.err.Error() }
func (e damagedError) Unwrap() error { return e.err }

func markChecksum(err error) error { return damagedError{err} }
