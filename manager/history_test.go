package manager_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
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
		end := metricValue(t, c.url, "nebula_event_log_end_offset")
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

	end := metricValue(t, c.url, "nebula_event_log_end_offset")
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

// TestHistoryOfAPartWithVerdictsFromTheWhole: history and time travel
// answer as the whole log decided. A record repeating another object's
// command ID is a duplicate in the whole log (rejected) but not among the
// object's own events: the answer must be the whole log's.
func TestHistoryOfAPartWithVerdictsFromTheWhole(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"
	ctx := testenv.Context(t, 30*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{c.addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	appEvent := func(name, commandID string, p events.Payload) int64 {
		t.Helper()
		off, err := l.Append(ctx, events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: events.KindApp, Name: name},
			Actor: "test", CommandID: commandID, Time: time.Now(), Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	appEvent("first", "cmd-1", events.AppCreatedV{Spec: events.NewAppSpec("nginx:1")})
	dup := appEvent("second", "cmd-1", events.AppCreatedV{Spec: events.NewAppSpec("nginx:2")})
	last := appEvent("second", "cmd-2", events.AppStoppedV{})
	r := call(t, "GET", fmt.Sprintf("%s/events?from=%d", api, dup), nil)
	r.expect(t, 200, nil)
	if !strings.Contains(string(r.raw), `"reason":"duplicate"`) {
		t.Fatalf("the repeated command ID is not a duplicate in the whole log: %s", r.raw)
	}

	// In the whole log "second" never existed: its create was a duplicate
	// and its stop found nothing to stop.
	call(t, "GET", api+"/apps/second/history", nil).expect(t, 403, map[string]any{"app_exists": false})
	call(t, "GET", fmt.Sprintf("%s/apps/second?at=%d", api, last), nil).expect(t, 403, map[string]any{"app_exists": false})
	call(t, "GET", api+"/apps/first/history", nil).expect(t, 200, map[string]any{"app_name": "first"})
	call(t, "GET", fmt.Sprintf("%s/apps/first?at=%d", api, last), nil).expect(t, 200, map[string]any{"docker_image": "nginx:1"})
}
