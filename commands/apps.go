package commands

import (
	"context"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// CreateApp creates an app.
func (s *Service) CreateApp(ctx context.Context, m Meta, name string, spec events.AppSpec) (projections.App, error) {
	if err := spec.Validate(); err != nil {
		return projections.App{}, invalid(events.KindApp, err)
	}
	return run(ctx, s, m, events.KindApp, name, events.AppCreatedV{Spec: spec}, mustNotExist(events.KindApp, name, getApp), getApp)
}

// ReplaceApp replaces an app's whole spec.
func (s *Service) ReplaceApp(ctx context.Context, m Meta, name string, spec events.AppSpec) (projections.App, error) {
	if err := spec.Validate(); err != nil {
		return projections.App{}, invalid(events.KindApp, err)
	}
	return run(ctx, s, m, events.KindApp, name, events.AppReplacedV{Spec: spec}, mustExist(events.KindApp, name, getApp), getApp)
}

// PatchApp changes the fields the patch names.
func (s *Service) PatchApp(ctx context.Context, m Meta, name string, patch events.AppPatch) (projections.App, error) {
	pre := func(r projections.Reader) error {
		app, found, err := r.App(name)
		if err != nil {
			return err
		}
		if !found {
			return notFound(events.KindApp, name)
		}
		if err := patch.Apply(app.AppSpec).Validate(); err != nil {
			return invalid(events.KindApp, err)
		}
		return nil
	}
	return run(ctx, s, m, events.KindApp, name, events.AppPatchedV{Patch: patch}, pre, getApp)
}

// StopApp sets running=false.
func (s *Service) StopApp(ctx context.Context, m Meta, name string) (projections.App, error) {
	return run(ctx, s, m, events.KindApp, name, events.AppStoppedV{}, mustExist(events.KindApp, name, getApp), getApp)
}

// StartApp sets running=true.
func (s *Service) StartApp(ctx context.Context, m Meta, name string) (projections.App, error) {
	return run(ctx, s, m, events.KindApp, name, events.AppStartedV{}, mustExist(events.KindApp, name, getApp), getApp)
}

// RestartApp restarts a running app on every device.
func (s *Service) RestartApp(ctx context.Context, m Meta, name string) (projections.App, error) {
	pre := func(r projections.Reader) error {
		app, found, err := r.App(name)
		if err != nil {
			return err
		}
		if !found {
			return notFound(events.KindApp, name)
		}
		if !app.Running {
			return &Error{Code: CodeNotRunning, Kind: events.KindApp, Detail: "app " + name + " is stopped; start it instead"}
		}
		return nil
	}
	return run(ctx, s, m, events.KindApp, name, events.AppRestartedV{}, pre, getApp)
}

// DeleteApp deletes an app. Device groups keep listing its name and get a
// new version, so their devices stop it.
func (s *Service) DeleteApp(ctx context.Context, m Meta, name string) error {
	_, err := run[projections.App](ctx, s, m, events.KindApp, name, events.AppDeletedV{}, mustExist(events.KindApp, name, getApp), nil)
	return err
}
