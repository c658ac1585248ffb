package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

func containerID(t *testing.T, name string) string {
	out, err := dockerOut("ps", "-q", "--no-trunc", "--filter", "name=^/"+name+"$", "--filter", "status=running")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDevRunsAnAppOnLocalDocker: the README's run command shows an app
// actually running: nebula dev's worker runs what the API says, the app
// outlives nebula dev, and a restart recreates nothing.
func TestDevRunsAnAppOnLocalDocker(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("devtest%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, "nebula.device_group="+group)
	dir := t.TempDir()
	start := func() devProcess {
		p := testenv.Start(t, nil, "dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--device-group", group)
		kafka := p.WaitLine(t, devBroker, 30*time.Second)[1]
		api := p.WaitLine(t, devAPI, 60*time.Second)[1]
		p.WaitLine(t, regexp.MustCompile(`nebula worker: device \S+ in group `+group), 60*time.Second)
		return devProcess{p, kafka, api}
	}
	d := start()
	tok, err := os.ReadFile(dir + "/admin-token")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	app := group + "-web"
	if code, body := devCall(t, "POST", d.api+"/api/v2/apps/"+app, token, `{"docker_image": "`+image+`", "env_vars": {"WHO": "dev"}}`); code != 200 {
		t.Fatalf("create app: %d %s", code, body)
	}
	if code, body := devCall(t, "POST", d.api+"/api/v2/device_groups/"+group, token, `{"apps": ["`+app+`"]}`); code != 200 {
		t.Fatalf("create group: %d %s", code, body)
	}
	var id string
	testenv.WaitFor(t, "the app's container to run", 60*time.Second, func() bool { id = containerID(t, app+"-1"); return id != "" })

	// Ctrl-C: nebula dev stops, the app keeps running.
	if err := d.p.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("nebula dev did not stop")
	}
	if containerID(t, app+"-1") != id {
		t.Fatal("the app's container did not outlive nebula dev")
	}

	// Restarted, nothing is recreated; a change is applied at once.
	d = start()
	time.Sleep(2 * time.Second)
	if got := containerID(t, app+"-1"); got != id {
		t.Fatalf("restart recreated the container (%s -> %s)", id, got)
	}
	if code, body := devCall(t, "PATCH", d.api+"/api/v2/apps/"+app+"/update", token, `{"env_vars": {"WHO": "changed"}}`); code != 202 {
		t.Fatalf("update app: %d %s", code, body)
	}
	testenv.WaitFor(t, "the changed app to be recreated", 60*time.Second, func() bool {
		got := containerID(t, app+"-1")
		if got == "" || got == id {
			return false
		}
		env, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", got)
		return strings.Contains(env, "WHO=changed")
	})
	if code, body := devCall(t, "DELETE", d.api+"/api/v2/apps/"+app, token, ""); code != 200 {
		t.Fatalf("delete app: %d %s", code, body)
	}
	testenv.WaitFor(t, "the deleted app's container to go", 60*time.Second, func() bool {
		out, _ := dockerOut("ps", "-aq", "--filter", "label=app_name="+app)
		return out == ""
	})
}

func dockerOut(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
