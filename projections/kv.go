package projections

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/nebula-orchestrator/nebula-go/internal/jsonlex"
)

// KV is the state the fold reads and writes: the Badger store implements it
// over one transaction; the fold's unit tests use MemKV.
type KV interface {
	// Get returns the value of key, or found=false.
	Get(key []byte) (value []byte, found bool, err error)
	// Set stores value under key; neither may be changed afterwards.
	Set(key, value []byte) error
	Delete(key []byte) error
	// Keys calls fn for every key with the prefix, in key order. fn must
	// not write to the KV.
	Keys(prefix []byte, fn func(key []byte) error) error
}

func getDoc[T any](kv KV, k []byte) (T, bool, error) {
	b, found, err := kv.Get(k)
	if err != nil || !found {
		var zero T
		return zero, false, err
	}
	doc, err := decodeDoc[T](k, b)
	return doc, err == nil, err
}

// decodeDoc decodes the document b stored at k.
func decodeDoc[T any](k, b []byte) (T, error) {
	var doc T
	if readFast(b, &doc) {
		return doc, nil
	}
	var zero T
	doc = zero // what a reader that gave up left
	if err := json.Unmarshal(b, &doc); err != nil {
		return zero, fmt.Errorf("projection document %q is corrupt: %w", k, err)
	}
	return doc, nil
}

func putDoc(kv KV, k []byte, doc any) error {
	b, err := encodeDoc(doc)
	if err != nil {
		return err
	}
	return kv.Set(k, b)
}

// encodeDocOf is encodeDoc without boxing the document (an app's is a
// few hundred bytes, copied to the heap at every change).
func encodeDocOf[T any](doc *T) ([]byte, error) {
	var b []byte
	var err error
	switch d := any(doc).(type) {
	case *App:
		b, err = d.appendJSON(make([]byte, 0, 512))
	case *DeviceGroup:
		b, err = d.appendJSON(make([]byte, 0, 256))
	case *[]string:
		return jsonlex.AppendStrings(make([]byte, 0, 16*len(*d)+2), *d), nil
	default:
		return encodeDoc(*doc)
	}
	if err != nil {
		return json.Marshal(*doc) // it reports the error
	}
	return b, nil
}

// encodeDoc is a document's JSON.
func encodeDoc(doc any) ([]byte, error) {
	if a, ok := doc.(appender); ok {
		if b, err := a.appendJSON(make([]byte, 0, 256)); err == nil {
			return b, nil
		}
	}
	return json.Marshal(doc)
}

// An index maps a first name to the sorted list of second names under one
// key (not one key per pair: the fold never iterates inside its write
// transaction, where a Badger iterator costs a sort of every pending write).

// indexed returns the second names indexed under first name a, sorted.
// The list may be the memo's (a nil memo reads it as getDoc does): the
// caller must not change it in place.
func indexed(kv KV, memo *docMemo[[]string], prefix []byte, a string) ([]string, error) {
	list, _, err := memo.get(kv, key(prefix, a))
	return list, err
}

// indexAdd adds b under a.
func indexAdd(kv KV, memo *docMemo[[]string], prefix []byte, a, b string) error {
	list, err := indexed(kv, memo, prefix, a)
	if err != nil {
		return err
	}
	i, found := slices.BinarySearch(list, b)
	if found {
		return nil
	}
	// Clipped, so that Insert makes a new array (the list may be shared).
	return memo.put(kv, key(prefix, a), slices.Insert(slices.Clip(list), i, b))
}

// indexRemove removes b from under a.
func indexRemove(kv KV, memo *docMemo[[]string], prefix []byte, a, b string) error {
	list, err := indexed(kv, memo, prefix, a)
	if err != nil {
		return err
	}
	i, found := slices.BinarySearch(list, b)
	if !found {
		return nil
	}
	if len(list) == 1 {
		return kv.Delete(key(prefix, a))
	}
	// A new list: the one read may be shared.
	rest := make([]string, 0, len(list)-1)
	rest = append(append(rest, list[:i]...), list[i+1:]...)
	return memo.put(kv, key(prefix, a), rest)
}

// MemKV is an in-memory KV for tests of the fold.
type MemKV map[string][]byte

func (m MemKV) Get(k []byte) ([]byte, bool, error) {
	v, ok := m[string(k)]
	return v, ok, nil
}

func (m MemKV) Set(k, v []byte) error {
	m[string(k)] = append([]byte(nil), v...)
	return nil
}

func (m MemKV) Delete(k []byte) error {
	delete(m, string(k))
	return nil
}

func (m MemKV) Keys(prefix []byte, fn func([]byte) error) error {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}
