package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/testenv"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// TestExportAndReplay: `nebula events export` writes every record,
// decoded and raw; `nebula replay --to` rebuilds the projection as of an
// offset in its own directory.
func TestExportAndReplay(t *testing.T) {
	dir := t.TempDir()
	p := testenv.Start(t, nil, "dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--worker=false")
	kafka := p.WaitLine(t, devBroker, 30*time.Second)[1]
	api := p.WaitLine(t, devAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	tok, _ := os.ReadFile(dir + "/admin-token")
	token := strings.TrimSpace(string(tok))
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/apps/web", `{"docker_image": "nginx:1"}`},
		{"PATCH", "/apps/web/update", `{"docker_image": "nginx:2"}`},
		{"POST", "/users/alice", `{"password": "alice-password"}`},
	} {
		if code, body := devCall(t, c.method, api+"/api/v2"+c.path, token, c.body); code/100 != 2 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, code, body)
		}
	}

	cmd := exec.Command(testenv.Binary(t), "events", "export", "--kafka-brokers", kafka)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("export: %v %s", err, stderr.String())
	}
	var lines []exportLine
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 3 || lines[1].Offset != 1 {
		t.Fatalf("%d export lines", len(lines))
	}
	for _, l := range lines {
		if _, err := events.Decode(l.Raw); err != nil {
			t.Fatalf("raw record %d does not decode: %v", l.Offset, err)
		}
	}
	if !strings.Contains(string(lines[1].Event), `"docker_image":"nginx:2"`) {
		t.Fatalf("decoded event %s", lines[1].Event)
	}

	out := t.TempDir()
	rp := exec.Command(testenv.Binary(t), "replay", "--kafka-brokers", kafka, "--to", "0", "--data-dir", out)
	if b, err := rp.CombinedOutput(); err != nil || !strings.Contains(string(b), "as of offset 0") {
		t.Fatalf("replay: %v %s", err, b)
	}
	s, err := projections.Open(out+"/projection", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.View(func(r projections.Reader) error {
		a, found, _ := r.App("web")
		if !found || a.DockerImage != "nginx:1" {
			t.Fatalf("replayed app %+v found=%v", a, found)
		}
		return nil
	})
}
