package fleetbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/worker/sim"
	"github.com/nebula-orchestrator/nebula-go/worker/simengine"
)

// BenchmarkSafeRollout (issue 18): 10,000 simulated devices (1 in 100
// labelled canary) long-polling one manager (`nebula manager` and `nebula
// reporter` in their own processes), on a group whose policy has 4 waves
// and a short min_healthy_time. A good version: the time from the API
// call to completion, against the sum of the waves' minimum healthy times
// (the baseline: no rollout can be faster). A bad version (its containers
// exit): the time from the failures crossing the threshold (the report
// that crossed it, as the abort records) to the revert being served to a
// canary,
// target under 1 s, and how many devices it was served to (the canaries
// and the first wave's 1%).
func BenchmarkSafeRollout(b *testing.B) {
	devices := 10_000
	if s := os.Getenv("FLEETBENCH_ROLLOUT_DEVICES"); s != "" {
		devices, _ = strconv.Atoi(s)
	}
	const minHealthy = 2 * time.Second
	waves := []int{1, 10, 50, 100}
	for range b.N {
		m := startManager(b)
		testenv.Start(b, nil, "reporter", "--kafka-brokers", m.kafka)
		url := m.url
		call(b, "POST", url+"/api/v2/apps/web", `{"docker_image": "registry.local/web:1"}`, 200)
		policy := fmt.Sprintf(`{"waves": [1, 10, 50, 100], "min_healthy_time": %q, "healthy_deadline": "5m", "max_failed_percent": 5,
			"canary_labels": {"ring": "canary"}}`, minHealthy.String())
		call(b, "POST", url+"/api/v2/device_groups/edge", `{"apps": ["web"], "rollout": `+policy+`}`, 200)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		fleet := sim.Start(ctx, sim.Config{Devices: devices, Group: "edge", Manager: url, Token: token, CheckIn: 30 * time.Second,
			ReportInterval: 10 * time.Second, StartSpread: 10 * time.Second,
			Labels: func(i int) map[string]string {
				if i%100 == 0 {
					return map[string]string{"ring": "canary"}
				}
				return nil
			}})
		waitAll(b, ctx, url, fleet, devices)
		// Every device in the inventory before a rollout judges it.
		for inventory(b, url) < devices {
			if ctx.Err() != nil {
				b.Fatalf("%d of %d devices in the inventory", inventory(b, url), devices)
			}
			time.Sleep(500 * time.Millisecond)
		}

		// A good version, through the 4 waves.
		start := time.Now()
		call(b, "PATCH", url+"/api/v2/apps/web/update", `{"docker_image": "registry.local/web:2"}`, 202)
		for rolloutState(b, url).State != "completed" {
			if ctx.Err() != nil {
				b.Fatalf("the good rollout did not complete: %+v", rolloutState(b, url))
			}
			time.Sleep(50 * time.Millisecond)
		}
		complete := time.Since(start)
		baseline := time.Duration(len(waves)) * minHealthy

		// A bad version: its containers exit at once.
		bad := "registry.local/web:" + simengine.CrashImage
		call(b, "PATCH", url+"/api/v2/apps/web/update", `{"docker_image": "`+bad+`"}`, 202)
		// The canary is served the bad version, then the stable one again:
		// polled every 10 ms (a cached answer; GET .../rollout reads the
		// whole inventory and would load the manager it measures).
		for served := false; ; time.Sleep(10 * time.Millisecond) {
			if ctx.Err() != nil {
				b.Fatalf("the bad rollout was not reverted: %+v", rolloutState(b, url))
			}
			img := canaryServed(b, url)
			if img == bad {
				served = true
			} else if served {
				break
			}
		}
		reverted := time.Now()
		// The devices the bad version was served to: those of the waves
		// active when the rollout aborted (the abort's counts); the abort
		// says when the threshold was crossed (the report that crossed it).
		final := rolloutState(b, url)
		n := len(final.Decisions)
		abort := final.Decisions[n-1]
		if final.State != "reverted" || abort.Counts == nil || abort.Since == nil {
			b.Fatalf("the bad rollout: %+v", final)
		}
		vals := map[string]float64{
			"devices":                 float64(devices),
			"good_complete_s":         complete.Seconds(),
			"min_healthy_sum_s":       baseline.Seconds(),
			"good_vs_baseline":        complete.Seconds() / baseline.Seconds(),
			"revert_after_cross_ms":   float64(reverted.Sub(*abort.Since).Milliseconds()),
			"decided_after_cross_ms":  float64(abort.Time.Sub(*abort.Since).Milliseconds()),
			"served_after_decided_ms": float64(reverted.Sub(abort.Time).Milliseconds()),
			"bad_served_devices":      float64(abort.Counts.Devices),
			"canary_devices":          float64(devices / 100),
			"first_wave_devices":      float64(devices) * float64(waves[0]) / 100,
		}
		cancel()
		fleet.Wait()
		b.Logf("%d devices, waves %v, min_healthy_time %v: %v", devices, waves, minHealthy, vals)
		benchrec.Record(b, "rollouts", fmt.Sprintf("%d devices", devices), vals)
		b.ReportMetric(vals["good_vs_baseline"], "x_min_healthy_sum")
		b.ReportMetric(vals["revert_after_cross_ms"], "revert_ms")
	}
}

// inventory counts the devices the manager knows in group edge.
func inventory(tb testing.TB, url string) int {
	n, last := 0, ""
	for {
		_, body := call(tb, "GET", url+"/api/v2/devices?device_group=edge&page_size=10000&last_id="+last, "", 200)
		var page struct {
			Devices []json.RawMessage `json:"devices"`
			LastID  *string           `json:"last_id"`
		}
		_ = json.Unmarshal(body, &page)
		n += len(page.Devices)
		if page.LastID == nil {
			return n
		}
		last = *page.LastID
	}
}

type benchRollout struct {
	State     string `json:"state"`
	Decisions []struct {
		Time   time.Time  `json:"time"`
		Since  *time.Time `json:"since"`
		Counts *struct {
			Devices int `json:"devices"`
		} `json:"counts"`
	} `json:"decisions"`
	Waves []struct {
		Devices int    `json:"devices"`
		Failed  int    `json:"failed"`
		State   string `json:"state"`
	} `json:"waves"`
}

func rolloutState(tb testing.TB, url string) benchRollout {
	_, body := call(tb, "GET", url+"/api/v2/device_groups/edge/rollout", "", 200)
	var r struct {
		Rollout benchRollout `json:"rollout"`
	}
	_ = json.Unmarshal(body, &r)
	return r.Rollout
}

// canaryServed is the image a canary device is served.
func canaryServed(tb testing.TB, url string) string {
	req := url + "/api/v2/device_groups/edge/info"
	_, _, body := request(tb, "GET", req, "", "Nebula-Device-Id", "sim-00000000", "Nebula-Device-Labels", "ring=canary")
	var info struct {
		Apps []struct {
			Image string `json:"docker_image"`
		} `json:"apps"`
	}
	_ = json.Unmarshal(body, &info)
	if len(info.Apps) == 0 {
		return ""
	}
	return strings.TrimSpace(info.Apps[0].Image)
}
