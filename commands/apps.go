package commands

import (
	"context"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// CreateApp creates an app.
func (s *Service) CreateApp(ctx context.Context, m Meta, name string, spec events.AppSpec) (projections.App, error) {
	return run(ctx, s, m, events.KindApp, name, events.AppCreatedV{Spec: spec}, getApp)
}

// ReplaceApp replaces an app's whole spec.
func (s *Service) ReplaceApp(ctx context.Context, m Meta, name string, spec events.AppSpec) (projections.App, error) {
	return run(ctx, s, m, events.KindApp, name, events.AppReplacedV{Spec: spec}, getApp)
}

// PatchApp changes the fields the patch names.
func (s *Service) PatchApp(ctx context.Context, m Meta, name string, patch events.AppPatch) (projections.App, error) {
	return run(ctx, s, m, events.KindApp, name, events.AppPatchedV{Patch: patch}, getApp)
}

// StopApp sets running=false.
func (s *Service) StopApp(ctx context.Context, m Meta, name string) (projections.App, error) {
	return run(ctx, s, m, events.KindApp, name, events.AppStoppedV{}, getApp)
}

// StartApp sets running=true.
func (s *Service) StartApp(ctx context.Context, m Meta, name string) (projections.App, error) {
	return run(ctx, s, m, events.KindApp, name, events.AppStartedV{}, getApp)
}

// RestartApp restarts a running app on every device.
func (s *Service) RestartApp(ctx context.Context, m Meta, name string) (projections.App, error) {
	return run(ctx, s, m, events.KindApp, name, events.AppRestartedV{}, getApp)
}

// DeleteApp deletes an app. Device groups keep listing its name and get a
// new version, so their devices stop it.
func (s *Service) DeleteApp(ctx context.Context, m Meta, name string) error {
	_, err := run[projections.App](ctx, s, m, events.KindApp, name, events.AppDeletedV{}, nil)
	return err
}
