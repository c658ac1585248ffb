package jsonlex

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestAppendStringMapIsJSONMarshal holds the map appender to json.Marshal:
// nil, empty, one pair (its own path), a few, and more than fit on the
// stack, with keys and values that need escaping.
func TestAppendStringMapIsJSONMarshal(t *testing.T) {
	maps := []map[string]string{nil, {}, {"REV": "7"}, {"é <b>&": "\u2028\"\\", "": "x"}}
	for _, n := range []int{2, 3, 16, 17, 40} {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("K%02d\t%d", (i*7)%n, i)] = fmt.Sprintf("v<%d>", i)
		}
		maps = append(maps, m)
	}
	for _, m := range maps {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendStringMap([]byte("prefix"), m); string(got) != "prefix"+string(want) {
			t.Errorf("AppendStringMap(%d pairs) = %s, want prefix%s", len(m), got, want)
		}
	}
}

// TestAppendStringIsJSONMarshal: every byte alone, in the middle of a name
// and at its end, and invalid UTF-8, as json.Marshal writes them.
func TestAppendStringIsJSONMarshal(t *testing.T) {
	var cases []string
	for c := range 256 {
		cases = append(cases, string(rune(c)), "app"+string([]byte{byte(c)})+"x", "registry.local/web:"+string([]byte{byte(c)}))
	}
	cases = append(cases, "", "\u2028", "\xff\xfe", "é")
	for _, s := range cases {
		appendStringIsMarshal(t, s)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "web", "a<b>&\"\\", "\u2028\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(appendStringIsMarshal)
}

func appendStringIsMarshal(t *testing.T, s string) {
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendString([]byte("p"), s); string(got) != "p"+string(want) {
		t.Fatalf("AppendString(%q) = %s, want p%s", s, got, want)
	}
}

// BenchmarkAppendString: an image reference, the usual string of a
// document the fold writes.
func BenchmarkAppendString(b *testing.B) {
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = AppendString(buf[:0], "registry.local/app1234:987654")
	}
}
