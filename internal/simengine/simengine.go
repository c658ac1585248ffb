// Package simengine is an in-memory container engine for simulated
// devices (nebula sim): the worker's Engine with no Docker, every call
// instant. Not for tests of the worker's Docker behaviour.
package simengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/nebula-orchestrator/nebula-go/worker"
)

// Engine holds one simulated device's containers.
type Engine struct {
	mu         sync.Mutex
	containers map[string]worker.Container
	next       int
}

// New returns an empty engine.
func New() *Engine { return &Engine{containers: map[string]worker.Container{}} }

var _ worker.Engine = (*Engine)(nil)

func (e *Engine) list(kind string) []worker.Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]worker.Container, 0, len(e.containers))
	for _, c := range e.containers {
		if (kind == "cron") == (c.SpecHash == "cron") {
			out = append(out, c)
		}
	}
	return out
}

// Containers lists the app containers.
func (e *Engine) Containers(context.Context) ([]worker.Container, error) { return e.list("app"), nil }

// CronContainers lists the cron job runs.
func (e *Engine) CronContainers(context.Context) ([]worker.Container, error) {
	return e.list("cron"), nil
}

// Pull succeeds at once.
func (e *Engine) Pull(context.Context, string, *worker.RegistryAuth) error { return nil }

// ImageID derives an ID from the reference.
func (e *Engine) ImageID(_ context.Context, ref string) (string, bool, error) {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:]), true, nil
}

// EnsureNetwork does nothing.
func (e *Engine) EnsureNetwork(context.Context, string) error { return nil }

// Create records a running container.
func (e *Engine) Create(ctx context.Context, s worker.ContainerSpec, labels map[string]string) error {
	id, _, _ := e.ImageID(ctx, s.Image)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, taken := e.containers[s.Name]; taken {
		return fmt.Errorf("container name %s in use", s.Name)
	}
	e.next++
	hash := labels[worker.LabelSpecHash]
	if labels[worker.LabelContainerType] == "cron_job" {
		hash = "cron"
	}
	e.containers[s.Name] = worker.Container{ID: fmt.Sprint(e.next), Name: s.Name, App: s.App, SpecHash: hash, ImageID: id,
		Running: true, Created: time.Now(), Group: labels[worker.LabelDeviceGroup], Device: labels[worker.LabelDevice]}
	return nil
}

// Remove deletes a container.
func (e *Engine) Remove(_ context.Context, c worker.Container) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.containers, c.Name)
	return nil
}

// Restart does nothing (the container keeps running).
func (e *Engine) Restart(context.Context, worker.Container) error { return nil }

// PruneImages does nothing.
func (e *Engine) PruneImages(context.Context) error { return nil }

// Unhealthy never reports: simulated containers stay healthy.
func (e *Engine) Unhealthy(ctx context.Context) (<-chan worker.Container, <-chan error) {
	out := make(chan worker.Container)
	go func() { <-ctx.Done(); close(out) }()
	return out, make(chan error)
}
