package commands

import (
	"context"
	"errors"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// getter reads the object a command changed, for its answer.
type getter[T any] func(r projections.Reader, name string) (T, bool, error)

// run is the shape of every command on one named object: validate the
// input, ask the fold whether the event would be accepted now (refusing
// early what it would reject, so that nothing is appended), append, wait,
// answer from the fold's verdict, and read the object back.
func run[T any](ctx context.Context, s *Service, m Meta, kind events.Kind, name string, p events.Payload, get getter[T]) (T, error) {
	var doc T
	env, err := newEnvelope(kind, name, p)
	if err != nil {
		return doc, err
	}
	if m.DryRun {
		return dryRun(ctx, s, m, env, get)
	}
	_, done, err := s.replayed(m, env)
	if err != nil {
		return doc, err
	}
	if !done {
		if err := s.decide(ctx, s.stamp(m, env), nil); err != nil {
			return doc, err
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

// newEnvelope checks a command's input (the name and the payload; nothing
// that depends on state) and wraps it in an envelope.
func newEnvelope(kind events.Kind, name string, p events.Payload) (events.Envelope, error) {
	env := events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: kind, Name: name}, Payload: p}
	if err := checkName(kind, name); err != nil {
		return env, err
	}
	if v, ok := p.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return env, invalid(kind, err)
		}
	}
	return env, nil
}

func getApp(r projections.Reader, n string) (projections.App, bool, error) { return r.App(n) }
func getGroup(r projections.Reader, n string) (projections.DeviceGroup, bool, error) {
	return r.DeviceGroup(n)
}
func getCron(r projections.Reader, n string) (projections.CronJob, bool, error) { return r.CronJob(n) }

// dryRun decides the command against the current state and answers what
// it would make, appending nothing.
func dryRun[T any](ctx context.Context, s *Service, m Meta, env events.Envelope, get getter[T]) (T, error) {
	var doc T
	err := s.decide(ctx, s.stamp(m, env), func(res projections.Result, r projections.Reader) error {
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

// decide asks the fold whether env would be accepted as the next record of
// the log: the projection folds it on top of its state without writing (the
// same code that folds the log), so no rule about whether a command
// succeeds is written anywhere else. An accepted dry run calls fn with its
// result and state; a rejected one is the command's *Error.
//
// This manager's projection may not have folded yet a write that another
// manager acknowledged (behind a load balancer, a client's next request
// often lands on the other one), so before refusing, the projection
// catches up with the log's end as it is now and the fold is asked again.
// An accepted dry run needs no catch-up: the fold decides again, on the
// whole log, when the record is appended. A duplicate (a concurrent
// request with the same idempotency key) is not refused: appending it
// answers with the first request's verdict.
func (s *Service) decide(ctx context.Context, env events.Envelope, fn func(projections.Result, projections.Reader) error) error {
	var refused error
	ask := func() error {
		refused = nil
		return s.proj.DryRun(env, func(res projections.Result, r projections.Reader) error {
			if !res.Verdict.Accepted && res.Verdict.Reason != projections.ReasonDuplicate {
				refused = rejected(env, res.Verdict, res.Cause)
				return nil
			}
			if fn == nil {
				return nil
			}
			return fn(res, r)
		})
	}
	if err := ask(); errors.Is(err, events.ErrInvalid) {
		return invalid(env.Aggregate.Kind, err) // e.g. over the record size limit
	} else if err != nil || refused == nil {
		return err
	}
	if !projections.CatchUp(ctx, s.log, s.proj) {
		return refused
	}
	if err := ask(); err != nil {
		return err
	}
	return refused
}
