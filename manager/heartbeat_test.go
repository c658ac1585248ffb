package manager_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// TestHeartbeatEndToEnd: a device's heartbeat (nothing changed since its
// full report) goes through the API, the reports topic and the reporter
// to the inventory: its last seen moves, no report is kept for it; a
// heartbeat is checked as a report is (a bad one 400, another group's
// 403).
func TestHeartbeatEndToEnd(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "heartbeat-admin-token"})
	testmanager.StartReporter(t, b.Addr())
	api := m.URL + "/api/v2"
	adm := bearer("heartbeat-admin-token")
	call(t, "POST", api+"/device_groups/edge", map[string]any{}, adm...).expect(t, 200, nil)
	call(t, "POST", api+"/device_groups/other", map[string]any{}, adm...).expect(t, 200, nil)
	dev := call(t, "POST", api+"/users/edge-device", map[string]any{"password": "edge-device-pw"}, adm...)
	devTok := bearer(dev.body["token"].(string))
	call(t, "POST", api+"/user_groups/edge-devices", map[string]any{"group_members": []any{"edge-device"}, "device_groups": map[string]any{"edge": "ro"}}, adm...).expect(t, 200, nil)

	call(t, "POST", api+"/reports", deviceReport("device-hb000001", "edge", "host-hb", time.Now().Unix(), true), devTok...).expect(t, 202, nil)
	lastSeen := func() string {
		d := call(t, "GET", api+"/devices?device_group=edge", nil, adm...)
		devs, _ := d.body["devices"].([]any)
		if len(devs) != 1 {
			return ""
		}
		s, _ := devs[0].(map[string]any)["last_seen"].(string)
		return s
	}
	testenv.WaitFor(t, "the full report folded", 30*time.Second, func() bool { return lastSeen() != "" })
	first := lastSeen()
	time.Sleep(20 * time.Millisecond)

	hb := map[string]any{"heartbeat": true, "device_id": "device-hb000001", "device_group": "edge", "applied_version": -1}
	call(t, "POST", api+"/reports", hb, devTok...).expect(t, http.StatusAccepted, map[string]any{"accepted": true})
	testenv.WaitFor(t, "the heartbeat folded", 30*time.Second, func() bool { s := lastSeen(); return s != "" && s > first })
	if r := call(t, "GET", api+"/reports?page_size=100&device_group=edge", nil, adm...); strings.Count(string(r.raw), "device-hb000001") != 1 {
		t.Fatalf("reports kept after a heartbeat: %s", r.raw)
	}

	bad := map[string]any{"heartbeat": true, "device_id": "device-hb000001", "device_group": "edge"}
	call(t, "POST", api+"/reports", bad, devTok...).expect(t, http.StatusBadRequest, nil)
	other := map[string]any{"heartbeat": true, "device_id": "device-hb000002", "device_group": "other", "applied_version": 3}
	call(t, "POST", api+"/reports", other, devTok...).expect(t, http.StatusForbidden, map[string]any{"access_allowed": false})
}
