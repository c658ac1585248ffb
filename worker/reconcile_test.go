package worker

import (
	"maps"
	"testing"
)

// TestNextApplied: after a reconcile, an app is at the version its plan
// ran to, at the config's version when it needed no plan, where it was
// when its plan failed or was blocked, and forgotten when it left.
func TestNextApplied(t *testing.T) {
	apps := []App{{Name: "ran", Version: 9}, {Name: "unchanged", Version: 7}, {Name: "failed", Version: 9}, {Name: "new", Version: 9}}
	applied := map[string]int64{"ran": 5, "unchanged": 5, "failed": 5, "gone": 3}
	plans := []AppPlan{{App: "ran", Version: 9}, {App: "failed", Version: 9}, {App: "new", Version: 9, Blocked: "image missing"}}
	done := map[string]int64{"ran": 9}
	got := nextApplied(applied, done, plans, apps)
	want := map[string]int64{"ran": 9, "unchanged": 7, "failed": 5}
	if !maps.Equal(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
}
