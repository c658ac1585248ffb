package manager_test

import (
	"context"
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
	r := call(t, "GET", api+"/reports?device_group=pyg&page_size=10", nil, adm...)
	data, _ := r.body["data"].([]any)
	if len(data) != 2 || !strings.Contains(string(r.raw), `"memory_bytes":1781760`) || strings.Contains(string(r.raw), "blkio_stats") {
		t.Fatalf("/reports of the 2.7 devices: %s", r.raw)
	}
}
