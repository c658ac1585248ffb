package commands_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/past"
)

// manager is one manager's command service: its own projection of the
// shared log, folded by its own projector.
func manager(t *testing.T, l *kafkalog.Log, hold func() error) (*commands.Service, *projections.Store) {
	t.Helper()
	s, err := projections.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := projections.NewProjector(s, l, func(from int64) (projections.RecordReader, error) { return l.NewReader(from) }, nil)
	p.Hold = hold
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	select {
	case <-p.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("projector not ready")
	}
	return commands.New(l, s, past.New(s)), s
}

// TestRefusalWaitsForTheLog: a manager whose projection has not folded yet
// what another manager acknowledged (an app) does not refuse a command
// that depends on it (a group listing the app): it catches up with the
// log first. A refusal that stands after catching up is still given.
func TestRefusalWaitsForTheLog(t *testing.T) {
	ctx := testenv.Context(t, 60*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{testenv.StartBroker(t, t.TempDir()).Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	a, _ := manager(t, l, nil)
	var paused atomic.Bool
	paused.Store(true)
	b, storeB := manager(t, l, func() error {
		if paused.Load() {
			return errors.New("paused by the test")
		}
		return nil
	})
	m := commands.Meta{Actor: "t"}
	if _, err := a.CreateApp(ctx, m, "web", events.NewAppSpec("nginx")); err != nil {
		t.Fatal(err)
	}
	// B has not folded the app: its projection alone would refuse.
	if err := storeB.View(func(r projections.Reader) error {
		if _, found, err := r.App("web"); found || err != nil {
			t.Fatalf("manager B already has the app (%v)", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, func() { paused.Store(false) })
	g, err := b.CreateDeviceGroup(ctx, m, "edge", events.DeviceGroupSpec{Apps: []string{"web"}, CronJobs: []string{}})
	if err != nil {
		t.Fatalf("manager B refused a group of an app manager A acknowledged: %v", err)
	}
	if len(g.Apps) != 1 || g.Version <= 0 {
		t.Fatalf("group %+v", g)
	}
	// A revert on B of an app A just created replaces it (B does not
	// pick "create" from a projection a moment behind).
	paused.Store(true)
	created, err := a.CreateApp(ctx, m, "api", events.NewAppSpec("api:1"))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, func() { paused.Store(false) })
	if _, err := a.ReplaceApp(ctx, m, "api", events.NewAppSpec("api:2")); err != nil {
		t.Fatal(err)
	}
	reverted, err := b.RevertApp(ctx, m, "api", created.Version)
	if err != nil || reverted.DockerImage != "api:1" || reverted.Version <= created.Version {
		t.Fatalf("revert on the manager behind: %+v, %v", reverted, err)
	}

	// A refusal that holds on the whole log is given, by both.
	for _, svc := range []*commands.Service{a, b} {
		_, err := svc.CreateDeviceGroup(ctx, m, "other", events.DeviceGroupSpec{Apps: []string{"nope"}, CronJobs: []string{}})
		var ce *commands.Error
		if !errors.As(err, &ce) || ce.Code != commands.CodeMissingApp {
			t.Fatalf("group of a missing app: %v", err)
		}
	}
}

// TestRefusedCommandsAppendNothing: a command the fold would reject now is
// refused by asking the fold (a dry run of the same code) before anything
// is appended: a missing member (named in the refusal as data), a stale
// If-Match, an object that does not exist, a name taken.
func TestRefusedCommandsAppendNothing(t *testing.T) {
	ctx := testenv.Context(t, 60*time.Second)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{testenv.StartBroker(t, t.TempDir()).Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	svc, _ := manager(t, l, nil)
	m := commands.Meta{Actor: "t"}
	app, err := svc.CreateApp(ctx, m, "web", events.NewAppSpec("nginx"))
	if err != nil {
		t.Fatal(err)
	}
	_, end, err := l.Bounds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stale := commands.Meta{Actor: "t", IfVersion: app.Version + 1000}
	cases := []struct {
		name string
		run  func() error
		code commands.Code
	}{
		{"missing cron job", func() error {
			_, err := svc.CreateDeviceGroup(ctx, m, "g", events.DeviceGroupSpec{Apps: []string{"web"}, CronJobs: []string{"nightly"}})
			return err
		}, commands.CodeMissingCronJob},
		{"stale If-Match", func() error { _, err := svc.StopApp(ctx, stale, "web"); return err }, commands.CodeVersionMismatch},
		{"not found", func() error { _, err := svc.StopApp(ctx, m, "nope"); return err }, commands.CodeNotFound},
		{"name taken", func() error { _, err := svc.CreateApp(ctx, m, "web", events.NewAppSpec("x")); return err }, commands.CodeExists},
		{"invalid patch result", func() error {
			_, err := svc.PatchApp(ctx, m, "web", events.AppPatch{RunPatch: events.RunPatch{Networks: &[]string{"bad name!"}}})
			return err
		}, commands.CodeInvalid},
	}
	for _, c := range cases {
		var ce *commands.Error
		if err := c.run(); !errors.As(err, &ce) || ce.Code != c.code {
			t.Fatalf("%s: %v, want %s", c.name, err, c.code)
		}
		if c.code == commands.CodeMissingCronJob && (ce.Missing == nil || *ce.Missing != (events.Aggregate{Kind: events.KindCronJob, Name: "nightly"})) {
			t.Fatalf("%s: the refusal names %+v, not the cron job nightly", c.name, ce.Missing)
		}
		if c.code == commands.CodeInvalid && ce.Cause == nil {
			t.Fatalf("%s: no validation error behind the refusal", c.name)
		}
	}
	if _, now, err := l.Bounds(ctx); err != nil || now != end {
		t.Fatalf("refused commands appended %d records (%v)", now-end, err)
	}
}
