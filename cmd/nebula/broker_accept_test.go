package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// TestBrokerSurvivesFailedAccepts (finding 3): the embedded broker, run
// with 64 file descriptors, is flooded with connections until accepting
// fails (EMFILE); once the flood goes, a client appends again. kfake
// alone returned from its accept loop on the first failure and never
// accepted again.
func TestBrokerSurvivesFailedAccepts(t *testing.T) {
	dir := t.TempDir()
	p := testenv.StartProgram(t, "/bin/sh", nil, nil, "-c",
		"ulimit -n 64 && exec "+testenv.Binary(t)+" kafka --listen 127.0.0.1:0 --data-dir "+dir)
	addr := p.WaitLine(t, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
	var flood []net.Conn
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		flood = append(flood, c)
	}
	p.WaitLine(t, regexp.MustCompile(`cannot accept connections`), 30*time.Second)
	for _, c := range flood {
		c.Close()
	}
	ctx := testenv.Context(t, 60*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatalf("a client after the flood: %v", err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, events.Envelope{Type: events.AppCreated, Aggregate: events.Aggregate{Kind: events.KindApp, Name: "web"},
		Actor: "t", Time: time.Now().UTC(), Payload: events.AppCreatedV{Spec: events.NewAppSpec("nginx")}}); err != nil {
		t.Fatalf("append after the flood: %v", err)
	}
	p.WaitLine(t, regexp.MustCompile(`accepts connections again`), 10*time.Second)
}

// TestAPIConnectionCap (finding 3): past --max-connections, a new
// connection to the API is answered 503 in JSON and closed, so that a flood
// of idle connections cannot take the file descriptors the broker and the
// store need; once the flood goes, the API and writes work.
func TestAPIConnectionCap(t *testing.T) {
	dir := t.TempDir()
	p := testenv.Start(t, nil, "dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--worker=false",
		"--max-connections", "20")
	api := p.WaitLine(t, devAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	tok, _ := os.ReadFile(dir + "/admin-token")
	token := strings.TrimSpace(string(tok))
	host := strings.TrimPrefix(api, "http://")
	var flood []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	testenv.WaitFor(t, "a 503 past the cap", 10*time.Second, func() bool {
		resp, err := client.Get(api + "/healthz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "too many connections") &&
			resp.Header.Get("Content-Type") == "application/json"
	})
	for _, c := range flood {
		c.Close()
	}
	testenv.WaitFor(t, "the API back under the cap", 10*time.Second, func() bool {
		resp, err := client.Get(api + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, body := devCall(t, "POST", api+"/api/v2/apps/after-the-flood", token, `{"docker_image": "nginx"}`); code != 200 {
		t.Fatalf("a write after the flood: %d %s", code, body)
	}
}
