package fleetbench

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
)

// wrkResult is what wrk measured.
type wrkResult struct {
	rps, p99ms float64
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99    = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)\b`)
	wrkBad    = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkErrors = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// runWrk loads url with Debian's wrk (C, one thread) for dur at conns
// keep-alive connections with headers; any answer that is not 2xx or
// 3xx, and any socket error but a read error at the end, fails.
func runWrk(tb testing.TB, url string, conns int, dur time.Duration, headers ...string) wrkResult {
	tb.Helper()
	bin, err := exec.LookPath("wrk")
	if err != nil {
		tb.Fatal("wrk is not installed: `make deps` installs Debian's wrk")
	}
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(dur.Seconds())) + "s", "--latency", "--timeout", "10s"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	out, err := exec.Command(bin, append(args, url)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("wrk %v: %v\n%s", args, err, out)
	}
	if m := wrkBad.FindSubmatch(out); m != nil {
		tb.Fatalf("wrk: %s answers not 2xx or 3xx\n%s", m[1], out)
	}
	if m := wrkErrors.FindSubmatch(out); m != nil && (string(m[1]) != "0" || string(m[3]) != "0" || string(m[4]) != "0") {
		tb.Fatalf("wrk: socket errors\n%s", out)
	}
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		tb.Fatalf("wrk printed no rate:\n%s", out)
	}
	var r wrkResult
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	if p := wrkP99.FindSubmatch(out); p != nil {
		v, _ := strconv.ParseFloat(string(p[1]), 64)
		r.p99ms = v * map[string]float64{"us": 0.001, "ms": 1, "s": 1000}[string(p[2])]
	}
	return r
}

// statusWith is the status of a GET of url with headers ("Name: value").
func statusWith(tb testing.TB, url string, headers []string) int {
	tb.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// BenchmarkInfoWrk: GET /api/v2/device_groups/<g>/info measured with wrk
// (Debian's, C, one thread: a load generator nobody here wrote, lighter
// than ours; the median of three rounds), 200 and 304 (If-None-Match), at 100 and 1,000 keep-alive
// connections, with a device's credentials as Bearer (a token) and Basic
// (a user's password), against the manager, nginx (one worker: wrk takes
// the other core) serving the same bytes as a static file, and a bare Go
// handler, each in its own process. The headline of issue 21: the manager
// at >= 0.8x nginx.
func BenchmarkInfoWrk(b *testing.B) {
	conns := []int{100, 1000}
	// This machine's speed drifts from one second to the next (nginx
	// alone varied 26,000-49,000 req/s between rows of one run): each row
	// takes three rounds of the three servers in turn, 3 s each, and
	// keeps each server's median.
	const rounds, dur = 3, 3 * time.Second
	for range b.N {
		m, path, servers := infoServers(b, "1")
		// A device's user: a password, and read access to edge.
		_, body := call(b, "POST", m.url+"/api/v2/users/device-1", `{"password": "device-1-password"}`, 200)
		tok := regexp.MustCompile(`"token":\s*"([^"]+)"`).FindSubmatch(body)
		if tok == nil {
			b.Fatalf("no token for the device's user: %s", body)
		}
		call(b, "POST", m.url+"/api/v2/user_groups/devices", `{"group_members": ["device-1"], "device_groups": {"edge": "ro"}}`, 200)
		auths := []struct{ name, header string }{
			{"Bearer", "Authorization: Bearer " + string(tok[1])},
			{"Basic", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("device-1:device-1-password"))},
		}
		for _, n := range conns {
			for _, kind := range []string{"200", "304"} {
				for _, auth := range auths {
					vals := map[string]float64{"conns": float64(n)}
					got := map[string][]wrkResult{}
					for round := range rounds {
						for _, s := range servers {
							headers := []string{auth.header}
							if kind == "304" {
								headers = append(headers, "If-None-Match: "+s.etag)
							}
							// The status wanted, checked once (wrk counts any
							// 2xx or 3xx as fine).
							want := map[string]int{"200": http.StatusOK, "304": http.StatusNotModified}[kind]
							if status := statusWith(b, s.base+path, headers); round == 0 && status != want {
								b.Fatalf("%s %s %s: %d, want %d", s.name, kind, auth.name, status, want)
							}
							res := runWrk(b, s.base+path, n, dur, headers...)
							got[s.name] = append(got[s.name], res)
							b.Logf("wrk: %s %s %s at %d conns, round %d: %.0f req/s, p99 %.2f ms", s.name, kind, auth.name, n, round+1, res.rps, res.p99ms)
						}
					}
					for name, rs := range got {
						slices.SortFunc(rs, func(a, b wrkResult) int { return cmp.Compare(a.rps, b.rps) })
						key := strings.ReplaceAll(name, " ", "_")
						vals[key+"_rps"], vals[key+"_p99_ms"] = rs[len(rs)/2].rps, rs[len(rs)/2].p99ms
					}
					vals["vs_nginx"] = vals["nebula_rps"] / vals["nginx_rps"]
					vals["vs_bare_go"] = vals["nebula_rps"] / vals["bare_Go_rps"]
					b.ReportMetric(vals["vs_nginx"], fmt.Sprintf("x_nginx_%s_%s_%d", kind, auth.name, n))
					benchrec.Record(b, "info_wrk", fmt.Sprintf("%s, %s, %d connections", kind, auth.name, n), vals)
				}
			}
		}
	}
}
