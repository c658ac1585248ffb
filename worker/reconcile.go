package worker

import (
	"context"
	"maps"
	"sync"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Reconcile brings the engine to the config, in phases: pull what changed,
// plan against the containers there are, execute the plans of the apps in
// parallel, record the outcome, then cron jobs, prune and the saved state.
func (a *Agent) Reconcile(ctx context.Context, info Info) {
	applied := a.appliedVersions()
	images := a.pullImages(ctx, info.Apps, applied)
	actual, err := a.containers(ctx)
	if err != nil {
		a.logger.Warn("cannot list containers; will retry", "err", err)
		return
	}
	a.netMu.Lock()
	a.netOK = false // someone may have removed it: check again when needed
	a.netMu.Unlock()
	plans := Plan(Desired{Group: a.cfg.Group, Apps: info.Apps, Host: a.cfg.Host}, actual, images, applied)
	done, problems := a.runPlans(ctx, plans, info.Apps)
	a.mu.Lock()
	a.changed = a.changed || len(plans) > 0
	if len(problems) == 0 {
		a.appliedGroup = info.DeviceGroupID
	}
	a.problems = problems
	a.mu.Unlock()
	applied = nextApplied(applied, done, plans, info.Apps)
	a.cron.removeRuns(ctx, a.cron.update(info.CronJobs))
	a.finish(ctx, info, applied)
}

// appliedVersions is a copy of the app versions applied so far.
func (a *Agent) appliedVersions() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	applied := make(map[string]int64, len(a.state.Applied))
	maps.Copy(applied, a.state.Applied)
	return applied
}

// pullImages pulls the images of running apps as the pull policy says
// (an image whose app changed, or a pull that failed before and is due
// again) and returns the local image ID of each image the host holds.
func (a *Agent) pullImages(ctx context.Context, apps []App, applied map[string]int64) map[string]string {
	images := map[string]string{}
	for _, app := range apps {
		if !app.Running {
			continue
		}
		if _, done := images[app.DockerImage]; done {
			continue
		}
		id, found, err := a.engine.ImageID(ctx, app.DockerImage)
		if err != nil {
			a.logger.Warn("inspect image", "image", app.DockerImage, "err", err)
			continue
		}
		last, ok := applied[app.Name]
		changed := !ok || app.Version > last
		if a.cfg.Pull.wantsPull(found, changed, a.pullPending(app.DockerImage)) && a.mayPull(app.DockerImage) {
			if err := a.engine.Pull(ctx, app.DockerImage, a.cfg.Registry); err != nil {
				a.pullFailed(app.DockerImage, err)
			} else {
				a.pullDone(app.DockerImage)
				id, found, err = a.engine.ImageID(ctx, app.DockerImage)
				if err != nil {
					a.logger.Warn("inspect image", "image", app.DockerImage, "err", err)
				}
			}
		}
		if found {
			images[app.DockerImage] = id
		}
	}
	return images
}

// runPlans executes the plans of the apps in parallel. It returns the
// version each app whose plan ran is now at, and the problem of each app
// that is not (a plan blocked for want of its image, or one that failed).
// A problem is logged when it is new or changed, and its end is logged.
func (a *Agent) runPlans(ctx context.Context, plans []AppPlan, apps []App) (map[string]int64, map[string]appProblem) {
	a.mu.Lock()
	before := a.problems // of the last reconcile
	a.mu.Unlock()
	done := map[string]int64{}
	problems := map[string]appProblem{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range plans {
		if p.Blocked != "" {
			why := a.blocked(p, apps)
			if before[p.App].status != events.AppStatusPullFailed {
				a.logger.Warn("app not updated (said again when this changes)", "app", p.App, "why", why)
			}
			problems[p.App] = appProblem{events.AppStatusPullFailed, why}
			continue
		}
		wg.Go(func() {
			err := a.execute(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if prev := before[p.App]; prev.status != events.AppStatusFailed || prev.err != err.Error() {
					a.logger.Error("app not brought to its config; will retry (said again when this changes)", "app", p.App, "err", err)
				}
				problems[p.App] = appProblem{events.AppStatusFailed, err.Error()}
				return
			}
			if _, failed := before[p.App]; failed {
				a.logger.Info("app brought to its config", "app", p.App)
			}
			done[p.App] = p.Version
		})
	}
	wg.Wait()
	return done, problems
}

// nextApplied is what is applied after a reconcile: the apps whose plan
// ran at their new version, the apps that needed no plan at the config's
// version, the others as they were; apps no longer in the config are
// forgotten.
func nextApplied(applied, done map[string]int64, plans []AppPlan, apps []App) map[string]int64 {
	planned := map[string]bool{}
	for _, p := range plans {
		planned[p.App] = true
	}
	maps.Copy(applied, done)
	for _, app := range apps {
		if !planned[app.Name] {
			applied[app.Name] = app.Version // already as wanted
		}
	}
	for name := range applied {
		if !contains(apps, name) {
			delete(applied, name)
		}
	}
	return applied
}

// finish prunes images when the group asks for it, forgets pending pulls
// of images no app uses, and saves the state.
func (a *Agent) finish(ctx context.Context, info Info, applied map[string]int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if info.PruneID > a.state.PruneID && a.state.PruneID != 0 {
		if err := a.engine.PruneImages(ctx); err != nil {
			a.logger.Warn("image prune failed; will retry", "err", err)
		} else {
			a.logger.Info("pruned unused images", "prune_id", info.PruneID)
			a.state.PruneID = info.PruneID
		}
	} else if a.state.PruneID == 0 {
		a.state.PruneID = info.PruneID
	}
	a.state.Applied = applied
	for image := range a.state.PullPending {
		if !usesImage(info.Apps, image) {
			delete(a.state.PullPending, image)
		}
	}
	if err := SaveState(a.cfg.StateDir, a.state); err != nil {
		a.logger.Error("cannot save the worker state", "dir", a.cfg.StateDir, "err", err)
	}
}

// containers lists this worker's app containers: those of its group, and
// Nebula 2.7's (no group label), which it takes over. Another group's
// (a second worker on the engine) are not its business.
func (a *Agent) containers(ctx context.Context) ([]Container, error) {
	all, err := a.engine.Containers(ctx)
	return ours(all, a.cfg.Group, a.cfg.DeviceID), err
}

// ours keeps the containers of this worker: its group's, made by this
// device (or by one that did not label its device), and 2.7's.
func ours(all []Container, group, device string) []Container {
	out := all[:0:0]
	for _, c := range all {
		if (c.Group == "" || c.Group == group) && (c.Device == "" || device == "" || c.Device == device) {
			out = append(out, c)
		}
	}
	return out
}

func usesImage(apps []App, image string) bool {
	for _, a := range apps {
		if a.Running && a.DockerImage == image {
			return true
		}
	}
	return false
}

func contains(apps []App, name string) bool {
	for _, a := range apps {
		if a.Name == name {
			return true
		}
	}
	return false
}
