package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// App is one app of the group's config, as /info serves it.
type App struct {
	Name    string `json:"app_name"`
	Version int64  `json:"app_id"`
	events.AppSpec
}

// Host is what the worker knows of its device.
type Host struct {
	CPUs     float64 // usable CPUs (cgroup limit if any)
	MemoryMB int64   // usable memory (cgroup limit if any)
	// NamePrefix is put before container names: several workers (devices)
	// sharing one engine, as in tests and simulations, do not collide.
	NamePrefix string
}

// Labels the worker puts on its containers. The first three are Nebula
// 2.7's, so its tools keep finding them.
const (
	LabelOrchestrator  = "orchestrator"
	LabelAppName       = "app_name"
	LabelCronJobName   = "cron_job_name"
	LabelContainerType = "container_type"
	LabelDeviceGroup   = "nebula.device_group"
	LabelAppVersion    = "nebula.app_version"
	LabelSpecHash      = "nebula.spec_hash"
	LabelIndex         = "nebula.index"
	LabelDevice        = "nebula.device_id"
)

// AppLabels are the labels of the container that runs spec, of version
// of the app, for device of group.
func AppLabels(spec ContainerSpec, group, device string, version int64) map[string]string {
	return map[string]string{
		LabelOrchestrator: "nebula", LabelContainerType: "app", LabelAppName: spec.App,
		LabelDeviceGroup: group, LabelAppVersion: fmt.Sprint(version), LabelSpecHash: spec.Hash(),
		LabelIndex: fmt.Sprint(spec.Index), LabelDevice: device,
	}
}

// CronLabels are the labels of a run of version of cron job job, for
// device of group.
func CronLabels(job, group, device string, version int64) map[string]string {
	return map[string]string{
		LabelOrchestrator: "nebula", LabelContainerType: "cron_job", LabelCronJobName: job,
		LabelDeviceGroup: group, LabelAppVersion: fmt.Sprint(version), LabelDevice: device,
	}
}

// PortBinding publishes a container port on a host port (TCP).
type PortBinding struct {
	Host      int `json:"host"`
	Container int `json:"container"`
}

// ContainerSpec is one container as the config wants it.
type ContainerSpec struct {
	Name       string        `json:"name"`
	App        string        `json:"app"`
	Index      int           `json:"index"` // 1-based
	Image      string        `json:"image"`
	Env        []string      `json:"env"` // K=V, sorted
	Ports      []PortBinding `json:"ports"`
	Binds      []string      `json:"binds"`
	Devices    []string      `json:"devices"`
	Privileged bool          `json:"privileged"`
	// Network is the network the container is created on: "host",
	// "none", or a bridge network (by default "nebula", a user network
	// with name resolution between containers).
	Network string `json:"network"`
	// Extra networks the container is connected to after creation.
	Extra []string `json:"extra_networks"`
	// RestartPolicy is "unless-stopped" for apps, "no" for cron jobs.
	RestartPolicy string `json:"restart_policy"`
}

// Hash identifies the spec: a container whose label holds the same hash
// needs no change (the image ID is compared separately).
func (s ContainerSpec) Hash() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// DefaultNetwork is the user network apps join unless told otherwise.
const DefaultNetwork = "nebula"

// networks splits an app's networks into the one to create the
// container on and the ones to connect it to afterwards.
func networks(list []string) (string, []string) {
	if len(list) == 0 {
		return DefaultNetwork, nil
	}
	if list[0] == "host" || list[0] == "none" {
		return list[0], nil
	}
	primary := list[0]
	if slices.Contains(list, DefaultNetwork) {
		primary = DefaultNetwork
	}
	var extra []string
	for _, n := range list {
		if n != primary {
			extra = append(extra, n)
		}
	}
	return primary, extra
}

// Replicas is how many containers of the app run on this host
// (containers_per): server/instance n; cpu n per CPU; memory one per n MiB.
func Replicas(cp events.ContainersPer, h Host) int {
	var n float64
	switch cp.Kind {
	case events.PerServer, events.PerInstance:
		n = cp.Value
	case events.PerCPU:
		n = h.CPUs * cp.Value
	case events.PerMemory, "mem":
		if cp.Value > 0 {
			n = float64(h.MemoryMB) / cp.Value
		}
	}
	if n < 0 || math.IsNaN(n) {
		return 0
	}
	return int(math.Min(math.Floor(n+1e-9), 10_000))
}

// runContainer is the container named name that runs image as r says:
// an app's replica or a cron job's run.
func runContainer(name, app string, index int, image string, r events.RunSpec, restart string) ContainerSpec {
	env := make([]string, 0, len(r.EnvVars))
	for k, v := range r.EnvVars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	network, extra := networks(r.Networks)
	return ContainerSpec{Name: name, App: app, Index: index, Image: image, Env: env, Binds: slices.Clone(r.Volumes),
		Devices: slices.Clone(r.Devices), Privileged: r.Privileged, Network: network, Extra: extra, RestartPolicy: restart}
}

// Containers returns the specs of the app's containers on this host.
func Containers(app App, group string, h Host) []ContainerSpec {
	n := Replicas(app.ContainersPer, h)
	specs := make([]ContainerSpec, 0, n)
	for i := 1; i <= n; i++ {
		spec := runContainer(fmt.Sprintf("%s%s-%d", h.NamePrefix, app.Name, i), app.Name, i, app.DockerImage, app.RunSpec, "unless-stopped")
		var ports []PortBinding
		if spec.Network != "host" {
			for _, p := range app.StartingPorts {
				if p.Map == nil {
					ports = append(ports, PortBinding{Host: p.Port + i - 1, Container: p.Port})
				}
				for _, pp := range p.Map {
					ports = append(ports, PortBinding{Host: pp.Host + i - 1, Container: pp.Container})
				}
			}
		}
		spec.Ports = ports
		specs = append(specs, spec)
	}
	return specs
}
