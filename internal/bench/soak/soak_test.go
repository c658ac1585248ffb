package soak

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/worker/sim"
)

const (
	token           = "soak-admin-token"
	requestDuration = "nebula_http_request_duration_seconds"
)

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)*99/100]
}

// BenchmarkSoak runs for NEBULA_SOAK_DURATION (default 10m, at most 2h):
// 2,000 simulated devices long-polling and reporting every 10 s, and 2
// commands per second through the API (one in 20 changes the devices'
// app: a rollout every 10 s), against a broker, a manager and a reporter,
// each its own process.
func BenchmarkSoak(b *testing.B) {
	dur := 10 * time.Minute
	if v := os.Getenv("NEBULA_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 2*time.Hour {
			b.Fatalf("NEBULA_SOAK_DURATION=%q: a duration up to 2h", v)
		}
		dur = d
	}
	const devices = 2000
	for range b.N {
		kp := testenv.Start(b, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", b.TempDir())
		kafka := kp.WaitLine(b, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
		mp := testenv.Start(b, []string{"AUTH_TOKEN=" + token}, "manager", "--kafka-brokers", kafka, "--listen", "127.0.0.1:0",
			"--data-dir", b.TempDir(), "--report-ttl", "2m")
		url := mp.WaitLine(b, regexp.MustCompile(`API on (http://\S+)/api/v2 `), 60*time.Second)[1]
		mp.WaitLine(b, regexp.MustCompile(`nebula manager: ready`), 60*time.Second)
		rp := testenv.Start(b, nil, "reporter", "--kafka-brokers", kafka)
		rp.WaitLine(b, regexp.MustCompile(`nebula reporter: consuming`), 60*time.Second)

		client := &http.Client{Timeout: 30 * time.Second}
		call := func(method, path, body string) (int, string, time.Duration) {
			req, _ := http.NewRequest(method, url+"/api/v2"+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
			req.Header.Set("Authorization", "Bearer "+token)
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return 0, err.Error(), time.Since(start)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(out), time.Since(start)
		}
		setup := [][3]string{{"POST", "/apps/web", `{"docker_image": "registry.local/web:1"}`},
			{"POST", "/device_groups/soak", `{"apps": ["web"]}`}}
		for i := range 10 {
			setup = append(setup, [3]string{"POST", fmt.Sprintf("/apps/other%d", i), `{"docker_image": "registry.local/other:1"}`})
		}
		for _, c := range setup {
			if code, body, _ := call(c[0], c[1], c[2]); code != 200 {
				b.Fatalf("%s %s: %d %s", c[0], c[1], code, body)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Minute)
		defer cancel()
		fleet := sim.Start(ctx, sim.Config{Devices: devices, Group: "soak", Manager: url, Token: token, CheckIn: 30 * time.Second,
			ReportInterval: 10 * time.Second, StartSpread: 10 * time.Second})

		var cmdErrs atomic.Int64
		var firstErr atomic.Value
		cmdLat := make(chan time.Duration, 1024)
		stopCmds := make(chan struct{})
		cmdsDone := make(chan struct{})
		go func() {
			defer close(cmdsDone)
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for n := 0; ; n++ {
				select {
				case <-stopCmds:
					return
				case <-t.C:
				}
				// Most commands change apps no device runs; every 20th (each
				// 10 s) changes the fleet's app: a rollout to every device.
				app := fmt.Sprintf("other%d", n%10)
				if n%20 == 0 {
					app = "web"
				}
				code, body, d := call("PATCH", "/apps/"+app+"/update", fmt.Sprintf(`{"env_vars": {"N": "%d"}}`, n))
				if code != 202 {
					cmdErrs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
					continue
				}
				cmdLat <- d
			}
		}()

		fmt.Printf("soak: %d devices, 2 commands/s, for %v\n", devices, dur)
		// Memory is compared from the minute the reports' retention (2m)
		// is reached: what grows after that is not retention.
		baseMinute := 3
		if dur < 4*time.Minute {
			baseMinute = 1
		}
		fmt.Printf("%8s %8s %10s %12s %14s %12s %12s\n", "minute", "errors", "cmds", "cmd_p99_ms", "manager_p99_ms", "manager_MB", "reporter_MB")
		bounds, hist := testenv.Histogram(b, url, requestDuration)
		var firstCmdP99, lastCmdP99 time.Duration
		var baseRSS, lastRSS float64
		start := time.Now()
		for minute := 1; time.Since(start) < dur; minute++ {
			var lat []time.Duration
			deadline := start.Add(time.Duration(minute) * time.Minute)
			for time.Now().Before(deadline) && time.Since(start) < dur {
				select {
				case d := <-cmdLat:
					lat = append(lat, d)
				case <-time.After(time.Until(deadline)):
				}
			}
			_, next := testenv.Histogram(b, url, requestDuration)
			mp99 := 1000 * testenv.Quantile(bounds, hist, next, 0.99)
			hist = next
			cp := p99(lat)
			mRSS, rRSS := testenv.ProcessUsage(b, mp.Cmd.Process.Pid).RSS, testenv.ProcessUsage(b, rp.Cmd.Process.Pid).RSS
			fmt.Printf("%8d %8d %10d %12.1f %14.1f %12.1f %12.1f\n", minute, cmdErrs.Load(), len(lat),
				float64(cp.Microseconds())/1000, mp99, mRSS, rRSS)
			if minute == 1 {
				firstCmdP99 = cp
			}
			if minute == baseMinute {
				baseRSS = mRSS
			}
			lastCmdP99, lastRSS = cp, mRSS
		}
		close(stopCmds)
		<-cmdsDone

		// Every device converges on the last version and is known to
		// the reports projection.
		h, _ := http.NewRequest("GET", url+"/api/v2/device_groups/soak", nil)
		h.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(h)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		var version int64
		fmt.Sscanf(resp.Header.Get("ETag"), `"%d"`, &version)
		for fleet.AtVersion(version) < devices {
			if ctx.Err() != nil {
				b.Fatalf("%d of %d devices at the last version %d", fleet.AtVersion(version), devices, version)
			}
			time.Sleep(200 * time.Millisecond)
		}
		var converged string
		for i := 0; i < 120; i++ {
			_, body, _ := call("GET", "/device_groups/soak/rollout?silent_after=1m", "")
			if converged = body; strings.Contains(body, fmt.Sprintf(`"converged":%d`, devices)) {
				break
			}
			time.Sleep(time.Second)
		}
		cancel()
		fleet.Wait()
		drift := float64(lastCmdP99) / float64(max(firstCmdP99, time.Millisecond))
		growth := lastRSS / max(baseRSS, 1)
		fmt.Printf("soak: %d command errors; command p99 %v in the first minute, %v in the last (x%.2f); manager RSS %.0f MB at minute %d, %.0f MB at the end (x%.2f)\n",
			cmdErrs.Load(), firstCmdP99, lastCmdP99, drift, baseRSS, baseMinute, lastRSS, growth)
		switch {
		case cmdErrs.Load() > 0:
			b.Errorf("%d commands failed, first: %v", cmdErrs.Load(), firstErr.Load())
		case !strings.Contains(converged, fmt.Sprintf(`"converged":%d`, devices)):
			b.Errorf("the rollout did not show all %d devices converged: %s", devices, converged)
		case drift > 3:
			b.Errorf("command p99 drifted x%.2f", drift)
		case growth > 1.5 && lastRSS-baseRSS > 100:
			b.Errorf("manager RSS grew x%.2f", growth)
		}
	}
}
