// Package enginetest is the conformance suite every worker.Engine passes:
// the Docker adapter against a real daemon, the simulated engine in
// memory. What the worker relies on (labels read back as it wrote them,
// images that must be there before a container can use them, names that
// cannot be taken twice, removals that tolerate what is gone) is checked
// once, here, so the simulated engine cannot drift from Docker's
// behaviour. As watermill runs one suite over every Pub/Sub.
package enginetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/worker"
)

// Run checks e. image must be present in e already (the harness builds,
// imports or pulls it); the suite creates its containers under a name
// prefix of its own and removes them, so it can share an engine with
// other tests. removeNetwork (may be nil) removes the network the suite
// makes, when the test ends.
func Run(t *testing.T, e worker.Engine, image string, removeNetwork func(name string)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prefix := fmt.Sprintf("nebula-conformance-%08x-", rand.Uint32())
	group, device := "conformance", prefix+"device"
	mine := func(list []worker.Container) map[string]worker.Container {
		out := map[string]worker.Container{}
		for _, c := range list {
			if strings.HasPrefix(c.Name, prefix) {
				out[c.Name] = c
			}
		}
		return out
	}
	apps := func() map[string]worker.Container {
		t.Helper()
		list, err := e.Containers(ctx)
		if err != nil {
			t.Fatalf("Containers: %v", err)
		}
		return mine(list)
	}
	crons := func() map[string]worker.Container {
		t.Helper()
		list, err := e.CronContainers(ctx)
		if err != nil {
			t.Fatalf("CronContainers: %v", err)
		}
		return mine(list)
	}
	if removeNetwork != nil {
		t.Cleanup(func() { removeNetwork(prefix + "net") }) // after the containers' cleanup (last in, first out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, list := range []func(context.Context) ([]worker.Container, error){e.Containers, e.CronContainers} {
			all, _ := list(ctx)
			for _, c := range mine(all) {
				_ = e.Remove(ctx, c)
			}
		}
	})

	// Images: present or not, never an error for a missing one.
	id, found, err := e.ImageID(ctx, image)
	if err != nil || !found || id == "" {
		t.Fatalf("ImageID(%s) = %q, %v, %v: the harness's image is not there", image, id, found, err)
	}
	missing := prefix + "missing:never"
	if _, found, err := e.ImageID(ctx, missing); err != nil || found {
		t.Fatalf("ImageID of an image never pulled: found=%v, err=%v", found, err)
	}

	// Networks: ensuring one twice is not an error.
	network := prefix + "net"
	for range 2 {
		if err := e.EnsureNetwork(ctx, network); err != nil {
			t.Fatalf("EnsureNetwork: %v", err)
		}
	}

	// An app container: created running, read back with its labels.
	spec := worker.ContainerSpec{Name: prefix + "web-1", App: "web", Index: 1, Image: image, Env: []string{"A=1"},
		Network: network, RestartPolicy: "unless-stopped"}
	if err := e.Create(ctx, spec, worker.AppLabels(spec, group, device, 42)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	c, ok := apps()[spec.Name]
	if !ok {
		t.Fatalf("Containers does not list %s after Create", spec.Name)
	}
	if c.ID == "" || c.App != "web" || c.SpecHash != spec.Hash() || c.ImageID != id || !c.Running || c.Group != group || c.Device != device {
		t.Fatalf("the container reads back as %+v: want app web, spec hash %s, image %s, running, group %s, device %s",
			c, spec.Hash(), id, group, device)
	}
	if _, isCron := crons()[spec.Name]; isCron {
		t.Fatalf("CronContainers lists the app container %s", spec.Name)
	}

	// A name is taken until its container is removed.
	if err := e.Create(ctx, spec, worker.AppLabels(spec, group, device, 43)); err == nil {
		t.Fatalf("a second container named %s was created", spec.Name)
	}
	// A container cannot use an image the engine does not hold.
	other := spec
	other.Name, other.Image = prefix+"web-2", missing
	if err := e.Create(ctx, other, worker.AppLabels(other, group, device, 42)); err == nil {
		t.Fatalf("a container of the missing image %s was created", missing)
	}
	if _, ok := apps()[other.Name]; ok {
		t.Fatalf("a failed Create left %s listed", other.Name)
	}

	if err := e.Restart(ctx, c); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if c2, ok := apps()[spec.Name]; !ok || !c2.Running || c2.ID != c.ID {
		t.Fatalf("after Restart: %+v, listed %v", c2, ok)
	}
	if err := e.Restart(ctx, worker.Container{ID: prefix + "gone", Name: prefix + "gone"}); err == nil {
		t.Fatal("Restart of a container that does not exist succeeded")
	}

	// A cron job's run: listed as a run of the cron job, not as an app.
	run := worker.ContainerSpec{Name: prefix + "nightly-1-1", App: "nightly", Index: 1, Image: image, Network: network, RestartPolicy: "no"}
	if err := e.Create(ctx, run, worker.CronLabels("nightly", group, device, 7)); err != nil {
		t.Fatalf("Create of a cron job run: %v", err)
	}
	r, ok := crons()[run.Name]
	if !ok || r.App != "nightly" || r.Group != group || r.Device != device || r.SpecHash != "" {
		t.Fatalf("the cron job run reads back as %+v (listed %v): want cron job nightly, group %s, device %s, no spec hash", r, ok, group, device)
	}
	if _, isApp := apps()[run.Name]; isApp {
		t.Fatalf("Containers lists the cron job run %s", run.Name)
	}

	// Removal: gone from the lists; removing what is gone is not an error.
	for _, x := range []worker.Container{c, r} {
		if err := e.Remove(ctx, x); err != nil {
			t.Fatalf("Remove %s: %v", x.Name, err)
		}
		if err := e.Remove(ctx, x); err != nil {
			t.Fatalf("Remove of %s, already removed: %v", x.Name, err)
		}
	}
	if left := len(apps()) + len(crons()); left != 0 {
		t.Fatalf("%d containers left after Remove", left)
	}
	// The name is free again.
	if err := e.Create(ctx, spec, worker.AppLabels(spec, group, device, 44)); err != nil {
		t.Fatalf("Create after the name was freed: %v", err)
	}
}
