package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
)

// execute runs one app's plan. Consecutive creates (or removes) of a
// plan that is not rolling run in parallel, as 2.7 started an app's
// containers in parallel threads.
func (a *Agent) execute(ctx context.Context, p AppPlan) error {
	if p.Jitter && a.cfg.MaxRestartWait > 0 {
		sleep(ctx, rand.N(a.cfg.MaxRestartWait+1))
	}
	rolling := false
	for _, s := range p.Steps {
		rolling = rolling || s.Kind == StepWait
	}
	for i := 0; i < len(p.Steps); {
		j := i + 1
		if !rolling {
			for j < len(p.Steps) && p.Steps[j].Kind == p.Steps[i].Kind {
				j++
			}
		}
		errs := make([]error, j-i)
		var wg sync.WaitGroup
		for k := i; k < j; k++ {
			wg.Go(func() { errs[k-i] = a.step(ctx, p, p.Steps[k]) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// step runs one step.
func (a *Agent) step(ctx context.Context, p AppPlan, s Step) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	switch s.Kind {
	case StepRemove:
		err = a.engine.Remove(ctx, s.Container)
	case StepRestart:
		err = a.engine.Restart(ctx, s.Container)
	case StepWait:
		sleep(ctx, s.Wait)
		return nil
	case StepCreate:
		if s.Spec.Network == DefaultNetwork {
			if err := a.ensureNetwork(ctx); err != nil {
				return err
			}
		}
		err = a.engine.Create(ctx, s.Spec, AppLabels(s.Spec, a.cfg.Group, a.cfg.DeviceID, p.Version))
	}
	if err != nil {
		return err
	}
	a.logger.Info("app step done", "app", p.App, "step", s.Kind.String(), "container", s.Container.Name+s.Spec.Name)
	return nil
}

// ensureNetwork makes sure the nebula network exists, asking the engine
// once per reconcile.
func (a *Agent) ensureNetwork(ctx context.Context) error {
	a.netMu.Lock()
	defer a.netMu.Unlock()
	if a.netOK {
		return nil
	}
	if err := a.engine.EnsureNetwork(ctx, DefaultNetwork); err != nil {
		return err
	}
	a.netOK = true
	return nil
}
