// Package simengine is an in-memory container engine for simulated
// devices (nebula sim): the worker's Engine with no Docker, every call
// instant. It behaves as the Docker adapter does where the worker can
// tell (worker/enginetest holds both to the same suite): containers are
// read back from their labels, an image must have been pulled before a
// container uses it, a name is taken until its container is removed.
// Every pull succeeds and containers stay running and healthy, but for
// those of an image whose reference holds CrashImage: their process exits
// at once (they are listed stopped), for rollouts' failures. Not for
// tests of the worker's Docker behaviour.
package simengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/nebula-orchestrator/nebula-go/worker"
)

// Engine holds one simulated device's images and containers.
type Engine struct {
	mu         sync.Mutex
	images     map[string]string // ref -> image ID
	containers map[string]container
	next       int
}

type container struct {
	id, name, imageID string
	labels            map[string]string
	created           time.Time
	crashes           bool
}

// CrashImage in an image reference makes its containers exit at once.
const CrashImage = "crash"

// New returns an engine with no images and no containers.
func New() *Engine {
	return &Engine{images: map[string]string{}, containers: map[string]container{}}
}

var _ worker.Engine = (*Engine)(nil)

// list reads the containers of a type back from their labels, as the
// Docker adapter does.
func (e *Engine) list(kind, nameLabel string) []worker.Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]worker.Container, 0, len(e.containers))
	for _, c := range e.containers {
		if c.labels[worker.LabelOrchestrator] != "nebula" || c.labels[worker.LabelContainerType] != kind {
			continue
		}
		out = append(out, worker.Container{ID: c.id, Name: c.name, App: c.labels[nameLabel], SpecHash: c.labels[worker.LabelSpecHash],
			ImageID: c.imageID, Running: !c.crashes, Created: c.created, Group: c.labels[worker.LabelDeviceGroup], Device: c.labels[worker.LabelDevice]})
	}
	return out
}

// Containers lists the app containers.
func (e *Engine) Containers(context.Context) ([]worker.Container, error) {
	return e.list("app", worker.LabelAppName), nil
}

// CronContainers lists the cron job runs.
func (e *Engine) CronContainers(context.Context) ([]worker.Container, error) {
	return e.list("cron_job", worker.LabelCronJobName), nil
}

// Pull succeeds at once: the image's ID is derived from the reference.
func (e *Engine) Pull(_ context.Context, ref string, _ *worker.RegistryAuth) error {
	sum := sha256.Sum256([]byte(ref))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.images[ref] = "sha256:" + hex.EncodeToString(sum[:])
	return nil
}

// ImageID is the ID of a pulled image.
func (e *Engine) ImageID(_ context.Context, ref string) (string, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.images[ref]
	return id, ok, nil
}

// EnsureNetwork does nothing.
func (e *Engine) EnsureNetwork(context.Context, string) error { return nil }

// Create records a running container.
func (e *Engine) Create(_ context.Context, s worker.ContainerSpec, labels map[string]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.images[s.Image]
	if !ok {
		return fmt.Errorf("create container %s: no such image: %s", s.Name, s.Image)
	}
	if _, taken := e.containers[s.Name]; taken {
		return fmt.Errorf("create container %s: the name is in use", s.Name)
	}
	e.next++
	e.containers[s.Name] = container{id: fmt.Sprint(e.next), name: s.Name, imageID: id, labels: maps.Clone(labels), created: time.Now(),
		crashes: strings.Contains(s.Image, CrashImage)}
	return nil
}

// Remove deletes a container; one already gone is not an error.
func (e *Engine) Remove(_ context.Context, c worker.Container) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.containers, c.Name)
	return nil
}

// Restart keeps the container running; one that does not exist is an
// error, as in Docker.
func (e *Engine) Restart(_ context.Context, c worker.Container) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, ok := e.containers[c.Name]; !ok || cur.id != c.ID {
		return fmt.Errorf("restart container %s: no such container", c.Name)
	}
	return nil
}

// PruneImages forgets the images no container uses.
func (e *Engine) PruneImages(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	used := map[string]bool{}
	for _, c := range e.containers {
		used[c.imageID] = true
	}
	maps.DeleteFunc(e.images, func(_, id string) bool { return !used[id] })
	return nil
}

// Unhealthy never reports: simulated containers stay healthy.
func (e *Engine) Unhealthy(ctx context.Context) (<-chan worker.Container, <-chan error) {
	out := make(chan worker.Container)
	go func() { <-ctx.Done(); close(out) }()
	return out, make(chan error)
}
