// Package jsonlex reads JSON fast for the shapes Nebula writes itself, or
// gives up. It is the fast path in front of encoding/json for documents
// read in bulk (event records, projection documents): a reader built on it
// reads what it fully understands and reports Bad for anything else (an
// unknown or repeated key, null, a surrogate escape, an exponent, invalid
// UTF-8), and the caller then decodes with encoding/json. Used that way it
// never changes a result: the callers' differential fuzz tests check that
// whatever the fast path reads, encoding/json reads the same. Its
// appenders (append.go) are the writing side: what json.Marshal writes,
// without reflection.
package jsonlex

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// New returns a lexer reading b from offset at.
func New(b []byte, at int) *Lexer { return &Lexer{b: b, i: at} }

// Bad reports whether the lexer met something it leaves to encoding/json.
func (l *Lexer) Bad() bool { return l.bad }

// Skip reads over any value the lexer could read, to come back to it.
func (l *Lexer) Skip() { l.skip(0) }

func (l *Lexer) skip(depth int) {
	switch l.Fail(depth > 32); l.Peek() {
	case '{':
		l.ObjectAnyKey(func(string) { l.skip(depth + 1) })
	case '[':
		l.Array(func() { l.skip(depth + 1) })
	case '"':
		l.Str()
	case 't', 'f':
		l.Bool()
	default:
		l.Number()
	}
}

// StringMap reads an object of strings as a map[string]string.
func (l *Lexer) StringMap() map[string]string {
	m := map[string]string{}
	l.ObjectAnyKey(func(k string) {
		if _, dup := m[k]; dup {
			l.bad = true
		}
		m[k] = l.Str()
	})
	return m
}

// Strings reads an array of strings (never nil, as encoding/json).
func (l *Lexer) Strings() []string {
	s := []string{}
	l.Array(func() { s = append(s, l.Str()) })
	return s
}

// StringsOrNull reads an array of strings, or null as nil (as
// encoding/json reads null into a slice).
func (l *Lexer) StringsOrNull() []string {
	if l.Null() {
		return nil
	}
	return l.Strings()
}

// Digits parses a non-empty run of at most 9 ASCII digits (what
// strconv.Atoi reads the same way everywhere), or returns -1.
func Digits(b []byte) int64 {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// Lexer reads JSON from b. Any construct it does not handle sets bad; once
// bad, every method returns zero values and consumes nothing more.
type Lexer struct {
	b   []byte
	i   int
	bad bool
}

// Fail marks the input as one to leave to encoding/json when cond holds.
func (l *Lexer) Fail(cond bool) {
	if cond {
		l.bad = true
	}
}

func (l *Lexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

// Peek returns the next byte that is not white space, 0 at the end.
func (l *Lexer) Peek() byte {
	l.ws()
	if l.bad || l.i >= len(l.b) {
		return 0
	}
	return l.b[l.i]
}

// Pos is the offset of the next value (after white space).
func (l *Lexer) Pos() int {
	l.ws()
	return l.i
}

// Offset is the offset just after the last value read.
func (l *Lexer) Offset() int { return l.i }

// Slice is the input from offset from to just after the last value read
// (a view: the caller copies what it keeps).
func (l *Lexer) Slice(from int) []byte { return l.b[from:l.i] }

// End reports whether only white space is left.
func (l *Lexer) End() bool {
	l.ws()
	return l.i == len(l.b)
}

func (l *Lexer) expect(c byte) {
	if l.Peek() != c {
		l.bad = true
		return
	}
	l.i++
}

// Object reads an object whose keys are struct field names: a key with an
// escape or met twice sets bad. field must read the value.
func (l *Lexer) Object(field func(key []byte)) {
	var seen [16][]byte
	n := 0
	l.members(func() {
		k := l.plainString()
		for _, s := range seen[:min(n, len(seen))] {
			if string(s) == string(k) {
				l.bad = true
			}
		}
		if n == len(seen) {
			l.bad = true
		}
		if l.bad {
			return
		}
		seen[n] = k
		n++
		l.expect(':')
		if !l.bad {
			field(k)
		}
	})
}

// ObjectAnyKey reads an object whose keys are data (a map).
func (l *Lexer) ObjectAnyKey(field func(key string)) {
	l.members(func() {
		k := l.Str()
		l.expect(':')
		if !l.bad {
			field(k)
		}
	})
}

func (l *Lexer) members(member func()) {
	l.expect('{')
	if l.Peek() == '}' {
		l.i++
		return
	}
	for !l.bad {
		member()
		switch l.Peek() {
		case ',':
			l.i++
		case '}':
			l.i++
			return
		default:
			l.bad = true
		}
	}
}

// Array reads an array; elem must read one element.
func (l *Lexer) Array(elem func()) {
	l.expect('[')
	if l.Peek() == ']' {
		l.i++
		return
	}
	for !l.bad {
		elem()
		switch l.Peek() {
		case ',':
			l.i++
		case ']':
			l.i++
			return
		default:
			l.bad = true
		}
	}
}

// plainEnd is where the plain string (ASCII, no escapes, no control
// characters) at the next value ends: its closing quote's offset, ok=false
// if the next value is not one.
func (l *Lexer) plainEnd() (end int, ok bool) {
	if l.Peek() != '"' {
		return 0, false
	}
	for j := l.i + 1; j < len(l.b); j++ {
		if inString[l.b[j]] {
			continue
		}
		switch c := l.b[j]; {
		case c == '"':
			return j, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return 0, false
		}
	}
	return 0, false
}

// plainString reads a string without escapes and returns its bytes (a
// view of the input, for keys).
func (l *Lexer) plainString() []byte {
	end, ok := l.plainEnd()
	if !ok {
		l.bad = true
		return nil
	}
	s := l.b[l.i+1 : end]
	l.i = end + 1
	return s
}

// inString are the bytes a string holds as they are, with nothing to
// check: printable ASCII but the quote and the backslash (one load per
// byte before the comparisons).
var inString = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Str reads a string. Invalid UTF-8 (which encoding/json replaces) and
// surrogate escapes set bad.
func (l *Lexer) Str() string {
	if l.Peek() != '"' {
		l.bad = true
		return ""
	}
	start := l.i + 1
	ascii := true
	for j := start; j < len(l.b); j++ {
		if inString[l.b[j]] {
			continue
		}
		switch c := l.b[j]; {
		case c == '"':
			s := l.b[start:j]
			if !ascii && !utf8.Valid(s) {
				l.bad = true
				return ""
			}
			l.i = j + 1
			return string(s)
		case c == '\\':
			return l.escaped(start)
		case c < 0x20:
			l.bad = true
			return ""
		case c >= 0x80:
			ascii = false
		}
	}
	l.bad = true
	return ""
}

// StrOf is Str for a string that is usually one of known's keys: it
// returns known's value for it (its one copy) instead of a new string.
func (l *Lexer) StrOf(known map[string]string) string {
	if end, ok := l.plainEnd(); ok {
		if s, ok := known[string(l.b[l.i+1:end])]; ok {
			l.i = end + 1
			return s
		}
	}
	return l.Str()
}

// escaped reads the rest of a string holding escapes, from start (just
// after the opening quote).
func (l *Lexer) escaped(start int) string {
	out := make([]byte, 0, 64)
	seg := start // start of the run of plain bytes not yet copied
	for j := start; j < len(l.b); j++ {
		c := l.b[j]
		switch {
		case c == '"':
			out = append(out, l.b[seg:j]...)
			if !utf8.Valid(out) {
				l.bad = true
				return ""
			}
			l.i = j + 1
			return string(out)
		case c < 0x20:
			l.bad = true
			return ""
		case c != '\\':
			continue
		}
		out = append(out, l.b[seg:j]...)
		if j+1 >= len(l.b) {
			break
		}
		j++
		switch l.b[j] {
		case '"', '\\', '/':
			out = append(out, l.b[j])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if j+4 >= len(l.b) {
				l.bad = true
				return ""
			}
			r, err := strconv.ParseUint(string(l.b[j+1:j+5]), 16, 32)
			if err != nil || (r >= 0xD800 && r < 0xE000) {
				l.bad = true // not hex, or a surrogate
				return ""
			}
			out = utf8.AppendRune(out, rune(r))
			j += 4
		default:
			l.bad = true
			return ""
		}
		seg = j + 1
	}
	l.bad = true
	return ""
}

// Number reads a JSON number and returns its text.
func (l *Lexer) Number() []byte {
	l.ws()
	b, start := l.b, l.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	intStart := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == intStart || (b[intStart] == '0' && i-intStart > 1) {
		l.bad = true // no digits, or a leading zero
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		fracStart := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == fracStart {
			l.bad = true
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		l.bad = true // valid JSON, but rare: left to encoding/json
		return nil
	}
	l.i = i
	return b[start:i]
}

// Int reads an integer into an int64 as encoding/json does.
func (l *Lexer) Int() int64 {
	lit := l.Number()
	if l.bad {
		return 0
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	l.Fail(err != nil)
	return n
}

// Null reads a null if one comes next, and reports whether it did. For a
// slice, map or pointer of a zero value, null is what encoding/json leaves
// as nil.
func (l *Lexer) Null() bool {
	if l.Peek() != 'n' || len(l.b)-l.i < 4 || string(l.b[l.i:l.i+4]) != "null" {
		return false
	}
	l.i += 4
	return true
}

// Time reads a string as time.Time.UnmarshalJSON does (RFC 3339).
func (l *Lexer) Time() time.Time {
	var t time.Time
	start := l.Pos()
	l.Str()
	l.Fail(!l.bad && t.UnmarshalJSON(l.b[start:l.i]) != nil)
	return t
}

// Bool reads true or false.
func (l *Lexer) Bool() bool {
	l.ws()
	rest := l.b[l.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		l.i += 4
		return true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		l.i += 5
		return false
	}
	l.bad = true
	return false
}
