package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// fleetRecords is a fleet's device events over two partitions, in the
// order a fetch holds them: full reports (devices changing version and
// group), heartbeats (some late), status events, and redeliveries.
func fleetRecords(t *testing.T, n int) []events.Record {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 21))
	t0 := time.Now().Add(-20 * time.Minute).UTC().Truncate(time.Second)
	next := map[int32]int64{}
	var recs []events.Record
	var sent [][]byte
	for i := range n {
		dev := fmt.Sprintf("dev-%03d", rng.IntN(150))
		group := fmt.Sprintf("group-%d", rng.IntN(3))
		at := t0.Add(time.Duration(i) * 500 * time.Millisecond)
		ev := events.DeviceEvent{ID: fmt.Sprint("ev-", i), DeviceID: dev, DeviceGroup: group, Time: at}
		switch k := rng.IntN(10); {
		case k < 3:
			ev.Type = events.DeviceReported
			ev.Report = &events.Report{DeviceID: dev, DeviceGroup: group, Hostname: "host-" + dev, AppliedVersion: int64(rng.IntN(3)),
				AppsStatus: []events.AppStatus{{Name: "web", Version: 1, Status: events.AppStatusRunning, Running: 1, Expected: 1}}}
		case k < 8:
			ev.Type, ev.Version = events.DeviceHeartbeat, int64(rng.IntN(3))
			if k == 7 {
				ev.Time = at.Add(-2 * time.Minute) // late
			}
		case k == 8:
			ev.Type = []string{events.DeviceOnline, events.DeviceSilent, events.DeviceConverged, events.DeviceFailed}[rng.IntN(4)]
			ev.Version, ev.Detail = 2, "pull refused"
		default:
			if len(sent) > 0 { // an event again
				b := sent[rng.IntN(len(sent))]
				p := int32(rng.IntN(2))
				recs = append(recs, events.Record{Partition: p, Offset: next[p], Value: b})
				next[p]++
				continue
			}
			ev.Type = events.DeviceOnline
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, b)
		p := int32(rng.IntN(2))
		recs = append(recs, events.Record{Partition: p, Offset: next[p], Value: b})
		next[p]++
	}
	return recs
}

// openOnDisk opens a store in a new directory, closed with the test.
func openOnDisk(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// contents is every entry of the store: key, value, and whether it
// expires.
func contents(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().KeyCopy(nil))] = fmt.Sprintf("%q expires:%v", v, it.Item().ExpiresAt() != 0)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// oneByOne is the store after folding recs one record per Apply.
func oneByOne(t *testing.T, recs []events.Record) map[string]string {
	t.Helper()
	s := openOnDisk(t)
	for _, r := range recs {
		if err := s.Apply([]events.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	return contents(t, s)
}

func sameContents(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%q: %s, want %s", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%q: %s, not in a one-by-one fold", k, g)
		}
	}
}

// TestFoldRunsAheadOfTheCommit: the batch after one being committed is
// folded meanwhile, reading through that batch's writes, and the store
// ends as a fold of one record at a time ends.
func TestFoldRunsAheadOfTheCommit(t *testing.T) {
	recs := fleetRecords(t, 5*reportsPerTxn/2)
	s := openOnDisk(t)
	folds := make(chan struct{}, 16)
	s.afterFold = func() { folds <- struct{}{} }
	commits, folded := 0, 0
	s.beforeCommit = func() error {
		// The first two commits start once the batch after them is
		// folded: the fold runs while the batch before it commits.
		for commits++; commits < 3 && folded < commits+1; folded++ {
			select {
			case <-folds:
			case <-time.After(10 * time.Second):
				return errors.New("the next batch was not folded while this one waited for its commit")
			}
		}
		return nil
	}
	if err := s.Apply(recs); err != nil {
		t.Fatal(err)
	}
	if commits != 3 {
		t.Fatalf("%d commits, want 3", commits)
	}
	sameContents(t, contents(t, s), oneByOne(t, recs))
}

// TestFailedCommitStopsTheBatchesAfter: a failed commit leaves the store
// at the batch before it, the batch folded behind it is not committed,
// Apply returns the error, and applying the records again ends as a fold
// of one record at a time ends.
func TestFailedCommitStopsTheBatchesAfter(t *testing.T) {
	recs := fleetRecords(t, 5*reportsPerTxn/2)
	s := openOnDisk(t)
	var commits atomic.Int32
	refused := errors.New("disk full")
	s.beforeCommit = func() error {
		if commits.Add(1) == 2 {
			return refused
		}
		return nil
	}
	if err := s.Apply(recs); !errors.Is(err, refused) {
		t.Fatalf("Apply: %v, want %v", err, refused)
	}
	if n := commits.Load(); n != 2 {
		t.Fatalf("%d commits tried, want 2 (none after the failed one)", n)
	}
	// The store holds the first batch: its records, and its offsets.
	if next, err := s.Offsets(); err != nil || next[0]+next[1] != reportsPerTxn {
		t.Fatalf("offsets after the failed commit: %v %v; want %d records", next, err, reportsPerTxn)
	}
	sameContents(t, contents(t, s), oneByOne(t, recs[:reportsPerTxn]))
	s.beforeCommit = nil
	if err := s.Apply(recs); err != nil {
		t.Fatal(err)
	}
	sameContents(t, contents(t, s), oneByOne(t, recs))
}

// TestBatchReadsAsBadger: a batch reads its own writes as a Badger
// transaction reads its pending ones: deleted and expired entries are
// not there, and the last write of a key wins.
func TestBatchReadsAsBadger(t *testing.T) {
	s, err := Open("", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.Update(func(txn *badger.Txn) error {
		return errors.Join(txn.Set([]byte("a"), []byte("1")), txn.Set([]byte("b"), []byte("2")))
	}); err != nil {
		t.Fatal(err)
	}
	snap := s.db.NewTransaction(false)
	defer snap.Discard()
	b := s.newBatch(txnKV{snap})
	past := badger.NewEntry([]byte("c"), []byte("3"))
	past.ExpiresAt = uint64(time.Now().Add(-time.Second).Unix())
	b.delete([]byte("a"))
	b.set(badger.NewEntry([]byte("b"), []byte("x")))
	b.set(badger.NewEntry([]byte("b"), []byte("y")))
	b.set(past)
	for k, want := range map[string]string{"a": "", "b": "y", "c": ""} {
		v, _, found, err := b.get([]byte(k))
		if err != nil || found != (want != "") || !bytes.Equal(v, []byte(want)) {
			t.Errorf("%s: %q found %v %v; want %q", k, v, found, err, want)
		}
	}
	if b.count != 3 {
		t.Errorf("count %d, want 3 (a key written twice counts once)", b.count)
	}
}
