package manager_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/past"
)

// TestTwoManagersRaceOnOneName: the same create sent at the same time to
// two managers on one broker: exactly one 200, one "exists", and both
// managers then serve the winner's document.
func TestTwoManagersRaceOnOneName(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	a := startManager(t, b.Addr(), t.TempDir()) + "/api/v2"
	c := startManager(t, b.Addr(), t.TempDir()) + "/api/v2"
	for i := range 15 {
		name := fmt.Sprintf("app%d", i)
		var wg sync.WaitGroup
		var ra, rc response
		wg.Go(func() { ra = call(t, "POST", a+"/apps/"+name, map[string]any{"docker_image": "image-a"}) })
		wg.Go(func() { rc = call(t, "POST", c+"/apps/"+name, map[string]any{"docker_image": "image-b"}) })
		wg.Wait()
		codes := map[int]int{ra.status: 1}
		codes[rc.status]++
		if codes[200] != 1 || codes[403] != 1 {
			t.Fatalf("%s: statuses %d (%s) and %d (%s), want one 200 and one 403", name, ra.status, ra.raw, rc.status, rc.raw)
		}
		winner := ra
		if rc.status == 200 {
			winner = rc
		}
		for _, m := range []string{a, c} {
			got := call(t, "GET", m+"/apps/"+name, nil)
			got.expect(t, 200, map[string]any{"docker_image": winner.body["docker_image"], "app_id": winner.body["app_id"]})
		}
	}
}

// TestManagerRestartKeepsEverything: a manager stopped and started again
// on the same directory (and a new manager with an empty directory, which
// rebuilds from the log) serve the same state.
func TestManagerRestartKeepsEverything(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	dir := t.TempDir()
	first := launch(t, b.Addr(), dir, manager.Auth{})
	api := first.URL + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx", "env_vars": map[string]any{"K": "V"}}).expect(t, 200, nil)
	call(t, "POST", api+"/cron_jobs/job", map[string]any{"docker_image": "job", "schedule": "@hourly"}).expect(t, 200, nil)
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web"}, "cron_jobs": []any{"job"}}).expect(t, 200, nil)
	before := call(t, "GET", api+"/device_groups/edge/info", nil)
	before.expect(t, 200, nil)
	first.Stop()

	for _, d := range []string{dir, t.TempDir()} {
		url := startManager(t, b.Addr(), d) + "/api/v2"
		after := call(t, "GET", url+"/device_groups/edge/info", nil)
		if after.status != 200 || string(after.raw) != string(before.raw) {
			t.Fatalf("after restart on %s: %d %s, want %s", d, after.status, after.raw, before.raw)
		}
		call(t, "POST", url+"/apps/web", map[string]any{"docker_image": "nginx"}).expect(t, 403, map[string]any{"app_exists": true})
	}
}

// TestBrokerOutage: with the broker down, commands answer 503 (nothing
// half-applied), reads and device polls are served from the projection;
// when it is back, writes resume and the projection follows.
func TestBrokerOutage(t *testing.T) {
	dir := t.TempDir()
	b := testenv.StartBroker(t, dir)
	addr := b.Addr()
	url := startManager(t, addr, t.TempDir()) + "/api/v2"
	call(t, "POST", url+"/apps/web", map[string]any{"docker_image": "nginx"}).expect(t, 200, nil)
	call(t, "POST", url+"/device_groups/edge", map[string]any{"apps": []any{"web"}}).expect(t, 200, nil)

	b.Close()
	r := call(t, "POST", url+"/apps/down", map[string]any{"docker_image": "nginx"})
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("command during the outage: %d %s", r.status, r.raw)
	}
	call(t, "GET", url+"/device_groups/edge/info", nil).expect(t, 200, map[string]any{"apps_list": []any{"web"}})
	call(t, "GET", url+"/apps/web", nil).expect(t, 200, nil)
	// /healthz tells the truth: this manager cannot write (finding 3 of
	// issue 22: it said 200 while every write answered 503).
	health := strings.TrimSuffix(url, "/api/v2") + "/healthz"
	if r := call(t, "GET", health, nil); r.status != 503 || !strings.Contains(string(r.raw), "event log") {
		t.Fatalf("/healthz during the outage: %d %s", r.status, r.raw)
	}

	testenv.StartBrokerAt(t, addr, dir)
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := call(t, "POST", url+"/apps/after", map[string]any{"docker_image": "nginx"})
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume: %d %s", r.status, r.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	call(t, "GET", strings.TrimSuffix(url, "/api/v2")+"/healthz", nil).expect(t, 200, nil)
	// The command refused during the outage was not applied later.
	call(t, "GET", url+"/apps/down", nil).expect(t, 403, map[string]any{"app_exists": false})
	call(t, "GET", url+"/apps", nil).expect(t, 200, map[string]any{"apps": []any{"after", "web"}})
}

// TestReadCatchesUpWithTheLog: a manager whose projection has not folded
// yet a change made through another manager does not answer as if it had
// not happened (an app missing, its old version, a list without it): it
// catches up with the log first. A missing object is still missing.
func TestReadCatchesUpWithTheLog(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	a := startManager(t, b.Addr(), t.TempDir()) + "/api/v2"

	// Manager B, its fold paused when the test says.
	bm := startHeldManager(t, b.Addr())
	bURL, store, paused := bm.url+"/api/v2", bm.store, bm.paused

	paused.Store(true)
	call(t, "POST", a+"/apps/web", map[string]any{"docker_image": "nginx:1"}).expect(t, 200, nil)
	if store.Applied() >= 0 {
		t.Fatal("manager B folded the app while paused")
	}
	time.AfterFunc(300*time.Millisecond, func() { paused.Store(false) })
	call(t, "GET", bURL+"/apps/web", nil).expect(t, 200, map[string]any{"docker_image": "nginx:1"})
	call(t, "GET", bURL+"/apps/nope", nil).expect(t, 403, map[string]any{"app_exists": false})

	// An object changed, and a list grown, a moment ago.
	paused.Store(true)
	call(t, "PATCH", a+"/apps/web/update", map[string]any{"docker_image": "nginx:2"}).expect(t, 202, nil)
	time.AfterFunc(300*time.Millisecond, func() { paused.Store(false) })
	call(t, "GET", bURL+"/apps/web", nil).expect(t, 200, map[string]any{"docker_image": "nginx:2"})
	paused.Store(true)
	call(t, "POST", a+"/apps/db", map[string]any{"docker_image": "postgres"}).expect(t, 200, nil)
	time.AfterFunc(300*time.Millisecond, func() { paused.Store(false) })
	call(t, "GET", bURL+"/apps", nil).expect(t, 200, map[string]any{"apps": []any{"db", "web"}})

	// The event log as B lists it: the newest event with its verdict.
	paused.Store(true)
	made := call(t, "POST", a+"/apps/cache", map[string]any{"docker_image": "redis"})
	made.expect(t, 200, nil)
	time.AfterFunc(300*time.Millisecond, func() { paused.Store(false) })
	r := call(t, "GET", fmt.Sprintf("%s/events?from=%d", bURL, made.num(t, "app_id")), nil)
	if !strings.Contains(string(r.raw), `"verdict":{"accepted":true}`) {
		t.Fatalf("the event just made, listed by B: %d %s", r.status, r.raw)
	}
}

// TestRebuildKeepsServing (issue 17): when the log is wiped (or restored)
// under a running manager, its projection is rebuilt from offset 0 in a
// store aside while the manager keeps answering reads, polls included,
// from the last consistent state: under a steady poll load the rebuild
// causes no 5xx on reads (counted), commands answer 503 until the new
// store is swapped in, and then the new log's state is served. (It
// answered 503 to everything for the whole rebuild before, and a 2.7
// worker exits on any non-200 poll.)
func TestRebuildKeepsServing(t *testing.T) {
	logDir := t.TempDir()
	b := testenv.StartBroker(t, logDir)
	addr := b.Addr()
	ctx := testenv.Context(t, 120*time.Second)
	m := startHeldManager(t, addr)
	url, paused := m.url+"/api/v2", m.paused
	for _, name := range []string{"old1", "old2", "old3"} {
		call(t, "POST", url+"/apps/"+name, map[string]any{"docker_image": "nginx:1"}).expect(t, 200, nil)
	}
	call(t, "POST", url+"/device_groups/edge", map[string]any{"apps": []any{"old1"}}).expect(t, 200, nil)
	oldInfo := call(t, "GET", url+"/device_groups/edge/info", nil)
	oldInfo.expect(t, 200, nil)

	// A steady poll load for the whole test: every answer counted.
	var polls, bad atomic.Int64
	var lastBad atomic.Value
	stop := make(chan struct{})
	pollersDone := make(chan struct{})
	var stopOnce sync.Once
	t.Cleanup(func() { stopOnce.Do(func() { close(stop) }); <-pollersDone })
	go func() {
		defer close(pollersDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, path := range []string{"/device_groups/edge/info", "/apps", "/status"} {
				resp, err := testClient.Get(url + path) // not call: it may not fail the test from here
				if err != nil {
					continue // the test is ending
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				polls.Add(1)
				if resp.StatusCode >= 500 {
					bad.Add(1)
					lastBad.Store(fmt.Sprintf("%s: %d %s", path, resp.StatusCode, raw))
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// The log is wiped and a new one started at the same address; the
	// rebuild is held by the test once it begins.
	paused.Store(true)
	b.Close()
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	b2 := testenv.StartBrokerAt(t, addr, logDir)
	l2, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{b2.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l2.Close)
	created := events.AppCreatedV{Spec: events.NewAppSpec("nginx:2")}
	if _, err := l2.Append(ctx, events.Envelope{Type: created.EventType(), Aggregate: events.Aggregate{Kind: events.KindApp, Name: "new"},
		Actor: "test", Time: time.Now(), Payload: created}); err != nil {
		t.Fatal(err)
	}

	// The rebuild begins (noticed about 20 s after the wipe here): commands
	// wait, reads serve the last consistent state.
	testenv.WaitFor(t, "the rebuild aside to begin", 60*time.Second, func() bool {
		r := call(t, "GET", m.url+"/healthz", nil)
		return r.status == 200 && r.body["rebuilding"] == true
	})
	r := call(t, "POST", url+"/apps/meanwhile", map[string]any{"docker_image": "nginx"})
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.raw), "being rebuilt") {
		t.Fatalf("a command during the rebuild: %d %s", r.status, r.raw)
	}
	call(t, "GET", url+"/apps", nil).expect(t, 200, map[string]any{"apps": []any{"old1", "old2", "old3"}})
	during := call(t, "GET", url+"/device_groups/edge/info", nil)
	if during.status != 200 || !bytes.Equal(during.raw, oldInfo.raw) || during.header.Get("ETag") != oldInfo.header.Get("ETag") {
		t.Fatalf("a poll during the rebuild: %d %s, want the config as it was", during.status, during.raw)
	}

	paused.Store(false)
	testenv.WaitFor(t, "the rebuilt projection served", 30*time.Second, func() bool {
		r := call(t, "GET", url+"/apps", nil)
		return r.status == 200 && strings.Contains(string(r.raw), `"apps":["new"]`)
	})
	// Commands work again (a 503 while the producer learns the new
	// topic's ID is "retry", not an error).
	var last string
	defer func() { t.Logf("last answer to the command: %s", last) }()
	testenv.WaitFor(t, "a command after the rebuild", 30*time.Second, func() bool {
		r := call(t, "POST", url+"/apps/after", map[string]any{"docker_image": "nginx"})
		if r.status != 200 && r.status != http.StatusServiceUnavailable {
			t.Fatalf("a command after the rebuild: %d %s", r.status, r.raw)
		}
		last = string(r.raw)
		return r.status == 200
	})
	stopOnce.Do(func() { close(stop) })
	<-pollersDone
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of %d reads answered 5xx during the rebuild; the last: %v", n, polls.Load(), lastBad.Load())
	}
	t.Logf("%d reads during the test, none 5xx", polls.Load())
}

// heldManager is a manager whose fold the test can pause.
type heldManager struct {
	url    string
	store  *projections.Store
	paused *atomic.Bool
	bounds *atomic.Int64 // questions to the log about where it ends
}

// countedLog counts a log's Bounds calls.
type countedLog struct {
	*kafkalog.Log
	n *atomic.Int64
}

func (c countedLog) Bounds(ctx context.Context) (int64, int64, error) {
	c.n.Add(1)
	return c.Log.Bounds(ctx)
}

func startHeldManager(t *testing.T, addr string, auth ...manager.Auth) heldManager {
	t.Helper()
	ctx := testenv.Context(t, 60*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	store, err := projections.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	paused := new(atomic.Bool)
	p := projections.NewProjector(store, l, func(from int64) (projections.RecordReader, error) { return l.NewReader(from) }, nil)
	p.Backoff = 10 * time.Millisecond // folding resumes within 10 ms of the test's say-so
	p.Hold = func() error {
		if paused.Load() {
			return errors.New("paused by the test")
		}
		return nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; store.Close() })
	select {
	case <-p.Ready():
	case <-ctx.Done():
		t.Fatal("projection did not catch up")
	}
	bounds := new(atomic.Int64)
	cfg := manager.Config{Projection: store, Commands: commands.New(l, store, past.New(store)), Log: countedLog{l, bounds}, Serving: p.Serving, Rebuilds: p.Rebuilds, RebuildingAside: p.RebuildingAside,
		EventLog: l, Past: past.New(store)}
	if len(auth) > 0 {
		cfg.Auth = auth[0]
	}
	api := manager.New(cfg)
	store.OnCommit(api.Invalidate)
	store.OnReset(api.InvalidateAll)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return heldManager{url: srv.URL, store: store, paused: paused, bounds: bounds}
}

// TestInfoCatchesUpWithTheDevice: a device brings the version another
// manager served it; a manager that has not folded it yet catches up
// instead of serving the older config (the device would apply it, then
// the newer one again). A version the log does not reach is not matched.
func TestInfoCatchesUpWithTheDevice(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	a := startManager(t, b.Addr(), t.TempDir()) + "/api/v2"
	bm := startHeldManager(t, b.Addr())
	bURL := bm.url + "/api/v2"

	call(t, "POST", a+"/apps/web", map[string]any{"docker_image": "nginx:1"}).expect(t, 200, nil)
	call(t, "POST", a+"/device_groups/edge", map[string]any{"apps": []any{"web"}}).expect(t, 200, nil)
	old := call(t, "GET", a+"/device_groups/edge/info", nil)
	old.expect(t, 200, nil)
	// B has folded the group: it serves the same version.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if r := call(t, "GET", bURL+"/device_groups/edge/info", nil, "If-None-Match", old.header.Get("ETag")); r.status == 304 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("manager B did not fold the group: %d %s", r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Paused for less than the wait for the fold (no question to the
	// brokers), then for more (the manager asks the log where it ends).
	for i, pause := range []time.Duration{10 * time.Millisecond, 300 * time.Millisecond} {
		asked := bm.bounds.Load()
		bm.paused.Store(true)
		call(t, "PUT", a+"/apps/web/update", map[string]any{"docker_image": fmt.Sprintf("nginx:%d", i+2)}).expect(t, 202, nil)
		cur := call(t, "GET", a+"/device_groups/edge/info", nil)
		if cur.header.Get("ETag") == old.header.Get("ETag") {
			t.Fatalf("the update did not change the group's version %s", cur.header.Get("ETag"))
		}
		time.AfterFunc(pause, func() { bm.paused.Store(false) })
		r := call(t, "GET", bURL+"/device_groups/edge/info", nil, "If-None-Match", cur.header.Get("ETag"))
		if r.status != 304 || r.header.Get("ETag") != cur.header.Get("ETag") {
			t.Fatalf("paused %v, manager B answered a device at %s with %d, ETag %s: %s (want 304 once caught up)",
				pause, cur.header.Get("ETag"), r.status, r.header.Get("ETag"), r.raw)
		}
		if asked := bm.bounds.Load() - asked; (pause < 100*time.Millisecond) != (asked == 0) {
			t.Errorf("paused %v, manager B asked the log where it ends %d times", pause, asked)
		}
		old = cur
	}
	// A tag past the log's end (a wiped log, a made-up tag): the current config.
	call(t, "GET", bURL+"/device_groups/edge/info", nil, "If-None-Match", `"99999999"`).expect(t, 200, nil)
}

// TestAuthCatchesUpWithTheLog: a user, a token or a permission made
// through another manager a moment ago is not refused by a manager that
// has not folded it yet: it catches up first. Wrong credentials and
// missing permissions are still refused.
func TestAuthCatchesUpWithTheLog(t *testing.T) {
	auth := manager.Auth{Enabled: true, Token: "admin-token-123"}
	adm := bearer("admin-token-123")
	b := testenv.StartBroker(t, t.TempDir())
	a := startManagerWith(t, b.Addr(), t.TempDir(), auth) + "/api/v2"
	bm := startHeldManager(t, b.Addr(), auth)
	bURL := bm.url + "/api/v2"
	call(t, "POST", a+"/apps/web", map[string]any{"docker_image": "nginx"}, adm...).expect(t, 200, nil)
	call(t, "POST", a+"/device_groups/edge", map[string]any{"apps": []any{"web"}}, adm...).expect(t, 200, nil)

	bm.paused.Store(true)
	call(t, "POST", a+"/users/ops", map[string]any{"password": "ops-password", "token": "ops-token-secret"}, adm...).expect(t, 200, nil)
	time.AfterFunc(300*time.Millisecond, func() { bm.paused.Store(false) })
	call(t, "GET", bURL+"/apps", nil, bearer("ops-token-secret")...).expect(t, 200, nil)

	bm.paused.Store(true)
	call(t, "POST", a+"/user_groups/operators", map[string]any{"group_members": []any{"ops"}, "apps": map[string]any{"web": "ro"}}, adm...).
		expect(t, 200, nil)
	time.AfterFunc(300*time.Millisecond, func() { bm.paused.Store(false) })
	call(t, "GET", bURL+"/apps/web", nil, basic("ops", "ops-password")...).expect(t, 200, map[string]any{"docker_image": "nginx"})

	call(t, "GET", bURL+"/apps", nil, bearer("not-a-token")...).expect(t, 401, nil)
	call(t, "POST", bURL+"/apps/web/stop", nil, bearer("ops-token-secret")...).expect(t, 403, map[string]any{"access_allowed": false})
	// A device's poll is refused at once (it asks again soon).
	asked := bm.bounds.Load()
	call(t, "GET", bURL+"/device_groups/edge/info", nil, bearer("ops-token-secret")...).expect(t, 403, map[string]any{"access_allowed": false})
	if n := bm.bounds.Load() - asked; n != 0 {
		t.Errorf("a refused /info asked the log where it ends %d times", n)
	}
}

// TestRetryThroughTheOtherManager: a create retried with the same
// Idempotency-Key through another manager, before that one has folded the
// first, gets the first answer and appends nothing that counts; an update
// conditional on the version the first manager showed is not refused.
func TestRetryThroughTheOtherManager(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	a := startManager(t, b.Addr(), t.TempDir()) + "/api/v2"
	bm := startHeldManager(t, b.Addr())
	bURL := bm.url + "/api/v2"

	bm.paused.Store(true)
	first := call(t, "POST", a+"/apps/web", map[string]any{"docker_image": "nginx"}, "Idempotency-Key", "retry-1")
	first.expect(t, 200, nil)
	time.AfterFunc(300*time.Millisecond, func() { bm.paused.Store(false) })
	again := call(t, "POST", bURL+"/apps/web", map[string]any{"docker_image": "nginx"}, "Idempotency-Key", "retry-1")
	again.expect(t, 200, map[string]any{"app_id": first.body["app_id"]})
	call(t, "GET", bURL+"/apps/web", nil).expect(t, 200, map[string]any{"app_id": first.body["app_id"]})

	// A conditional update through B, with the version A showed a
	// moment ago, is not refused as a mismatch.
	bm.paused.Store(true)
	changed := call(t, "PATCH", a+"/apps/web/update", map[string]any{"env_vars": map[string]any{"A": "1"}})
	changed.expect(t, 202, nil)
	time.AfterFunc(300*time.Millisecond, func() { bm.paused.Store(false) })
	call(t, "PATCH", bURL+"/apps/web/update", map[string]any{"env_vars": map[string]any{"A": "2"}},
		"If-Match", changed.header.Get("ETag")).expect(t, 202, map[string]any{"env_vars": map[string]any{"A": "2"}})
}
