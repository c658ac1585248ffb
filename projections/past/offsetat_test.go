package past_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/past"
)

// TestOffsetAtUsesTheTimeIndex (issue 20): OffsetAt reads the
// projection's time index (the latest event time of every record, a
// binary search) and answers exactly what reading the whole log from its
// start answers (the last event before the first one after t): for every
// event's time, a nanosecond and a millisecond either side, before and
// after the log; with events sharing a millisecond, events out of time
// order (a manager's clock behind), and records restored with their
// original timestamps.
//
// Each with the in-memory index of every 1,024th record (none here), of
// every 16th and of every 100th; and an index that saw another store's
// records (the same offsets, other times) answers as a fresh one.
func TestOffsetAtUsesTheTimeIndex(t *testing.T) {
	b := testenv.StartBroker(t, "")
	ctx := testenv.Context(t, 2*time.Minute)
	// Recent times (the client times a record out from its timestamp, and
	// imported records keep theirs); appended, they are older still.
	base := time.Now().UTC().Add(-2 * time.Second).Truncate(time.Millisecond)
	l, store, times := offsetAtLog(t, ctx, b.Addr(), "events", base, 370*time.Microsecond)
	// Another log of as many records, its times 2.5 times as far apart.
	_, other, _ := offsetAtLog(t, ctx, b.Addr(), "other", base, 925*time.Microsecond)
	// The answer of a scan from the start: the log read once (a scan of
	// it for each of the hundreds of probes took minutes under -race).
	type head struct {
		off int64
		at  time.Time
	}
	var heads []head
	var decodeErr error
	if err := l.Scan(ctx, 0, func(rec events.Record) bool {
		h, err := events.DecodeHead(rec.Value)
		if err != nil {
			decodeErr = fmt.Errorf("offset %d: %w", rec.Offset, err)
			return false
		}
		heads = append(heads, head{rec.Offset, h.Time})
		return true
	}); err != nil || decodeErr != nil {
		t.Fatal(err, decodeErr)
	}
	if len(heads) != len(times) {
		t.Fatalf("the scan read %d records, %d were appended", len(heads), len(times))
	}
	scan := func(at time.Time) int64 {
		off := int64(-1)
		for _, h := range heads {
			if h.at.After(at) {
				break
			}
			off = h.off
		}
		return off
	}
	probes := []time.Time{base.Add(-time.Hour), base.Add(-time.Nanosecond), time.Now().Add(time.Hour)}
	for i, at := range times {
		if i%4 != 0 && i%50 != 49 && i%40 != 7 {
			continue // every 4th, and every unusual one
		}
		probes = append(probes, at, at.Add(time.Nanosecond), at.Add(-time.Nanosecond), at.Add(time.Millisecond), at.Add(-time.Millisecond))
	}
	// An index of the other store's records, then asked of this one.
	sw := &switched{Store: other}
	misled := past.NewStrided(sw, 16)
	for _, at := range probes {
		if _, err := misled.OffsetAt(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	sw.Store = store
	for _, c := range []struct {
		name string
		p    *past.Past
	}{{"stride 1024", past.New(store)}, {"stride 16", past.NewStrided(store, 16)}, {"stride 100", past.NewStrided(store, 100)}, {"misled", misled}} {
		for _, at := range probes {
			got, err := c.p.OffsetAt(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			if want := scan(at); got != want {
				t.Fatalf("%s: at %s: offset %d, a scan from the start says %d", c.name, at.Format(time.RFC3339Nano), got, want)
			}
		}
	}
}

// switched is a store whose records change under a Past.
type switched struct{ past.Store }

// offsetAtLog appends 300 app creations to topic, their times step apart
// from base with some out of order and some alike, a third of them as an
// import restores them, and folds them into a store.
func offsetAtLog(t *testing.T, ctx context.Context, addr, topic string, base time.Time, step time.Duration) (*kafkalog.Log, *projections.Store, []time.Time) {
	l, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{addr}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var times []time.Time
	for i := range 300 {
		at := base.Add(time.Duration(i) * step) // 370 µs: 2 or 3 events per millisecond
		switch {
		case i%50 == 49:
			at = at.Add(-20 * time.Millisecond) // out of order
		case i%40 == 7:
			at = times[len(times)-1] // the same time as the one before
		}
		times = append(times, at)
		env := events.Envelope{Type: events.AppCreated, Aggregate: events.Aggregate{Kind: events.KindApp, Name: fmt.Sprint("app", i)},
			Actor: "t", Time: at, Payload: events.AppCreatedV{Spec: events.NewAppSpec("nginx")}}
		if i%3 == 0 {
			// As an import restores a record: its original timestamp,
			// the event's time.
			value, err := events.Encode(env)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.AppendRecords(ctx, []events.Record{{Value: value, Timestamp: at}}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := l.Append(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	// The projection of the log, folded by the projector.
	store, err := projections.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := projections.Rebuild(ctx, store, l, func(from int64) (projections.RecordReader, error) { return l.NewReader(from) }); err != nil {
		t.Fatal(err)
	}
	if store.Applied() != int64(len(times)-1) {
		t.Fatalf("folded up to %d of %d records", store.Applied(), len(times))
	}
	return l, store, times
}
