package events

import (
	"errors"
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
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReport(b)
		if err == nil && r.Validate() != nil {
			t.Fatal("decoded report does not validate")
		}
	})
}
