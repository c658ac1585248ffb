package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/diskspace"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// TestDiskFull: a manager whose data directory (a 200 MiB tmpfs) is
// filled below --min-free-disk refuses writes with 507 and the reason,
// reports itself unhealthy, keeps serving reads, and pauses folding what
// another manager appends; once space is freed it folds everything and
// answers as the other manager does (nothing lost, nothing corrupted).
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		testenv.SkipUnlessAvailable(t, "mounting a small file system needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.SkipUnlessAvailable(t, "mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })

	kp := testenv.Start(t, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	kafka := kp.WaitLine(t, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
	start := func(dataDir string) string {
		p := testenv.Start(t, []string{"AUTH_TOKEN=" + testToken}, "manager", "--kafka-brokers", kafka, "--listen", "127.0.0.1:0",
			"--data-dir", dataDir, "--min-free-disk", "100MiB")
		api := p.WaitLine(t, managerAPI, 60*time.Second)[1]
		p.WaitLine(t, devReady, 60*time.Second)
		return api
	}
	small, other := start(filepath.Join(dir, "data")), start(t.TempDir())
	apiCall(t, "POST", small+"/api/v2/apps/before", `{"docker_image": "nginx:1"}`, 200)

	// Fill the file system to leave 60 MiB.
	free, err := diskspace.Free(dir)
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for n := uint64(0); n+(60<<20) < free; n += uint64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatalf("filling: %v", err)
		}
	}
	f.Close()

	// The guard measures at most once a second: wait for it to notice
	// (on /healthz, which changes nothing).
	testenv.WaitFor(t, "the manager to notice the full disk", 10*time.Second, func() bool {
		code, _ := devCall(t, "GET", small+"/healthz", "", "")
		return code == 503
	})
	code, body := devCall(t, "POST", small+"/api/v2/apps/during", testToken, `{"docker_image": "nginx:1"}`)
	if code != 507 || !strings.Contains(body, "free, below the minimum") {
		t.Fatalf("write with the disk nearly full: %d %s", code, body)
	}
	if code, body := devCall(t, "GET", small+"/healthz", "", ""); code != 503 || !strings.Contains(body, "below the minimum") {
		t.Fatalf("healthz with the disk nearly full: %d %s", code, body)
	}
	if code, _ := devCall(t, "GET", small+"/api/v2/apps/before", testToken, ""); code != 200 {
		t.Fatalf("read with the disk nearly full: %d", code)
	}
	// Changes through the other manager: this one does not fold them yet.
	apiCall(t, "POST", other+"/api/v2/apps/elsewhere", `{"docker_image": "nginx:1"}`, 200)
	apiCall(t, "PATCH", other+"/api/v2/apps/before/update", `{"docker_image": "nginx:2"}`, 202)
	time.Sleep(2 * time.Second)
	if code, _ := devCall(t, "GET", small+"/api/v2/apps/elsewhere", testToken, ""); code != 403 {
		t.Fatalf("folded with the disk nearly full: GET /apps/elsewhere %d, want 403 (not there yet)", code)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the manager to fold again", 30*time.Second, func() bool {
		code, _ := devCall(t, "GET", small+"/api/v2/apps/elsewhere", testToken, "")
		return code == 200
	})
	if code, body := devCall(t, "POST", small+"/api/v2/apps/after", testToken, `{"docker_image": "nginx:1"}`); code != 200 {
		t.Fatalf("write after space was freed: %d %s", code, body)
	}
	for _, path := range []string{"/api/v2/apps", "/api/v2/apps/before", "/api/v2/apps/elsewhere", "/api/v2/apps/after"} {
		_, a := devCall(t, "GET", small+path, testToken, "")
		testenv.WaitFor(t, "the other manager to agree on "+path, 10*time.Second, func() bool {
			_, b := devCall(t, "GET", other+path, testToken, "")
			return a == b
		})
	}
	if code, _ := devCall(t, "GET", small+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz after space was freed: %d", code)
	}
}
