package projections

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events"
)

func ptr[T any](v T) *T { return &v }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func itoa(i int) string { return strconv.Itoa(i) }

// record is env encoded (encodeUnchecked) as the record at off.
func record(t testing.TB, off int64, env events.Envelope) events.Record {
	t.Helper()
	b, err := encodeUnchecked(env)
	if err != nil {
		t.Fatal(err)
	}
	return events.Record{Offset: off, Value: b}
}
