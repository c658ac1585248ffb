package projections

// docMemo keeps the decoded form of the documents (apps, device groups)
// the fold wrote, so that the next change to the same one (in a fleet's
// log, most events change one of a few thousand apps, and the groups that
// list it, over and over) does not decode the JSON it has just encoded:
// decoding was a seventh of a replay's fold.
//
// An entry is used only when the value the fold reads for the key is the
// very slice the entry was made from (the same first byte's address and
// length). The applier's overlays keep the slices the fold sets (owned)
// and never change them, and the hot cache keeps the committed ones, so a
// read of an app the fold wrote returns that slice until another write
// replaces it; the entry holds the slice, so its memory cannot be reused
// for another value while the entry exists. Any other value (read from
// Badger, copied by an overlay that is not owned, written by a batch
// folded again) is decoded as usual. A change never modifies what a
// document shares with its copies (the changes assign whole fields:
// AppPatch.Apply, DeviceGroupPatch.Apply), so the entry's document is
// handed out by value.
//
// Bounded (memoMaxBytes each, counting a decoded document as twice its
// JSON): past that it is emptied and fills again. Only the goroutine
// folding uses it.
type docMemo[T any] struct {
	m     map[string]*memoEntry[T]
	bytes int
}

type memoEntry[T any] struct {
	b   []byte
	doc T
}

// memos are the fold's memos; a nil *memos (a dry run, one record folded
// alone) keeps nothing.
type memos struct {
	apps   *docMemo[App]
	groups *docMemo[DeviceGroup]
	// lists are the indexes (an app's groups, read at every change to
	// the app): lists are shared, so their users copy before changing.
	lists *docMemo[[]string]
}

// memoMaxBytes bounds each memo: a manager's memory is sized for a burst
// of commands (docs/projections.md, "Memory"), and a group may list
// thousands of apps.
const memoMaxBytes = 8 << 20

// memoEntryOverhead is more than a map entry and a document's fixed
// fields take.
const memoEntryOverhead = 128

func newMemos() *memos {
	return &memos{apps: newDocMemo[App](), groups: newDocMemo[DeviceGroup](), lists: newDocMemo[[]string]()}
}

func newDocMemo[T any]() *docMemo[T] { return &docMemo[T]{m: map[string]*memoEntry[T]{}} }

func (m *memos) appMemo() *docMemo[App] {
	if m == nil {
		return nil
	}
	return m.apps
}

func (m *memos) groupMemo() *docMemo[DeviceGroup] {
	if m == nil {
		return nil
	}
	return m.groups
}

func (m *memos) listMemo() *docMemo[[]string] {
	if m == nil {
		return nil
	}
	return m.lists
}

// get reads the document at k, as getDoc does (a nil memo is getDoc).
func (m *docMemo[T]) get(kv KV, k []byte) (T, bool, error) {
	if m == nil {
		return getDoc[T](kv, k)
	}
	b, found, err := kv.Get(k)
	if err != nil || !found {
		var zero T
		return zero, false, err
	}
	if e, ok := m.m[string(k)]; ok && sameSlice(e.b, b) {
		return e.doc, true, nil
	}
	doc, err := decodeDoc[T](k, b)
	return doc, err == nil, err
}

// put writes doc, encoded, at k and remembers it (a nil memo: putDoc).
func (m *docMemo[T]) put(kv KV, k []byte, doc T) error {
	b, err := encodeDocOf(&doc)
	if err != nil {
		return err
	}
	if err := kv.Set(k, b); err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	// An entry is changed in place: one map lookup, no new key.
	e := m.m[string(k)]
	if e != nil {
		m.bytes -= memoSize(k, e.b)
	}
	if m.bytes+memoSize(k, b) > memoMaxBytes {
		clear(m.m)
		m.bytes, e = 0, nil
	}
	if e == nil {
		e = &memoEntry[T]{}
		m.m[string(k)] = e
	}
	e.b, e.doc = b, doc
	m.bytes += memoSize(k, b)
	return nil
}

// memoSize is what an entry counts: the key, the JSON, the decoded
// document (twice the JSON) and the overhead.
func memoSize(k, b []byte) int { return len(k) + 3*len(b) + memoEntryOverhead }

// sameSlice reports whether a and b are the same bytes in memory.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}
