package fleetbench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/bench/benchrec"
	"github.com/nebula-orchestrator/nebula-go/internal/bench/loadgen"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// startNginx serves root on a free port (Debian's nginx, run by the
// benchmark with its own configuration, workers worker processes: a
// number or "auto") and returns its address.
func startNginx(tb testing.TB, root, workers string) string {
	tb.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			tb.Fatal("nginx is not installed: `make deps` installs Debian's nginx-light")
		}
	}
	addr := testenv.FreeAddr(tb)
	dir := tb.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes %[4]s;
worker_rlimit_nofile 20000;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
user root;
events { worker_connections 16000; multi_accept on; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  server {
    listen %[2]s backlog=4096;
    root %[3]s;
    default_type application/json;
  }
}
`, dir, addr, root, workers)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if i == 100 {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			tb.Fatalf("nginx did not listen on %s: %s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkInfoVsNginx: GET /api/v2/device_groups/<g>/info (200, and 304
// with If-None-Match) at 10,000 keep-alive connections (FLEETBENCH_CONNS
// for others), against the manager (a device's Bearer token), nginx
// serving the same bytes as a static file, and a bare Go handler, each in
// its own process; the load generator is ours (Go) and shares the
// machine: BenchmarkInfoWrk, with wrk, is the headline.
func BenchmarkInfoVsNginx(b *testing.B) {
	conns := []int{10000}
	if s := os.Getenv("FLEETBENCH_CONNS"); s != "" {
		conns = nil
		for _, f := range strings.Split(s, ",") {
			var n int
			fmt.Sscan(f, &n)
			conns = append(conns, n)
		}
	}
	dur := 3 * time.Second
	for range b.N {
		m, path, servers := infoServers(b, "auto")

		for _, n := range conns {
			for _, kind := range []string{"200", "304"} {
				vals := map[string]float64{"conns": float64(n)}
				for _, s := range servers {
					hdr := http.Header{"Authorization": {"Bearer " + token}}
					want := http.StatusOK
					if kind == "304" {
						hdr.Set("If-None-Match", s.etag)
						want = http.StatusNotModified
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					profiled := make(chan struct{})
					if s.name == "nebula" && kind == "200" && n == conns[0] {
						// The evidence of the profile-guided pass: where the
						// manager's CPU goes while serving /info.
						go func() {
							defer close(profiled)
							time.Sleep(time.Second) // past the connects
							m.profile(b, "profile?seconds=2", fmt.Sprintf("manager-info-200-%d.cpu", n))
						}()
					} else {
						close(profiled)
					}
					res, err := loadgen.Run(ctx, loadgen.Config{URL: s.base + path, Conns: n, Duration: dur, Header: hdr, Want: want})
					cancel()
					<-profiled
					if err != nil {
						b.Fatalf("%s, %d connections: %v", s.name, n, err)
					}
					if res.Errors > 0 {
						b.Fatalf("%s, %d connections: %d errors (%s)", s.name, n, res.Errors, res.FirstErr)
					}
					key := strings.ReplaceAll(s.name, " ", "_")
					vals[key+"_rps"], vals[key+"_p99_ms"] = res.RPS, res.P99ms
					b.Logf("%s %s at %d conns: %.0f req/s, p50 %.2f ms, p99 %.2f ms", s.name, kind, n, res.RPS, res.P50ms, res.P99ms)
				}
				vals["vs_nginx"] = vals["nebula_rps"] / vals["nginx_rps"]
				vals["vs_bare_go"] = vals["nebula_rps"] / vals["bare_Go_rps"]
				b.ReportMetric(vals["vs_nginx"], fmt.Sprintf("x_nginx_%s_%d", kind, n))
				benchrec.Record(b, "info", fmt.Sprintf("%s at %d connections", kind, n), vals)
			}
		}
	}
}

// infoServer is a server of /info's bytes, and the ETag it gives them.
type infoServer struct{ name, base, etag string }

// infoServers starts the manager (`nebula manager` on its own broker, a
// group of three apps: 2.9 KB of /info), nginx (nginxWorkers worker
// processes) serving the same bytes as a static file, and a bare Go
// handler, each in its own process.
func infoServers(b *testing.B, nginxWorkers string) (manager, string, []infoServer) {
	m := startManager(b)
	url := m.url
	call(b, "POST", url+"/api/v2/apps/web", `{"docker_image": "registry.local/web:1.4.2", "env_vars": {"MODE": "edge", "LOG": "info"}, "starting_ports": [{"80": "8080"}], "containers_per": {"server": 1}, "volumes": ["/data:/data:rw"]}`, 200)
	call(b, "POST", url+"/api/v2/apps/agent", `{"docker_image": "registry.local/agent:2.0", "env_vars": {"INTERVAL": "15"}, "privileged": true}`, 200)
	call(b, "POST", url+"/api/v2/apps/proxy", `{"docker_image": "registry.local/proxy:0.9", "starting_ports": [443, 80]}`, 200)
	call(b, "POST", url+"/api/v2/device_groups/edge", `{"apps": ["web", "agent", "proxy"]}`, 200)
	path := "/api/v2/device_groups/edge/info"
	h, body := call(b, "GET", url+path, "", 200)
	etag := h.Get("ETag")

	root := b.TempDir()
	file := filepath.Join(root, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file, body, 0o644); err != nil {
		b.Fatal(err)
	}
	nginx := "http://" + startNginx(b, root, nginxWorkers)
	nh, nbody := get(b, nginx+path)
	if string(nbody) != string(body) {
		b.Fatal("nginx does not serve the same bytes")
	}
	bare := "http://" + startSelf(b, []string{"FLEETBENCH_BARE_FILE=" + file, "FLEETBENCH_BARE_ETAG=" + etag},
		regexp.MustCompile(`bare server on (\S+)`))[1]
	return m, path, []infoServer{{"nebula", url, etag}, {"nginx", nginx, nh.Get("ETag")}, {"bare Go", bare, etag}}
}

func get(tb testing.TB, url string) (http.Header, []byte) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return resp.Header, b
}
