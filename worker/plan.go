package worker

import (
	"sort"
	"time"
)

// Container is a container of the worker's, as the engine reports it.
type Container struct {
	ID       string
	Name     string
	App      string // the app, or for a cron job's run the cron job
	SpecHash string
	ImageID  string
	Running  bool
	// Restarting: the engine restarts it (its process exited); Health:
	// its healthcheck's verdict ("" none, "starting", "healthy",
	// "unhealthy").
	Restarting bool
	Health     string
	Created    time.Time
	Group      string // the device group label ("" on Nebula 2.7's containers)
	Device     string // the device ID label ("" on Nebula 2.7's containers)
}

// Desired is what the device group wants of this host.
type Desired struct {
	Group string
	Apps  []App
	Host  Host
}

// StepKind is what a step does.
type StepKind int

// Steps.
const (
	StepRemove  StepKind = iota + 1 // stop and remove Container
	StepCreate                      // create and start Spec
	StepRestart                     // restart Container
	StepWait                        // pause (between the steps of a rolling restart)
)

func (k StepKind) String() string {
	return [...]string{"?", "remove", "create", "restart", "wait"}[k]
}

// Step is one action on the engine.
type Step struct {
	Kind      StepKind
	Container Container     // StepRemove, StepRestart
	Spec      ContainerSpec // StepCreate
	Wait      time.Duration // StepWait
}

// AppPlan is what to do for one app; the steps run in order, the plans of
// different apps independently.
type AppPlan struct {
	App     string
	Version int64
	// Jitter: wait a random time (max_restart_wait_in_seconds) first,
	// because running containers are replaced or restarted.
	Jitter bool
	Steps  []Step
	// Blocked says why the app cannot be (re)created now, e.g. its image
	// is not on the host (a failed pull): its containers are left as they
	// are.
	Blocked string
}

// RollingPause is the pause between two containers of a rolling restart.
const RollingPause = 5 * time.Second

// Plan decides the steps that bring the containers to the desired state.
// images maps the image references of the apps to the IDs of the images
// on the host (absent: not on the host). applied holds the app versions
// the worker last applied (persisted): a higher version with no change to
// the containers means "restart" (Nebula's restart command); an app with
// no applied version is adopted as it runs.
func Plan(d Desired, actual []Container, images map[string]string, applied map[string]int64) []AppPlan {
	byApp := map[string][]Container{}
	for _, c := range actual {
		byApp[c.App] = append(byApp[c.App], c)
	}
	var plans []AppPlan
	wanted := map[string]bool{}
	for _, app := range d.Apps {
		wanted[app.Name] = true
		if p := planApp(app, d, byApp[app.Name], images, applied); len(p.Steps) > 0 || p.Blocked != "" {
			plans = append(plans, p)
		}
	}
	// Apps removed from the group (or deleted): their containers go.
	var gone []string
	for name := range byApp {
		if !wanted[name] {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		plans = append(plans, AppPlan{App: name, Steps: removeAll(byApp[name])})
	}
	return plans
}

func removeAll(cs []Container) []Step {
	sortByName(cs)
	steps := make([]Step, 0, len(cs))
	for _, c := range cs {
		steps = append(steps, Step{Kind: StepRemove, Container: c})
	}
	return steps
}

// sortByName orders containers by their index (app-2 before app-10).
func sortByName(cs []Container) {
	sort.Slice(cs, func(i, j int) bool {
		if len(cs[i].Name) != len(cs[j].Name) {
			return len(cs[i].Name) < len(cs[j].Name)
		}
		return cs[i].Name < cs[j].Name
	})
}

func planApp(app App, d Desired, have []Container, images map[string]string, applied map[string]int64) AppPlan {
	p := AppPlan{App: app.Name, Version: app.Version}
	if !app.Running {
		p.Steps = removeAll(have)
		return p
	}
	specs := Containers(app, d.Group, d.Host)
	imageID, ok := images[app.DockerImage]
	if !ok {
		p.Blocked = "image " + app.DockerImage + " is not on this host; its containers are left as they are"
		return p
	}
	existing := map[string]Container{}
	for _, c := range have {
		existing[c.Name] = c
	}
	// slot i: the container there now (if any) and the spec wanted there
	// (if any).
	type slot struct {
		old    *Container
		spec   *ContainerSpec
		change bool // replace old by spec
	}
	var slots []slot
	seen := map[string]bool{}
	anyChange := false
	for i := range specs {
		s := slot{spec: &specs[i]}
		if c, ok := existing[specs[i].Name]; ok {
			s.old = &c
			seen[c.Name] = true
			s.change = c.SpecHash != specs[i].Hash() || c.ImageID != imageID
		} else {
			s.change = true
		}
		anyChange = anyChange || s.change
		slots = append(slots, s)
	}
	var extra []Container
	for _, c := range have {
		if !seen[c.Name] {
			extra = append(extra, c)
		}
	}
	sortByName(extra)
	for i := range extra {
		slots = append(slots, slot{old: &extra[i], change: true})
		anyChange = true
	}

	last, wasApplied := applied[app.Name]
	restart := !anyChange && wasApplied && app.Version > last
	running, disrupts := false, restart
	for _, c := range have {
		running = running || c.Running
	}
	for _, s := range slots {
		disrupts = disrupts || s.change && s.old != nil && s.old.Running
	}
	p.Jitter = running && disrupts
	rolling := app.RollingRestart && running && len(have) > 0

	if restart {
		for i, s := range slots {
			if rolling && i > 0 {
				p.Steps = append(p.Steps, Step{Kind: StepWait, Wait: RollingPause})
			}
			p.Steps = append(p.Steps, Step{Kind: StepRestart, Container: *s.old})
		}
		return p
	}
	if rolling {
		first := true
		for _, s := range slots {
			if !s.change {
				continue
			}
			if !first {
				p.Steps = append(p.Steps, Step{Kind: StepWait, Wait: RollingPause})
			}
			first = false
			if s.old != nil {
				p.Steps = append(p.Steps, Step{Kind: StepRemove, Container: *s.old})
			}
			if s.spec != nil {
				p.Steps = append(p.Steps, Step{Kind: StepCreate, Spec: *s.spec})
			}
		}
		return p
	}
	for _, s := range slots {
		if s.change && s.old != nil {
			p.Steps = append(p.Steps, Step{Kind: StepRemove, Container: *s.old})
		}
	}
	for _, s := range slots {
		if s.change && s.spec != nil {
			p.Steps = append(p.Steps, Step{Kind: StepCreate, Spec: *s.spec})
		}
	}
	// A container of ours that is stopped (by hand: the restart policy
	// brings back crashed ones) is started again.
	for _, s := range slots {
		if !s.change && s.old != nil && !s.old.Running {
			p.Steps = append(p.Steps, Step{Kind: StepRestart, Container: *s.old})
		}
	}
	return p
}
