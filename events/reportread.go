package events

import (
	"encoding/json"
	"strconv"

	"github.com/nebula-orchestrator/nebula-go/internal/jsonlex"
)

// The fast path of reading device events. Every manager folds every
// device's reports, and encoding/json spent about 45 µs of CPU on one
// worker report of 2.5 KB on the reference machine: most of what folding
// it cost. ReadDeviceEvent reads the events reporters write in one pass
// without reflection.
//
// Like fastDecode it is a pure optimisation: it gives up (ok=false) on
// anything it does not fully understand (an unknown or repeated key, an
// escape in a key, an exponent, a null where encoding/json would not
// leave a zero value), and the caller then uses json.Unmarshal. When it
// succeeds, json.Unmarshal would have read exactly the same event:
// FuzzReadDeviceEvent checks that on arbitrary input.

// ReadDeviceEvent reads a device event as json.Unmarshal would, and
// returns the bytes of its report (nil without one); ok=false means "use
// json.Unmarshal", never "invalid".
func ReadDeviceEvent(b []byte) (ev DeviceEvent, report []byte, ok bool) {
	l := jsonlex.New(b, 0)
	l.Object(func(k []byte) {
		switch string(k) {
		case "type":
			ev.Type = l.Str()
		case "id":
			ev.ID = l.Str()
		case "device_id":
			ev.DeviceID = l.Str()
		case "device_group":
			ev.DeviceGroup = l.Str()
		case "time":
			ev.Time = l.Time()
		case "version":
			ev.Version = l.Int()
		case "detail":
			ev.Detail = l.Str()
		case "report":
			if l.Null() {
				ev.Report, report = nil, nil
				return
			}
			start := l.Pos()
			ev.Report = &Report{}
			readReport(l, ev.Report)
			report = b[start:l.Offset()]
		default:
			l.Fail(true) // encoding/json would match it case-insensitively, or skip it
		}
	})
	if l.Bad() || !l.End() {
		return DeviceEvent{}, nil, false
	}
	return ev, report, true
}

func readReport(l *jsonlex.Lexer, r *Report) {
	l.Object(func(k []byte) {
		switch string(k) {
		case "memory_usage":
			if !l.Null() {
				l.Object(func(k []byte) {
					switch string(k) {
					case "total":
						r.MemoryUsage.Total = l.Int()
					case "used":
						r.MemoryUsage.Used = l.Int()
					case "free":
						r.MemoryUsage.Free = l.Int()
					case "available":
						r.MemoryUsage.Available = l.Int()
					default:
						l.Fail(true)
					}
				})
			}
		case "root_disk_usage":
			if !l.Null() {
				l.Object(func(k []byte) {
					switch string(k) {
					case "total":
						r.RootDiskUsage.Total = l.Int()
					case "used":
						r.RootDiskUsage.Used = l.Int()
					case "free":
						r.RootDiskUsage.Free = l.Int()
					default:
						l.Fail(true)
					}
				})
			}
		case "cpu_usage":
			if !l.Null() {
				l.Object(func(k []byte) {
					switch string(k) {
					case "cores":
						r.CPUUsage.Cores = int(l.Int())
					case "used_percent":
						r.CPUUsage.UsedPercent = readFloat(l)
					default:
						l.Fail(true)
					}
				})
			}
		case "cron_jobs_containers":
			r.CronJobsContainers = readContainers(l)
		case "apps_containers":
			r.AppsContainers = readContainers(l)
		case "current_device_group_config":
			if !l.Null() {
				l.Object(func(k []byte) {
					switch string(k) {
					case "status_code":
						r.CurrentConfig.StatusCode = int(l.Int())
					case "reply":
						start := l.Pos()
						skipAny(l, 0)
						r.CurrentConfig.Reply = append(json.RawMessage(nil), l.Slice(start)...)
					default:
						l.Fail(true)
					}
				})
			}
		case "device_group":
			r.DeviceGroup = l.Str()
		case "report_creation_time":
			r.ReportCreationTime = l.Int()
		case "hostname":
			r.Hostname = l.Str()
		case "updated":
			r.Updated = l.Bool()
		case "device_id":
			r.DeviceID = l.Str()
		case "applied_version":
			r.AppliedVersion = l.Int()
		case "apps_status":
			r.AppsStatus = ReadAppStatuses(l)
		case "errors":
			r.Errors = l.StringsOrNull()
		case "labels":
			if l.Null() {
				r.Labels = nil
				return
			}
			m := map[string]string{}
			l.ObjectAnyKey(func(k string) { m[k] = l.Str() })
			r.Labels = m
		default:
			l.Fail(true) // extra (rare), or a key encoding/json would treat its own way
		}
	})
}

// ReadAppStatuses reads a list of AppStatus as json.Unmarshal does into
// a nil slice (null: nil), or sets l bad.
func ReadAppStatuses(l *jsonlex.Lexer) []AppStatus {
	if l.Null() {
		return nil
	}
	out := []AppStatus{}
	l.Array(func() {
		var a AppStatus
		l.Object(func(k []byte) {
			switch string(k) {
			case "name":
				a.Name = l.Str()
			case "version":
				a.Version = l.Int()
			case "status":
				a.Status = l.Str()
			case "running":
				a.Running = int(l.Int())
			case "expected":
				a.Expected = int(l.Int())
			case "error":
				a.Error = l.Str()
			default:
				l.Fail(true)
			}
		})
		out = append(out, a)
	})
	return out
}

func readContainers(l *jsonlex.Lexer) []ContainerStatus {
	if l.Null() {
		return nil
	}
	out := []ContainerStatus{}
	l.Array(func() {
		var c ContainerStatus
		l.Object(func(k []byte) {
			switch string(k) {
			case "id":
				c.ID = l.Str()
			case "name":
				c.Name = l.Str()
			case "owner":
				c.Owner = l.Str()
			case "state":
				c.State = l.Str()
			case "health":
				c.Health = l.Str()
			case "image":
				c.Image = l.Str()
			case "cpu_percent":
				c.CPUPercent = readFloat(l)
			case "memory_bytes":
				c.MemoryBytes = l.Int()
			default:
				l.Fail(true) // 2.7's Docker stats among them: ContainerStatus.UnmarshalJSON reads those
			}
		})
		out = append(out, c)
	})
	return out
}

// readFloat reads a number as encoding/json reads it into a float64.
func readFloat(l *jsonlex.Lexer) float64 {
	lit := l.Number()
	if l.Bad() {
		return 0
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	l.Fail(err != nil)
	return f
}

// skipAny reads over any value, null too.
func skipAny(l *jsonlex.Lexer, depth int) {
	l.Fail(depth > 32)
	switch {
	case l.Bad() || l.Null():
	case l.Peek() == '{':
		l.ObjectAnyKey(func(string) { skipAny(l, depth+1) })
	case l.Peek() == '[':
		l.Array(func() { skipAny(l, depth+1) })
	default:
		l.Skip()
	}
}
