package events

import (
	"fmt"
	"time"
)

// Kind is the kind of aggregate an event belongs to.
type Kind string

// Aggregate kinds. Their wire names never change.
const (
	KindApp         Kind = "app"
	KindDeviceGroup Kind = "device_group"
	KindCronJob     Kind = "cron_job"
	KindUser        Kind = "user"
	KindUserGroup   Kind = "user_group"
	// KindFleet is the aggregate of fleet-wide events (global prune). Its
	// aggregate name is always empty.
	KindFleet Kind = "fleet"
	// KindLog is the aggregate of the log's own events (checkpoints).
	// Its aggregate name is always empty.
	KindLog Kind = "log"
)

// Aggregate names the object an event is about.
type Aggregate struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name"`
}

func (a Aggregate) String() string {
	if a.Name == "" {
		return string(a.Kind)
	}
	return string(a.Kind) + " " + a.Name
}

// Envelope is one event as the log carries it. The log offset of the record
// holding it is its version; the envelope itself carries no offset because a
// writer does not know it before the broker assigns it.
type Envelope struct {
	Type      Type
	Aggregate Aggregate
	// Actor is who caused the event: a user name, "local-admin", or a
	// component name for events a process emits itself.
	Actor string
	// CommandID identifies the request that produced the event. Records
	// with a command ID already seen by the fold are duplicates and change
	// nothing.
	CommandID string
	Time      time.Time
	// IfVersion, when non-zero, is a precondition: the event is accepted
	// only if the aggregate's current version equals it (HTTP If-Match).
	IfVersion int64
	Payload   Payload
	// Schema is the schema version the payload was written with. Encode
	// ignores it and writes the current schema of Type; Decode sets it to
	// the version found in the record, before upcasting.
	Schema int
}

// Payload is the body of one event type.
type Payload interface {
	// EventType is the wire name of the event this payload belongs to.
	EventType() Type
}

// Validate checks the envelope's structure: a known type whose aggregate
// kind matches, a valid aggregate name and a payload of the right Go type.
// It does not look at any state.
func (e Envelope) Validate() error {
	ent, ok := catalogue[e.Type]
	if !ok {
		return fmt.Errorf("%w: unknown event type %q", ErrInvalid, e.Type)
	}
	if e.Aggregate.Kind != ent.kind {
		return fmt.Errorf("%w: event %s belongs to aggregate kind %q, not %q", ErrInvalid, e.Type, ent.kind, e.Aggregate.Kind)
	}
	if e.Payload == nil || e.Payload.EventType() != e.Type {
		return fmt.Errorf("%w: event %s carries a payload of another type (%T)", ErrInvalid, e.Type, e.Payload)
	}
	if err := ValidateName(e.Aggregate.Kind, e.Aggregate.Name); err != nil {
		return err
	}
	if v, ok := e.Payload.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%s %q: %w", e.Type, e.Aggregate.Name, err)
		}
	}
	return nil
}

// Record is one record of a topic as a reader returns it: of the event
// log (one partition), or of a partitioned topic (device events).
type Record struct {
	// Partition is the record's partition (0 in the event log).
	Partition int32
	// Offset is the record's position in its partition: in the event log,
	// the version of whatever the event it holds changed.
	Offset int64
	Key    []byte
	Value  []byte
	// CommandID is the command-ID header, if the record had one.
	CommandID string
	// Signature is the signature header (events/signing), if the record
	// had one.
	Signature []byte
	Timestamp time.Time
}

// LogIdentity names one event log: the cluster and the topic incarnation (a
// topic deleted and re-created has a new topic ID). A projection records
// the identity of the log it was built from and is rebuilt, never reused,
// when the log it reads has another.
type LogIdentity struct {
	ClusterID string `json:"cluster_id"`
	Topic     string `json:"topic"`
	TopicID   string `json:"topic_id"`
}
