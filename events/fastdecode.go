package events

import (
	"strconv"
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/jsonlex"
)

// The fast path of Decode. Replaying the log is mostly decoding, and
// encoding/json (a Decoder with DisallowUnknownFields, then a second pass
// over the payload) costs about 20 µs for one app event on the reference
// machine. fastDecode reads the records of the hot event types (apps and
// device groups, current schema) in one pass without reflection.
//
// It is a pure optimisation: it gives up (ok=false) on anything it does not
// fully understand (an unknown or repeated key, null, a surrogate escape,
// an old schema, an event type it does not cover, a key order that puts
// the payload before its type), and Decode then takes the general path.
// When it succeeds, the general path would have returned exactly the same
// envelope: FuzzFastDecode checks that on arbitrary input.

// fastDecode decodes value if it can; ok=false means "use the general
// path", never "invalid".
func fastDecode(value []byte) (env Envelope, ok bool) {
	l := jsonlex.New(value, 0)
	var (
		typ       Type
		ent       entry
		schema    int
		agg       Aggregate
		actor     string
		commandID string
		at        time.Time
		ifVersion int64
		payload   Payload
		later     [2]int // where the payload is, when it came before its type
	)
	l.Object(func(k []byte) {
		switch string(k) {
		case "type":
			typ = Type(l.StrOf(knownTypes))
			ent, ok = catalogue[typ]
			l.Fail(!ok)
		case "schema":
			schema = int(l.Int())
		case "aggregate":
			l.Object(func(k []byte) {
				switch string(k) {
				case "kind":
					agg.Kind = Kind(l.StrOf(knownKinds))
				case "name":
					agg.Name = l.Str()
				default:
					l.Fail(true)
				}
			})
		case "actor":
			actor = l.Str()
		case "command_id":
			commandID = l.Str()
		case "time":
			at = l.Time()
		case "if_version":
			ifVersion = l.Int()
		case "payload":
			// The payload's shape depends on the type and its schema:
			// read it now if they came first (as Encode writes them),
			// after them otherwise (as in sorted, indented records).
			if typ != "" && schema != 0 {
				l.Fail(schema != ent.schema)
				payload = readPayload(l, typ)
			} else {
				later[0] = l.Pos()
				l.Skip()
				later[1] = l.Offset()
			}
		default:
			l.Fail(true)
		}
	})
	if later != [2]int{} && !l.Bad() && schema == ent.schema {
		sub := jsonlex.New(value[:later[1]], later[0])
		payload = readPayload(sub, typ)
		l.Fail(sub.Bad() || !sub.End())
	}
	if l.Bad() || !l.End() || payload == nil || agg.Kind != ent.kind {
		return Envelope{}, false
	}
	return Envelope{Type: typ, Aggregate: agg, Actor: actor, CommandID: commandID,
		Time: at, IfVersion: ifVersion, Payload: payload, Schema: schema}, true
}

// knownTypes and knownKinds are the catalogue's types and the kinds of
// their aggregates, each as its one string: a record's type and kind are
// read into them, not into two new strings per record.
var knownTypes, knownKinds = func() (types, kinds map[string]string) {
	types, kinds = map[string]string{}, map[string]string{}
	for t, e := range catalogue {
		types[string(t)] = string(t)
		kinds[string(e.kind)] = string(e.kind)
	}
	return types, kinds
}()

// readPayload reads the payload of the event types the fast path covers.
func readPayload(l *jsonlex.Lexer, typ Type) Payload {
	if l.Bad() {
		return nil
	}
	switch typ {
	case AppCreated:
		var p AppCreatedV
		readSpecPayload(l, func() { p.Spec = readAppSpec(l) }, &p.RevertOf)
		return p
	case AppReplaced:
		var p AppReplacedV
		readSpecPayload(l, func() { p.Spec = readAppSpec(l) }, &p.RevertOf)
		return p
	case AppPatched:
		var p AppPatchedV
		l.Object(func(k []byte) {
			l.Fail(string(k) != "patch")
			p.Patch = readAppPatch(l)
		})
		return p
	case DeviceGroupCreated:
		var p DeviceGroupCreatedV
		readSpecPayload(l, func() { p.Spec = readGroupSpec(l) }, &p.RevertOf)
		return p
	case DeviceGroupReplaced:
		var p DeviceGroupReplacedV
		readSpecPayload(l, func() { p.Spec = readGroupSpec(l) }, &p.RevertOf)
		return p
	case DeviceGroupPatched:
		var p DeviceGroupPatchedV
		l.Object(func(k []byte) {
			l.Fail(string(k) != "patch")
			l.Object(func(k []byte) {
				switch string(k) {
				case "apps":
					p.Patch.Apps = ptrTo(l.Strings())
				case "cron_jobs":
					p.Patch.CronJobs = ptrTo(l.Strings())
				default:
					l.Fail(true)
				}
			})
		})
		return p
	case AppStopped, AppStarted, AppRestarted, AppDeleted, DeviceGroupDeleted, DeviceGroupPruned:
		// No fields: only {} is read here.
		l.Object(func([]byte) { l.Fail(true) })
		return deref(catalogue[typ].new())
	}
	l.Fail(true)
	return nil
}

// readSpecPayload reads {"spec": ..., "revert_of": n}.
func readSpecPayload(l *jsonlex.Lexer, spec func(), revertOf **int64) {
	l.Object(func(k []byte) {
		switch string(k) {
		case "spec":
			spec()
		case "revert_of":
			*revertOf = ptrTo(l.Int())
		default:
			l.Fail(true)
		}
	})
}

func readAppSpec(l *jsonlex.Lexer) AppSpec {
	var s AppSpec
	l.Object(func(k []byte) { l.Fail(!ReadAppSpecField(l, k, &s)) })
	return s
}

// ReadAppSpecField reads the value of the AppSpec field whose JSON key is
// key into s, a zero AppSpec being filled, and reports whether key is one.
// For readers of documents that hold an AppSpec's fields among their own
// (the projection's apps).
func ReadAppSpecField(l *jsonlex.Lexer, key []byte, s *AppSpec) bool {
	switch string(key) {
	case "starting_ports", "env_vars", "networks", "volumes", "devices":
		if l.Null() {
			return true // nil, as it is
		}
	}
	switch string(key) {
	case "docker_image":
		s.DockerImage = l.Str()
	case "starting_ports":
		s.StartingPorts = readPorts(l)
	case "containers_per":
		s.ContainersPer = readContainersPer(l)
	case "rolling_restart":
		s.RollingRestart = l.Bool()
	default:
		return readRunField(l, key, &s.RunSpec)
	}
	return true
}

// readRunField reads a RunSpec key (its nulls are handled by the caller).
func readRunField(l *jsonlex.Lexer, key []byte, r *RunSpec) bool {
	switch string(key) {
	case "env_vars":
		r.EnvVars = l.StringMap()
	case "running":
		r.Running = l.Bool()
	case "networks":
		r.Networks = l.Strings()
	case "volumes":
		r.Volumes = l.Strings()
	case "devices":
		r.Devices = l.Strings()
	case "privileged":
		r.Privileged = l.Bool()
	default:
		return false
	}
	return true
}

func readAppPatch(l *jsonlex.Lexer) AppPatch {
	var p AppPatch
	l.Object(func(k []byte) {
		switch string(k) {
		case "docker_image":
			p.DockerImage = ptrTo(l.Str())
		case "starting_ports":
			p.StartingPorts = ptrTo(readPorts(l))
		case "containers_per":
			p.ContainersPer = ptrTo(readContainersPer(l))
		case "rolling_restart":
			p.RollingRestart = ptrTo(l.Bool())
		default:
			l.Fail(!readRunPatchField(l, k, &p.RunPatch))
		}
	})
	return p
}

// readRunPatchField reads a RunPatch key.
func readRunPatchField(l *jsonlex.Lexer, key []byte, p *RunPatch) bool {
	switch string(key) {
	case "env_vars":
		p.EnvVars = ptrTo(l.StringMap())
	case "running":
		p.Running = ptrTo(l.Bool())
	case "networks":
		p.Networks = ptrTo(l.Strings())
	case "volumes":
		p.Volumes = ptrTo(l.Strings())
	case "devices":
		p.Devices = ptrTo(l.Strings())
	case "privileged":
		p.Privileged = ptrTo(l.Bool())
	default:
		return false
	}
	return true
}

func readGroupSpec(l *jsonlex.Lexer) DeviceGroupSpec {
	var s DeviceGroupSpec
	l.Object(func(k []byte) { l.Fail(!ReadDeviceGroupSpecField(l, k, &s)) })
	return s
}

// ReadDeviceGroupSpecField is ReadAppSpecField for a DeviceGroupSpec.
func ReadDeviceGroupSpecField(l *jsonlex.Lexer, key []byte, s *DeviceGroupSpec) bool {
	if (string(key) == "apps" || string(key) == "cron_jobs") && l.Null() {
		return true // nil, as it is
	}
	switch string(key) {
	case "apps":
		s.Apps = l.Strings()
	case "cron_jobs":
		s.CronJobs = l.Strings()
	default:
		return false
	}
	return true
}

// readPorts reads starting_ports as PortSpec.UnmarshalJSON does, for plain
// decimal ports only.
func readPorts(l *jsonlex.Lexer) []PortSpec {
	ps := []PortSpec{}
	l.Array(func() {
		if l.Peek() != '{' {
			ps = append(ps, PortSpec{Port: int(l.Int())})
			return
		}
		pairs := []PortPair{}
		l.Object(func(k []byte) {
			host := jsonlex.Digits(k)
			var container int64 = -1
			if l.Peek() == '"' {
				container = jsonlex.Digits([]byte(l.Str()))
			} else {
				container = l.Int()
			}
			l.Fail(host < 0 || container < 0)
			pairs = append(pairs, PortPair{Host: int(host), Container: int(container)})
		})
		ps = append(ps, PortSpec{Map: pairs})
	})
	return ps
}

// readContainersPer reads {"<kind>": number} with exactly one key.
func readContainersPer(l *jsonlex.Lexer) ContainersPer {
	var c ContainersPer
	n := 0
	l.Object(func(k []byte) {
		n++
		c.Kind = string(k)
		lit := l.Number()
		v, err := strconv.ParseFloat(string(lit), 64)
		l.Fail(err != nil)
		c.Value = v
	})
	l.Fail(n != 1)
	return c
}

func ptrTo[T any](v T) *T { return &v }
