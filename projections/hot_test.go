package projections

import (
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
