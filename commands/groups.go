package commands

import (
	"context"
	"fmt"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// checkMembers is the pre-check that every listed app and cron job exists.
func checkMembers(r projections.Reader, spec events.DeviceGroupSpec) error {
	for _, a := range spec.Apps {
		if _, found, err := r.App(a); err != nil || !found {
			return missing(err, CodeMissingApp, events.KindApp, a)
		}
	}
	for _, c := range spec.CronJobs {
		if _, found, err := r.CronJob(c); err != nil || !found {
			return missing(err, CodeMissingCronJob, events.KindCronJob, c)
		}
	}
	return nil
}

func missing(err error, code Code, kind events.Kind, name string) error {
	if err != nil {
		return err
	}
	return &Error{Code: code, Kind: kind, Detail: fmt.Sprintf("%s %q does not exist", kind, name)}
}

// CreateDeviceGroup creates a device group of existing apps and cron jobs.
func (s *Service) CreateDeviceGroup(ctx context.Context, m Meta, name string, spec events.DeviceGroupSpec) (projections.DeviceGroup, error) {
	if err := spec.Validate(); err != nil {
		return projections.DeviceGroup{}, invalid(events.KindDeviceGroup, err)
	}
	pre := func(r projections.Reader) error {
		if err := mustNotExist(events.KindDeviceGroup, name, getGroup)(r); err != nil {
			return err
		}
		return checkMembers(r, spec)
	}
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupCreatedV{Spec: spec}, pre, getGroup)
}

// ReplaceDeviceGroup replaces both member lists.
func (s *Service) ReplaceDeviceGroup(ctx context.Context, m Meta, name string, spec events.DeviceGroupSpec) (projections.DeviceGroup, error) {
	if err := spec.Validate(); err != nil {
		return projections.DeviceGroup{}, invalid(events.KindDeviceGroup, err)
	}
	pre := func(r projections.Reader) error {
		if err := mustExist(events.KindDeviceGroup, name, getGroup)(r); err != nil {
			return err
		}
		return checkMembers(r, spec)
	}
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupReplacedV{Spec: spec}, pre, getGroup)
}

// PatchDeviceGroup replaces the member lists the patch names.
func (s *Service) PatchDeviceGroup(ctx context.Context, m Meta, name string, patch events.DeviceGroupPatch) (projections.DeviceGroup, error) {
	pre := func(r projections.Reader) error {
		g, found, err := r.DeviceGroup(name)
		if err != nil {
			return err
		}
		if !found {
			return notFound(events.KindDeviceGroup, name)
		}
		spec := patch.Apply(g.DeviceGroupSpec)
		if err := spec.Validate(); err != nil {
			return invalid(events.KindDeviceGroup, err)
		}
		return checkMembers(r, spec)
	}
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupPatchedV{Patch: patch}, pre, getGroup)
}

// DeleteDeviceGroup deletes a device group.
func (s *Service) DeleteDeviceGroup(ctx context.Context, m Meta, name string) error {
	_, err := run[projections.DeviceGroup](ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupDeletedV{},
		mustExist(events.KindDeviceGroup, name, getGroup), nil)
	return err
}

// PruneDeviceGroup asks the group's devices to prune unused images.
func (s *Service) PruneDeviceGroup(ctx context.Context, m Meta, name string) (projections.DeviceGroup, error) {
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupPrunedV{}, mustExist(events.KindDeviceGroup, name, getGroup), getGroup)
}

// PruneFleet asks every device to prune unused images and returns every
// group's prune_id.
func (s *Service) PruneFleet(ctx context.Context, m Meta) (map[string]int64, error) {
	env := events.Envelope{Type: events.FleetPruned, Aggregate: events.Aggregate{Kind: events.KindFleet}, Payload: events.FleetPrunedV{}}
	ids := map[string]int64{}
	view := s.view
	if m.DryRun {
		env.Actor, env.Time, env.CommandID = m.Actor, s.now().UTC(), newCommandID()
		view = func(fn func(projections.Reader) error) error {
			return s.proj.DryRun(env, func(res projections.Result, r projections.Reader) error {
				if m.DryRunGroups != nil {
					*m.DryRunGroups = res.Groups
				}
				return fn(r)
			})
		}
	} else if _, err := s.execute(ctx, m, env); err != nil {
		return nil, err
	}
	err := view(func(r projections.Reader) error {
		names, err := r.Names(events.KindDeviceGroup)
		if err != nil {
			return err
		}
		for _, n := range names {
			g, found, err := r.DeviceGroup(n)
			if err != nil {
				return err
			}
			if found {
				ids[n] = g.PruneID
			}
		}
		return nil
	})
	return ids, err
}
