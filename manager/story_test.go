package manager_test

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/chain"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// TestDeviceStoryAndPagedHistory (issue 20): a device's history lists each
// version it applied with the events that made it, who made them, and the
// rollout decisions that brought it to the device; an app's history comes
// a page at a time.
func TestDeviceStoryAndPagedHistory(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	m := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: "story-admin-token"})
	testmanager.StartReporter(t, b.Addr())
	api := m.URL + "/api/v2"
	adm := bearer("story-admin-token")
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx:1"}, adm...).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/device_groups/edge", `{"apps": ["web"], "rollout": {"waves": [50, 100], "min_healthy_time": "1s",
		"healthy_deadline": "10m", "auto_promote": false}}`, adm...).expect(t, http.StatusOK, nil)
	v1 := call(t, "GET", api+"/device_groups/edge", nil, adm...).num(t, "device_group_id")
	report := func(version int64, at int64) {
		t.Helper()
		r := deviceReport("device-1", "edge", "host-1", at, true)
		r["applied_version"] = version
		call(t, "POST", api+"/reports", r, adm...).expect(t, http.StatusAccepted, nil)
	}
	report(v1, 1000)
	report(v1, 1001) // the same version again: no new step
	v2 := call(t, "PUT", api+"/apps/web/update", map[string]any{"docker_image": "nginx:2"}, adm...).num(t, "app_id")
	call(t, "POST", api+"/device_groups/edge/rollout/promote", nil, adm...).expect(t, http.StatusAccepted, nil)
	report(v2, 1002)

	var story response
	testenv.WaitFor(t, "the device's two versions", 30*time.Second, func() bool {
		story = call(t, "GET", api+"/devices/device-1/history", nil, adm...)
		steps, _ := story.body["history"].([]any)
		return story.status == http.StatusOK && len(steps) == 2
	})
	steps := story.body["history"].([]any)
	first, second := steps[0].(map[string]any), steps[1].(map[string]any)
	if first["version"] != float64(v1) || second["version"] != float64(v2) || second["previous_version"] != float64(v1) {
		t.Fatalf("versions: %s", story.raw)
	}
	// The second version was made by the app's change, by the admin, and
	// rolled out to the device by the promotion.
	evs := second["events"].([]any)
	last := evs[len(evs)-1].(map[string]any)
	if last["offset"] != float64(v2) || last["type"] != "app.patched" || last["aggregate"].(map[string]any)["name"] != "web" || last["actor"] == "" {
		t.Fatalf("what made version %d: %s", v2, story.raw)
	}
	ro, _ := second["rollout"].(map[string]any)
	if ro == nil || ro["target"] != float64(v2) || ro["reached"] != true {
		t.Fatalf("the rollout of version %d: %s", v2, story.raw)
	}
	var kinds []string
	for _, d := range ro["decisions"].([]any) {
		kinds = append(kinds, d.(map[string]any)["decision"].(string))
	}
	if fmt.Sprint(kinds) != "[start promote]" {
		t.Fatalf("decisions %v: %s", kinds, story.raw)
	}
	page := call(t, "GET", api+"/devices/device-1/history?limit=1", nil, adm...)
	if len(page.body["history"].([]any)) != 1 || page.body["next_after"] == nil {
		t.Fatalf("a page of one: %s", page.raw)
	}
	rest := call(t, "GET", api+"/devices/device-1/history?limit=1&after="+page.body["next_after"].(string), nil, adm...)
	if h := rest.body["history"].([]any); len(h) != 1 || h[0].(map[string]any)["version"] != float64(v2) || rest.body["next_after"] != nil {
		t.Fatalf("the second page: %s", rest.raw)
	}
	call(t, "GET", api+"/devices/device-404x/history", nil, adm...).expect(t, http.StatusForbidden, map[string]any{"device_exists": false})
	call(t, "GET", api+"/devices/device-1/history?limit=0", nil, adm...).expect(t, http.StatusBadRequest, nil)

	// An app's history, a page at a time.
	for i := 3; i <= 7; i++ {
		call(t, "PUT", api+"/apps/web/update", map[string]any{"docker_image": fmt.Sprint("nginx:", i)}, adm...).expect(t, http.StatusAccepted, nil)
	}
	var images []string
	from := "0"
	for pages := 0; from != ""; pages++ {
		h := call(t, "GET", api+"/apps/web/history?limit=3&from="+from, nil, adm...)
		h.expect(t, http.StatusOK, nil)
		for _, v := range h.body["versions"].([]any) {
			ch := v.(map[string]any)["changes"].(map[string]any)
			images = append(images, fmt.Sprint(ch["docker_image"].(map[string]any)["to"]))
		}
		from = ""
		if n, ok := h.body["next_from"].(float64); ok {
			from = fmt.Sprint(int64(n))
		}
		if pages > 3 {
			t.Fatal("pages never end")
		}
	}
	if fmt.Sprint(images) != "[nginx:1 nginx:2 nginx:3 nginx:4 nginx:5 nginx:6 nginx:7]" {
		t.Fatalf("the app's images, page by page: %v", images)
	}
	for _, q := range []string{"limit=0", "limit=1001", "from=x"} {
		call(t, "GET", api+"/apps/web/history?"+q, nil, adm...).expect(t, http.StatusBadRequest, nil)
	}
}

// TestAuditExport (issue 20): /events?format=jsonl|csv streams every event
// the filters keep (one object's through its index), each with its hash
// chain link, which recomputes from the record's bytes; users' records,
// which hold secrets' hashes, are exported without their bytes.
func TestAuditExport(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx:1"}).expect(t, http.StatusOK, nil)
	call(t, "POST", api+"/apps/other", map[string]any{"docker_image": "nginx:1"}).expect(t, http.StatusOK, nil)
	for i := 2; i <= 4; i++ {
		call(t, "PUT", api+"/apps/web/update", map[string]any{"docker_image": fmt.Sprint("nginx:", i)}).expect(t, http.StatusAccepted, nil)
		call(t, "PUT", api+"/apps/other/update", map[string]any{"docker_image": fmt.Sprint("nginx:", i)}).expect(t, http.StatusAccepted, nil)
	}
	// A create of an existing app, as a manager racing another appends
	// it: in the log, rejected by the fold.
	ctx := testenv.Context(t, 30*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{c.addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, events.Envelope{Type: events.AppCreated, Aggregate: events.Aggregate{Kind: events.KindApp, Name: "web"},
		Actor: "racer", Time: time.Now(), Payload: events.AppCreatedV{Spec: events.NewAppSpec("nginx:9")}}); err != nil {
		t.Fatal(err)
	}
	call(t, "POST", api+"/users/auditor", map[string]any{"password": "auditor-password"}).expect(t, http.StatusOK, nil)

	lines := func(query string) []manager.ExportLine {
		t.Helper()
		r := call(t, "GET", api+"/events?format=jsonl&"+query, nil)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%s: %d %s", query, r.status, r.raw)
		}
		var out []manager.ExportLine
		for _, l := range bytes.Split(bytes.TrimSpace(r.raw), []byte("\n")) {
			var el manager.ExportLine
			if err := json.Unmarshal(l, &el); err != nil {
				t.Fatalf("%s: %v in %s", query, err, l)
			}
			out = append(out, el)
		}
		return out
	}
	web := lines("name=web")
	var accepted []bool
	for _, l := range web {
		if l.Event.Aggregate.Name != "web" {
			t.Fatalf("name=web exported %+v", l.Event)
		}
		var prev []byte
		if l.Offset > 0 {
			prev, _ = hex.DecodeString(l.ChainPrev)
		}
		if got := hex.EncodeToString(chain.NewHasher().Next(prev, l.Offset, l.Raw)); got != l.Chain || l.Chain == "" {
			t.Fatalf("offset %d: the link does not recompute: %s != %s", l.Offset, got, l.Chain)
		}
		accepted = append(accepted, l.Verdict.Accepted)
	}
	if fmt.Sprint(accepted) != "[true true true true false]" {
		t.Fatalf("web's events and verdicts: %v", accepted)
	}
	// The whole log, contiguous: each line's chain_prev is the line before's chain.
	all := lines("")
	for i := 1; i < len(all); i++ {
		if all[i].Offset != all[i-1].Offset+1 || all[i].ChainPrev != all[i-1].Chain {
			t.Fatalf("the whole log breaks at offset %d", all[i].Offset)
		}
	}
	user := lines("kind=user")
	if len(user) != 1 || user[0].Raw != nil || !user[0].Redacted || bytes.Contains(mustMarshal(t, user[0]), []byte("$2")) {
		t.Fatalf("a user's record exported: %+v", user)
	}

	r := call(t, "GET", api+"/events?format=csv&name=other", nil)
	var rows [][]string
	rows, err = csv.NewReader(bytes.NewReader(r.raw)).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][0] != "offset" || rows[1][4] != "other" || rows[4][7] != "true" {
		t.Fatalf("csv: %v %q", err, rows)
	}
	call(t, "GET", api+"/events?format=xml", nil).expect(t, http.StatusBadRequest, nil)
	call(t, "GET", api+"/events?kind=apps", nil).expect(t, http.StatusBadRequest, nil)
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
