package projections

import (
	"bytes"
	"fmt"
	"testing"
)

// TestHotCacheBounded: the cache never holds more than hotMaxBytes, and
// what was put last is there.
func TestHotCacheBounded(t *testing.T) {
	c := newHotCache()
	v := make([]byte, 4<<10)
	for i := range 2 * hotMaxBytes / len(v) {
		k := fmt.Sprintf("app/a%d", i)
		c.put(k, v, true)
		if c.bytes > hotMaxBytes {
			t.Fatalf("after %d puts the cache holds %d bytes, over %d", i+1, c.bytes, hotMaxBytes)
		}
		if e, ok := c.m[k]; !ok || !e.found {
			t.Fatalf("%s is not in the cache just after its put", k)
		}
	}
	c.put("app/a0", nil, false)
	c.put("app/a0", v, true) // an overwrite counts once
	want := 0
	for k, e := range c.m {
		want += len(k) + len(e.v) + hotEntryOverhead
	}
	if c.bytes != want {
		t.Fatalf("the cache counts %d bytes, holds %d", c.bytes, want)
	}
}

// TestPrefixSet: a prefixSet answers as a loop of bytes.HasPrefix over
// its prefixes, for keys that share first bytes with several of them.
func TestPrefixSet(t *testing.T) {
	ps := [][]byte{[]byte("app/"), []byte("a/"), []byte("cron/"), []byte("idx/dg-app/"), []byte("v/")}
	s := newPrefixSet(ps...)
	for _, k := range []string{"", "a", "a/", "a/x", "app", "app/", "app/web", "apx/", "cmd/1", "cron/", "cron", "idx/dg-app/w", "idx/dg-cron/w", "v/", "v", "x/"} {
		want := false
		for _, p := range ps {
			want = want || bytes.HasPrefix([]byte(k), p)
		}
		if got := s.has([]byte(k)); got != want {
			t.Errorf("has(%q) = %v, want %v", k, got, want)
		}
	}
}
