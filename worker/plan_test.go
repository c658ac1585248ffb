package worker

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

var host = Host{CPUs: 4, MemoryMB: 2048}

func app(name string, version int64, mod ...func(*App)) App {
	a := App{Name: name, Version: version, AppSpec: events.NewAppSpec("registry.local/" + name + ":1")}
	for _, m := range mod {
		m(&a)
	}
	return a
}

func replicas(n float64) func(*App) {
	return func(a *App) { a.ContainersPer = events.ContainersPer{Kind: events.PerServer, Value: n} }
}

// running returns the containers the worker would have created for apps,
// all with image ID img.
func running(img string, apps ...App) []Container {
	var out []Container
	for _, a := range apps {
		for _, s := range Containers(a, "g", host) {
			out = append(out, Container{ID: "id-" + s.Name, Name: s.Name, App: a.Name, SpecHash: s.Hash(), ImageID: img, Running: true})
		}
	}
	return out
}

// summary renders plans as "app: step step ..." lines.
func summary(plans []AppPlan) string {
	var lines []string
	for _, p := range plans {
		var steps []string
		for _, s := range p.Steps {
			switch s.Kind {
			case StepCreate:
				steps = append(steps, "+"+s.Spec.Name)
			case StepRemove:
				steps = append(steps, "-"+s.Container.Name)
			case StepRestart:
				steps = append(steps, "~"+s.Container.Name)
			case StepWait:
				steps = append(steps, "wait")
			}
		}
		line := p.App + ":"
		if p.Jitter {
			line += " (jitter)"
		}
		if p.Blocked != "" {
			line += " blocked"
		}
		lines = append(lines, strings.TrimSpace(line+" "+strings.Join(steps, " ")))
	}
	return strings.Join(lines, "\n")
}

func images(apps ...App) map[string]string {
	m := map[string]string{}
	for _, a := range apps {
		m[a.DockerImage] = "img1"
	}
	return m
}

func TestPlan(t *testing.T) {
	web := app("web", 10, replicas(2))
	db := app("db", 11)
	cases := []struct {
		name    string
		apps    []App
		actual  []Container
		images  map[string]string
		applied map[string]int64
		want    string
	}{
		{name: "new apps", apps: []App{web, db}, images: images(web, db),
			want: "web: +web-1 +web-2\ndb: +db-1"},
		{name: "nothing changed", apps: []App{web, db}, actual: running("img1", web, db), images: images(web, db),
			applied: map[string]int64{"web": 10, "db": 11}, want: ""},
		{name: "worker restart adopts (no applied versions)", apps: []App{web}, actual: running("img1", web), images: images(web),
			want: ""},
		{name: "env changed", apps: []App{app("web", 12, replicas(2), func(a *App) { a.EnvVars = map[string]string{"A": "1"} })},
			actual: running("img1", web), images: images(web), applied: map[string]int64{"web": 10},
			want: "web: (jitter) -web-1 -web-2 +web-1 +web-2"},
		{name: "image ID changed (same tag re-pushed)", apps: []App{app("web", 12, replicas(2))},
			actual: running("img0", web), images: images(web), applied: map[string]int64{"web": 10},
			want: "web: (jitter) -web-1 -web-2 +web-1 +web-2"},
		{name: "restart: new version, nothing else", apps: []App{app("web", 12, replicas(2))},
			actual: running("img1", web), images: images(web), applied: map[string]int64{"web": 10},
			want: "web: (jitter) ~web-1 ~web-2"},
		{name: "scale up keeps the existing", apps: []App{app("web", 12, replicas(3))},
			actual: running("img1", web), images: images(web), applied: map[string]int64{"web": 10},
			want: "web: +web-3"},
		{name: "scale down", apps: []App{app("web", 12, replicas(1))},
			actual: running("img1", web), images: images(web), applied: map[string]int64{"web": 10},
			want: "web: (jitter) -web-2"},
		{name: "stop", apps: []App{app("web", 12, replicas(2), func(a *App) { a.Running = false })},
			actual: running("img1", web), images: images(web), want: "web: -web-1 -web-2"},
		{name: "start", apps: []App{app("web", 13, replicas(2))}, images: images(web), applied: map[string]int64{"web": 12},
			want: "web: +web-1 +web-2"},
		{name: "app removed from the group", apps: []App{db}, actual: running("img1", web, db), images: images(db),
			applied: map[string]int64{"db": 11}, want: "web: -web-1 -web-2"},
		{name: "network change", apps: []App{app("web", 12, replicas(2), func(a *App) { a.Networks = []string{"host"} })},
			actual: running("img1", web), images: images(web), applied: map[string]int64{"web": 10},
			want: "web: (jitter) -web-1 -web-2 +web-1 +web-2"},
		{name: "failed pull leaves the containers", apps: []App{app("web", 12, replicas(2), func(a *App) { a.DockerImage = "registry.local/web:2" })},
			actual: running("img1", web), images: images(web), applied: map[string]int64{"web": 10}, want: "web: blocked"},
		{name: "a stopped container is started", apps: []App{web}, images: images(web), applied: map[string]int64{"web": 10},
			actual: func() []Container { c := running("img1", web); c[1].Running = false; return c }(), want: "web: ~web-2"},
		{name: "rolling restart with a scale down", apps: []App{app("web", 12, replicas(1), func(a *App) { a.RollingRestart = true; a.EnvVars = map[string]string{"A": "2"} })},
			actual: running("img1", web), images: images(web), applied: map[string]int64{"web": 10},
			want: "web: (jitter) -web-1 +web-1 wait -web-2"},
		{name: "rolling restart with a scale up", apps: []App{app("web", 12, replicas(3), func(a *App) { a.RollingRestart = true; a.EnvVars = map[string]string{"A": "2"} })},
			actual: running("img1", web), images: images(web), applied: map[string]int64{"web": 10},
			want: "web: (jitter) -web-1 +web-1 wait -web-2 +web-2 wait +web-3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := summary(Plan(Desired{Group: "g", Apps: c.apps, Host: host}, c.actual, c.images, c.applied))
			if got != c.want {
				t.Fatalf("plan:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestRollingRestartOfTwelve: one container at a time, in index order
// (2.7 sorted app-1, app-10, app-11, app-2 and re-created a name still in
// use), with a pause between.
func TestRollingRestartOfTwelve(t *testing.T) {
	old := app("web", 10, replicas(12), func(a *App) { a.RollingRestart = true })
	cur := app("web", 11, replicas(12), func(a *App) { a.RollingRestart = true; a.DockerImage = "registry.local/web:2" })
	plans := Plan(Desired{Group: "g", Apps: []App{cur}, Host: host}, running("img1", old), map[string]string{cur.DockerImage: "img2"}, map[string]int64{"web": 10})
	var want []string
	for i := 1; i <= 12; i++ {
		if i > 1 {
			want = append(want, "wait")
		}
		want = append(want, fmt.Sprintf("-web-%d", i), fmt.Sprintf("+web-%d", i))
	}
	if got := summary(plans); got != "web: (jitter) "+strings.Join(want, " ") {
		t.Fatalf("got %s", got)
	}
}

func TestContainers(t *testing.T) {
	a := app("web", 1, func(a *App) {
		a.ContainersPer = events.ContainersPer{Kind: events.PerCPU, Value: 0.5}
		a.StartingPorts = []events.PortSpec{{Port: 80}, {Map: []events.PortPair{{Host: 8443, Container: 443}}}}
		a.EnvVars = map[string]string{"B": "2", "A": "1"}
		a.Networks = []string{"bridge", "nebula", "backend"}
		a.Volumes = []string{"/data:/data:ro"}
		a.Devices = []string{"/dev/ttyUSB0"}
		a.Privileged = true
	})
	specs := Containers(a, "g", host) // 4 CPUs x 0.5 = 2 containers
	if len(specs) != 2 {
		t.Fatalf("%d containers, want 2", len(specs))
	}
	want := ContainerSpec{Name: "web-2", App: "web", Index: 2, Image: "registry.local/web:1", Env: []string{"A=1", "B=2"},
		Ports: []PortBinding{{81, 80}, {8444, 443}}, Binds: []string{"/data:/data:ro"}, Devices: []string{"/dev/ttyUSB0"},
		Privileged: true, Network: "nebula", Extra: []string{"bridge", "backend"}, RestartPolicy: "unless-stopped"}
	if !reflect.DeepEqual(specs[1], want) {
		t.Fatalf("spec\n%+v\nwant\n%+v", specs[1], want)
	}
	if specs[0].Hash() == specs[1].Hash() {
		t.Fatal("two containers share a hash")
	}

	hostNet := app("h", 1, func(a *App) { a.Networks = []string{"host"}; a.StartingPorts = []events.PortSpec{{Port: 80}} })
	if s := Containers(hostNet, "g", host)[0]; s.Network != "host" || len(s.Ports) != 0 || len(s.Extra) != 0 {
		t.Fatalf("host network spec %+v", s)
	}
	for _, c := range []struct {
		cp   events.ContainersPer
		want int
	}{
		{events.ContainersPer{Kind: events.PerServer, Value: 3}, 3},
		{events.ContainersPer{Kind: events.PerInstance, Value: 1}, 1},
		{events.ContainersPer{Kind: events.PerCPU, Value: 1.5}, 6},
		{events.ContainersPer{Kind: events.PerCPU, Value: 0.1}, 0},
		{events.ContainersPer{Kind: events.PerMemory, Value: 512}, 4},
		{events.ContainersPer{Kind: events.PerMemory, Value: 4096}, 0},
	} {
		if got := Replicas(c.cp, host); got != c.want {
			t.Errorf("%+v: %d, want %d", c.cp, got, c.want)
		}
	}
}

func TestHealthBackoff(t *testing.T) {
	h := newHealthRestarter()
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }
	steps := []struct {
		after time.Duration
		want  bool
	}{{0, true}, {time.Second, false}, {10 * time.Second, true}, {10 * time.Second, false}, {10 * time.Second, true},
		{39 * time.Second, false}, {time.Second, true}, {11 * time.Minute, true}, {time.Second, false}}
	for i, s := range steps {
		now = now.Add(s.after)
		if got, n := h.allow("web-1"); got != s.want {
			t.Fatalf("step %d (+%v): allow=%v (restarts %d), want %v", i, s.after, got, n, s.want)
		}
	}
}
