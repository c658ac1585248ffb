package kafkalog_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// TestReadOffsets: the records at the offsets asked for, in order, whether
// next to each other, a small gap apart (read through) or a large one
// (jumped); offsets past the log's end are skipped; fn stops it.
func TestReadOffsets(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{inProcess(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var envs []events.Envelope
	for i := range 3000 {
		envs = append(envs, events.Envelope{Type: events.AppDeleted, Aggregate: events.Aggregate{Kind: events.KindApp, Name: fmt.Sprint("app", i)},
			Actor: "t", Time: time.Now(), Payload: events.AppDeletedV{}})
		if len(envs) == 500 {
			if _, err := l.AppendBatch(ctx, envs); err != nil {
				t.Fatal(err)
			}
			envs = envs[:0]
		}
	}
	want := []int64{0, 1, 2, 40, 41, 700, 701, 2100, 2999}
	var got []int64
	err = l.ReadOffsets(ctx, append(slices.Clone(want), 3000, 5000), func(rec events.Record) bool {
		h, err := events.DecodeHead(rec.Value)
		if err != nil || h.Aggregate.Name != fmt.Sprint("app", rec.Offset) {
			t.Fatalf("offset %d holds %v (%v)", rec.Offset, h.Aggregate, err)
		}
		got = append(got, rec.Offset)
		return true
	})
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("read %v (%v), want %v", got, err, want)
	}
	got = nil
	err = l.ReadOffsets(ctx, want, func(rec events.Record) bool {
		got = append(got, rec.Offset)
		return len(got) < 4
	})
	if err != nil || !slices.Equal(got, want[:4]) {
		t.Fatalf("stopped after 4: %v (%v)", got, err)
	}
}
