package manager_test

import (
	"encoding/base64"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

func basic(user, pass string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

func TestAuthAndPermissions(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	url := startManagerWith(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, User: "root", Password: "root-password", Token: "root-token-123"})
	api := url + "/api/v2"
	adm := basic("root", "root-password")

	// No or bad credentials: 401 with the scheme's challenge.
	r := call(t, "GET", api+"/status", nil)
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Basic realm="nebula"` {
		t.Fatalf("no credentials: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	if r := call(t, "GET", api+"/status", nil, bearer("wrong")...); r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="Authentication Required"` {
		t.Fatalf("bad token: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	call(t, "GET", api+"/status", nil, basic("root", "nope")...).expect(t, 401, nil)
	call(t, "GET", api+"/status", nil, adm...).expect(t, 200, map[string]any{"api_available": true})
	call(t, "GET", api+"/status", nil, bearer("root-token-123")...).expect(t, 200, nil)
	call(t, "GET", url+"/healthz", nil).expect(t, 200, map[string]any{"api_available": true})

	// The admin sets up objects, users and groups.
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx"}, adm...).expect(t, 200, nil)
	call(t, "POST", api+"/apps/db", map[string]any{"docker_image": "postgres"}, adm...).expect(t, 200, nil)
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web"}}, adm...).expect(t, 200, nil)
	call(t, "POST", api+"/users/ops", map[string]any{"password": "ops-password", "token": "ops-token-secret"}, adm...).
		expect(t, 200, map[string]any{"user_name": "ops"})
	created := call(t, "POST", api+"/users/device", map[string]any{"password": "device-password"}, adm...)
	created.expect(t, 200, nil)
	deviceToken, _ := created.body["token"].(string)
	if len(deviceToken) < 40 {
		t.Fatalf("generated token not returned on create: %s", created.raw)
	}
	call(t, "POST", api+"/users/nobody", map[string]any{"password": "nobody-password"}, adm...).expect(t, 200, nil)
	call(t, "POST", api+"/users/ops", map[string]any{}, adm...).expect(t, 403, map[string]any{"user_exists": true})
	call(t, "POST", api+"/users/short", map[string]any{"password": "x"}, adm...).expect(t, 400, nil)
	r = call(t, "GET", api+"/users/ops", nil, adm...)
	r.expect(t, 200, map[string]any{"user_name": "ops"})
	if _, leaked := r.body["password"]; leaked || len(r.body) != 2 {
		t.Fatalf("user document shows more than name and version: %s", r.raw)
	}
	call(t, "POST", api+"/user_groups/operators", map[string]any{"group_members": []any{"ops"},
		"apps": map[string]any{"web": "rw", "db": "ro"}, "device_groups": map[string]any{"edge": "rw"}, "pruning_allowed": true}, adm...).
		expect(t, 200, map[string]any{"user_group": "operators"})
	call(t, "POST", api+"/user_groups/devices", map[string]any{"group_members": []any{"device"},
		"device_groups": map[string]any{"edge": "ro"}}, adm...).expect(t, 200, nil)
	call(t, "POST", api+"/user_groups/bad", map[string]any{"group_members": []any{"ghost"}}, adm...).expect(t, 403, map[string]any{"user_exists": false})
	call(t, "POST", api+"/user_groups/bad", map[string]any{"apps": map[string]any{"web": "write"}}, adm...).expect(t, 400, nil)
	call(t, "POST", api+"/user_groups/bad", map[string]any{"superuser": true}, adm...).expect(t, 400, map[string]any{"unknown_parameters": []any{"superuser"}})

	ops := basic("ops", "ops-password")
	opsTok := bearer("ops-token-secret")
	dev := bearer(deviceToken)
	nobody := basic("nobody", "nobody-password")

	// The permissions matrix: rw implies ro; ro does not give rw; no
	// permission gives 403 {"access_allowed": false}, even on missing names.
	cases := []struct {
		who          []string
		method, path string
		body         any
		want         int
	}{
		{ops, "GET", "/apps/web", nil, 200}, // rw implies ro (2.7: 403)
		{opsTok, "POST", "/apps/web/restart", nil, 202},
		{ops, "GET", "/apps/db", nil, 200},
		{ops, "POST", "/apps/db/stop", nil, 403},
		{ops, "GET", "/apps/ghost", nil, 403},
		{ops, "GET", "/apps", nil, 200},
		{ops, "GET", "/device_groups/edge/info", nil, 200},
		{ops, "POST", "/device_groups/edge/prune", nil, 202},
		{ops, "POST", "/prune", nil, 202},
		{ops, "GET", "/users/ops", nil, 403},
		{ops, "GET", "/events", nil, 403},
		{ops, "GET", "/apps/web/history", nil, 200},
		{ops, "GET", "/apps/web?at=0", nil, 200},
		{dev, "GET", "/apps/web/history", nil, 403},
		{ops, "POST", "/users/x", map[string]any{}, 403},
		{ops, "GET", "/user_groups/operators", nil, 403},
		{dev, "GET", "/device_groups/edge/info", nil, 200},
		{dev, "GET", "/device_groups/edge", nil, 200},
		{dev, "POST", "/device_groups/edge/update", map[string]any{"apps": []any{}}, 403},
		{dev, "GET", "/apps/web", nil, 403},
		{dev, "POST", "/prune", nil, 403},
		{nobody, "GET", "/device_groups/edge/info", nil, 403},
		{nobody, "GET", "/status", nil, 200},
		{nobody, "POST", "/apps/new", map[string]any{"docker_image": "nginx"}, 403},
	}
	for _, c := range cases {
		r := call(t, c.method, api+c.path, c.body, c.who...)
		if r.status != c.want {
			t.Errorf("%s %s %s: %d, want %d (%s)", c.who[1][:12], c.method, c.path, r.status, c.want, r.raw)
		}
		if c.want == 403 && r.body["access_allowed"] != false && c.path != "/apps/ghost" {
			t.Errorf("%s %s: 403 body %s", c.method, c.path, r.raw)
		}
	}

	// Token refresh: the old token stops working, the new one works.
	r = call(t, "POST", api+"/users/device/refresh", nil, adm...)
	r.expect(t, 200, nil)
	newTok, _ := r.body["token"].(string)
	call(t, "GET", api+"/device_groups/edge/info", nil, dev...).expect(t, 401, nil)
	call(t, "GET", api+"/device_groups/edge/info", nil, bearer(newTok)...).expect(t, 200, nil)

	// Password change; user group update; deleting a user drops it from
	// its groups (2.7: a re-created user inherited them).
	call(t, "PATCH", api+"/users/ops/update", map[string]any{"password": "new-ops-password"}, adm...).expect(t, 200, nil)
	call(t, "GET", api+"/apps/web", nil, ops...).expect(t, 401, nil)
	call(t, "GET", api+"/apps/web", nil, basic("ops", "new-ops-password")...).expect(t, 200, nil)
	call(t, "PATCH", api+"/users/ghost/update", map[string]any{"password": "whatever-pw"}, adm...).expect(t, 403, map[string]any{"user_exists": false})
	call(t, "PATCH", api+"/user_groups/operators/update", map[string]any{"admin": true}, adm...).expect(t, 200, map[string]any{"admin": true})
	call(t, "PATCH", api+"/user_groups/ghost/update", map[string]any{"admin": true}, adm...).expect(t, 403, map[string]any{"user_group_exists": false})
	call(t, "GET", api+"/users/ops", nil, basic("ops", "new-ops-password")...).expect(t, 200, nil) // admin now
	call(t, "DELETE", api+"/users/ops", nil, adm...).expect(t, 200, nil)
	call(t, "GET", api+"/user_groups/operators", nil, adm...).expect(t, 200, map[string]any{"group_members": []any{}})
	call(t, "POST", api+"/users/ops", map[string]any{"password": "ops-password"}, adm...).expect(t, 200, nil)
	call(t, "GET", api+"/apps/web", nil, ops...).expect(t, 403, map[string]any{"access_allowed": false})
	call(t, "GET", api+"/users", nil, adm...).expect(t, 200, map[string]any{"users": []any{"device", "nobody", "ops"}})
	call(t, "GET", api+"/user_groups/ghost", nil, adm...).expect(t, 403, map[string]any{"user_group_exists": false})
	call(t, "DELETE", api+"/user_groups/ghost", nil, adm...).expect(t, 403, map[string]any{"user_group_exists": false})
	call(t, "GET", api+"/users/ghost", nil, adm...).expect(t, 403, map[string]any{"user_exists": false})
	call(t, "POST", api+"/users/ghost/refresh", nil, adm...).expect(t, 403, map[string]any{"user_exists": false})
	call(t, "DELETE", api+"/user_groups/devices", nil, adm...).expect(t, 200, nil)
	call(t, "GET", api+"/user_groups", nil, adm...).expect(t, 200, map[string]any{"user_groups": []any{"operators"}})
}
