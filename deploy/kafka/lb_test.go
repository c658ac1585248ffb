package kafka

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

const lbToken = "lb-test-admin-token"

// TestLoadBalancedManagers: nginx-lb.conf (Debian's nginx) in front of two
// manager processes on one broker: writes and reads through it, a device's
// long-poll held through it and woken by a change, and one manager killed
// (kill -9) under traffic: reads go on, acknowledged writes are all there.
func TestLoadBalancedManagers(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			testenv.SkipUnlessAvailable(t, "nginx not installed (make deps installs Debian's nginx-light)")
		}
		nginx = "/usr/sbin/nginx"
	}
	kp := testenv.Start(t, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	broker := kp.WaitLine(t, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
	var managers []*testenv.Process
	var addrs []string
	for range 2 {
		p := testenv.Start(t, []string{"AUTH_TOKEN=" + lbToken}, "manager", "--kafka-brokers", broker, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
		url := p.WaitLine(t, regexp.MustCompile(`API on http://(\S+)/api/v2 `), 60*time.Second)[1]
		p.WaitLine(t, regexp.MustCompile(`nebula manager: ready`), 60*time.Second)
		managers, addrs = append(managers, p), append(addrs, url)
	}

	// The compose file's nginx configuration, with this machine's
	// addresses instead of the compose service names.
	lbAddr := testenv.FreeAddr(t)
	conf, err := os.ReadFile("nginx-lb.conf")
	if err != nil {
		t.Fatal(err)
	}
	c := strings.NewReplacer("manager1:8080", addrs[0], "manager2:8080", addrs[1], "listen 8080;", "listen "+lbAddr+";").Replace(string(conf))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	lb := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
		"-g", fmt.Sprintf("daemon off; pid %s/nginx.pid; error_log %s/error.log warn;", dir, dir))
	lb.Stdout, lb.Stderr = os.Stderr, os.Stderr
	if err := lb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lb.Process.Signal(syscall.SIGQUIT); _ = lb.Wait() })
	base := "http://" + lbAddr + "/api/v2"
	client := &http.Client{Timeout: 40 * time.Second}
	do := func(method, path, body string, hdr ...string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
		req.Header.Set("Authorization", "Bearer "+lbToken)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for code, _, _ := do("GET", "/status", ""); code != 200; code, _, _ = do("GET", "/status", "") {
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("no answer through nginx: %s", data)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, body := do("POST", "/apps/web", `{"docker_image": "nginx:1"}`); code != 200 {
		t.Fatalf("create app through the load balancer: %d %s", code, body)
	}
	if code, _, body := do("POST", "/device_groups/edge", `{"apps": ["web"]}`); code != 200 {
		t.Fatalf("create group: %d %s", code, body)
	}

	// A device long-polls through nginx as the worker does (each answer's
	// ETag in the next request): it gets the change made through the other
	// requests, and never a version older than one it was sent (the two
	// managers may be a millisecond apart: the one behind catches up).
	woke := make(chan string, 1)
	go func() {
		etag := ""
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			code, h, body := do("GET", "/device_groups/edge/info?wait=30s", "", "If-None-Match", etag)
			if code == 200 && strings.Contains(body, "nginx:2") {
				woke <- "200 " + body
				return
			}
			if code == 200 || code == 304 {
				if etag != "" && versionOf(h.Get("ETag")) < versionOf(etag) {
					woke <- fmt.Sprintf("sent back from version %s to %s: %d %s", etag, h.Get("ETag"), code, body)
					return
				}
				etag = h.Get("ETag")
				continue
			}
			woke <- fmt.Sprint(code, " ", body)
			return
		}
		woke <- "no answer with the change"
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if code, _, body := do("PATCH", "/apps/web/update", `{"docker_image": "nginx:2"}`); code != 202 {
		t.Fatalf("update: %d %s", code, body)
	}
	select {
	case got := <-woke:
		if !strings.HasPrefix(got, "200 ") {
			t.Fatalf("long-poll through nginx answered %s", got)
		}
		t.Logf("long-poll through nginx woke %v after the change", time.Since(start).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("the long-poll through nginx did not wake on the change")
	}

	// kill -9 of manager 1 under traffic.
	var acked []string
	failures := 0
	for i := range 60 {
		if i == 20 {
			managers[0].Cmd.Process.Kill()
		}
		name := fmt.Sprintf("app%02d", i)
		code, _, _ := do("POST", "/apps/"+name, `{"docker_image": "busybox"}`)
		switch code {
		case 200:
			acked = append(acked, name)
		default:
			failures++ // the request in flight when the manager died
		}
		if code, _, body := do("GET", "/apps/web", ""); code != 200 {
			t.Fatalf("read %d through nginx: %d %s", i, code, body)
		}
	}
	if failures > 1 {
		t.Fatalf("%d writes failed through nginx with one of two managers killed, want at most the one in flight", failures)
	}
	_, _, list := do("GET", "/apps", "")
	for _, name := range acked {
		if !strings.Contains(list, `"`+name+`"`) {
			t.Fatalf("acknowledged app %s missing after the kill: %s", name, list)
		}
	}
}

// versionOf reads an ETag's version ("42"), -1 if it is not one.
func versionOf(etag string) int64 {
	v, err := strconv.ParseInt(strings.Trim(etag, `"`), 10, 64)
	if err != nil {
		return -1
	}
	return v
}
