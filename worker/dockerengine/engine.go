// Package dockerengine is the worker's adapter to the Docker Engine API
// (github.com/moby/moby/client). It is the only package that imports the
// Docker SDK: its types stop here.
package dockerengine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/nebula-orchestrator/nebula-go/worker"
)

// Engine talks to one Docker daemon.
type Engine struct {
	cli *client.Client
	// StopTimeout is the grace period of a stop, in seconds.
	StopTimeout int
	// PruneLabel, when set ("key=value"), limits image prunes to images
	// with that label (tests share the engine with other tests).
	PruneLabel string
}

// New connects to the daemon DOCKER_HOST names (the local socket by
// default), negotiating the API version.
func New(opts ...client.Opt) (*Engine, error) {
	cli, err := client.New(append([]client.Opt{client.FromEnv}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Engine{cli: cli, StopTimeout: 5}, nil
}

// Close releases the client.
func (e *Engine) Close() error { return e.cli.Close() }

// Ping checks that the daemon answers.
func (e *Engine) Ping(ctx context.Context) error {
	if _, err := e.cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker daemon at %s: %w", e.cli.DaemonHost(), err)
	}
	return nil
}

var _ worker.Engine = (*Engine)(nil)

// Containers lists the containers labelled as the worker's apps.
func (e *Engine) Containers(ctx context.Context) ([]worker.Container, error) {
	return e.list(ctx, "app", worker.LabelAppName)
}

// CronContainers lists the containers of cron job runs.
func (e *Engine) CronContainers(ctx context.Context) ([]worker.Container, error) {
	return e.list(ctx, "cron_job", worker.LabelCronJobName)
}

func (e *Engine) list(ctx context.Context, kind, nameLabel string) ([]worker.Container, error) {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
		Add("label", worker.LabelOrchestrator+"=nebula", worker.LabelContainerType+"="+kind)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]worker.Container, 0, len(res.Items))
	for _, c := range res.Items {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, worker.Container{
			ID: c.ID, Name: name, App: c.Labels[nameLabel], SpecHash: c.Labels[worker.LabelSpecHash],
			ImageID: c.ImageID, Running: c.State == container.StateRunning || c.State == container.StateRestarting,
			Restarting: c.State == container.StateRestarting, Health: health(c),
			Created: time.Unix(c.Created, 0), Group: c.Labels[worker.LabelDeviceGroup], Device: c.Labels[worker.LabelDevice],
		})
	}
	return out, nil
}

// Restarts is how many times the engine restarted a container since it
// was created (its restart policy at work: its process exited), and when
// it last started.
func (e *Engine) Restarts(ctx context.Context, id string) (int, time.Time, error) {
	res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	var started time.Time
	if st := res.Container.State; st != nil {
		started, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
	}
	return res.Container.RestartCount, started, nil
}

// health is a container's healthcheck verdict: from the summary's Health
// (API 1.52 and later) or, from older engines, its Status ("Up 5 seconds
// (unhealthy)").
func health(c container.Summary) string {
	if c.Health != nil && c.Health.Status != container.NoHealthcheck {
		return string(c.Health.Status)
	}
	switch {
	case strings.Contains(c.Status, "(unhealthy)"):
		return "unhealthy"
	case strings.Contains(c.Status, "(healthy)"):
		return "healthy"
	case strings.Contains(c.Status, "(health: starting)"):
		return "starting"
	}
	return ""
}

// Pull pulls ref and reads the progress stream to its end: errors (a
// missing tag, a refused login) arrive inside it.
func (e *Engine) Pull(ctx context.Context, ref string, auth *worker.RegistryAuth) error {
	opts := client.ImagePullOptions{}
	if auth != nil && auth.User != "" {
		b, err := json.Marshal(registry.AuthConfig{Username: auth.User, Password: auth.Password, ServerAddress: auth.Host})
		if err != nil {
			return err
		}
		opts.RegistryAuth = base64.URLEncoding.EncodeToString(b)
	}
	resp, err := e.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("pull %s: %s", ref, msg.Error.Message)
		}
	}
	return nil
}

// ImageID returns the local image's ID.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, bool, error) {
	res, err := e.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return res.ID, true, nil
}

// EnsureNetwork creates a bridge network (with name resolution between
// its containers) unless one of that exact name exists.
func (e *Engine) EnsureNetwork(ctx context.Context, name string) error {
	if name == "host" || name == "none" || name == "bridge" {
		return nil
	}
	res, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", name)})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	for _, n := range res.Items {
		if n.Name == name { // the name filter matches substrings
			return nil
		}
	}
	created, err := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{worker.LabelOrchestrator: "nebula"}})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	// Engines before API 1.44 accept two networks of one name (two
	// workers starting at once): keep the oldest, remove ours if newer.
	if err == nil {
		res, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", name)})
		if err != nil {
			return fmt.Errorf("list networks: %w", err)
		}
		oldest := created.ID
		var oldestAt time.Time
		for _, n := range res.Items {
			if n.Name == name && (oldestAt.IsZero() || n.Created.Before(oldestAt)) {
				oldest, oldestAt = n.ID, n.Created
			}
		}
		if oldest != created.ID {
			_, _ = e.cli.NetworkRemove(ctx, created.ID, client.NetworkRemoveOptions{})
		}
	}
	return nil
}

// Create creates, connects and starts a container. A container left
// behind by a failed step is removed.
func (e *Engine) Create(ctx context.Context, s worker.ContainerSpec, labels map[string]string) (err error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, p := range s.Ports {
		port, ok := network.PortFrom(uint16(p.Container), network.TCP)
		if !ok {
			return fmt.Errorf("container %s: bad port %d", s.Name, p.Container)
		}
		exposed[port] = struct{}{}
		bindings[port] = append(bindings[port], network.PortBinding{HostPort: strconv.Itoa(p.Host)})
	}
	var devices []container.DeviceMapping
	for _, d := range s.Devices {
		parts := strings.Split(d, ":")
		m := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
		if len(parts) > 1 {
			m.PathInContainer = parts[1]
		}
		if len(parts) > 2 {
			m.CgroupPermissions = parts[2]
		}
		devices = append(devices, m)
	}
	hc := &container.HostConfig{
		Binds:         s.Binds,
		NetworkMode:   container.NetworkMode(s.Network),
		PortBindings:  bindings,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(s.RestartPolicy)},
		Privileged:    s.Privileged,
		Resources:     container.Resources{Devices: devices},
	}
	var netCfg *network.NetworkingConfig
	if s.Network != "host" && s.Network != "none" {
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: {}}}
	}
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:             s.Name,
		Config:           &container.Config{Image: s.Image, Env: s.Env, Labels: labels, ExposedPorts: exposed},
		HostConfig:       hc,
		NetworkingConfig: netCfg,
	})
	if err != nil {
		return fmt.Errorf("create container %s: %w", s.Name, err)
	}
	defer func() {
		if err != nil {
			_, _ = e.cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true})
		}
	}()
	// One network at create works on every API version; the others are
	// connected one by one.
	for _, n := range s.Extra {
		if _, err := e.cli.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: created.ID}); err != nil {
			return fmt.Errorf("connect %s to network %s: %w", s.Name, n, err)
		}
	}
	if _, err := e.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", s.Name, err)
	}
	return nil
}

// Remove stops and removes a container; one already gone is not an error.
func (e *Engine) Remove(ctx context.Context, c worker.Container) error {
	timeout := e.StopTimeout
	// A failed stop is followed by a forced removal, which kills.
	_, _ = e.cli.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &timeout})
	_, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", c.Name, err)
	}
	return nil
}

// Restart restarts a container.
func (e *Engine) Restart(ctx context.Context, c worker.Container) error {
	timeout := e.StopTimeout
	// A restart is a stop then a start in the engine: cancelled between
	// the two (the worker stopping), it would leave the app stopped. It
	// runs to its end whatever ctx does, bounded by the stop timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(max(timeout, 0))*time.Second+time.Minute)
	defer cancel()
	if _, err := e.cli.ContainerRestart(ctx, c.ID, client.ContainerRestartOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("restart container %s: %w", c.Name, err)
	}
	return nil
}

// PruneImages removes all images no container uses (docker image prune -a).
func (e *Engine) PruneImages(ctx context.Context) error {
	f := client.Filters{}.Add("dangling", "false")
	if e.PruneLabel != "" {
		f = f.Add("label", e.PruneLabel)
	}
	if _, err := e.cli.ImagePrune(ctx, client.ImagePruneOptions{Filters: f}); err != nil {
		return fmt.Errorf("prune images: %w", err)
	}
	return nil
}

// Unhealthy streams the health_status events of the worker's app
// containers that say unhealthy (healthcheck exec events are filtered
// out by the event filter).
func (e *Engine) Unhealthy(ctx context.Context) (<-chan worker.Container, <-chan error) {
	out := make(chan worker.Container)
	errs := make(chan error, 1)
	res := e.cli.Events(ctx, client.EventsListOptions{Filters: client.Filters{}.
		Add("type", "container").
		Add("event", "health_status").
		Add("label", worker.LabelOrchestrator+"=nebula", worker.LabelContainerType+"=app")})
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-res.Err:
				if err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("docker events: %w", err)
				}
				return
			case m := <-res.Messages:
				if !strings.HasSuffix(string(m.Action), "unhealthy") {
					continue
				}
				c := worker.Container{ID: m.Actor.ID, Name: m.Actor.Attributes["name"], App: m.Actor.Attributes[worker.LabelAppName],
					SpecHash: m.Actor.Attributes[worker.LabelSpecHash], Running: true,
					Group: m.Actor.Attributes[worker.LabelDeviceGroup], Device: m.Actor.Attributes[worker.LabelDevice]}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, errs
}
