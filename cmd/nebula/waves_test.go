package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// TestSafeRolloutWithWorkers (issue 18): nebula dev and three real
// workers on the real engine, one labelled canary, on a group whose
// policy's first wave is the canary. A good version goes through both
// waves to completion; a version whose container exits and one whose
// healthcheck fails are each stopped in the first wave and reverted by the
// controller, and the other devices' containers are never replaced (they
// never ran them). nebula dev killed (kill -9) in the middle of a rollout
// and started again finishes it, each decision taken once.
func TestSafeRolloutWithWorkers(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:waves", true)
	group := fmt.Sprintf("waves%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, "nebula.device_group="+group)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	startDev := func() *testenv.Process {
		p := testenv.Start(t, nil, "dev", "--data-dir", dir, "--listen", listen, "--kafka-listen", "127.0.0.1:0", "--worker=false")
		p.WaitLine(t, devReady, 60*time.Second)
		return p
	}
	dev := startDev()
	api := "http://" + listen
	tok, _ := os.ReadFile(dir + "/admin-token")
	token := strings.TrimSpace(string(tok))
	call := func(method, path, body string, want int) string {
		t.Helper()
		code, out := devCall(t, method, api+"/api/v2"+path, token, body)
		if code != want {
			t.Fatalf("%s %s: %d %s", method, path, code, out)
		}
		return out
	}
	app := group + "-web"
	call("POST", "/apps/"+app, `{"docker_image": "`+image+`", "env_vars": {"V": "1"}}`, 200)
	// min_healthy_time: longer than Docker takes to mark the unhealthy
	// version so (a health check a second, on a machine busy with CI).
	call("POST", "/device_groups/"+group, `{"apps": ["`+app+`"], "rollout": {"waves": [1, 100], "min_healthy_time": "8s",
		"healthy_deadline": "3m", "max_failed_percent": 0, "canary_labels": {"ring": "canary"}}}`, 200)

	// Devices: the canary, and two whose place is past the first 1% for
	// every rollout this test starts (its offsets are below 100).
	ids := []string{"canary-device"}
	for i := 0; len(ids) < 3; i++ {
		id := fmt.Sprintf("device-%s-%d", group, i)
		ok := true
		for start := int64(0); start < 100 && ok; start++ {
			ok = projections.DevicePlace(group, start, id) >= 100
		}
		if ok {
			ids = append(ids, id)
		}
	}
	for i, id := range ids {
		state := t.TempDir()
		if err := os.WriteFile(filepath.Join(state, "device-id"), []byte(id+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		env := append(workerEnv(api, group, state), "NEBULA_MANAGER_AUTH_TOKEN="+token, fmt.Sprintf("NEBULA_CONTAINER_NAME_PREFIX=wv%d-", i),
			"NEBULA_REPORT_INTERVAL=1s", "NEBULA_MANAGER_CHECK_IN_TIME=2", "NEBULA_PULL=never")
		if i == 0 {
			env = append(env, "NEBULA_DEVICE_LABELS=ring=canary")
		}
		testenv.Start(t, env, "worker").WaitLine(t, workerStarted, 30*time.Second)
	}
	// container is the ID and environment of a device's app container.
	container := func(id string) (string, string) {
		out, _ := dockerOut("ps", "-q", "--no-trunc", "--filter", "label=nebula.device_id="+id, "--filter", "label=nebula.device_group="+group)
		if out == "" || strings.Contains(out, "\n") {
			return "", ""
		}
		env, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", out)
		return out, env
	}
	allAt := func(v string) func() bool {
		return func() bool {
			for _, id := range ids {
				if _, env := container(id); !strings.Contains(env, `"V=`+v+`"`) {
					return false
				}
			}
			return true
		}
	}
	testenv.WaitFor(t, "every device at V=1", 90*time.Second, allAt("1"))
	rollout := func() map[string]any {
		ro, _ := rolloutOf(t, api, token, group, "")["rollout"].(map[string]any)
		if ro == nil {
			t.Fatalf("no rollout in %v", rolloutOf(t, api, token, group, ""))
		}
		return ro
	}
	decisions := func() string {
		var out []string
		for _, d := range rollout()["decisions"].([]any) {
			dm := d.(map[string]any)
			s := dm["decision"].(string)
			if dm["revert"] == true {
				s += "+revert"
			}
			out = append(out, s)
		}
		return strings.Join(out, ",")
	}
	settled := func(state string) func() bool {
		return func() bool { return rollout()["state"] == state }
	}

	// A good version: the canary, then everyone.
	call("PATCH", "/apps/"+app+"/update", `{"env_vars": {"V": "2"}}`, 202)
	testenv.WaitFor(t, "the good version's rollout to complete", 3*time.Minute, settled(projections.RolloutCompleted))
	if got := decisions(); got != "start,promote,complete" {
		t.Fatalf("good version: decisions %s", got)
	}
	testenv.WaitFor(t, "every device at V=2", 60*time.Second, allAt("2"))
	before := map[string]string{}
	for _, id := range ids[1:] {
		before[id], _ = container(id)
	}

	// Two bad versions: stopped at the canary, reverted.
	for _, bad := range []struct{ name, env string }{
		{"a container that exits", `{"V": "3", "EXIT_AFTER": "1s"}`},
		{"a failing healthcheck", `{"V": "4", "UNHEALTHY_AFTER": "1s"}`},
	} {
		call("PATCH", "/apps/"+app+"/update", `{"env_vars": `+bad.env+`}`, 202)
		testenv.WaitFor(t, bad.name+": the revert", 3*time.Minute, settled(projections.RolloutReverted))
		if got := decisions(); got != "start,abort+revert" {
			t.Fatalf("%s: decisions %s", bad.name, got)
		}
		testenv.WaitFor(t, bad.name+": every device back at V=2", 90*time.Second, allAt("2"))
		for _, id := range ids[1:] {
			if now, _ := container(id); now != before[id] {
				t.Fatalf("%s: the container of %s (second wave) was replaced: it ran the bad version", bad.name, id)
			}
		}
	}

	// nebula dev killed mid-rollout: restarted, it finishes the rollout.
	call("PATCH", "/apps/"+app+"/update", `{"env_vars": {"V": "5"}}`, 202)
	testenv.WaitFor(t, "the canary at V=5", 90*time.Second, func() bool { _, env := container(ids[0]); return strings.Contains(env, `"V=5"`) })
	// Killed once the inventory has the canary converged on the target
	// (its report folded), before the promotion (3 s later).
	target := rollout()["target"].(float64)
	testenv.WaitFor(t, "the canary converged in the inventory", 60*time.Second, func() bool {
		_, body := devCall(t, "GET", api+"/api/v2/devices?device_group="+group+"&label=ring=canary", token, "")
		var page struct {
			Devices []struct {
				Converged float64 `json:"converged_version"`
			} `json:"devices"`
		}
		_ = json.Unmarshal([]byte(body), &page)
		return len(page.Devices) == 1 && page.Devices[0].Converged == target
	})
	if s := rollout()["state"]; s != projections.RolloutInProgress {
		t.Fatalf("the rollout is %v before the kill: the test proves nothing", s)
	}
	dev.Kill()
	startDev()
	for deadline := time.Now().Add(3 * time.Minute); !settled(projections.RolloutCompleted)(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			_, devs := devCall(t, "GET", api+"/api/v2/devices?device_group="+group, token, "")
			t.Fatalf("the rollout did not complete after the restart: %v\ndevices: %s", rollout(), devs)
		}
	}
	if got := decisions(); got != "start,promote,complete" {
		t.Fatalf("after the restart: decisions %s", got)
	}
	testenv.WaitFor(t, "every device at V=5", 90*time.Second, allAt("5"))
}
