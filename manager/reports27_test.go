package manager_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/reporter"
)

// Test27WorkerReports (issue 17): a report exactly as Nebula 2.7's worker
// sends it (captured: Docker stats per container, no device_id) is
// accepted over HTTP and straight into the reports topic (the 2.7
// worker's own path, with no key and no header), and the device shows up
// in /reports and /devices with the version its config had.
func Test27WorkerReports(t *testing.T) {
	raw, err := os.ReadFile("../events/testdata/reports/nebula-2.7-worker-report.json")
	if err != nil {
		t.Fatal(err)
	}
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "reports27-admin-token"})
	testmanager.StartReporter(t, b.Addr())
	api := m.URL + "/api/v2"
	adm := bearer("reports27-admin-token")
	for i := range 15 { // the group's version past the 14 the devices report
		call(t, "POST", api+fmt.Sprintf("/apps/app%d", i), map[string]any{"docker_image": "nginx"}, adm...).expect(t, 200, nil)
	}
	call(t, "POST", api+"/device_groups/pyg", map[string]any{}, adm...).expect(t, 200, nil)

	// Over HTTP, as our SDK-compatible clients send it.
	call(t, "POST", api+"/reports", string(raw), adm...).expect(t, http.StatusAccepted, map[string]any{"accepted": true})
	// Straight into the topic, as the 2.7 worker's Kafka producer does
	// (another hostname: another device).
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	other := strings.Replace(string(raw), `"hostname": "localhost"`, `"hostname": "edge-7"`, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: reporter.ReportsTopic, Value: []byte(other)}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{events.LegacyDeviceID("localhost"): false, events.LegacyDeviceID("edge-7"): false}
	testenv.WaitFor(t, "both 2.7 devices in /devices", 30*time.Second, func() bool {
		r := call(t, "GET", api+"/devices?device_group=pyg", nil, adm...)
		devs, _ := r.body["devices"].([]any)
		for _, d := range devs {
			d := d.(map[string]any)
			if _, ok := want[d["device_id"].(string)]; ok && d["applied_version"] == float64(14) {
				want[d["device_id"].(string)] = true
			}
		}
		return want[events.LegacyDeviceID("localhost")] && want[events.LegacyDeviceID("edge-7")]
	})
	// A rollout counts them: the version they applied (14) is behind the
	// group's (15), so they are pending until they apply it.
	call(t, "GET", api+"/device_groups/pyg/rollout", nil, adm...).expect(t, 200, map[string]any{"devices": 2, "pending": 2})
	r := call(t, "GET", api+"/reports?device_group=pyg&page_size=10", nil, adm...)
	data, _ := r.body["data"].([]any)
	if len(data) != 2 || !strings.Contains(string(r.raw), `"memory_bytes":1781760`) || strings.Contains(string(r.raw), "blkio_stats") {
		t.Fatalf("/reports of the 2.7 devices: %s", r.raw)
	}
}

// TestRefusedReportsAreVisible (issue 17): a report the manager refuses is
// counted by reason in /metrics, logged, and listed by GET
// /api/v2/reports/refused (admin), with the device it named.
func TestRefusedReportsAreVisible(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "refused-admin-token"})
	api := m.URL + "/api/v2"
	adm := bearer("refused-admin-token")
	call(t, "POST", api+"/device_groups/edge", map[string]any{}, adm...).expect(t, 200, nil)
	bad := `{"device_id": "device-00000001", "device_group": "edge", "hostname": "pi-1", "report_creation_time": 1764000000, "colour": "blue"}`
	for range 3 {
		call(t, "POST", api+"/reports", bad, adm...).expect(t, http.StatusBadRequest, nil)
	}
	r := call(t, "GET", api+"/reports/refused", nil, adm...)
	r.expect(t, http.StatusOK, map[string]any{"count_by_reason": map[string]any{"invalid": 3}})
	list, _ := r.body["refused"].([]any)
	if len(list) != 3 {
		t.Fatalf("refused: %s", r.raw)
	}
	first := list[0].(map[string]any)
	if first["reason"] != "invalid" || first["device_id"] != "device-00000001" || first["device_group"] != "edge" ||
		!strings.Contains(first["detail"].(string), "colour") {
		t.Fatalf("the refusal says %v", first)
	}
	metrics := call(t, "GET", m.URL+"/metrics", nil)
	if !strings.Contains(string(metrics.raw), `nebula_reports_refused_total{reason="invalid"} 3`) {
		t.Fatalf("/metrics: %s", metrics.raw)
	}
}

// TestPoisonedReportsAreVisible (issue 17): a report written straight to
// the reports topic that the reporter refuses (to the poison topic) is
// listed by GET /api/v2/reports/refused with the reporter's reason and the
// device, without a Kafka client.
func TestPoisonedReportsAreVisible(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "poison-admin-token"})
	testmanager.StartReporter(t, b.Addr())
	api := m.URL + "/api/v2"
	adm := bearer("poison-admin-token")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := `{"device_group": "edge", "hostname": "old-pi", "report_creation_time": 1764000000, "colour": "blue"}`
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: reporter.ReportsTopic, Value: []byte(bad)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the poisoned report listed", 30*time.Second, func() bool {
		r := call(t, "GET", api+"/reports/refused", nil, adm...)
		list, _ := r.body["poisoned"].([]any)
		if len(list) != 1 {
			return false
		}
		p := list[0].(map[string]any)
		return p["reason"] == "poisoned" && p["hostname"] == "old-pi" && strings.Contains(p["detail"].(string), "colour")
	})
}
