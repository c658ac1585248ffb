package commands

import (
	"context"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// CreateCronJob creates a cron job.
func (s *Service) CreateCronJob(ctx context.Context, m Meta, name string, spec events.CronJobSpec) (projections.CronJob, error) {
	if err := spec.Validate(); err != nil {
		return projections.CronJob{}, invalid(events.KindCronJob, err)
	}
	return run(ctx, s, m, events.KindCronJob, name, events.CronJobCreatedV{Spec: spec}, mustNotExist(events.KindCronJob, name, getCron), getCron)
}

// ReplaceCronJob replaces a cron job's whole spec.
func (s *Service) ReplaceCronJob(ctx context.Context, m Meta, name string, spec events.CronJobSpec) (projections.CronJob, error) {
	if err := spec.Validate(); err != nil {
		return projections.CronJob{}, invalid(events.KindCronJob, err)
	}
	return run(ctx, s, m, events.KindCronJob, name, events.CronJobReplacedV{Spec: spec}, mustExist(events.KindCronJob, name, getCron), getCron)
}

// PatchCronJob changes the fields the patch names.
func (s *Service) PatchCronJob(ctx context.Context, m Meta, name string, patch events.CronJobPatch) (projections.CronJob, error) {
	pre := func(r projections.Reader) error {
		c, found, err := r.CronJob(name)
		if err != nil {
			return err
		}
		if !found {
			return notFound(events.KindCronJob, name)
		}
		if err := patch.Apply(c.CronJobSpec).Validate(); err != nil {
			return invalid(events.KindCronJob, err)
		}
		return nil
	}
	return run(ctx, s, m, events.KindCronJob, name, events.CronJobPatchedV{Patch: patch}, pre, getCron)
}

// DeleteCronJob deletes a cron job; groups listing it get a new version.
func (s *Service) DeleteCronJob(ctx context.Context, m Meta, name string) error {
	_, err := run[projections.CronJob](ctx, s, m, events.KindCronJob, name, events.CronJobDeletedV{}, mustExist(events.KindCronJob, name, getCron), nil)
	return err
}
