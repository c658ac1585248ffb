package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

func nebulaCmd(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%v: %s%s", err, out.String(), errOut.String())
	}
	return out.String(), nil
}

// snapshot is what a device and an operator see: /info (bytes and ETag)
// and the apps with their versions.
func snapshot(t *testing.T, url string) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/api/v2/device_groups/edge/info", "/api/v2/apps/web", "/api/v2/apps/db", "/api/v2/apps", "/api/v2/device_groups/edge"} {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&b, "%s %d %s %s\n", path, resp.StatusCode, resp.Header.Get("ETag"), body)
	}
	return b.String()
}

// TestBackupAndRestore: `nebula events export` then `nebula events import`
// into an empty topic of another broker restores the log at the same
// offsets: a manager on it serves the same configs with the same versions
// (devices notice nothing). An interrupted import resumes; a topic with
// another log, a backup with a gap and a damaged line are refused.
func TestBackupAndRestore(t *testing.T) {
	a := testenv.StartBroker(t, t.TempDir())
	ma := testmanager.Start(t, a.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: testToken})
	apiCall(t, "POST", ma.URL+"/api/v2/apps/web", `{"docker_image": "nginx:1"}`, 200)
	apiCall(t, "POST", ma.URL+"/api/v2/apps/db", `{"docker_image": "postgres:16"}`, 200)
	apiCall(t, "POST", ma.URL+"/api/v2/apps/web", `{"docker_image": "nginx:1"}`, 403) // a rejected event is in the log too
	apiCall(t, "POST", ma.URL+"/api/v2/device_groups/edge", `{"apps": ["web", "db"]}`, 200)
	apiCall(t, "PATCH", ma.URL+"/api/v2/apps/web/update", `{"docker_image": "nginx:2"}`, 202)
	apiCall(t, "DELETE", ma.URL+"/api/v2/apps/db", "", 200)
	apiCall(t, "POST", ma.URL+"/api/v2/apps/db", `{"docker_image": "postgres:17"}`, 200)
	apiCall(t, "PUT", ma.URL+"/api/v2/device_groups/edge/update", `{"apps": ["web", "db"]}`, 202)
	want := snapshot(t, ma.URL)

	dir := t.TempDir()
	backup := filepath.Join(dir, "backup.jsonl")
	out, err := nebulaCmd(t, "events", "export", "--kafka-brokers", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSpace(out), "\n")

	// Restore into a new broker, interrupted after half the records.
	b := testenv.StartBroker(t, t.TempDir())
	half := filepath.Join(dir, "half.jsonl")
	os.WriteFile(half, []byte(strings.Join(lines[:len(lines)/2], "")), 0o600)
	if _, err := nebulaCmd(t, "events", "import", "--kafka-brokers", b.Addr(), "--file", half); err != nil {
		t.Fatal(err)
	}
	out, err = nebulaCmd(t, "events", "import", "--kafka-brokers", b.Addr(), "--file", backup)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, fmt.Sprintf("the %d records already there match", len(lines)/2)) ||
		!strings.Contains(out, fmt.Sprintf("%d records written", len(lines)-len(lines)/2)) {
		t.Fatalf("resumed import said:\n%s", out)
	}
	mb := testmanager.Start(t, b.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: testToken})
	if got := snapshot(t, mb.URL); got != want {
		t.Fatalf("restored log serves\n%s\nthe original served\n%s", got, want)
	}
	// Importing again changes nothing.
	if out, err = nebulaCmd(t, "events", "import", "--kafka-brokers", b.Addr(), "--file", backup); err != nil || !strings.Contains(out, "0 records written") {
		t.Fatalf("second import: %v\n%s", err, out)
	}

	// Refused: a topic holding another log, a gap, a damaged line.
	c := testenv.StartBroker(t, t.TempDir())
	mc := testmanager.Start(t, c.Addr(), t.TempDir(), manager.Auth{Enabled: true, Token: testToken})
	apiCall(t, "POST", mc.URL+"/api/v2/apps/other", `{"docker_image": "busybox"}`, 200)
	if _, err := nebulaCmd(t, "events", "import", "--kafka-brokers", c.Addr(), "--file", backup); err == nil || !strings.Contains(err.Error(), "holds another log") {
		t.Fatalf("import into another log: %v", err)
	}
	gap := filepath.Join(dir, "gap.jsonl")
	os.WriteFile(gap, []byte(lines[0]+strings.Join(lines[2:], "")), 0o600)
	if _, err := nebulaCmd(t, "events", "import", "--kafka-brokers", testenv.StartBroker(t, t.TempDir()).Addr(), "--file", gap); err == nil || !strings.Contains(err.Error(), "has a gap") {
		t.Fatalf("import of a backup with a gap: %v", err)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(lines[0]+"{not json\n"), 0o600)
	if _, err := nebulaCmd(t, "events", "import", "--kafka-brokers", testenv.StartBroker(t, t.TempDir()).Addr(), "--file", bad); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("import of a damaged backup: %v", err)
	}
}
