package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Errors of Decode. Both mean this code cannot read the record; neither is
// ever skipped silently.
var (
	// ErrUnknownType: the record names an event type this code does not
	// know, typically written by a newer Nebula.
	ErrUnknownType = errors.New("unknown event type")
	// ErrNewerSchema: the payload's schema is newer than this code.
	ErrNewerSchema = errors.New("event schema newer than this build")
)

// MaxRecordSize bounds an encoded envelope. Specs are small; a record this
// big is a bug or an attack.
const MaxRecordSize = 512 << 10

// wire is the JSON form of an envelope in a record's value.
type wire struct {
	Type      Type            `json:"type"`
	Schema    int             `json:"schema"`
	Aggregate Aggregate       `json:"aggregate"`
	Actor     string          `json:"actor,omitempty"`
	CommandID string          `json:"command_id,omitempty"`
	Time      time.Time       `json:"time"`
	IfVersion int64           `json:"if_version,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// Encode validates env and returns its wire form, stamped with the current
// schema of its type.
func Encode(env Envelope) ([]byte, error) {
	if err := env.Validate(); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", env.Type, err)
	}
	b, err := json.Marshal(wire{
		Type: env.Type, Schema: catalogue[env.Type].schema, Aggregate: env.Aggregate,
		Actor: env.Actor, CommandID: env.CommandID, Time: env.Time.UTC(), IfVersion: env.IfVersion,
		Payload: payload,
	})
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %s %q encodes to %d bytes, the limit is %d", ErrInvalid, env.Type, env.Aggregate.Name, len(b), MaxRecordSize)
	}
	return b, nil
}

// Decode parses a record's value into an envelope, upcasting an old payload
// to the current schema. It rejects anything it cannot fully read: unknown
// fields, unknown types, newer schemas, a payload of the wrong shape. It does
// not judge the content (an invalid spec decodes; the fold rejects it).
func Decode(value []byte) (Envelope, error) {
	if len(value) > MaxRecordSize {
		return Envelope{}, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrInvalid, len(value), MaxRecordSize)
	}
	if env, ok := fastDecode(value); ok {
		return env, nil
	}
	return decodeGeneral(value)
}

// decodeGeneral is Decode through encoding/json: every event type, every
// schema, and the errors.
func decodeGeneral(value []byte) (Envelope, error) {
	var w wire
	if err := strictUnmarshal(value, &w); err != nil {
		return Envelope{}, fmt.Errorf("%w: envelope: %w", ErrInvalid, err)
	}
	ent, ok := catalogue[w.Type]
	if !ok {
		return Envelope{}, fmt.Errorf("%w %q", ErrUnknownType, w.Type)
	}
	switch {
	case w.Schema < 1:
		return Envelope{}, fmt.Errorf("%w: %s has schema %d", ErrInvalid, w.Type, w.Schema)
	case w.Schema > ent.schema:
		return Envelope{}, fmt.Errorf("%w: %s schema %d, this build reads up to %d", ErrNewerSchema, w.Type, w.Schema, ent.schema)
	}
	if w.Aggregate.Kind != ent.kind {
		return Envelope{}, fmt.Errorf("%w: %s on aggregate kind %q, expected %q", ErrInvalid, w.Type, w.Aggregate.Kind, ent.kind)
	}
	if len(w.Payload) == 0 {
		return Envelope{}, fmt.Errorf("%w: %s has no payload", ErrInvalid, w.Type)
	}
	raw := w.Payload
	for v := w.Schema; v < ent.schema; v++ {
		up, ok := ent.upcast[v]
		if !ok {
			return Envelope{}, fmt.Errorf("%w: no upcaster for %s schema %d", ErrInvalid, w.Type, v)
		}
		var err error
		if raw, err = up(raw); err != nil {
			return Envelope{}, fmt.Errorf("%w: upcast %s from schema %d: %w", ErrInvalid, w.Type, v, err)
		}
	}
	p := ent.new()
	if err := strictUnmarshal(raw, p); err != nil {
		return Envelope{}, fmt.Errorf("%w: %s payload: %w", ErrInvalid, w.Type, err)
	}
	return Envelope{
		Type: w.Type, Aggregate: w.Aggregate, Actor: w.Actor, CommandID: w.CommandID,
		Time: w.Time, IfVersion: w.IfVersion, Payload: deref(p), Schema: w.Schema,
	}, nil
}

// deref turns the *T the catalogue allocates into the T callers switch on.
func deref(p Payload) Payload {
	switch v := p.(type) {
	case *AppCreatedV:
		return *v
	case *AppReplacedV:
		return *v
	case *AppPatchedV:
		return *v
	case *AppStoppedV:
		return *v
	case *AppStartedV:
		return *v
	case *AppRestartedV:
		return *v
	case *AppDeletedV:
		return *v
	case *DeviceGroupCreatedV:
		return *v
	case *DeviceGroupReplacedV:
		return *v
	case *DeviceGroupPatchedV:
		return *v
	case *DeviceGroupDeletedV:
		return *v
	case *DeviceGroupPrunedV:
		return *v
	case *RolloutDecidedV:
		return *v
	case *FleetPrunedV:
		return *v
	case *CronJobCreatedV:
		return *v
	case *CronJobReplacedV:
		return *v
	case *CronJobPatchedV:
		return *v
	case *CronJobDeletedV:
		return *v
	case *UserCreatedV:
		return *v
	case *UserUpdatedV:
		return *v
	case *UserTokenRefreshedV:
		return *v
	case *UserDeletedV:
		return *v
	case *UserGroupCreatedV:
		return *v
	case *UserGroupUpdatedV:
		return *v
	case *UserGroupDeletedV:
		return *v
	case *LogCheckpointedV:
		return *v
	}
	panic(fmt.Sprintf("events: catalogue constructor returned unhandled %T", p))
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// upcaster lifts a payload one schema version.
type upcaster func(json.RawMessage) (json.RawMessage, error)

// upcastAppV1 lifts app payloads from schema 1, the shape of a Nebula 2.7
// app document (as an import of an original Nebula database writes it), to
// schema 2: env_vars becomes an object of strings (2.7 also stored a list of
// "K=V" and non-string values), and containers_per keeps one key, with the
// "mem" alias renamed to "memory" (2.7 let the last of several keys win).
func upcastAppV1(raw json.RawMessage) (json.RawMessage, error) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(raw, &outer); err != nil {
		return nil, err
	}
	for _, key := range []string{"spec", "patch"} {
		body, ok := outer[key]
		if !ok {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if env, ok := fields["env_vars"]; ok {
			norm, err := normalizeEnvV1(env)
			if err != nil {
				return nil, fmt.Errorf("env_vars: %w", err)
			}
			fields["env_vars"] = norm
		}
		if cp, ok := fields["containers_per"]; ok {
			norm, err := normalizeContainersPerV1(cp)
			if err != nil {
				return nil, fmt.Errorf("containers_per: %w", err)
			}
			fields["containers_per"] = norm
		}
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, err
		}
		outer[key] = b
	}
	return json.Marshal(outer)
}

func normalizeEnvV1(raw json.RawMessage) (json.RawMessage, error) {
	out := map[string]string{}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		for _, kv := range list {
			k, v, _ := bytes.Cut([]byte(kv), []byte("="))
			out[string(k)] = string(v)
		}
		return json.Marshal(out)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("neither an object nor a list of K=V strings")
	}
	for k, v := range m {
		var s string
		switch {
		case json.Unmarshal(v, &s) == nil:
		case string(v) == "true", string(v) == "false":
			// docker-py formatted Python booleans as True/False.
			s = map[string]string{"true": "True", "false": "False"}[string(v)]
		case string(v) == "null":
			s = ""
		default:
			if _, err := strconv.ParseFloat(string(v), 64); err != nil {
				return nil, fmt.Errorf("value of %q is neither a string, a number nor a boolean", k)
			}
			s = string(v)
		}
		out[k] = s
	}
	return json.Marshal(out)
}

func normalizeContainersPerV1(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var key string
	var val json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key = tok.(string)
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
	}
	if key == "" {
		return nil, errors.New("empty object")
	}
	if key == "mem" {
		key = PerMemory
	}
	return json.Marshal(map[string]json.RawMessage{key: val})
}
