package worker

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/cronexpr"
)

// KeepCronRuns is how many finished runs of a cron job are kept, for their
// logs (2.7 removed every exited run at the next run).
const KeepCronRuns = 3

// cronJob is one scheduled job.
type cronJob struct {
	job      CronJob
	schedule cronexpr.Schedule
	next     time.Time
}

// cronRunner runs the group's cron jobs in the device's time zone: one
// container per run, no overlap (a run still going skips the next one),
// missed runs counted and logged, not silently collapsed.
type cronRunner struct {
	a   *Agent
	now func() time.Time

	mu      sync.Mutex
	jobs    map[string]*cronJob
	changed chan struct{}
}

func newCronRunner(a *Agent) *cronRunner {
	return &cronRunner{a: a, now: time.Now, jobs: map[string]*cronJob{}, changed: make(chan struct{}, 1)}
}

// update takes the group's cron jobs; it returns the jobs no longer in
// the group, whose running containers must go.
func (r *cronRunner) update(jobs []CronJob) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, j := range jobs {
		seen[j.Name] = true
		cur, ok := r.jobs[j.Name]
		if ok && cur.job.Version == j.Version {
			continue
		}
		s, err := cronexpr.Parse(j.Schedule)
		if err != nil {
			r.a.logger.Error("cron job has a schedule this worker cannot read; not scheduled", "cron_job", j.Name, "err", err)
			delete(r.jobs, j.Name)
			continue
		}
		r.jobs[j.Name] = &cronJob{job: j, schedule: s, next: s.Next(r.now())}
	}
	var gone []string
	for name := range r.jobs {
		if !seen[name] {
			gone = append(gone, name)
			delete(r.jobs, name)
		}
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
	sort.Strings(gone)
	return gone
}

// due returns the jobs due at now, with how many of their runs were
// missed (due times that passed while the worker could not run them),
// and schedules their next runs.
func (r *cronRunner) due(now time.Time) (jobs []CronJob, missed []int, wake time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wake = now.Add(time.Minute)
	for _, j := range r.jobs {
		if j.next.IsZero() {
			continue
		}
		if !j.next.After(now) {
			n := 0
			for t := j.schedule.Next(j.next); !t.IsZero() && !t.After(now) && n < 10000; t = j.schedule.Next(t) {
				n++
			}
			jobs, missed = append(jobs, j.job), append(missed, n)
			j.next = j.schedule.Next(now)
		}
		if !j.next.IsZero() && j.next.Before(wake) {
			wake = j.next
		}
	}
	return jobs, missed, wake
}

// run starts due jobs until ctx ends.
func (r *cronRunner) run(ctx context.Context) {
	for ctx.Err() == nil {
		jobs, missed, wake := r.due(r.now())
		for i, j := range jobs {
			if missed[i] > 0 {
				r.a.logger.Warn("cron job runs missed (the worker was stopped or busy); running once now", "cron_job", j.Name, "missed", missed[i])
			}
			go r.start(ctx, j)
		}
		t := time.NewTimer(time.Until(wake) + 10*time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-r.changed:
		}
		t.Stop()
	}
}

// start runs one run of a job, unless the previous one still runs.
func (r *cronRunner) start(ctx context.Context, j CronJob) {
	if !j.Running {
		return
	}
	a := r.a
	runs, err := a.engine.CronContainers(ctx)
	if err != nil {
		a.logger.Error("cron job not run: cannot list its containers", "cron_job", j.Name, "err", err)
		return
	}
	runs = ours(runs, a.cfg.Group, a.cfg.DeviceID)
	runs = slices.DeleteFunc(runs, func(c Container) bool { return c.App != j.Name })
	for _, c := range runs {
		if c.Running {
			a.logger.Warn("cron job run skipped: the previous run is still going", "cron_job", j.Name, "container", c.Name)
			return
		}
	}
	_, found, _ := a.engine.ImageID(ctx, j.DockerImage)
	switch {
	case a.cfg.Pull.wantsPull(found, true, false): // at every run, as 2.7, unless the policy says otherwise
		if err := a.engine.Pull(ctx, j.DockerImage, a.cfg.Registry); err != nil {
			if _, found, _ := a.engine.ImageID(ctx, j.DockerImage); !found {
				a.logger.Error("cron job not run: its image cannot be pulled", "cron_job", j.Name, "err", err)
				return
			}
			a.logger.Warn("cron job image pull failed; running the image on the device", "cron_job", j.Name, "err", err)
		}
	case !found:
		a.logger.Error("cron job not run: its image is not on this host, and this worker does not pull images (--pull never)", "cron_job", j.Name, "image", j.DockerImage)
		return
	}
	spec := runContainer(fmt.Sprintf("%s%s-%d-1", a.cfg.Host.NamePrefix, j.Name, r.now().Unix()), j.Name, 1, j.DockerImage, j.RunSpec, "no")
	if spec.Network == DefaultNetwork {
		if err := a.engine.EnsureNetwork(ctx, spec.Network); err != nil {
			a.logger.Error("cron job not run", "cron_job", j.Name, "err", err)
			return
		}
	}
	err = a.engine.Create(ctx, spec, CronLabels(j.Name, a.cfg.Group, a.cfg.DeviceID, j.Version))
	if err != nil {
		a.logger.Error("cron job run failed to start", "cron_job", j.Name, "err", err)
		return
	}
	a.logger.Info("cron job started", "cron_job", j.Name, "container", spec.Name)
	// Keep the last few finished runs for their logs.
	sort.Slice(runs, func(x, y int) bool { return runs[x].Created.After(runs[y].Created) })
	for i, c := range runs {
		if i >= KeepCronRuns-1 {
			_ = a.engine.Remove(ctx, c)
		}
	}
}

// removeRuns stops and removes every run of the jobs (left the group).
func (r *cronRunner) removeRuns(ctx context.Context, jobs []string) {
	if len(jobs) == 0 {
		return
	}
	runs, err := r.a.engine.CronContainers(ctx)
	if err != nil {
		r.a.logger.Warn("cannot list cron job runs", "err", err)
		return
	}
	runs = ours(runs, r.a.cfg.Group, r.a.cfg.DeviceID)
	for _, c := range runs {
		if slices.Contains(jobs, c.App) {
			if err := r.a.engine.Remove(ctx, c); err != nil {
				r.a.logger.Warn("cannot remove a run of a cron job that left the group", "container", c.Name, "err", err)
			}
		}
	}
}
