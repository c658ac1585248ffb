package commands

import (
	"context"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Reverts restore an object as it was at an earlier offset: the caller
// reads that version from the log; the command appends a replace (or a
// create, if the object is gone now) marked with revert_of.

// RevertApp restores the app's spec of offset to.
func (s *Service) RevertApp(ctx context.Context, m Meta, name string, to int64, spec events.AppSpec) (projections.App, error) {
	if err := spec.Validate(); err != nil {
		return projections.App{}, invalid(events.KindApp, err)
	}
	exists, err := existsNow(ctx, s, name, getApp)
	if err != nil {
		return projections.App{}, err
	}
	if exists {
		return run(ctx, s, m, events.KindApp, name, events.AppReplacedV{Spec: spec, RevertOf: &to}, mustExist(events.KindApp, name, getApp), getApp)
	}
	return run(ctx, s, m, events.KindApp, name, events.AppCreatedV{Spec: spec, RevertOf: &to}, mustNotExist(events.KindApp, name, getApp), getApp)
}

// RevertDeviceGroup restores the group's member lists of offset to (the
// members must exist now).
func (s *Service) RevertDeviceGroup(ctx context.Context, m Meta, name string, to int64, spec events.DeviceGroupSpec) (projections.DeviceGroup, error) {
	if err := spec.Validate(); err != nil {
		return projections.DeviceGroup{}, invalid(events.KindDeviceGroup, err)
	}
	exists, err := existsNow(ctx, s, name, getGroup)
	if err != nil {
		return projections.DeviceGroup{}, err
	}
	members := func(r projections.Reader) error { return checkMembers(r, spec) }
	if exists {
		return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupReplacedV{Spec: spec, RevertOf: &to}, members, getGroup)
	}
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupCreatedV{Spec: spec, RevertOf: &to}, members, getGroup)
}

// RevertCronJob restores the cron job's spec of offset to.
func (s *Service) RevertCronJob(ctx context.Context, m Meta, name string, to int64, spec events.CronJobSpec) (projections.CronJob, error) {
	if err := spec.Validate(); err != nil {
		return projections.CronJob{}, invalid(events.KindCronJob, err)
	}
	exists, err := existsNow(ctx, s, name, getCron)
	if err != nil {
		return projections.CronJob{}, err
	}
	if exists {
		return run(ctx, s, m, events.KindCronJob, name, events.CronJobReplacedV{Spec: spec, RevertOf: &to}, nil, getCron)
	}
	return run(ctx, s, m, events.KindCronJob, name, events.CronJobCreatedV{Spec: spec, RevertOf: &to}, nil, getCron)
}

// existsNow says whether the object exists now, in the projection caught
// up with the log (a revert creates or replaces: a projection a moment
// behind another manager's would pick the wrong one, and the fold would
// refuse it).
func existsNow[T any](ctx context.Context, s *Service, name string, get getter[T]) (bool, error) {
	projections.CatchUp(ctx, s.log, s.proj)
	var found bool
	err := s.view(func(r projections.Reader) error {
		_, f, err := get(r, name)
		found = f
		return err
	})
	return found, err
}
