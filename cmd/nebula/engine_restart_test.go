package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// engine is a Docker engine of the test's own, so that restarting it does
// not touch the machine's engine, which other tests and CI use: a second
// dockerd with its own socket, data and containerd, in a network
// namespace of its own (unshare --net). Without that namespace a second
// dockerd deleted the host's docker0, the machine engine's bridge.
type engine struct {
	t          *testing.T
	root, sock string
	cmd        *exec.Cmd
}

func (e *engine) docker(args ...string) (string, error) {
	out, err := exec.Command("docker", append([]string{"-H", "unix://" + e.sock}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (e *engine) start() {
	e.t.Helper()
	conf := filepath.Join(e.root, "daemon.json") // not the machine's /etc/docker/daemon.json
	if err := os.WriteFile(conf, []byte("{}\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.cmd = exec.Command("unshare", "--net", "--", "dockerd", "--config-file", conf, "--host", "unix://"+e.sock,
		"--data-root", filepath.Join(e.root, "data"), "--exec-root", filepath.Join(e.root, "exec"),
		"--pidfile", filepath.Join(e.root, "dockerd.pid"), "--iptables=false", "--ip6tables=false",
		"--default-address-pool", "base=10.213.0.0/16,size=24", "--storage-driver", "vfs", "--log-level", "error")
	log, err := os.OpenFile(filepath.Join(e.root, "dockerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	e.cmd.Stdout, e.cmd.Stderr = log, log
	if err := e.cmd.Start(); err != nil {
		e.t.Fatalf("start dockerd: %v", err)
	}
	for i := 0; ; i++ {
		if _, err := e.docker("info"); err == nil {
			return
		}
		if i == 300 {
			b, _ := os.ReadFile(filepath.Join(e.root, "dockerd.log"))
			e.t.Fatalf("the test's dockerd did not answer: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop stops the engine as a restart does (SIGTERM: it stops its
// containers and exits).
func (e *engine) stop() {
	e.t.Helper()
	_ = e.cmd.Process.Signal(syscall.SIGTERM) // unshare execs dockerd: this is dockerd
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
}

// TestDockerEngineRestart: the engine under a worker restarts (stopping
// every container). The worker rides it out (it keeps retrying), the
// engine brings the app back by its restart policy, the worker recreates
// nothing, and it applies the next change on the restarted engine.
func TestDockerEngineRestart(t *testing.T) {
	testenv.RequireDocker(t)
	for _, bin := range []string{"dockerd", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil || os.Geteuid() != 0 {
			testenv.SkipUnlessAvailable(t, "a second Docker engine needs %s and root (%v)", bin, err)
		}
	}
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	root, err := os.MkdirTemp("", "d2-") // short: containerd's socket lives under it
	if err != nil {
		t.Fatal(err)
	}
	hostBridge, hostBridgeErr := net.InterfaceByName("docker0")
	t.Cleanup(func() {
		// The machine's engine is untouched.
		if hostBridgeErr == nil {
			if now, err := net.InterfaceByName("docker0"); err != nil || now.Index != hostBridge.Index {
				t.Errorf("the machine engine's docker0 changed under the test's engine: %v", err)
			}
		}
	})
	e := &engine{t: t, root: root, sock: filepath.Join(root, "docker.sock")}
	e.start()
	t.Cleanup(func() {
		if ids, _ := e.docker("ps", "-aq"); ids != "" {
			_, _ = e.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		e.stop()
		_ = os.RemoveAll(root)
	})
	if out, err := exec.Command("sh", "-c", fmt.Sprintf("docker save %s | docker -H unix://%s load", image, e.sock)).CombinedOutput(); err != nil {
		t.Fatalf("load the test image into the test's engine: %v %s", err, out)
	}

	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: testToken})
	group := fmt.Sprintf("eng%d", rand.N(1_000_000))
	app := group + "-web"
	apiCall(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+image+`", "env_vars": {"V": "1"}}`, 200)
	apiCall(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)
	env := append(workerEnv(m.URL, group, t.TempDir()), "DOCKER_HOST=unix://"+e.sock, "NEBULA_MANAGER_CHECK_IN_TIME=2")
	w := testenv.Start(t, env, "worker")
	w.WaitLine(t, workerStarted, 30*time.Second)
	running := func() []string {
		out, err := e.docker("ps", "-q", "--no-trunc", "--filter", "label=app_name="+app, "--filter", "status=running")
		if err != nil {
			return nil
		}
		return strings.Fields(out)
	}
	testenv.WaitFor(t, "the app on the test's engine", 60*time.Second, func() bool { return len(running()) == 1 })
	before := running()[0]

	e.stop()
	if _, err := e.docker("info"); err == nil {
		t.Fatal("the test's engine still answers after it was stopped")
	}
	time.Sleep(3 * time.Second) // the worker meets a dead engine
	e.start()
	testenv.WaitFor(t, "the engine to bring the app back", 60*time.Second, func() bool { return len(running()) == 1 })
	time.Sleep(5 * time.Second) // a few polls of the worker on the restarted engine
	if ids := running(); len(ids) != 1 || ids[0] != before {
		all, _ := e.docker("ps", "-a", "--filter", "label=app_name="+app)
		t.Fatalf("after the restart: running %v (before: %s); all: %s", ids, before, all)
	}

	apiCall(t, "PATCH", m.URL+"/api/v2/apps/"+app+"/update", `{"env_vars": {"V": "2"}}`, 202)
	testenv.WaitFor(t, "the change applied on the restarted engine", 60*time.Second, func() bool {
		ids := running()
		if len(ids) != 1 {
			return false
		}
		out, _ := e.docker("inspect", "--format", "{{json .Config.Env}}", ids[0])
		return strings.Contains(out, `"V=2"`)
	})
	if w.Cmd.ProcessState != nil {
		t.Fatalf("the worker exited: %s", w.Output())
	}
}
