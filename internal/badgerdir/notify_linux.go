package badgerdir

import (
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"
)

// changes is the kernel's feed (inotify) of the files of the store's
// directory written into, truncated or touched: a Check reads it (one
// system call, however many tables) instead of looking at every table
// (one fstat each: at a million events in the log, most of a past read's
// time). The kernel queues an event before the write that caused it
// returns, so the next Check still sees it.
type changes struct {
	mu  sync.Mutex // one reader drains and rechecks at a time
	fd  int
	dir string
	buf [16 << 10]byte
}

// watchChanges starts the feed of dir's changes; nil if the kernel
// refuses (Check then looks at every table).
func watchChanges(dir string) *changes {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_MODIFY|syscall.IN_ATTRIB); err != nil {
		syscall.Close(fd)
		return nil
	}
	return &changes{fd: fd, dir: dir}
}

// drain returns the paths of the files changed since the last drain, and
// all=true when it cannot tell (the kernel's queue overflowed, or the
// feed broke): every file may have changed.
func (c *changes) drain() (paths map[string]bool, all bool) {
	if c.fd < 0 {
		return nil, true // closed: its number may be another file's now
	}
	for {
		n, err := syscall.Read(c.fd, c.buf[:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			return paths, false
		}
		if err != nil || n <= 0 {
			return nil, true
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&c.buf[off]))
			if ev.Mask&syscall.IN_Q_OVERFLOW != 0 {
				all = true
			}
			name := c.buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			if len(name) > 0 {
				if paths == nil {
					paths = map[string]bool{}
				}
				paths[filepath.Join(c.dir, string(name))] = true
			}
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
		if all {
			// Read the rest of the queue, so that the next drain starts
			// afresh; its events are covered by looking at every file.
			for {
				if _, err := syscall.Read(c.fd, c.buf[:]); err != nil {
					return nil, true
				}
			}
		}
	}
}

// close ends the feed (c.mu held, or c not shared).
func (c *changes) close() {
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}
