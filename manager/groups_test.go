package manager_test

import (
	"testing"
)

func TestDeviceGroupsCronJobsAndInfo(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx"}).expect(t, 200, nil)
	call(t, "POST", api+"/apps/db", map[string]any{"docker_image": "postgres"}).expect(t, 200, nil)

	// Cron jobs: required fields, schedule validation, networks default.
	call(t, "POST", api+"/cron_jobs/backup", map[string]any{"docker_image": "backup"}).
		expect(t, 400, map[string]any{"missing_parameters": []any{"schedule"}})
	call(t, "POST", api+"/cron_jobs/backup", map[string]any{}).
		expect(t, 400, map[string]any{"missing_parameters": []any{"docker_image", "schedule"}})
	call(t, "POST", api+"/cron_jobs/backup", map[string]any{"docker_image": "backup", "schedule": "61 * * * *"}).
		expect(t, 400, map[string]any{"schedule_valid": false})
	r := call(t, "POST", api+"/cron_jobs/backup", map[string]any{"docker_image": "backup", "schedule": "0 * * * *"})
	r.expect(t, 200, map[string]any{"cron_job_name": "backup", "networks": []any{"nebula", "bridge"}, "running": true})
	call(t, "POST", api+"/cron_jobs/backup", map[string]any{"docker_image": "backup", "schedule": "0 * * * *"}).
		expect(t, 403, map[string]any{"cron_job_exists": true})
	call(t, "PATCH", api+"/cron_jobs/backup/update", map[string]any{"schedule": "*/5 * * * *"}).
		expect(t, 202, map[string]any{"schedule": "*/5 * * * *", "docker_image": "backup"})
	call(t, "PATCH", api+"/cron_jobs/backup/update", map[string]any{"schedule": "nope"}).expect(t, 400, map[string]any{"schedule_valid": false})
	call(t, "PATCH", api+"/cron_jobs/backup/update", map[string]any{"colour": "red"}).expect(t, 400, map[string]any{"unknown_parameters": []any{"colour"}})
	call(t, "POST", api+"/cron_jobs/backup/update", map[string]any{"docker_image": "backup:2", "schedule": "@daily"}).
		expect(t, 202, map[string]any{"docker_image": "backup:2", "schedule": "@daily", "networks": []any{"nebula", "bridge"}, "env_vars": map[string]any{}})
	call(t, "POST", api+"/cron_jobs/backup/update", map[string]any{"docker_image": "backup:2"}).
		expect(t, 400, map[string]any{"missing_parameters": []any{"schedule"}})
	call(t, "POST", api+"/cron_jobs/none/update", map[string]any{"docker_image": "x", "schedule": "@daily"}).
		expect(t, 403, map[string]any{"cron_job_exists": false})
	call(t, "GET", api+"/cron_jobs", nil).expect(t, 200, map[string]any{"cron_jobs": []any{"backup"}})
	call(t, "GET", api+"/cron_jobs/none", nil).expect(t, 403, map[string]any{"cron_job_exists": false})

	// Device groups: members must exist and be lists.
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web", "ghost"}}).expect(t, 403, map[string]any{"app_exists": false})
	call(t, "POST", api+"/device_groups/edge", map[string]any{"cron_jobs": []any{"ghost"}}).expect(t, 403, map[string]any{"cron_job_exists": false})
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": "web"}).expect(t, 400, map[string]any{"apps_is_list": false})
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web", "web"}}).expect(t, 400, nil)
	r = call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web", "db"}, "cron_jobs": []any{"backup"}})
	r.expect(t, 200, map[string]any{"device_group": "edge", "apps": []any{"web", "db"}, "cron_jobs": []any{"backup"}})
	g1 := r.num(t, "device_group_id")
	call(t, "POST", api+"/device_groups/edge", map[string]any{}).expect(t, 403, map[string]any{"device_group_exists": true})
	call(t, "GET", api+"/device_groups", nil).expect(t, 200, map[string]any{"device_groups": []any{"edge"}})

	info := call(t, "GET", api+"/device_groups/edge/info", nil)
	info.expect(t, 200, map[string]any{"apps_list": []any{"web", "db"}, "cron_jobs_list": []any{"backup"}, "device_group_id": g1})
	if apps := info.body["apps"].([]any); len(apps) != 2 || apps[0].(map[string]any)["docker_image"] != "nginx" {
		t.Fatalf("info apps: %v", apps)
	}
	call(t, "GET", api+"/device_groups/none/info", nil).expect(t, 403, map[string]any{"device_group_exists": false})

	// A change to a listed app raises the group's version (devices act on it).
	call(t, "POST", api+"/apps/web/restart", nil).expect(t, 202, nil)
	g2 := call(t, "GET", api+"/device_groups/edge/info", nil).num(t, "device_group_id")
	if g2 <= g1 {
		t.Fatalf("restart of a listed app left the group at version %d (was %d)", g2, g1)
	}
	// Deleting a listed app raises it again and drops the app from /info
	// (2.7 kept serving nothing new: devices left the app running).
	call(t, "DELETE", api+"/apps/db", nil).expect(t, 200, nil)
	info = call(t, "GET", api+"/device_groups/edge/info", nil)
	info.expect(t, 200, map[string]any{"apps_list": []any{"web"}})
	if g3 := info.num(t, "device_group_id"); g3 <= g2 {
		t.Fatalf("deleting a listed app left the group at version %d", g3)
	}
	call(t, "DELETE", api+"/cron_jobs/backup", nil).expect(t, 200, nil)
	call(t, "GET", api+"/device_groups/edge/info", nil).expect(t, 200, map[string]any{"cron_jobs_list": []any{}})

	// Updates: POST replaces both lists, PATCH the ones it names.
	call(t, "POST", api+"/device_groups/edge/update", map[string]any{"apps": []any{"web"}}).
		expect(t, 202, map[string]any{"apps": []any{"web"}, "cron_jobs": []any{}})
	call(t, "PATCH", api+"/device_groups/edge/update", map[string]any{"apps": []any{}}).expect(t, 202, map[string]any{"apps": []any{}})
	call(t, "PATCH", api+"/device_groups/edge/update", map[string]any{"name": "x"}).expect(t, 400, map[string]any{"unknown_parameters": []any{"name"}})
	call(t, "PATCH", api+"/device_groups/edge/update", map[string]any{}).expect(t, 400, map[string]any{"missing_parameters": true})
	// 2.7 answered a missing group with {"app_exists": false} here.
	call(t, "POST", api+"/device_groups/none/update", map[string]any{}).expect(t, 403, map[string]any{"device_group_exists": false})

	// Prune: one group, then the fleet.
	before := call(t, "GET", api+"/device_groups/edge", nil).num(t, "prune_id")
	r = call(t, "POST", api+"/device_groups/edge/prune", nil)
	r.expect(t, 202, nil)
	if r.num(t, "prune_id") <= before {
		t.Fatalf("prune left prune_id at %d", r.num(t, "prune_id"))
	}
	call(t, "POST", api+"/device_groups/none/prune", nil).expect(t, 403, map[string]any{"device_group_exists": false})
	call(t, "POST", api+"/device_groups/other", map[string]any{}).expect(t, 200, nil)
	r = call(t, "POST", api+"/prune", nil)
	r.expect(t, 202, nil)
	ids := r.body["prune_ids"].(map[string]any)
	if len(ids) != 2 || ids["edge"] != ids["other"] {
		t.Fatalf("fleet prune ids: %v", ids)
	}

	call(t, "DELETE", api+"/device_groups/edge", nil).expect(t, 200, nil)
	call(t, "DELETE", api+"/device_groups/edge", nil).expect(t, 403, map[string]any{"device_group_exists": false})
}
