package worker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestReportQueue: reports that cannot be sent wait on disk (bounded) and
// go, in order, once the manager answers again.
func TestReportQueue(t *testing.T) {
	var mu sync.Mutex
	up := false
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	a := NewAgent(Config{Group: "g", Manager: srv.URL, StateDir: t.TempDir(), RequestTimeout: time.Second}, nil)
	ctx := context.Background()
	for i := range maxQueuedReports + 5 {
		a.sendReports(ctx, []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	mu.Lock()
	up = true
	mu.Unlock()
	a.sendReports(ctx, []byte(`{"n":"last"}`))
	if len(got) != maxQueuedReports+1 {
		t.Fatalf("%d reports arrived, want %d (the queue keeps the newest %d)", len(got), maxQueuedReports+1, maxQueuedReports)
	}
	if got[0] != `{"n":5}` || got[len(got)-1] != `{"n":"last"}` {
		t.Fatalf("order: first %s last %s", got[0], got[len(got)-1])
	}
	if q := readQueue(a.cfg.StateDir + "/" + queueFile); len(q) != 0 {
		t.Fatalf("%d reports left in the queue", len(q))
	}
}

// TestAppStatusOf: what a report says of an app, from its containers; a
// container whose healthcheck has not answered yet is pending, not
// running (a rollout would count it healthy before its first check).
func TestAppStatusOf(t *testing.T) {
	for _, c := range []struct {
		name          string
		behind, want  bool
		problem       *appProblem
		n             appCounts
		status, error string
	}{
		{"running", false, true, nil, appCounts{running: 2, expected: 2}, events.AppStatusRunning, ""},
		{"healthcheck not answered yet", false, true, nil, appCounts{running: 2, expected: 2, starting: 1}, events.AppStatusPending, ""},
		{"one short", false, true, nil, appCounts{running: 1, expected: 2}, events.AppStatusPending, ""},
		{"unhealthy", false, true, nil, appCounts{running: 2, expected: 2, unhealthy: 1}, events.AppStatusUnhealthy, "1 container(s) failed their healthcheck"},
		{"exited", false, true, nil, appCounts{running: 1, expected: 2, exited: 1}, events.AppStatusExited, "1 container(s) exited (stopped, restarting or restarted)"},
		{"stopped", false, false, nil, appCounts{}, events.AppStatusStopped, ""},
		{"behind", true, true, nil, appCounts{running: 2, expected: 2}, events.AppStatusPending, ""},
		{"refused", false, true, &appProblem{events.AppStatusPullFailed, "no such image"}, appCounts{}, events.AppStatusPullFailed, "no such image"},
	} {
		p, bad := appProblem{}, c.problem != nil
		if bad {
			p = *c.problem
		}
		if st, err := appStatusOf(c.behind, c.want, p, bad, c.n); st != c.status || err != c.error {
			t.Errorf("%s: %s %q, want %s %q", c.name, st, err, c.status, c.error)
		}
	}
}

// TestHeartbeatRefused: a heartbeat the manager takes is sent as
// events.DecodeHeartbeat reads it; one a manager refuses (400: older than
// heartbeats) is not counted sent, and the worker sends full reports only
// from then on.
func TestHeartbeatRefused(t *testing.T) {
	for _, c := range []struct {
		status int
		sent   bool
	}{{http.StatusAccepted, true}, {http.StatusBadRequest, false}} {
		bodies := make(chan []byte, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			bodies <- b
			w.WriteHeader(c.status)
		}))
		a := NewAgent(Config{Group: "edge", Manager: srv.URL, StateDir: t.TempDir(), RequestTimeout: time.Second, FullReportEvery: time.Hour}, nil)
		rep := events.Report{DeviceID: "device-0001", DeviceGroup: "edge", AppliedVersion: 3}
		if sent := a.sendHeartbeat(context.Background(), rep); sent != c.sent {
			t.Fatalf("answered %d: sent %v", c.status, sent)
		}
		srv.Close()
		body := <-bodies
		h, err := events.DecodeHeartbeat(body)
		if err != nil || h.DeviceID != "device-0001" || h.AppliedVersion != 3 {
			t.Fatalf("the heartbeat sent: %s (%v)", body, err)
		}
		a.mu.Lock()
		refused := a.heartbeatsRefused
		a.mu.Unlock()
		if refused == c.sent {
			t.Fatalf("answered %d: heartbeats refused %v", c.status, refused)
		}
	}
}
