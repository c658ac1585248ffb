package manager_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// load sends n GET requests to url from c concurrent keep-alive clients
// and returns requests/s and the 99th percentile latency. Every answer
// must have status want.
func load(b *testing.B, url string, header http.Header, n, c, want int) (float64, time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	lat := make([][]time.Duration, c)
	var failed sync.Once
	var failure error
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			for range n / c {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header = header.Clone()
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != want {
						err = fmt.Errorf("status %d, want %d", resp.StatusCode, want)
					}
				}
				if err != nil {
					failed.Do(func() { failure = err })
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	if failure != nil {
		b.Fatal(failure)
	}
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	return float64(len(all)) / elapsed.Seconds(), all[len(all)*99/100]
}

// BenchmarkInfo serves /device_groups/<dg>/info (auth on, Bearer token of
// a device user, from the cache) to a load generator, next to a baseline
// measured in the same run: a minimal net/http handler writing the same
// pre-rendered bytes (or a bare 304). Target: at least 0.8x the baseline.
func BenchmarkInfo(b *testing.B) {
	const n, c = 20000, 32
	for range b.N {
		fx := newInfoFixture(b)
		info, dev, etag := fx.url+"/api/v2/device_groups/edge/info", fx.dev, fx.etag

		base := httptest.NewServer(fx.bare())
		defer base.Close()

		// Warm up both, then measure each path: baseline, then Nebula.
		load(b, base.URL, nil, 2000, c, 200)
		load(b, info, dev, 2000, c, 200)
		baseRate, baseP99 := load(b, base.URL, nil, n, c, 200)
		rate, p99 := load(b, info, dev, n, c, 200)
		cond := http.Header{"If-None-Match": {etag}}
		devCond := dev.Clone()
		devCond.Set("If-None-Match", etag)
		base304, base304P99 := load(b, base.URL, cond, n, c, 304)
		rate304, p99304 := load(b, info, devCond, n, c, 304)

		b.ReportMetric(baseRate, "baseline_200_req/s")
		b.ReportMetric(rate, "info_200_req/s")
		b.ReportMetric(rate/baseRate, "info/baseline_200")
		b.ReportMetric(float64(baseP99.Microseconds())/1000, "baseline_200_p99_ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "info_200_p99_ms")
		b.ReportMetric(base304, "baseline_304_req/s")
		b.ReportMetric(rate304, "info_304_req/s")
		b.ReportMetric(rate304/base304, "info/baseline_304")
		b.ReportMetric(float64(base304P99.Microseconds())/1000, "baseline_304_p99_ms")
		b.ReportMetric(float64(p99304.Microseconds())/1000, "info_304_p99_ms")
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func decodeJSON(b *testing.B, resp *http.Response, v any) {
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		b.Fatal(err)
	}
}

// infoFixture is a manager (auth on) serving a device group of 3 apps to
// a device user: what the /info benchmarks ask it.
type infoFixture struct {
	url     string
	handler http.Handler
	dev     http.Header // the device's Bearer token
	etag    string
	body    []byte
}

func newInfoFixture(b *testing.B) infoFixture {
	br := testenv.StartBroker(b, b.TempDir())
	m := launch(b, br.Addr(), b.TempDir(), manager.Auth{Enabled: true, Token: "bench-admin-token"})
	api := m.URL + "/api/v2"
	adm := http.Header{"Authorization": {"Bearer bench-admin-token"}, "Content-Type": {"application/json"}}
	must := func(method, path, body string, want int) *http.Response {
		req, _ := http.NewRequest(method, api+path, stringsReader(body))
		req.Header = adm.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != want {
			b.Fatalf("%s %s: %v %v", method, path, resp, err)
		}
		return resp
	}
	for i := range 3 {
		must("POST", fmt.Sprintf("/apps/app%d", i), `{"docker_image":"registry.local/app:1.0","starting_ports":[80],"env_vars":{"MODE":"prod"}}`, 200)
	}
	must("POST", "/device_groups/edge", `{"apps":["app0","app1","app2"]}`, 200)
	tokenResp := must("POST", "/users/device", `{"password":"device-password"}`, 200)
	var created struct{ Token string }
	decodeJSON(b, tokenResp, &created)
	must("POST", "/user_groups/devices", `{"group_members":["device"],"device_groups":{"edge":"ro"}}`, 200)
	dev := http.Header{"Authorization": {"Bearer " + created.Token}}
	req, _ := http.NewRequest("GET", api+"/device_groups/edge/info", nil)
	req.Header = dev.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET info: %v %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return infoFixture{url: m.URL, handler: m.Handler, dev: dev, etag: resp.Header.Get("ETag"), body: body}
}

// bare is the baseline of the /info benchmarks: a handler that writes
// the fixture's answer (or a 304 for its ETag) and does nothing else.
func (fx infoFixture) bare() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == fx.etag {
			w.Header().Set("ETag", fx.etag)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", fx.etag)
		_, _ = w.Write(fx.body)
	})
}
