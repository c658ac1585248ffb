package commands

import (
	"context"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// CreateDeviceGroup creates a device group of existing apps and cron jobs.
func (s *Service) CreateDeviceGroup(ctx context.Context, m Meta, name string, spec events.DeviceGroupSpec) (projections.DeviceGroup, error) {
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupCreatedV{Spec: spec}, getGroup)
}

// ReplaceDeviceGroup replaces both member lists.
func (s *Service) ReplaceDeviceGroup(ctx context.Context, m Meta, name string, spec events.DeviceGroupSpec) (projections.DeviceGroup, error) {
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupReplacedV{Spec: spec}, getGroup)
}

// PatchDeviceGroup replaces the member lists the patch names.
func (s *Service) PatchDeviceGroup(ctx context.Context, m Meta, name string, patch events.DeviceGroupPatch) (projections.DeviceGroup, error) {
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupPatchedV{Patch: patch}, getGroup)
}

// DeleteDeviceGroup deletes a device group.
func (s *Service) DeleteDeviceGroup(ctx context.Context, m Meta, name string) error {
	_, err := run[projections.DeviceGroup](ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupDeletedV{}, nil)
	return err
}

// PruneDeviceGroup asks the group's devices to prune unused images.
func (s *Service) PruneDeviceGroup(ctx context.Context, m Meta, name string) (projections.DeviceGroup, error) {
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupPrunedV{}, getGroup)
}

// PruneFleet asks every device to prune unused images and returns every
// group's prune_id.
func (s *Service) PruneFleet(ctx context.Context, m Meta) (map[string]int64, error) {
	env := events.Envelope{Type: events.FleetPruned, Aggregate: events.Aggregate{Kind: events.KindFleet}, Payload: events.FleetPrunedV{}}
	ids := map[string]int64{}
	view := s.view
	if m.DryRun {
		view = func(fn func(projections.Reader) error) error {
			return s.decide(ctx, s.stamp(m, env), func(res projections.Result, r projections.Reader) error {
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

// DecideRollout takes a decision on a device group's rollout and returns
// the rollout as it is then. A decision that no longer applies (another
// manager took it first, the rollout moved on) is refused without being
// appended (commands.Error with reason rollout_moved).
func (s *Service) DecideRollout(ctx context.Context, m Meta, group string, d events.RolloutDecidedV) (projections.Rollout, error) {
	return run(ctx, s, m, events.KindDeviceGroup, group, d, getRollout)
}

func getRollout(r projections.Reader, n string) (projections.Rollout, bool, error) {
	return r.Rollout(n)
}
