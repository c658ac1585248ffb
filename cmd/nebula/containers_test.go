package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

var (
	nebulaImageOnce sync.Once
	nebulaImageErr  error
)

// nebulaImage builds the nebula image (a static binary FROM scratch, run
// as user 65532) once per test process.
func nebulaImage(t *testing.T) string {
	t.Helper()
	testenv.RequireDocker(t)
	const tag = "nebula-test/nebula:dev"
	nebulaImageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nebula-image-")
		if err != nil {
			nebulaImageErr = err
			return
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "nebula"), ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			nebulaImageErr = fmt.Errorf("build: %v %s", err, out)
			return
		}
		// deploy/Dockerfile's final stage: a non-root user owning /data.
		df := "FROM scratch\nCOPY nebula /nebula\nCOPY --chown=65532:65532 data /data\nUSER 65532:65532\nENV NEBULA_DATA_DIR=/data\nENTRYPOINT [\"/nebula\"]\n"
		if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
			nebulaImageErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			nebulaImageErr = err
			return
		}
		if out, err := exec.Command("docker", "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
			nebulaImageErr = fmt.Errorf("docker build: %v %s", err, out)
		}
	})
	if nebulaImageErr != nil {
		t.Fatal(nebulaImageErr)
	}
	return tag
}

// TestContainers: broker, two managers, a reporter and three workers, each
// in a container of the nebula image on a private network the test
// creates: an app configured on one manager runs on the three devices,
// and the other manager sees the rollout converge.
func TestContainers(t *testing.T) {
	image := nebulaImage(t)
	app := testenv.TestImage(t, "nebula-test/app:v1", false)
	n := rand.N(200) + 20
	net := fmt.Sprintf("nebula-test-%d", n)
	subnet := fmt.Sprintf("172.29.%d", n)
	testenv.Docker(t, "network", "create", "--subnet", subnet+".0/24", "--label", "nebula.test=1", net)
	label := "nebula.test.net=" + net
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		_ = exec.Command("docker", "network", "rm", net).Run()
	})
	group := fmt.Sprintf("ctr%d", n)
	testenv.RemoveContainersLabelled(t, "nebula.device_group="+group)
	// The broker listens beyond loopback, so clients authenticate (the
	// same variables configure the broker's user and the clients).
	sasl := []string{"-e", "NEBULA_KAFKA_SASL_USER=nebula", "-e", "NEBULA_KAFKA_SASL_PASSWORD=containers-broker-password",
		"-e", "NEBULA_KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "-e", "NEBULA_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"}
	run := func(name, ip string, args ...string) {
		t.Helper()
		base := append([]string{"run", "-d", "--name", net + "-" + name, "--label", label, "--network", net, "--ip", ip}, sasl...)
		testenv.Docker(t, append(base, args...)...)
	}
	broker := subnet + ".10"
	run("kafka", broker, image, "kafka", "--listen", broker+":9092", "--data-dir", "/data")
	token := "containers-admin-token"
	for i, ip := range []string{subnet + ".11", subnet + ".12"} {
		run(fmt.Sprintf("manager%d", i+1), ip, "-e", "AUTH_TOKEN="+token, "-e", "NEBULA_RECORD_KEY_SEED="+testenv.RecordKeySeed(), image, "manager", "--kafka-brokers", broker+":9092",
			"--listen", ":80", "--data-dir", "/data")
	}
	run("reporter", subnet+".13", image, "reporter", "--kafka-brokers", broker+":9092")
	m1, m2 := "http://"+subnet+".11:80", "http://"+subnet+".12:80"
	testenv.WaitFor(t, "both managers", 90*time.Second, func() bool {
		c1, _ := devCall(t, "GET", m1+"/healthz", "", "")
		c2, _ := devCall(t, "GET", m2+"/healthz", "", "")
		return c1 == 200 && c2 == 200
	})
	name := group + "-web"
	if code, body := devCall(t, "POST", m1+"/api/v2/apps/"+name, token, `{"docker_image": "`+app+`"}`); code != 200 {
		t.Fatalf("create app: %d %s", code, body)
	}
	if code, body := devCall(t, "POST", m1+"/api/v2/device_groups/"+group, token, `{"apps": ["`+name+`"]}`); code != 200 {
		t.Fatalf("create group: %d %s", code, body)
	}
	// Not root: the image's user, with the socket's group for the workers.
	if user, _ := dockerOut("inspect", "--format", "{{.Config.User}}", image); strings.TrimSpace(user) != "65532:65532" {
		t.Fatalf("the nebula image runs as %q, want 65532:65532", user)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/var/run/docker.sock", &st); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		run(fmt.Sprintf("worker%d", i+1), fmt.Sprintf("%s.%d", subnet, 21+i), "-v", "/var/run/docker.sock:/var/run/docker.sock",
			"--group-add", fmt.Sprint(st.Gid),
			"-e", "DEVICE_GROUP="+group, "-e", "NEBULA_MANAGER_HOST="+subnet+".11", "-e", "NEBULA_MANAGER_AUTH_TOKEN="+token,
			"-e", fmt.Sprintf("NEBULA_CONTAINER_NAME_PREFIX=d%d-", i+1), "-e", "NEBULA_REPORT_INTERVAL=1s", "-e", "NEBULA_DATA_DIR=/data",
			image, "worker")
	}
	testenv.WaitFor(t, "the app on the three devices", 120*time.Second, func() bool {
		for i := 1; i <= 3; i++ {
			if containerID(t, fmt.Sprintf("d%d-%s-1", i, name)) == "" {
				return false
			}
		}
		return true
	})
	testenv.WaitFor(t, "manager 2 to see the rollout converge", 60*time.Second, func() bool {
		_, body := devCall(t, "GET", m2+"/api/v2/device_groups/"+group+"/rollout", token, "")
		return strings.Contains(body, `"converged":3`)
	})
}
