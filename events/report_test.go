package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

const goodReport = `{"memory_usage":{"total":1024,"used":512,"free":256,"available":600},"root_disk_usage":{"total":10000,"used":100,"free":9900},
"cpu_usage":{"cores":4,"used_percent":12.5},"cron_jobs_containers":[],"apps_containers":[{"id":"abc","name":"web-1","owner":"web","state":"running","health":"","image":"sha256:1"}],
"current_device_group_config":{"status_code":200,"reply":{"apps":[]}},"device_group":"edge","report_creation_time":1764000000,
"hostname":"pi-1","updated":true,"device_id":"0123456789abcdef","applied_version":42,
"apps_status":[{"name":"web","version":41,"status":"running","running":1,"expected":1}],"errors":[]}`

func TestDecodeReport(t *testing.T) {
	r, err := DecodeReport([]byte(goodReport))
	if err != nil || r.DeviceID != "0123456789abcdef" || r.AppsStatus[0].Status != AppStatusRunning {
		t.Fatalf("%+v %v", r, err)
	}
	for name, body := range map[string]string{
		"unknown field":   strings.Replace(goodReport, `"updated"`, `"colour":1,"updated"`, 1),
		"no device id":    strings.Replace(goodReport, `"0123456789abcdef"`, `""`, 1),
		"bad group":       strings.Replace(goodReport, `"edge"`, `"no such/group"`, 1),
		"bad status":      strings.Replace(goodReport, `"status":"running"`, `"status":"fine"`, 1),
		"negative memory": strings.Replace(goodReport, `"total":1024`, `"total":-1`, 1),
		"no time":         strings.Replace(goodReport, `1764000000`, `0`, 1),
		"not json":        "report",
		"trailing":        goodReport + "{}",
	} {
		if _, err := DecodeReport([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeReport([]byte(`{"device_id":"` + strings.Repeat("a", MaxReportSize) + `"}`)); !errors.Is(err, ErrInvalid) {
		t.Error("oversized report accepted")
	}
}

func FuzzDecodeReport(f *testing.F) {
	f.Add([]byte(goodReport))
	f.Add([]byte(`{}`))
	if b, err := os.ReadFile("testdata/reports/nebula-2.7-worker-report.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReport(b)
		if err == nil && r.Validate() != nil {
			t.Fatal("decoded report does not validate")
		}
	})
}

// TestDecode27Report: a report exactly as Nebula 2.7's worker sends it
// (testdata, captured) is accepted: its Docker stats are read for a CPU
// and a memory figure per container and dropped; its identity is derived
// from its hostname; the version it applied is its config's
// device_group_id. Re-encoded, it is a report of ours.
func TestDecode27Report(t *testing.T) {
	b, err := os.ReadFile("testdata/reports/nebula-2.7-worker-report.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeReport(b)
	if err != nil {
		t.Fatalf("the 2.7 report: %v", err)
	}
	if r.DeviceID != LegacyDeviceID("localhost") || ValidateDeviceID(r.DeviceID) != nil || r.DeviceGroup != "pyg" || r.AppliedVersion != 14 {
		t.Fatalf("identity %q, group %q, applied version %d", r.DeviceID, r.DeviceGroup, r.AppliedVersion)
	}
	if len(r.AppsContainers) != 2 {
		t.Fatalf("%d app containers", len(r.AppsContainers))
	}
	c, c2 := r.AppsContainers[0], r.AppsContainers[1]
	// As `docker stats` computes them: web-1 was idle between the samples;
	// web-2 used 18,945,045 ns of 1,970,000,000 ns of host CPU on 2 CPUs.
	if c.Name != "web-1" || len(c.ID) != 64 || c.MemoryBytes != 1781760 || c.CPUPercent != 0 ||
		c2.Name != "web-2" || c2.MemoryBytes != 1687552 || c2.CPUPercent != 1.92 {
		t.Fatalf("containers %+v %+v", c, c2)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("blkio_stats")) || len(out) > len(b)/3 {
		t.Fatalf("re-encoded, the report keeps the stats (%d bytes of %d)", len(out), len(b))
	}
	again, err := DecodeReport(out)
	if err != nil || again.DeviceID != r.DeviceID || again.AppsContainers[0] != c {
		t.Fatalf("the re-encoded report: %+v %v", again, err)
	}
	// Strictness stays: an unknown key in a container, a stats field of
	// the wrong type, an empty device_id.
	for name, body := range map[string]string{
		"unknown container key": strings.Replace(string(b), `"preread"`, `"colour":1,"preread"`, 1),
		"wrong type":            strings.Replace(string(b), `"usage": 1781760`, `"usage": "a lot"`, 1),
		"empty device_id":       strings.Replace(string(b), `"hostname"`, `"device_id": "", "hostname"`, 1),
	} {
		if _, err := DecodeReport([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
