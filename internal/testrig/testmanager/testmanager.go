// Package testmanager runs a real manager in the test process: the event
// log on a broker, the projection in Badger, the HTTP API on a loopback
// port. For tests of the manager's clients (the worker, the CLI).
package testmanager

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/rollouts"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/past"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
	"github.com/nebula-orchestrator/nebula-go/reporter"
)

// StartReporter runs a reporter on the broker at addr until the test ends.
func StartReporter(t testing.TB, addr string) (stop func()) {
	t.Helper()
	r, err := reporter.New(kafkalog.Config{Brokers: []string{addr}}, reporter.Names{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	select {
	case <-r.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("reporter did not start")
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// Manager is a running manager.
type Manager struct {
	URL string
	// Handler is the manager's API, for in-process benchmarks of what it
	// does per request beyond net/http.
	Handler http.Handler
	// Stop stops it (also done when the test ends).
	Stop func()
}

// Start runs a manager against the broker at addr with its projection in
// dir, and returns once it has caught up with the log.
func Start(t testing.TB, addr, dir string, auth manager.Auth) Manager {
	t.Helper()
	return StartWithLimits(t, addr, dir, auth, manager.Limits{})
}

// StartWithLimits is Start with request limits.
func StartWithLimits(t testing.TB, addr, dir string, auth manager.Auth, limits manager.Limits) Manager {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := projections.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reporter.EnsureTopics(ctx, kafkalog.Config{Brokers: []string{addr}}, reporter.Names{}); err != nil {
		t.Fatal(err)
	}
	pub, err := reporter.NewPublisher(kafkalog.Config{Brokers: []string{addr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reportStore, err := reports.Open("", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	reportsDone := make(chan struct{})
	go func() {
		defer close(reportsDone)
		reports.Follow(runCtx, reportStore, func(from map[int32]int64) (*kafkalog.TopicReader, error) {
			return kafkalog.NewTopicReader(runCtx, kafkalog.Config{Brokers: []string{addr}}, reporter.DeviceEventsTopic, from)
		})
	}()
	p := projections.NewProjector(store, l, func(from int64) (projections.RecordReader, error) { return l.NewReader(from) }, nil)
	history := past.New(store)
	cmds := commands.New(l, store, history)
	cmds.BcryptCost = bcrypt.MinCost // the cost is not what these tests test
	api := manager.New(manager.Config{Projection: store, Commands: cmds, Log: l, CacheTime: time.Minute, Auth: auth, Serving: p.Serving, Rebuilds: p.Rebuilds, RebuildingAside: p.RebuildingAside,
		Reports: reportStore, ReportSink: reporter.NewSink(pub, reporter.Names{}), EventLog: l, Past: history, Limits: limits,
		Poisoned: func(ctx context.Context, n int) ([]manager.Refusal, error) { // as cmd/nebula wires it
			ps, err := reporter.RecentPoisoned(ctx, kafkalog.Config{Brokers: []string{addr}}, reporter.Names{}, n)
			out := make([]manager.Refusal, len(ps))
			for i, p := range ps {
				out[i] = manager.Refusal{Time: p.Time, Reason: "poisoned", Detail: p.Reason, DeviceID: p.DeviceID, DeviceGroup: p.DeviceGroup, Hostname: p.Hostname}
			}
			return out, err
		}})
	store.OnCommit(api.Invalidate)
	store.OnReset(api.InvalidateAll)
	controller := &rollouts.Controller{Proj: store, Devices: reportStore, Decide: rollouts.DecideWith(cmds), Every: 100 * time.Millisecond,
		Ready: func() bool { catchingUp, _ := reportStore.CatchingUp(); return p.Serving() && !catchingUp }}
	controllerDone := make(chan struct{})
	go func() { controller.Run(runCtx); close(controllerDone) }()
	go func() { _ = p.Run(runCtx); close(done) }()
	select {
	case <-p.Ready():
	case <-ctx.Done():
		t.Fatal("projection did not catch up")
	}
	srv := httptest.NewServer(api)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Close()
			cancel()
			<-done
			<-reportsDone
			<-controllerDone
			store.Close()
			reportStore.Close()
			pub.Close()
			l.Close()
		})
	}
	t.Cleanup(stop)
	return Manager{URL: srv.URL, Handler: api, Stop: stop}
}
