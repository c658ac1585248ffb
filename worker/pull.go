package worker

import (
	"fmt"
	"time"
)

func (a *Agent) pullPending(image string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state.PullPending[image]
}

func (a *Agent) mayPull(image string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Now().After(a.pullWait[image])
}

func (a *Agent) pullFailed(image string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.pullFail[image]
	prev := f.err
	f.count++
	f.err = err
	a.pullFail[image] = f
	wait := min(time.Duration(1<<min(f.count, 9))*time.Second, 10*time.Minute)
	a.pullWait[image] = time.Now().Add(wait)
	if a.state.PullPending == nil {
		a.state.PullPending = map[string]bool{}
	}
	a.state.PullPending[image] = true
	if f.count == 1 || f.err.Error() != prev.Error() {
		a.logger.Warn("image pull failed; running containers are kept, the pull is retried with backoff up to 10 minutes (said again when this changes)",
			"image", image, "err", err)
	}
}

// blocked says why plan p could not run: its image is not on the host,
// and, when a pull of it failed, what the engine said (an unknown tag, an
// unreachable registry and refused credentials need different fixes).
func (a *Agent) blocked(p AppPlan, apps []App) string {
	if a.cfg.Pull == PullNever {
		return p.Blocked + " (this worker does not pull images: --pull never)"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, app := range apps {
		if f := a.pullFail[app.DockerImage]; app.Name == p.App && f.err != nil {
			pulls := "1 pull"
			if f.count > 1 {
				pulls = fmt.Sprintf("%d pulls", f.count)
			}
			return fmt.Sprintf("image %s is not on this host; its containers are left as they are (%s failed, the last with: %v)",
				app.DockerImage, pulls, f.err)
		}
	}
	return p.Blocked
}

func (a *Agent) pullDone(image string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.pullFail[image]; f.count > 0 {
		a.logger.Info("image pulled", "image", image, "after_failed_pulls", f.count)
	}
	delete(a.pullFail, image)
	delete(a.pullWait, image)
	delete(a.state.PullPending, image)
}
