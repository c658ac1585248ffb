package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func addDeviceEventSeeds(f *testing.F) {
	rep := Report{DeviceID: "d-1", DeviceGroup: "edge", Hostname: "h\u00e9\"q", ReportCreationTime: 1764000000, AppliedVersion: 3, Updated: true,
		MemoryUsage: MemoryUsage{Total: 4096, Used: 1, Free: 2, Available: 3}, RootDiskUsage: DiskUsage{Total: 9, Used: 8, Free: 1},
		CPUUsage:       CPUUsage{Cores: 2, UsedPercent: 27.179331530636645},
		CurrentConfig:  CurrentConfig{StatusCode: 200, Reply: json.RawMessage(`{"apps": [ {"app_name": "web"} ], "x": null}`)},
		AppsStatus:     []AppStatus{{Name: "web", Version: 7, Status: AppStatusPullFailed, Running: 1, Expected: 2, Error: "registry down"}},
		AppsContainers: []ContainerStatus{{ID: "abc", Name: "web-1", Owner: "web", State: "running", Health: "healthy", Image: "sha256:1"}},
		Errors:         []string{"x"}, Labels: map[string]string{"ring": "canary", "s\u00e9te": "a\"b"}}
	full, _ := json.Marshal(DeviceEvent{Type: DeviceReported, ID: "e1", DeviceID: "d-1", DeviceGroup: "edge", Time: time.Unix(1764000000, 5).UTC(), Report: &rep})
	f.Add(full)
	empty, _ := json.Marshal(DeviceEvent{Type: DeviceReported, ID: "e2", DeviceID: "d-1", Report: &Report{AppliedVersion: -1}})
	f.Add(empty)
	f.Add([]byte(`{"type":"device.reported","id":"e3","device_id":"d","report":{"hostname":"a"},"report":{"hostname":"b"}}`))
	f.Add([]byte(` { "type" : "device.reported" , "id":"e4","device_id":"d", "report" : { "hostname" : "a", "errors": null, "current_device_group_config": {"reply": null}, "memory_usage": null } } `))
	f.Add([]byte(`{"type":"device.reported","id":"e5","device_id":"d","Report":{"hostname":"a"}}`))
	f.Add([]byte(`{"type":"device.failed","id":"e6","device_id":"d","device_group":"g","time":"2026-01-01T00:00:00Z","detail":"web: x","version":4}`))
	f.Add([]byte(`{"type":"device.reported","id":"e7","device_id":"d","report":{"cpu_usage":{"cores":1,"used_percent":1e-5}}}`))
	f.Add([]byte(`{"type":"device.reported","id":"e8","device_id":"d","report":null}`))
	f.Add([]byte(`{"type":"device.reported","id":"e9","device_id":"d","report":{"labels":null}}`))
	f.Add([]byte(`{"type":"device.reported","id":"e10","device_id":"d","report":{"labels":{}}}`))
	f.Add([]byte(`{"type":"device.reported","id":"e11","device_id":"d","report":{"labels":{"a":"1","a":"2","\u0062":"3"}}}`))
}

// FuzzReadDeviceEvent: whenever ReadDeviceEvent reads a record, it reads
// what json.Unmarshal reads, and the report bytes it returns decode to the
// same report.
func FuzzReadDeviceEvent(f *testing.F) {
	addDeviceEventSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, report, ok := ReadDeviceEvent(b)
		if !ok {
			return
		}
		var want DeviceEvent
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("read %q, which json.Unmarshal refuses: %v", b, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("read %q as\n%+v\njson.Unmarshal:\n%+v", b, fast, want)
		}
		if (report == nil) != (want.Report == nil) {
			t.Fatalf("report bytes %q for report %+v", report, want.Report)
		}
		if report != nil {
			var again Report
			if err := json.Unmarshal(report, &again); err != nil || !reflect.DeepEqual(again, *want.Report) {
				t.Fatalf("report bytes %q read as %+v (%v), want %+v", report, again, err, *want.Report)
			}
		}
	})
}

// TestReadDeviceEvent: the events reporters write take the fast path;
// what it leaves to encoding/json does not.
func TestReadDeviceEvent(t *testing.T) {
	rep := Report{DeviceID: "d-1", DeviceGroup: "edge", Hostname: "h", AppliedVersion: 3, CurrentConfig: CurrentConfig{StatusCode: 200, Reply: json.RawMessage(`{"apps":[]}`)},
		Labels: map[string]string{"ring": "canary"}, AppsContainers: []ContainerStatus{{ID: "c", Name: "web-1", Owner: "web", State: "running"}}}
	b, _ := json.Marshal(DeviceEvent{Type: DeviceReported, ID: "e1", DeviceID: "d-1", DeviceGroup: "edge", Time: time.Now(), Report: &rep})
	if _, report, ok := ReadDeviceEvent(b); !ok || report == nil {
		t.Fatalf("a reporter's event left to encoding/json: %s", b)
	}
	b, _ = json.Marshal(DeviceEvent{Type: DeviceConverged, ID: "e2", DeviceID: "d-1", DeviceGroup: "edge", Time: time.Now(), Version: 4})
	if _, report, ok := ReadDeviceEvent(b); !ok || report != nil {
		t.Fatalf("a status event left to encoding/json: %s", b)
	}
	for _, s := range []string{`{"id":"a","ID":"b"}`, `{"id":"a","unknown":1}`, `{"report":{"extra":{"a":1}}}`, `{"time":null}`} {
		if _, _, ok := ReadDeviceEvent([]byte(s)); ok {
			t.Errorf("read %s: it is encoding/json's", s)
		}
	}
}
