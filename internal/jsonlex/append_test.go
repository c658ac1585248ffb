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
