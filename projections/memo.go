package projections

// appMemo keeps the decoded form of the app documents the fold wrote, so
// that the next change to the same app (in a fleet's log, most events
// change one of a few thousand apps, over and over) does not decode the
// JSON it has just encoded: decoding was a seventh of a replay's fold.
//
// An entry is used only when the value the fold reads for the key is the
// very slice the entry was made from (the same first byte's address and
// length). The applier's overlays keep the slices the fold sets (owned)
// and never change them, and the hot cache keeps the committed ones, so a
// read of an app the fold wrote returns that slice until another write
// replaces it; the entry holds the slice, so its memory cannot be reused
// for another value while the entry exists. Any other value (read from
// Badger, copied by an overlay that is not owned, written by a batch
// folded again) is decoded as usual. A change never modifies what an App
// shares with its copies (the changes assign whole fields: AppPatch.Apply),
// so the entry's App is handed out by value.
//
// Bounded by appMemoMax entries; only the goroutine folding uses it.
type appMemo struct{ m map[string]memoApp }

type memoApp struct {
	b   []byte
	app App
}

const appMemoMax = 1 << 16

func newAppMemo() *appMemo { return &appMemo{m: map[string]memoApp{}} }

// get reads the app at k, as getDoc does (a nil memo is getDoc).
func (m *appMemo) get(kv KV, k []byte) (App, bool, error) {
	if m == nil {
		return getDoc[App](kv, k)
	}
	b, found, err := kv.Get(k)
	if err != nil || !found {
		return App{}, false, err
	}
	if e, ok := m.m[string(k)]; ok && sameSlice(e.b, b) {
		return e.app, true, nil
	}
	app, err := decodeDoc[App](k, b)
	return app, err == nil, err
}

// put writes app, encoded, at k and remembers it (a nil memo: putDoc).
func (m *appMemo) put(kv KV, k []byte, app App) error {
	b, err := encodeDoc(app)
	if err != nil {
		return err
	}
	if err := kv.Set(k, b); err != nil {
		return err
	}
	if m != nil {
		if len(m.m) >= appMemoMax {
			clear(m.m)
		}
		m.m[string(k)] = memoApp{b, app}
	}
	return nil
}

// sameSlice reports whether a and b are the same bytes in memory.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}
