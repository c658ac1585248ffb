package main

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// TestManagerUnreachableForMinutes: the device's manager is gone for 70 s
// while a change is made through another manager. The app keeps running
// untouched the whole time; when the manager is back (same address, its
// projection kept), the device converges on the change (within its
// backoff, which has reached 64 s by then).
func TestManagerUnreachableForMinutes(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("out%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, "nebula.device_group="+group)
	kp := testenv.Start(t, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	kafka := kp.WaitLine(t, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
	addr := testenv.FreeAddr(t)
	dir := t.TempDir()
	startAt := func(listen, dataDir string) (*testenv.Process, string) {
		p := testenv.Start(t, []string{"AUTH_TOKEN=" + testToken}, "manager", "--kafka-brokers", kafka, "--listen", listen, "--data-dir", dataDir)
		api := p.WaitLine(t, managerAPI, 60*time.Second)[1]
		p.WaitLine(t, devReady, 60*time.Second)
		return p, api
	}
	m1, api1 := startAt(addr, dir)
	_, api2 := startAt("127.0.0.1:0", t.TempDir())
	app := group + "-web"
	apiCall(t, "POST", api1+"/api/v2/apps/"+app, `{"docker_image": "`+image+`", "env_vars": {"V": "1"}}`, 200)
	apiCall(t, "POST", api1+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)
	w := testenv.Start(t, append(workerEnv(api1, group, t.TempDir()), "NEBULA_MANAGER_CHECK_IN_TIME=2"), "worker")
	w.WaitLine(t, workerStarted, 30*time.Second)
	var cid string
	testenv.WaitFor(t, "the app to run", 60*time.Second, func() bool { cid = containerID(t, app+"-1"); return cid != "" })

	m1.Cmd.Process.Kill() // the device's manager is gone
	apiCall(t, "PATCH", api2+"/api/v2/apps/"+app+"/update", `{"env_vars": {"V": "2"}}`, 202)
	for end := time.Now().Add(70 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Second) {
		if got := containerID(t, app+"-1"); got != cid {
			t.Fatalf("the app changed while the manager was unreachable: %q, was %q", got, cid)
		}
	}
	if w.Cmd.ProcessState != nil {
		t.Fatalf("the worker exited during the outage: %s", w.Output())
	}

	startAt(addr, dir) // back, same address and projection
	back := time.Now()
	testenv.WaitFor(t, "the device to converge on the change", 120*time.Second, func() bool {
		env, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", app+"-1")
		return regexp.MustCompile(`"V=2"`).MatchString(env)
	})
	t.Logf("converged %v after the manager came back", time.Since(back).Round(time.Second))
}
