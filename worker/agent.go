package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// The agent, by concern: config.go (what it is told), poll.go (asking the
// manager), reconcile.go (one pass: pull, plan, execute, record), pull.go
// (pulls and their failures), execute.go (running a plan's steps on the
// engine), cron.go, health.go, report.go.

// Agent polls the manager and reconciles the engine.
type Agent struct {
	cfg    Config
	engine Engine
	http   *http.Client
	logger *slog.Logger

	cron *cronRunner

	netMu sync.Mutex
	netOK bool // the nebula network was there at this reconcile

	mu           sync.Mutex
	state        State
	problems     map[string]appProblem // of the last reconcile
	changed      bool                  // since the last report
	appliedGroup int64                 // device_group_id fully applied
	lastReport   time.Time
	// The last full report sent: its state's digest, when; and whether
	// the manager refused a heartbeat (then: full reports only).
	lastDigest        [32]byte
	lastFull          time.Time
	heartbeatsRefused bool
	cpu               cpuMeter
	pullWait          map[string]time.Time // image -> no pull retry before
	pullFail          map[string]pullFailure
	// unhealthy holds the containers (by ID: a new version's are new
	// ones) that turned unhealthy, for the reports: the worker restarts
	// them, so a report rarely sees one unhealthy.
	unhealthy map[string]time.Time // when it last did
}

// pullFailure is what the pulls of an image met since the last that worked.
type pullFailure struct {
	count int   // consecutive failures
	err   error // the last one
}

// NewAgent returns an agent; Run starts it.
func NewAgent(cfg Config, engine Engine) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.RequestTimeout + cfg.CheckIn}
	}
	a := &Agent{cfg: cfg, engine: engine, logger: cfg.Logger,
		http:     hc,
		pullWait: map[string]time.Time{}, pullFail: map[string]pullFailure{}}
	a.cron = newCronRunner(a)
	a.appliedGroup = -1 // versions start at 0: nothing applied yet is -1
	return a
}

// AppliedVersion is the device group version the agent has fully
// applied (-1: none yet).
func (a *Agent) AppliedVersion() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.appliedGroup
}

// Run polls and reconciles until ctx ends. It never stops containers
// because the manager is unreachable, and leaves them running when it
// stops.
func (a *Agent) Run(ctx context.Context) error {
	st, err := LoadState(a.cfg.StateDir)
	if errors.Is(err, ErrStateCorrupt) {
		// An unattended device must not stay down for want of someone
		// to delete a file.
		aside, rerr := SetStateAside(a.cfg.StateDir)
		if rerr != nil {
			return fmt.Errorf("%w (and moving it aside failed: %v)", err, rerr)
		}
		a.logger.Error("the worker state cannot be read; moved it aside and starting afresh (containers that match the config are adopted)",
			"err", err, "moved_to", aside)
		st, err = State{Applied: map[string]int64{}}, nil
	}
	if err != nil {
		return err
	}
	if st.Group != a.cfg.Group {
		st = State{Group: a.cfg.Group, Applied: map[string]int64{}}
	}
	a.state = st
	if err := a.engine.EnsureNetwork(ctx, DefaultNetwork); err != nil {
		return err
	}
	var bg sync.WaitGroup
	bg.Go(func() { a.watchHealth(ctx) })
	bg.Go(func() { a.cron.run(ctx) })
	defer bg.Wait()
	if st.Info != nil {
		a.logger.Info("bringing back the last config while the manager is asked", "device_group_id", st.Info.DeviceGroupID)
		a.Reconcile(ctx, *st.Info)
	}
	backoff := time.Duration(0)
	status := pollStatus{logger: a.logger, group: a.cfg.Group, manager: a.cfg.Manager}
	for ctx.Err() == nil {
		info, etag, held, err := a.poll(ctx, a.state.ETag)
		if ctx.Err() != nil {
			return nil
		}
		status.observe(err)
		var ns *notServingError
		switch {
		case errors.Is(err, errGroupMissing):
		case errors.As(err, &ns):
			backoff = min(max(2*backoff, ns.retryAfter, time.Second), max(a.cfg.CheckIn, time.Second))
			a.maybeReport(ctx)
			sleep(ctx, jitter(backoff))
			continue
		case err != nil:
			backoff = min(max(2*backoff, time.Second), 5*time.Minute)
			a.maybeReport(ctx) // queued on disk until the manager is back
			sleep(ctx, jitter(backoff))
			continue
		}
		backoff = 0
		if info != nil {
			a.mu.Lock()
			a.state.Info, a.state.ETag = info, etag
			a.mu.Unlock()
		}
		if a.state.Info != nil {
			a.Reconcile(ctx, *a.state.Info) // also repairs what was changed by hand
			a.maybeReport(ctx)
		}
		if !held {
			sleep(ctx, jitter(a.cfg.CheckIn))
		}
	}
	return nil
}

// jitter spreads d by +-10%, so devices do not poll in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + rand.N(d/5+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
