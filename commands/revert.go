package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Past is where a revert reads what it restores: the projection as it was
// at an offset, as far as one object goes (projections/past).
type Past interface {
	ViewAt(ctx context.Context, at int64, fn func(r projections.Reader) error) error
}

// ErrNoPast is the answer of a revert on a service given no Past.
var ErrNoPast = errors.New("reverts need the event log's history, which this service was not given")

// Reverts restore an object as it was at an earlier offset: the command
// reads that version from the log's past and appends a replace (or a
// create, if the object is gone now) marked with revert_of.

// RevertApp restores the app's spec of offset to.
func (s *Service) RevertApp(ctx context.Context, m Meta, name string, to int64) (projections.App, error) {
	old, err := readPast(ctx, s, events.KindApp, name, to, getApp, func(a projections.App) int64 { return a.Version })
	if err != nil {
		return old, err
	}
	exists, err := existsNow(ctx, s, name, getApp)
	if err != nil {
		return projections.App{}, err
	}
	if exists {
		return run(ctx, s, m, events.KindApp, name, events.AppReplacedV{Spec: old.AppSpec, RevertOf: &to}, getApp)
	}
	return run(ctx, s, m, events.KindApp, name, events.AppCreatedV{Spec: old.AppSpec, RevertOf: &to}, getApp)
}

// RevertDeviceGroup restores the group's member lists of offset to (the
// members must exist now).
func (s *Service) RevertDeviceGroup(ctx context.Context, m Meta, name string, to int64) (projections.DeviceGroup, error) {
	old, err := readPast(ctx, s, events.KindDeviceGroup, name, to, getGroup, func(g projections.DeviceGroup) int64 { return g.Version })
	if err != nil {
		return old, err
	}
	exists, err := existsNow(ctx, s, name, getGroup)
	if err != nil {
		return projections.DeviceGroup{}, err
	}
	if exists {
		return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupReplacedV{Spec: old.DeviceGroupSpec, RevertOf: &to}, getGroup)
	}
	return run(ctx, s, m, events.KindDeviceGroup, name, events.DeviceGroupCreatedV{Spec: old.DeviceGroupSpec, RevertOf: &to}, getGroup)
}

// RevertCronJob restores the cron job's spec of offset to.
func (s *Service) RevertCronJob(ctx context.Context, m Meta, name string, to int64) (projections.CronJob, error) {
	old, err := readPast(ctx, s, events.KindCronJob, name, to, getCron, func(c projections.CronJob) int64 { return c.Version })
	if err != nil {
		return old, err
	}
	exists, err := existsNow(ctx, s, name, getCron)
	if err != nil {
		return projections.CronJob{}, err
	}
	if exists {
		return run(ctx, s, m, events.KindCronJob, name, events.CronJobReplacedV{Spec: old.CronJobSpec, RevertOf: &to}, getCron)
	}
	return run(ctx, s, m, events.KindCronJob, name, events.CronJobCreatedV{Spec: old.CronJobSpec, RevertOf: &to}, getCron)
}

// readPast reads the version to of the object: the offset must be in the
// log and be a version of that object (the offset of an event that made
// it what it was then), or the revert is CodeNotAtOffset: a revert to an
// offset beyond the log's end, or of another object, would otherwise
// restore whatever the object was at some other point and bump its
// version on every device.
func readPast[T any](ctx context.Context, s *Service, kind events.Kind, name string, to int64, get getter[T], version func(T) int64) (T, error) {
	var doc T
	if err := checkName(kind, name); err != nil {
		return doc, err
	}
	if s.past == nil {
		return doc, ErrNoPast
	}
	_, end, err := s.log.Bounds(ctx)
	if err != nil {
		return doc, err
	}
	notAt := func(format string, args ...any) error {
		return &Error{Code: CodeNotAtOffset, Kind: kind, Detail: fmt.Sprintf(format, args...)}
	}
	if to >= end {
		return doc, notAt("offset %d is beyond the end of the event log (its last offset is %d)", to, end-1)
	}
	var found bool
	err = s.past.ViewAt(ctx, to, func(r projections.Reader) error {
		var err error
		doc, found, err = get(r, name)
		return err
	})
	switch {
	case err != nil:
	case !found:
		err = notAt("%s %q did not exist at offset %d", kind, name, to)
	case version(doc) != to:
		err = notAt("offset %d is not a version of %s %q: its version then was %d", to, kind, name, version(doc))
	}
	return doc, err
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
