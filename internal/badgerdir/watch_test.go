package badgerdir_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/nebula-orchestrator/nebula-go/internal/badgerdir"
)

// TestWatch: a table touched is not damage; a table written into is, and
// Damaged says so; a store whose tables nobody changed stays sound. With
// the kernel's feed of the directory's changes (Linux), and looking at
// every table (elsewhere, or when the feed overflows).
func TestWatch(t *testing.T) {
	t.Run("the kernel's feed", func(t *testing.T) { testWatch(t, true) })
	t.Run("every table looked at", func(t *testing.T) { testWatch(t, false) })
}

func testWatch(t *testing.T, feed bool) {
	dir := t.TempDir()
	opts := badger.DefaultOptions(dir).WithLogger(nil)
	db, err := badgerdir.Open(opts, "the test store", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := db.Update(func(txn *badger.Txn) error {
			return txn.Set(fmt.Appendf(nil, "k%05d", i), make([]byte, 100))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = badgerdir.Open(opts, "the test store", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := badgerdir.NewWatch(db, opts)
	defer w.Close()
	if !feed {
		badgerdir.WithoutChangeFeed(w)
	}
	if err := w.Check(); err != nil {
		t.Fatalf("a sound store: %v", err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table")
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(tables[0], later, later); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(); err != nil {
		t.Fatalf("a touched table: %v", err)
	}
	f, err := os.OpenFile(tables[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := f.WriteAt(make([]byte, 512), fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = w.Check()
	if err == nil || !badgerdir.Damaged(err) {
		t.Fatalf("a table written into: %v, want damage", err)
	}
	// Damage the file system did not show (a watch that began after it,
	// as bits flipped by the disk would be): VerifyAll finds it.
	unseen := badgerdir.NewWatch(db, opts)
	defer unseen.Close()
	if !feed {
		badgerdir.WithoutChangeFeed(unseen)
	}
	if err := unseen.Check(); err != nil {
		t.Fatalf("a watch begun after the damage saw it: %v", err)
	}
	if err := unseen.VerifyAll(); err == nil || !badgerdir.Damaged(err) {
		t.Fatalf("VerifyAll of a damaged table: %v", err)
	}
	if err := unseen.Check(); err == nil {
		t.Fatal("Check after VerifyAll found damage: nil")
	}
	w.Forget() // the store would be emptied first; here the damage is still there, found again at the next change only
	if err := w.Check(); err != nil {
		t.Fatalf("after Forget: %v", err)
	}
}

// BenchmarkWatchCheck is what a served read pays for the watch.
func BenchmarkWatchCheck(b *testing.B) {
	dir := b.TempDir()
	opts := badger.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(2 << 20).WithValueThreshold(1 << 10)
	db, err := badgerdir.Open(opts, "the bench store", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	wb := db.NewWriteBatch()
	for i := range 100_000 {
		if err := wb.Set(fmt.Appendf(nil, "k%07d", i), make([]byte, 200)); err != nil {
			b.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
	tables := len(db.Tables())
	for _, feed := range []bool{true, false} {
		name := map[bool]string{true: "feed", false: "every_table"}[feed]
		b.Run(name, func(b *testing.B) {
			w := badgerdir.NewWatch(db, opts)
			defer w.Close()
			if !feed {
				badgerdir.WithoutChangeFeed(w)
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := w.Check(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(tables), "tables")
		})
	}
}
