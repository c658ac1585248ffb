// Package badgerdir opens the Badger directories Nebula can rebuild (the
// config projection, the report store): one that cannot be read is set
// aside and an empty one opened in its place, and Badger's own log goes
// to slog.
package badgerdir

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Open opens the Badger store in opts.Dir (what names it in the log). A
// store on disk is verified first: every table is opened here, under
// recover, and every block's checksum checked (VerifyTables); Badger would
// otherwise panic in a goroutine of its own on a truncated table (nothing
// can recover that) and serve a corrupt one without a word. The store is
// then opened with checksums verified on every block read and every value
// read from the value log, so damage found later is an error, never a
// wrong answer (Damaged says which errors those are).
//
// A store that cannot be read (damaged tables, a corrupt manifest after a
// crash or a disk fault) is a cache of a log, so it is renamed to
// dir.unreadable-<time>, kept for inspection, and an empty one is opened in
// its place: its owner finds it empty and rebuilds it. Errors that a new
// store would meet as well (another process holds the directory, no
// permission, no space, a read-only file system, too many open files) are
// returned as they are: moving the store aside cannot help, and moving one
// that another process uses would be a disaster.
func Open(opts badger.Options, what string, logger *slog.Logger) (*badger.DB, error) {
	opts = opts.WithChecksumVerificationMode(options.OnBlockRead).WithVerifyValueChecksum(true)
	onDisk := !opts.InMemory && opts.Dir != ""
	if onDisk {
		start := time.Now()
		if err := VerifyTables(opts); err != nil {
			return setAside(opts, what, logger, err)
		}
		if d := time.Since(start); d > time.Second {
			logger.Info(what+" verified", "took", d.Round(time.Millisecond))
		}
	}
	db, err := badger.Open(opts)
	if err == nil || !onDisk || !unreadable(err) {
		return db, err
	}
	return setAside(opts, what, logger, err)
}

// setAside moves the unreadable store aside and opens an empty one.
func setAside(opts badger.Options, what string, logger *slog.Logger, err error) (*badger.DB, error) {
	if _, statErr := os.Stat(opts.Dir); statErr != nil {
		return nil, err
	}
	aside := opts.Dir + ".unreadable-" + time.Now().UTC().Format("20060102T150405.000Z")
	if rerr := os.Rename(opts.Dir, aside); rerr != nil {
		return nil, fmt.Errorf("%w (and moving it aside failed: %v)", err, rerr)
	}
	logger.Error(what+" cannot be read; moved it aside and starting an empty one, rebuilt from the log",
		"err", err, "moved_to", aside)
	return badger.Open(opts)
}

// VerifyTables opens every table (.sst) of the store in opts.Dir and
// checks the checksum of each of its blocks, read from the file (not from
// Badger's block cache, where a block read before the damage would still
// pass). It returns the first damage found; a panic of Badger's table code
// on a damaged file is returned as an error too. It may run on a store in
// use: a table compacted away meanwhile is skipped.
func VerifyTables(opts badger.Options) error {
	paths, err := filepath.Glob(filepath.Join(opts.Dir, "*.sst"))
	if err != nil {
		return err
	}
	for _, path := range paths {
		if err := verifyTable(path, opts); err != nil {
			return fmt.Errorf("table %s: %w", filepath.Base(path), err)
		}
	}
	return nil
}

func verifyTable(path string, opts badger.Options) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("damaged: %v", p)
		}
	}()
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil // compacted away since it was listed (a store in use)
	}
	if err != nil {
		return err
	}
	t, err := table.OpenTable(mf, table.Options{ReadOnly: true, ChkMode: options.OnTableRead,
		BlockSize: opts.BlockSize, Compression: opts.Compression, BloomFalsePositive: opts.BloomFalsePositive})
	if err != nil {
		return err // OpenTable closed the file
	}
	return t.MmapFile.Close(-1) // not DecrRef: at zero references it deletes the file
}

// Damaged says whether err, returned by a read of a store Open opened,
// means the store's files are damaged (a checksum that does not match).
func Damaged(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, y.ErrChecksumMismatch) || errors.As(err, new(damagedError)) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "checksum mismatch") || strings.Contains(msg, "failed to verify checksum")
}

// unreadable says whether a Badger open error is about the store's files
// rather than about this process or its machine.
func unreadable(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, notTheStore := range []string{
		"cannot acquire directory lock", "another process",
		"permission denied", "operation not permitted",
		"no space left", "read-only file system", "too many open files",
	} {
		if strings.Contains(msg, notTheStore) {
			return false
		}
	}
	return true
}

// Logger passes Badger's warnings and errors to l.
func Logger(l *slog.Logger) badger.Logger { return badgerLogger{l} }

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(string, ...any)        {}
func (b badgerLogger) Debugf(string, ...any)       {}
