package worker

import "context"

// Engine is what the worker needs of the container engine. The Docker
// adapter (worker/dockerengine) implements it; Plan never sees it.
type Engine interface {
	// Containers lists the worker's app containers (by label), any state.
	Containers(ctx context.Context) ([]Container, error)
	// CronContainers lists the containers of cron job runs, any state
	// (Container.App is the cron job).
	CronContainers(ctx context.Context) ([]Container, error)
	// Pull fetches ref (a changed digest behind the same tag included);
	// auth may be nil.
	Pull(ctx context.Context, ref string, auth *RegistryAuth) error
	// ImageID is the ID of the local image ref names, found=false if none.
	ImageID(ctx context.Context, ref string) (id string, found bool, err error)
	// EnsureNetwork creates the bridge network name if it is missing.
	EnsureNetwork(ctx context.Context, name string) error
	// Create creates the container with the labels, connects it to its
	// extra networks and starts it.
	Create(ctx context.Context, spec ContainerSpec, labels map[string]string) error
	// Remove stops (grace period, then kill) and removes a container.
	Remove(ctx context.Context, c Container) error
	// Restart restarts a container.
	Restart(ctx context.Context, c Container) error
	// PruneImages removes every image no container uses.
	PruneImages(ctx context.Context) error
	// Unhealthy streams the worker's app containers whose healthcheck
	// turned unhealthy, until ctx ends or the stream fails (the error
	// channel then gets one error).
	Unhealthy(ctx context.Context) (<-chan Container, <-chan error)
}

// RegistryAuth are credentials for pulls (REGISTRY_AUTH_USER, ...).
type RegistryAuth struct {
	Host, User, Password string
}
