package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
)

// PortSpec is one element of an app's starting_ports: either a plain port p
// (the i-th container publishes host port p+i-1 to container port p) or a
// mapping of host ports to container ports (host h+i-1 to container c).
// On the wire it is an integer or an object {"<host>": "<container>"}, as in
// Nebula 2.7.
type PortSpec struct {
	Port int        // a plain port; zero when Map is set
	Map  []PortPair // host:container pairs in the order given
}

// PortPair maps one host port to one container port.
type PortPair struct{ Host, Container int }

// MarshalJSON writes a plain port as an integer and a mapping as an object
// whose values are strings, the form Nebula's documentation uses.
func (p PortSpec) MarshalJSON() ([]byte, error) {
	if p.Map == nil {
		return strconv.AppendInt(nil, int64(p.Port), 10), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, pp := range p.Map {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%d":"%d"`, pp.Host, pp.Container)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON accepts an integer or an object whose keys are host ports
// and whose values are container ports given as strings or integers.
func (p *PortSpec) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if _, err := dec.Token(); err != nil {
			return err
		}
		pairs := []PortPair{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			host, err := parsePort(tok.(string))
			if err != nil {
				return fmt.Errorf("host port %q: %w", tok, err)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				s = string(raw)
			}
			container, err := parsePort(s)
			if err != nil {
				return fmt.Errorf("container port %s for host port %d: %w", raw, host, err)
			}
			pairs = append(pairs, PortPair{Host: host, Container: container})
		}
		*p = PortSpec{Map: pairs}
		return nil
	}
	var n json.Number
	if len(data) == 0 || data[0] == '"' || json.Unmarshal(data, &n) != nil {
		return fmt.Errorf("a port must be an integer or a {\"host\": \"container\"} object, got %.40s", data)
	}
	port, err := parsePort(n.String())
	if err != nil {
		return err
	}
	*p = PortSpec{Port: port}
	return nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer port", s)
	}
	return n, nil
}

// ContainersPer says how many containers of an app run on one device.
type ContainersPer struct {
	// Kind is one of "server", "instance" (a fixed count), "cpu" (count
	// per CPU core) or "memory" (one container per Value MiB of memory).
	Kind  string
	Value float64
}

// Containers-per kinds.
const (
	PerServer   = "server"
	PerInstance = "instance"
	PerCPU      = "cpu"
	PerMemory   = "memory"
)

// MinPerCPU is the smallest containers_per.cpu.
const MinPerCPU = 0.01

// DefaultContainersPer is one container per device.
var DefaultContainersPer = ContainersPer{Kind: PerServer, Value: 1}

// MarshalJSON writes {"<kind>": value}.
// The common case (a known kind, a whole number) is written directly:
// the fold writes it for every app event (see docs/benchmarks.md).
func (c ContainersPer) MarshalJSON() ([]byte, error) { return c.AppendJSON(make([]byte, 0, 24)) }

// AppendJSON appends what MarshalJSON writes to b.
func (c ContainersPer) AppendJSON(b []byte) ([]byte, error) {
	switch c.Kind {
	case PerServer, PerInstance, PerCPU, PerMemory:
		if c.Value == math.Trunc(c.Value) && math.Abs(c.Value) < 1e15 {
			b = append(append(append(b, `{"`...), c.Kind...), `":`...)
			return append(strconv.AppendInt(b, int64(c.Value), 10), '}'), nil
		}
	}
	v, err := json.Marshal(c.Value)
	if err != nil {
		return nil, err
	}
	k, err := json.Marshal(c.Kind)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(b, `{%s:%s}`, k, v), nil
}

// UnmarshalJSON reads an object with exactly one key.
func (c *ContainersPer) UnmarshalJSON(data []byte) error {
	var m map[string]float64
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("containers_per must be an object like {\"server\": 1}: %w", err)
	}
	if len(m) != 1 {
		return fmt.Errorf("containers_per must have exactly one of server, instance, cpu, memory; got %d keys", len(m))
	}
	for k, v := range m {
		*c = ContainersPer{Kind: k, Value: v}
	}
	return nil
}

// Validate checks the kind and that the value is positive (and whole, but
// for cpu).
func (c ContainersPer) Validate() error {
	switch c.Kind {
	case PerServer, PerInstance, PerMemory:
		if c.Value != math.Trunc(c.Value) {
			return fmt.Errorf("containers_per.%s must be a whole number, got %v", c.Kind, c.Value)
		}
	case PerCPU:
		// Fewer would mean no container on any device there is (0.01:
		// one per 100 cores).
		if c.Value < MinPerCPU {
			return fmt.Errorf("containers_per.cpu must be at least %v (one container per %d cores), got %v", MinPerCPU, int(1/MinPerCPU), c.Value)
		}
	default:
		return fmt.Errorf("containers_per kind %q is not one of server, instance, cpu, memory", c.Kind)
	}
	if !(c.Value > 0) || c.Value > 1e6 {
		return fmt.Errorf("containers_per.%s must be positive and at most 1000000, got %v", c.Kind, c.Value)
	}
	return nil
}

// RunSpec is how a container runs, what an app and a cron job share: its
// environment, whether it runs, its networks, volumes and devices, and
// privileges. It is embedded where Nebula 2.7's documents had these keys,
// so the JSON of both specs keeps 2.7's key order.
type RunSpec struct {
	EnvVars    map[string]string `json:"env_vars"`
	Running    bool              `json:"running"`
	Networks   []string          `json:"networks"`
	Volumes    []string          `json:"volumes"`
	Devices    []string          `json:"devices"`
	Privileged bool              `json:"privileged"`
}

// NewRunSpec returns the create defaults of an app or a cron job.
func NewRunSpec() RunSpec {
	return RunSpec{EnvVars: map[string]string{}, Running: true, Networks: slices.Clone(DefaultNetworks), Volumes: []string{}, Devices: []string{}}
}

// AppSpec is the desired configuration of an app: every field of a Nebula
// 2.7 app document but its name and version. JSON keys are Nebula's.
type AppSpec struct {
	DockerImage   string        `json:"docker_image"`
	StartingPorts []PortSpec    `json:"starting_ports"`
	ContainersPer ContainersPer `json:"containers_per"`
	RunSpec
	RollingRestart bool `json:"rolling_restart"`
}

// DefaultNetworks are the networks of an app or cron job that names none.
var DefaultNetworks = []string{"nebula", "bridge"}

// NewAppSpec returns a spec holding Nebula's create defaults.
func NewAppSpec(image string) AppSpec {
	return AppSpec{DockerImage: image, StartingPorts: []PortSpec{}, ContainersPer: DefaultContainersPer, RunSpec: NewRunSpec()}
}

// Validate reports every problem of the spec at once.
func (s AppSpec) Validate() error { return s.validate(allAppFields) }

// appFields are the fields of an AppSpec that have rules.
type appFields struct {
	image, ports, containers bool
	run                      runFields
}

var allAppFields = appFields{true, true, true, allRunFields}

func (s AppSpec) validate(f appFields) error {
	var errs []error
	if f.image {
		errs = append(errs, fieldErr("docker_image", ValidateImage(s.DockerImage)))
	}
	if f.ports {
		for i, p := range s.StartingPorts {
			errs = append(errs, fieldErr(fmt.Sprintf("starting_ports[%d]", i), p.validate()))
		}
	}
	if f.containers {
		errs = append(errs, fieldErr("containers_per", s.ContainersPer.Validate()))
	}
	errs = append(errs, s.RunSpec.validateFields(f.run)...)
	return joinInvalid(errs)
}

// ValidateApplied is Validate of s, the result of p.Apply on a valid
// spec: the fields p leaves as they were are valid, and no rule spans two
// fields, so only the fields p sets are checked (the answer is the same;
// TestValidateAppliedEqualsValidate). A fleet's patch sets one field of
// an app, and the fold checks each patch.
func (p AppPatch) ValidateApplied(s AppSpec) error {
	return s.validate(appFields{
		image: p.DockerImage != nil, ports: p.StartingPorts != nil, containers: p.ContainersPer != nil,
		run: runFields{env: p.EnvVars != nil, networks: p.Networks != nil, volumes: p.Volumes != nil, devices: p.Devices != nil},
	})
}

func (p PortSpec) validate() error {
	if p.Map == nil {
		return checkPort(p.Port)
	}
	if len(p.Map) == 0 {
		return errors.New("empty port mapping")
	}
	for _, pp := range p.Map {
		if err := checkPort(pp.Host); err != nil {
			return fmt.Errorf("host port: %w", err)
		}
		if err := checkPort(pp.Container); err != nil {
			return fmt.Errorf("container port: %w", err)
		}
	}
	return nil
}

func checkPort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("port %d is outside 1-65535", p)
	}
	return nil
}

// validate checks the fields apps and cron jobs share.
func (r RunSpec) validate() []error { return r.validateFields(allRunFields) }

// runFields are the fields of a RunSpec that have rules.
type runFields struct{ env, networks, volumes, devices bool }

var allRunFields = runFields{true, true, true, true}

func (r RunSpec) validateFields(f runFields) []error {
	var errs []error
	if f.env {
		errs = append(errs, envErrors(r.EnvVars)...)
	}
	if f.networks {
		errs = append(errs, fieldErr("networks", validateNetworks(r.Networks)))
	}
	if f.volumes {
		for i, v := range r.Volumes {
			errs = append(errs, fieldErr(fmt.Sprintf("volumes[%d]", i), validateVolume(v)))
		}
	}
	if f.devices {
		for i, d := range r.Devices {
			errs = append(errs, fieldErr(fmt.Sprintf("devices[%d]", i), validateDevice(d)))
		}
	}
	return errs
}

// envErrors are the problems of an environment, in variable name order
// (the fold stores the answer, and every manager must store the same).
func envErrors(env map[string]string) []error {
	check := func(k, v string) []error {
		var errs []error
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, fieldErr("env_vars", fmt.Errorf("variable name %q must be non-empty without '=' or NUL", k)))
		}
		if strings.ContainsRune(v, 0) {
			errs = append(errs, fieldErr("env_vars", fmt.Errorf("value of %q contains NUL", k)))
		}
		return errs
	}
	for k, v := range env {
		if check(k, v) != nil {
			// Something is wrong: every problem, in name order.
			var errs []error
			for _, k := range slices.Sorted(maps.Keys(env)) {
				errs = append(errs, check(k, env[k])...)
			}
			return errs
		}
	}
	return nil
}

func validateNetworks(ns []string) error {
	for i, n := range ns {
		if err := validateDockerName(n); err != nil {
			return fmt.Errorf("network %d: %w", i+1, err)
		}
		if (n == "host" || n == "none") && len(ns) != 1 {
			return fmt.Errorf("network %q must be the only network", n)
		}
	}
	if len(ns) != len(dedupe(ns)) {
		return errors.New("a network is listed twice")
	}
	return nil
}

func dedupe(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

func validateDockerName(n string) error {
	if n == "" || len(n) > 128 {
		return fmt.Errorf("name %q must have 1 to 128 characters", n)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')) {
			return fmt.Errorf("name %q has a character Docker refuses at position %d", n, i+1)
		}
	}
	return nil
}

// validateVolume checks `host:container[:ro|rw]`, where host is an absolute
// path or a volume name and container is an absolute path.
func validateVolume(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("%q is not host:container[:ro|rw]", v)
	}
	if !path.IsAbs(parts[0]) {
		if err := validateDockerName(parts[0]); err != nil {
			return fmt.Errorf("%q: source must be an absolute path or a volume name", v)
		}
	}
	if !path.IsAbs(parts[1]) {
		return fmt.Errorf("%q: container path must be absolute", v)
	}
	if len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw" {
		return fmt.Errorf("%q: mode must be ro or rw", v)
	}
	return nil
}

// validateDevice checks `host[:container[:perms]]` with perms from rwm.
func validateDevice(d string) error {
	parts := strings.Split(d, ":")
	if len(parts) > 3 {
		return fmt.Errorf("%q is not host[:container[:rwm]]", d)
	}
	for i, p := range parts[:min(len(parts), 2)] {
		if !path.IsAbs(p) {
			return fmt.Errorf("%q: path %d must be absolute", d, i+1)
		}
	}
	if len(parts) == 3 {
		if parts[2] == "" || strings.Trim(parts[2], "rwm") != "" {
			return fmt.Errorf("%q: permissions must be letters of rwm", d)
		}
	}
	return nil
}

func fieldErr(field string, err error) error {
	if err == nil {
		return nil
	}
	return &FieldError{Field: field, Err: err}
}

// FieldError is a problem with one field of a specification.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// joinInvalid joins the non-nil errors and marks the result ErrInvalid.
func joinInvalid(errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// RunPatch is a partial update of a RunSpec: nil fields are left as they
// are.
type RunPatch struct {
	EnvVars    *map[string]string `json:"env_vars,omitempty"`
	Running    *bool              `json:"running,omitempty"`
	Networks   *[]string          `json:"networks,omitempty"`
	Volumes    *[]string          `json:"volumes,omitempty"`
	Devices    *[]string          `json:"devices,omitempty"`
	Privileged *bool              `json:"privileged,omitempty"`
}

// Apply returns r with the patch's fields set.
func (p RunPatch) Apply(r RunSpec) RunSpec {
	setIf(&r.EnvVars, p.EnvVars)
	setIf(&r.Running, p.Running)
	setIf(&r.Networks, p.Networks)
	setIf(&r.Volumes, p.Volumes)
	setIf(&r.Devices, p.Devices)
	setIf(&r.Privileged, p.Privileged)
	return r
}

// AppPatch is a partial update of an app: nil fields are left as they are.
type AppPatch struct {
	DockerImage   *string        `json:"docker_image,omitempty"`
	StartingPorts *[]PortSpec    `json:"starting_ports,omitempty"`
	ContainersPer *ContainersPer `json:"containers_per,omitempty"`
	RunPatch
	RollingRestart *bool `json:"rolling_restart,omitempty"`
}

// Apply returns s with the patch's fields set.
func (p AppPatch) Apply(s AppSpec) AppSpec {
	setIf(&s.DockerImage, p.DockerImage)
	setIf(&s.StartingPorts, p.StartingPorts)
	setIf(&s.ContainersPer, p.ContainersPer)
	s.RunSpec = p.RunPatch.Apply(s.RunSpec)
	setIf(&s.RollingRestart, p.RollingRestart)
	return s
}

// Empty reports whether the patch changes nothing.
func (p AppPatch) Empty() bool { return p == AppPatch{} }

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}
