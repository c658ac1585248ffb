package manager_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestApps(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"

	// Create with defaults (Nebula 2.7's create answer: 200, the document).
	r := call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx", "starting_ports": []any{80, map[string]any{"8443": "443"}}})
	r.expect(t, 200, map[string]any{"app_name": "web", "docker_image": "nginx", "running": true,
		"containers_per": map[string]any{"server": 1}, "env_vars": map[string]any{}, "networks": []any{"nebula", "bridge"},
		"volumes": []any{}, "devices": []any{}, "privileged": false, "rolling_restart": false,
		"starting_ports": []any{80, map[string]any{"8443": "443"}}})
	v1 := r.num(t, "app_id")
	if r.header.Get("ETag") != fmt.Sprintf(`"%d"`, v1) {
		t.Fatalf("ETag %q, want the version %d", r.header.Get("ETag"), v1)
	}

	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx"}).expect(t, 403, map[string]any{"app_exists": true})
	call(t, "POST", api+"/apps/other", map[string]any{"starting_ports": []any{80}}).
		expect(t, 400, map[string]any{"missing_parameters": []any{"docker_image"}})
	call(t, "POST", api+"/apps/other", "not json").expect(t, 400, map[string]any{"missing_parameters": []any{"docker_image"}})
	call(t, "POST", api+"/apps/other", map[string]any{"docker_image": "nginx", "starting_ports": []any{70000}}).
		expect(t, 400, map[string]any{"starting_ports": "invalid port"})
	r = call(t, "POST", api+"/apps/other", map[string]any{"docker_image": "nginx", "running": "yes", "networks": []any{"host", "bridge"}})
	r.expect(t, 400, nil)
	if !strings.Contains(string(r.raw), "running") {
		t.Fatalf("400 body does not name the bad field: %s", r.raw)
	}
	r = call(t, "POST", api+"/apps/other", map[string]any{"docker_image": "nginx", "networks": []any{"host", "bridge"}, "volumes": []any{"/data:relative"}})
	r.expect(t, 400, nil)
	if !strings.Contains(string(r.raw), "networks") || !strings.Contains(string(r.raw), "volumes[0]") {
		t.Fatalf("400 body does not list every problem: %s", r.raw)
	}
	call(t, "POST", api+"/apps/bad%20name", map[string]any{"docker_image": "nginx"}).expect(t, 400, nil)
	call(t, "POST", api+"/apps/"+strings.Repeat("a", 49), map[string]any{"docker_image": "nginx"}).expect(t, 400, nil)
	call(t, "POST", api+"/apps/other", map[string]any{"docker_image": "UPPER/case"}).expect(t, 400, nil)
	call(t, "GET", api+"/apps/other", nil).expect(t, 403, map[string]any{"app_exists": false})

	call(t, "GET", api+"/apps/web", nil).expect(t, 200, map[string]any{"app_id": v1, "app_name": "web"})
	call(t, "GET", api+"/apps", nil).expect(t, 200, map[string]any{"apps": []any{"web"}})

	// Stop, start, restart: 202, a new (greater) version each time.
	r = call(t, "POST", api+"/apps/web/stop", nil)
	r.expect(t, 202, map[string]any{"running": false})
	v2 := r.num(t, "app_id")
	call(t, "POST", api+"/apps/web/restart", nil).expect(t, 403, map[string]any{"running_before_restart": false})
	r = call(t, "POST", api+"/apps/web/start", nil)
	r.expect(t, 202, map[string]any{"running": true})
	v3 := r.num(t, "app_id")
	r = call(t, "POST", api+"/apps/web/restart", nil)
	r.expect(t, 202, nil)
	v4 := r.num(t, "app_id")
	if !(v1 < v2 && v2 < v3 && v3 < v4) {
		t.Fatalf("versions do not increase: %d %d %d %d", v1, v2, v3, v4)
	}
	call(t, "POST", api+"/apps/nope/stop", nil).expect(t, 403, map[string]any{"app_exists": false})

	// Partial update keeps the rest; unknown and empty bodies are refused.
	call(t, "PUT", api+"/apps/web/update", map[string]any{"env_vars": map[string]any{"A": "1"}}).
		expect(t, 202, map[string]any{"env_vars": map[string]any{"A": "1"}, "starting_ports": []any{80, map[string]any{"8443": "443"}}})
	call(t, "PATCH", api+"/apps/web/update", map[string]any{"app_id": 1}).expect(t, 400, map[string]any{"unknown_parameters": []any{"app_id"}})
	call(t, "PATCH", api+"/apps/web/update", map[string]any{}).expect(t, 400, map[string]any{"missing_parameters": true})
	call(t, "PATCH", api+"/apps/web/update", map[string]any{"starting_ports": []any{0}}).expect(t, 400, map[string]any{"starting_ports": "invalid port"})
	call(t, "PATCH", api+"/apps/nope/update", map[string]any{"running": false}).expect(t, 403, map[string]any{"app_exists": false})

	// Full update resets what it does not name to the create defaults
	// (env_vars to {}, where 2.7 wrote a list).
	call(t, "POST", api+"/apps/web/update", map[string]any{"docker_image": "nginx:2"}).
		expect(t, 202, map[string]any{"docker_image": "nginx:2", "env_vars": map[string]any{}, "starting_ports": []any{}})

	// If-Match: optimistic concurrency.
	cur := call(t, "GET", api+"/apps/web", nil)
	call(t, "PATCH", api+"/apps/web/update", map[string]any{"privileged": true}, "If-Match", `"1"`).
		expect(t, 412, map[string]any{"version_mismatch": true})
	call(t, "PATCH", api+"/apps/web/update", map[string]any{"privileged": true}, "If-Match", cur.header.Get("ETag")).
		expect(t, 202, map[string]any{"privileged": true})
	call(t, "PATCH", api+"/apps/web/update", map[string]any{"privileged": true}, "If-Match", "yesterday").expect(t, 400, nil)

	// Idempotency-Key: a retried create gets the first answer, appends once.
	first := call(t, "POST", api+"/apps/retry", map[string]any{"docker_image": "nginx"}, "Idempotency-Key", "k1")
	first.expect(t, 200, nil)
	again := call(t, "POST", api+"/apps/retry", map[string]any{"docker_image": "nginx"}, "Idempotency-Key", "k1")
	again.expect(t, 200, map[string]any{"app_id": first.num(t, "app_id")})

	// Bodies over 1 MiB: 413.
	call(t, "POST", api+"/apps/big", map[string]any{"docker_image": "nginx", "env_vars": map[string]any{"X": strings.Repeat("x", 2<<20)}}).
		expect(t, http.StatusRequestEntityTooLarge, nil)

	call(t, "DELETE", api+"/apps/web", nil).expect(t, 200, nil)
	if r := call(t, "DELETE", api+"/apps/web", nil); string(r.raw) == "{}\n" || r.status != 403 {
		t.Fatalf("second delete: %d %s", r.status, r.raw)
	}
	call(t, "GET", api+"/apps", nil).expect(t, 200, map[string]any{"apps": []any{"retry"}})

	// Re-created, the app gets a version greater than any it had.
	r = call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx"})
	r.expect(t, 200, nil)
	if r.num(t, "app_id") <= v4 {
		t.Fatalf("re-created app has version %d, not above %d", r.num(t, "app_id"), v4)
	}
}

// TestAppOverRecordLimit: a body under the HTTP limit whose event is over
// the log's record limit is a 400, not a 500.
func TestAppOverRecordLimit(t *testing.T) {
	c := newCluster(t)
	r := call(t, "POST", c.url+"/api/v2/apps/big", map[string]any{"docker_image": "nginx", "env_vars": map[string]any{"X": strings.Repeat("x", 700<<10)}})
	if r.status != 400 || !strings.Contains(string(r.raw), "exceeds") && !strings.Contains(string(r.raw), "limit") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}
