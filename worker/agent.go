package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Config is the worker's configuration (Nebula 2.7's worker settings).
type Config struct {
	Group string
	// Manager is the manager's base URI (NEBULA_MANAGER_URI, or built from
	// NEBULA_MANAGER_PROTOCOL/HOST/PORT); /api/v2/... is appended.
	Manager string
	// Credentials: Token (Bearer) wins over User/Password (Basic).
	User, Password, Token string
	// CheckIn is the time between polls of a manager without long-poll,
	// and the longest wait of one long-poll.
	CheckIn time.Duration
	// NoLongPoll polls every CheckIn as Nebula 2.7 did, instead of
	// holding a request open until the config changes (for proxies
	// that cut long requests, and to measure plain polling).
	NoLongPoll bool
	// RequestTimeout bounds one request (plus CheckIn for a long-poll).
	RequestTimeout time.Duration
	// Registry, when set, are the credentials of pulls.
	Registry *RegistryAuth
	// Pull says when images are pulled: PullAlways ("" too), PullMissing
	// or PullNever.
	Pull PullPolicy
	// MaxRestartWait: each app waits a random time up to this before its
	// running containers are replaced or restarted, so that the devices
	// of a group do not all restart at once.
	MaxRestartWait time.Duration
	// StateDir keeps the device ID, the last config and unsent reports
	// ("" keeps nothing: simulated devices).
	StateDir string
	// HTTPClient, when set, is used for the manager (simulations share
	// one); RequestTimeout+CheckIn bounds a request otherwise.
	HTTPClient *http.Client
	// DeviceID identifies the device in its reports.
	DeviceID string
	// ReportInterval: a report after each change and at least this often
	// (0: no reports). ReportOnUpdateOnly: only after changes.
	ReportInterval     time.Duration
	ReportOnUpdateOnly bool
	// ReportSink, when set, takes the reports instead of the manager's
	// HTTP endpoint (straight to Kafka, as Nebula 2.7's workers did).
	ReportSink interface {
		Publish(ctx context.Context, deviceID string, report []byte) error
	}
	Host   Host
	Logger *slog.Logger
}

// PullPolicy says when the worker pulls an app's image.
type PullPolicy string

// Pull policies.
const (
	// PullAlways pulls at every new version of an app (a tag pushed
	// again is picked up), and retries a failed pull until it works, as
	// Nebula 2.7 pulled at every change.
	PullAlways PullPolicy = "always"
	// PullMissing pulls only images the host does not have: for images
	// loaded by hand (docker load) on sites with no registry, and links
	// that should not carry pulls of what is there.
	PullMissing PullPolicy = "missing"
	// PullNever never pulls: every image is loaded by hand.
	PullNever PullPolicy = "never"
)

// ParsePullPolicy reads a pull policy ("" is PullAlways).
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case "", PullAlways:
		return PullAlways, nil
	case PullMissing, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("pull policy %q: must be always, missing or never", s)
}

// wantsPull says whether policy p pulls an image the host has (found)
// or not, at a new version of its app (changed), or when a pull of it
// failed before (pending).
func (p PullPolicy) wantsPull(found, changed, pending bool) bool {
	switch p {
	case PullNever:
		return false
	case PullMissing:
		return !found
	}
	return !found || changed || pending
}

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
	cpu          cpuMeter
	pullWait     map[string]time.Time // image -> no pull retry before
	pullFail     map[string]pullFailure
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

// MaxLongPoll is the longest wait a manager holds a long-poll for (it
// refuses a longer ?wait with 400): with a longer check-in time, the
// worker long-polls for this long, and asks again at once.
const MaxLongPoll = 60 * time.Second

// errGroupMissing: the manager says the device group does not exist.
var errGroupMissing = errors.New("device group does not exist")

// notServingError: the manager answered 503, the way a manager catching up
// with its event log does (after a restart, or a rebuild). It will answer
// soon: the worker retries within its check-in time, not after the
// growing backoff of a manager that cannot be reached.
type notServingError struct {
	retryAfter time.Duration
	msg        string
}

func (e *notServingError) Error() string { return "manager not serving yet: " + e.msg }

// poll asks for the group's config. It returns the new config, or nil
// when it did not change (304); held says whether the manager held the
// request (a long-poll) or answered a new config: either way, poll again
// at once.
func (a *Agent) poll(ctx context.Context, etag string) (info *Info, newETag string, held bool, err error) {
	// ?wait asks a manager that long-polls to hold the request until the
	// config changes (or the group appears); Nebula 2.7 ignores it.
	u := strings.TrimRight(a.cfg.Manager, "/") + "/api/v2/device_groups/" + url.PathEscape(a.cfg.Group) + "/info"
	if !a.cfg.NoLongPoll {
		u += "?wait=" + min(a.cfg.CheckIn, MaxLongPoll).String()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", false, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	a.authorize(req)
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, "", false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, "", false, err
	}
	newETag = resp.Header.Get("ETag")
	// A manager that long-polls says so (Nebula-Long-Poll): its 304 came
	// at the end of the wait, so ask again at once. Any other answer (a
	// 2.7 manager, or one that is merely slow) waits for the check-in.
	held = !a.cfg.NoLongPoll && resp.Header.Get("Nebula-Long-Poll") != ""
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, etag, held, nil
	case http.StatusOK:
		var in Info
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, "", false, fmt.Errorf("manager sent a config that is not JSON: %w", err)
		}
		// A new config: poll again at once (a 2.7 manager sends no ETag
		// and the same config every time: wait for it).
		return &in, newETag, newETag != "" && newETag != etag, nil
	case http.StatusForbidden:
		if strings.Contains(string(body), `"device_group_exists":false`) {
			return nil, "", false, errGroupMissing
		}
	case http.StatusServiceUnavailable:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, "", false, &notServingError{retryAfter: time.Duration(max(secs, 0)) * time.Second, msg: fmt.Sprintf("%.200s", body)}
	}
	return nil, "", false, fmt.Errorf("manager answered %s: %.200s", resp.Status, body)
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

// AppliedVersion is the device group version the agent has fully
// applied (-1: none yet).
func (a *Agent) AppliedVersion() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.appliedGroup
}

// authorize adds the worker's credentials: Bearer wins over Basic.
func (a *Agent) authorize(req *http.Request) {
	switch {
	case a.cfg.Token != "":
		req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	case a.cfg.User != "":
		req.SetBasicAuth(a.cfg.User, a.cfg.Password)
	}
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

// Reconcile brings the engine to the config: pull what changed, plan,
// execute the plans of the apps in parallel, prune, save the state.
func (a *Agent) Reconcile(ctx context.Context, info Info) {
	a.mu.Lock()
	applied := make(map[string]int64, len(a.state.Applied))
	for k, v := range a.state.Applied {
		applied[k] = v
	}
	a.mu.Unlock()

	images := map[string]string{}
	for _, app := range info.Apps {
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
	actual, err := a.containers(ctx)
	if err != nil {
		a.logger.Warn("cannot list containers; will retry", "err", err)
		return
	}
	a.netMu.Lock()
	a.netOK = false // someone may have removed it: check again when needed
	a.netMu.Unlock()
	plans := Plan(Desired{Group: a.cfg.Group, Apps: info.Apps, Host: a.cfg.Host}, actual, images, applied)
	planned := map[string]bool{}
	problems := map[string]appProblem{}
	a.mu.Lock()
	before := a.problems // logged when an app's problem is new, not at every reconcile
	a.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range plans {
		planned[p.App] = true
		if p.Blocked != "" {
			why := a.blocked(p, info.Apps)
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
			applied[p.App] = p.Version
		})
	}
	wg.Wait()
	a.mu.Lock()
	a.changed = a.changed || len(plans) > 0
	if len(problems) == 0 {
		a.appliedGroup = info.DeviceGroupID
	}
	a.problems = problems
	a.mu.Unlock()
	for _, app := range info.Apps {
		if !planned[app.Name] {
			applied[app.Name] = app.Version // already as wanted
		}
	}
	for name := range applied {
		if !contains(info.Apps, name) {
			delete(applied, name)
		}
	}

	a.cron.removeRuns(ctx, a.cron.update(info.CronJobs))

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
