// Package rollouts is the rollout controller: it judges the active waves
// of every rollout from the devices' reports and takes the decisions
// (promote, complete, abort with or without revert) as events. Every
// manager runs one; the fold accepts each decision once (a decision that
// no longer applies is refused), so a cluster takes each decision once,
// and a controller that restarts resumes from the log's state.
package rollouts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// Projection is what the controller reads of the fold.
type Projection interface {
	View(fn func(projections.Reader) error) error
}

// Devices is what it reads of the inventory.
type Devices interface {
	Devices(q reports.DeviceQuery) ([]reports.Device, bool, error)
}

// Decide appends a decision (refused, it returns an error).
type Decide func(ctx context.Context, group string, d events.RolloutDecidedV) error

// DecideWith takes decisions through the commands (as the actor
// "rollout-controller").
func DecideWith(cmds interface {
	DecideRollout(ctx context.Context, m commands.Meta, group string, d events.RolloutDecidedV) (projections.Rollout, error)
}) Decide {
	return func(ctx context.Context, group string, d events.RolloutDecidedV) error {
		_, err := cmds.DecideRollout(ctx, commands.Meta{Actor: Actor}, group, d)
		return err
	}
}

// Actor is who the controller's decisions name.
const Actor = "rollout-controller"

// Defaults.
const (
	DefaultEvery       = 500 * time.Millisecond
	DefaultSilentAfter = 2 * time.Minute
)

// Controller takes the rollouts' decisions.
type Controller struct {
	Proj    Projection
	Devices Devices
	Decide  Decide
	// SilentAfter: a device not heard from for this long is silent.
	SilentAfter time.Duration
	// Ready says whether the projection and the inventory have caught up
	// with their logs (judged before, devices would look silent).
	Ready func() bool
	// Every is how often the rollouts are judged.
	Every  time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Run judges the rollouts every c.Every until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	t := time.NewTicker(c.every())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Step(ctx); err != nil && ctx.Err() == nil {
				c.logger().Warn("rollout controller", "err", err)
			}
		}
	}
}

func (c *Controller) every() time.Duration {
	if c.Every > 0 {
		return c.Every
	}
	return DefaultEvery
}

func (c *Controller) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Step judges every rollout in progress once and takes the decisions due.
func (c *Controller) Step(ctx context.Context) error {
	if c.Ready != nil && !c.Ready() {
		return nil
	}
	var running []projections.Rollout
	err := c.Proj.View(func(r projections.Reader) error {
		names, err := r.Rollouts()
		if err != nil {
			return err
		}
		for _, n := range names {
			ro, found, err := r.Rollout(n)
			if err != nil {
				return err
			}
			if found && ro.State == projections.RolloutInProgress {
				running = append(running, ro)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	var errs []error
	for _, ro := range running {
		devs, _, err := c.Devices.Devices(reports.DeviceQuery{Group: ro.Group})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d, due := Judge(ro, devs, now, c.silentAfter())
		if !due {
			continue
		}
		if err := c.Decide(ctx, ro.Group, d); err != nil {
			c.logger().Debug("rollout decision not taken (another manager's, or the rollout moved)", "group", ro.Group, "decision", d.Decision, "err", err)
			continue
		}
		c.logger().Info("rollout decision", "group", ro.Group, "decision", d.Decision, "target", d.Target, "wave", d.Wave+1, "revert", d.Revert, "reason", d.Reason)
	}
	return errors.Join(errs...)
}

func (c *Controller) silentAfter() time.Duration {
	if c.SilentAfter > 0 {
		return c.SilentAfter
	}
	return DefaultSilentAfter
}

// Health of a device in a rollout's active waves.
const (
	Healthy = "healthy" // runs the target, every app well, for min_healthy_time
	Pending = "pending" // not yet
	Failed  = "failed"  // an app fails (refused, not pullable, exited, unhealthy)
	Silent  = "silent"  // not heard from for SilentAfter
)

// DeviceHealth places a device against a rollout.
func DeviceHealth(ro projections.Rollout, d reports.Device, now time.Time, silentAfter time.Duration) string {
	if now.Sub(d.LastSeen) > silentAfter {
		return Silent
	}
	for _, a := range d.Apps {
		if a.Failing() {
			return Failed
		}
	}
	if d.AppliedVersion != ro.Target || d.ConvergedAt != ro.Target {
		return Pending
	}
	for _, a := range d.Apps {
		if a.Status != events.AppStatusRunning && a.Status != events.AppStatusStopped {
			return Pending
		}
	}
	if now.Sub(d.StatusChangedAt) < ro.Policy.MinHealthy() {
		return Pending // well, not for long enough yet
	}
	return Healthy
}

// Count counts the devices that get a rollout's target (its active
// waves) by health.
func Count(ro projections.Rollout, devs []reports.Device, now time.Time, silentAfter time.Duration) events.RolloutCounts {
	var n events.RolloutCounts
	for _, d := range devs {
		if !ro.ServesTarget(d.DeviceID, d.Labels) {
			continue
		}
		n.Devices++
		switch DeviceHealth(ro, d, now, silentAfter) {
		case Healthy:
			n.Healthy++
		case Failed:
			n.Failed++
		case Silent:
			n.Silent++
		default:
			n.Pending++
		}
	}
	return n
}

// Judge returns the decision a rollout in progress is due, if any: abort
// (reverting with auto_revert) when the failed or silent devices of its
// active waves cross their threshold or the wave's deadline passed;
// otherwise, with auto_promote, promote (or complete, at the last wave)
// once none of them is pending or failed.
func Judge(ro projections.Rollout, devs []reports.Device, now time.Time, silentAfter time.Duration) (events.RolloutDecidedV, bool) {
	n := Count(ro, devs, now, silentAfter)
	p := ro.Policy
	d := events.RolloutDecidedV{Target: ro.Target, Wave: ro.Wave, Counts: &n}
	waves := fmt.Sprintf("wave %d of %d (%d%% of the devices)", ro.Wave+1, len(p.Waves), p.Waves[min(ro.Wave, len(p.Waves)-1)])
	switch {
	case n.Devices > 0 && float64(n.Failed)*100 > p.MaxFailedPercent*float64(n.Devices):
		d.Decision, d.Revert = events.DecisionAbort, p.AutoRevert
		d.Reason = fmt.Sprintf("%d of %d devices of %s failed (max %g%%)", n.Failed, n.Devices, waves, p.MaxFailedPercent)
		d.Since = crossedAt(ro, devs, now, silentAfter, Failed, p.MaxFailedPercent, n.Devices, failedSince)
	case n.Devices > 0 && float64(n.Silent)*100 > p.MaxSilentPercent*float64(n.Devices):
		d.Decision, d.Revert = events.DecisionAbort, p.AutoRevert
		d.Reason = fmt.Sprintf("%d of %d devices of %s silent (max %g%%)", n.Silent, n.Devices, waves, p.MaxSilentPercent)
		d.Since = crossedAt(ro, devs, now, silentAfter, Silent, p.MaxSilentPercent, n.Devices, func(d reports.Device) time.Time { return d.LastSeen.Add(silentAfter) })
	case n.Pending == 0 && n.Failed == 0:
		if !p.AutoPromote {
			return d, false // promoted by hand
		}
		d.Decision = events.DecisionPromote
		if ro.Wave >= len(p.Waves)-1 {
			d.Decision = events.DecisionComplete
		}
		d.Reason = fmt.Sprintf("%d of %d devices of %s healthy for %s", n.Healthy, n.Devices, waves, p.MinHealthyTime)
	case now.Sub(ro.WaveStartedAt) > p.Deadline():
		d.Decision, d.Revert = events.DecisionAbort, p.AutoRevert
		since := ro.WaveStartedAt.Add(p.Deadline()).UTC()
		d.Since = &since
		d.Reason = fmt.Sprintf("%s not healthy within %s: %d pending, %d failed, %d silent of %d", waves, p.HealthyDeadline, n.Pending, n.Failed, n.Silent, n.Devices)
	default:
		return d, false
	}
	return d, true
}

// failedSince is when a failing device's failure began: its failed
// status event's time, or (that event not folded yet) its last report's.
func failedSince(d reports.Device) time.Time {
	if d.Failure != "" {
		return d.StatusChangedAt
	}
	return d.LastSeen
}

// crossedAt is when a threshold was crossed: the time (from at) of the
// device, among those of the active waves with the given health, whose
// turn put them over percent of the n devices.
func crossedAt(ro projections.Rollout, devs []reports.Device, now time.Time, silentAfter time.Duration, health string,
	percent float64, n int, at func(reports.Device) time.Time) *time.Time {
	var times []time.Time
	for _, d := range devs {
		if ro.ServesTarget(d.DeviceID, d.Labels) && DeviceHealth(ro, d, now, silentAfter) == health {
			times = append(times, at(d))
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	k := int(percent * float64(n) / 100) // the k+1-th is over the threshold
	if k >= len(times) {
		return nil
	}
	t := times[k].UTC()
	return &t
}
