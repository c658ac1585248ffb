package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/worker"
	"github.com/nebula-orchestrator/nebula-go/worker/dockerengine"
)

type inspected struct {
	ID     string
	Name   string
	Image  string
	Config struct {
		Env    []string
		Labels map[string]string
	}
	HostConfig struct {
		PortBindings  map[string][]struct{ HostPort string }
		RestartPolicy struct{ Name string }
		Binds         []string
		Privileged    bool
		Devices       []struct{ PathOnHost, PathInContainer, CgroupPermissions string }
		NetworkMode   string
	}
	NetworkSettings struct {
		Networks map[string]any
	}
	State struct{ Running bool }
}

func inspect(t *testing.T, name string) inspected {
	t.Helper()
	var out []inspected
	if err := json.Unmarshal([]byte(testenv.Docker(t, "inspect", name)), &out); err != nil || len(out) != 1 {
		t.Fatalf("docker inspect %s: %v", name, err)
	}
	return out[0]
}

func newAgent(t *testing.T, group, dir string) (*worker.Agent, *dockerengine.Engine) {
	t.Helper()
	e, err := dockerengine.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	e.StopTimeout = 1
	return worker.NewAgent(worker.Config{Group: group, StateDir: dir, Host: worker.Host{CPUs: 2, MemoryMB: 1024},
		CheckIn: time.Second, RequestTimeout: time.Second}, e), e
}

// TestReconcileAgainstDocker drives the agent's reconcile with configs
// against the real engine and checks what `docker inspect` says.
func TestReconcileAgainstDocker(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("test%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := group + "-web"
	port := 20000 + rand.N(20000)
	app := worker.App{Name: name, Version: 5, AppSpec: events.NewAppSpec(image)}
	app.ContainersPer = events.ContainersPer{Kind: events.PerServer, Value: 2}
	app.StartingPorts = []events.PortSpec{{Map: []events.PortPair{{Host: port, Container: 80}}}}
	app.EnvVars = map[string]string{"MODE": "test"}
	app.Volumes = []string{group + "-data:/data:ro"}
	app.Devices = []string{"/dev/null:/dev/nebula-null:rw"}
	info := worker.Info{Apps: []worker.App{app}, DeviceGroupID: 5, PruneID: 1}

	agent, _ := newAgent(t, group, dir)
	agent.Reconcile(ctx, info)
	ids := map[string]string{}
	for i := 1; i <= 2; i++ {
		c := inspect(t, fmt.Sprintf("%s-%d", name, i))
		ids[strings.TrimPrefix(c.Name, "/")] = c.ID
		if !c.State.Running {
			t.Fatalf("%s not running", c.Name)
		}
		if b := c.HostConfig.PortBindings["80/tcp"]; len(b) != 1 || b[0].HostPort != fmt.Sprint(port+i-1) {
			t.Fatalf("%s port bindings %+v, want %d->80", c.Name, c.HostConfig.PortBindings, port+i-1)
		}
		if !contains(c.Config.Env, "MODE=test") {
			t.Fatalf("%s env %v", c.Name, c.Config.Env)
		}
		if c.HostConfig.RestartPolicy.Name != "unless-stopped" {
			t.Fatalf("%s restart policy %q", c.Name, c.HostConfig.RestartPolicy.Name)
		}
		if len(c.HostConfig.Binds) != 1 || c.HostConfig.Binds[0] != group+"-data:/data:ro" {
			t.Fatalf("%s binds %v", c.Name, c.HostConfig.Binds)
		}
		if d := c.HostConfig.Devices; len(d) != 1 || d[0].PathOnHost != "/dev/null" || d[0].PathInContainer != "/dev/nebula-null" || d[0].CgroupPermissions != "rw" {
			t.Fatalf("%s devices %+v", c.Name, d)
		}
		if _, ok := c.NetworkSettings.Networks["nebula"]; !ok {
			t.Fatalf("%s networks %v, want nebula", c.Name, c.NetworkSettings.Networks)
		}
		if _, ok := c.NetworkSettings.Networks["bridge"]; !ok {
			t.Fatalf("%s networks %v, want bridge too", c.Name, c.NetworkSettings.Networks)
		}
		for k, v := range map[string]string{"orchestrator": "nebula", "app_name": name, "container_type": "app", worker.LabelDeviceGroup: group, worker.LabelAppVersion: "5"} {
			if c.Config.Labels[k] != v {
				t.Fatalf("%s label %s=%q, want %q", c.Name, k, c.Config.Labels[k], v)
			}
		}
	}
	t.Cleanup(func() { _ = exec.Command("docker", "volume", "rm", "-f", group+"-data").Run() })

	// A new agent on the same state (a worker restart) recreates nothing.
	agent2, _ := newAgent(t, group, dir)
	agent2.Reconcile(ctx, info)
	for n, id := range ids {
		if got := inspect(t, n).ID; got != id {
			t.Fatalf("worker restart recreated %s", n)
		}
	}
	// Nor does a new agent that lost its state (it adopts what matches).
	agent3, _ := newAgent(t, group, t.TempDir())
	agent3.Reconcile(ctx, info)
	for n, id := range ids {
		if got := inspect(t, n).ID; got != id {
			t.Fatalf("a worker without state recreated %s", n)
		}
	}

	// A changed env var replaces the containers.
	app.Version, app.EnvVars = 7, map[string]string{"MODE": "changed"}
	info.Apps = []worker.App{app}
	agent2.Reconcile(ctx, info)
	c := inspect(t, name+"-1")
	if c.ID == ids[name+"-1"] || !contains(c.Config.Env, "MODE=changed") {
		t.Fatalf("env change: container %s env %v", c.ID, c.Config.Env)
	}
	changedID := c.ID

	// An image that cannot be pulled (registry down) leaves the app up.
	app.Version, app.DockerImage = 8, "127.0.0.1:1/nope/app:1"
	info.Apps = []worker.App{app}
	agent2.Reconcile(ctx, info)
	if c := inspect(t, name+"-1"); c.ID != changedID || !c.State.Running {
		t.Fatalf("a failed pull touched the running container: %+v", c.State)
	}

	// Removed from the group: the containers go.
	info.Apps = nil
	agent2.Reconcile(ctx, info)
	if out := testenv.Docker(t, "ps", "-aq", "--filter", "label=app_name="+name); out != "" {
		t.Fatalf("containers left after the app left the group: %s", out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dockerOut(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
