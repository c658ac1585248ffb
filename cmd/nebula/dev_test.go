package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

var (
	devBroker = regexp.MustCompile(`Kafka broker on (\S+) `)
	devAPI    = regexp.MustCompile(`API on (http://\S+)/api/v2 `)
	devReady  = regexp.MustCompile(`nebula manager: ready`)
)

type devProcess struct {
	p          *testenv.Process
	kafka, api string
}

func startDev(t *testing.T, dataDir string) devProcess {
	t.Helper()
	p := testenv.Start(t, nil, "dev", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0")
	kafka := p.WaitLine(t, devBroker, 30*time.Second)[1]
	api := p.WaitLine(t, devAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	return devProcess{p, kafka, api}
}

// metric reads one unlabelled sample from /metrics.
func metric(t *testing.T, api, name string) int64 {
	t.Helper()
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (-?\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics:\n%s", name, body)
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}

// waitMetric polls until name reaches want.
func waitMetric(t *testing.T, api, name string, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := metric(t, api, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func appendEvents(t *testing.T, addr string, prefix string, n int) int64 {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var envs []events.Envelope
	for i := range n {
		p := events.AppCreatedV{Spec: events.NewAppSpec("nginx")}
		envs = append(envs, events.Envelope{Type: p.EventType(), Actor: "test", Time: time.Now(), Payload: p,
			Aggregate: events.Aggregate{Kind: events.KindApp, Name: fmt.Sprintf("%s%d", prefix, i)}})
	}
	offs, err := l.AppendBatch(ctx, envs)
	if err != nil {
		t.Fatal(err)
	}
	return offs[len(offs)-1]
}

// TestDevResumesWithoutRefolding: `nebula dev` folds what is appended,
// stops cleanly on Ctrl-C, and restarted on the same data directory
// resumes at the stored offset, folding nothing twice.
func TestDevResumesWithoutRefolding(t *testing.T) {
	dir := t.TempDir()
	d := startDev(t, dir)
	if code, _ := devCall(t, "GET", d.api+"/api/v2/status", "", ""); code != 401 {
		t.Fatalf("status without credentials: %d", code)
	}
	token, err := os.ReadFile(dir + "/admin-token")
	if err != nil {
		t.Fatalf("nebula dev made no admin token: %v", err)
	}
	tok := strings.TrimSpace(string(token))
	if code, body := devCall(t, "GET", d.api+"/api/v2/status", tok, ""); code != 200 || body != `{"api_available":true}` {
		t.Fatalf("status: %d %s", code, body)
	}
	if code, body := devCall(t, "POST", d.api+"/api/v2/apps/through-the-api", tok, `{"docker_image": "nginx"}`); code != 200 {
		t.Fatalf("create app: %d %s", code, body)
	}
	// The web console it prints serves its sign-in page, under its
	// Content-Security-Policy.
	console := d.api + "/ui/"
	if !strings.Contains(d.p.Output(), "web console on "+console) {
		t.Fatalf("nebula dev did not print where its console is:\n%s", d.p.Output())
	}
	resp, err := http.Get(console + "login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("the console at %s: %s, CSP %q", console, resp.Status, resp.Header.Get("Content-Security-Policy"))
	}

	last := appendEvents(t, d.kafka, "app", 40)
	waitMetric(t, d.api, "nebula_projection_applied_offset", last)
	if got := metric(t, d.api, "nebula_projection_records_folded_total"); got != 41 {
		t.Fatalf("folded %d records, want 41", got)
	}

	if err := d.p.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.p.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("nebula dev did not stop within 15s of Ctrl-C")
	}
	if code := d.p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("nebula dev exited %d after Ctrl-C", code)
	}

	d2 := startDev(t, dir)
	if code, body := devCall(t, "GET", d2.api+"/api/v2/apps/through-the-api", tok, ""); code != 200 {
		t.Fatalf("app after restart (same admin token): %d %s", code, body)
	}
	if got := metric(t, d2.api, "nebula_projection_applied_offset"); got != last {
		t.Fatalf("restarted projection at offset %d, want %d", got, last)
	}
	if got := metric(t, d2.api, "nebula_projection_records_folded_total"); got != 0 {
		t.Fatalf("restart re-folded %d records", got)
	}
	more := appendEvents(t, d2.kafka, "more", 2)
	if more != last+2 {
		t.Fatalf("appended after restart at offset %d, want %d (the log lost or repeated records)", more, last+2)
	}
	waitMetric(t, d2.api, "nebula_projection_applied_offset", more)
	if got := metric(t, d2.api, "nebula_projection_records_folded_total"); got != 2 {
		t.Fatalf("folded %d records after restart, want 2", got)
	}
}

func devCall(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // as the SDK and the CLI send
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestManagerNeedsBrokers(t *testing.T) {
	var out, errb strings.Builder
	t.Setenv("NEBULA_KAFKA_BROKERS", "")
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "")
	code := run([]string{"manager", "--listen", "127.0.0.1:0", "--unsigned-records"}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "--kafka-brokers") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
