package manager_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// TestRolloutAnswersDevicesByWave (issue 18): a device group with a rollout
// policy answers each device's poll with the version its wave allows: a
// change reaches the canaries (and the devices whose place is in the first
// wave) first, the other devices and 2.7 workers (no ID) keep the stable
// config, each answer with its own ETag; a promotion and a completion,
// folded from the log, bring the rest. A bad policy is a 400 naming the
// field; bad labels on a poll are a 400.
func TestRolloutAnswersDevicesByWave(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx:1"}).expect(t, http.StatusOK, nil)
	bad := call(t, "POST", api+"/device_groups/edge", `{"apps": ["web"], "rollout": {"waves": [50, 40]}}`)
	if bad.status != http.StatusBadRequest || !strings.Contains(string(bad.raw), "rollout.waves") {
		t.Fatalf("a bad policy: %d %s", bad.status, bad.raw)
	}
	// auto_promote false: the manager's controller must not promote (it
	// knows no device) while the test looks at the first wave.
	call(t, "POST", api+"/device_groups/edge", `{"apps": ["web"], "rollout": {"waves": [50, 100], "min_healthy_time": "1s",
		"healthy_deadline": "1m", "auto_promote": false, "canary_labels": {"ring": "canary"}}}`).expect(t, http.StatusOK, nil)
	if g := call(t, "GET", api+"/device_groups/edge", nil); !strings.Contains(string(g.raw), `"auto_revert":true`) || !strings.Contains(string(g.raw), `"max_silent_percent":25`) {
		t.Fatalf("the group's policy with its defaults: %s", g.raw)
	}
	v2 := call(t, "PUT", api+"/apps/web/update", map[string]any{"docker_image": "nginx:2"})
	v2.expect(t, http.StatusAccepted, nil)

	var later string // a device of the second wave
	poll := func(id, labels, inm string) response {
		t.Helper()
		h := []string{}
		if id != "" {
			h = append(h, events.DeviceIDHeader, id)
		}
		if labels != "" {
			h = append(h, events.DeviceLabelsHeader, labels)
		}
		if inm != "" {
			h = append(h, "If-None-Match", inm)
		}
		return call(t, "GET", api+"/device_groups/edge/info", nil, h...)
	}
	image := func(r response) string {
		t.Helper()
		apps, _ := r.body["apps"].([]any)
		if r.status != http.StatusOK || len(apps) != 1 {
			t.Fatalf("poll: %d %s", r.status, r.raw)
		}
		return apps[0].(map[string]any)["docker_image"].(string)
	}
	// The rollout started at the change's offset: find a device whose place
	// is in the second wave (50% and above).
	start := v2.num(t, "app_id")
	for i := 0; later == ""; i++ {
		if id := "device-" + strconv.Itoa(i); projections.DevicePlace("edge", start, id) >= 5000 {
			later = id
		}
	}
	if got := image(poll("canary-1", "ring=canary,site=berlin", "")); got != "nginx:2" {
		t.Fatalf("a canary got %s", got)
	}
	stable := poll(later, "", "")
	if got := image(stable); got != "nginx:1" {
		t.Fatalf("a device of the second wave got %s", got)
	}
	if got := image(poll("", "", "")); got != "nginx:1" {
		t.Fatalf("a 2.7 worker got %s", got)
	}
	if r := poll(later, "", stable.header.Get("ETag")); r.status != http.StatusNotModified {
		t.Fatalf("the stable answer's ETag again: %d %s", r.status, r.raw)
	}
	if r := poll("x", "no equals sign", ""); r.status != http.StatusBadRequest || !strings.Contains(string(r.raw), events.DeviceLabelsHeader) {
		t.Fatalf("bad labels: %d %s", r.status, r.raw)
	}

	// Decisions, as the controller appends them.
	ctx := testenv.Context(t, 30*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{c.addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, d := range []events.RolloutDecidedV{
		{Decision: events.DecisionPromote, Target: start, Wave: 0, Reason: "wave 1 healthy"},
		{Decision: events.DecisionComplete, Target: start, Wave: 1, Reason: "wave 2 healthy"},
	} {
		if _, err := l.Append(ctx, events.Envelope{Type: events.RolloutDecided, Aggregate: events.Aggregate{Kind: events.KindDeviceGroup, Name: "edge"},
			Actor: "rollout-controller", Time: time.Now().UTC(), Payload: d}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, "the second wave to get the new version", 30*time.Second, func() bool { return image(poll(later, "", "")) == "nginx:2" })
	testenv.WaitFor(t, "a 2.7 worker to get the new version at completion", 30*time.Second, func() bool { return image(poll("", "", "")) == "nginx:2" })
}
