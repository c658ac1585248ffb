package jsonlex

import (
	"encoding/json"
	"slices"
	"strings"
)

// The writing side: appenders that write what json.Marshal writes, byte
// for byte, for documents written in bulk (projection documents, device
// entries). Their callers' tests hold them to json.Marshal.

// AppendString writes s as json.Marshal does. Printable ASCII that needs
// no escape (the usual name, image or path) is copied; anything else goes
// through json.Marshal, so the escaping rules stay encoding/json's.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain are the bytes json.Marshal copies as they are: printable ASCII
// but the quote, the backslash and the three it escapes for HTML. One
// load per byte instead of seven comparisons: the documents the fold
// writes are mostly strings.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// AppendStrings writes the list as json.Marshal does (nil: null).
func AppendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

// AppendStringMap writes the map with its keys sorted, as json.Marshal.
func AppendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	switch len(m) {
	case 0:
		return append(b, "{}"...)
	case 1:
		for k, v := range m {
			b = append(b, '{')
			b = AppendString(b, k)
			b = append(b, ':')
			b = AppendString(b, v)
		}
		return append(b, '}')
	}
	// Sorted keys, as json.Marshal writes them; the pairs on the stack for
	// the few an app's environment holds (each document the fold writes
	// has one), so that no value is looked up again.
	type pair struct{ k, v string }
	var stack [16]pair
	pairs := stack[:0]
	for k, v := range m {
		pairs = append(pairs, pair{k, v})
	}
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	b = append(b, '{')
	for i, p := range pairs {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, p.k)
		b = append(b, ':')
		b = AppendString(b, p.v)
	}
	return append(b, '}')
}

// AppendMarshaler appends what the spec types' MarshalJSON write (compact,
// and without the characters json.Marshal would escape in it).
func AppendMarshaler(b []byte, m json.Marshaler) ([]byte, error) {
	out, err := m.MarshalJSON()
	return append(b, out...), err
}
