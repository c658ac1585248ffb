package worker

import (
	"context"
	"sync"
	"time"
)

// Restarts of unhealthy containers back off: a container that turns
// unhealthy again soon after a restart waits longer before the next one,
// so a flapping container does not thrash the device.
const (
	healthBackoffMin = 10 * time.Second
	healthBackoffMax = 5 * time.Minute
	// healthyReset: this long without trouble and the backoff starts over.
	healthyReset = 10 * time.Minute
)

type restartRecord struct {
	count int
	last  time.Time
}

// healthRestarter decides whether an unhealthy container is restarted now.
type healthRestarter struct {
	mu      sync.Mutex
	records map[string]*restartRecord // by container name
	now     func() time.Time
}

func newHealthRestarter() *healthRestarter {
	return &healthRestarter{records: map[string]*restartRecord{}, now: time.Now}
}

// allow reports whether the container may be restarted now, and records
// the restart if so.
func (h *healthRestarter) allow(name string) (bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	r := h.records[name]
	if r == nil || now.Sub(r.last) > healthyReset {
		r = &restartRecord{}
		h.records[name] = r
	}
	if r.count > 0 {
		wait := min(healthBackoffMin<<min(r.count-1, 10), healthBackoffMax)
		if now.Sub(r.last) < wait {
			return false, r.count
		}
	}
	r.count++
	r.last = now
	return true, r.count
}

// watchHealth restarts the app containers of this worker (ours) that
// Docker reports unhealthy (2.7 scanned every 10 s and restarted without
// limit, whoever's they were).
func (a *Agent) watchHealth(ctx context.Context) {
	h := newHealthRestarter()
	backoff := time.Second
	for ctx.Err() == nil {
		cs, errs := a.engine.Unhealthy(ctx)
		for c := range cs {
			backoff = time.Second
			if len(ours([]Container{c}, a.cfg.Group, a.cfg.DeviceID)) == 0 {
				continue // another worker's, on an engine several share
			}
			a.mu.Lock()
			if a.unhealthy == nil {
				a.unhealthy = map[string]time.Time{}
			}
			a.unhealthy[c.ID] = time.Now()
			a.mu.Unlock()
			ok, n := h.allow(c.Name)
			if !ok {
				a.logger.Warn("container unhealthy again; restart postponed (backoff)", "container", c.Name, "restarts", n)
				continue
			}
			a.logger.Warn("restarting an unhealthy container", "container", c.Name, "app", c.App, "restarts", n)
			if err := a.engine.Restart(ctx, c); err != nil {
				a.logger.Error("restart of an unhealthy container failed", "container", c.Name, "err", err)
			}
		}
		select {
		case err := <-errs:
			a.logger.Warn("docker events stream ended; resubscribing", "err", err, "in", backoff)
		default:
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, time.Minute)
	}
}
