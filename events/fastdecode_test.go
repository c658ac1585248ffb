package events

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// fastTypes are the event types fastDecode reads itself.
var fastTypes = map[Type]bool{
	AppCreated: true, AppReplaced: true, AppPatched: true, AppStopped: true, AppStarted: true,
	AppRestarted: true, AppDeleted: true, DeviceGroupCreated: true, DeviceGroupReplaced: true,
	DeviceGroupPatched: true, DeviceGroupDeleted: true, DeviceGroupPruned: true,
}

// sameAsGeneral fails the test if fastDecode accepted b but the general
// path would have rejected it or returned something else.
func sameAsGeneral(t *testing.T, b []byte) bool {
	t.Helper()
	fast, ok := fastDecode(b)
	if !ok {
		return false
	}
	general, err := decodeGeneral(b)
	if err != nil {
		t.Fatalf("fast path accepted what the general path rejects (%v):\n%s", err, b)
	}
	if !reflect.DeepEqual(fast, general) {
		t.Fatalf("fast and general paths disagree on\n%s\nfast    %#v\ngeneral %#v", b, fast, general)
	}
	return true
}

// fastRead are records the fast path reads, in forms Encode never writes.
var fastRead = []string{
	// Escapes, non-ASCII, white space, keys in another order, revert_of.
	` { "payload" : {"spec":{"docker_image":"a\u00e9\n\t\"\\\/b","env_vars":{"URL":"x?a=1\u0026b=2","é":"ü","":""},"starting_ports":[8080,{"80":"8080","0443":443},{}],"containers_per":{"cpu":0.25},"networks":[],"running":true},"revert_of":7},
	   "type":"app.created","schema":2,"time":"2026-11-24T12:00:00.5+01:00","aggregate":{"name":"web","kind":"app"}} `,
	`{"type":"app.replaced","schema":2,"aggregate":{"kind":"app","name":"a"},"if_version":-3,"payload":{"spec":{"containers_per":{"memory":-0}}}}`,
	`{"type":"app.patched","schema":2,"aggregate":{"kind":"app","name":"a"},"payload":{"patch":{"env_vars":{},"starting_ports":[],"running":false,"containers_per":{"x":1}}}}`,
	`{"type":"app.patched","schema":2,"aggregate":{"kind":"app","name":"a"},"payload":{"patch":{"docker_image":"","privileged":true,"rolling_restart":false,"volumes":["v"],"devices":[],"networks":["n"]}}}`,
	`{"type":"app.patched","schema":2,"aggregate":{"kind":"app","name":"a"},"payload":{}}`,
	`{"type":"device_group.created","schema":1,"aggregate":{"kind":"device_group","name":"g"},"payload":{"spec":{"apps":["a","b"],"cron_jobs":[]}}}`,
	`{"type":"device_group.patched","schema":1,"aggregate":{"kind":"device_group","name":"g"},"payload":{"patch":{"cron_jobs":["c"]}}}`,
	`{"type":"device_group.pruned","schema":1,"aggregate":{"kind":"device_group","name":"g"},"payload":{}}`,
}

// fastLeft are records left to the general path: each has one thing the
// fast path does not read.
var fastLeft = []string{
	`{"type":"app.deleted","schema":1,"aggregate":{"kind":"app","name":"a"},"payload":null}`,
	`{"type":"app.patched","schema":2,"aggregate":{"kind":"app","name":"a"},"payload":{"patch":{"containers_per":{"x":1e0}}}}`,
	`{"type":"app.deleted","schema":1,"aggregate":{"kind":"app","name":"a"},"payload":{"x":1}}`,
	`{"type":"app.deleted","schema":1,"aggregate":{"kind":"app","name":"a","name":"b"},"payload":{}}`,
	`{"type":"app.deleted","schema":1,"aggregate":{"kind":"app","Name":"a"},"payload":{}}`,
	`{"type":"app.deleted","schema":1,"aggregate":{"kind":"app","name":"a"},"payload":{}}}`,
	`{"type":"app.deleted","schema":1,"aggregate":{"kind":"device_group","name":"a"},"payload":{}}`,
	`{"type":"app.created","schema":1,"aggregate":{"kind":"app","name":"a"},"payload":{"spec":{"env_vars":["A=1"]}}}`,
	`{"type":"app.created","schema":2,"aggregate":{"kind":"app","name":"a\ud83d\ude00"},"payload":{}}`,
	`{"type":"app.created","schema":2,"aggregate":{"kind":"app","name":"a"},"payload":{"spec":{"starting_ports":["80",{" 80":"+1"},{"1":1.5}]}}}`,
	`{"type":"app.created","schema":2,"aggregate":{"kind":"app","name":"a"},"payload":{"spec":{"env_vars":{"A":"1","A":"2"},"containers_per":{"cpu":1,"cpu":2}}}}`,
	"{\"type\":\"app.created\",\"schema\":2,\"aggregate\":{\"kind\":\"app\",\"name\":\"\xff\"},\"payload\":{}}",
	`{"type":"user.deleted","schema":1,"aggregate":{"kind":"user","name":"u"},"payload":{}}`,
}

func TestFastDecodeReadsWhatEncodeWrites(t *testing.T) {
	for _, env := range samples() {
		b, err := Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		if read := sameAsGeneral(t, b); read != fastTypes[env.Type] {
			t.Errorf("%s: fast path read it: %v, want %v", env.Type, read, fastTypes[env.Type])
		}
	}
	// The golden records of the current schemas are indented and sorted.
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		m := goldenName.FindStringSubmatch(filepath.Base(name))
		b, err := os.ReadFile(name)
		if err != nil || m == nil {
			t.Fatal(name, err)
		}
		typ := Type(m[1])
		want := fastTypes[typ] && m[2] == strconv.Itoa(SchemaOf(typ))
		if read := sameAsGeneral(t, b); read != want {
			t.Errorf("%s: fast path read it: %v, want %v", name, read, want)
		}
	}
}

func TestFastDecodeLeavesTheRestToEncodingJSON(t *testing.T) {
	for _, s := range fastRead {
		if !sameAsGeneral(t, []byte(s)) {
			t.Errorf("fast path did not read %s", s)
		}
	}
	for _, s := range fastLeft {
		if sameAsGeneral(t, []byte(s)) {
			t.Errorf("fast path read %s", s)
		}
		got, err := Decode([]byte(s))
		want, wantErr := decodeGeneral([]byte(s))
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(err, wantErr) {
			t.Errorf("Decode differs from the general path on %s: %v, %v", s, err, wantErr)
		}
	}
}

// addRecordSeeds seeds a fuzzer with what Encode writes, the golden
// records, and the fast path's hand-written cases.
func addRecordSeeds(f *testing.F) {
	for _, env := range samples() {
		b, _ := Encode(env)
		f.Add(b)
	}
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	for _, s := range append(fastRead, fastLeft...) {
		f.Add([]byte(s))
	}
}

// FuzzFastDecode: whatever the fast path accepts, the general path accepts
// and decodes to the same envelope.
func FuzzFastDecode(f *testing.F) {
	addRecordSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { sameAsGeneral(t, b) })
}

// FuzzPeek: when Peek reads a record's head and Decode accepts the record,
// they agree on the head.
func FuzzPeek(f *testing.F) {
	addRecordSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := Peek(b)
		env, err := Decode(b)
		if !ok || err != nil {
			return
		}
		want := env.Head()
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("Peek and Decode disagree on\n%s\npeek   %#v\ndecode %#v", b, h, want)
		}
	})
}

// TestPeekReadsEveryGoldenRecord: Peek reads what Encode writes and every
// golden record of every schema, as Decode does.
func TestPeekReadsEveryGoldenRecord(t *testing.T) {
	var records [][]byte
	for _, env := range samples() {
		b, err := Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, b)
	}
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no golden records")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, b)
	}
	for _, b := range records {
		env, err := Decode(b)
		if err != nil {
			continue // the golden records of invalid input
		}
		h, ok := Peek(b)
		if !ok || h != env.Head() {
			t.Fatalf("Peek(%s) = %#v, %v; Decode says %v %v %q %v", b, h, ok, env.Type, env.Aggregate, env.Actor, env.Time)
		}
	}
	for _, bad := range []string{`{"Type":"app.created"}`, `{"type":"a","type":"b"}`, `{"aggregate":{"kind":"app","Name":"x"}}`, `[]`, `{"time":"yesterday"}`} {
		if h, ok := Peek([]byte(bad)); ok {
			t.Errorf("Peek(%s) = %#v, want not ok", bad, h)
		}
	}
}
