package manager_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// BenchmarkHistory (issue 20): the audit reads as the log grows. For each
// log size (NEBULA_HISTORY_EVENTS, comma-separated; 10,000 and 1,000,000 by
// default) a fleet's log is appended, a manager folds it, a device reports
// 50 versions, and each read is timed 1,000 times over HTTP, one at a time:
// a device group's /info ?at= a random offset, an app ?at= a random time,
// the first page of an app's history, a device's history, and one app's
// events. Each p99 is shown next to the same read's p99 on the smallest
// log of the run (vs_smallest: the target is under 2). All the logs are
// served at once and each read is timed on every log in turn.
func BenchmarkHistory(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if v := os.Getenv("NEBULA_HISTORY_EVENTS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 10000 {
				b.Fatalf("NEBULA_HISTORY_EVENTS: %q is not a log size of at least 10000", f)
			}
			sizes = append(sizes, n)
		}
		slices.Sort(sizes)
	}
	reads := []struct{ name, what string }{
		{"info_at", "a device group's /info ?at= a random offset"},
		{"app_at_time", "an app ?at= a random time"},
		{"app_history", "an app's history, first page (100 versions)"},
		{"device_history", "a device's history (50 versions, each with what made it)"},
		{"events_by_name", "one app's events, first page (100)"},
	}
	for range b.N {
		logs := make([]*historyLogServed, len(sizes))
		for i, n := range sizes {
			logs[i] = serveHistoryLog(b, n)
		}
		// Let the stores settle after the fold (their compactions), as a
		// manager serving audits would have.
		time.Sleep(5 * time.Second)
		for _, rd := range reads {
			for _, h := range logs {
				for range 50 { // warm up
					h.get(h.path(rd.name))
				}
			}
			// The sizes in turn, one read each, so that the machine's
			// drift (a VM's) weighs on every size alike.
			took := make([][]float64, len(logs))
			for range 1000 {
				for i, h := range logs {
					p := h.path(rd.name)
					t0 := time.Now()
					h.get(p)
					took[i] = append(took[i], float64(time.Since(t0).Microseconds())/1000)
				}
			}
			var smallest float64
			for i, h := range logs {
				slices.Sort(took[i])
				p50, p99 := took[i][len(took[i])/2], took[i][len(took[i])*99/100]
				if i == 0 {
					smallest = p99
				}
				vs := p99 / smallest
				m := fmt.Sprintf("%s_%d_", rd.name, h.n)
				b.ReportMetric(p50, m+"p50_ms")
				b.ReportMetric(p99, m+"p99_ms")
				b.ReportMetric(vs, m+"vs_smallest")
				benchrec.Record(b, "history", fmt.Sprintf("%s, %d events", rd.what, h.n), map[string]float64{
					"events": float64(h.n), "p50_ms": p50, "p99_ms": p99, "p99_vs_smallest_log": vs})
			}
		}
		for _, h := range logs {
			b.ReportMetric(float64(h.n)/h.appended.Seconds(), fmt.Sprintf("appended_events_%d/s", h.n))
			b.ReportMetric(float64(h.n)/h.folded.Seconds(), fmt.Sprintf("folded_events_%d/s", h.n))
		}
	}
}

// historyLogServed is a log of n events folded and served by a manager.
type historyLogServed struct {
	n                int
	appended, folded time.Duration
	get              func(path string) []byte
	path             func(read string) string
}

// historyLog appends n events of a fleet's mix: 2,000 apps, 200 groups of
// 10 apps (g0 holds app0), then image patches (app0's one in 100), env
// changes, stops and starts, group changes (not g0's) and deletes and
// re-creates. It returns the offsets and times of every 500th event.
func historyLog(b *testing.B, l *kafkalog.Log, n int) (offsets []int64, times []time.Time) {
	b.Helper()
	const apps, groups = 2000, 200
	ctx := testenv.Context(b, 10*time.Minute)
	rnd := rand.New(rand.NewPCG(7, 8))
	var envs []events.Envelope
	deleted := map[int]bool{}
	for i := range n {
		k := rnd.IntN(apps)
		a := fmt.Sprint("app", k)
		var p events.Payload
		var agg = events.Aggregate{Kind: events.KindApp, Name: a}
		switch r := rnd.IntN(100); {
		case i < apps:
			a = fmt.Sprint("app", i)
			agg.Name, p = a, events.AppCreatedV{Spec: events.NewAppSpec("registry.local/" + a + ":1")}
		case i < apps+groups:
			g := i - apps
			members := make([]string, 10)
			for j := range members {
				members[j] = fmt.Sprint("app", (g*10+j)%apps)
			}
			agg, p = events.Aggregate{Kind: events.KindDeviceGroup, Name: fmt.Sprint("g", g)}, events.DeviceGroupCreatedV{Spec: events.DeviceGroupSpec{Apps: members, CronJobs: []string{}}}
		case i%100 == 0:
			agg.Name, p = "app0", events.AppPatchedV{Patch: events.AppPatch{DockerImage: new(fmt.Sprint("registry.local/app0:", i))}}
		case k < 10 && k != 0 && r < 2:
			// Deletes and re-creates, of apps outside g0.
			if deleted[k] {
				p = events.AppCreatedV{Spec: events.NewAppSpec("registry.local/" + a + ":1")}
			} else {
				p = events.AppDeletedV{}
			}
			deleted[k] = !deleted[k]
		case deleted[k]:
			p = events.AppCreatedV{Spec: events.NewAppSpec("registry.local/" + a + ":1")}
			deleted[k] = false
		case r < 70:
			p = events.AppPatchedV{Patch: events.AppPatch{DockerImage: new(fmt.Sprintf("registry.local/%s:%d", a, i))}}
		case r < 80:
			p = events.AppPatchedV{Patch: events.AppPatch{RunPatch: events.RunPatch{EnvVars: &map[string]string{"REV": fmt.Sprint(i)}}}}
		case r < 90:
			p = events.AppRestartedV{}
		default:
			g := 1 + rnd.IntN(groups-1)
			members := []string{fmt.Sprint("app", 10+rnd.IntN(apps-10)), fmt.Sprint("app", 10+rnd.IntN(apps-10))}
			if members[0] == members[1] {
				members = members[:1]
			}
			agg, p = events.Aggregate{Kind: events.KindDeviceGroup, Name: fmt.Sprint("g", g)}, events.DeviceGroupPatchedV{Patch: events.DeviceGroupPatch{Apps: &members}}
		}
		envs = append(envs, events.Envelope{Type: p.EventType(), Aggregate: agg, Actor: "bench", Time: time.Now().UTC(), Payload: p,
			CommandID: fmt.Sprint("bench-", i)})
		if len(envs) == 500 || i == n-1 {
			offs, err := l.AppendBatch(ctx, envs)
			if err != nil {
				b.Fatal(err)
			}
			offsets, times = append(offsets, offs[len(offs)-1]), append(times, envs[len(envs)-1].Time)
			envs = envs[:0]
		}
	}
	return offsets, times
}

func serveHistoryLog(b *testing.B, n int) *historyLogServed {
	br := testenv.StartBroker(b, b.TempDir())
	ctx := testenv.Context(b, 20*time.Minute)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{br.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	offsets, times := historyLog(b, l, n)
	last := offsets[len(offsets)-1]
	appended := time.Since(start)

	const token = "history-bench-token"
	start = time.Now()
	m := testmanager.Start(b, br.Addr(), b.TempDir(), manager.Auth{Enabled: true, Token: token})
	testmanager.StartReporter(b, br.Addr())
	api := m.URL + "/api/v2"
	slow := &http.Client{Timeout: 10 * time.Minute}
	try := func(c *http.Client, path string) (int, []byte) {
		req, _ := http.NewRequest("GET", api+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, body
	}
	get := func(c *http.Client, path string) []byte {
		code, body := try(c, path)
		if code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, code, body)
		}
		return body
	}
	get(slow, fmt.Sprintf("/device_groups/g0/info?at=%d", last)) // waits for the fold to reach the end
	folded := time.Since(start)

	// A device of g0 reports 50 of its versions: app0's last 50 patches
	// (offsets that are multiples of 100), as a device that took each
	// change would, so that its story is the same work at every size.
	const device = "bench-device-0001"
	versions := make([]int64, 50)
	for i := range versions {
		versions[i] = (last/100 - 49 + int64(i)) * 100
	}
	for i, v := range versions {
		r := deviceReport(device, "g0", "bench-host", int64(1000+i), true)
		r["applied_version"] = v
		body, _ := json.Marshal(r)
		req, _ := http.NewRequest("POST", api+"/reports", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := testClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("report: %s", resp.Status)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, body := try(testClient, "/devices/"+device+"/history?limit=100"); bytes.Contains(body, []byte(fmt.Sprintf(`"version":%d`, versions[49]))) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the device's reports were not folded in a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}

	rnd := rand.New(rand.NewPCG(9, 10))
	path := func(read string) string {
		switch read {
		case "info_at":
			return fmt.Sprintf("/device_groups/g0/info?at=%d", 2200+rnd.Int64N(last-2200+1)) // g0 is made at 2000
		case "app_at_time":
			return "/apps/app0?at=" + url.QueryEscape(times[rnd.IntN(len(times))].Format(time.RFC3339Nano))
		case "app_history":
			return "/apps/app0/history?limit=100"
		case "device_history":
			return "/devices/" + device + "/history?limit=100"
		}
		return "/events?name=app0&limit=100"
	}
	return &historyLogServed{n: n, appended: appended, folded: folded, path: path,
		get: func(p string) []byte { return get(testClient, p) }}
}
