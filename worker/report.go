package worker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// appProblem is why an app is not at its config.
type appProblem struct{ status, err string }

// maxQueuedReports bounds the reports kept on disk while the manager is
// unreachable (the oldest go first).
const maxQueuedReports = 200

const queueFile = "reports-queue.jsonl"

// maybeReport sends a report if one is due: after a change, or when the
// interval has passed (unless only changes are reported).
func (a *Agent) maybeReport(ctx context.Context) {
	if a.cfg.ReportInterval <= 0 {
		return
	}
	a.mu.Lock()
	changed := a.changed
	due := changed || (!a.cfg.ReportOnUpdateOnly && time.Since(a.lastReport) >= a.cfg.ReportInterval)
	if due {
		a.changed = false
		a.lastReport = time.Now()
	}
	a.mu.Unlock()
	if !due {
		return
	}
	rep, err := a.buildReport(ctx, changed)
	if err != nil {
		a.logger.Warn("cannot build a report", "err", err)
		return
	}
	digest := stateDigest(rep)
	a.mu.Lock()
	quiet := a.cfg.FullReportEvery > 0 && !changed && !a.heartbeatsRefused && digest == a.lastDigest && time.Since(a.lastFull) < a.cfg.FullReportEvery
	a.mu.Unlock()
	if quiet && a.queueEmpty() && a.sendHeartbeat(ctx, rep) {
		return
	}
	a.mu.Lock()
	a.lastDigest, a.lastFull = digest, time.Now()
	a.mu.Unlock()
	b, err := encodeReport(rep)
	if err != nil {
		a.logger.Warn("cannot send a report", "err", err)
		return
	}
	a.sendReports(ctx, b)
}

// stateDigest is what a report says of the device's state: the report
// without its time and usage figures, hashed. The same digest as the last
// full report's: nothing changed, a heartbeat says as much.
func stateDigest(rep events.Report) [32]byte {
	rep.ReportCreationTime, rep.Updated = 0, false
	rep.MemoryUsage, rep.RootDiskUsage, rep.CPUUsage = events.MemoryUsage{}, events.DiskUsage{}, events.CPUUsage{}
	b, _ := json.Marshal(rep)
	return sha256.Sum256(b)
}

// queueEmpty says whether no report waits on disk (a heartbeat must not
// pass reports the manager has not had).
func (a *Agent) queueEmpty() bool {
	if a.cfg.StateDir == "" {
		return true
	}
	_, err := os.Stat(filepath.Join(a.cfg.StateDir, queueFile))
	return errors.Is(err, os.ErrNotExist)
}

// sendHeartbeat sends a heartbeat for rep's device; false: it was not
// taken (the manager is unreachable, or refuses heartbeats: then full
// reports only, from now on) and a full report should go instead.
func (a *Agent) sendHeartbeat(ctx context.Context, rep events.Report) bool {
	b, err := json.Marshal(events.Heartbeat{Heartbeat: true, DeviceID: rep.DeviceID, DeviceGroup: rep.DeviceGroup, AppliedVersion: rep.AppliedVersion})
	if err != nil {
		return false
	}
	if a.cfg.ReportSink != nil {
		return a.cfg.ReportSink.Publish(ctx, a.cfg.DeviceID, b) == nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.cfg.Manager, "/")+"/api/v2/reports", bytes.NewReader(b))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	a.authorize(req)
	resp, err := a.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted:
		return true
	case http.StatusBadRequest:
		a.mu.Lock()
		a.heartbeatsRefused = true
		a.mu.Unlock()
		a.logger.Warn("the manager refused a heartbeat (a manager older than heartbeats?): full reports only from now on")
	}
	return false
}

// encodeReport marshals a report within the manager's size limit. The
// group's config, which 2.7 copied into every report, is what can grow
// past it (apps with large environments): then it is left out, and the
// report says so; the applied version still names it.
func encodeReport(rep events.Report) ([]byte, error) {
	b, err := json.Marshal(rep)
	if err != nil || len(b) <= events.MaxReportSize {
		return b, err
	}
	if n := len(rep.CurrentConfig.Reply); n > 0 {
		rep.CurrentConfig.Reply = nil
		note := fmt.Sprintf("the group's config (%d bytes) is left out of this report: over the %d-byte report limit", n, events.MaxReportSize)
		if len(rep.Errors) >= 100 {
			rep.Errors = rep.Errors[:99]
		}
		rep.Errors = append(rep.Errors, note)
		if b, err = json.Marshal(rep); err != nil || len(b) <= events.MaxReportSize {
			return b, err
		}
	}
	return nil, fmt.Errorf("report of %d bytes is over the %d-byte limit", len(b), events.MaxReportSize)
}

// sendReports sends the queued reports, then b; what cannot be sent is
// queued on disk.
func (a *Agent) sendReports(ctx context.Context, b []byte) {
	path := filepath.Join(a.cfg.StateDir, queueFile)
	if a.cfg.StateDir == "" {
		path = ""
	}
	queued := readQueue(path)
	pending := append(queued, b)
	sent := 0
	for _, r := range pending {
		send := a.postReport
		if a.cfg.ReportSink != nil {
			send = func(ctx context.Context, b []byte) error { return a.cfg.ReportSink.Publish(ctx, a.cfg.DeviceID, b) }
		}
		if err := send(ctx, r); err != nil {
			a.logger.Warn("report not sent; kept on disk for later", "err", err, "queued", len(pending)-sent)
			break
		}
		sent++
	}
	rest := pending[sent:]
	if len(rest) > maxQueuedReports {
		rest = rest[len(rest)-maxQueuedReports:]
	}
	if len(rest) == 0 && len(queued) == 0 || path == "" {
		return
	}
	if err := writeAtomic(path, bytes.Join(append(rest, nil), []byte("\n"))); err != nil {
		a.logger.Warn("cannot keep reports on disk", "err", err)
	}
}

func readQueue(path string) [][]byte {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), events.MaxReportSize+1)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, append([]byte(nil), line...))
		}
	}
	return out
}

func (a *Agent) postReport(ctx context.Context, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.cfg.Manager, "/")+"/api/v2/reports", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	a.authorize(req)
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return nil
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusForbidden:
		a.logger.Error("the manager refused a report; dropped", "status", resp.Status)
		return nil // resending would not help
	}
	return fmt.Errorf("manager answered %s", resp.Status)
}

// buildReport describes the device now.
func (a *Agent) buildReport(ctx context.Context, changed bool) (events.Report, error) {
	a.mu.Lock()
	info, problems, appliedGroup, applied := a.state.Info, a.problems, a.appliedGroup, a.state.Applied
	appliedCopy := make(map[string]int64, len(applied))
	for k, v := range applied {
		appliedCopy[k] = v
	}
	a.mu.Unlock()
	host, _ := os.Hostname()
	rep := events.Report{DeviceGroup: a.cfg.Group, DeviceID: a.cfg.DeviceID, Labels: a.cfg.Labels, Hostname: host, ReportCreationTime: time.Now().Unix(),
		Updated: changed, AppliedVersion: appliedGroup, CronJobsContainers: []events.ContainerStatus{}, AppsContainers: []events.ContainerStatus{},
		AppsStatus: []events.AppStatus{}, Errors: []string{}}
	rep.MemoryUsage = memoryUsage()
	rep.RootDiskUsage = diskUsage("/")
	rep.CPUUsage = events.CPUUsage{Cores: runtime.NumCPU(), UsedPercent: a.cpu.percent()}
	apps, err := a.containers(ctx)
	if err != nil {
		return rep, err
	}
	running, exited, unhealthy, starting := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	counter, _ := a.engine.(restartCounter)
	a.mu.Lock()
	wasUnhealthy := make(map[string]bool, len(a.unhealthy))
	live := make(map[string]bool, len(apps))
	for _, c := range apps {
		live[c.ID] = true
		if at, ok := a.unhealthy[c.ID]; ok && time.Since(at) < troubleMemory {
			wasUnhealthy[c.ID] = true
		}
	}
	for id := range a.unhealthy {
		if !live[id] {
			delete(a.unhealthy, id) // removed: forget it
		}
	}
	a.mu.Unlock()
	for _, c := range apps {
		if wasUnhealthy[c.ID] {
			unhealthy[c.App]++
		}
		if counter != nil && c.Running && !c.Restarting {
			// Running now, but the engine restarted it: its process
			// exited (a crash loop looks running at most instants).
			if n, started, err := counter.Restarts(ctx, c.ID); err == nil && n > 0 && time.Since(started) < troubleMemory {
				exited[c.App]++
			}
		}
		state := "exited"
		switch {
		case c.Restarting:
			state = "restarting"
			exited[c.App]++
		case c.Running:
			state = "running"
			running[c.App]++
		default:
			exited[c.App]++
		}
		switch c.Health {
		case "unhealthy":
			unhealthy[c.App]++
		case "starting":
			starting[c.App]++
		}
		rep.AppsContainers = append(rep.AppsContainers, events.ContainerStatus{ID: c.ID, Name: c.Name, Owner: c.App, State: state, Image: c.ImageID})
	}
	if crons, err := a.engine.CronContainers(ctx); err == nil {
		for _, c := range ours(crons, a.cfg.Group, a.cfg.DeviceID) {
			state := "exited"
			if c.Running {
				state = "running"
			}
			rep.CronJobsContainers = append(rep.CronJobsContainers, events.ContainerStatus{ID: c.ID, Name: c.Name, Owner: c.App, State: state, Image: c.ImageID})
		}
	}
	if info != nil {
		reply, _ := json.Marshal(info)
		rep.CurrentConfig = events.CurrentConfig{StatusCode: 200, Reply: reply}
		for _, app := range info.Apps {
			st := events.AppStatus{Name: app.Name, Version: appliedCopy[app.Name], Running: running[app.Name]}
			if app.Running {
				st.Expected = Replicas(app.ContainersPer, a.cfg.Host)
			}
			p, bad := problems[app.Name]
			st.Status, st.Error = appStatusOf(appliedCopy[app.Name] < app.Version, app.Running, p, bad,
				appCounts{running: running[app.Name], expected: st.Expected, exited: exited[app.Name], unhealthy: unhealthy[app.Name], starting: starting[app.Name]})
			if bad {
				rep.Errors = append(rep.Errors, app.Name+": "+truncate(p.err, 900))
			}
			st.Error = truncate(st.Error, 1000)
			rep.AppsStatus = append(rep.AppsStatus, st)
		}
	}
	if len(rep.Errors) > 100 {
		rep.Errors = rep.Errors[:100]
	}
	return rep, rep.Validate()
}

// appCounts are an app's containers by what the engine says of them.
type appCounts struct{ running, expected, exited, unhealthy, starting int }

// appStatusOf is an app's status in a report: behind (its version not
// applied yet), wanted running or not, its last reconcile's problem (bad),
// and its containers. A container whose healthcheck has not answered yet
// ("starting") is not running as wanted: a rollout must not count it
// healthy before its first check.
func appStatusOf(behind, wantRunning bool, p appProblem, bad bool, n appCounts) (status, err string) {
	switch {
	case bad:
		return p.status, p.err
	case behind:
		return events.AppStatusPending, ""
	case !wantRunning:
		return events.AppStatusStopped, ""
	case n.unhealthy > 0:
		return events.AppStatusUnhealthy, fmt.Sprintf("%d container(s) failed their healthcheck", n.unhealthy)
	case n.exited > 0:
		return events.AppStatusExited, fmt.Sprintf("%d container(s) exited (stopped, restarting or restarted)", n.exited)
	case n.running < n.expected || n.starting > 0:
		return events.AppStatusPending, ""
	}
	return events.AppStatusRunning, ""
}

// restartCounter is what an engine may tell of a container: how many
// times it restarted it since it was created (Docker's RestartCount), and
// when it last started.
type restartCounter interface {
	Restarts(ctx context.Context, id string) (int, time.Time, error)
}

// troubleMemory is how long a container that failed (exited and was
// restarted, or turned unhealthy) makes its app's status a failure.
const troubleMemory = 5 * time.Minute

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func memoryUsage() events.MemoryUsage {
	var m events.MemoryUsage
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "MemTotal:":
			m.Total = kb >> 10
		case "MemFree:":
			m.Free = kb >> 10
		case "MemAvailable:":
			m.Available = kb >> 10
		}
	}
	m.Used = m.Total - m.Available
	return m
}

func diskUsage(path string) events.DiskUsage {
	var st syscall.Statfs_t
	if syscall.Statfs(path, &st) != nil {
		return events.DiskUsage{}
	}
	bs := int64(st.Bsize)
	total, free := int64(st.Blocks)*bs>>20, int64(st.Bavail)*bs>>20
	return events.DiskUsage{Total: total, Free: free, Used: total - int64(st.Bfree)*bs>>20}
}

// cpuMeter computes CPU use between two reports from /proc/stat.
type cpuMeter struct{ idle, total uint64 }

func (c *cpuMeter) percent() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 {
		return 0
	}
	var total, idle uint64
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	dt, di := total-c.total, idle-c.idle
	c.total, c.idle = total, idle
	if dt == 0 || di > dt {
		return 0
	}
	return float64(dt-di) * 100 / float64(dt)
}
