package events

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var writeGolden = flag.Bool("golden-create", false, "write golden records that do not exist yet (never overwrites)")

func TestSamplesCoverCatalogue(t *testing.T) {
	seen := map[Type]bool{}
	for _, s := range samples() {
		seen[s.Type] = true
	}
	for _, typ := range Types() {
		if !seen[typ] {
			t.Errorf("no sample for %s", typ)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, env := range samples() {
		t.Run(string(env.Type), func(t *testing.T) {
			b, err := Encode(env)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			env.Schema = SchemaOf(env.Type)
			if !reflect.DeepEqual(got, env) {
				t.Fatalf("round trip changed the envelope:\n got %#v\nwant %#v", got, env)
			}
		})
	}
}

var goldenName = regexp.MustCompile(`^([a-z_]+\.[a-z_]+)\.v(\d+)\.json$`)

// TestGolden decodes every golden record: every schema version ever written
// must stay readable. Records of an old schema must decode to the same
// payload as the current-schema record of the same type.
func TestGolden(t *testing.T) {
	if *writeGolden {
		for _, env := range samples() {
			path := filepath.Join("testdata", fmt.Sprintf("%s.v%d.json", env.Type, SchemaOf(env.Type)))
			if _, err := os.Stat(path); err == nil {
				continue
			}
			b, err := Encode(env)
			if err != nil {
				t.Fatal(err)
			}
			var pretty map[string]any
			_ = json.Unmarshal(b, &pretty)
			out, _ := json.MarshalIndent(pretty, "", "  ")
			if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	current := map[Type]Envelope{}
	old := map[string]Envelope{}
	for _, f := range files {
		m := goldenName.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			t.Errorf("%s: golden files are named <type>.v<schema>.json", f)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		env, err := Decode(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		schema, _ := strconv.Atoi(m[2])
		if string(env.Type) != m[1] || env.Schema != schema {
			t.Errorf("%s decoded as %s schema %d", f, env.Type, env.Schema)
		}
		if err := env.Validate(); err != nil {
			t.Errorf("%s: decoded envelope is invalid: %v", f, err)
		}
		if schema == SchemaOf(env.Type) {
			current[env.Type] = env
		} else {
			old[f] = env
		}
	}
	for _, typ := range Types() {
		if _, ok := current[typ]; !ok {
			t.Errorf("no golden record for %s schema %d (run go test ./events -golden-create)", typ, SchemaOf(typ))
		}
	}
	if len(old) == 0 {
		t.Error("no golden record of an old schema: the upcasters are untested")
	}
	for f, env := range old {
		cur, ok := current[env.Type]
		if !ok {
			continue
		}
		if !reflect.DeepEqual(env.Payload, cur.Payload) {
			t.Errorf("%s upcasts to\n%#v\nbut the current-schema golden record holds\n%#v", f, env.Payload, cur.Payload)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	valid, err := Encode(samples()[0])
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		name  string
		value []byte
		want  error
		text  string
	}{
		{"not json", []byte("\x00\x01garbage"), ErrInvalid, "envelope"},
		{"empty", nil, ErrInvalid, "envelope"},
		{"trailing data", append(append([]byte{}, valid...), []byte(` {}`)...), ErrInvalid, "trailing"},
		{"unknown type", edit(func(m map[string]any) { m["type"] = "app.teleported" }), ErrUnknownType, "app.teleported"},
		{"newer schema", edit(func(m map[string]any) { m["schema"] = 99 }), ErrNewerSchema, "schema 99"},
		{"zero schema", edit(func(m map[string]any) { m["schema"] = 0 }), ErrInvalid, "schema 0"},
		{"wrong kind", edit(func(m map[string]any) { m["aggregate"] = map[string]any{"kind": "user", "name": "web"} }), ErrInvalid, "aggregate kind"},
		{"unknown envelope field", edit(func(m map[string]any) { m["extra"] = 1 }), ErrInvalid, "extra"},
		{"unknown payload field", edit(func(m map[string]any) { m["payload"].(map[string]any)["spec"].(map[string]any)["docker_ulimits"] = 1 }), ErrInvalid, "docker_ulimits"},
		{"payload wrong shape", edit(func(m map[string]any) { m["payload"] = []int{1} }), ErrInvalid, "payload"},
		{"no payload", edit(func(m map[string]any) { delete(m, "payload") }), ErrInvalid, "no payload"},
		{"too big", []byte(`{"type":"` + strings.Repeat("a", MaxRecordSize) + `"}`), ErrInvalid, "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.value)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("Decode error = %v, want %v containing %q", err, c.want, c.text)
			}
		})
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	t.Parallel()
	good := samples()[0]
	cases := map[string]func(e *Envelope){
		"bad name":         func(e *Envelope) { e.Aggregate.Name = "web app" },
		"kind mismatch":    func(e *Envelope) { e.Aggregate.Kind = KindCronJob },
		"payload mismatch": func(e *Envelope) { e.Payload = AppDeletedV{} },
		"invalid spec":     func(e *Envelope) { e.Payload = AppCreatedV{Spec: NewAppSpec("")} },
		"unknown type":     func(e *Envelope) { e.Type = "app.moved" },
		"empty patch":      func(e *Envelope) { e.Type, e.Payload = AppPatched, AppPatchedV{} },
		"fleet with a name": func(e *Envelope) {
			e.Type, e.Aggregate, e.Payload = FleetPruned, Aggregate{KindFleet, "x"}, FleetPrunedV{}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			env := good
			mutate(&env)
			if _, err := Encode(env); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Encode = %v, want ErrInvalid", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Add([]byte(`{"type":"app.created","schema":1,"aggregate":{"kind":"app","name":"a"},"payload":{"spec":{"env_vars":["A=1"],"containers_per":{"mem":1}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must survive validation without panicking, and
		// a valid envelope must round-trip.
		if env.Validate() != nil {
			return
		}
		out, err := Encode(env)
		if err != nil {
			t.Fatalf("valid decoded envelope does not encode: %v", err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		env.Schema = again.Schema
		if !reflect.DeepEqual(env, again) {
			t.Fatalf("round trip changed the envelope:\n%#v\n%#v", env, again)
		}
	})
}
