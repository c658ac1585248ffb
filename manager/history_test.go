package manager_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// TestTimeTravelAndHistory: after a scripted history, a read ?at= every
// offset answers what the live API answered right after that offset;
// /events lists and filters the log; /apps/<a>/history shows each
// version's changes.
func TestTimeTravelAndHistory(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"
	type snap struct {
		app, info string // live answers right after the offset ("" = 403)
	}
	snaps := map[int64]snap{}
	var times []time.Time
	record := func(off int64) {
		t.Helper()
		s := snap{}
		if r := call(t, "GET", api+"/apps/web", nil); r.status == 200 {
			s.app = string(r.raw)
		}
		if r := call(t, "GET", api+"/device_groups/edge/info", nil); r.status == 200 {
			s.info = string(r.raw)
		}
		snaps[off] = s
		times = append(times, time.Now())
		time.Sleep(1100 * time.Millisecond / 10)
	}
	step := func(method, path string, body any, status int) {
		t.Helper()
		r := call(t, method, api+path, body)
		r.expect(t, status, nil)
		_, end := logEnd(t, c)
		record(end - 1)
	}
	step("POST", "/apps/web", map[string]any{"docker_image": "nginx:1"}, 200)
	step("POST", "/device_groups/edge", map[string]any{"apps": []any{"web"}}, 200)
	step("PATCH", "/apps/web/update", map[string]any{"env_vars": map[string]any{"A": "1"}}, 202)
	step("POST", "/apps/other", map[string]any{"docker_image": "redis"}, 200)
	step("POST", "/apps/web/stop", nil, 202)
	step("POST", "/apps/web/start", nil, 202)
	step("POST", "/apps/web", map[string]any{"docker_image": "nginx:1"}, 403) // rejected: exists
	step("DELETE", "/apps/web", nil, 200)
	step("POST", "/apps/web", map[string]any{"docker_image": "nginx:2"}, 200)
	step("POST", "/device_groups/edge/prune", nil, 202)

	_, end := logEnd(t, c)
	last := snap{}
	for k := int64(0); k < end; k++ {
		if s, ok := snaps[k]; ok {
			last = s
		}
		r := call(t, "GET", api+"/apps/web?at="+strconv.FormatInt(k, 10), nil)
		if got := map[bool]string{true: string(r.raw), false: ""}[r.status == 200]; got != last.app {
			t.Fatalf("app at offset %d:\n%s\nlive then:\n%s", k, got, last.app)
		}
		r = call(t, "GET", api+"/device_groups/edge/info?at="+strconv.FormatInt(k, 10), nil)
		if got := map[bool]string{true: string(r.raw), false: ""}[r.status == 200]; got != last.info {
			t.Fatalf("info at offset %d:\n%s\nlive then:\n%s", k, got, last.info)
		}
	}
	// At a time: the state after the last event at or before it.
	mid := times[4].Add(time.Millisecond) // just after "stop" was recorded
	r := call(t, "GET", api+"/apps/web?at="+url.QueryEscape(mid.UTC().Format(time.RFC3339Nano)), nil)
	r.expect(t, 200, map[string]any{"running": false})
	call(t, "GET", api+"/apps/web?at=yesterday", nil).expect(t, 400, nil)
	call(t, "GET", api+"/apps/web?at=-1", nil).expect(t, 400, nil)

	// The event history.
	all := call(t, "GET", api+"/events?limit=1000", nil)
	evs := all.body["events"].([]any)
	if int64(len(evs)) != end || all.body["next_from"] != nil {
		t.Fatalf("%d events, want %d", len(evs), end)
	}
	for _, e := range evs {
		// The refused second create appended nothing (the pre-check
		// answered): every event in the log was accepted.
		if v := e.(map[string]any)["verdict"].(map[string]any); v["accepted"] != true {
			t.Fatalf("event %v", e)
		}
	}
	count := func(q string) int {
		r := call(t, "GET", api+"/events?"+q, nil)
		r.expect(t, 200, nil)
		return len(r.body["events"].([]any))
	}
	for q, want := range map[string]int{
		"kind=app&name=web":          6,
		"type=app.created":           3,
		"kind=device_group":          2,
		"actor=local-admin":          int(end),
		"actor=someone":              0,
		"from=3&to=5":                3,
		"since=2000-01-01T00:00:00Z": int(end),
		"until=2000-01-01T00:00:00Z": 0,
	} {
		if got := count(q); got != want {
			t.Errorf("events?%s: %d, want %d", q, got, want)
		}
	}
	page := call(t, "GET", api+"/events?limit=4", nil)
	if n := page.body["next_from"]; n != float64(4) {
		t.Fatalf("next_from %v", n)
	}
	for _, q := range []string{"limit=0", "from=-2", "since=yesterday"} {
		call(t, "GET", api+"/events?"+q, nil).expect(t, 400, nil)
	}

	// The app's versions with their changes.
	h := call(t, "GET", api+"/apps/web/history", nil)
	vs := h.body["versions"].([]any)
	var summary []string
	for _, v := range vs {
		m := v.(map[string]any)
		var keys []string
		for k := range m["changes"].(map[string]any) {
			keys = append(keys, k)
		}
		summary = append(summary, fmt.Sprintf("%s%v", m["type"], len(keys)))
	}
	b, _ := json.Marshal(summary)
	// created (every field), patched (env_vars), stopped, started, deleted (every field), created again.
	if len(vs) != 6 || string(b) != `["app.created11","app.patched1","app.stopped1","app.started1","app.deleted11","app.created11"]` {
		t.Fatalf("history %s", b)
	}
	call(t, "GET", api+"/apps/never/history", nil).expect(t, 403, map[string]any{"app_exists": false})
}

func logEnd(t *testing.T, c cluster) (int64, int64) {
	t.Helper()
	r := call(t, "GET", c.url+"/metrics", nil)
	var end int64
	for _, line := range splitLines(string(r.raw)) {
		if _, err := fmt.Sscanf(line, "nebula_event_log_end_offset %d", &end); err == nil {
			return 0, end
		}
	}
	t.Fatal("no log end in /metrics")
	return 0, 0
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// TestRevert: a revert restores the app, group and cron job of an earlier
// offset field for field, as a new version the history marks as a revert.
func TestRevert(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"
	first := call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx:1", "env_vars": map[string]any{"A": "1"}, "starting_ports": []any{80}})
	first.expect(t, 200, nil)
	v1 := first.num(t, "app_id")
	call(t, "POST", api+"/apps/web/update", map[string]any{"docker_image": "nginx:2", "running": false}).expect(t, 202, nil)
	call(t, "POST", api+"/cron_jobs/job", map[string]any{"docker_image": "job:1", "schedule": "@daily"}).expect(t, 200, nil)
	cv := call(t, "GET", api+"/cron_jobs/job", nil).num(t, "cron_job_id")
	call(t, "PATCH", api+"/cron_jobs/job/update", map[string]any{"schedule": "@hourly"}).expect(t, 202, nil)
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web"}}).expect(t, 200, nil)
	gv := call(t, "GET", api+"/device_groups/edge", nil).num(t, "device_group_id")
	call(t, "POST", api+"/device_groups/edge/update", map[string]any{"apps": []any{}, "cron_jobs": []any{"job"}}).expect(t, 202, nil)

	r := call(t, "POST", api+fmt.Sprintf("/apps/web/revert?to=%d", v1), nil)
	r.expect(t, 202, nil)
	want := map[string]any{}
	for k, v := range first.body {
		if k != "app_id" {
			want[k] = v
		}
	}
	r.expect(t, 202, want)
	if r.num(t, "app_id") <= v1 {
		t.Fatalf("revert did not make a new version: %v", r.body["app_id"])
	}
	call(t, "POST", api+fmt.Sprintf("/cron_jobs/job/revert?to=%d", cv), nil).expect(t, 202, map[string]any{"schedule": "@daily"})
	call(t, "POST", api+fmt.Sprintf("/device_groups/edge/revert?to=%d", gv), nil).expect(t, 202, map[string]any{"apps": []any{"web"}, "cron_jobs": []any{}})

	// A deleted app is brought back.
	call(t, "DELETE", api+"/apps/web", nil).expect(t, 200, nil)
	call(t, "POST", api+fmt.Sprintf("/apps/web/revert?to=%d", v1), nil).expect(t, 202, map[string]any{"docker_image": "nginx:1"})

	vs := call(t, "GET", api+"/apps/web/history", nil).body["versions"].([]any)
	lastV := vs[len(vs)-1].(map[string]any)
	if lastV["revert_of"] != float64(v1) || vs[len(vs)-3].(map[string]any)["revert_of"] != float64(v1) {
		t.Fatalf("history does not mark the reverts: %v", vs)
	}
	call(t, "POST", api+"/apps/web/revert?to=x", nil).expect(t, 400, nil)
	call(t, "POST", api+"/apps/nope/revert?to=0", nil).expect(t, 400, nil)
}

// TestDryRun: ?dry_run=true answers the document and the device groups a
// mutation would change, and appends nothing (the log end is unchanged).
func TestDryRun(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx:1"}).expect(t, 200, nil)
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web"}}).expect(t, 200, nil)
	call(t, "POST", api+"/device_groups/idle", map[string]any{}).expect(t, 200, nil)
	_, before := logEnd(t, c)

	r := call(t, "PATCH", api+"/apps/web/update?dry_run=true", map[string]any{"docker_image": "nginx:2"})
	r.expect(t, 200, map[string]any{"dry_run": true})
	if res := r.body["result"].(map[string]any); res["docker_image"] != "nginx:2" {
		t.Fatalf("dry run result %v", res)
	}
	if gs := r.body["device_groups"].([]any); len(gs) != 1 || gs[0].(map[string]any)["device_group"] != "edge" {
		t.Fatalf("dry run groups %v", gs)
	}
	call(t, "GET", api+"/apps/web", nil).expect(t, 200, map[string]any{"docker_image": "nginx:1"})
	call(t, "DELETE", api+"/apps/web?dry_run=1", nil).expect(t, 200, map[string]any{"dry_run": true})
	call(t, "POST", api+"/apps/new?dry_run=true", map[string]any{"docker_image": "redis"}).expect(t, 200, nil)
	call(t, "POST", api+"/apps/web?dry_run=true", map[string]any{"docker_image": "redis"}).expect(t, 403, map[string]any{"app_exists": true})
	r = call(t, "POST", api+"/prune?dry_run=true", nil)
	r.expect(t, 200, nil)
	if gs := r.body["device_groups"].([]any); len(gs) != 2 {
		t.Fatalf("fleet prune dry run groups %v", gs)
	}
	call(t, "POST", api+"/apps/web/stop?dry_run=maybe", nil).expect(t, 400, nil)
	if _, after := logEnd(t, c); after != before {
		t.Fatalf("dry runs appended: log end %d -> %d", before, after)
	}
	call(t, "GET", api+"/apps/new", nil).expect(t, 403, nil)
}
