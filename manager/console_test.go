package manager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/worker/sim"
)

// screenshot keeps a page's screenshot: in NEBULA_SCREENSHOTS (make
// screenshots writes docs/ui/, which the README shows), else in the
// test's temporary directory.
func screenshot(t *testing.T, name string, shot []byte) {
	t.Helper()
	dir := os.Getenv("NEBULA_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if len(shot) < 1000 || string(shot[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: not a PNG (%d bytes)", name, len(shot))
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInABrowser (issue 19): in headless chromium, the console
// sends a visitor to sign in, refuses wrong credentials, signs a user in,
// lists the device groups it may read, shows a group's devices and
// updates their counts live (no reload) as reports arrive, and signs
// out; a read-only user sees only its group; a form without the session's
// CSRF token is refused, and pages carry a strict Content-Security-Policy.
func TestConsoleInABrowser(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "console-admin-token"})
	testmanager.StartReporter(t, b.Addr())
	api := m.URL + "/api/v2"
	adm := bearer("console-admin-token")
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx:1.27", "starting_ports": []any{80}}, adm...).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/apps/metrics", map[string]any{"docker_image": "prom/node-exporter"}, adm...).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web", "metrics"}}, adm...).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/device_groups/lab", map[string]any{"apps": []any{"web"}}, adm...).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/users/ops", map[string]any{"password": "ops-password-1"}, adm...).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/user_groups/ops", map[string]any{"group_members": []any{"ops"}, "device_groups": map[string]any{"lab": "ro"}}, adm...).expect(t, http.StatusOK, nil)
	version := call(t, "GET", api+"/device_groups/edge", nil, adm...).num(t, "device_group_id")
	report := func(device string, v int64) {
		t.Helper()
		r := deviceReport(device, "edge", "host-"+device, time.Now().Unix(), true)
		r["applied_version"] = v
		call(t, "POST", api+"/reports", r, adm...).expect(t, http.StatusAccepted, nil)
	}
	for _, d := range []string{"device-0001", "device-0002", "device-0003"} {
		report(d, version-1) // pending
	}
	// A device of lab whose app fails.
	broken := deviceReport("device-0009", "lab", "host-0009", time.Now().Unix(), true)
	broken["apps_status"] = []any{map[string]any{"name": "web", "version": 1, "status": events.AppStatusPullFailed, "error": "pull access denied for nginx"}}
	call(t, "POST", api+"/reports", broken, adm...).expect(t, http.StatusAccepted, nil)
	testenv.WaitFor(t, "the reports to be folded", 30*time.Second, func() bool {
		return strings.Contains(string(call(t, "GET", api+"/devices?device_group=edge", nil, adm...).raw), "device-0003") &&
			strings.Contains(string(call(t, "GET", api+"/devices?device_group=lab", nil, adm...).raw), "device-0009")
	})

	// The headers, and a form posted without its CSRF token.
	resp, err := testClient.Get(m.URL + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	resp, err = testClient.PostForm(m.URL+"/ui/login", map[string][]string{"user": {"ops"}, "password": {"ops-password-1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) == 0 || resp.Cookies()[0].Name == "nebula_session" {
		t.Fatalf("a sign-in without the form's token: %s", resp.Status)
	}

	ctx := testenv.Browser(t, 2*time.Minute)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	shoot := func(name string) {
		t.Helper()
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		screenshot(t, name, shot)
	}
	signIn := func(user, password string) {
		t.Helper()
		do(chromedp.WaitVisible(css("#signin")))
		if user != "" {
			do(chromedp.SendKeys(css("#user"), user))
		}
		do(chromedp.SendKeys(css("#password"), password), chromedp.Click(css("#signin")))
	}

	// Signed out: the sign-in page; wrong credentials are refused.
	do(chromedp.Navigate(m.URL + "/ui/"))
	shoot("login.png")
	signIn("ops", "not-the-password")
	do(chromedp.WaitVisible(css(".problem")))
	if p := text(".problem"); !strings.Contains(p, "Wrong user name or password") {
		t.Fatalf("wrong credentials: %q", p)
	}
	// The read-only user sees only lab, and may not read edge.
	signIn("ops", "ops-password-1")
	do(chromedp.WaitVisible(css("#groups")))
	if body := text("#groups"); !strings.Contains(body, "lab") || strings.Contains(body, "edge") {
		t.Fatalf("ops's fleet: %q", body)
	}
	do(chromedp.Navigate(m.URL+"/ui/groups/edge"), chromedp.WaitVisible(css(".problem")))
	if p := text(".problem"); !strings.Contains(p, "may not read device group edge") {
		t.Fatalf("ops on edge: %q", p)
	}
	for _, page := range []string{"/ui/events", "/ui/users"} {
		do(chromedp.Navigate(m.URL+page), chromedp.WaitVisible(css(".problem")))
		if p := text(".problem"); !strings.Contains(p, "for admins") {
			t.Fatalf("ops on %s: %q", page, p)
		}
	}
	do(chromedp.Navigate(m.URL+"/ui/"), chromedp.Click(css("form.signout button")), chromedp.WaitVisible(css("#signin")))

	// The admin (a token alone): the fleet, then edge's page.
	signIn("", "console-admin-token")
	do(chromedp.WaitVisible(css("#groups")))
	if body := text("#groups"); !strings.Contains(body, "edge") || !strings.Contains(body, "lab") || !strings.Contains(body, "0 / 3 / 0 / 0") ||
		!strings.Contains(body, "0 / 0 / 1 / 0") {
		t.Fatalf("the admin's fleet (edge: 3 devices pending, lab: 1 failing): %q", body)
	}
	if failing := text("#failing"); !strings.Contains(failing, "device-0009") || !strings.Contains(failing, "pull access denied") {
		t.Fatalf("what is failing now: %q", failing)
	}
	shoot("fleet.png")
	// The fleet as of edge's creation: lab came after it.
	do(chromedp.SendKeys(css("#fleet-at"), fmt.Sprint(version)), chromedp.Click(css("#fleet-view-at")))
	testenv.WaitFor(t, "the fleet as of an earlier offset", 10*time.Second, func() bool {
		as, err := chromedp.Run(ctx, chromedp.Text(css("#as-of")))
		return err == nil && strings.Contains(as, fmt.Sprint(version))
	})
	if body := text("#groups"); !strings.Contains(body, "edge") || strings.Contains(body, "lab") {
		t.Fatalf("the fleet as of offset %d (edge, not yet lab): %q", version, body)
	}
	shoot("fleet-as-of.png")
	do(chromedp.Click(css("#fleet-now")), chromedp.WaitVisible(css("#failing")))
	do(chromedp.Click(css(`a[href="/ui/groups/edge"]`)), chromedp.WaitVisible(css("#apps")))
	if h, n := text("h1"), text("#n-converged"); !strings.Contains(h, "edge") || n != "0" {
		t.Fatalf("edge's page: %q, %q converged", h, n)
	}
	// Two devices converge: the page shows it without a reload.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.notReloaded = "yes"`)); err != nil {
		t.Fatal(err)
	}
	report("device-0001", version)
	report("device-0002", version)
	testenv.WaitFor(t, "the page to show 2 devices converged", 30*time.Second, func() bool {
		n, err := chromedp.Run(ctx, chromedp.Text(css("#n-converged")))
		return err == nil && n == "2"
	})
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.notReloaded`))
	if err != nil || marker != "yes" {
		t.Fatalf("the page was reloaded: %q %v", marker, err)
	}
	// It came as Server-Sent Events, not by asking again: the page made no
	// request to /status (the stream, still open, is not listed yet).
	via, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("resource").map(e => e.name).join(" ")`))
	if err != nil || !strings.Contains(via, "console.js") || strings.Contains(via, "/status") {
		t.Fatalf("how the page followed the group: %q %v", via, err)
	}
	if body := text("#slowest"); !strings.Contains(body, "device-0003") || strings.Contains(body, "device-0001") {
		t.Fatalf("the devices not converged: %q", body)
	}
	do(chromedp.Sleep(600 * time.Millisecond)) // the bar's transition
	shoot("group.png")
	if all := text("#all-devices"); !strings.Contains(all, "device-0001") || !strings.Contains(all, "device-0003") {
		t.Fatalf("the group's devices: %q", all)
	}

	// A device's story: the versions it applied and what made them.
	do(chromedp.Click(css(`#slowest a[href="/ui/devices/device-0003"]`)), chromedp.WaitVisible(css("#story")))
	do(chromedp.Navigate(m.URL+"/ui/devices/device-0001"), chromedp.WaitVisible(css("#story")))
	if story := text("#story"); !strings.Contains(story, fmt.Sprintf("version %d", version)) || !strings.Contains(story, "device_group.created") ||
		!strings.Contains(story, "local-admin") {
		t.Fatalf("device-0001's story: %q", story)
	}
	if reps := text("#reports"); !strings.Contains(reps, "web: running") || strings.Count(reps, "\n") < 2 {
		t.Fatalf("device-0001's recent reports: %q", reps)
	}
	shoot("device.png")
	// An app's versions, and the event log filtered by name.
	call(t, "PUT", api+"/apps/web/update", map[string]any{"docker_image": "nginx:1.28"}, adm...).expect(t, http.StatusAccepted, nil)
	do(chromedp.Navigate(m.URL+"/ui/apps/web"), chromedp.WaitVisible(css("#versions")))
	if v := text("#versions"); !strings.Contains(v, "app.created") || !strings.Contains(v, "app.patched") || !strings.Contains(v, `"nginx:1.28"`) {
		t.Fatalf("web's versions: %q", v)
	}
	shoot("app.png")
	// Two versions compared.
	do(chromedp.SendKeys(css("#diff-a"), "0"), chromedp.SendKeys(css("#diff-b"), "6"), chromedp.Click(css("#compare")))
	testenv.WaitFor(t, "the comparison", 30*time.Second, func() bool {
		d, err := chromedp.Run(ctx, chromedp.Text(css("table#diff")))
		return err == nil && strings.Contains(d, "docker_image") && strings.Contains(d, `"nginx:1.27"`) && strings.Contains(d, `"nginx:1.28"`)
	})
	do(chromedp.Navigate(m.URL+"/ui/apps/web"), chromedp.WaitVisible(css("#versions")))
	// Revert web to its first version: the dry run's preview, then the revert.
	do(chromedp.Click(css("#revert-0")), chromedp.WaitVisible(css("#changes")))
	if ch, reach := text("#changes"), text("#reach"); !strings.Contains(ch, `"nginx:1.28"`) || !strings.Contains(ch, `"nginx:1.27"`) ||
		!strings.Contains(reach, "edge") || !strings.Contains(reach, "3") || !strings.Contains(reach, "lab") {
		t.Fatalf("the revert's preview: %q / %q", ch, reach)
	}
	shoot("revert.png")
	if got := call(t, "GET", api+"/apps/web", nil, adm...); !strings.Contains(string(got.raw), "nginx:1.28") {
		t.Fatalf("the preview changed the app: %s", got.raw)
	}
	do(chromedp.Click(css("#confirm-revert")), chromedp.WaitVisible(css("#app-stop")))
	if spec, v := text("#spec"), text("#versions"); !strings.Contains(spec, "nginx:1.27") || !strings.Contains(v, "revert to 0") {
		t.Fatalf("web after the revert: %q / %q", spec, v)
	}
	do(chromedp.Click(css("#app-stop")))
	testenv.WaitFor(t, "web to show stopped", 30*time.Second, func() bool {
		spec, err := chromedp.Run(ctx, chromedp.Text(css("#spec"))) // the page may be loading: ask again
		return err == nil && strings.Contains(spec, "stopped")
	})
	if got := call(t, "GET", api+"/apps/web", nil, adm...); !strings.Contains(string(got.raw), `"running":false`) {
		t.Fatalf("web after stop: %s", got.raw)
	}
	// The group as of offset 2 (its creation): web was nginx:1.27 then.
	do(chromedp.Navigate(m.URL+"/ui/groups/edge"), chromedp.WaitVisible(css("#at")),
		chromedp.SendKeys(css("#at"), "2"), chromedp.Click(css("#view-at")), chromedp.WaitVisible(css("#asof")))
	if apps := text("#apps"); !strings.Contains(apps, "nginx:1.27") || strings.Contains(apps, "nginx:1.28") {
		t.Fatalf("edge as of offset 2: %q", apps)
	}
	shoot("group-as-of.png")
	do(chromedp.Navigate(m.URL+"/ui/events"), chromedp.WaitVisible(css("#events")))
	if ev := text("#events"); !strings.Contains(ev, "device_group.created") || !strings.Contains(ev, "accepted") {
		t.Fatalf("the event log: %q", ev)
	}
	if chain := text("#chain"); !strings.Contains(chain, "hash chain after offset") || !strings.Contains(chain, "No checkpoint yet") {
		t.Fatalf("the chain's state: %q", chain)
	}
	// A checkpoint of the chain up to offset 3 (as a manager with a key
	// appends them): the page names it.
	line := call(t, "GET", api+"/events?format=jsonl&from=3&to=3", nil, adm...)
	var exported manager.ExportLine
	if err := json.Unmarshal(bytes.TrimSpace(line.raw), &exported); err != nil {
		t.Fatalf("the export of offset 3: %v %s", err, line.raw)
	}
	lctx := testenv.Context(t, 30*time.Second)
	l, err := kafkalog.Open(lctx, kafkalog.Config{Brokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(lctx, events.Envelope{Type: events.LogCheckpointed, Aggregate: events.Aggregate{Kind: events.KindLog}, Actor: "checkpointer",
		Time: time.Now().UTC(), Payload: events.LogCheckpointedV{Covers: 3, Head: exported.Chain, KeyID: "audit-key", Signature: strings.Repeat("ab", 64)}}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the checkpoint on the events page", 30*time.Second, func() bool {
		do(chromedp.Navigate(m.URL+"/ui/events"), chromedp.WaitVisible(css("#chain")))
		return strings.Contains(text("#chain"), "up to offset 3 matched it") && strings.Contains(text("#chain"), "audit-key")
	})
	do(chromedp.SendKeys(css(`input[name="name"]`), "web"), chromedp.Click(css("#filter")))
	testenv.WaitFor(t, "the event log filtered by name", 30*time.Second, func() bool {
		url, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.Contains(url, "name=web")
	})
	do(chromedp.WaitVisible(css("#events")))
	if ev := text("#events"); !strings.Contains(ev, "app.patched") || strings.Contains(ev, "device_group.created") {
		t.Fatalf("the event log of web: %q", ev)
	}
	shoot("events.png")
	// The page as of offset 3: the events up to it, the chain as it was
	// then, no checkpoint yet (the one above came after).
	do(chromedp.Navigate(m.URL+"/ui/events?at=3"), chromedp.WaitVisible(css("#events-as-of")))
	if ev, chain := text("#events"), text("#chain"); !strings.Contains(ev, "app.created") || strings.Contains(ev, "app.patched") ||
		!strings.Contains(chain, "after offset 3") || !strings.Contains(chain, "No checkpoint yet") {
		t.Fatalf("the events as of offset 3: %q / %q", ev, chain)
	}
	// A time range: none since a moment from now.
	do(chromedp.Navigate(m.URL+"/ui/events?since="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))), chromedp.WaitVisible(css("#events")))
	if ev := text("#events"); !strings.Contains(ev, "No event matches") {
		t.Fatalf("the events of the next hour: %q", ev)
	}
	do(chromedp.Navigate(m.URL+"/ui/events?since=yesterday"), chromedp.WaitVisible(css("main")))
	if msg := text("main"); !strings.Contains(msg, "since: an RFC 3339 time") {
		t.Fatalf("a bad since: %q", msg)
	}

	// Create an app and a group through the forms: a bad field is refused
	// in the API's words, the preview writes nothing, Create does.
	do(chromedp.Navigate(m.URL+"/ui/"), chromedp.Click(css("#new-app")), chromedp.WaitVisible(css("#f-name")),
		chromedp.SendKeys(css("#f-name"), "api"), chromedp.SendKeys(css("#f-docker_image"), "registry.local/api:3"),
		chromedp.SendKeys(css("#f-starting_ports"), "80:eighty"), chromedp.SendKeys(css("#f-env_vars"), "MODE=edge"),
		chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#problem")))
	if p := text("#problem"); !strings.Contains(p, "starting_ports") {
		t.Fatalf("a bad port: %q", p)
	}
	do(chromedp.Clear(css("#f-starting_ports")), chromedp.SendKeys(css("#f-starting_ports"), "8080:80"),
		chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#preview-result")))
	if p := text("#preview-result"); !strings.Contains(p, "registry.local/api:3") || !strings.Contains(p, "MODE") {
		t.Fatalf("the app's preview: %q", p)
	}
	call(t, "GET", api+"/apps/api", nil, adm...).expect(t, http.StatusForbidden, map[string]any{"app_exists": false})
	shoot("new-app.png")
	do(chromedp.Click(css("#create")), chromedp.WaitVisible(css("#spec")))
	if got := call(t, "GET", api+"/apps/api", nil, adm...); got.status != http.StatusOK || !strings.Contains(string(got.raw), `"MODE":"edge"`) {
		t.Fatalf("the app created from the form: %d %s", got.status, got.raw)
	}
	// Change it through its form: the fields shown are the app's; a
	// patch leaves the rest as it was.
	call(t, "PUT", api+"/apps/api/update", map[string]any{"volumes": []any{"/data:/data"}}, adm...).expect(t, http.StatusAccepted, nil)
	do(chromedp.Navigate(m.URL+"/ui/apps/api"), chromedp.Click(css("#app-edit")), chromedp.WaitVisible(css("#f-env_vars")))
	if env, err := chromedp.Run(ctx, chromedp.Value(css("#f-env_vars"))); err != nil || env != "MODE=edge" {
		t.Fatalf("the edit form's environment: %q %v", env, err)
	}
	do(chromedp.Clear(css("#f-env_vars")), chromedp.SendKeys(css("#f-env_vars"), "MODE=field"),
		chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#preview-result")), chromedp.Click(css("#create")), chromedp.WaitVisible(css("#spec")))
	if got := call(t, "GET", api+"/apps/api", nil, adm...); !strings.Contains(string(got.raw), `"MODE":"field"`) || !strings.Contains(string(got.raw), "/data:/data") {
		t.Fatalf("the app changed from its form: %s", got.raw)
	}
	do(chromedp.Navigate(m.URL+"/ui/groups/new"), chromedp.WaitVisible(css("#f-name")),
		chromedp.SendKeys(css("#f-name"), "field"), chromedp.SendKeys(css("#f-apps"), "api, web"),
		chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#preview-result")), chromedp.Click(css("#create")), chromedp.WaitVisible(css("#apps")))
	if apps := text("#apps"); !strings.Contains(apps, "api") || !strings.Contains(apps, "web") {
		t.Fatalf("the group created from the form: %q", apps)
	}

	// Change the group through its form: web leaves it.
	do(chromedp.Click(css("#group-edit")), chromedp.WaitVisible(css("#f-apps")))
	if apps, err := chromedp.Run(ctx, chromedp.Value(css("#f-apps"))); err != nil || apps != "api, web" {
		t.Fatalf("the group form's apps: %q %v", apps, err)
	}
	do(chromedp.Clear(css("#f-apps")), chromedp.SendKeys(css("#f-apps"), "api"),
		chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#preview-result")), chromedp.Click(css("#create")), chromedp.WaitVisible(css("#bar")))
	if got := call(t, "GET", api+"/device_groups/field", nil, adm...); !strings.Contains(string(got.raw), `"apps":["api"]`) {
		t.Fatalf("the group changed from its form: %s", got.raw)
	}

	// The group's versions, and a revert of it to its first: web is back.
	do(chromedp.Navigate(m.URL+"/ui/groups/field"), chromedp.Click(css("#group-versions")), chromedp.WaitVisible(css("#versions")))
	if v := text("#versions"); !strings.Contains(v, "device_group.created") || !strings.Contains(v, "device_group.patched") {
		t.Fatalf("the group's versions: %q", v)
	}
	first := call(t, "GET", api+"/events?kind=device_group&name=field&limit=1", nil, adm...).body["events"].([]any)[0].(map[string]any)["offset"]
	do(chromedp.Click(css(fmt.Sprintf("#revert-%v", first))), chromedp.WaitVisible(css("#changes")))
	if ch := text("#changes"); !strings.Contains(ch, "apps") || !strings.Contains(ch, `"web"`) {
		t.Fatalf("the group revert's preview: %q", ch)
	}
	do(chromedp.Click(css("#confirm-revert")), chromedp.WaitVisible(css("#bar")))
	if got := call(t, "GET", api+"/device_groups/field", nil, adm...); !strings.Contains(string(got.raw), `"apps":["api","web"]`) {
		t.Fatalf("the group after its revert: %s", got.raw)
	}

	// A cron job created through its form (a bad schedule refused in the
	// API's words), its page from its group's, then changed by its form.
	do(chromedp.Navigate(m.URL+"/ui/"), chromedp.Click(css("#new-cron")), chromedp.WaitVisible(css("#f-schedule")),
		chromedp.SendKeys(css("#f-name"), "backup"), chromedp.SendKeys(css("#f-schedule"), "at three"),
		chromedp.SendKeys(css("#f-docker_image"), "backup:1"), chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#problem")))
	if p := text("#problem"); !strings.Contains(p, "schedule") {
		t.Fatalf("a bad schedule: %q", p)
	}
	do(chromedp.Clear(css("#f-schedule")), chromedp.SendKeys(css("#f-schedule"), "0 3 * * *"),
		chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#preview-result")))
	call(t, "GET", api+"/cron_jobs/backup", nil, adm...).expect(t, http.StatusForbidden, map[string]any{"cron_job_exists": false})
	do(chromedp.Click(css("#create")), chromedp.WaitVisible(css("#cron-spec")))
	call(t, "PUT", api+"/device_groups/field/update", map[string]any{"cron_jobs": []any{"backup"}}, adm...).expect(t, http.StatusAccepted, nil)
	do(chromedp.Navigate(m.URL+"/ui/groups/field"), chromedp.Click(css(`a[href="/ui/cron_jobs/backup"]`)), chromedp.WaitVisible(css("#cron-spec")))
	if spec, evs := text("#cron-spec"), text("#cron-events"); !strings.Contains(spec, "0 3 * * *") || !strings.Contains(evs, "cron_job.created") {
		t.Fatalf("the cron job's page: %q / %q", spec, evs)
	}
	do(chromedp.Click(css("#cron-edit")), chromedp.WaitVisible(css("#f-schedule")))
	if v, err := chromedp.Run(ctx, chromedp.Value(css("#f-schedule"))); err != nil || v != "0 3 * * *" {
		t.Fatalf("the cron job's form: schedule %q %v", v, err)
	}
	do(chromedp.Clear(css("#f-schedule")), chromedp.SendKeys(css("#f-schedule"), "30 4 * * *"),
		chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#preview-result")), chromedp.Click(css("#create")), chromedp.WaitVisible(css("#cron-spec")))
	if got := call(t, "GET", api+"/cron_jobs/backup", nil, adm...); !strings.Contains(string(got.raw), `"schedule":"30 4 * * *"`) || !strings.Contains(string(got.raw), "backup:1") {
		t.Fatalf("the cron job changed from its form: %s", got.raw)
	}
	// Reverted from its page to its first version, after a preview.
	// Its versions: the two compared, then a revert to the first.
	do(chromedp.Navigate(m.URL+"/ui/cron_jobs/backup"), chromedp.WaitVisible(css("#versions")))
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#versions tbody tr td:first-child")].map(e => e.textContent)`))
	if err != nil || len(vs) != 2 {
		t.Fatalf("the cron job's versions: %v %v (%q)", vs, err, text("#versions"))
	}
	do(chromedp.SendKeys(css("#diff-a"), vs[0]), chromedp.SendKeys(css("#diff-b"), vs[1]), chromedp.Click(css("#compare")), chromedp.WaitVisible(css("#diff")))
	if d := text("#diff"); !strings.Contains(d, "schedule") || !strings.Contains(d, "30 4 * * *") || strings.Contains(d, "docker_image") {
		t.Fatalf("the cron job's two versions compared: %q", d)
	}
	do(chromedp.Navigate(m.URL+"/ui/cron_jobs/backup"), chromedp.Click(css(`#versions a[id^="revert-"]`)), chromedp.WaitVisible(css("#confirm-revert")))
	if p := text("main"); !strings.Contains(p, "30 4 * * *") || !strings.Contains(p, "0 3 * * *") {
		t.Fatalf("the cron job's revert preview: %q", p)
	}
	do(chromedp.Click(css("#confirm-revert")))
	testenv.WaitFor(t, "the cron job reverted", 10*time.Second, func() bool {
		return strings.Contains(string(call(t, "GET", api+"/cron_jobs/backup", nil, adm...).raw), `"schedule":"0 3 * * *"`)
	})

	// Users and user groups, for admins.
	do(chromedp.Navigate(m.URL+"/ui/users"), chromedp.WaitVisible(css("#user-groups")))
	if u, g := text("#users"), text("#user-groups"); !strings.Contains(u, "ops") || !strings.Contains(g, "lab: ro") {
		t.Fatalf("users: %q / %q", u, g)
	}
	// A user made from the page: its token shown once, and working.
	do(chromedp.SendKeys(css("#u-name"), "auditor"), chromedp.SendKeys(css("#u-password"), "auditor-password-1"),
		chromedp.Click(css("#create-user")), chromedp.WaitVisible(css("#new-token")))
	token := text("#new-token")
	if len(token) < 16 || !strings.Contains(text("#users"), "auditor") {
		t.Fatalf("the new user's token: %q; users: %q", token, text("#users"))
	}
	call(t, "GET", api+"/device_groups/edge", nil, bearer(token)...).expect(t, http.StatusForbidden, nil) // known, not allowed yet
	// A user group that lets it read edge, previewed then created.
	do(chromedp.Click(css("#new-user-group")), chromedp.WaitVisible(css("#f-group_members")),
		chromedp.SendKeys(css("#f-name"), "auditors"), chromedp.SendKeys(css("#f-group_members"), "auditor"),
		chromedp.SendKeys(css("#f-device_groups"), "edge ro"), chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#problem")))
	if p := text("#problem"); !strings.Contains(p, "device_groups") {
		t.Fatalf("a bad permission line: %q", p)
	}
	do(chromedp.Clear(css("#f-device_groups")), chromedp.SendKeys(css("#f-device_groups"), "edge: ro"),
		chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#preview-result")))
	call(t, "GET", api+"/device_groups/edge", nil, bearer(token)...).expect(t, http.StatusForbidden, nil) // a preview writes nothing
	do(chromedp.Click(css("#create")), chromedp.WaitVisible(css("#ug-auditors")))
	if g := text("#ug-auditors"); !strings.Contains(g, "edge: ro") || !strings.Contains(g, "auditor") {
		t.Fatalf("the user group made from its form: %q", g)
	}
	testenv.WaitFor(t, "the auditor to read edge", 10*time.Second, func() bool {
		return call(t, "GET", api+"/device_groups/edge", nil, bearer(token)...).status == http.StatusOK
	})
	// Its form shows it as it is; a change is a patch.
	do(chromedp.Click(css("#edit-ug-auditors")), chromedp.WaitVisible(css("#f-device_groups")))
	if v, err := chromedp.Run(ctx, chromedp.Value(css("#f-device_groups"))); err != nil || v != "edge: ro" {
		t.Fatalf("the user group's form: %q %v", v, err)
	}
	do(chromedp.Clear(css("#f-device_groups")), chromedp.SendKeys(css("#f-device_groups"), "edge: ro\nlab: ro"), chromedp.Click(css("#preview")), chromedp.WaitVisible(css("#preview-result")),
		chromedp.Click(css("#create")), chromedp.WaitVisible(css("#ug-auditors")))
	if g := text("#ug-auditors"); !strings.Contains(g, "lab: ro") {
		t.Fatalf("the user group changed from its form: %q", g)
	}
	shoot("users.png")
	// A new token: the old one stops working. Then the group and the user
	// go (the pages ask first; the test answers yes).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.confirm = function () { return true; }; true`)); err != nil {
		t.Fatal(err)
	}
	do(chromedp.Click(css("#refresh-auditor")), chromedp.WaitVisible(css("#new-token")))
	if fresh := text("#new-token"); fresh == token || len(fresh) < 16 {
		t.Fatalf("a new token: %q (was %q)", fresh, token)
	}
	testenv.WaitFor(t, "the old token to stop working", 10*time.Second, func() bool {
		return call(t, "GET", api+"/device_groups/edge", nil, bearer(token)...).status == http.StatusUnauthorized
	})
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.confirm = function () { return true; }; true`)); err != nil {
		t.Fatal(err)
	}
	do(chromedp.Click(css("#delete-ug-auditors")), chromedp.WaitVisible(css("#done")))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.confirm = function () { return true; }; true`)); err != nil {
		t.Fatal(err)
	}
	do(chromedp.Click(css("#delete-auditor")))
	// The page before had a #done too: wait for the one that says so.
	testenv.WaitFor(t, "the user and the group deleted", 10*time.Second, func() bool {
		u, err1 := chromedp.Run(ctx, chromedp.Text(css("#users")))
		g, err2 := chromedp.Run(ctx, chromedp.Text(css("#user-groups")))
		return err1 == nil && err2 == nil && !strings.Contains(u, "auditor") && !strings.Contains(g, "auditors")
	})

	// A rollout, decided by hand from the group's page.
	call(t, "POST", api+"/apps/sensor", map[string]any{"docker_image": "sensor:1"}, adm...).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/device_groups/canary", `{"apps": ["sensor"], "rollout": {"waves": [10, 100], "auto_promote": false}}`, adm...).expect(t, http.StatusOK, nil)
	call(t, "PUT", api+"/apps/sensor/update", map[string]any{"docker_image": "sensor:2"}, adm...).expect(t, http.StatusAccepted, nil)
	do(chromedp.Navigate(m.URL+"/ui/groups/canary"), chromedp.WaitVisible(css("#decide-pause")))
	// A decision posted without the page's CSRF token is refused.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		`fetch("/ui/groups/canary/rollout/promote", {method: "POST", credentials: "same-origin"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Fatalf("a decision without the CSRF token: %d %v", status, err)
	}
	do(chromedp.Click(css("#decide-pause")), chromedp.WaitVisible(css("#decide-resume")))
	if d := text("#decisions"); !strings.Contains(d, "start") || !strings.Contains(d, "pause") || strings.Contains(d, "promote") {
		t.Fatalf("decisions after a pause: %q", d)
	}
	do(chromedp.Click(css("#decide-resume")), chromedp.WaitVisible(css("#decide-pause")))
	shoot("rollout.png")
	ro := call(t, "GET", api+"/device_groups/canary/rollout", nil, adm...)
	if !strings.Contains(string(ro.raw), `"decision":"resume"`) || !strings.Contains(string(ro.raw), `"actor":"local-admin"`) {
		t.Fatalf("the decisions, as the API shows them: %s", ro.raw)
	}
	// Simulated devices (the real worker over an in-memory engine, as
	// `nebula sim` runs it) converge on an open group page, no reload.
	call(t, "POST", api+"/device_groups/sims", map[string]any{"apps": []any{"web"}}, adm...).expect(t, http.StatusOK, nil)
	do(chromedp.Navigate(m.URL+"/ui/groups/sims"), chromedp.WaitVisible(css("#bar")))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.notReloaded = "yes"`)); err != nil {
		t.Fatal(err)
	}
	simCtx, stopSims := context.WithCancel(context.Background())
	fleet := sim.Start(simCtx, sim.Config{Devices: 3, Group: "sims", Manager: m.URL, Token: "console-admin-token", CheckIn: time.Second,
		ReportInterval: time.Second})
	testenv.WaitFor(t, "the group page to show 3 simulated devices converged", 60*time.Second, func() bool {
		n, err := chromedp.Run(ctx, chromedp.Text(css("#n-converged")))
		return err == nil && n == "3"
	})
	if marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.notReloaded`)); err != nil || marker != "yes" {
		t.Fatalf("the page was reloaded: %q %v", marker, err)
	}
	stopSims()
	fleet.Wait()

	// A group of 51 devices lists them 50 at a time.
	call(t, "POST", api+"/device_groups/bulk", map[string]any{"apps": []any{"web"}}, adm...).expect(t, http.StatusOK, nil)
	for i := range 51 {
		r := deviceReport(fmt.Sprintf("bulk-%03d", i), "bulk", fmt.Sprintf("bulk-host-%03d", i), time.Now().Unix(), true)
		call(t, "POST", api+"/reports", r, adm...).expect(t, http.StatusAccepted, nil)
	}
	testenv.WaitFor(t, "the bulk group's reports folded", 30*time.Second, func() bool {
		return strings.Contains(string(call(t, "GET", api+"/devices?device_group=bulk", nil, adm...).raw), "bulk-050")
	})
	do(chromedp.Navigate(m.URL+"/ui/groups/bulk"), chromedp.WaitVisible(css("#devices-next")))
	if all := text("#all-devices"); !strings.Contains(all, "bulk-049") || strings.Contains(all, "bulk-050") {
		t.Fatalf("bulk's first page of devices: %q", all)
	}
	do(chromedp.Click(css("#devices-next")), chromedp.WaitVisible(css("#devices-first")))
	if all := text("#all-devices"); !strings.Contains(all, "bulk-050") || strings.Contains(all, "bulk-049") {
		t.Fatalf("bulk's second page of devices: %q", all)
	}
	do(chromedp.Navigate(m.URL+"/ui/groups/canary"), chromedp.WaitVisible(css("#decisions")))
	// A decision taken elsewhere (the API) shows on the open page without
	// a reload: the state and the decisions follow.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.notReloaded = "yes"`)); err != nil {
		t.Fatal(err)
	}
	call(t, "POST", api+"/device_groups/canary/rollout/pause", map[string]any{}, adm...).expect(t, http.StatusAccepted, nil)
	testenv.WaitFor(t, "the page to show the rollout paused", 30*time.Second, func() bool {
		state, err1 := chromedp.Run(ctx, chromedp.Text(css("#rollout")))
		d, err2 := chromedp.Run(ctx, chromedp.Text(css("#decisions")))
		return err1 == nil && err2 == nil && state == "paused" && strings.Count(d, "pause") >= 2
	})
	if marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.notReloaded`)); err != nil || marker != "yes" {
		t.Fatalf("the page was reloaded: %q %v", marker, err)
	}
}

// consoleClient signs in to the console over HTTP (no browser) and
// returns a client holding the session.
func consoleClient(t *testing.T, base, user, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(base + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the sign-in page: %s", page)
	}
	resp, err = c.PostForm(base+"/ui/login", url.Values{"csrf": {string(m[1])}, "user": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/" {
		t.Fatalf("sign in as %q: ended at %s (%s)", user, resp.Request.URL, resp.Status)
	}
	return c
}

// TestConsoleSessions: a user named like the local admin is not the local
// admin in the console; a session ends when its user's password changes
// or the user is deleted.
func TestConsoleSessions(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "sessions-admin-token"})
	c := struct{ url string }{m.URL}
	api := c.url + "/api/v2"
	adm := bearer("sessions-admin-token")
	call(t, "POST", api+"/users/local-admin", map[string]any{"password": "not-the-admin-1"}, adm...).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/users/carol", map[string]any{"password": "carol-password-1"}, adm...).expect(t, http.StatusOK, nil)
	status := func(cl *http.Client, path string) int {
		t.Helper()
		cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		defer func() { cl.CheckRedirect = nil }()
		resp, err := cl.Get(c.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	impostor := consoleClient(t, c.url, "local-admin", "not-the-admin-1")
	if got := status(impostor, "/ui/events"); got != http.StatusForbidden {
		t.Fatalf("a user named local-admin on the event log: %d, want 403", got)
	}
	carol := consoleClient(t, c.url, "carol", "carol-password-1")
	if got := status(carol, "/ui/"); got != http.StatusOK {
		t.Fatalf("carol's fleet: %d", got)
	}
	call(t, "PUT", api+"/users/carol/update", map[string]any{"password": "carol-password-2"}, adm...).expect(t, http.StatusOK, nil)
	if got := status(carol, "/ui/"); got != http.StatusSeeOther {
		t.Fatalf("carol's session after her password changed: %d, want a redirect to sign in", got)
	}
	carol = consoleClient(t, c.url, "carol", "carol-password-2")
	call(t, "DELETE", api+"/users/carol", nil, adm...).expect(t, http.StatusOK, nil)
	if got := status(carol, "/ui/"); got != http.StatusSeeOther {
		t.Fatalf("carol's session after she was deleted: %d, want a redirect to sign in", got)
	}
}
