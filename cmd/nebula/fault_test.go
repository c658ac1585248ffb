package main

import (
	"fmt"
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
)

var managerAPI = regexp.MustCompile(`API on (http://\S+)/api/v2 `)

func startManagerProcess(t *testing.T, kafka, dir string) (*testenv.Process, string) {
	t.Helper()
	p := testenv.Start(t, []string{"AUTH_TOKEN=" + testToken}, "manager", "--kafka-brokers", kafka, "--listen", "127.0.0.1:0", "--data-dir", dir)
	api := p.WaitLine(t, managerAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	return p, api
}

// TestManagerKilledDuringBurst: kill -9 of a manager while commands pour
// in: every acknowledged command is in the log and in every projection
// (the restarted manager's and a new one's), and nothing is half-applied.
func TestManagerKilledDuringBurst(t *testing.T) {
	kp := testenv.Start(t, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	kafka := kp.WaitLine(t, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
	dir := t.TempDir()
	p, api := startManagerProcess(t, kafka, dir)

	var mu sync.Mutex
	acked := map[string]bool{}
	var attempted []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("burst-%d-%d", w, i)
				mu.Lock()
				attempted = append(attempted, name)
				mu.Unlock()
				req, _ := http.NewRequest("POST", api+"/api/v2/apps/"+name, strings.NewReader(`{"docker_image": "nginx"}`))
				req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := client.Do(req)
				if err != nil {
					return // the manager is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	p.Kill()
	close(stop)
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d commands acknowledged before the kill", len(acked))
	}

	_, again := startManagerProcess(t, kafka, dir)         // same directory
	_, fresh := startManagerProcess(t, kafka, t.TempDir()) // rebuilt from the log
	var lists []string
	for _, url := range []string{again, fresh} {
		for _, name := range attempted {
			code, body := devCall(t, "GET", url+"/api/v2/apps/"+name, testToken, "")
			switch {
			case acked[name] && code != 200:
				t.Fatalf("acknowledged app %s missing on %s: %d %s", name, url, code, body)
			case code == 200 && !strings.Contains(body, `"docker_image":"nginx"`):
				t.Fatalf("app %s half-applied: %s", name, body)
			}
		}
		_, list := devCall(t, "GET", url+"/api/v2/apps", testToken, "")
		lists = append(lists, list)
	}
	if lists[0] != lists[1] {
		t.Fatalf("the restarted and the rebuilt manager disagree:\n%s\n%s", lists[0], lists[1])
	}
}

// TestWorkerKilledDuringRollingRestart: a worker killed (kill -9) in the
// middle of a rolling restart finishes the roll when it starts again.
func TestWorkerKilledDuringRollingRestart(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("roll%d", time.Now().UnixNano()%1_000_000)
	testenv.RemoveContainersLabelled(t, "nebula.device_group="+group)
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: testToken})
	app := group + "-web"
	apiCall(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+image+`", "containers_per": {"server": 3}, "rolling_restart": true, "env_vars": {"V": "1"}}`, 200)
	apiCall(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)
	dir := t.TempDir()
	w := testenv.Start(t, workerEnv(m.URL, group, dir), "worker")
	envOf := func(i int) string {
		out, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", fmt.Sprintf("%s-%d", app, i))
		return out
	}
	testenv.WaitFor(t, "3 containers at V=1", 60*time.Second, func() bool {
		return strings.Contains(envOf(1), "V=1") && strings.Contains(envOf(2), "V=1") && strings.Contains(envOf(3), "V=1")
	})
	apiCall(t, "PATCH", m.URL+"/api/v2/apps/"+app+"/update", `{"env_vars": {"V": "2"}}`, 202)
	// The roll replaces one container, then pauses 5 s: kill it there.
	testenv.WaitFor(t, "the roll to start", 30*time.Second, func() bool { return strings.Contains(envOf(1), "V=2") })
	w.Kill()
	if strings.Contains(envOf(3), "V=2") {
		t.Fatal("the roll finished before the kill: the test proves nothing")
	}
	testenv.Start(t, workerEnv(m.URL, group, dir), "worker")
	testenv.WaitFor(t, "the roll to finish after the restart", 90*time.Second, func() bool {
		return strings.Contains(envOf(1), "V=2") && strings.Contains(envOf(2), "V=2") && strings.Contains(envOf(3), "V=2")
	})
}

// TestNoSecretsInLogs: passwords and tokens sent to the manager (users
// created, wrong logins, token refreshes) never appear in its output.
func TestNoSecretsInLogs(t *testing.T) {
	dir := t.TempDir()
	p := testenv.Start(t, []string{"NEBULA_LOG_LEVEL=debug"}, "dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--worker=false")
	api := p.WaitLine(t, devAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	tok, _ := os.ReadFile(dir + "/admin-token")
	admin := strings.TrimSpace(string(tok))
	secret := "s3cret-password-do-not-log"
	token := "s3cret-token-do-not-log"
	if code, body := devCall(t, "POST", api+"/api/v2/users/alice", admin, `{"password": "`+secret+`", "token": "`+token+`"}`); code != 200 {
		t.Fatalf("create user: %d %s", code, body)
	}
	devCall(t, "GET", api+"/api/v2/apps", token, "")
	devCall(t, "GET", api+"/api/v2/apps", token+"-wrong", "")
	req, _ := http.NewRequest("GET", api+"/api/v2/apps", nil)
	req.SetBasicAuth("alice", secret+"-wrong")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	devCall(t, "POST", api+"/api/v2/users/alice/refresh", admin, "")
	time.Sleep(500 * time.Millisecond)
	out := p.Output()
	for _, s := range []string{secret, token, admin} {
		if strings.Contains(out, s) {
			t.Fatalf("a secret appears in the manager's output:\n%s", out)
		}
	}
	// The event log holds hashes only.
	kafka := regexp.MustCompile(`Kafka broker on (\S+) `).FindStringSubmatch(out)[1]
	export, err := exec.Command(testenv.Binary(t), "events", "export", "--kafka-brokers", kafka).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(export), secret) || strings.Contains(string(export), token) {
		t.Fatal("a secret is in the event log")
	}
}
