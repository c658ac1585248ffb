package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/cli"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

type term struct {
	t    *testing.T
	env  map[string]string
	home string
}

func (tm term) run(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.Env{Getenv: func(k string) string { return tm.env[k] }, Home: tm.home, Stdout: &out, Stderr: &errb})
	return out.String(), errb.String(), code
}

func (tm term) ok(args ...string) string {
	tm.t.Helper()
	out, errs, code := tm.run(args...)
	if code != 0 {
		tm.t.Fatalf("nebula %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (tm term) code(want int, args ...string) string {
	tm.t.Helper()
	out, errs, code := tm.run(args...)
	if code != want {
		tm.t.Fatalf("nebula %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out + errs
}

// TestEveryVerb drives every CLI verb against a real manager.
func TestEveryVerb(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, User: "admin", Password: "admin-password"})
	testmanager.StartReporter(t, b.Addr())
	tm := term{t: t, env: map[string]string{}, home: t.TempDir()}

	// No manager known: exit 3. Login writes ~/.nebula.json (nebulactl's format).
	tm.code(cli.ExitUnreachable, "ping")
	tm.code(cli.ExitUnreachable, "login", "--host", m.URL, "--username", "admin", "--password", "wrong-password")
	tm.ok("login", "--host", m.URL, "--username", "admin", "--password", "admin-password")
	if out := tm.ok("ping"); !strings.Contains(out, "api_available: true") {
		t.Fatalf("ping: %s", out)
	}

	// Apps.
	tm.ok("apps", "create", "web", "--image", "nginx:1", "--starting-ports", "80,8443:443", "--containers-per", "cpu:0.5",
		"--env", "MODE=prod,DEBUG=0", "--networks", "nebula,bridge", "--volumes", "/data:/data:ro", "--devices", "/dev/null", "--privileged", "--rolling")
	var app map[string]any
	if err := json.Unmarshal([]byte(tm.ok("apps", "info", "web", "-o", "json")), &app); err != nil {
		t.Fatal(err)
	}
	if app["privileged"] != true || app["rolling_restart"] != true || fmt.Sprint(app["starting_ports"]) != "[80 map[8443:443]]" ||
		fmt.Sprint(app["containers_per"]) != "map[cpu:0.5]" || fmt.Sprint(app["devices"]) != "[/dev/null]" {
		t.Fatalf("app %v", app)
	}
	if out := tm.ok("apps", "list"); strings.TrimSpace(out) != "web" {
		t.Fatalf("apps list: %q", out)
	}
	tm.ok("apps", "update", "web", "--image", "nginx:2", "--stopped")
	tm.ok("apps", "start", "--app", "web")
	tm.ok("apps", "restart", "web")
	tm.ok("apps", "stop", "web")
	if out := tm.ok("apps", "info", "web"); !strings.Contains(out, "docker_image: nginx:2") || !strings.Contains(out, "running: false") {
		t.Fatalf("apps info: %s", out)
	}
	tm.code(cli.ExitUsage, "apps", "update", "web")                   // nothing to update
	tm.code(cli.ExitRefused, "apps", "create", "web", "--image", "x") // exists
	tm.code(cli.ExitUsage, "apps", "create", "web2", "--starting-ports", "eighty")
	if out := tm.ok("apps", "update", "web", "--image", "nginx:3", "--dry-run"); !strings.Contains(out, "dry_run: true") {
		t.Fatalf("dry run: %s", out)
	}

	// Cron jobs (2.7's CLI could not create one, and deleted the app of
	// that name instead of the cron job).
	tm.ok("cron-jobs", "create", "web", "--schedule", "@daily", "--image", "backup:1", "--env", "K=V")
	tm.ok("cron-jobs", "update", "web", "--schedule", "@hourly")
	if out := tm.ok("cron-jobs", "info", "web"); !strings.Contains(out, "schedule: @hourly") {
		t.Fatalf("cron info: %s", out)
	}
	tm.ok("cron-jobs", "list")

	// Device groups (2.7's CLI sent cron_jobs as a string: always 400).
	tm.ok("device-groups", "create", "edge", "--apps", "web", "--cron-jobs", "web")
	tm.ok("device-groups", "update", "edge", "--apps", "")
	if out := tm.ok("device-groups", "info", "edge", "-o", "json"); !strings.Contains(out, `"apps": []`) {
		t.Fatalf("group info: %s", out)
	}
	tm.ok("device-groups", "list")
	tm.ok("device-groups", "rollout", "edge")
	if out := tm.ok("rollout", "edge"); !strings.HasPrefix(out, "device group edge at version ") || !strings.Contains(out, " 0 devices,") {
		t.Fatalf("rollout: %s", out)
	}
	// Rollouts: a group with a policy; a change starts a rollout; pause,
	// resume and abort by hand; a group without a policy has none.
	tm.ok("device-groups", "create", "waved", "--apps", "web", "--rollout", `{"waves": [50, 100], "min_healthy_time": "1h", "healthy_deadline": "2h", "auto_promote": false}`)
	tm.code(cli.ExitUsage, "device-groups", "update", "waved", "--rollout", "[1]")
	tm.ok("apps", "update", "web", "--image", "nginx:rolled")
	tm.ok("rollout", "waved", "pause")
	if out := tm.ok("rollout", "waved"); !strings.Contains(out, ": paused, wave 1") || !strings.Contains(out, "pause") {
		t.Fatalf("rollout paused: %s", out)
	}
	tm.ok("rollout", "waved", "resume")
	tm.ok("rollout", "waved", "abort", "--revert=false")
	if out := tm.ok("rollout", "waved", "--watch"); !strings.Contains(out, ": aborted, wave 1") || strings.Contains(out, "(revert)") {
		t.Fatalf("rollout aborted: %s", out)
	}
	if out := tm.code(1, "rollout", "waved", "pause"); !strings.Contains(out, "aborted") {
		t.Fatalf("pause of an aborted rollout: %s", out)
	}
	if out := tm.code(1, "rollout", "edge", "promote"); !strings.Contains(out, "no rollout policy") {
		t.Fatalf("promote without a policy: %s", out)
	}
	tm.code(cli.ExitUsage, "rollout", "waved", "jump")
	tm.ok("prune", "device-group", "edge")
	tm.ok("prune", "all")
	tm.code(cli.ExitUsage, "prune")

	// Users and user groups (2.7's update built an empty body).
	out := tm.ok("users", "create", "ops", "--password", "ops-password", "-o", "json")
	if !strings.Contains(out, `"token"`) {
		t.Fatalf("user create shows no generated token: %s", out)
	}
	tm.ok("users", "update", "ops", "--password", "new-ops-password")
	tm.ok("users", "refresh", "ops")
	tm.ok("users", "info", "ops")
	tm.ok("users", "list")
	tm.ok("user-groups", "create", "operators", "--members", "ops", "--apps", "web:rw", "--device-groups", "edge:ro", "--pruning")
	tm.ok("user-groups", "update", "operators", "--admin")
	if out := tm.ok("user-groups", "info", "operators"); !strings.Contains(out, "admin: true") || !strings.Contains(out, `pruning_allowed: true`) {
		t.Fatalf("user group: %s", out)
	}
	tm.ok("user-groups", "list")

	// History, revert, events, reports, devices.
	hist := tm.ok("history", "web", "-o", "json")
	var h struct {
		Versions []struct{ Version int64 } `json:"versions"`
	}
	if err := json.Unmarshal([]byte(hist), &h); err != nil || len(h.Versions) < 5 {
		t.Fatalf("history: %s %v", hist, err)
	}
	text := strings.Split(strings.TrimSpace(tm.ok("history", "web")), "\n")
	if len(text) != len(h.Versions)+1 || !strings.HasPrefix(text[0], "VERSION") ||
		!strings.Contains(text[1], "app.created") || !strings.Contains(text[1], "docker_image=nginx:1") ||
		!strings.Contains(text[2], "docker_image: nginx:1 -> nginx:2") {
		t.Fatalf("history as text:\n%s", strings.Join(text, "\n"))
	}
	tm.ok("revert", "app", "web", "--to", fmt.Sprint(h.Versions[0].Version))
	if out := tm.ok("apps", "info", "web"); !strings.Contains(out, "docker_image: nginx:1") {
		t.Fatalf("after revert: %s", out)
	}
	if out := tm.ok("events", "--kind", "app", "--name", "web"); !strings.Contains(out, "app.created") {
		t.Fatalf("events: %s", out)
	}
	tm.ok("reports")
	// Devices: two in edge, one elsewhere; one group, a page at a time.
	for i, g := range []string{"edge", "edge", "other"} {
		rep, _ := json.Marshal(events.Report{DeviceID: fmt.Sprintf("device-%d", i), DeviceGroup: g, Hostname: fmt.Sprintf("host-%d", i),
			ReportCreationTime: 1764000000, AppliedVersion: -1})
		req, _ := http.NewRequest("POST", m.URL+"/api/v2/reports", bytes.NewReader(rep))
		req.SetBasicAuth("admin", "admin-password")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("report: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(tm.ok("devices"), "device-2") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	out = tm.ok("devices", "--device-group", "edge", "--page-size", "1")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "DEVICE ") ||
		!strings.HasPrefix(lines[1], "device-0 ") || !strings.Contains(lines[1], " edge ") || lines[2] != "more: --last-id device-0" {
		t.Fatalf("devices of edge, page 1:\n%s", out)
	}
	out = tm.ok("devices", "--device-group", "edge", "--page-size", "1", "--last-id", "device-0")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "device-1 ") {
		t.Fatalf("devices of edge, page 2:\n%s", out)
	}
	tm.code(cli.ExitUsage, "devices", "edge")

	// Deletes need --yes.
	tm.code(cli.ExitUsage, "apps", "delete", "web")
	tm.ok("device-groups", "delete", "edge", "--yes")
	tm.ok("cron-jobs", "delete", "web", "--yes")
	tm.ok("apps", "info", "web") // the cron job's delete did not touch the app (2.7's did)
	tm.ok("apps", "delete", "web", "--yes")
	tm.ok("user-groups", "delete", "operators", "--yes")
	tm.ok("users", "delete", "ops", "--yes")
	tm.code(cli.ExitRefused, "apps", "info", "web")

	// The environment instead of a login: NEBULA_HOST + NEBULA_USERNAME/PASSWORD.
	tm.ok("logout")
	tm.code(cli.ExitUnreachable, "ping")
	tm.env = map[string]string{"NEBULA_HOST": m.URL, "NEBULA_USERNAME": "admin", "NEBULA_PASSWORD": "admin-password"}
	tm.ok("ping")
	tm.env["NEBULA_PASSWORD"] = "bad"
	tm.code(cli.ExitUnreachable, "apps", "list")
	if out := tm.ok("completion", "bash"); !strings.Contains(out, "device-groups") {
		t.Fatalf("completion: %s", out)
	}
	tm.code(cli.ExitUsage, "frobnicate")
}
