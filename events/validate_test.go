package events

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind Kind
		name string
		ok   bool
	}{
		{KindApp, "web", true},
		{KindApp, "Web_1.2-a", true},
		{KindApp, "", false},
		{KindApp, "-web", false},
		{KindApp, "web/x", false},
		{KindApp, "web app", false},
		{KindApp, "wéb", false},
		{KindApp, strings.Repeat("a", MaxContainerNameLen), true},
		{KindApp, strings.Repeat("a", MaxContainerNameLen+1), false},
		{KindDeviceGroup, strings.Repeat("a", MaxContainerNameLen+1), true},
		{KindDeviceGroup, strings.Repeat("a", MaxNameLen+1), false},
		{KindUser, "bob@example.com", true},
		{KindApp, "bob@example.com", false},
		{KindUser, "@bob", false},
		{KindFleet, "", true},
		{KindFleet, "x", false},
	}
	for _, c := range cases {
		err := ValidateName(c.kind, c.name)
		if (err == nil) != c.ok {
			t.Errorf("ValidateName(%s, %q) = %v, want ok=%v", c.kind, c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%s, %q) error is not ErrInvalid", c.kind, c.name)
		}
	}
}

func TestValidateImage(t *testing.T) {
	t.Parallel()
	digest := "@sha256:" + strings.Repeat("0a", 32)
	good := []string{"nginx", "nginx:1.25", "library/nginx:latest", "registry.example.com/a/b:c",
		"localhost:5000/web", "127.0.0.1:5000/web:v1", "nginx" + digest, "nginx:1.25" + digest,
		"a__b/c--d.e_f", "my-registry.local:443/team/app:1.0.0-rc.1"}
	bad := []string{"", "Nginx", "nginx:", "nginx:-x", "nginx@sha256:abc", "nginx@md5:" + strings.Repeat("a", 64),
		"nginx latest", "/nginx", "nginx/", "a..b", "reg:port/x", "nginx:" + strings.Repeat("t", 129), "-x"}
	for _, ref := range good {
		if err := ValidateImage(ref); err != nil {
			t.Errorf("ValidateImage(%q) = %v, want ok", ref, err)
		}
	}
	for _, ref := range bad {
		if err := ValidateImage(ref); err == nil {
			t.Errorf("ValidateImage(%q) = nil, want an error", ref)
		}
	}
}

func TestAppSpecValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(s *AppSpec)
		field  string // "" = valid
	}{
		{"defaults", func(s *AppSpec) {}, ""},
		{"port zero", func(s *AppSpec) { s.StartingPorts = []PortSpec{{Port: 0}} }, "starting_ports[0]"},
		{"port too big", func(s *AppSpec) { s.StartingPorts = []PortSpec{{Map: []PortPair{{Host: 70000, Container: 80}}}} }, "starting_ports[0]"},
		{"empty map", func(s *AppSpec) { s.StartingPorts = []PortSpec{{Map: []PortPair{}}} }, "starting_ports[0]"},
		{"bad containers_per", func(s *AppSpec) { s.ContainersPer = ContainersPer{Kind: "gpu", Value: 1} }, "containers_per"},
		{"negative", func(s *AppSpec) { s.ContainersPer = ContainersPer{Kind: PerServer, Value: -1} }, "containers_per"},
		{"fraction of server", func(s *AppSpec) { s.ContainersPer = ContainersPer{Kind: PerServer, Value: 1.5} }, "containers_per"},
		{"fraction of cpu", func(s *AppSpec) { s.ContainersPer = ContainersPer{Kind: PerCPU, Value: 0.5} }, ""},
		{"host not alone", func(s *AppSpec) { s.Networks = []string{"host", "nebula"} }, "networks"},
		{"host alone", func(s *AppSpec) { s.Networks = []string{"host"} }, ""},
		{"empty networks", func(s *AppSpec) { s.Networks = []string{} }, ""},
		{"network twice", func(s *AppSpec) { s.Networks = []string{"a", "a"} }, "networks"},
		{"env key with =", func(s *AppSpec) { s.EnvVars = map[string]string{"A=B": "c"} }, "env_vars"},
		{"relative volume", func(s *AppSpec) { s.Volumes = []string{"/a:b"} }, "volumes[0]"},
		{"volume mode", func(s *AppSpec) { s.Volumes = []string{"/a:/b:rx"} }, "volumes[0]"},
		{"named volume", func(s *AppSpec) { s.Volumes = []string{"data:/b:ro"} }, ""},
		{"device perms", func(s *AppSpec) { s.Devices = []string{"/dev/a:/dev/a:rwx"} }, "devices[0]"},
		{"device alone", func(s *AppSpec) { s.Devices = []string{"/dev/a"} }, ""},
		{"bad image", func(s *AppSpec) { s.DockerImage = "UPPER" }, "docker_image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewAppSpec("nginx")
			c.mutate(&s)
			err := s.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want ok", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want an ErrInvalid FieldError on %s", err, c.field)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	s := NewAppSpec("")
	s.Networks = []string{"none", "x"}
	s.Volumes = []string{"nope"}
	err := s.Validate()
	for _, f := range []string{"docker_image", "networks", "volumes[0]"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("error %v does not mention %s", err, f)
		}
	}
}

func TestPortSpecJSON(t *testing.T) {
	t.Parallel()
	var ports []PortSpec
	if err := json.Unmarshal([]byte(`[80, {"81": "8080", "82": 9090}]`), &ports); err != nil {
		t.Fatal(err)
	}
	want := []PortSpec{{Port: 80}, {Map: []PortPair{{81, 8080}, {82, 9090}}}}
	out, _ := json.Marshal(ports)
	if string(out) != `[80,{"81":"8080","82":"9090"}]` || len(ports) != 2 || ports[1].Map[1] != want[1].Map[1] {
		t.Fatalf("got %v / %s", ports, out)
	}
	for _, bad := range []string{`["80"]`, `[1.5]`, `[{"a":"1"}]`, `[{"1":"b"}]`, `[true]`, `[[1]]`} {
		if err := json.Unmarshal([]byte(bad), &ports); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

func TestContainersPerJSON(t *testing.T) {
	t.Parallel()
	var c ContainersPer
	for _, bad := range []string{`{}`, `{"server":1,"cpu":2}`, `[1]`, `{"server":"1"}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
	if err := json.Unmarshal([]byte(`{"cpu": 0.5}`), &c); err != nil || c != (ContainersPer{PerCPU, 0.5}) {
		t.Fatalf("got %v, %v", c, err)
	}
}

func FuzzPortSpec(f *testing.F) {
	for _, s := range []string{`80`, `{"81":"8080"}`, `{"1":2,"3":"4"}`, `"x"`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p PortSpec
		if json.Unmarshal(b, &p) != nil {
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var q PortSpec
		if err := json.Unmarshal(out, &q); err != nil {
			t.Fatalf("%s re-encoded as %s does not decode: %v", b, out, err)
		}
	})
}

func FuzzValidateImage(f *testing.F) {
	for _, s := range []string{"nginx", "a/b:c@sha256:" + strings.Repeat("1", 64), "localhost:5000/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = ValidateImage(s) // must not panic
	})
}

// FuzzNamesAndPaths: names, volumes and devices either validate or are
// refused with ErrInvalid-wrapped errors, never a panic; a name that
// validates is a safe Docker container name prefix.
func FuzzNamesAndPaths(f *testing.F) {
	for _, s := range []string{"web", "a.b-c_d", "-x", "user@example.com", "/data:/data:rw", "vol:/x", "/dev/ttyUSB0:/dev/ttyUSB0:rwm", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, kind := range []Kind{KindApp, KindUser, KindDeviceGroup} {
			err := ValidateName(kind, s)
			if err == nil {
				if len(s) == 0 || len(s) > MaxNameLen || strings.ContainsAny(s, "/ \x00:") {
					t.Fatalf("%s name %q validated", kind, s)
				}
			} else if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s name %q: error %v is not ErrInvalid", kind, s, err)
			}
		}
		_ = validateVolume(s)
		_ = validateDevice(s)
		_ = validateNetworks([]string{s, "bridge"})
	})
}

// errText is err's message, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkValidateApplied fails unless p.ValidateApplied(p.Apply(s)) says
// exactly what Validate says of the patched spec, for a valid s.
func checkValidateApplied(t *testing.T, s AppSpec, p AppPatch) {
	t.Helper()
	if err := s.Validate(); err != nil {
		return // not a spec the fold can hold
	}
	applied := p.Apply(s)
	if got, want := errText(p.ValidateApplied(applied)), errText(applied.Validate()); got != want {
		t.Fatalf("patch %+v on %+v:\nValidateApplied: %q\nValidate:        %q", p, s, got, want)
	}
}

// TestValidateAppliedEqualsValidate: for patches setting any mix of
// fields, valid and not, on valid specs, checking the fields a patch sets
// answers what checking the whole patched spec answers.
func TestValidateAppliedEqualsValidate(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(5, 6))
	images := []string{"nginx", "registry.local/web:1.2", "Nginx", "", "nginx:"}
	ports := [][]PortSpec{{}, {{Port: 80}}, {{Port: 0}}, {{Port: 80}, {Port: 70000}}, {{Map: []PortPair{}}}, {{Map: []PortPair{{Host: 80, Container: 0}}}}}
	containers := []ContainersPer{DefaultContainersPer, {Kind: "server", Value: 3}, {Kind: "cpu", Value: 0}, {Kind: "server", Value: -1}}
	envs := []map[string]string{{}, {"A": "1", "B": "2"}, {"": "x"}, {"A=B": "1", "C": "x\x00", "": ""}, {"Z": "\x00", "A": "\x00"}}
	networks := [][]string{{"nebula", "bridge"}, {"host"}, {"host", "bridge"}, {"a", "a"}, {"bad name"}}
	volumes := [][]string{{}, {"/data:/data:rw"}, {"relative:/x"}, {"/a:/b", ""}}
	devices := [][]string{{}, {"/dev/ttyUSB0"}, {"nodev"}, {"/dev/a", ""}}
	bools := []bool{false, true}
	pick := func(n int) int { return rnd.IntN(n) }
	for range 20000 {
		s := NewAppSpec(images[pick(2)])
		s.StartingPorts = ports[pick(2)]
		s.ContainersPer = containers[pick(2)]
		s.EnvVars, s.Networks, s.Volumes, s.Devices = envs[pick(2)], networks[pick(2)], volumes[pick(2)], devices[pick(2)]
		var p AppPatch
		if pick(3) == 0 {
			p.DockerImage = &images[pick(len(images))]
		}
		if pick(3) == 0 {
			p.StartingPorts = &ports[pick(len(ports))]
		}
		if pick(3) == 0 {
			p.ContainersPer = &containers[pick(len(containers))]
		}
		if pick(3) == 0 {
			p.EnvVars = &envs[pick(len(envs))]
		}
		if pick(3) == 0 {
			p.Networks = &networks[pick(len(networks))]
		}
		if pick(3) == 0 {
			p.Volumes = &volumes[pick(len(volumes))]
		}
		if pick(3) == 0 {
			p.Devices = &devices[pick(len(devices))]
		}
		if pick(3) == 0 {
			p.Running, p.Privileged, p.RollingRestart = &bools[pick(2)], &bools[pick(2)], &bools[pick(2)]
		}
		checkValidateApplied(t, s, p)
	}
}

// FuzzValidateApplied: any valid spec and any patch (as JSON), checked
// both ways.
func FuzzValidateApplied(f *testing.F) {
	f.Add(`{"docker_image": "nginx"}`, `{"docker_image": "Nginx", "env_vars": {"": "x", "A=": "y"}}`)
	f.Add(`{"docker_image": "nginx", "networks": ["host"]}`, `{"networks": ["host", "bridge"], "volumes": ["x"]}`)
	f.Add(`{"docker_image": "nginx", "starting_ports": [80]}`, `{"starting_ports": [{"80": "0"}], "containers_per": {"cpu": 0}}`)
	f.Fuzz(func(t *testing.T, spec, patch string) {
		s := NewAppSpec("")
		var p AppPatch
		if json.Unmarshal([]byte(spec), &s) != nil || json.Unmarshal([]byte(patch), &p) != nil {
			return
		}
		checkValidateApplied(t, s, p)
	})
}

// TestEnvErrorsInNameOrder: every problem of an environment, in variable
// name order whatever the map's order (the fold stores the text).
func TestEnvErrorsInNameOrder(t *testing.T) {
	t.Parallel()
	s := NewAppSpec("nginx")
	s.EnvVars = map[string]string{"c=": "1", "a=": "1", "b": "\x00", "ok": "1", "d=": "\x00"}
	want := errText(s.Validate())
	for _, name := range []string{`"a="`, `"b"`, `"c="`, `"d="`} {
		if !strings.Contains(want, name) {
			t.Fatalf("%s missing from %q", name, want)
		}
	}
	if !(strings.Index(want, `"a="`) < strings.Index(want, `"b"`) && strings.Index(want, `"b"`) < strings.Index(want, `"c="`) &&
		strings.Index(want, `"c="`) < strings.Index(want, `"d="`)) {
		t.Fatalf("not in name order: %q", want)
	}
	for range 50 {
		if got := errText(s.Validate()); got != want {
			t.Fatalf("a second check says %q, the first %q", got, want)
		}
	}
}
