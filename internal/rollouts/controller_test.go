package rollouts

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// TestJudge: the decisions a rollout's active waves call for (pure logic:
// the end-to-end test is manager's TestRolloutController).
func TestJudge(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	policy := events.RolloutPolicy{Waves: []int{50, 100}, MinHealthyTime: "60s", HealthyDeadline: "10m", MaxFailedPercent: 10,
		MaxSilentPercent: 25, AutoPromote: true, AutoRevert: true}
	ro := projections.Rollout{Group: "edge", Policy: policy, State: projections.RolloutInProgress, Target: 40, Start: 40, Wave: 1,
		WaveStartedAt: now.Add(-time.Minute)}
	device := func(i int, mod func(*reports.Device)) reports.Device {
		d := reports.Device{DeviceID: "d" + strconv.Itoa(i), LastSeen: now, AppliedVersion: 40, ConvergedAt: 40, StatusChangedAt: now.Add(-2 * time.Minute),
			Apps: []events.AppStatus{{Name: "web", Status: events.AppStatusRunning, Running: 1, Expected: 1}}}
		if mod != nil {
			mod(&d)
		}
		return d
	}
	fleet := func(n int, mod func(i int, d *reports.Device)) []reports.Device {
		var out []reports.Device
		for i := range n {
			out = append(out, device(i, func(d *reports.Device) {
				if mod != nil {
					mod(i, d)
				}
			}))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		ro     func(projections.Rollout) projections.Rollout
		devs   []reports.Device
		want   string // decision, "" none
		revert bool
		reason string
	}{
		{"all healthy at the last wave", nil, fleet(20, nil), events.DecisionComplete, false, "20 of 20 devices"},
		{"all healthy at the first wave", func(r projections.Rollout) projections.Rollout { r.Wave = 0; return r }, fleet(20, nil), events.DecisionPromote, false, "healthy"},
		{"healthy, not for long enough", nil, fleet(20, func(i int, d *reports.Device) { d.StatusChangedAt = now.Add(-time.Second) }), "", false, ""},
		{"one pending", nil, fleet(20, func(i int, d *reports.Device) {
			if i == 3 {
				d.AppliedVersion = 30
			}
		}), "", false, ""},
		{"failed over the threshold", nil, fleet(20, func(i int, d *reports.Device) {
			if i < 3 {
				d.Apps[0].Status = events.AppStatusExited
			}
		}), events.DecisionAbort, true, "3 of 20 devices of wave 2 of 2 (100% of the devices) failed (max 10%)"},
		{"failed under the threshold", nil, fleet(20, func(i int, d *reports.Device) {
			if i < 2 {
				d.Apps[0].Status = events.AppStatusUnhealthy
			}
		}), "", false, ""},
		{"silent over the threshold", nil, fleet(20, func(i int, d *reports.Device) {
			if i < 6 {
				d.LastSeen = now.Add(-time.Hour)
			}
		}), events.DecisionAbort, true, "silent"},
		{"deadline", func(r projections.Rollout) projections.Rollout {
			r.WaveStartedAt = now.Add(-11 * time.Minute)
			return r
		},
			fleet(20, func(i int, d *reports.Device) { d.AppliedVersion = 30 }), events.DecisionAbort, true, "not healthy within 10m"},
		{"no auto revert", func(r projections.Rollout) projections.Rollout { r.Policy.AutoRevert = false; return r },
			fleet(2, func(i int, d *reports.Device) { d.Apps[0].Status = events.AppStatusFailed }), events.DecisionAbort, false, "failed"},
		{"no auto promote", func(r projections.Rollout) projections.Rollout { r.Policy.AutoPromote = false; return r }, fleet(3, nil), "", false, ""},
		{"no device", nil, nil, events.DecisionComplete, false, "0 of 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ro
			if tc.ro != nil {
				r = tc.ro(r)
			}
			d, due := Judge(r, tc.devs, now, 2*time.Minute)
			if got := map[bool]string{true: d.Decision}[due]; got != tc.want || due && (d.Revert != tc.revert || !strings.Contains(d.Reason, tc.reason)) {
				t.Fatalf("decision %q (due %v) revert %v reason %q; want %q revert %v reason with %q", d.Decision, due, d.Revert, d.Reason, tc.want, tc.revert, tc.reason)
			}
			if due && d.Decision == events.DecisionAbort && d.Since == nil {
				t.Fatal("an abort says not since when")
			}
			if due && (d.Target != r.Target || d.Wave != r.Wave || d.Counts == nil || d.Validate() != nil) {
				t.Fatalf("decision %+v", d)
			}
		})
	}
}
