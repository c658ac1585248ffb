package manager_test

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// Tests of docs/reliability.md's hardening table (issue 22), against a
// real manager over real HTTP on a real broker.

// eventCount is how many records the log holds, as /events lists them.
func eventCount(t *testing.T, api string) int {
	t.Helper()
	r := call(t, "GET", api+"/events?limit=1000", nil)
	evs, _ := r.body["events"].([]any)
	if r.status != http.StatusOK {
		t.Fatalf("/events: %d %s", r.status, r.raw)
	}
	return len(evs)
}

// raw sends a request with exactly the headers given (call always says
// application/json).
func raw(t *testing.T, method, url, body string, headers ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: answered %d with Content-Type %q: %s", method, url, resp.StatusCode, ct, b)
	}
	return resp.StatusCode, string(b)
}

// TestMutationsNeedJSON (finding 5): a mutation with a body that is not
// application/json is refused with 415, and a browser sending one for
// another site's page with 403; nothing is appended. Programs (JSON, or no
// body and no type) go through.
func TestMutationsNeedJSON(t *testing.T) {
	api := newCluster(t).url + "/api/v2"
	body := `{"docker_image": "nginx"}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		if code, b := raw(t, "POST", api+"/apps/web", body, "Content-Type", ct); code != http.StatusUnsupportedMediaType {
			t.Fatalf("Content-Type %q: %d %s", ct, code, b)
		}
	}
	if n := eventCount(t, api); n != 0 {
		t.Fatalf("refused requests appended %d events", n)
	}
	if code, b := raw(t, "POST", api+"/apps/web", body, "Content-Type", "application/json; charset=utf-8"); code != http.StatusOK {
		t.Fatalf("JSON with a charset: %d %s", code, b)
	}
	// Another site's page: refused, with or without a body.
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "http://evil.example"}, {"Origin", "null"}} {
		if code, b := raw(t, "POST", api+"/apps/web/stop", "", h...); code != http.StatusForbidden {
			t.Fatalf("%v: %d %s", h, code, b)
		}
		if code, b := raw(t, "PUT", api+"/apps/web/update", body, append(h, "Content-Type", "application/json")...); code != http.StatusForbidden {
			t.Fatalf("%v with JSON: %d %s", h, code, b)
		}
	}
	if n := eventCount(t, api); n != 1 {
		t.Fatalf("%d events, want the one create", n)
	}
	// A program's body-less POST, and the manager's own origin.
	if code, b := raw(t, "POST", api+"/apps/web/stop", ""); code != http.StatusAccepted {
		t.Fatalf("stop without a body: %d %s", code, b)
	}
	host := strings.TrimPrefix(strings.TrimSuffix(api, "/api/v2"), "http://")
	if code, b := raw(t, "POST", api+"/apps/web/start", "", "Origin", "http://"+host, "Sec-Fetch-Site", "same-origin"); code != http.StatusAccepted {
		t.Fatalf("same origin: %d %s", code, b)
	}
}

// TestRefusedCommandsAppendNothing (finding 7): a command the projection
// already refuses is answered without appending: a stale If-Match, a
// reused idempotency key (whatever the request), a missing member.
func TestRefusedCommandsAppendNothing(t *testing.T) {
	api := newCluster(t).url + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx"}).expect(t, http.StatusOK, nil)
	before := eventCount(t, api)
	for range 20 {
		call(t, "PUT", api+"/apps/web/update", map[string]any{"docker_image": "nginx:2"}, "If-Match", `"999999"`).
			expect(t, http.StatusPreconditionFailed, nil)
	}
	first := call(t, "POST", api+"/apps/a0", map[string]any{"docker_image": "nginx"}, "Idempotency-Key", "k1")
	first.expect(t, http.StatusOK, nil)
	for i := range 20 {
		r := call(t, "POST", api+"/apps/a"+string(rune('a'+i)), map[string]any{"docker_image": "nginx"}, "Idempotency-Key", "k1")
		if r.status >= 500 {
			t.Fatalf("a reused key: %d %s", r.status, r.raw)
		}
	}
	for range 5 {
		call(t, "POST", api+"/device_groups/g", map[string]any{"apps": []string{"nope"}}).expect(t, http.StatusForbidden, nil)
	}
	if n := eventCount(t, api); n != before+1 {
		t.Fatalf("%d events appended, want 1 (the first create with the key)", n-before)
	}
}

// TestOffsetsThatDoNotExist (finding 8): a revert to an offset beyond the
// log's end, or to one that is not a version of the object, and a read
// ?at= beyond the log's end, are 400 and change nothing.
func TestOffsetsThatDoNotExist(t *testing.T) {
	api := newCluster(t).url + "/api/v2"
	v0 := call(t, "POST", api+"/apps/fx", map[string]any{"docker_image": "nginx:1"})
	v0.expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/apps/other", map[string]any{"docker_image": "nginx"}).expect(t, http.StatusOK, nil)
	call(t, "PUT", api+"/apps/fx/update", map[string]any{"docker_image": "nginx:2"}).expect(t, http.StatusAccepted, nil)
	before := eventCount(t, api)
	for _, to := range []string{"888888888", "1"} { // beyond the end; the other app's create
		r := call(t, "POST", api+"/apps/fx/revert?to="+to, nil)
		if r.status != http.StatusBadRequest {
			t.Fatalf("revert to %s: %d %s", to, r.status, r.raw)
		}
	}
	if n := eventCount(t, api); n != before {
		t.Fatalf("refused reverts appended %d events", n-before)
	}
	for _, at := range []string{"99999999999999", "3"} {
		if r := call(t, "GET", api+"/apps/fx?at="+at, nil); r.status != http.StatusBadRequest {
			t.Fatalf("?at=%s: %d %s", at, r.status, r.raw)
		}
	}
	// What exists still works.
	call(t, "GET", api+"/apps/fx?at=2", nil).expect(t, http.StatusOK, map[string]any{"docker_image": "nginx:2"})
	call(t, "POST", api+"/apps/fx/revert?to="+strconv.FormatInt(v0.num(t, "app_id"), 10), nil).
		expect(t, http.StatusAccepted, map[string]any{"docker_image": "nginx:1"})
}

// TestBadValuesAreRefused (finding 9): values that were taken as something
// else are refused with a 400 naming the field, and change nothing.
func TestBadValuesAreRefused(t *testing.T) {
	api := newCluster(t).url + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx"}).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/device_groups/g", map[string]any{"apps": []string{"web"}}).expect(t, http.StatusOK, nil)
	before := eventCount(t, api)
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", "/apps/a1", `{"docker_image": "nginx", "networks": [null]}`, "networks[0]"},
		{"POST", "/apps/a2", `{"docker_image": "nginx", "env_vars": {"A": null}}`, "env_vars.A"},
		{"PATCH", "/apps/web/update", `{"volumes": ["/a:/b", null]}`, "volumes[1]"},
		{"POST", "/apps/a3", `{"docker_image": "nginx", "containers_per": {"cpu": 1e-7}}`, "containers_per"},
		{"POST", "/cron_jobs/c1", `{"docker_image": "nginx", "schedule": "0 0 30 2 *"}`, "schedule"},
		{"PUT", "/device_groups/g/update", `{"app": ["web"]}`, "app"},
		{"PUT", "/device_groups/g/update", `{"apps": [null]}`, "apps[0]"},
		{"POST", "/user_groups/ug", `{"apps": {"web": null}}`, "apps.web"},
	} {
		r := call(t, c.method, api+c.path, c.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.raw), c.field) {
			t.Fatalf("%s %s %s: %d %s, want 400 naming %s", c.method, c.path, c.body, r.status, r.raw, c.field)
		}
	}
	if n := eventCount(t, api); n != before {
		t.Fatalf("refused requests appended %d events", n-before)
	}
	call(t, "GET", api+"/device_groups/g", nil).expect(t, http.StatusOK, map[string]any{"apps": []string{"web"}})
}

// TestReportCannotMoveAnotherGroupsDevice (finding 4): a user who may read
// g1 posts a report naming a device of g2 with group g1: refused, and the
// device stays in g2 with its hostname. A user who may write g2 may move
// it; a new device registers with read access as before.
func TestReportCannotMoveAnotherGroupsDevice(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "owner-admin-token"})
	testmanager.StartReporter(t, b.Addr())
	api := m.URL + "/api/v2"
	adm := bearer("owner-admin-token")
	for _, g := range []string{"g1", "g2"} {
		call(t, "POST", api+"/device_groups/"+g, map[string]any{}, adm...).expect(t, 200, nil)
	}
	user := func(name string, perms map[string]any) []string {
		r := call(t, "POST", api+"/users/"+name, map[string]any{"password": name + "-password"}, adm...)
		r.expect(t, 200, nil)
		call(t, "POST", api+"/user_groups/"+name+"s", map[string]any{"group_members": []any{name}, "device_groups": perms}, adm...).expect(t, 200, nil)
		return bearer(r.body["token"].(string))
	}
	reader := user("reader", map[string]any{"g1": "ro"})
	writer := user("writer", map[string]any{"g1": "ro", "g2": "rw"})
	inGroup := func(device, group, host string) bool {
		r := call(t, "GET", api+"/devices?device_group="+group, nil, adm...)
		devs, _ := r.body["devices"].([]any)
		for _, d := range devs {
			if d := d.(map[string]any); d["device_id"] == device && d["hostname"] == host {
				return true
			}
		}
		return false
	}
	call(t, "POST", api+"/reports", deviceReport("device-in-g2", "g2", "real-host", 1000, true), adm...).expect(t, 202, nil)
	testenv.WaitFor(t, "the device in g2", 30*time.Second, func() bool { return inGroup("device-in-g2", "g2", "real-host") })

	r := call(t, "POST", api+"/reports", deviceReport("device-in-g2", "g1", "spoofed", 1001, true), reader...)
	if r.status != http.StatusForbidden || !strings.Contains(string(r.raw), "g2") {
		t.Fatalf("a reader of g1 moving a device of g2: %d %s", r.status, r.raw)
	}
	// A new device registers with read access; then the writer of g2 moves the first one.
	call(t, "POST", api+"/reports", deviceReport("device-new", "g1", "new-host", 1002, true), reader...).expect(t, 202, nil)
	testenv.WaitFor(t, "the new device in g1", 30*time.Second, func() bool { return inGroup("device-new", "g1", "new-host") })
	if !inGroup("device-in-g2", "g2", "real-host") {
		t.Fatal("the refused report moved the device")
	}
	call(t, "POST", api+"/reports", deviceReport("device-in-g2", "g1", "moved", 1003, true), writer...).expect(t, 202, nil)
	testenv.WaitFor(t, "the device moved by g2's writer", 30*time.Second, func() bool { return inGroup("device-in-g2", "g1", "moved") })
}

// TestDamagedProjectionAnswers503 (finding 2): a table of the projection
// written into while the manager serves makes the next read answer 503 in
// JSON, not "does not exist" (what Badger reads of a damaged block), and
// the projection is rebuilt from the log and served again.
func TestDamagedProjectionAnswers503(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	dir := t.TempDir()
	m := launch(t, b.Addr(), dir, manager.Auth{})
	api := m.URL + "/api/v2"
	for i := range 50 {
		call(t, "POST", api+"/apps/app"+strconv.Itoa(i), map[string]any{"docker_image": "nginx"}).expect(t, http.StatusOK, nil)
	}
	m.Stop() // closing the store writes its tables
	api = launch(t, b.Addr(), dir, manager.Auth{}).URL + "/api/v2"
	call(t, "GET", api+"/apps/app7", nil).expect(t, http.StatusOK, nil)
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table file to damage")
	}
	for _, table := range tables {
		if err := testenv.WriteJunk(table); err != nil {
			t.Fatal(err)
		}
	}
	r := call(t, "GET", api+"/apps/app7", nil)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("a read of a damaged projection: %d %s, want 503", r.status, r.raw)
	}
	testenv.WaitFor(t, "the rebuild", 60*time.Second, func() bool {
		return call(t, "GET", api+"/apps/app7", nil).status == http.StatusOK
	})
	if apps := call(t, "GET", api+"/apps", nil); !strings.Contains(string(apps.raw), `"app49"`) {
		t.Fatalf("after the rebuild: %s", apps.raw)
	}
}
