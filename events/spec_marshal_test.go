package events

import (
	"encoding/json"
	"testing"
)

// TestContainersPerMarshal: the direct encoding of the common case writes
// exactly what encoding/json writes for the same object.
func TestContainersPerMarshal(t *testing.T) {
	for _, c := range []ContainersPer{{PerServer, 1}, {PerInstance, 3}, {PerMemory, 512}, {PerCPU, 0.5}, {PerCPU, 2},
		{PerServer, 1e6}, {PerServer, -4}, {PerMemory, 1e20}, {"gpu\"x", 1}} {
		got, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]float64{c.Kind: c.Value})
		if string(got) != string(want) {
			t.Errorf("%+v: %s, want %s", c, got, want)
		}
		var back ContainersPer
		if err := json.Unmarshal(got, &back); err != nil || back != c {
			t.Errorf("%s decodes to %+v, %v", got, back, err)
		}
	}
}
