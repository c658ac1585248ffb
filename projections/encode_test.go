package projections

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// sameAsMarshal fails the test unless doc's appender writes what
// json.Marshal writes (or both fail).
func sameAsMarshal(t *testing.T, doc appender) {
	t.Helper()
	want, wantErr := json.Marshal(doc)
	got, err := doc.appendJSON(nil)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%#v: appendJSON error %v, json.Marshal error %v", doc, err, wantErr)
	}
	if wantErr == nil && !bytes.Equal(got, want) {
		t.Fatalf("appendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

func TestDocumentEncodingMatchesJSON(t *testing.T) {
	odd := "é <b>&amp; \"q\" \\ \n\t\x01 \u2028 \xff end"
	full := events.NewAppSpec("registry.local:5000/acme/web:1.4")
	full.StartingPorts = []events.PortSpec{{Port: 80}, {Map: []events.PortPair{{Host: 8443, Container: 443}, {Host: 1, Container: 2}}}, {Map: []events.PortPair{}}}
	full.ContainersPer = events.ContainersPer{Kind: events.PerCPU, Value: 0.5}
	full.EnvVars = map[string]string{"B": odd, "A": "1", odd: ""}
	full.Volumes = []string{"/data:/data:rw", odd}
	full.Devices = nil
	full.Privileged, full.RollingRestart = true, true
	docs := []appender{
		App{},
		App{Name: "web", Version: 42, AppSpec: events.NewAppSpec("nginx")},
		App{Name: odd, Version: -1, AppSpec: full},
		App{Name: "w", AppSpec: events.AppSpec{ContainersPer: events.ContainersPer{Kind: odd, Value: 1e300}}},
		App{Name: "nan", AppSpec: events.AppSpec{ContainersPer: events.ContainersPer{Kind: "cpu", Value: math.NaN()}}},
		DeviceGroup{},
		DeviceGroup{Name: "edge", Version: 7, PruneID: 3, DeviceGroupSpec: events.DeviceGroupSpec{Apps: []string{"a", odd}, CronJobs: []string{}}},
		Verdict{},
		Verdict{Offset: 9, Type: events.AppCreated, Aggregate: events.Aggregate{Kind: events.KindApp, Name: "web"}, Accepted: true},
		Verdict{Offset: 10, Type: events.AppPatched, Aggregate: events.Aggregate{Kind: events.KindApp, Name: odd}, CommandID: odd,
			Reason: ReasonDuplicate, Detail: odd, DuplicateOf: 3},
		Verdict{Offset: 11, Type: events.DeviceGroupCreated, Aggregate: events.Aggregate{Kind: events.KindDeviceGroup, Name: "g"},
			Reason: ReasonMissingMember, Detail: odd, Missing: &events.Aggregate{Kind: events.KindCronJob, Name: odd}},
	}
	for _, d := range docs {
		sameAsMarshal(t, d)
	}
	// putDoc keeps json.Marshal's error for what cannot be encoded.
	if err := putDoc(MemKV{}, []byte("k"), docs[4]); err == nil {
		t.Fatal("putDoc encoded a NaN containers_per")
	}
}

func FuzzDocumentEncoding(f *testing.F) {
	f.Add("web", "nginx:1", "K", "v", "/a:/b", 80, 8080, 1.0, "server", int64(5), true)
	f.Add("<&>", "\xff\u2028", "\n", "\"", "\\", -1, 0, 0.25, "cpu", int64(-5), false)
	f.Fuzz(func(t *testing.T, name, image, k, v, vol string, port, host int, per float64, kind string, off int64, flag bool) {
		spec := events.AppSpec{DockerImage: image, ContainersPer: events.ContainersPer{Kind: kind, Value: per},
			StartingPorts: []events.PortSpec{{Port: port}, {Map: []events.PortPair{{Host: host, Container: port}}}},
			RunSpec:       events.RunSpec{EnvVars: map[string]string{k: v, v: k}, Running: flag, Networks: []string{name}, Volumes: []string{vol, k}, Privileged: !flag}}
		sameAsMarshal(t, App{Name: name, Version: off, AppSpec: spec})
		sameAsMarshal(t, DeviceGroup{Name: name, Version: off, PruneID: -off, DeviceGroupSpec: events.DeviceGroupSpec{Apps: []string{image, vol}}})
		sameAsMarshal(t, Verdict{Offset: off, Type: events.Type(kind), Aggregate: events.Aggregate{Kind: events.Kind(k), Name: name},
			CommandID: v, Accepted: flag, Reason: Reason(vol), Detail: image, DuplicateOf: int64(port)})
		sameAsMarshal(t, Verdict{Offset: off, Reason: ReasonMissingMember, Missing: &events.Aggregate{Kind: events.Kind(kind), Name: v}})
	})
}

// sameAsUnmarshal fails the test if the fast reader of T read b into
// something other than what json.Unmarshal reads (or read what it
// rejects). It reports whether the fast reader read it.
func sameAsUnmarshal[T any](t *testing.T, b []byte) bool {
	t.Helper()
	var fast T
	if !readFast(b, &fast) {
		return false
	}
	var want T
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("fast reader of %T read what json.Unmarshal rejects (%v):\n%s", want, err, b)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Fatalf("fast reader of %T differs from json.Unmarshal on\n%s\nfast %#v\nwant %#v", want, b, fast, want)
	}
	return true
}

// docSeeds are encoded documents: what the appenders write, and variants.
func docSeeds(t testing.TB) [][]byte {
	full := events.NewAppSpec("registry.local:5000/acme/web:1.4")
	full.StartingPorts = []events.PortSpec{{Port: 80}, {Map: []events.PortPair{{Host: 8443, Container: 443}}}}
	full.EnvVars = map[string]string{"B": "é <b>&", "A": "1"}
	var out [][]byte
	for _, d := range []appender{
		App{Name: "web", Version: 42, AppSpec: full},
		App{Name: "w", AppSpec: events.AppSpec{ContainersPer: events.ContainersPer{Kind: "cpu", Value: 0.25}}},
		DeviceGroup{Name: "edge", Version: 7, PruneID: 3, DeviceGroupSpec: events.DeviceGroupSpec{Apps: []string{"a", "b"}, CronJobs: []string{}}},
		DeviceGroup{Name: "e"},
	} {
		b, err := d.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte(`["a","b\u00e9"]`), []byte(`[]`), []byte(`null`),
		[]byte(`{"app_name":"x","app_id":1,"extra":true}`), []byte(`{"App_Name":"x"}`),
		[]byte(`{"device_group":"g","apps":null}`), []byte(`{"device_group":"g","apps":["a"],"apps":["b"]}`))
}

func TestDocumentReadersMatchJSON(t *testing.T) {
	seeds := docSeeds(t)
	read := 0
	for _, b := range seeds {
		for _, ok := range []bool{sameAsUnmarshal[App](t, b), sameAsUnmarshal[DeviceGroup](t, b), sameAsUnmarshal[[]string](t, b)} {
			if ok {
				read++
			}
		}
	}
	// What the appenders wrote is read fast (as documents of their own
	// type; an app's keys are unknown to a group and the other way round).
	for i, b := range seeds[:4] {
		if i < 2 && !sameAsUnmarshal[App](t, b) || i >= 2 && !sameAsUnmarshal[DeviceGroup](t, b) {
			t.Errorf("the fast reader did not read %s", b)
		}
	}
	if read != 7 {
		t.Errorf("fast readers read %d of the seeds, want 7 (5 documents, 2 lists)", read)
	}
	// getDoc falls back for what the fast reader leaves, with no trace of it.
	kv := MemKV{"k": []byte(`{"app_name":"x","app_id":1,"docker_image":"i","extra":true}`)}
	if app, _, err := getDoc[App](kv, []byte("k")); err != nil || !reflect.DeepEqual(app, App{Name: "x", Version: 1, AppSpec: events.AppSpec{DockerImage: "i"}}) {
		t.Fatalf("getDoc = %#v, %v", app, err)
	}
}

func FuzzDocumentDecoding(f *testing.F) {
	for _, b := range docSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsUnmarshal[App](t, b)
		sameAsUnmarshal[DeviceGroup](t, b)
		sameAsUnmarshal[[]string](t, b)
	})
}

// deviceSeeds are devices of the inventory, ordinary and odd.
