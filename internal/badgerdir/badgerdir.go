// Package badgerdir opens the Badger directories Nebula can rebuild (the
// config projection, the report store): one that cannot be read is set
// aside and an empty one opened in its place, and Badger's own log goes
// to slog.
package badgerdir

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Open opens the Badger store in opts.Dir (what names it in the log). A store that cannot be
// read (a corrupt manifest or table after a crash or a disk fault) is a
// cache of the event log, so it is renamed to dir.unreadable-<time>, kept
// for inspection, and an empty one is opened in its place: the projector
// finds no log identity in it and rebuilds from offset 0. Errors that a
// new store would meet as well (another process holds the directory, no
// permission, no space, a read-only file system, too many open files)
// are returned as they are: moving the store aside cannot help, and
// moving one that another manager uses would be a disaster.
func Open(opts badger.Options, what string, logger *slog.Logger) (*badger.DB, error) {
	db, err := badger.Open(opts)
	if err == nil || opts.InMemory || opts.Dir == "" || !unreadable(err) {
		return db, err
	}
	if _, statErr := os.Stat(opts.Dir); statErr != nil {
		return nil, err
	}
	aside := opts.Dir + ".unreadable-" + time.Now().UTC().Format("20060102T150405Z")
	if rerr := os.Rename(opts.Dir, aside); rerr != nil {
		return nil, fmt.Errorf("%w (and moving it aside failed: %v)", err, rerr)
	}
	logger.Error(what+" cannot be read; moved it aside and starting an empty one, rebuilt from the log",
		"err", err, "moved_to", aside)
	return badger.Open(opts)
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
