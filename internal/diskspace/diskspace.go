// Package diskspace watches the free space of a data directory, so that a
// manager stops writing before its disk is full instead of failing in the
// middle of a write (Badger maps its files into memory: a write to a full
// disk there is a crash, not an error).
package diskspace

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Guard reports whether Dir's file system has at least Min bytes free.
type Guard struct {
	Dir string
	Min uint64

	mu      sync.Mutex
	checked time.Time
	last    error
}

// Free returns the bytes available to this process on dir's file system.
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Check returns an error saying how much is free when it is below Min (or
// when it cannot be measured). It measures at most once a second.
func (g *Guard) Check() error {
	if g == nil || g.Min == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.checked) < time.Second {
		return g.last
	}
	g.checked = time.Now()
	free, err := Free(g.Dir)
	switch {
	case err != nil:
		g.last = fmt.Errorf("cannot measure the free space of %s: %w", g.Dir, err)
	case free < g.Min:
		g.last = fmt.Errorf("the data directory %s has %s free, below the minimum of %s: writes are refused until space is freed", g.Dir, Bytes(free), Bytes(g.Min))
	default:
		g.last = nil
	}
	return g.last
}

// Bytes formats n in binary units.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// ParseBytes reads "512MiB", "1GB", "300M", "4096" (bytes).
func ParseBytes(s string) (uint64, error) {
	var n float64
	var unit string
	if _, err := fmt.Sscanf(s, "%g%s", &n, &unit); err != nil {
		if _, err2 := fmt.Sscanf(s, "%g", &n); err2 != nil {
			return 0, fmt.Errorf("%q is not a size like 512MiB", s)
		}
		unit = ""
	}
	mult := map[string]float64{"": 1, "B": 1, "K": 1 << 10, "KB": 1e3, "KiB": 1 << 10, "M": 1 << 20, "MB": 1e6, "MiB": 1 << 20,
		"G": 1 << 30, "GB": 1e9, "GiB": 1 << 30, "T": 1 << 40, "TB": 1e12, "TiB": 1 << 40}
	m, ok := mult[unit]
	if !ok || n < 0 || n*m > 1<<62 {
		return 0, fmt.Errorf("%q is not a size like 512MiB", s)
	}
	return uint64(n * m), nil
}
