package sim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/worker/sim"
)

// getJSON reads an API answer.
func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}

// TestHeartbeats: devices (the real worker over an in-memory engine)
// whose state does not change send heartbeats between full reports: the
// manager keeps hearing from them (their last seen moves) while the
// reports it keeps stop growing; with heartbeats off (2.7's way), every
// report is a full one.
func TestHeartbeats(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: token})
	testmanager.StartReporter(t, b.Addr())
	api(t, "POST", m.URL+"/api/v2/apps/web", `{"docker_image": "nginx:1"}`)
	api(t, "POST", m.URL+"/api/v2/device_groups/edge", `{"apps": ["web"]}`)
	reportsKept := func() int {
		var r struct{ Data []any }
		getJSON(t, m.URL+"/api/v2/reports?page_size=1000&device_group=edge", &r)
		return len(r.Data)
	}
	lastSeen := func() (oldest time.Time, n int) {
		var d struct {
			Devices []struct {
				LastSeen time.Time `json:"last_seen"`
			}
		}
		getJSON(t, m.URL+"/api/v2/devices?device_group=edge", &d)
		for i, dev := range d.Devices {
			if i == 0 || dev.LastSeen.Before(oldest) {
				oldest = dev.LastSeen
			}
		}
		return oldest, len(d.Devices)
	}
	for _, c := range []struct {
		name      string
		fullEvery time.Duration
	}{{"heartbeats", time.Hour}, {"full reports only", 0}} {
		ctx, cancel := context.WithCancel(context.Background())
		fleet := sim.Start(ctx, sim.Config{Devices: 3, Group: "edge", Manager: m.URL, Token: token, CheckIn: 300 * time.Millisecond,
			ReportInterval: 300 * time.Millisecond, FullReportEvery: c.fullEvery})
		v := groupVersion(t, m.URL)
		testenv.WaitFor(t, c.name+": the devices at the group's version, and heard", 60*time.Second, func() bool {
			_, n := lastSeen()
			return fleet.AtVersion(v) == 3 && n == 3
		})
		time.Sleep(time.Second) // the reports of the change behind
		before, seenBefore := reportsKept(), time.Now()
		time.Sleep(3 * time.Second) // about 10 reports due per device
		testenv.WaitFor(t, c.name+": every device heard from after the wait", 30*time.Second, func() bool {
			oldest, _ := lastSeen()
			return oldest.After(seenBefore)
		})
		grew := reportsKept() - before
		t.Logf("%s: %d reports kept in 3 s from 3 devices checking in and reporting every 300 ms", c.name, grew)
		if c.fullEvery > 0 && grew > 3 || c.fullEvery == 0 && grew < 12 {
			t.Fatalf("%s: %d more reports kept in 3 s", c.name, grew)
		}
		cancel()
		fleet.Wait()
	}
}
