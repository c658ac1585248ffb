package projections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

func openLog(t testing.TB, addr string) *kafkalog.Log {
	t.Helper()
	l, err := kafkalog.Open(testenv.Context(t, 30*time.Second), kafkalog.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func opener(l *kafkalog.Log) OpenReader {
	return func(from int64) (RecordReader, error) { return l.NewReader(from) }
}

// runProjector runs a projector until the test ends; its error, if any,
// is delivered on the returned channel.
func runProjector(t testing.TB, s *Store, l *kafkalog.Log) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	p := NewProjector(s, l, opener(l), nil)
	p.Backoff = 50 * time.Millisecond
	go func() { done <- p.Run(ctx); close(finished) }()
	t.Cleanup(func() { cancel(); <-finished })
	return done
}

func appendApps(t testing.TB, l *kafkalog.Log, prefix string, n int) int64 {
	t.Helper()
	ctx := testenv.Context(t, 60*time.Second)
	var envs []events.Envelope
	var last int64
	for i := range n {
		envs = append(envs, ev(events.KindApp, fmt.Sprintf("%s%d", prefix, i), events.AppCreatedV{Spec: events.NewAppSpec("nginx")}))
		if len(envs) == 500 || i == n-1 {
			offs, err := l.AppendBatch(ctx, envs)
			if err != nil {
				t.Fatal(err)
			}
			last = offs[len(offs)-1]
			envs = envs[:0]
		}
	}
	return last
}

func TestProjectorFollowsAndResumes(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	l := openLog(t, b.Addr())
	dir := t.TempDir()
	last := appendApps(t, l, "app", 300)

	s := openStore(t, dir)
	runProjector(t, s, l)
	ctx := testenv.Context(t, 30*time.Second)
	if err := s.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	// Read-your-writes: an append is visible once WaitFor(offset) returns.
	off, err := l.Append(ctx, app("late", "nginx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitFor(ctx, off); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(r Reader) error {
		a, found, err := r.App("late")
		if !found || a.Version != off {
			return fmt.Errorf("app late: %+v found=%v err=%v", a, found, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Folded() != 301 {
		t.Fatalf("folded %d records, want 301", s.Folded())
	}
	s.Close()

	// Restarted on the same directory: resumes after the stored offset and
	// folds nothing twice.
	s2 := openStore(t, dir)
	if s2.Applied() != off {
		t.Fatalf("reopened store applied %d, want %d", s2.Applied(), off)
	}
	runProjector(t, s2, l)
	off2, err := l.Append(ctx, app("later", "nginx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitFor(ctx, off2); err != nil {
		t.Fatal(err)
	}
	meta, _ := s2.Meta()
	if s2.Folded() != 1 || meta.Stats.Records != 302 {
		t.Fatalf("after restart folded %d (want 1), stats %+v (want 302 records)", s2.Folded(), meta.Stats)
	}
}

// TestKilledMidBatchResumesExactlyOnce kills (SIGKILL) a process folding a
// batch in the middle of its transaction, then resumes on the same Badger
// directory: every record is folded exactly once.
func TestKilledMidBatchResumesExactlyOnce(t *testing.T) {
	b := testenv.StartBroker(t, t.TempDir())
	l := openLog(t, b.Addr())
	const n = 2000
	last := appendApps(t, l, "app", n)
	dir := t.TempDir()
	const killAt = 1234

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFoldAndDie$")
	cmd.Env = append(os.Environ(), "NEBULA_HELPER_BROKER="+b.Addr(), "NEBULA_HELPER_DIR="+dir, "NEBULA_HELPER_KILL_AT="+strconv.Itoa(killAt))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v\n%s", err, out)
	}

	s := openStore(t, dir)
	if a := s.Applied(); a >= killAt {
		t.Fatalf("applied %d survived a kill before offset %d was committed", a, killAt)
	}
	runProjector(t, s, l)
	if err := s.WaitFor(testenv.Context(t, 60*time.Second), last); err != nil {
		t.Fatal(err)
	}
	meta, _ := s.Meta()
	if meta.Stats.Records != n || meta.Stats.Accepted != n {
		t.Fatalf("stats %+v: want every one of %d records folded exactly once", meta.Stats, n)
	}
	err = s.View(func(r Reader) error {
		for i := range n {
			if v, found, err := r.Verdict(int64(i)); err != nil || !found || !v.Accepted {
				return fmt.Errorf("offset %d: verdict %+v found=%v err=%v", i, v, found, err)
			}
		}
		names, err := r.Names(events.KindApp)
		if len(names) != n {
			return fmt.Errorf("%d apps, want %d (%v)", len(names), n, err)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHelperFoldAndDie is the process TestKilledMidBatchResumesExactlyOnce
// kills; it does nothing in a normal test run.
func TestHelperFoldAndDie(t *testing.T) {
	addr := os.Getenv("NEBULA_HELPER_BROKER")
	if addr == "" {
		return
	}
	killAt, _ := strconv.ParseInt(os.Getenv("NEBULA_HELPER_KILL_AT"), 10, 64)
	s, err := Open(os.Getenv("NEBULA_HELPER_DIR"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.afterFold = func(off int64) {
		if off == killAt {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	l := openLog(t, addr)
	_ = NewProjector(s, l, opener(l), nil).Run(context.Background())
}

func TestWipedLogIsDetectedAndRebuilt(t *testing.T) {
	for _, sameCluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("same cluster id %v", sameCluster), func(t *testing.T) {
			logDir, projDir := t.TempDir(), t.TempDir()
			b := testenv.StartBroker(t, logDir)
			addr := b.Addr()
			l := openLog(t, addr)
			last := appendApps(t, l, "old", 50)
			s := openStore(t, projDir)
			ctx, cancel := context.WithCancel(context.Background())
			p := NewProjector(s, l, opener(l), nil)
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			if err := s.WaitFor(testenv.Context(t, 30*time.Second), last); err != nil {
				t.Fatal(err)
			}
			cancel()
			<-done
			l.Close()
			b.Close()

			// The log is wiped; the projection is kept.
			if sameCluster {
				// Keep the cluster ID, lose the log: only the topic ID
				// and the offsets tell.
				if err := os.RemoveAll(logDir + "/log"); err != nil {
					t.Fatal(err)
				}
			} else if err := os.RemoveAll(logDir); err != nil {
				t.Fatal(err)
			}
			b2 := testenv.StartBrokerAt(t, addr, logDir)
			l2 := openLog(t, b2.Addr())
			last2 := appendApps(t, l2, "new", 3)
			id2, err := l2.Identity(testenv.Context(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if s.Applied() < last2 {
				t.Fatalf("test needs the old projection (applied %d) ahead of the new log (end %d)", s.Applied(), last2)
			}
			runProjector(t, s, l2)
			// The old projection is already past last2, so WaitFor alone
			// proves nothing: wait for the rebuilt identity first.
			deadline := time.Now().Add(30 * time.Second)
			for {
				m, err := s.Meta()
				if err != nil {
					t.Fatal(err)
				}
				if m.Identity != nil && *m.Identity == id2 && m.Applied >= last2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("projection not rebuilt from the new log: meta %+v, want identity %+v", m, id2)
				}
				time.Sleep(10 * time.Millisecond)
			}
			err = s.View(func(r Reader) error {
				names, err := r.Names(events.KindApp)
				if strings.Join(names, ",") != "new0,new1,new2" {
					return fmt.Errorf("apps after rebuild: %v %v", names, err)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnreadableRecordStopsTheProjection(t *testing.T) {
	b := testenv.StartBroker(t, "")
	l := openLog(t, b.Addr())
	ctx := testenv.Context(t, 30*time.Second)
	good := appendApps(t, l, "a", 5)
	badOff, err := l.AppendRaw(ctx, []byte(`{"type":"app.teleported","schema":1}`), "")
	if err != nil {
		t.Fatal(err)
	}
	appendApps(t, l, "after", 5)
	s := openStore(t, "")
	done := runProjector(t, s, l)
	select {
	case err := <-done:
		if !strings.Contains(err.Error(), fmt.Sprintf("offset %d", badOff)) || !errors.Is(err, events.ErrUnknownType) {
			t.Fatalf("projector error %v does not name offset %d and the unknown type", err, badOff)
		}
	case <-ctx.Done():
		t.Fatal("projector did not stop at the unreadable record")
	}
	if s.Applied() != good {
		t.Fatalf("applied %d, want %d (everything before the bad record, nothing after)", s.Applied(), good)
	}
	if err := s.WaitFor(ctx, badOff+1); err == nil || !strings.Contains(err.Error(), "app.teleported") {
		t.Fatalf("WaitFor past the bad record = %v, want the projection's error", err)
	}
}

// TestRacingManagers: two managers (each its own client and projection)
// create the same app at the same time; both projections agree on the
// single winner.
func TestRacingManagers(t *testing.T) {
	b := testenv.StartBroker(t, "")
	la, lb := openLog(t, b.Addr()), openLog(t, b.Addr())
	sa, sb := openStore(t, t.TempDir()), openStore(t, t.TempDir())
	runProjector(t, sa, la)
	runProjector(t, sb, lb)
	ctx := testenv.Context(t, 60*time.Second)
	const rounds = 20
	for i := range rounds {
		name := fmt.Sprintf("app%d", i)
		var offs [2]int64
		var wg sync.WaitGroup
		for j, l := range []*kafkalog.Log{la, lb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				offs[j], err = l.Append(ctx, app(name, fmt.Sprintf("image%d", j)))
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		var verdicts [2][2]Verdict
		var apps [2]App
		for k, s := range []*Store{sa, sb} {
			if err := s.WaitFor(ctx, max(offs[0], offs[1])); err != nil {
				t.Fatal(err)
			}
			_ = s.View(func(r Reader) error {
				verdicts[k][0], _, _ = r.Verdict(offs[0])
				verdicts[k][1], _, _ = r.Verdict(offs[1])
				apps[k], _, _ = r.App(name)
				return nil
			})
		}
		if verdicts[0] != verdicts[1] || apps[0].DockerImage != apps[1].DockerImage || apps[0].Version != apps[1].Version {
			t.Fatalf("round %d: managers disagree: %+v vs %+v; %+v vs %+v", i, verdicts[0], verdicts[1], apps[0], apps[1])
		}
		if verdicts[0][0].Accepted == verdicts[0][1].Accepted {
			t.Fatalf("round %d: want exactly one winner: %+v", i, verdicts[0])
		}
		winner := 0
		if verdicts[0][1].Accepted {
			winner = 1
		}
		if offs[winner] != min(offs[0], offs[1]) || verdicts[0][1-winner].Reason != ReasonExists {
			t.Fatalf("round %d: the first in log order must win: offsets %v verdicts %+v", i, offs, verdicts[0])
		}
	}
}

// TestBigBatchIsSplitAcrossTransactions folds more than one Badger
// transaction can hold and checks nothing is lost at the seams.
func TestBigBatchIsSplitAcrossTransactions(t *testing.T) {
	s, err := open("", nil, func(o *badger.Options) { *o = o.WithMemTableSize(1 << 20).WithValueThreshold(1 << 10) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Reset(events.LogIdentity{ClusterID: "c", Topic: "t", TopicID: "x"}); err != nil {
		t.Fatal(err)
	}
	var recs []events.Record
	for i := range 3000 {
		b, err := events.Encode(app(fmt.Sprintf("a%d", i), "nginx"))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, events.Record{Offset: int64(i), Value: b})
	}
	commits := 0
	s.OnCommit(func([]Result) { commits++ })
	res, err := s.ApplyBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := s.Meta()
	if len(res) != 3000 || meta.Stats.Records != 3000 || s.Applied() != 2999 || commits < 2 {
		t.Fatalf("results %d, stats %+v, applied %d, commits %d", len(res), meta.Stats, s.Applied(), commits)
	}
	// Folding the same batch again changes nothing.
	if res, err := s.ApplyBatch(recs); err != nil || len(res) != 0 {
		t.Fatalf("re-applied %d records (%v)", len(res), err)
	}
}

// TestUnreadableStoreIsSetAsideAndRebuilt: a projection whose files
// cannot be read is moved aside (kept for inspection) and rebuilt from
// the log; a store another process holds is refused, and left where it is.
func TestUnreadableStoreIsSetAsideAndRebuilt(t *testing.T) {
	b := testenv.StartBroker(t, "")
	l := openLog(t, b.Addr())
	last := appendApps(t, l, "app", 20)
	dir := filepath.Join(t.TempDir(), "projection")

	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Held by "another manager": refused, nothing moved.
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "Another process") {
		t.Fatalf("second open of a held store = %v, want the lock error", err)
	}
	if m, _ := filepath.Glob(dir + ".unreadable-*"); len(m) != 0 {
		t.Fatalf("a held store was moved aside: %v", m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewProjector(s, l, opener(l), nil).Run(ctx) }()
	if err := s.WaitFor(testenv.Context(t, 30*time.Second), last); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	s.Close()

	if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("not a manifest"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir)
	if moved, _ := filepath.Glob(dir + ".unreadable-*"); len(moved) != 1 {
		t.Fatalf("the unreadable store was not kept aside: %v", moved)
	}
	if s2.Applied() != -1 {
		t.Fatalf("the new store starts at offset %d, want empty", s2.Applied())
	}
	runProjector(t, s2, l)
	expectApps(t, s2, last, 20)
}

// TestDamagedTablesAreSetAsideAndRebuilt (findings 1 and 2 of issue 22): a
// projection whose table file was truncated by a byte (Badger panicked in a
// goroutine of its own at open: the manager could never start), or had
// 16 KiB of random bytes written into it (Badger opened it and served
// wrong answers), is set aside at open and rebuilt from the log.
func TestDamagedTablesAreSetAsideAndRebuilt(t *testing.T) {
	b := testenv.StartBroker(t, "")
	l := openLog(t, b.Addr())
	last := appendApps(t, l, "app", 300)
	for _, damage := range []struct {
		name string
		do   func(path string, size int64) error
	}{
		{"truncated by a byte", func(path string, size int64) error { return os.Truncate(path, size-1) }},
		{"16 KiB of random bytes", func(path string, _ int64) error { return testenv.WriteJunk(path) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "projection")
			table := tableOf(t, dir, l, last)
			fi, err := os.Stat(table)
			if err != nil {
				t.Fatal(err)
			}
			if err := damage.do(table, fi.Size()); err != nil {
				t.Fatal(err)
			}

			s2 := openStore(t, dir)
			if moved, _ := filepath.Glob(dir + ".unreadable-*"); len(moved) != 1 {
				t.Fatalf("the damaged store was not set aside: %v", moved)
			}
			if s2.Applied() != -1 {
				t.Fatalf("the new store starts at offset %d, want empty", s2.Applied())
			}
			runProjector(t, s2, l)
			expectApps(t, s2, last, 300)
		})
	}
}

// TestDamageFoundWhileRunningIsRebuilt (finding 2 of issue 22): damage to
// a table while the manager runs (Badger answers a read of a damaged block
// as if the key were missing, with no error) is found by the next read,
// which returns ErrDamaged instead of what it read, when the file was
// changed (written into, truncated), and by Verify otherwise (the disk
// flipped bits: Verify runs periodically); the projector then stops
// serving, rebuilds from the log and serves the whole projection again.
func TestDamageFoundWhileRunningIsRebuilt(t *testing.T) {
	b := testenv.StartBroker(t, "")
	l := openLog(t, b.Addr())
	last := appendApps(t, l, "app", 300)
	for _, tc := range []struct {
		name   string
		damage func(path string) error
		find   func(s *Store) error
	}{
		{"written into, found by a read", testenv.WriteJunk, readAllApps},
		{"truncated, found by a read", func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, fi.Size()-1)
		}, readAllApps},
		{"written into, found by Verify", testenv.WriteJunk, func(s *Store) error { return s.Verify() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "projection")
			tableOf(t, dir, l, last)
			s := openStore(t, dir)
			p, _, _ := runHeldProjector(t, s, l, false)
			<-p.Ready()
			if err := s.Verify(); err != nil {
				t.Fatalf("a sound store: %v", err)
			}
			if err := readAllApps(s); err != nil {
				t.Fatalf("a sound store: %v", err)
			}
			// The table as the open store holds it (opening may have rewritten it).
			tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
			if len(tables) == 0 {
				t.Fatal("no table file to damage")
			}
			if err := tc.damage(tables[0]); err != nil {
				t.Fatal(err)
			}
			rebuilds := p.Rebuilds()
			if err := tc.find(s); !errors.Is(err, ErrDamaged) {
				t.Fatalf("on a damaged store: %v, want ErrDamaged", err)
			}
			testenv.WaitFor(t, "the rebuild", 30*time.Second, func() bool { return p.Rebuilds() > rebuilds && p.Serving() })
			if err := s.WaitFor(testenv.Context(t, 30*time.Second), last); err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(); err != nil {
				t.Fatalf("the rebuilt store: %v", err)
			}
			if err := readAllApps(s); err != nil {
				t.Fatalf("the rebuilt store: %v", err)
			}
			expectApps(t, s, last, 300)
		})
	}
}

// readAllApps reads every app of the store by name.
func readAllApps(s *Store) error {
	return s.View(func(r Reader) error {
		names, err := r.Names(events.KindApp)
		if err != nil {
			return err
		}
		for _, n := range names {
			if _, _, err := r.App(n); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestRebuildAside (issue 17): a serving projection whose log is wiped is
// rebuilt in a store aside while the old state stays readable; the new
// store is swapped in once it has caught up, and it is the one opened at
// the next start. A store aside left incomplete by a crash is deleted.
func TestRebuildAside(t *testing.T) {
	logDir := t.TempDir()
	base := filepath.Join(t.TempDir(), "projection")
	b := testenv.StartBroker(t, logDir)
	addr := b.Addr()
	l := openLog(t, addr)
	last := appendApps(t, l, "old", 50)
	s := openStore(t, base)
	p, paused, stop := runHeldProjector(t, s, l, false)
	if err := s.WaitFor(testenv.Context(t, 30*time.Second), last); err != nil {
		t.Fatal(err)
	}
	<-p.Ready()
	names := func() string {
		t.Helper()
		var out []string
		if err := s.View(func(r Reader) error { var err error; out, err = r.Names(events.KindApp); return err }); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(len(out), " ", out[0])
	}

	paused.Store(true)
	b.Close()
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	b2 := testenv.StartBrokerAt(t, addr, logDir)
	appendApps(t, openLog(t, b2.Addr()), "new", 3)
	testenv.WaitFor(t, "the rebuild aside", 60*time.Second, p.RebuildingAside)
	if got := names(); got != "50 old0" || !p.Serving() {
		t.Fatalf("during the rebuild aside: %s, serving %v; want the old state, served", got, p.Serving())
	}
	if _, err := os.Stat(base + ".next"); err != nil {
		t.Fatalf("no store aside: %v", err)
	}
	paused.Store(false)
	testenv.WaitFor(t, "the new state", 30*time.Second, func() bool { return !p.RebuildingAside() && names() == "3 new0" })
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the replaced store is still there: %v", err)
	}
	stop()
	s.Close()

	s2 := openStore(t, base)
	if err := s2.View(func(r Reader) error {
		n, err := r.Names(events.KindApp)
		if fmt.Sprint(n) != "[new0 new1 new2]" {
			return fmt.Errorf("after a restart: %v %v", n, err)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base + ".next"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the store aside was not moved back to %s: %v", base, err)
	}
	s2.Close()

	// A crash during a rebuild aside: the incomplete store is deleted.
	if err := os.MkdirAll(base+".next", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".next/MANIFEST", []byte("half"), 0o640); err != nil {
		t.Fatal(err)
	}
	s3 := openStore(t, base)
	if s3.Applied() < 2 {
		t.Fatalf("the complete store was not the one opened: applied %d", s3.Applied())
	}
	if _, err := os.Stat(base + ".next"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the incomplete store aside was kept")
	}
}

// TestRebuildAsideAtStart (issue 17): a manager restarted on a store built
// by another fold version (an upgrade) serves that state while it rebuilds
// aside, instead of answering 503 for the whole rebuild.
func TestRebuildAsideAtStart(t *testing.T) {
	b := testenv.StartBroker(t, "")
	l := openLog(t, b.Addr())
	last := appendApps(t, l, "app", 20)
	base := filepath.Join(t.TempDir(), "projection")
	s := openStore(t, base)
	foldUpTo(t, s, l, last)
	// As if an older binary had built it.
	if err := s.db().Update(func(txn *badger.Txn) error { return txn.Set(keyFoldVersion, encodeInt(FoldVersion-1)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := openStore(t, base)
	p, paused, _ := runHeldProjector(t, s2, l, true)
	testenv.WaitFor(t, "the rebuild aside", 30*time.Second, p.RebuildingAside)
	if !p.Serving() {
		t.Fatal("the state of the old fold is not served during the rebuild")
	}
	if err := s2.View(func(r Reader) error {
		n, err := r.Names(events.KindApp)
		if len(n) != 20 {
			return fmt.Errorf("during the rebuild: %d apps %v", len(n), err)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	paused.Store(false)
	testenv.WaitFor(t, "the rebuilt store", 30*time.Second, func() bool {
		m, err := s2.Meta()
		return err == nil && !p.RebuildingAside() && m.FoldVersion == FoldVersion && m.Applied >= last
	})
}

// runHeldProjector runs a projector of s whose folding the test holds
// while paused is true (from the start if paused); stop stops it (also
// done when the test ends).
func runHeldProjector(t *testing.T, s *Store, l *kafkalog.Log, paused bool) (*Projector, *atomic.Bool, func()) {
	t.Helper()
	held := new(atomic.Bool)
	held.Store(paused)
	p := NewProjector(s, l, opener(l), nil)
	p.Backoff = 10 * time.Millisecond
	p.Hold = func() error {
		if held.Load() {
			return errors.New("paused by the test")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return p, held, stop
}

// foldUpTo runs a projector of s until it has folded offset last.
func foldUpTo(t *testing.T, s *Store, l *kafkalog.Log, last int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewProjector(s, l, opener(l), nil).Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := s.WaitFor(testenv.Context(t, 30*time.Second), last); err != nil {
		t.Fatal(err)
	}
}

// tableOf folds the log up to last into a store in dir, closes it (which
// flushes the memtable into a table file) and returns that file's path.
func tableOf(t *testing.T, dir string, l *kafkalog.Log, last int64) string {
	t.Helper()
	s := openStore(t, dir)
	foldUpTo(t, s, l, last)
	s.Close()
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table file to damage")
	}
	return tables[0]
}

// expectApps waits until s has folded last and checks it holds n apps.
func expectApps(t *testing.T, s *Store, last int64, n int) {
	t.Helper()
	if err := s.WaitFor(testenv.Context(t, 30*time.Second), last); err != nil {
		t.Fatal(err)
	}
	err := s.View(func(r Reader) error {
		names, err := r.Names(events.KindApp)
		if len(names) != n {
			return fmt.Errorf("apps after the rebuild: %d, want %d (%v)", len(names), n, err)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
