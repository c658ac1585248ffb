package events

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRolloutPolicy: defaults fill what a policy leaves out; each bad value
// is refused naming its field; unknown keys are refused.
func TestRolloutPolicy(t *testing.T) {
	var p RolloutPolicy
	if err := json.Unmarshal([]byte(`{"waves": [10, 100]}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.MinHealthyTime != DefaultMinHealthyTime || p.HealthyDeadline != DefaultHealthyDeadline || !p.AutoPromote || !p.AutoRevert ||
		p.MaxFailedPercent != DefaultMaxFailedPercent || p.Validate() != nil {
		t.Fatalf("defaults: %+v %v", p, p.Validate())
	}
	if err := json.Unmarshal([]byte(`{"waves": [100], "wave": 1}`), &p); err == nil {
		t.Fatal("an unknown key was taken")
	}
	for body, field := range map[string]string{
		`{"waves": []}`:                                      "rollout.waves",
		`{"waves": [50, 40, 100]}`:                           "rollout.waves",
		`{"waves": [10, 90]}`:                                "rollout.waves",
		`{"waves": [0, 100]}`:                                "rollout.waves",
		`{"waves": [100], "min_healthy_time": "soon"}`:       "rollout.min_healthy_time",
		`{"waves": [100], "healthy_deadline": "10s"}`:        "rollout.healthy_deadline",
		`{"waves": [100], "max_failed_percent": 101}`:        "rollout.max_failed_percent",
		`{"waves": [100], "max_silent_percent": -1}`:         "rollout.max_silent_percent",
		`{"waves": [100], "canary_labels": {"ring": "a/b"}}`: "rollout.canary_labels",
		`{"waves": [100], "canary_labels": {"": "canary"}}`:  "rollout.canary_labels",
	} {
		var p RolloutPolicy
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Fatalf("%s: %v, want an error naming %s", body, err, field)
		}
	}
}

// TestParseLabels: labels read as a worker declares them, written back
// sorted; bad ones refused.
func TestParseLabels(t *testing.T) {
	l, err := ParseLabels(" site=berlin, ring=canary ,")
	if err != nil || FormatLabels(l) != "ring=canary,site=berlin" {
		t.Fatalf("%v %v", l, err)
	}
	for _, bad := range []string{"ring", "ring=a,ring=b", "=x", "a=b/c", strings.Repeat("k", 64) + "=v"} {
		if _, err := ParseLabels(bad); err == nil {
			t.Fatalf("%q was taken", bad)
		}
	}
	if l, err := ParseLabels(""); err != nil || len(l) != 0 {
		t.Fatalf("no labels: %v %v", l, err)
	}
}
