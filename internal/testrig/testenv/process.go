package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FreeAddr returns a loopback host:port nothing listens on (for a process
// that must be started, or restarted, on a known address).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Usage is what a process has used: CPU time (user + system) and resident
// memory, in all, anonymous (heap, stacks) and file-backed (mapped files:
// page cache the kernel can take back), in MiB.
type Usage struct {
	CPU                 time.Duration
	RSS, Anon, FileBack float64
	// Peak is the highest RSS the process has had (VmHWM), MiB.
	Peak float64
}

// ProcessUsage reads /proc for pid.
func ProcessUsage(tb testing.TB, pid int) Usage {
	tb.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after the command name, which may hold spaces.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	const ticks = 100 // USER_HZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	mib := func(key string) float64 {
		var kb float64
		if m := regexp.MustCompile(key + `:\s+(\d+) kB`).FindSubmatch(status); m != nil {
			fmt.Sscan(string(m[1]), &kb)
		}
		return kb / 1024
	}
	return Usage{CPU: time.Duration(utime+stime) * time.Second / ticks, RSS: mib("VmRSS"), Anon: mib("RssAnon"),
		FileBack: mib("RssFile") + mib("RssShmem"), Peak: mib("VmHWM")}
}

// SamplePeak reads pid's resident memory every 100 ms until the returned
// function is called, which returns the highest anonymous memory seen
// (RssAnon: the heap, what the process needs) and the highest RSS of the
// process's life (VmHWM: with file-backed pages, the mapped files the
// kernel reclaims under pressure), MiB.
func SamplePeak(tb testing.TB, pid int) (stop func() (peakAnon, peakRSS float64)) {
	tb.Helper()
	done := make(chan struct{})
	result := make(chan float64, 1)
	go func() {
		peak := 0.0
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				if m := regexp.MustCompile(`RssAnon:\s+(\d+) kB`).FindSubmatch(b); m != nil {
					var kb float64
					fmt.Sscan(string(m[1]), &kb)
					peak = max(peak, kb/1024)
				}
			}
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() (float64, float64) {
		close(done)
		anon := <-result
		return anon, ProcessUsage(tb, pid).Peak
	}
}
