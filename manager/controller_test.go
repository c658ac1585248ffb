package manager_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// fakeDevice polls its group's config as a worker does (naming itself)
// and reports it applied, every app running, or failing when its image
// says "bad"; it remembers every image it was served.
type fakeDevice struct {
	id, labels string
	mu         sync.Mutex
	served     map[string]bool
}

func (d *fakeDevice) step(t *testing.T, api string) {
	h := []string{events.DeviceIDHeader, d.id}
	if d.labels != "" {
		h = append(h, events.DeviceLabelsHeader, d.labels)
	}
	r := call(t, "GET", api+"/device_groups/edge/info", nil, h...)
	if r.status != http.StatusOK {
		return
	}
	var info struct {
		Apps []struct {
			Name        string `json:"app_name"`
			Version     int64  `json:"app_id"`
			DockerImage string `json:"docker_image"`
		} `json:"apps"`
		Version int64 `json:"device_group_id"`
	}
	if err := json.Unmarshal(r.raw, &info); err != nil {
		t.Error(err)
		return
	}
	var statuses []events.AppStatus
	for _, a := range info.Apps {
		d.mu.Lock()
		d.served[a.DockerImage] = true
		d.mu.Unlock()
		st := events.AppStatus{Name: a.Name, Version: a.Version, Status: events.AppStatusRunning, Running: 1, Expected: 1}
		if strings.Contains(a.DockerImage, "bad") {
			st.Status, st.Running, st.Error = events.AppStatusExited, 0, "1 container(s) exited or restarting"
		}
		statuses = append(statuses, st)
	}
	rep := events.Report{DeviceID: d.id, DeviceGroup: "edge", Hostname: d.id, ReportCreationTime: time.Now().Unix(), AppliedVersion: info.Version,
		AppsStatus: statuses, Errors: []string{}, AppsContainers: []events.ContainerStatus{}, CronJobsContainers: []events.ContainerStatus{}}
	if l, err := events.ParseLabels(d.labels); err == nil && len(l) > 0 {
		rep.Labels = l
	}
	call(t, "POST", api+"/reports", rep)
}

func (d *fakeDevice) got(image string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.served[image]
}

// TestRolloutController (issue 18): the controller judges the active
// waves from the devices' reports. A good version goes through both
// waves to completion; a bad one (its containers exit) is stopped in the
// first wave and reverted by itself, and the devices of the second wave
// are never served it. Every step is a decision with its reason and
// counts in GET .../rollout, taken once though two managers judge.
func TestRolloutController(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{})
	// A second manager: both controllers judge the same rollouts, and
	// each decision is taken once.
	m2 := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{})
	testmanager.StartReporter(t, b.Addr())
	api := m.URL + "/api/v2"
	api2 := m2.URL + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "web:1"}).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/device_groups/edge", `{"apps": ["web"], "rollout": {"waves": [50, 100], "min_healthy_time": "1s",
		"healthy_deadline": "1m", "max_failed_percent": 0, "canary_labels": {"ring": "canary"}}}`).expect(t, http.StatusOK, nil)

	change := func(image string) int64 {
		t.Helper()
		r := call(t, "PUT", api+"/apps/web/update", map[string]any{"docker_image": image})
		r.expect(t, http.StatusAccepted, nil)
		return r.num(t, "app_id")
	}
	// Devices: a canary, and one device placed in the second wave of
	// both rollouts to come (the places depend on the rollout's start).
	start1 := int64(2) // after the app's and the group's creation
	// The bad change comes after the promotion and the completion, and
	// after the decisions the second controller loses (appended, refused):
	// the device is in the second wave whichever offset it lands at.
	const maxLost = 8
	secondWave := func(id string) bool {
		for start := start1; start <= start1+3+maxLost; start++ {
			if projections.DevicePlace("edge", start, id) < 5000 {
				return false
			}
		}
		return true
	}
	devices := []*fakeDevice{{id: "canary-1", labels: "ring=canary", served: map[string]bool{}}}
	for i := 0; len(devices) < 2; i++ {
		if id := "device-" + strconv.Itoa(i); secondWave(id) {
			devices = append(devices, &fakeDevice{id: id, served: map[string]bool{}})
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, d := range devices {
		wg.Go(func() {
			for ctx.Err() == nil {
				d.step(t, []string{api, api2}[i%2]) // one device on each manager
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	// The inventory knows both devices before the change (a wave is
	// judged on the devices known).
	testenv.WaitFor(t, "the devices in the inventory", 30*time.Second, func() bool {
		r := call(t, "GET", api+"/devices?device_group=edge", nil)
		devs, _ := r.body["devices"].([]any)
		return len(devs) == 2
	})
	if got := change("web:2"); got != start1 {
		t.Fatalf("the change is at offset %d, want %d", got, start1)
	}
	rollout := func() map[string]any {
		t.Helper()
		r := call(t, "GET", api+"/device_groups/edge/rollout", nil)
		ro, _ := r.body["rollout"].(map[string]any)
		if r.status != http.StatusOK || ro == nil {
			t.Fatalf("rollout: %d %s", r.status, r.raw)
		}
		return ro
	}
	decisions := func(ro map[string]any) string {
		var out []string
		for _, d := range ro["decisions"].([]any) {
			out = append(out, d.(map[string]any)["decision"].(string))
		}
		return strings.Join(out, ",")
	}

	// The good version: both waves, then complete.
	testenv.WaitFor(t, "the good rollout to complete", 60*time.Second, func() bool { return rollout()["state"] == projections.RolloutCompleted })
	ro := rollout()
	if got := decisions(ro); got != "start,promote,complete" {
		t.Fatalf("decisions %s: %v", got, ro)
	}
	for _, d := range devices {
		if !d.got("web:2") {
			t.Fatalf("%s was never served web:2", d.id)
		}
	}

	// A dry run of the next change says how many devices each wave takes:
	// the canary in the first, the other in the second.
	dry := call(t, "PUT", api+"/apps/web/update?dry_run=true", map[string]any{"docker_image": "web:bad"})
	if !strings.Contains(string(dry.raw), `"rollout_waves":[{"devices":1,"percent":50,"wave":1},{"devices":1,"percent":100,"wave":2}]`) {
		t.Fatalf("dry run: %s", dry.raw)
	}

	etag := func(d *fakeDevice) string {
		r := call(t, "GET", api+"/device_groups/edge/info", nil, append([]string{events.DeviceIDHeader, d.id}, labelHeader(d.labels)...)...)
		return r.header.Get("ETag")
	}
	secondWaveETag := etag(devices[1])

	// The bad version: the canary fails, the rollout aborts and reverts.
	if got := change("web:bad"); got > start1+3+maxLost {
		t.Fatalf("the bad change is at offset %d, past %d (the waves were chosen for those)", got, start1+3+maxLost)
	}
	testenv.WaitFor(t, "the bad rollout to be reverted", 60*time.Second, func() bool { return rollout()["state"] == projections.RolloutReverted })
	ro = rollout()
	last := ro["decisions"].([]any)[len(ro["decisions"].([]any))-1].(map[string]any)
	if decisions(ro) != "start,abort" || last["revert"] != true || !strings.Contains(last["reason"].(string), "failed") {
		t.Fatalf("the abort: %v", ro)
	}
	if !devices[0].got("web:bad") {
		t.Fatal("the canary was never served the bad version")
	}
	// Every device is served the stable version again.
	for _, d := range devices {
		testenv.WaitFor(t, d.id+" back on web:2", 30*time.Second, func() bool {
			r := call(t, "GET", api+"/device_groups/edge/info", nil, append([]string{events.DeviceIDHeader, d.id}, labelHeader(d.labels)...)...)
			return strings.Contains(string(r.raw), `"docker_image":"web:2"`)
		})
	}
	if devices[1].got("web:bad") {
		t.Fatal("a device of the second wave was served the bad version")
	}
	// The revert changes nothing for a device the rollout did not reach:
	// same answer, same ETag, nothing to fetch.
	if got := etag(devices[1]); got != secondWaveETag {
		t.Fatalf("the second wave's ETag went from %s to %s with the revert", secondWaveETag, got)
	}
	if canary := etag(devices[0]); canary == secondWaveETag || canary == "" {
		t.Fatalf("the canary's ETag after the revert: %s (the second wave's: %s)", canary, secondWaveETag)
	}
}

func labelHeader(labels string) []string {
	if labels == "" {
		return nil
	}
	return []string{events.DeviceLabelsHeader, labels}
}
