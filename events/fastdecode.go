package events

import (
	"strconv"
	"time"
	"unicode/utf8"
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
	l := lexer{b: value}
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
	l.object(func(k []byte) {
		switch string(k) {
		case "type":
			typ = Type(l.str())
			ent, ok = catalogue[typ]
			l.fail(!ok)
		case "schema":
			schema = int(l.int())
		case "aggregate":
			l.object(func(k []byte) {
				switch string(k) {
				case "kind":
					agg.Kind = Kind(l.str())
				case "name":
					agg.Name = l.str()
				default:
					l.bad = true
				}
			})
		case "actor":
			actor = l.str()
		case "command_id":
			commandID = l.str()
		case "time":
			start := l.pos()
			l.str()
			if !l.bad && at.UnmarshalJSON(value[start:l.i]) != nil {
				l.bad = true
			}
		case "if_version":
			ifVersion = l.int()
		case "payload":
			// The payload's shape depends on the type and its schema:
			// read it now if they came first (as Encode writes them),
			// after them otherwise (as in sorted, indented records).
			if typ != "" && schema != 0 {
				l.fail(schema != ent.schema)
				payload = l.payload(typ)
			} else {
				later[0] = l.pos()
				l.skip(0)
				later[1] = l.i
			}
		default:
			l.bad = true
		}
	})
	if later != [2]int{} && !l.bad && schema == ent.schema {
		sub := lexer{b: value[:later[1]], i: later[0]}
		payload = sub.payload(typ)
		l.fail(sub.bad || !sub.end())
	}
	if l.bad || !l.end() || payload == nil || agg.Kind != ent.kind {
		return Envelope{}, false
	}
	return Envelope{Type: typ, Aggregate: agg, Actor: actor, CommandID: commandID,
		Time: at, IfVersion: ifVersion, Payload: payload, Schema: schema}, true
}

// payload reads the payload of the event types the fast path covers.
func (l *lexer) payload(typ Type) Payload {
	if l.bad {
		return nil
	}
	switch typ {
	case AppCreated:
		var p AppCreatedV
		l.specPayload(func() { p.Spec = l.appSpec() }, &p.RevertOf)
		return p
	case AppReplaced:
		var p AppReplacedV
		l.specPayload(func() { p.Spec = l.appSpec() }, &p.RevertOf)
		return p
	case AppPatched:
		var p AppPatchedV
		l.object(func(k []byte) {
			l.fail(string(k) != "patch")
			p.Patch = l.appPatch()
		})
		return p
	case DeviceGroupCreated:
		var p DeviceGroupCreatedV
		l.specPayload(func() { p.Spec = l.groupSpec() }, &p.RevertOf)
		return p
	case DeviceGroupReplaced:
		var p DeviceGroupReplacedV
		l.specPayload(func() { p.Spec = l.groupSpec() }, &p.RevertOf)
		return p
	case DeviceGroupPatched:
		var p DeviceGroupPatchedV
		l.object(func(k []byte) {
			l.fail(string(k) != "patch")
			l.object(func(k []byte) {
				switch string(k) {
				case "apps":
					p.Patch.Apps = ptrTo(l.strings())
				case "cron_jobs":
					p.Patch.CronJobs = ptrTo(l.strings())
				default:
					l.bad = true
				}
			})
		})
		return p
	case AppStopped, AppStarted, AppRestarted, AppDeleted, DeviceGroupDeleted, DeviceGroupPruned:
		// No fields: only {} is read here.
		l.object(func([]byte) { l.bad = true })
		return deref(catalogue[typ].new())
	}
	l.bad = true
	return nil
}

// skip reads over any value the fast path could read, to come back to it.
func (l *lexer) skip(depth int) {
	switch l.fail(depth > 32); l.peek() {
	case '{':
		l.objectAnyKey(func(string) { l.skip(depth + 1) })
	case '[':
		l.array(func() { l.skip(depth + 1) })
	case '"':
		l.str()
	case 't', 'f':
		l.bool()
	default:
		l.number()
	}
}

// specPayload reads {"spec": ..., "revert_of": n}.
func (l *lexer) specPayload(spec func(), revertOf **int64) {
	l.object(func(k []byte) {
		switch string(k) {
		case "spec":
			spec()
		case "revert_of":
			*revertOf = ptrTo(l.int())
		default:
			l.bad = true
		}
	})
}

func (l *lexer) appSpec() AppSpec {
	var s AppSpec
	l.object(func(k []byte) {
		switch string(k) {
		case "docker_image":
			s.DockerImage = l.str()
		case "starting_ports":
			s.StartingPorts = l.ports()
		case "containers_per":
			s.ContainersPer = l.containersPer()
		case "env_vars":
			s.EnvVars = l.stringMap()
		case "running":
			s.Running = l.bool()
		case "networks":
			s.Networks = l.strings()
		case "volumes":
			s.Volumes = l.strings()
		case "devices":
			s.Devices = l.strings()
		case "privileged":
			s.Privileged = l.bool()
		case "rolling_restart":
			s.RollingRestart = l.bool()
		default:
			l.bad = true
		}
	})
	return s
}

func (l *lexer) appPatch() AppPatch {
	var p AppPatch
	l.object(func(k []byte) {
		switch string(k) {
		case "docker_image":
			p.DockerImage = ptrTo(l.str())
		case "starting_ports":
			p.StartingPorts = ptrTo(l.ports())
		case "containers_per":
			p.ContainersPer = ptrTo(l.containersPer())
		case "env_vars":
			p.EnvVars = ptrTo(l.stringMap())
		case "running":
			p.Running = ptrTo(l.bool())
		case "networks":
			p.Networks = ptrTo(l.strings())
		case "volumes":
			p.Volumes = ptrTo(l.strings())
		case "devices":
			p.Devices = ptrTo(l.strings())
		case "privileged":
			p.Privileged = ptrTo(l.bool())
		case "rolling_restart":
			p.RollingRestart = ptrTo(l.bool())
		default:
			l.bad = true
		}
	})
	return p
}

func (l *lexer) groupSpec() DeviceGroupSpec {
	var s DeviceGroupSpec
	l.object(func(k []byte) {
		switch string(k) {
		case "apps":
			s.Apps = l.strings()
		case "cron_jobs":
			s.CronJobs = l.strings()
		default:
			l.bad = true
		}
	})
	return s
}

// ports reads starting_ports as PortSpec.UnmarshalJSON does, for plain
// decimal ports only.
func (l *lexer) ports() []PortSpec {
	ps := []PortSpec{}
	l.array(func() {
		if l.peek() != '{' {
			ps = append(ps, PortSpec{Port: int(l.int())})
			return
		}
		pairs := []PortPair{}
		l.object(func(k []byte) {
			host := digits(k)
			var container int64 = -1
			if l.peek() == '"' {
				container = digits([]byte(l.str()))
			} else {
				container = l.int()
			}
			l.fail(host < 0 || container < 0)
			pairs = append(pairs, PortPair{Host: int(host), Container: int(container)})
		})
		ps = append(ps, PortSpec{Map: pairs})
	})
	return ps
}

// containersPer reads {"<kind>": number} with exactly one key.
func (l *lexer) containersPer() ContainersPer {
	var c ContainersPer
	n := 0
	l.object(func(k []byte) {
		n++
		c.Kind = string(k)
		lit := l.number()
		v, err := strconv.ParseFloat(string(lit), 64)
		l.fail(err != nil)
		c.Value = v
	})
	l.fail(n != 1)
	return c
}

func (l *lexer) stringMap() map[string]string {
	m := map[string]string{}
	l.objectAnyKey(func(k string) {
		if _, dup := m[k]; dup {
			l.bad = true
		}
		m[k] = l.str()
	})
	return m
}

func (l *lexer) strings() []string {
	s := []string{}
	l.array(func() { s = append(s, l.str()) })
	return s
}

func ptrTo[T any](v T) *T { return &v }

// digits parses a non-empty run of ASCII digits (what strconv.Atoi reads
// the same way everywhere), or returns -1.
func digits(b []byte) int64 {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// lexer reads JSON from b. Any construct it does not handle sets bad; once
// bad, every method returns zero values and consumes nothing more.
type lexer struct {
	b   []byte
	i   int
	bad bool
}

func (l *lexer) fail(cond bool) {
	if cond {
		l.bad = true
	}
}

func (l *lexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

// peek returns the next byte that is not white space, 0 at the end.
func (l *lexer) peek() byte {
	l.ws()
	if l.bad || l.i >= len(l.b) {
		return 0
	}
	return l.b[l.i]
}

func (l *lexer) pos() int {
	l.ws()
	return l.i
}

// end reports whether only white space is left.
func (l *lexer) end() bool {
	l.ws()
	return l.i == len(l.b)
}

func (l *lexer) expect(c byte) {
	if l.peek() != c {
		l.bad = true
		return
	}
	l.i++
}

// object reads an object whose keys are struct field names: a key with an
// escape or met twice sets bad. field must read the value.
func (l *lexer) object(field func(key []byte)) {
	var seen [16][]byte
	n := 0
	l.members(func() {
		k := l.plainString()
		for _, s := range seen[:min(n, len(seen))] {
			if string(s) == string(k) {
				l.bad = true
			}
		}
		if n == len(seen) {
			l.bad = true
		}
		if l.bad {
			return
		}
		seen[n] = k
		n++
		l.expect(':')
		if !l.bad {
			field(k)
		}
	})
}

// objectAnyKey reads an object whose keys are data (a map).
func (l *lexer) objectAnyKey(field func(key string)) {
	l.members(func() {
		k := l.str()
		l.expect(':')
		if !l.bad {
			field(k)
		}
	})
}

func (l *lexer) members(member func()) {
	l.expect('{')
	if l.peek() == '}' {
		l.i++
		return
	}
	for !l.bad {
		member()
		switch l.peek() {
		case ',':
			l.i++
		case '}':
			l.i++
			return
		default:
			l.bad = true
		}
	}
}

func (l *lexer) array(elem func()) {
	l.expect('[')
	if l.peek() == ']' {
		l.i++
		return
	}
	for !l.bad {
		elem()
		switch l.peek() {
		case ',':
			l.i++
		case ']':
			l.i++
			return
		default:
			l.bad = true
		}
	}
}

// plainString reads a string without escapes and returns its bytes (a
// view of the input, for keys).
func (l *lexer) plainString() []byte {
	if l.peek() != '"' {
		l.bad = true
		return nil
	}
	start := l.i + 1
	for j := start; j < len(l.b); j++ {
		switch c := l.b[j]; {
		case c == '"':
			l.i = j + 1
			return l.b[start:j]
		case c == '\\' || c < 0x20 || c >= 0x80:
			l.bad = true
			return nil
		}
	}
	l.bad = true
	return nil
}

// str reads a string. Invalid UTF-8 (which encoding/json replaces) and
// surrogate escapes set bad.
func (l *lexer) str() string {
	if l.peek() != '"' {
		l.bad = true
		return ""
	}
	start := l.i + 1
	ascii := true
	for j := start; j < len(l.b); j++ {
		switch c := l.b[j]; {
		case c == '"':
			s := l.b[start:j]
			if !ascii && !utf8.Valid(s) {
				l.bad = true
				return ""
			}
			l.i = j + 1
			return string(s)
		case c == '\\':
			return l.escaped(start)
		case c < 0x20:
			l.bad = true
			return ""
		case c >= 0x80:
			ascii = false
		}
	}
	l.bad = true
	return ""
}

// escaped reads the rest of a string holding escapes, from start (just
// after the opening quote).
func (l *lexer) escaped(start int) string {
	out := make([]byte, 0, 64)
	seg := start // start of the run of plain bytes not yet copied
	for j := start; j < len(l.b); j++ {
		c := l.b[j]
		switch {
		case c == '"':
			out = append(out, l.b[seg:j]...)
			if !utf8.Valid(out) {
				l.bad = true
				return ""
			}
			l.i = j + 1
			return string(out)
		case c < 0x20:
			l.bad = true
			return ""
		case c != '\\':
			continue
		}
		out = append(out, l.b[seg:j]...)
		if j+1 >= len(l.b) {
			break
		}
		j++
		switch l.b[j] {
		case '"', '\\', '/':
			out = append(out, l.b[j])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if j+4 >= len(l.b) {
				l.bad = true
				return ""
			}
			r, err := strconv.ParseUint(string(l.b[j+1:j+5]), 16, 32)
			if err != nil || (r >= 0xD800 && r < 0xE000) {
				l.bad = true // not hex, or a surrogate
				return ""
			}
			out = utf8.AppendRune(out, rune(r))
			j += 4
		default:
			l.bad = true
			return ""
		}
		seg = j + 1
	}
	l.bad = true
	return ""
}

// number reads a JSON number and returns its text.
func (l *lexer) number() []byte {
	l.ws()
	b, start := l.b, l.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	intStart := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == intStart || (b[intStart] == '0' && i-intStart > 1) {
		l.bad = true // no digits, or a leading zero
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		fracStart := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == fracStart {
			l.bad = true
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		l.bad = true // valid JSON, but rare: left to encoding/json
		return nil
	}
	l.i = i
	return b[start:i]
}

// int reads an integer into an int64 as encoding/json does.
func (l *lexer) int() int64 {
	lit := l.number()
	if l.bad {
		return 0
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	l.fail(err != nil)
	return n
}

func (l *lexer) bool() bool {
	l.ws()
	rest := l.b[l.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		l.i += 4
		return true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		l.i += 5
		return false
	}
	l.bad = true
	return false
}
