package manager_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

func deviceReport(device, group, host string, at int64, updated bool) map[string]any {
	var m map[string]any
	b, _ := json.Marshal(events.Report{DeviceID: device, DeviceGroup: group, Hostname: host, ReportCreationTime: at, Updated: updated, AppliedVersion: -1,
		AppsStatus: []events.AppStatus{{Name: "web", Version: 1, Status: events.AppStatusRunning, Running: 1, Expected: 1}}})
	_ = json.Unmarshal(b, &m)
	return m
}

// TestReportsEndToEnd: devices send reports over HTTP; the reporter turns
// them into device events; GET /reports serves them with 2.7's filters and
// pagination, to the users who may read their groups.
func TestReportsEndToEnd(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "reports-admin-token"})
	testmanager.StartReporter(t, b.Addr())
	api := m.URL + "/api/v2"
	adm := bearer("reports-admin-token")
	call(t, "POST", api+"/device_groups/edge", map[string]any{}, adm...).expect(t, 200, nil)
	call(t, "POST", api+"/device_groups/other", map[string]any{}, adm...).expect(t, 200, nil)
	dev := call(t, "POST", api+"/users/edge-device", map[string]any{"password": "edge-device-pw"}, adm...)
	devTok := bearer(dev.body["token"].(string))
	call(t, "POST", api+"/user_groups/edge-devices", map[string]any{"group_members": []any{"edge-device"}, "device_groups": map[string]any{"edge": "ro"}}, adm...).expect(t, 200, nil)
	oth := call(t, "POST", api+"/users/other-ops", map[string]any{"password": "other-ops-pw"}, adm...)
	othTok := bearer(oth.body["token"].(string))
	call(t, "POST", api+"/user_groups/other-ops", map[string]any{"group_members": []any{"other-ops"}, "device_groups": map[string]any{"other": "ro"}}, adm...).expect(t, 200, nil)

	// Ingestion: a device reports for its own group only; bad reports 400.
	for i := range 5 {
		call(t, "POST", api+"/reports", deviceReport(fmt.Sprintf("device-%08d", i%2), "edge", fmt.Sprintf("host-%d", i%2), int64(1000+i), i%2 == 0), devTok...).
			expect(t, 202, map[string]any{"accepted": true})
	}
	call(t, "POST", api+"/reports", deviceReport("device-00000009", "other", "h", 2000, true), devTok...).expect(t, 403, map[string]any{"access_allowed": false})
	call(t, "POST", api+"/reports", map[string]any{"device_id": "x"}, devTok...).expect(t, 400, nil)
	call(t, "POST", api+"/reports", deviceReport("device-00000009", "other", "h", 2000, true), adm...).expect(t, 202, nil)

	var all response
	deadline := time.Now().Add(30 * time.Second)
	for {
		all = call(t, "GET", api+"/reports?page_size=100", nil, adm...)
		if data, _ := all.body["data"].([]any); len(data) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports not queryable: %s", all.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	first := all.body["data"].([]any)[0].(map[string]any)
	if first["_id"].(map[string]any)["$oid"] == nil || first["report_insert_date"].(map[string]any)["$date"] == nil || first["device_group"] == nil {
		t.Fatalf("report document %v", first)
	}

	count := func(query string, who []string) int {
		t.Helper()
		r := call(t, "GET", api+"/reports?page_size=100&"+query, nil, who...)
		r.expect(t, 200, nil)
		data, _ := r.body["data"].([]any)
		return len(data)
	}
	for q, want := range map[string]int{
		"hostname=host-0":           3,
		"device_group=edge":         5,
		"device_group=nobody":       0,
		"updated=True":              4, // 3 edge (i even) + other
		"updated=False":             2,
		"report_creation_time=1002": 1,
		"report_creation_time=1002&report_creation_time_filter=gt":  3, // 1003, 1004, 2000
		"report_creation_time=1002&report_creation_time_filter=gte": 4,
		"report_creation_time=1002&report_creation_time_filter=lt":  2,
		"report_creation_time=1002&report_creation_time_filter=lte": 3,
		"report_creation_time=1002&report_creation_time_filter=ne":  5,
		"hostname=host-1&updated=False":                             2,
	} {
		if got := count(q, adm); got != want {
			t.Errorf("%s: %d reports, want %d", q, got, want)
		}
	}
	// Permissions: each user sees the reports of the groups it may read.
	if got := count("", devTok); got != 5 {
		t.Errorf("edge device sees %d reports, want 5", got)
	}
	if got := count("", othTok); got != 1 {
		t.Errorf("other-ops sees %d reports, want 1", got)
	}

	// Keyset pagination: 6 reports, pages of 4, then the end.
	p1 := call(t, "GET", api+"/reports?page_size=4", nil, adm...)
	last := p1.body["last_id"].(map[string]any)["$oid"].(string)
	p2 := call(t, "GET", api+"/reports?page_size=4&last_id="+last, nil, adm...)
	if len(p1.body["data"].([]any)) != 4 || len(p2.body["data"].([]any)) != 2 {
		t.Fatalf("pages: %s / %s", p1.raw, p2.raw)
	}
	end := call(t, "GET", api+"/reports?page_size=4&last_id="+p2.body["last_id"].(map[string]any)["$oid"].(string), nil, adm...)
	end.expect(t, 200, map[string]any{"data": nil, "last_id": nil})

	for _, q := range []string{"page_size=0", "page_size=x", "last_id=zz", "report_creation_time=soon", "report_creation_time_filter=like", "updated=maybe"} {
		call(t, "GET", api+"/reports?"+q, nil, adm...).expect(t, 400, nil)
	}

	// Rollout of "edge" (version v): device-00000000 reported version 0
	// (pending), device-00000001 too; after a report at v, converged;
	// one with a failed app: failed; silent_after=1ns: all silent.
	v := call(t, "GET", api+"/device_groups/edge", nil, adm...).num(t, "device_group_id")
	conv := deviceReport("device-00000001", "edge", "host-1", 3000, true)
	conv["applied_version"] = v
	call(t, "POST", api+"/reports", conv, devTok...).expect(t, 202, nil)
	bad := deviceReport("device-00000002", "edge", "host-2", 3000, true)
	bad["apps_status"] = []any{map[string]any{"name": "web", "version": 0, "status": "pull_failed", "running": 0, "expected": 1, "error": "registry down"}}
	call(t, "POST", api+"/reports", bad, devTok...).expect(t, 202, nil)
	var ro response
	deadline = time.Now().Add(30 * time.Second)
	for {
		ro = call(t, "GET", api+"/device_groups/edge/rollout", nil, devTok...)
		if ro.status == 200 && ro.num(t, "devices") == 3 && ro.num(t, "converged") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout: %s", ro.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ro.expect(t, 200, map[string]any{"pending": 1, "failed": 1, "silent": 0, "device_group_id": v, "reports_complete": true})
	if slow := ro.body["slowest"].([]any); len(slow) != 2 {
		t.Fatalf("slowest: %v", slow)
	}
	call(t, "GET", api+"/device_groups/edge/rollout?silent_after=1ns", nil, adm...).expect(t, 200, map[string]any{"silent": 3, "converged": 0})
	call(t, "GET", api+"/device_groups/edge/rollout?silent_after=soon", nil, adm...).expect(t, 400, nil)
	call(t, "GET", api+"/device_groups/other/rollout", nil, devTok...).expect(t, 403, map[string]any{"access_allowed": false})
	call(t, "GET", api+"/device_groups/nope/rollout", nil, adm...).expect(t, 403, map[string]any{"device_group_exists": false})

	devs := call(t, "GET", api+"/devices", nil, adm...)
	if list, _ := devs.body["devices"].([]any); len(list) != 4 {
		t.Fatalf("devices: %s", devs.raw)
	}
	// The reporter's status events reach the inventory.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var conv1, failed2 bool
		for _, d := range call(t, "GET", api+"/devices", nil, adm...).body["devices"].([]any) {
			m := d.(map[string]any)
			conv1 = conv1 || m["device_id"] == "device-00000001" && m["converged_version"] == float64(v)
			failed2 = failed2 || m["device_id"] == "device-00000002" && m["failure"] != nil && m["failure"] != ""
		}
		if conv1 && failed2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status events not in /devices: %s", call(t, "GET", api+"/devices", nil, adm...).raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if list, _ := call(t, "GET", api+"/devices", nil, othTok...).body["devices"].([]any); len(list) != 1 {
		t.Fatalf("other-ops sees %d devices, want 1", len(list))
	}

	// Pages, one group, and what cannot be asked.
	ids := func(r response) []any {
		var out []any
		for _, d := range r.body["devices"].([]any) {
			out = append(out, d.(map[string]any)["device_id"])
		}
		return out
	}
	p1 = call(t, "GET", api+"/devices?page_size=3", nil, adm...)
	p2 = call(t, "GET", api+"/devices?page_size=3&last_id="+p1.body["last_id"].(string), nil, adm...)
	if len(ids(p1)) != 3 || len(ids(p2)) != 1 || p2.body["last_id"] != nil || fmt.Sprint(append(ids(p1), ids(p2)...)) != fmt.Sprint(ids(devs)) {
		t.Fatalf("pages of devices: %s / %s, all: %s", p1.raw, p2.raw, devs.raw)
	}
	edge := call(t, "GET", api+"/devices?device_group=edge", nil, adm...)
	if fmt.Sprint(ids(edge)) != "[device-00000000 device-00000001 device-00000002]" || edge.body["last_id"] != nil || edge.body["reports_complete"] != true {
		t.Fatalf("devices of edge: %s", edge.raw)
	}
	if got := ids(call(t, "GET", api+"/devices?device_group=edge", nil, othTok...)); len(got) != 0 {
		t.Fatalf("other-ops sees devices of edge: %v", got)
	}
	for _, q := range []string{"page_size=0", "page_size=10001", "page_size=x", "last_id=a/b", "device_group=no%20spaces"} {
		call(t, "GET", api+"/devices?"+q, nil, adm...).expect(t, 400, nil)
	}

	// A dry run counts the devices of the groups it would change (through
	// the group index), and changes nothing.
	call(t, "POST", api+"/apps/dryweb", map[string]any{"docker_image": "nginx:1"}, adm...).expect(t, 200, nil)
	call(t, "PATCH", api+"/device_groups/edge/update", map[string]any{"apps": []any{"dryweb"}}, adm...).expect(t, 202, nil)
	before := call(t, "GET", api+"/apps/dryweb", nil, adm...).num(t, "app_id")
	dry := call(t, "PATCH", api+"/apps/dryweb/update?dry_run=true", map[string]any{"docker_image": "nginx:2"}, adm...)
	dry.expect(t, 200, map[string]any{"dry_run": true, "reports_complete": true})
	if fmt.Sprint(dry.body["device_groups"]) != "[map[device_group:edge devices:3]]" {
		t.Fatalf("dry run: %s", dry.raw)
	}
	if call(t, "GET", api+"/apps/dryweb", nil, adm...).num(t, "app_id") != before {
		t.Fatal("the dry run changed the app")
	}
}
