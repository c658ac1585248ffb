package manager_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testmanager"
	"github.com/nebula-orchestrator/nebula-go/manager"
)

// cluster is a manager on the embedded broker with its projection in
// Badger on disk, served over real HTTP.
type cluster struct {
	addr string // broker
	url  string // manager
}

// startManager starts one manager against the broker at addr with its
// projection in dir.
func startManager(t *testing.T, addr, dir string) string {
	t.Helper()
	return launch(t, addr, dir, manager.Auth{}).URL
}

func startManagerWith(t *testing.T, addr, dir string, auth manager.Auth) string {
	t.Helper()
	return launch(t, addr, dir, auth).URL
}

// running is a manager a test can stop before its end.
type running = testmanager.Manager

func launch(t testing.TB, addr, dir string, auth manager.Auth) running {
	t.Helper()
	return testmanager.Start(t, addr, dir, auth)
}

func newCluster(t *testing.T) cluster {
	b := testenv.StartBroker(t, t.TempDir())
	return cluster{addr: b.Addr(), url: startManager(t, b.Addr(), t.TempDir())}
}

type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// testClient bounds every request: a hang is a failure, not a timeout of
// the whole package.
var testClient = &http.Client{Timeout: 90 * time.Second}

func call(t *testing.T, method, url string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// expect checks the status and that every key of want has that value in
// the body (compared as JSON).
func (r response) expect(t *testing.T, status int, want map[string]any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
	for k, v := range want {
		got, _ := json.Marshal(r.body[k])
		exp, _ := json.Marshal(v)
		if !bytes.Equal(got, exp) {
			t.Fatalf("%s = %s, want %s; body %s", k, got, exp, r.raw)
		}
	}
}

func (r response) num(t *testing.T, key string) int64 {
	t.Helper()
	f, ok := r.body[key].(float64)
	if !ok {
		t.Fatalf("%s is not a number in %s", key, r.raw)
	}
	return int64(f)
}
