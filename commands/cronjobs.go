package commands

import (
	"context"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// CreateCronJob creates a cron job.
func (s *Service) CreateCronJob(ctx context.Context, m Meta, name string, spec events.CronJobSpec) (projections.CronJob, error) {
	return run(ctx, s, m, events.KindCronJob, name, events.CronJobCreatedV{Spec: spec}, getCron)
}

// ReplaceCronJob replaces a cron job's whole spec.
func (s *Service) ReplaceCronJob(ctx context.Context, m Meta, name string, spec events.CronJobSpec) (projections.CronJob, error) {
	return run(ctx, s, m, events.KindCronJob, name, events.CronJobReplacedV{Spec: spec}, getCron)
}

// PatchCronJob changes the fields the patch names.
func (s *Service) PatchCronJob(ctx context.Context, m Meta, name string, patch events.CronJobPatch) (projections.CronJob, error) {
	return run(ctx, s, m, events.KindCronJob, name, events.CronJobPatchedV{Patch: patch}, getCron)
}

// DeleteCronJob deletes a cron job; groups listing it get a new version.
func (s *Service) DeleteCronJob(ctx context.Context, m Meta, name string) error {
	_, err := run[projections.CronJob](ctx, s, m, events.KindCronJob, name, events.CronJobDeletedV{}, nil)
	return err
}
