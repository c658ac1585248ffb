package badgerdir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// vlogBytes is the size of the value-log files in dir.
func vlogBytes(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// TestReclaimValueLog: values overwritten twice leave value-log files that
// are mostly garbage; ReclaimValueLog frees them, and every current value
// still reads.
func TestReclaimValueLog(t *testing.T) {
	dir := t.TempDir()
	open := func() *badger.DB {
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithValueThreshold(64).
			WithValueLogFileSize(1 << 20).WithMemTableSize(1 << 20).WithNumVersionsToKeep(1).WithCompactL0OnClose(true))
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	value := func(round, i int) []byte { return fmt.Appendf(make([]byte, 0, 4096), "%d/%d/%04000d", round, i, 0) }
	for round := range 3 {
		for i := range 1500 {
			if err := db.Update(func(txn *badger.Txn) error { return txn.Set(fmt.Appendf(nil, "k%d", i), value(round, i)) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The discard statistics come from compactions: close flushes the
	// memtables to level 0, and compacts level 0 into level 1.
	for range 2 {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = open()
	}
	defer db.Close()

	before := vlogBytes(t, dir)
	ReclaimValueLog(context.Background(), db)
	after := vlogBytes(t, dir)
	t.Logf("value log: %d bytes before, %d after", before, after)
	if after > before*2/3 {
		t.Fatalf("value log %d bytes after reclaiming, %d before: the overwritten values are still there", after, before)
	}
	err := db.View(func(txn *badger.Txn) error {
		for i := range 1500 {
			item, err := txn.Get(fmt.Appendf(nil, "k%d", i))
			if err != nil {
				return err
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if string(v) != string(value(2, i)) {
				return fmt.Errorf("k%d reads %.20q", i, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
