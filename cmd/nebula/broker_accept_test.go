package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
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
	if err := appendApp(ctx, l); err != nil {
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

// TestBrokerWithCredentials (finding 6): `nebula kafka --sasl-user`
// refuses clients without the credentials; with them, the event log works.
func TestBrokerWithCredentials(t *testing.T) {
	p := testenv.Start(t, []string{"NEBULA_KAFKA_SASL_PASSWORD=broker-secret-password"}, "kafka", "--listen", "127.0.0.1:0",
		"--data-dir", t.TempDir(), "--sasl-user", "nebula")
	addr := p.WaitLine(t, regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)[1]
	ctx := testenv.Context(t, 60*time.Second)
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if l, err := kafkalog.Open(short, kafkalog.Config{Brokers: []string{addr}}); err == nil {
		l.Close()
		t.Fatal("a client without credentials opened the event log")
	}
	wrong := kafkalog.SASLConfig{Mechanism: kafkalog.SASLScramSHA512, User: "nebula", Password: "not-the-password"}
	short2, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	if l, err := kafkalog.Open(short2, kafkalog.Config{Brokers: []string{addr}, SASL: wrong}); err == nil {
		l.Close()
		t.Fatal("a client with a wrong password opened the event log")
	}
	good := kafkalog.SASLConfig{Mechanism: kafkalog.SASLScramSHA512, User: "nebula", Password: "broker-secret-password"}
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{addr}, SASL: good})
	if err != nil {
		t.Fatalf("a client with the credentials: %v", err)
	}
	defer l.Close()
	if err := appendApp(ctx, l); err != nil {
		t.Fatalf("append with the credentials: %v", err)
	}
}

// TestForgedRecordsAreNotServed (finding 6): records appended straight to
// the broker (what kcat could do, claiming the local admin as actor) make
// no user: `nebula dev`, given no record key, makes one at its first run
// and signs with it; the manager serves nothing of the forged records, and
// the audit shows them rejected as unsigned. The manager's own changes,
// exported, keep their signatures; a replay of the signed log needs the
// key.
func TestForgedRecordsAreNotServed(t *testing.T) {
	dir := t.TempDir()
	p := testenv.Start(t, nil, "dev", "--data-dir", dir+"/data", "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--worker=false")
	p.WaitLine(t, regexp.MustCompile(`made the record key .*record\.key`), 30*time.Second)
	keyFile := dir + "/data/record.key"
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the record key: %v %v", fi, err)
	}
	kafka := p.WaitLine(t, devBroker, 30*time.Second)[1]
	api := p.WaitLine(t, devAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	tok, _ := os.ReadFile(dir + "/data/admin-token")
	token := strings.TrimSpace(string(tok))
	if code, body := devCall(t, "POST", api+"/api/v2/apps/web", token, `{"docker_image": "nginx"}`); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}

	// The forgery: a user and a user group making it admin, with a token
	// the attacker knows.
	ctx := testenv.Context(t, 60*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{kafka}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	forged := "forged-admin-token-0123456789"
	sum := sha256.Sum256([]byte(forged))
	ug := events.NewUserGroupSpec()
	ug.GroupMembers, ug.Admin = []string{"mallory"}, true
	for _, env := range []events.Envelope{
		{Type: events.UserCreated, Aggregate: events.Aggregate{Kind: events.KindUser, Name: "mallory"}, Actor: "local-admin", Time: time.Now().UTC(),
			CommandID: "forged-1", Payload: events.UserCreatedV{PasswordHash: "$2a$12$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza", TokenSHA256: hex.EncodeToString(sum[:])}},
		{Type: events.UserGroupCreated, Aggregate: events.Aggregate{Kind: events.KindUserGroup, Name: "owned"}, Actor: "local-admin", Time: time.Now().UTC(),
			CommandID: "forged-2", Payload: events.UserGroupCreatedV{Spec: ug}},
	} {
		if _, err := l.Append(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	// The manager folded them (an app made after them is served) ...
	if code, body := devCall(t, "POST", api+"/api/v2/apps/after", token, `{"docker_image": "nginx"}`); code != 200 {
		t.Fatalf("create after the forgery: %d %s", code, body)
	}
	// ... and serves nothing of them.
	if code, body := devCall(t, "GET", api+"/api/v2/users/mallory", token, ""); code != 403 {
		t.Fatalf("the forged user: %d %s", code, body)
	}
	if code, body := devCall(t, "GET", api+"/api/v2/apps", forged, ""); code != 401 {
		t.Fatalf("the forged token: %d %s", code, body)
	}
	code, body := devCall(t, "GET", api+"/api/v2/events?actor=local-admin&kind=user", token, "")
	if code != 200 || strings.Count(body, `"reason":"unsigned"`) != 1 {
		t.Fatalf("the audit of the forged user: %d %s", code, body)
	}
	// The export keeps the manager's signatures (a restore keeps them).
	out, err := exec.Command(testenv.Binary(t), "events", "export", "--kafka-brokers", kafka).Output()
	if err != nil {
		t.Fatal(err)
	}
	var first exportLine
	if err := json.Unmarshal([]byte(strings.SplitN(string(out), "\n", 2)[0]), &first); err != nil || !strings.Contains(first.Signature, ":") {
		t.Fatalf("the first exported record has no signature: %v %+v", err, first)
	}
	// A replay needs the key (or says it counts every record).
	rp := exec.Command(testenv.Binary(t), "replay", "--kafka-brokers", kafka, "--to", "1000", "--data-dir", t.TempDir())
	if out, err := rp.CombinedOutput(); rp.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "is signed") {
		t.Fatalf("replay of a signed log without the key: %v %s", err, out)
	}
	rp = exec.Command(testenv.Binary(t), "replay", "--kafka-brokers", kafka, "--to", "1000", "--data-dir", t.TempDir(), "--record-key", keyFile)
	if out, err := rp.CombinedOutput(); err != nil {
		t.Fatalf("replay with the key: %v %s", err, out)
	}
}

// appendApp appends one app create.
func appendApp(ctx context.Context, l *kafkalog.Log) error {
	_, err := l.Append(ctx, events.Envelope{Type: events.AppCreated, Aggregate: events.Aggregate{Kind: events.KindApp, Name: "web"},
		Actor: "t", Time: time.Now().UTC(), Payload: events.AppCreatedV{Spec: events.NewAppSpec("nginx")}})
	return err
}
