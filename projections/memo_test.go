package projections

import (
	"fmt"
	"slices"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestMemoAnswersOnlyForItsOwnBytes: the memo's decoded app is used only
// while a read returns the very value it was made from; any other value at
// the key (written past the memo, as a batch folded again does, or read
// back from the store) is decoded.
func TestMemoAnswersOnlyForItsOwnBytes(t *testing.T) {
	base := MemKV{}
	o := newOverlay(base, 0)
	o.owned = true
	m := newMemos().apps
	k := key(prefixApp, "a")
	if err := m.put(o, k, App{Name: "a", Version: 1, AppSpec: events.NewAppSpec("img:1")}); err != nil {
		t.Fatal(err)
	}
	got, found, err := m.get(o, k)
	if err != nil || !found || got.DockerImage != "img:1" || got.Version != 1 {
		t.Fatalf("memoized read: %+v %v %v", got, found, err)
	}
	// The same app written without the memo: the memo's entry is stale.
	if err := putDoc(o, k, App{Name: "a", Version: 2, AppSpec: events.NewAppSpec("img:2")}); err != nil {
		t.Fatal(err)
	}
	got, found, err = m.get(o, k)
	if err != nil || !found || got.DockerImage != "img:2" || got.Version != 2 {
		t.Fatalf("read after a write past the memo: %+v %v %v, want img:2 at 2", got, found, err)
	}
	// Equal bytes elsewhere in memory are decoded, not trusted.
	if err := m.put(o, k, App{Name: "a", Version: 3, AppSpec: events.NewAppSpec("img:3")}); err != nil {
		t.Fatal(err)
	}
	b, _, _ := o.Get(k)
	copied := newOverlay(MemKV{string(k): append([]byte(nil), b...)}, 0)
	if e := m.m[string(k)]; sameSlice(e.b, copied.base.(MemKV)[string(k)]) {
		t.Fatal("a copy counts as the memo's own slice")
	}
	got, _, err = m.get(copied, k)
	if err != nil || got.Version != 3 {
		t.Fatalf("read of a copy: %+v %v", got, err)
	}
	// Deleted: not found, whatever the memo holds.
	if err := o.Delete(k); err != nil {
		t.Fatal(err)
	}
	if _, found, err := m.get(o, k); found || err != nil {
		t.Fatalf("a deleted app read as found (%v)", err)
	}
	// A nil memo is getDoc and putDoc.
	var none *memos
	if err := none.appMemo().put(o, k, App{Name: "a", Version: 4, AppSpec: events.NewAppSpec("img:4")}); err != nil {
		t.Fatal(err)
	}
	if got, found, err := none.appMemo().get(o, k); err != nil || !found || got.Version != 4 {
		t.Fatalf("nil memo: %+v %v %v", got, found, err)
	}
}

// TestMemoIsBounded: a memo past memoMaxBytes starts again, and still
// answers for what it holds.
func TestMemoIsBounded(t *testing.T) {
	o := newOverlay(MemKV{}, 0)
	o.owned = true
	m := newMemos().groups
	apps := make([]string, 2000) // a group listing many apps: about 20 KB of JSON
	for i := range apps {
		apps[i] = fmt.Sprintf("app-%05d", i)
	}
	peak := 0
	for i := range 2000 {
		k := key(prefixGroup, fmt.Sprintf("g%d", i))
		if err := m.put(o, k, DeviceGroup{Name: fmt.Sprintf("g%d", i), Version: int64(i), DeviceGroupSpec: events.DeviceGroupSpec{Apps: apps, CronJobs: []string{}}}); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, m.bytes)
		if g, found, err := m.get(o, k); err != nil || !found || g.Version != int64(i) {
			t.Fatalf("group %d read back: %v %v %v", i, g.Version, found, err)
		}
	}
	if peak > memoMaxBytes || len(m.m) == 0 || len(m.m) >= 2000 {
		t.Fatalf("memo of %d entries, peak %d bytes (bound %d)", len(m.m), peak, memoMaxBytes)
	}
}

// TestMemoizedIndexListsAreNotChanged: an index list the memo hands out is
// shared with its entry, so adding to or removing from the index makes a
// new list; a list read before stays as it was.
func TestMemoizedIndexListsAreNotChanged(t *testing.T) {
	o := newOverlay(MemKV{}, 0)
	o.owned = true
	memo := newDocMemo[[]string]()
	for _, g := range []string{"g1", "g3", "g5", "g7", "g9"} {
		if err := indexAdd(o, memo, prefixIdxGroupApp, "a", g); err != nil {
			t.Fatal(err)
		}
	}
	before, err := indexed(o, memo, prefixIdxGroupApp, "a")
	if err != nil {
		t.Fatal(err)
	}
	kept := slices.Clone(before)
	if err := indexAdd(o, memo, prefixIdxGroupApp, "a", "g2"); err != nil {
		t.Fatal(err)
	}
	if err := indexRemove(o, memo, prefixIdxGroupApp, "a", "g5"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, kept) {
		t.Fatalf("a list read before the changes became %v, was %v", before, kept)
	}
	after, err := indexed(o, memo, prefixIdxGroupApp, "a")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := indexed(o, nil, prefixIdxGroupApp, "a") // decoded, not the memo's
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"g1", "g2", "g3", "g7", "g9"}
	if !slices.Equal(after, want) || !slices.Equal(stored, want) {
		t.Fatalf("index = %v (memo), %v (stored), want %v", after, stored, want)
	}
}
