package jsonlex

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// readAll reads b as one value of v's type with the lexer; ok=false when
// it leaves b to encoding/json.
func readAll(b []byte, v any) bool {
	l := New(b, 0)
	switch p := v.(type) {
	case *string:
		*p = l.Str()
	case *int64:
		*p = l.Int()
	case *bool:
		*p = l.Bool()
	case *[]string:
		if !l.Null() {
			*p = l.Strings()
		}
	case *map[string]string:
		*p = l.StringMap()
	case *any:
		l.Skip()
	}
	return !l.Bad() && l.End()
}

// sameAsJSON checks that what the lexer reads, encoding/json reads the same.
func sameAsJSON(t *testing.T, b []byte) (read int) {
	t.Helper()
	for _, mk := range []func() any{
		func() any { return new(string) }, func() any { return new(int64) }, func() any { return new(bool) },
		func() any { return new([]string) }, func() any { return new(map[string]string) },
	} {
		got, want := mk(), mk()
		if !readAll(b, got) {
			continue
		}
		read++
		if err := json.Unmarshal(b, want); err != nil {
			t.Fatalf("lexer read %q as %T, encoding/json rejects it: %v", b, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("lexer read %q as %#v, encoding/json as %#v", b, got, want)
		}
	}
	var skipped any
	if readAll(b, &skipped) && !json.Valid(b) {
		t.Fatalf("lexer skipped over %q, which is not JSON", b)
	}
	return read
}

var seeds = []string{
	`"plain"`, `"esc \" \\ \/ \b \f \n \r \t \u00e9 \u20ac"`, `"é"`, ` "ws" `, `0`, `-0`, `-12`, `9223372036854775807`,
	`true`, `false`, `["a","b"]`, `[]`, `null`, `{"k":"v","":"e"}`, `{}`, `{"a":[1,{"b":true}],"c":-1.5}`, "\"del\x7f\"",
	// Left to encoding/json:
	`"\ud83d\ude00"`, "\"\xff\"", "\"ctl\x01\"", `01`, `1e3`, `9223372036854775808`, `{"k":"v","k":"w"}`, `[1,]`, `tru`, `"open`,
}

func TestLexerReadsAsEncodingJSON(t *testing.T) {
	total := 0
	for _, s := range seeds {
		total += sameAsJSON(t, []byte(s))
	}
	// Each of the first 16 seeds is read as one type (null as a nil
	// list); the rest as none.
	if total != 16 {
		t.Fatalf("the lexer read %d seeds, want 16", total)
	}
	if Digits([]byte("0080")) != 80 || Digits([]byte("+1")) != -1 || Digits([]byte("1234567890")) != -1 || Digits(nil) != -1 {
		t.Fatal("Digits")
	}
}

func FuzzLexer(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	known := map[string]string{"plain": "plain", "ws": "ws", "k": "k", "": ""}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsJSON(t, b)
		// StrOf reads what Str reads, whatever the input.
		want, got := New(b, 0), New(b, 0)
		if ws, gs := want.Str(), got.StrOf(known); gs != ws || got.Bad() != want.Bad() || got.Offset() != want.Offset() {
			t.Fatalf("StrOf(%q) = %q (bad %v, at %d), Str: %q (bad %v, at %d)", b, gs, got.Bad(), got.Offset(), ws, want.Bad(), want.Offset())
		}
	})
}

// TestStrOfReturnsTheKnownCopy: StrOf reads what Str reads, and a known
// string (written plainly) as the map's own copy, not a new one.
func TestStrOfReturnsTheKnownCopy(t *testing.T) {
	known := map[string]string{"app.created": "app.created", "app": "app"}
	for _, in := range []string{`"app.created"`, `"app"`, `"app.cr\u0065ated"`, `"other"`, `"é"`, `"bad\u0001"`, `42`, `"unterminated`} {
		want := New([]byte(in), 0)
		ws := want.Str()
		got := New([]byte(in), 0)
		gs := got.StrOf(known)
		if gs != ws || got.Bad() != want.Bad() || got.Offset() != want.Offset() {
			t.Errorf("StrOf(%s) = %q (bad %v, at %d), Str: %q (bad %v, at %d)", in, gs, got.Bad(), got.Offset(), ws, want.Bad(), want.Offset())
		}
		if k, ok := known[gs]; ok && !strings.Contains(in, `\`) && unsafe.StringData(k) != unsafe.StringData(gs) {
			t.Errorf("StrOf(%s) made a new string", in)
		}
	}
}

// BenchmarkStr: an image reference, the usual string of an event.
func BenchmarkStr(b *testing.B) {
	in := []byte(`"registry.local/app1234:987654"`)
	for b.Loop() {
		if New(in, 0).Str() == "" {
			b.Fatal("empty")
		}
	}
}
