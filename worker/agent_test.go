package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/reporter"
	"github.com/nebula-orchestrator/nebula-go/worker"
	"github.com/nebula-orchestrator/nebula-go/worker/dockerengine"
)

const adminToken = "worker-test-admin-token"

func api(t *testing.T, method, url, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d", method, url, resp.StatusCode, want)
	}
}

func startedAt(t *testing.T, name string) string {
	t.Helper()
	out, err := dockerOut("inspect", "--format", "{{.State.StartedAt}} {{.State.Running}}", name)
	if err != nil {
		return ""
	}
	return out
}

// inFront puts a server in front of the manager at target: intercept sees
// every request first and answers it itself (true) or lets the manager
// answer (false).
func inFront(t *testing.T, target string, intercept func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !intercept(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	return front
}

func runAgent(t *testing.T, cfg worker.Config, pruneLabel ...string) context.CancelFunc {
	t.Helper()
	e, err := dockerengine.New()
	if err != nil {
		t.Fatal(err)
	}
	e.StopTimeout = 1
	// Prune only what the test says: other tests share the engine.
	e.PruneLabel = "nebula.test.never=pruned"
	if len(pruneLabel) > 0 {
		e.PruneLabel = pruneLabel[0]
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = worker.NewAgent(cfg, e).Run(ctx); e.Close(); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// TestAgentAgainstManagerAndDocker: a worker polling a real manager runs
// the app, restarts it when its healthcheck fails, leaves it running when
// it stops, and after a "reboot" with no manager brings it back from the
// config it saved.
func TestAgentAgainstManagerAndDocker(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:health", true)
	group := fmt.Sprintf("agent%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
	app := group + "-web"
	api(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+image+`", "env_vars": {"UNHEALTHY_AFTER": "4s"}}`, 200)
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)

	stateDir := t.TempDir()
	cfg := worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 5 * time.Second, RequestTimeout: 5 * time.Second,
		StateDir: stateDir, Host: worker.Host{CPUs: 1, MemoryMB: 512}}
	stop := runAgent(t, cfg)
	container := app + "-1"
	var first string
	testenv.WaitFor(t, "the app to run", 60*time.Second, func() bool { first = startedAt(t, container); return first != "" })

	// Unhealthy after 4 s: restarted by the worker (the events stream).
	testenv.WaitFor(t, "the unhealthy container to be restarted", 60*time.Second, func() bool {
		s := startedAt(t, container)
		return s != "" && s != first
	})

	// The worker stops; the app keeps running.
	stop()
	if s := startedAt(t, container); s == "" || s[len(s)-4:] != "true" {
		t.Fatalf("app container after the worker stopped: %q", s)
	}

	// A "reboot" that lost the containers, with the manager down: the
	// worker brings them back from its saved config.
	m.Stop()
	testenv.Docker(t, "rm", "-f", container)
	runAgent(t, cfg)
	testenv.WaitFor(t, "the app to come back from the saved config", 60*time.Second, func() bool { return startedAt(t, container) != "" })
}

// groupOfOneApp starts a manager (on its own broker) with a device group
// named prefix<random> of one app, <group>-web, on the test image.
func groupOfOneApp(t *testing.T, prefix string) (m testmanager.Manager, group, app string) {
	t.Helper()
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group = fmt.Sprintf("%s%d", prefix, rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	b := testenv.StartBroker(t, t.TempDir())
	m = testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
	app = group + "-web"
	api(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+image+`"}`, 200)
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)
	return m, group, app
}

// TestCorruptStateIsSetAside: a state file a disk fault left unreadable
// does not keep the worker from starting: it is moved aside, kept, and the
// worker runs its group's config (and saves a new state).
func TestCorruptStateIsSetAside(t *testing.T) {
	m, group, app := groupOfOneApp(t, "state")

	stateDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(stateDir, "state.json"), []byte("{\"device_group\": \"x\", \x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	runAgent(t, worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 2 * time.Second, RequestTimeout: 5 * time.Second,
		StateDir: stateDir, Host: worker.Host{CPUs: 1, MemoryMB: 512}})
	testenv.WaitFor(t, "the app to run", 60*time.Second, func() bool { return startedAt(t, app+"-1") != "" })
	if aside, _ := filepath.Glob(filepath.Join(stateDir, "state.json.corrupt-*")); len(aside) != 1 {
		t.Fatalf("the corrupt state was not kept aside: %v", aside)
	}
	testenv.WaitFor(t, "a new state to be saved", 30*time.Second, func() bool {
		st, err := worker.LoadState(stateDir)
		return err == nil && st.Group == group
	})
}

// TestManagerCatchingUpIsWaitedForBriefly: a manager that answers 503 (as
// one catching up with its event log does, for seconds after a restart or
// during a rebuild) is asked again within the check-in time, not after the
// growing backoff meant for a manager that cannot be reached.
func TestManagerCatchingUpIsWaitedForBriefly(t *testing.T) {
	m, group, app := groupOfOneApp(t, "catch")

	// The real manager behind a switch that answers as it does while it
	// catches up.
	var catchingUp atomic.Bool
	catchingUp.Store(true)
	front := inFront(t, m.URL, func(w http.ResponseWriter, r *http.Request) bool {
		if catchingUp.Load() {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"message": "the manager is catching up with the event log; retry"}`)
		}
		return catchingUp.Load()
	})
	checkIn := time.Second
	runAgent(t, worker.Config{Group: group, Manager: front.URL, Token: adminToken, CheckIn: checkIn, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}})
	time.Sleep(10 * time.Second) // unreachable-manager backoff would be at 8 s by now
	catchingUp.Store(false)
	served := time.Now()
	testenv.WaitFor(t, "the app to run", 30*time.Second, func() bool { return startedAt(t, app+"-1") != "" })
	if took := time.Since(served); took > 3*checkIn {
		t.Fatalf("the app ran %v after the manager served again (check-in %v)", took.Round(time.Millisecond), checkIn)
	}
}

// TestGroupCreatedLater: a device installed before its group exists (as
// fleets are provisioned) says so once, not at every check-in, runs the
// group's apps as soon as the group is created, and says that too.
func TestGroupCreatedLater(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("later%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
	app := group + "-web"
	api(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+image+`"}`, 200)

	var polls atomic.Int64
	front := inFront(t, m.URL, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/info") {
			polls.Add(1)
		}
		return false
	})
	var logs testenv.LogBuffer
	runAgent(t, worker.Config{Group: group, Manager: front.URL, Token: adminToken, CheckIn: 100 * time.Millisecond, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	testenv.WaitFor(t, "several check-ins", 30*time.Second, func() bool { return polls.Load() >= 5 })
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)
	testenv.WaitFor(t, "the app to run", 30*time.Second, func() bool { return startedAt(t, app+"-1") != "" })
	out := logs.String()
	if n := strings.Count(out, "does not exist (yet)"); n != 1 || !strings.Contains(out, "POST "+front.URL+"/api/v2/device_groups/"+group) {
		t.Fatalf("the missing group was logged %d times (want once, with how to create it):\n%s", n, out)
	}
	if !strings.Contains(out, "the device group exists now") {
		t.Fatalf("the group's creation was not logged:\n%s", out)
	}
}

// TestPullPolicy: with --pull missing, an image loaded by hand (in no
// registry) runs and a change is applied without a pull, where the
// default pulls at the change and logs the failure; with --pull never, a
// missing image is reported as such, not pulled.
func TestPullPolicy(t *testing.T) {
	for _, policy := range []worker.PullPolicy{worker.PullAlways, worker.PullMissing} {
		t.Run(string(policy), func(t *testing.T) {
			m, group, app := groupOfOneApp(t, "pull"+string(policy))
			var logs testenv.LogBuffer
			runAgent(t, worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 2 * time.Second, RequestTimeout: 5 * time.Second,
				StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}, Pull: policy, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			testenv.WaitFor(t, "the app to run", 30*time.Second, func() bool { return startedAt(t, app+"-1") != "" })
			api(t, "PATCH", m.URL+"/api/v2/apps/"+app+"/update", `{"env_vars": {"CHANGED": "yes"}}`, 202)
			testenv.WaitFor(t, "the change to be applied", 30*time.Second, func() bool {
				env, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", app+"-1")
				return strings.Contains(env, "CHANGED=yes")
			})
			pulled := strings.Contains(logs.String(), "image pull failed")
			if pulled != (policy == worker.PullAlways) {
				t.Fatalf("policy %s: a pull was tried: %v\n%s", policy, pulled, logs.String())
			}
		})
	}
	t.Run("never", func(t *testing.T) {
		group := fmt.Sprintf("pullnever%d", rand.N(1_000_000))
		b := testenv.StartBroker(t, t.TempDir())
		m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
		testmanager.StartReporter(t, b.Addr())
		api(t, "POST", m.URL+"/api/v2/apps/"+group+"-web", `{"docker_image": "nebula-test/not-loaded:v1"}`, 200)
		api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+group+`-web"]}`, 200)
		var logs testenv.LogBuffer
		runAgent(t, worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 2 * time.Second, RequestTimeout: 5 * time.Second,
			StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}, DeviceID: "device-" + group, ReportInterval: time.Second,
			Pull: worker.PullNever, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		testenv.WaitFor(t, "a report saying the image is not loaded", 30*time.Second, func() bool {
			for _, r := range reportsOf(m, group) {
				if len(r.AppsStatus) == 1 && r.AppsStatus[0].Status == events.AppStatusPullFailed {
					return strings.Contains(r.AppsStatus[0].Error, "does not pull images")
				}
			}
			return false
		})
		if strings.Contains(logs.String(), "image pull failed") {
			t.Fatalf("a pull was tried:\n%s", logs.String())
		}
	})
}

// TestManagerFailingIsLoggedOnce: a manager answering errors is logged
// when the polls start failing and when it answers again, not at every
// failed poll.
func TestManagerFailingIsLoggedOnce(t *testing.T) {
	m, group, app := groupOfOneApp(t, "failing")
	var failing atomic.Bool
	var failed atomic.Int64
	failing.Store(true)
	front := inFront(t, m.URL, func(w http.ResponseWriter, r *http.Request) bool {
		if !failing.Load() {
			return false
		}
		failed.Add(1)
		http.Error(w, `{"message": "internal error"}`, http.StatusInternalServerError)
		return true
	})
	var logs testenv.LogBuffer
	runAgent(t, worker.Config{Group: group, Manager: front.URL, Token: adminToken, CheckIn: time.Second, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	testenv.WaitFor(t, "three failed polls", 30*time.Second, func() bool { return failed.Load() >= 3 })
	failing.Store(false)
	testenv.WaitFor(t, "the app to run", 30*time.Second, func() bool { return startedAt(t, app+"-1") != "" })
	out := logs.String()
	if n := strings.Count(out, "cannot get the config"); n != 1 || !strings.Contains(out, "the manager answers again") {
		t.Fatalf("the failing manager was logged %d times (want once, and its return):\n%s", n, out)
	}
}

// TestLongCheckInLongPolls: a check-in time longer than a manager holds a
// long-poll (edge devices on metered links set minutes) still long-polls:
// the config comes at once, and a change within seconds.
func TestLongCheckInLongPolls(t *testing.T) {
	m, group, app := groupOfOneApp(t, "long")
	runAgent(t, worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 5 * time.Minute, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}})
	container := app + "-1"
	testenv.WaitFor(t, "the app to run", 30*time.Second, func() bool { return startedAt(t, container) != "" })
	api(t, "PATCH", m.URL+"/api/v2/apps/"+app+"/update", `{"env_vars": {"CHANGED": "yes"}}`, 202)
	testenv.WaitFor(t, "the change to be applied", 30*time.Second, func() bool {
		env, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", container)
		return strings.Contains(env, "CHANGED=yes")
	})
}

// TestCronJobRunsOnSchedule: a cron job of the group runs at the next
// minute, in its own container with Nebula's labels and no restart
// policy; when it leaves the group, its runs go.
func TestCronJobRunsOnSchedule(t *testing.T) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("cron%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
	job := group + "-job"
	api(t, "POST", m.URL+"/api/v2/cron_jobs/"+job, `{"docker_image": "`+image+`", "schedule": "* * * * *", "env_vars": {"RUN": "cron"}}`, 200)
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"cron_jobs": ["`+job+`"]}`, 200)
	runAgent(t, worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 5 * time.Second, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}})
	// A run listed may be gone by the time it is inspected (a start the
	// engine refused is cleaned up, and the next minute brings another):
	// inspect one that is there.
	var name, policy string
	testenv.WaitFor(t, "the cron job to run (at the next minute)", 75*time.Second, func() bool {
		runs, _ := dockerOut("ps", "-a", "--filter", "label=cron_job_name="+job, "--format", "{{.Names}}")
		for _, n := range strings.Fields(runs) {
			out, err := dockerOut("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}} {{index .Config.Labels \"container_type\"}}", n)
			if err == nil {
				name, policy = n, out
				return true
			}
		}
		return false
	})
	if policy != "no cron_job" {
		t.Fatalf("cron run %s: restart policy and type %q", name, policy)
	}
	// Out of the group: its runs are removed.
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group+"/update", `{}`, 202)
	testenv.WaitFor(t, "the runs of a job that left the group to go", 30*time.Second, func() bool {
		out, _ := dockerOut("ps", "-aq", "--filter", "label=cron_job_name="+job)
		return out == ""
	})
}

// TestPruneRemovesUnusedImages: a prune of the group removes images no
// container uses.
func TestPruneRemovesUnusedImages(t *testing.T) {
	group := fmt.Sprintf("prune%d", rand.N(1_000_000))
	t.Cleanup(func() { _, _ = dockerOut("rmi", "-f", "nebula-test/used:"+group) }) // runs after the containers are gone
	var image string
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	// Another image, used by no container, labelled for this test only.
	pruneLabel := fmt.Sprintf("nebula.test.prune=%s", group)
	unused := testenv.TestImage(t, fmt.Sprintf("nebula-test/unused:%d", rand.N(1_000_000)), false, pruneLabel)
	// The image the app uses carries the label too: a prune must keep it.
	image = testenv.TestImage(t, "nebula-test/used:"+group, false, pruneLabel)
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
	app := group + "-web"
	api(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+image+`"}`, 200)
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)
	runAgent(t, worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 5 * time.Second, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}}, pruneLabel)
	testenv.WaitFor(t, "the app to run", 60*time.Second, func() bool { return startedAt(t, app+"-1") != "" })
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group+"/prune", ``, 202)
	testenv.WaitFor(t, "the unused tag to be pruned", 30*time.Second, func() bool {
		_, err := dockerOut("image", "inspect", unused)
		return err != nil
	})
	if _, err := dockerOut("image", "inspect", image); err != nil {
		t.Fatal("prune removed the image a running container uses")
	}
}

func imageOf(t *testing.T, container string) string {
	out, err := dockerOut("inspect", "--format", "{{.Image}}", container)
	if err != nil {
		return ""
	}
	return out
}

// TestRegistryPullAuthRepushAndOutage: the worker pulls from a registry
// with credentials, recreates the app when the same tag is pushed again
// with another image, keeps the app up while the registry is down, and
// retries the failed pull until it gets the image the tag names.
func TestRegistryPullAuthRepushAndOutage(t *testing.T) {
	v1 := testenv.TestImage(t, "nebula-test/app:v1", false)
	v2 := testenv.TestImage(t, "nebula-test/app:health", true)
	reg := testenv.StartRegistry(t, "pusher", "registry-password")
	ref := reg.Push(t, v1, "team/app:stable")
	testenv.Docker(t, "rmi", ref) // the worker must pull it
	group := fmt.Sprintf("reg%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	t.Cleanup(func() { _, _ = dockerOut("rmi", "-f", ref) })

	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
	app := group + "-web"
	api(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+ref+`"}`, 200)
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+app+`"]}`, 200)
	cfg := worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 5 * time.Second, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512},
		Registry: &worker.RegistryAuth{Host: reg.Addr, User: "pusher", Password: "registry-password"}}
	stopAgent := runAgent(t, cfg)
	container := app + "-1"
	var first string
	testenv.WaitFor(t, "the app pulled with credentials to run", 60*time.Second, func() bool { first = imageOf(t, container); return first != "" })

	// The same tag pushed again with another image, then "restart" (as a
	// CI pipeline does): the worker pulls and recreates on the new image.
	reg.Push(t, v2, "team/app:stable")
	api(t, "POST", m.URL+"/api/v2/apps/"+app+"/restart", ``, 202)
	testenv.WaitFor(t, "the app to run the re-pushed image", 60*time.Second, func() bool {
		img := imageOf(t, container)
		return img != "" && img != first
	})
	second := imageOf(t, container)

	// Registry down, a change arrives: the app keeps running on what it
	// has (2.7 exited and, restarted, removed every container).
	reg.Stop()
	api(t, "PATCH", m.URL+"/api/v2/apps/"+app+"/update", `{"env_vars": {"DURING": "outage"}}`, 202)
	time.Sleep(3 * time.Second)
	if s := startedAt(t, container); s == "" || !strings.HasSuffix(s, "true") {
		t.Fatalf("app not running during the registry outage: %q", s)
	}
	// The pull failed, but the image is on the device: the change is
	// applied with it.
	testenv.WaitFor(t, "the change to be applied with the local image", 30*time.Second, func() bool {
		env, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", container)
		return strings.Contains(env, "DURING=outage") && imageOf(t, container) == second
	})

	// The tag moved during the outage. With no new version, the worker
	// retries the failed pull and runs the image the tag names now; the
	// pending pull is in its state, so a restarted worker does too. (The
	// worker is stopped while the registry comes back, so that no pull
	// lands between the registry's return and the push.)
	stopAgent()
	reg.Restart(t)
	reg.Push(t, v1, "team/app:stable")
	testenv.Docker(t, "tag", second, ref) // the device's copy is still the old one: only a pull changes that
	runAgent(t, cfg)
	testenv.WaitFor(t, "the image pushed during the outage to run, with no new version", 90*time.Second, func() bool {
		return imageOf(t, container) == first
	})
	if env, _ := dockerOut("inspect", "--format", "{{json .Config.Env}}", container); !strings.Contains(env, "DURING=outage") {
		t.Fatalf("recreated without the config's env: %s", env)
	}
}

// TestWorkerReports: the worker's reports reach GET /reports through the
// manager's endpoint, or straight through Kafka (2.7's way), and the
// reporter.
func TestWorkerReports(t *testing.T) {
	for _, viaKafka := range []bool{false, true} {
		t.Run(fmt.Sprintf("via kafka %v", viaKafka), func(t *testing.T) { testWorkerReports(t, viaKafka, false) })
	}
	// A config over the report size limit (apps with large environments):
	// the report comes without it, and says so.
	t.Run("config over the report limit", func(t *testing.T) { testWorkerReports(t, false, true) })
}

func testWorkerReports(t *testing.T, viaKafka, bigConfig bool) {
	image := testenv.TestImage(t, "nebula-test/app:v1", false)
	group := fmt.Sprintf("rep%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
	testmanager.StartReporter(t, b.Addr())
	apps := []string{group + "-web"}
	env := "{}"
	if bigConfig {
		// Two apps of 300 KiB each: each within the event size limit,
		// their group's config over the report's.
		apps = append(apps, group+"-api")
		big := map[string]string{}
		for i := range 3 {
			big[fmt.Sprintf("BIG%d", i)] = strings.Repeat("x", 100<<10)
		}
		b, _ := json.Marshal(big)
		env = string(b)
	}
	for _, app := range apps {
		api(t, "POST", m.URL+"/api/v2/apps/"+app, `{"docker_image": "`+image+`", "env_vars": `+env+`}`, 200)
	}
	members, _ := json.Marshal(apps)
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": `+string(members)+`}`, 200)
	cfg := worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: 2 * time.Second, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}, DeviceID: "device-" + group, ReportInterval: time.Second}
	if viaKafka {
		pub, err := reporter.NewPublisher(kafkalog.Config{Brokers: []string{b.Addr()}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pub.Close() })
		cfg.ReportSink = reporter.NewSink(pub, reporter.Names{})
	}
	runAgent(t, cfg)
	testenv.WaitFor(t, "a report saying the app runs", 60*time.Second, func() bool {
		for _, r := range reportsOf(m, group) {
			if r.DeviceID == "device-"+group && len(r.AppsStatus) == len(apps) && r.AppsStatus[0].Status == events.AppStatusRunning &&
				len(r.AppsContainers) == len(apps) && r.MemoryUsage.Total > 0 {
				return !bigConfig || slices.ContainsFunc(r.Errors, func(e string) bool { return strings.Contains(e, "left out of this report") })
			}
		}
		return false
	})
}

// reportsOf returns the reports of a device group the manager has (none
// when it cannot be asked).
func reportsOf(m testmanager.Manager, group string) []events.Report {
	req, _ := http.NewRequest("GET", m.URL+"/api/v2/reports?page_size=100&device_group="+group, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Data []events.Report `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Data
}

// TestPullFailureIsReported: an app whose image cannot be pulled is
// reported pull_failed with what the engine said about the pull (here: the
// registry refuses connections), not only that the image is missing.
func TestPullFailureIsReported(t *testing.T) {
	group := fmt.Sprintf("pullfail%d", rand.N(1_000_000))
	testenv.RemoveContainersLabelled(t, worker.LabelDeviceGroup+"="+group)
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: adminToken})
	testmanager.StartReporter(t, b.Addr())
	image := "127.0.0.1:1/nebula-test/absent:v1" // nothing listens on port 1
	api(t, "POST", m.URL+"/api/v2/apps/"+group+"-web", `{"docker_image": "`+image+`"}`, 200)
	api(t, "POST", m.URL+"/api/v2/device_groups/"+group, `{"apps": ["`+group+`-web"]}`, 200)
	var logs testenv.LogBuffer
	runAgent(t, worker.Config{Group: group, Manager: m.URL, Token: adminToken, CheckIn: time.Second, RequestTimeout: 5 * time.Second,
		StateDir: t.TempDir(), Host: worker.Host{CPUs: 1, MemoryMB: 512}, DeviceID: "device-" + group, ReportInterval: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var last string
	testenv.WaitFor(t, "reports with the pull's failure", 60*time.Second, func() bool {
		n := 0
		for _, r := range reportsOf(m, group) {
			if len(r.AppsStatus) == 1 && r.AppsStatus[0].Status == events.AppStatusPullFailed {
				last = r.AppsStatus[0].Error
				if strings.Contains(last, "failed, the last with") && strings.Contains(last, "refused") {
					n++
				}
			}
		}
		return n >= 4 // reconciled 4 times at least
	})
	t.Logf("reported: %s", last)
	// Said once, not at every reconcile and every retried pull.
	for _, line := range []string{"app not updated", "image pull failed"} {
		if n := strings.Count(logs.String(), line); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", line, n, logs.String())
		}
	}
}
