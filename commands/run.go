package commands

import (
	"context"
	"errors"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// getter reads the object a command changed, for its answer.
type getter[T any] func(r projections.Reader, name string) (T, bool, error)

// run is the shape of every command on one named object: check the name,
// pre-check against the projection, append, wait, and read the object back.
func run[T any](ctx context.Context, s *Service, m Meta, kind events.Kind, name string, p events.Payload,
	pre func(r projections.Reader) error, get getter[T]) (T, error) {
	var doc T
	if err := checkName(kind, name); err != nil {
		return doc, err
	}
	env := events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: kind, Name: name}, Payload: p}
	if m.DryRun {
		return dryRun(ctx, s, m, env, pre, get)
	}
	_, done, err := s.replayed(m, env)
	if err != nil {
		return doc, err
	}
	if !done {
		if pre != nil {
			if err := s.precheck(ctx, pre); err != nil {
				return doc, err
			}
		}
		if _, err := s.execute(ctx, m, env); err != nil {
			return doc, err
		}
	}
	if get == nil {
		return doc, nil
	}
	err = s.view(func(r projections.Reader) error {
		var found bool
		var err error
		doc, found, err = get(r, name)
		if err == nil && !found {
			err = notFound(kind, name) // deleted again right after this command
		}
		return err
	})
	return doc, err
}

// mustExist is a pre-check that the object exists.
func mustExist[T any](kind events.Kind, name string, get getter[T]) func(projections.Reader) error {
	return func(r projections.Reader) error {
		_, found, err := get(r, name)
		if err == nil && !found {
			err = notFound(kind, name)
		}
		return err
	}
}

// mustNotExist is a pre-check that the name is free.
func mustNotExist[T any](kind events.Kind, name string, get getter[T]) func(projections.Reader) error {
	return func(r projections.Reader) error {
		_, found, err := get(r, name)
		if err == nil && found {
			err = exists(kind, name)
		}
		return err
	}
}

func getApp(r projections.Reader, n string) (projections.App, bool, error) { return r.App(n) }
func getGroup(r projections.Reader, n string) (projections.DeviceGroup, bool, error) {
	return r.DeviceGroup(n)
}
func getCron(r projections.Reader, n string) (projections.CronJob, bool, error) { return r.CronJob(n) }

// dryRun decides the command against the current state and answers what
// it would make, appending nothing.
func dryRun[T any](ctx context.Context, s *Service, m Meta, env events.Envelope, pre func(r projections.Reader) error, get getter[T]) (T, error) {
	var doc T
	if pre != nil {
		if err := s.precheck(ctx, pre); err != nil {
			return doc, err
		}
	}
	env.Actor, env.IfVersion, env.Time, env.CommandID = m.Actor, m.IfVersion, s.now().UTC(), newCommandID()
	if err := env.Validate(); err != nil {
		return doc, invalid(env.Aggregate.Kind, err)
	}
	err := s.proj.DryRun(env, func(res projections.Result, r projections.Reader) error {
		if !res.Verdict.Accepted {
			return rejected(env, res.Verdict)
		}
		if m.DryRunGroups != nil {
			*m.DryRunGroups = res.Groups
		}
		if get == nil {
			return nil
		}
		var err error
		doc, _, err = get(r, env.Aggregate.Name)
		return err
	})
	return doc, err
}

// precheck runs pre, a check of the command against the projection that
// refuses early what the fold would reject. This manager's projection may
// not have folded yet a write that another manager acknowledged (behind a
// load balancer, a client's next request often lands on the other one),
// so before refusing, the projection catches up with the log's end as it
// is now and pre runs again. A check that passes needs no catch-up: the
// fold decides anyway, on the whole log.
func (s *Service) precheck(ctx context.Context, pre func(r projections.Reader) error) error {
	err := s.view(pre)
	var refused *Error
	if err == nil || !errors.As(err, &refused) || !projections.CatchUp(ctx, s.log, s.proj) {
		return err
	}
	return s.view(pre)
}
