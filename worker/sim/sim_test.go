package sim_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/worker/sim"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
)

const token = "sim-admin-token"

func api(t testing.TB, method, url, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d", method, url, resp.StatusCode)
	}
}

func groupVersion(t testing.TB, url string) int64 {
	req, _ := http.NewRequest("GET", url+"/api/v2/device_groups/edge", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v int64
	fmt.Sscanf(resp.Header.Get("ETag"), `"%d"`, &v)
	return v
}

// fanout changes the app once all devices run the group's current
// version, and returns how long until 50%, 99% and 100% applied the new
// version.
func fanout(t testing.TB, devices int, managerProcess bool) [3]time.Duration {
	var m struct{ URL string }
	if managerProcess {
		// The manager in its own process: 10k devices hold 10k
		// connections, and each end needs a file descriptor.
		dir := t.TempDir()
		p := testenv.Start(t, []string{"AUTH_TOKEN=" + token}, "dev", "--data-dir", dir, "--listen", "127.0.0.1:0",
			"--kafka-listen", "127.0.0.1:0", "--worker=false")
		m.URL = p.WaitLine(t, regexp.MustCompile(`API on (http://\S+)/api/v2 `), 60*time.Second)[1]
		p.WaitLine(t, regexp.MustCompile(`nebula manager: ready`), 60*time.Second)
	} else {
		b := testenv.StartBroker(t, t.TempDir())
		m.URL = testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: token}).URL
	}
	api(t, "POST", m.URL+"/api/v2/apps/web", `{"docker_image": "nginx:1"}`)
	api(t, "POST", m.URL+"/api/v2/device_groups/edge", `{"apps": ["web"]}`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet := sim.Start(ctx, sim.Config{Devices: devices, Group: "edge", Manager: m.URL, Token: token, CheckIn: 30 * time.Second,
		StartSpread: 5 * time.Second})
	v0 := groupVersion(t, m.URL)
	for fleet.AtVersion(v0) < devices {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d devices at the first version", fleet.AtVersion(v0), devices)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // every device parked in its long-poll
	// The devices past the first version are counted from the moment the
	// call is made, while it is made: under the fan-out, the call's own
	// answer and the read of the new version come late (10,000 answers
	// go out at once), and counting only after them measured their
	// latency, not the devices'.
	var marks [3]time.Duration
	targets := []int{devices / 2, devices * 99 / 100, devices}
	counted := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(counted)
		for i := 0; i < 3 && ctx.Err() == nil; {
			n := fleet.AtVersion(v0 + 1) // versions are offsets: the next is higher
			for i < 3 && n >= targets[i] {
				marks[i] = time.Since(start)
				i++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	api(t, "PATCH", m.URL+"/api/v2/apps/web/update", `{"docker_image": "nginx:2"}`)
	answered := time.Since(start)
	v1 := groupVersion(t, m.URL)
	<-counted
	if n := fleet.AtVersion(v1); marks[2] == 0 || n < devices {
		t.Fatalf("%d of %d devices at the new version %d (versions %v)", n, devices, v1, fleet.Versions())
	}
	t.Logf("the call was answered after %v; devices: 50%% %v, 99%% %v, 100%% %v", answered, marks[0], marks[1], marks[2])
	cancel()
	fleet.Wait()
	return marks
}

// TestFanout: one API call reaches every simulated device (long-poll).
func TestFanout(t *testing.T) {
	marks := fanout(t, 300, false)
	t.Logf("300 devices: 50%% %v, 99%% %v, 100%% %v", marks[0], marks[1], marks[2])
	if marks[2] > 30*time.Second {
		t.Fatalf("fan-out to 300 devices took %v", marks[2])
	}
}

// BenchmarkFanout prints the time from one API call until 50%, 99% and
// 100% of 10,000 simulated devices applied the new version (long-poll;
// target: 99% within 2 s).
func BenchmarkFanout(b *testing.B) {
	for range b.N {
		marks := fanout(b, 10000, true)
		ms := make([]float64, 3)
		for i, m := range marks {
			ms[i] = float64(m.Milliseconds())
		}
		sort.Float64s(ms)
		b.ReportMetric(ms[0], "p50_ms")
		b.ReportMetric(ms[1], "p99_ms")
		b.ReportMetric(ms[2], "all_ms")
		benchrec.Record(b, "fanout", "10000 devices, long-poll, 1 manager", map[string]float64{"devices": 10000, "managers": 1, "p50_s": ms[0] / 1000, "p99_s": ms[1] / 1000, "all_s": ms[2] / 1000})
	}
}
