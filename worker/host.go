package worker

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// DetectHost reads the CPUs and memory this process may use: the cgroup
// limits when there are (v2, then v1), else the machine's (2.7 ignored
// cgroup limits, so a worker limited to 1 CPU on a 64-core host ran 64
// containers for {"cpu": 1}).
func DetectHost() Host {
	h := Host{CPUs: float64(runtime.NumCPU()), MemoryMB: memTotalMB()}
	if cpus, ok := cgroupCPUs(); ok && cpus < h.CPUs {
		h.CPUs = cpus
	}
	if mb, ok := cgroupMemoryMB(); ok && (h.MemoryMB == 0 || mb < h.MemoryMB) {
		h.MemoryMB = mb
	}
	return h
}

func readTrim(path string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

func cgroupCPUs() (float64, bool) {
	if s, ok := readTrim("/sys/fs/cgroup/cpu.max"); ok { // v2: "max 100000" or "200000 100000"
		f := strings.Fields(s)
		if len(f) == 2 && f[0] != "max" {
			q, err1 := strconv.ParseFloat(f[0], 64)
			p, err2 := strconv.ParseFloat(f[1], 64)
			if err1 == nil && err2 == nil && p > 0 {
				return q / p, true
			}
		}
		return 0, false
	}
	qs, ok1 := readTrim("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	ps, ok2 := readTrim("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
	q, err1 := strconv.ParseFloat(qs, 64)
	p, err2 := strconv.ParseFloat(ps, 64)
	if ok1 && ok2 && err1 == nil && err2 == nil && q > 0 && p > 0 {
		return q / p, true
	}
	return 0, false
}

func cgroupMemoryMB() (int64, bool) {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		s, ok := readTrim(path)
		if !ok || s == "max" {
			continue
		}
		b, err := strconv.ParseInt(s, 10, 64)
		if err == nil && b > 0 && b < 1<<60 { // v1 says "no limit" with a huge number
			return b >> 20, true
		}
	}
	return 0, false
}

func memTotalMB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb >> 10
		}
	}
	return 0
}
