package fleetbench

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// simProc is a `nebula sim` process; it keeps the latest count of its
// devices per version, with the wall clock of each report.
type simProc struct {
	mu      sync.Mutex
	samples []simSample
	proc    *testenv.Process
}

type simSample struct {
	at     time.Time
	counts map[int64]int
}

var simLine = regexp.MustCompile(`unix_ms=(\d+) (.*)$`)
var simVersion = regexp.MustCompile(`version (-?\d+): (\d+)`)

func startSim(tb testing.TB, args ...string) *simProc {
	tb.Helper()
	p := &simProc{}
	p.proc = testenv.StartProgram(tb, testenv.Binary(tb), []string{"NEBULA_MANAGER_AUTH_TOKEN=" + token}, p.observe, append([]string{"sim"}, args...)...)
	return p
}

// observe keeps the counts of one status line of `nebula sim`.
func (p *simProc) observe(line string) {
	m := simLine.FindStringSubmatch(line)
	if m == nil {
		return
	}
	ms, _ := strconv.ParseInt(m[1], 10, 64)
	s := simSample{at: time.UnixMilli(ms), counts: map[int64]int{}}
	for _, v := range simVersion.FindAllStringSubmatch(m[2], -1) {
		ver, _ := strconv.ParseInt(v[1], 10, 64)
		n, _ := strconv.Atoi(v[2])
		s.counts[ver] = n
	}
	p.mu.Lock()
	p.samples = append(p.samples, s)
	p.mu.Unlock()
}

// atVersion is how many of the process's devices had applied v (or a
// later version) by time t, by its last report at or before t.
func (p *simProc) atVersion(v int64, t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.samples) - 1; i >= 0; i-- {
		if !p.samples[i].at.After(t) {
			n := 0
			for ver, c := range p.samples[i].counts {
				if ver >= v {
					n += c
				}
			}
			return n
		}
	}
	return 0
}

// BenchmarkFanoutScaleOut: one API call to 100,000 long-polling devices.
// A process may hold 20,000 files on this machine (a hard limit it cannot
// raise), so 100,000 open long-polls take several managers, as a real
// deployment would run: 6 managers on one broker, and 6 simulator
// processes of 16,667 devices, each against one manager. The change goes
// through manager 1; the others fold it from the log and wake their own
// long-polls. Marks come from the simulators' counts, printed every 50 ms.
func BenchmarkFanoutScaleOut(b *testing.B) {
	devices, managers := 100_000, 6
	if s := os.Getenv("FLEETBENCH_SCALEOUT"); s != "" { // devices,managers
		fmt.Sscanf(s, "%d,%d", &devices, &managers)
	}
	per := devices / managers
	devices = per * managers
	for range b.N {
		kp := testenv.Start(b, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", b.TempDir())
		kafka := kp.WaitLine(b, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
		var urls []string
		for range managers {
			p := testenv.Start(b, []string{"AUTH_TOKEN=" + token}, "manager", "--kafka-brokers", kafka,
				"--data-dir", b.TempDir(), "--listen", "127.0.0.1:0")
			urls = append(urls, p.WaitLine(b, regexp.MustCompile(`API on (http://\S+)/api/v2 `), 60*time.Second)[1])
			p.WaitLine(b, regexp.MustCompile(`nebula manager: ready`), 60*time.Second)
		}
		call(b, "POST", urls[0]+"/api/v2/apps/web", `{"docker_image": "registry.local/web:1"}`, 200)
		call(b, "POST", urls[0]+"/api/v2/device_groups/edge", `{"apps": ["web"]}`, 200)
		v0 := groupVersion(b, urls[0], "edge")
		var sims []*simProc
		for i := range managers {
			sims = append(sims, startSim(b, "--devices", strconv.Itoa(per), "--device-group", "edge", "--manager-uri", urls[i],
				"--check-in", "30s", "--start-spread", "20s", "--duration", "10m", "--print-every", "250ms"))
		}
		total := func(v int64, t time.Time) int {
			n := 0
			for _, s := range sims {
				n += s.atVersion(v, t)
			}
			return n
		}
		deadline := time.Now().Add(4 * time.Minute)
		for total(v0, time.Now()) < devices {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d devices at the first version", total(v0, time.Now()), devices)
			}
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(3 * time.Second) // every device parked in its long-poll
		start := time.Now()
		call(b, "PATCH", urls[0]+"/api/v2/apps/web/update", `{"docker_image": "registry.local/web:2"}`, 202)
		v1 := groupVersion(b, urls[0], "edge")
		deadline = time.Now().Add(2 * time.Minute)
		for total(v1, time.Now()) < devices {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d devices at the new version", total(v1, time.Now()), devices)
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // the last samples are in
		// The first sample time at which each share was reached.
		var marks [3]time.Duration
		targets := []int{devices / 2, devices * 99 / 100, devices}
		for i, want := range targets {
			for t := start; ; t = t.Add(10 * time.Millisecond) {
				if total(v1, t) >= want {
					marks[i] = t.Sub(start)
					break
				}
			}
		}
		vals := map[string]float64{"devices": float64(devices), "managers": float64(managers),
			"p50_s": marks[0].Seconds(), "p99_s": marks[1].Seconds(), "all_s": marks[2].Seconds()}
		b.Logf("fan-out to %d long-polling devices over %d managers: %v", devices, managers, vals)
		b.ReportMetric(marks[1].Seconds(), "p99_s")
		benchrec.Record(b, "fanout", fmt.Sprintf("%d devices, long-poll, %d managers", devices, managers), vals)
		for _, s := range sims {
			s.proc.Stop(5 * time.Second)
		}
	}
}
