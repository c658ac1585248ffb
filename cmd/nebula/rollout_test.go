package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

func rolloutOf(t *testing.T, api, token, group, query string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", api+"/api/v2/device_groups/"+group+"/rollout?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m
}

// TestRolloutWithThreeWorkers: nebula dev (broker, manager, reporter) and
// three worker processes (three devices sharing this engine, their
// containers prefixed) on one group: the rollout converges, a change
// converges again at the new version, and a stopped device goes silent.
// The reports topic is not the default (KAFKA_TOPIC), and the third
// worker reports straight to Kafka as a 2.7 worker did.
func TestRolloutWithThreeWorkers(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("roll%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, "nebula.device_group="+group)
	dir := t.TempDir()
	const topic = "fleet-reports"
	p := testenv.Start(t, []string{"KAFKA_TOPIC=" + topic}, "dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--worker=false")
	kafka := p.WaitLine(t, devBroker, 60*time.Second)[1]
	api := p.WaitLine(t, devAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	tok, _ := os.ReadFile(dir + "/admin-token")
	token := strings.TrimSpace(string(tok))
	app := group + "-web"
	if code, body := devCall(t, "POST", api+"/api/v2/apps/"+app, token, `{"docker_image": "`+image+`"}`); code != 200 {
		t.Fatalf("create app: %d %s", code, body)
	}
	if code, body := devCall(t, "POST", api+"/api/v2/device_groups/"+group, token, `{"apps": ["`+app+`"]}`); code != 200 {
		t.Fatalf("create group: %d %s", code, body)
	}
	var workers []*testenv.Process
	for i := range 3 {
		env := workerEnv(api, group, t.TempDir())
		env = append(env, "NEBULA_MANAGER_AUTH_TOKEN="+token, fmt.Sprintf("NEBULA_CONTAINER_NAME_PREFIX=w%d-", i), "NEBULA_REPORT_INTERVAL=1s",
			"KAFKA_TOPIC="+topic)
		if i == 2 {
			env = append(env, "KAFKA_BOOTSTRAP_SERVERS="+kafka)
		}
		w := testenv.Start(t, env, "worker")
		if i == 2 {
			w.WaitLine(t, regexp.MustCompile(`reports go to Kafka at \[`+regexp.QuoteMeta(kafka)+`\] \(topic `+topic+`\)`), 30*time.Second)
		}
		w.WaitLine(t, workerStarted, 30*time.Second)
		workers = append(workers, w)
	}
	converged := func(n int, version float64) func() bool {
		return func() bool {
			r := rolloutOf(t, api, token, group, "silent_after=5s")
			return r["converged"] == float64(n) && (version < 0 || r["device_group_id"] == version)
		}
	}
	testenv.WaitFor(t, "3 devices converged", 90*time.Second, converged(3, -1))
	before := rolloutOf(t, api, token, group, "")["device_group_id"].(float64)

	if code, body := devCall(t, "PATCH", api+"/api/v2/apps/"+app+"/update", token, `{"env_vars": {"V": "2"}}`); code != 202 {
		t.Fatalf("update: %d %s", code, body)
	}
	after := rolloutOf(t, api, token, group, "")
	if v := after["device_group_id"].(float64); v <= before {
		t.Fatalf("group version %v did not rise from %v", v, before)
	}
	testenv.WaitFor(t, "3 devices converged at the new version", 90*time.Second, converged(3, after["device_group_id"].(float64)))
	for i := range 3 {
		env, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", fmt.Sprintf("w%d-%s-1", i, app))
		if !strings.Contains(env, "V=2") {
			t.Fatalf("device %d runs %s", i, env)
		}
	}

	workers[2].Stop(10 * time.Second)
	testenv.WaitFor(t, "the stopped device to go silent", 30*time.Second, func() bool {
		r := rolloutOf(t, api, token, group, "silent_after=3s")
		return r["silent"] == float64(1) && r["converged"] == float64(2)
	})
}
