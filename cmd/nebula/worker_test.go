package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
)

const testToken = "worker-process-admin-token"

func apiCall(t testing.TB, method, url, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d", method, url, resp.StatusCode, want)
	}
}

// workerEnv is a 2.7 worker's environment: existing settings work as is.
func workerEnv(managerURL, group, dataDir string) []string {
	host, port, _ := strings.Cut(strings.TrimPrefix(managerURL, "http://"), ":")
	return []string{"DEVICE_GROUP=" + group, "NEBULA_MANAGER_HOST=" + host, "NEBULA_MANAGER_PORT=" + port,
		"NEBULA_MANAGER_PROTOCOL=http", "NEBULA_MANAGER_AUTH_TOKEN=" + testToken, "NEBULA_CONTAINER_NAME_PREFIX=", "NEBULA_REPORT_INTERVAL=30s", "NEBULA_MANAGER_CHECK_IN_TIME=5",
		"NEBULA_MANAGER_REQUEST_TIMEOUT=5", "MAX_RESTART_WAIT_IN_SECONDS=0", "REGISTRY_AUTH_USER=skip", "NEBULA_DATA_DIR=" + dataDir}
}

var workerStarted = regexp.MustCompile(`nebula worker: device (\S+) in group`)

// TestWorkerProcess: `nebula worker` configured with a 2.7 worker's
// variables runs the group's app, keeps its device ID across restarts,
// and leaves the app running on SIGTERM. Restarted as the agent's build
// (-tags agent: the worker alone), it is the same device and keeps the
// app as it is; that build has no other command.
func TestWorkerProcess(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("proc%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, "nebula.device_group="+group)
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: testToken})
	app := group + "-web"
	apiCall(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+image+`"}`, 200)
	apiCall(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)

	dir := t.TempDir()
	p := testenv.Start(t, workerEnv(m.URL, group, dir), "worker")
	id := p.WaitLine(t, workerStarted, 30*time.Second)[1]
	var cid string
	testenv.WaitFor(t, "the app to run", 60*time.Second, func() bool { cid = containerID(t, app+"-1"); return cid != "" })
	if !p.Stop(15 * time.Second) {
		t.Fatal("nebula worker did not stop on SIGTERM")
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("nebula worker exited %d", code)
	}
	if containerID(t, app+"-1") != cid {
		t.Fatal("the app did not outlive the worker")
	}
	agent := testenv.AgentBinary(t)
	p2 := testenv.StartProgram(t, agent, workerEnv(m.URL, group, dir), nil, "worker")
	if id2 := p2.WaitLine(t, workerStarted, 30*time.Second)[1]; id2 != id {
		t.Fatalf("device ID changed across a restart: %s -> %s", id, id2)
	}
	time.Sleep(2 * time.Second)
	if containerID(t, app+"-1") != cid {
		t.Fatal("a worker restart recreated the app")
	}
	// A change reaches the agent as it reached the worker.
	apiCall(t, "POST", m.URL+"/api/v2/apps/"+app+"/update", `{"docker_image": "`+image+`", "env_vars": {"AGENT": "1"}}`, 202)
	testenv.WaitFor(t, "the app recreated by the agent", 60*time.Second, func() bool {
		id := containerID(t, app+"-1")
		return id != "" && id != cid
	})

	// Bad settings: a clear error and exit code 2, from both builds.
	for _, bin := range []string{testenv.Binary(t), agent} {
		bad := exec.Command(bin, "worker")
		bad.Env = append(os.Environ(), "DEVICE_GROUP=", "NEBULA_MANAGER_HOST=")
		out, _ := bad.CombinedOutput()
		if bad.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "DEVICE_GROUP") {
			t.Fatalf("%s worker without settings: exit %d, %s", bin, bad.ProcessState.ExitCode(), out)
		}
	}
	// The agent's build has the worker alone.
	for _, args := range [][]string{{"manager"}, {"dev"}, {"apps", "list"}} {
		cmd := exec.Command(agent, args...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "unknown command") {
			t.Fatalf("agent %v: exit %d, %s", args, cmd.ProcessState.ExitCode(), out)
		}
	}
	if out, err := exec.Command(agent, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), "(agent)") {
		t.Fatalf("agent version: %v %s", err, out)
	}
}

// BenchmarkWorker prints the time from a config change (a device group
// of 10 apps x 2 containers created through the API) to all 20 containers
// running under `nebula worker`, next to the same 20 containers started
// with plain `docker run -d` in the same run (target: within 1.3x), and
// the worker's resident memory at rest (target: under 25 MB), as `nebula
// worker` and as the agent's build (-tags agent) on the same device.
func BenchmarkWorker(b *testing.B) {
	image := testenv.TestImage(b, "nebula-test/app:v1", false)
	for range b.N {
		group := fmt.Sprintf("bench%d", rand.N(1_000_000))
		testenv.RemoveContainersLabelled(b, "nebula.device_group="+group)
		testenv.RemoveContainersLabelled(b, "nebula.bench="+group)

		// Baseline: the same 20 containers (on the nebula network, then
		// connected to bridge, as Nebula's default networks say) with
		// plain docker run, all in parallel.
		_ = exec.Command("docker", "network", "create", "nebula").Run() // if no worker made it yet
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				name := fmt.Sprintf("%s-base-%d", group, i)
				out, err := exec.Command("docker", "run", "-d", "--label", "nebula.bench="+group, "--restart", "unless-stopped",
					"--network", "nebula", "--name", name, image).CombinedOutput()
				if err == nil {
					out, err = exec.Command("docker", "network", "connect", "bridge", name).CombinedOutput()
				}
				if err != nil {
					b.Errorf("docker run: %v %s", err, out)
				}
			})
		}
		wg.Wait()
		baseline := time.Since(start)

		br := testenv.StartBroker(b, b.TempDir())
		m := testmanager.Start(b, br.Addr(), b.TempDir(), manager.Auth{Enabled: true, Token: testToken})
		var apps []string
		for i := range 10 {
			name := fmt.Sprintf("%s-a%d", group, i)
			apps = append(apps, `"`+name+`"`)
			apiCall(b, "POST", m.URL+"/api/v2/apps/"+name, `{"docker_image": "`+image+`", "containers_per": {"server": 2}}`, 200)
		}
		dir := b.TempDir()
		p := testenv.Start(b, workerEnv(m.URL, group, dir), "worker")
		p.WaitLine(b, workerStarted, 30*time.Second)
		time.Sleep(time.Second) // the worker is polling for its group
		start = time.Now()
		apiCall(b, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": [`+strings.Join(apps, ",")+`]}`, 200)
		for {
			out, _ := exec.Command("docker", "ps", "-q", "--filter", "label=nebula.device_group="+group, "--filter", "status=running").Output()
			if len(strings.Fields(string(out))) == 20 {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatal("the 20 containers did not all run within 2 minutes")
			}
			time.Sleep(20 * time.Millisecond)
		}
		nebula := time.Since(start)

		time.Sleep(3 * time.Second) // at rest
		rssMB := testenv.ProcessUsage(b, p.Cmd.Process.Pid).RSS
		// The agent's build (-tags agent), restarted on the same device:
		// it finds the 20 containers as they should be.
		p.Stop(15 * time.Second)
		a := testenv.StartProgram(b, testenv.AgentBinary(b), workerEnv(m.URL, group, dir), nil, "worker")
		a.WaitLine(b, workerStarted, 30*time.Second)
		time.Sleep(5 * time.Second) // its first poll and reconcile, then at rest
		agentMB := testenv.ProcessUsage(b, a.Cmd.Process.Pid).RSS
		b.ReportMetric(agentMB, "agent_rss_MB")
		b.ReportMetric(baseline.Seconds(), "docker_run_20_s")
		b.ReportMetric(nebula.Seconds(), "worker_20_s")
		b.ReportMetric(nebula.Seconds()/baseline.Seconds(), "worker/docker_run")
		b.ReportMetric(rssMB, "worker_rss_MB")
		benchrec.Record(b, "worker", "20 containers (10 apps x 2)", map[string]float64{"docker_run_s": baseline.Seconds(), "worker_s": nebula.Seconds(),
			"worker_vs_docker_run": nebula.Seconds() / baseline.Seconds(), "worker_rss_mb": rssMB, "agent_rss_mb": agentMB})
	}
}
