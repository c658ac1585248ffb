package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Report is a device's status report: Nebula 2.7's fields (same JSON
// keys) plus the device ID, the applied version and per-app status. It
// travels from the worker to the manager over HTTP, then through the
// reports topic to the reporter.
type Report struct {
	MemoryUsage        MemoryUsage        `json:"memory_usage"`
	RootDiskUsage      DiskUsage          `json:"root_disk_usage"`
	CPUUsage           CPUUsage           `json:"cpu_usage"`
	CronJobsContainers []ContainerStatus  `json:"cron_jobs_containers"`
	AppsContainers     []ContainerStatus  `json:"apps_containers"`
	CurrentConfig      CurrentConfig      `json:"current_device_group_config"`
	DeviceGroup        string             `json:"device_group"`
	ReportCreationTime int64              `json:"report_creation_time"` // unix seconds, device clock
	Hostname           string             `json:"hostname"`
	Updated            bool               `json:"updated"` // something changed since the last report
	DeviceID           string             `json:"device_id"`
	Labels             map[string]string  `json:"labels,omitempty"` // the device's labels (NEBULA_DEVICE_LABELS)
	AppliedVersion     int64              `json:"applied_version"`  // device_group_id the containers are from; -1: none yet
	AppsStatus         []AppStatus        `json:"apps_status"`
	Errors             []string           `json:"errors"`
	Extra              map[string]float64 `json:"extra,omitempty"` // room for numeric gauges
}

// MemoryUsage in MiB.
type MemoryUsage struct {
	Total     int64 `json:"total"`
	Used      int64 `json:"used"`
	Free      int64 `json:"free"`
	Available int64 `json:"available"`
}

// DiskUsage in MiB.
type DiskUsage struct {
	Total int64 `json:"total"`
	Used  int64 `json:"used"`
	Free  int64 `json:"free"`
}

// CPUUsage of the device.
type CPUUsage struct {
	Cores       int     `json:"cores"`
	UsedPercent float64 `json:"used_percent"`
}

// ContainerStatus is one container of the device. A 2.7 worker sends the
// raw output of a Docker stats call per container instead: UnmarshalJSON
// keeps what it is worth (CPUPercent, MemoryBytes) and drops the rest.
type ContainerStatus struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Owner  string `json:"owner"`  // app or cron job
	State  string `json:"state"`  // running, exited, ...
	Health string `json:"health"` // healthy, unhealthy, starting, or ""
	Image  string `json:"image"`
	// From a 2.7 worker's Docker stats: CPU use in percent of one core
	// (100 per busy core) and memory in bytes (page cache excluded).
	CPUPercent  float64 `json:"cpu_percent,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
}

// CurrentConfig is the /info the device applies, as 2.7 wrapped it.
type CurrentConfig struct {
	StatusCode int             `json:"status_code"`
	Reply      json.RawMessage `json:"reply"`
}

// AppStatus is where one app stands on the device.
type AppStatus struct {
	Name     string `json:"name"`
	Version  int64  `json:"version"` // app_id the containers are from
	Status   string `json:"status"`  // one of the AppStatus* values
	Running  int    `json:"running"` // containers running
	Expected int    `json:"expected"`
	Error    string `json:"error,omitempty"`
}

// App statuses.
const (
	AppStatusRunning    = "running"     // at its version, every container running
	AppStatusStopped    = "stopped"     // running=false, no container
	AppStatusPending    = "pending"     // not yet at its version
	AppStatusPullFailed = "pull_failed" // its image could not be pulled
	AppStatusUnhealthy  = "unhealthy"   // a container's healthcheck fails
	AppStatusExited     = "exited"      // a container of its version exited or is restarting
	AppStatusFailed     = "failed"      // the engine refused a step
)

// Failing says whether the app's status is a failure (not a wait): the
// rule reporters, rollouts and the rollout view share.
func (a AppStatus) Failing() bool {
	switch a.Status {
	case AppStatusFailed, AppStatusPullFailed, AppStatusExited, AppStatusUnhealthy:
		return true
	}
	return false
}

// docker27Stats are the keys of a Docker stats document a 2.7 worker puts
// in a container's entry that carry nothing kept: accepted and dropped.
var docker27Stats = map[string]bool{"read": true, "preread": true, "pids_stats": true, "blkio_stats": true, "num_procs": true,
	"storage_stats": true, "networks": true}

// UnmarshalJSON reads a container entry: ours, or a 2.7 worker's Docker
// stats (whose CPU and memory figures are kept). Any other key is an
// error, as for the rest of a report.
func (c *ContainerStatus) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var cpu, precpu *dockerCPUStats
	for k, v := range m {
		var err error
		switch k {
		case "id":
			err = json.Unmarshal(v, &c.ID)
		case "name":
			err = json.Unmarshal(v, &c.Name)
			c.Name = strings.TrimPrefix(c.Name, "/") // Docker's stats name containers "/web-1"
		case "owner":
			err = json.Unmarshal(v, &c.Owner)
		case "state":
			err = json.Unmarshal(v, &c.State)
		case "health":
			err = json.Unmarshal(v, &c.Health)
		case "image":
			err = json.Unmarshal(v, &c.Image)
		case "cpu_percent":
			err = json.Unmarshal(v, &c.CPUPercent)
		case "memory_bytes":
			err = json.Unmarshal(v, &c.MemoryBytes)
		case "cpu_stats":
			err = json.Unmarshal(v, &cpu)
		case "precpu_stats":
			err = json.Unmarshal(v, &precpu)
		case "memory_stats":
			var mem dockerMemoryStats
			if err = json.Unmarshal(v, &mem); err == nil {
				c.MemoryBytes = mem.bytes()
			}
		default:
			if !docker27Stats[k] {
				return fmt.Errorf("json: unknown field %q", k)
			}
		}
		if err != nil {
			return fmt.Errorf("container field %q: %w", k, err)
		}
	}
	if cpu != nil && precpu != nil {
		c.CPUPercent = cpu.percentSince(*precpu)
	}
	return nil
}

// dockerCPUStats is the part of Docker's cpu_stats used.
type dockerCPUStats struct {
	CPUUsage struct {
		TotalUsage uint64 `json:"total_usage"`
	} `json:"cpu_usage"`
	SystemCPUUsage uint64 `json:"system_cpu_usage"`
	OnlineCPUs     int    `json:"online_cpus"`
}

// percentSince is the container's CPU use between two samples, as `docker
// stats` computes it: its share of the host's CPU time, times the CPUs.
func (s dockerCPUStats) percentSince(pre dockerCPUStats) float64 {
	if s.CPUUsage.TotalUsage < pre.CPUUsage.TotalUsage || s.SystemCPUUsage <= pre.SystemCPUUsage {
		return 0
	}
	container := float64(s.CPUUsage.TotalUsage - pre.CPUUsage.TotalUsage)
	system := float64(s.SystemCPUUsage - pre.SystemCPUUsage)
	return math.Round(container/system*float64(max(s.OnlineCPUs, 1))*100*100) / 100
}

// dockerMemoryStats is the part of Docker's memory_stats used.
type dockerMemoryStats struct {
	Usage int64            `json:"usage"`
	Stats map[string]int64 `json:"stats"`
}

// bytes is the memory in use without the page cache, as `docker stats`
// shows it (cgroup v1 reports total_inactive_file, v2 inactive_file).
func (m dockerMemoryStats) bytes() int64 {
	cache := m.Stats["total_inactive_file"]
	if v, ok := m.Stats["inactive_file"]; ok && cache == 0 {
		cache = v
	}
	return max(m.Usage-cache, 0)
}

// LegacyDeviceID is the identity of a device whose reports carry no
// device_id (Nebula 2.7's worker): derived from its hostname, so that it
// is the same at every report. Two such devices with one hostname are one
// device to the inventory (docs/reports.md).
func LegacyDeviceID(hostname string) string {
	if hostname == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(hostname))
	return "legacy-" + hex.EncodeToString(sum[:8])
}

// absentDeviceID marks a report that had no device_id (no valid ID holds
// a NUL).
const absentDeviceID = "\x00absent\x00"

// Report bounds.
const (
	MaxReportSize       = 512 << 10
	maxReportContainers = 2000
	maxReportErrors     = 100
	maxReportText       = 1024
)

// DecodeReport parses and validates a report: unknown fields, missing
// identity, out-of-bound lists or values are errors (ErrInvalid).
func DecodeReport(b []byte) (Report, error) {
	// A 2.7 worker sends neither: what is left as set here was absent.
	r := Report{AppliedVersion: -1, DeviceID: absentDeviceID}
	if len(b) > MaxReportSize {
		return r, fmt.Errorf("%w: report of %d bytes exceeds %d", ErrInvalid, len(b), MaxReportSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Report{}, fmt.Errorf("%w: report: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Report{}, fmt.Errorf("%w: report: trailing data", ErrInvalid)
	}
	if r.DeviceID == absentDeviceID {
		// Nebula 2.7's worker: an identity from its hostname, and the
		// version it applied from the config it reports.
		r.DeviceID = LegacyDeviceID(r.Hostname)
		if r.AppliedVersion == -1 {
			var cfg struct {
				DeviceGroupID *int64 `json:"device_group_id"`
			}
			if json.Unmarshal(r.CurrentConfig.Reply, &cfg) == nil && cfg.DeviceGroupID != nil && *cfg.DeviceGroupID >= 0 {
				r.AppliedVersion = *cfg.DeviceGroupID
			}
		}
	}
	return r, r.Validate()
}

// Validate checks the report's identity and bounds.
func (r Report) Validate() error {
	var errs []error
	if err := ValidateDeviceID(r.DeviceID); err != nil {
		errs = append(errs, fieldErr("device_id", err))
	}
	if err := ValidateName(KindDeviceGroup, r.DeviceGroup); err != nil {
		errs = append(errs, fieldErr("device_group", err))
	}
	if len(r.Labels) > 0 {
		if _, err := ParseLabels(FormatLabels(r.Labels)); err != nil {
			errs = append(errs, fieldErr("labels", err))
		}
	}
	if len(r.Hostname) > 255 || strings.ContainsAny(r.Hostname, "\x00\n") {
		errs = append(errs, fieldErr("hostname", errors.New("must be at most 255 characters on one line")))
	}
	if r.ReportCreationTime <= 0 || r.ReportCreationTime > 1<<40 {
		errs = append(errs, fieldErr("report_creation_time", errors.New("must be a positive unix time in seconds")))
	}
	if len(r.AppsContainers)+len(r.CronJobsContainers) > maxReportContainers || len(r.AppsStatus) > maxReportContainers {
		errs = append(errs, errors.New("too many containers or apps"))
	}
	if len(r.Errors) > maxReportErrors {
		errs = append(errs, fieldErr("errors", fmt.Errorf("at most %d", maxReportErrors)))
	}
	for _, e := range r.Errors {
		if len(e) > maxReportText {
			errs = append(errs, fieldErr("errors", fmt.Errorf("an error is longer than %d characters", maxReportText)))
			break
		}
	}
	if r.AppliedVersion < -1 {
		errs = append(errs, fieldErr("applied_version", errors.New("must be a version, or -1 for none")))
	}
	if r.MemoryUsage.Total < 0 || r.RootDiskUsage.Total < 0 || r.CPUUsage.Cores < 0 || r.CPUUsage.UsedPercent < 0 || r.CPUUsage.UsedPercent > 100*1024 {
		errs = append(errs, errors.New("usage figures must not be negative"))
	}
	for _, a := range r.AppsStatus {
		switch a.Status {
		case AppStatusRunning, AppStatusStopped, AppStatusPending, AppStatusPullFailed, AppStatusUnhealthy, AppStatusExited, AppStatusFailed:
		default:
			errs = append(errs, fieldErr("apps_status", fmt.Errorf("unknown status %q of app %q", a.Status, a.Name)))
		}
		if len(a.Error) > maxReportText {
			errs = append(errs, fieldErr("apps_status", errors.New("an error is too long")))
		}
	}
	if len(r.CurrentConfig.Reply) > 0 && !json.Valid(r.CurrentConfig.Reply) {
		errs = append(errs, fieldErr("current_device_group_config", errors.New("reply is not JSON")))
	}
	return joinInvalid(errs)
}

// ValidateDeviceID checks a device ID: 8 to 64 characters of [A-Za-z0-9_.-].
func ValidateDeviceID(id string) error {
	if len(id) < 8 || len(id) > 64 {
		return errors.New("must have 8 to 64 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("character %q is not allowed", c)
		}
	}
	return nil
}

// DeviceEvent is a fact about a device, on the device events topic (keyed
// by device ID). The reporter writes them; the managers fold them into
// their report projections.
type DeviceEvent struct {
	Type        string    `json:"type"` // DeviceReported, ...
	ID          string    `json:"id"`   // unique; the same for a redelivered message
	DeviceID    string    `json:"device_id"`
	DeviceGroup string    `json:"device_group"`
	Time        time.Time `json:"time"` // when the reporter accepted it
	Report      *Report   `json:"report,omitempty"`
	// Version is the device group version of DeviceConverged.
	Version int64 `json:"version,omitempty"`
	// Detail explains DeviceFailed (the apps' errors).
	Detail string `json:"detail,omitempty"`
}

// Device event types: a report, and the changes of a device's status the
// reporter derives from the reports (and from their absence).
const (
	DeviceReported  = "device.reported"
	DeviceOnline    = "device.online"    // first report, or first after silence
	DeviceSilent    = "device.silent"    // no report for longer than the silence threshold
	DeviceConverged = "device.converged" // applied a new group version, every app as wanted
	DeviceFailed    = "device.failed"    // an app failed (engine refused, image not pullable)
	// DeviceHeartbeat: a device reported that nothing changed since its
	// last full report: it is alive, at the applied version in Version.
	// The fold moves its last seen only (no report is kept for it).
	DeviceHeartbeat = "device.heartbeat"
)
