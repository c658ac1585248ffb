package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// mixedLog returns n records of every kind of app and group event, with
// rejections (missing apps, names that exist, repeated command IDs, an
// invalid spec, a version precondition) and checkpoints, and the state
// they fold to one record at a time (the reference for batched folds).
func mixedLog(t *testing.T, n int, seed uint64) ([]events.Record, MemKV) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 1))
	ref := MemKV{}
	var recs []events.Record
	name := func(prefix string) string { return fmt.Sprintf("%s%d", prefix, rnd.IntN(60)) }
	for off := int64(0); off < int64(n); off++ {
		var env events.Envelope
		switch k := rnd.IntN(14); k {
		case 0, 1, 2:
			spec := events.NewAppSpec(fmt.Sprintf("registry.local/img:%d", off))
			spec.EnvVars = map[string]string{"N": fmt.Sprint(off), "URL": "a?b=1&c=<2>"}
			env = ev(events.KindApp, name("app"), events.AppCreatedV{Spec: spec})
		case 3, 4:
			env = ev(events.KindApp, name("app"), events.AppPatchedV{Patch: events.AppPatch{DockerImage: ptr(fmt.Sprintf("img:%d", off))}})
		case 5:
			env = ev(events.KindApp, name("app"), events.AppStoppedV{})
		case 6:
			env = ev(events.KindApp, name("app"), events.AppRestartedV{})
		case 7:
			env = ev(events.KindApp, name("app"), events.AppDeletedV{})
		case 8, 9:
			env = group(name("dg"), name("app"), name("app"))
		case 10:
			env = ev(events.KindDeviceGroup, name("dg"), events.DeviceGroupPatchedV{Patch: events.DeviceGroupPatch{Apps: ptr([]string{name("app")})}})
		case 11:
			if rnd.IntN(2) == 0 {
				env = ev(events.KindDeviceGroup, name("dg"), events.DeviceGroupDeletedV{})
			} else {
				env = ev(events.KindFleet, "", events.FleetPrunedV{})
			}
		case 12:
			// Invalid: containers_per zero; or a stale precondition.
			spec := events.NewAppSpec("nginx")
			spec.ContainersPer.Value = 0
			env = ev(events.KindApp, name("app"), events.AppReplacedV{Spec: spec})
			if rnd.IntN(2) == 0 {
				env = ev(events.KindApp, name("app"), events.AppStartedV{})
				env.IfVersion = off - 1
			}
		case 13:
			if off > 0 {
				covers := rnd.Int64N(off)
				head, _, _ := chainAt(ref, covers)
				if rnd.IntN(3) == 0 {
					head = make([]byte, 32) // a checkpoint of another log
				}
				env = ev(events.KindLog, "", events.LogCheckpointedV{Covers: covers, Head: hex.EncodeToString(head), KeyID: "k", Signature: strings.Repeat("ab", 64)})
			} else {
				env = app("first", "nginx")
			}
		}
		env.CommandID = fmt.Sprintf("cmd-%d", rnd.IntN(n)) // some repeat: duplicates
		if rnd.IntN(3) == 0 {
			env.CommandID = fmt.Sprintf("alice/%d", rnd.IntN(n)) // a client's key (recent.go)
		}
		rec := record(t, off, env)
		if _, err := Apply(ref, rec); err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		recs = append(recs, rec)
	}
	return recs, ref
}

// sliceReader serves recs from at in fetches of random sizes, each
// starting up to 20 records back (as a repeated fetch does).
type sliceReader struct {
	recs []events.Record
	at   int
	rnd  *rand.Rand
}

func (r *sliceReader) Fetch(ctx context.Context) ([]events.Record, error) {
	if r.at == len(r.recs) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	n := min(len(r.recs)-r.at, 1+r.rnd.IntN(400))
	from := max(0, r.at-r.rnd.IntN(20))
	out := r.recs[from : r.at+n]
	r.at += n
	return out, nil
}

func (r *sliceReader) Close() {}

// dump returns every key and value of the store but the ones only a
// store has (where it stands and what it was built from).
func dump(t *testing.T, s *Store) MemKV {
	t.Helper()
	out := MemKV{}
	err := s.db().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if bytes.Equal(k, keyApplied) || bytes.Equal(k, keyIdentity) || bytes.Equal(k, keyFoldVersion) {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(k)] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameKV compares two stores key by key, the versions (v/) version by
// version: a batch keeps a document's versions in one chunk, a record
// folded alone in one of its own.
func sameKV(t *testing.T, got, want MemKV) {
	t.Helper()
	got, want = splitChunks(t, got), splitChunks(t, want)
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("key %q: got %.300q, want %.300q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("key %q is in the store but not in the one-by-one fold", k)
		}
	}
}

// TestBatchedFoldEqualsOneByOne: the applier (batches of any size, folded
// in memory and committed in the background, through the key filter of a
// store built from empty, then without it after a reopen) writes exactly
// what folding one record at a time writes.
func TestBatchedFoldEqualsOneByOne(t *testing.T) {
	recs, ref := mixedLog(t, 3000, 7)
	accepted := 0
	for _, rec := range recs {
		if v, _, _ := (Reader{ref}).Verdict(rec.Offset); v.Accepted {
			accepted++
		}
	}
	if accepted < 600 || accepted > 2400 {
		t.Fatalf("the mixed log has %d accepted records of %d: not a mix", accepted, len(recs))
	}
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Reset(events.LogIdentity{ClusterID: "c", Topic: "t", TopicID: "x"}); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	half := len(recs) / 2
	for i := 0; i < half; {
		n := min(half-i, 1+rnd.IntN(400))
		// Overlap what was folded before, as a repeated fetch does.
		from := max(0, i-rnd.IntN(20))
		if _, err := s.ApplyBatch(recs[from : i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	if s.filter == nil {
		t.Fatal("a store built from empty has no key filter")
	}
	s.Close()

	s = openStore(t, dir)
	if s.filter != nil {
		t.Fatal("a reopened store claims to know all its keys")
	}
	if s.Applied() != int64(half-1) {
		t.Fatalf("reopened at %d, want %d", s.Applied(), half-1)
	}
	// The rest through the projector's path: fetches read ahead (decoded,
	// chained), one applier.
	chained, head, err := s.ChainHead()
	if err != nil || chained != int64(half-1) {
		t.Fatalf("chain head at %d (%v)", chained, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next, stop := readAhead(ctx, &sliceReader{recs: recs, at: half, rnd: rnd}, chainState{chained, head}, nil)
	a := s.newApplier(true)
	for a.folded < int64(len(recs)-1) {
		f, err := receive(ctx, next)
		if err == nil {
			err = a.apply(f.recs, f.decoded)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if len(a.results) != len(recs)-half || s.Applied() != int64(len(recs)-1) {
		t.Fatalf("%d results, applied %d", len(a.results), s.Applied())
	}
	sameKV(t, dump(t, s), ref)
}

func TestKeyFilter(t *testing.T) {
	f := newKeyFilter()
	n := bloomFirstKeys + bloomFirstKeys/4 // past the first part: the filter grows
	k := func(prefix string, i int) []byte { return strconv.AppendInt([]byte(prefix), int64(i), 10) }
	for i := range n {
		f.add(k("app/a", i))
	}
	if len(f.parts) != 2 {
		t.Fatalf("%d parts for %d keys", len(f.parts), n)
	}
	for i := range n {
		if !f.mayContain(k("app/a", i)) {
			t.Fatalf("key %d added but reported absent", i)
		}
	}
	fp := 0
	for i := range n {
		if f.mayContain(k("app/b", i)) {
			fp++
		}
	}
	if rate := float64(fp) / float64(n); rate > 0.04 {
		t.Fatalf("false positive rate %.3f", rate)
	} else {
		t.Logf("false positive rate %.4f over 2 parts", rate)
	}
	// Past its bound it lets go and says "maybe" to everything.
	f.maxKeys = 3 * bloomFirstKeys
	for i := range 2 * bloomFirstKeys {
		f.add(k("app/c", i))
	}
	if !f.full || f.parts != nil || !f.mayContain([]byte("app/never")) {
		t.Fatalf("a filter past its bound: full %v, %d parts", f.full, len(f.parts))
	}
	for _, k := range []string{"meta/applied", "rec/\x00", "app/x", "cmd/1", "idx/dg-app/a", "v/app/x/\x00", "ev/app/x/\x00"} {
		if want := !strings.HasPrefix(k, "meta/") && !strings.HasPrefix(k, "v/") && !strings.HasPrefix(k, "ev/"); filtered([]byte(k)) != want {
			t.Errorf("filtered(%q) = %v", k, !want)
		}
	}
}

// TestValueLogValuesDoNotBoundBatches: a store on disk keeps its long
// values in the value log, where Badger counts a pointer to each in a
// transaction's size, not its bytes; the applier counts them the same
// way. Apps with 4 KB documents (each create writes the document and its
// version) fold in batches that would be twenty times smaller counted by
// their bytes, every commit fits Badger's limits, and the store holds
// what folding one record at a time gives.
func TestValueLogValuesDoNotBoundBatches(t *testing.T) {
	s, err := open(t.TempDir(), nil, func(o *badger.Options) { *o = o.WithMemTableSize(2 << 20) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Reset(events.LogIdentity{ClusterID: "c", Topic: "t", TopicID: "x"}); err != nil {
		t.Fatal(err)
	}
	ref := MemKV{}
	var recs []events.Record
	for i := range 3000 {
		spec := events.NewAppSpec("registry.local/big:1")
		spec.EnvVars = map[string]string{"PAYLOAD": strings.Repeat(strconv.Itoa(i%10), 4<<10)}
		b, err := encodeUnchecked(ev(events.KindApp, fmt.Sprintf("big%d", i), events.AppCreatedV{Spec: spec}))
		if err != nil {
			t.Fatal(err)
		}
		rec := events.Record{Offset: int64(i), Value: b}
		recs = append(recs, rec)
		if _, err := Apply(ref, rec); err != nil {
			t.Fatal(err)
		}
	}
	commits := 0
	s.OnCommit(func([]Result) { commits++ })
	if _, err := s.ApplyBatch(recs); err != nil {
		t.Fatal(err)
	}
	// Counted by their bytes, a batch would end at 15% of 2 MiB, less a
	// quarter: about 28 records of two 4 KB values each.
	byBytes := len(recs) / 28
	if commits == 0 || commits > byBytes/5 {
		t.Errorf("%d records committed in %d transactions; counted by their values' bytes, they take %d", len(recs), commits, byBytes)
	}
	sameKV(t, dump(t, s), ref)
}

// splitChunks is kv with each version chunk split into chunks of one
// version (as a record folded alone writes).
func splitChunks(t *testing.T, kv MemKV) MemKV {
	t.Helper()
	out := MemKV{}
	for k, v := range kv {
		doc, _, ok := docOfVersion([]byte(k))
		if !ok {
			out[k] = v
			continue
		}
		vs, err := splitChunk([]byte(k), v)
		if err != nil {
			t.Fatal(err)
		}
		for _, cv := range vs {
			one := binary.BigEndian.AppendUint64(versionPrefix(doc), uint64(cv.off))
			if _, dup := out[string(one)]; dup {
				t.Fatalf("version %d of %q is in two chunks", cv.off, doc)
			}
			b := binary.BigEndian.AppendUint64(nil, uint64(cv.off))
			out[string(one)] = append(binary.AppendUvarint(b, uint64(len(cv.v))), cv.v...)
		}
	}
	return out
}

// TestRefoldedBatchForgetsItsWrites: a record that takes a batch past a
// transaction's limits is folded again as the first of the next batch;
// the writes it made in the batch that was dropped (which went into the
// hot cache as they were made) must not be seen by it then. A group
// listing almost a transaction's worth of apps (an index key each), after
// a small record, is such a record: its fold must end as a fold of one
// record at a time ends (accepted, not "exists").
func TestRefoldedBatchForgetsItsWrites(t *testing.T) {
	s, err := open(t.TempDir(), nil, func(o *badger.Options) { *o = o.WithMemTableSize(1 << 20) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Reset(events.LogIdentity{ClusterID: "c", Topic: "t", TopicID: "x"}); err != nil {
		t.Fatal(err)
	}
	maxCount := int(s.db().MaxBatchCount()) - 4
	members := maxCount - 8 // its index keys and a few: fits alone, not after another record
	var envs []events.Envelope
	var names []string
	for i := range members {
		names = append(names, fmt.Sprint("a", i))
		envs = append(envs, app(names[i], "nginx"))
	}
	envs = append(envs, app("small", "nginx"),
		ev(events.KindDeviceGroup, "big", events.DeviceGroupCreatedV{Spec: events.DeviceGroupSpec{Apps: names, CronJobs: []string{}}}))
	ref := MemKV{}
	var recs []events.Record
	for i, env := range envs {
		env.CommandID = fmt.Sprint("c", i)
		b, err := encodeUnchecked(env)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, events.Record{Offset: int64(i), Value: b})
		if _, err := Apply(ref, recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ApplyBatch(recs[:members]); err != nil {
		t.Fatal(err)
	}
	commits := 0
	s.OnCommit(func([]Result) { commits++ })
	results, err := s.ApplyBatch(recs[members:])
	if err != nil {
		t.Fatal(err)
	}
	if commits != 2 {
		t.Fatalf("the last two records in %d commits: the second did not take the batch past its limits", commits)
	}
	if len(results) != 2 || !results[1].Verdict.Accepted {
		t.Fatalf("the group's verdict: %+v", results[len(results)-1].Verdict)
	}
	sameKV(t, dump(t, s), ref)
}

// foldInBatches hands recs to a in batches of size records, as fetches.
func foldInBatches(a *applier, recs []events.Record, size int) error {
	for i := 0; i < len(recs); i += size {
		part := recs[i:min(i+size, len(recs))]
		if err := a.apply(part, decodeAll(part, nil)); err != nil {
			return err
		}
	}
	return nil
}

// foldedTo is the offset of the last record a store's fold folded (-1
// before any), and a channel closed when it moves.
type foldedTo struct {
	mu      sync.Mutex
	off     int64
	changed chan struct{}
}

func (f *foldedTo) set(off int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.off = off
	close(f.changed)
	f.changed = make(chan struct{})
}

// until waits until the fold reaches off, or fails the test after a
// while: the fold was held back.
func (f *foldedTo) until(t *testing.T, off int64, why string) {
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		at, changed := f.off, f.changed
		f.mu.Unlock()
		if at >= off {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Errorf("the fold stopped at offset %d, short of %d: %s", at, off, why)
			return
		}
	}
}

// trackedFold returns a mixed log of n records, the state it folds to one
// record at a time, an empty store, and where the store's fold stands.
func trackedFold(t *testing.T, n int, seed uint64) ([]events.Record, MemKV, *Store, *foldedTo) {
	t.Helper()
	recs, ref := mixedLog(t, n, seed)
	s := openStore(t, t.TempDir())
	if err := s.Reset(events.LogIdentity{ClusterID: "c", Topic: "t", TopicID: "x"}); err != nil {
		t.Fatal(err)
	}
	folded := &foldedTo{off: -1, changed: make(chan struct{})}
	s.afterFold = folded.set
	return recs, ref, s, folded
}

// TestFoldRunsAheadOfSlowCommits: the fold goes on while two batches wait
// for or are in their commit (each commit is held until the fold is in the
// middle of the batch two after it), reading through both overlays to the
// snapshot under them, and ends as a fold of one record at a time ends.
func TestFoldRunsAheadOfSlowCommits(t *testing.T) {
	const batch = 100
	recs, ref, s, folded := trackedFold(t, 2000, 11)
	s.beforeCommit = func(last int64) error {
		folded.until(t, min(last+2*batch-batch/2, int64(len(recs)-1)), "a commit in flight held it back")
		return nil
	}
	a := s.newApplier(true)
	if err := foldInBatches(a, recs, batch); err != nil {
		t.Fatal(err)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if len(a.results) != len(recs) || s.Applied() != int64(len(recs)-1) {
		t.Fatalf("%d results, applied %d", len(a.results), s.Applied())
	}
	sameKV(t, dump(t, s), ref)
}

// TestFailedCommitStopsTheOnesAfter: when a commit fails, the batch queued
// behind it is not committed (the store stays at the batch before the
// failed one, and the commit never starts), the error reaches the fold,
// and a new applier goes on from there to the same end as a fold of one
// record at a time.
func TestFailedCommitStopsTheOnesAfter(t *testing.T) {
	const batch = 100
	recs, ref, s, folded := trackedFold(t, 600, 13)
	var started []int64
	var mu sync.Mutex
	s.beforeCommit = func(last int64) error {
		mu.Lock()
		started = append(started, last)
		mu.Unlock()
		if last == 3*batch-1 {
			// The next batch folded and queued behind this one first.
			folded.until(t, 4*batch-1, "a commit in flight held it back")
			return errors.New("disk full")
		}
		return nil
	}
	a := s.newApplier(false)
	err := foldInBatches(a, recs[:5*batch], batch)
	if cerr := a.close(); err == nil {
		err = cerr
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("folding past a failed commit: %v", err)
	}
	if s.Applied() != 2*batch-1 {
		t.Fatalf("applied %d after the commit of the batch ending at %d failed, want %d", s.Applied(), 3*batch-1, 2*batch-1)
	}
	mu.Lock()
	for _, last := range started {
		if last > 3*batch-1 {
			t.Errorf("the commit of the batch ending at %d started after the one before it failed", last)
		}
	}
	mu.Unlock()

	s.beforeCommit = nil
	a = s.newApplier(false)
	if err := foldInBatches(a, recs[s.Applied()+1:], batch); err != nil {
		t.Fatal(err)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	sameKV(t, dump(t, s), ref)
}
