package events

import (
	"time"

	"github.com/nebula-orchestrator/nebula-go/internal/jsonlex"
)

// Head is what Peek reads of a record: enough to filter a scan of the log
// (history, time travel) before decoding the records it keeps.
type Head struct {
	Type      Type
	Aggregate Aggregate
	Actor     string
	Time      time.Time
}

// Peek reads a record's head without its payload. ok=false means it
// cannot tell (Decode can, or says why the record is invalid); when ok
// and Decode succeeds, Decode's envelope has the same head (upcasting
// changes payloads only). FuzzPeek checks that.
func Peek(value []byte) (h Head, ok bool) {
	l := jsonlex.New(value, 0)
	l.Object(func(k []byte) {
		switch string(k) {
		case "type":
			h.Type = Type(l.Str())
		case "aggregate":
			l.Object(func(k []byte) {
				switch string(k) {
				case "kind":
					h.Aggregate.Kind = Kind(l.Str())
				case "name":
					h.Aggregate.Name = l.Str()
				default:
					l.Fail(true)
				}
			})
		case "actor":
			h.Actor = l.Str()
		case "time":
			h.Time = l.Time()
		case "schema", "command_id", "if_version", "payload":
			l.Skip()
		default:
			l.Fail(true) // encoding/json would match it case-insensitively, or reject it
		}
	})
	if l.Bad() || !l.End() {
		return Head{}, false
	}
	return h, true
}

// DecodeHead returns a record's head: Peek's when it can read it (without
// checking the payload), Decode's otherwise, or Decode's error.
func DecodeHead(value []byte) (Head, error) {
	if len(value) <= MaxRecordSize {
		if h, ok := Peek(value); ok {
			return h, nil
		}
	}
	env, err := Decode(value)
	if err != nil {
		return Head{}, err
	}
	return env.Head(), nil
}

// Head returns the envelope's head.
func (e Envelope) Head() Head {
	return Head{Type: e.Type, Aggregate: e.Aggregate, Actor: e.Actor, Time: e.Time}
}
