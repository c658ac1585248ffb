package projections

import (
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events"
)

func (h *history) rollout(name string) Rollout {
	h.t.Helper()
	ro, found, err := Reader{h.kv}.Rollout(name)
	if err != nil || !found {
		h.t.Fatalf("rollout of %s: found=%v err=%v", name, found, err)
	}
	return ro
}

func decide(group, decision string, target int64, wave int) events.Envelope {
	return ev(events.KindDeviceGroup, group, events.RolloutDecidedV{Decision: decision, Target: target, Wave: wave, Reason: "test"})
}

// TestFoldRollouts: a group with a policy starts settled; a change of an
// app it lists starts a rollout of the new version with the old one
// stable; decisions are accepted only while they apply (a second manager's
// same promote is refused); completing makes the new version stable; an
// abort with revert serves the stable config to every device under a new
// version; removing the policy removes the rollout.
func TestFoldRollouts(t *testing.T) {
	h := newHistory(t)
	h.accept(app("web", "nginx:1"))
	policy := &events.RolloutPolicy{Waves: []int{30, 100}, MinHealthyTime: "1s", HealthyDeadline: "1m", MaxFailedPercent: 10,
		MaxSilentPercent: 25, AutoPromote: true, AutoRevert: true, CanaryLabels: map[string]string{"ring": "canary"}}
	h.accept(ev(events.KindDeviceGroup, "edge", events.DeviceGroupCreatedV{Spec: events.DeviceGroupSpec{Apps: []string{"web"}, CronJobs: []string{}, Rollout: policy}}))
	ro := h.rollout("edge")
	if ro.State != RolloutCompleted || ro.Target != 1 || ro.Stable != 1 || !ro.ServesTarget("", nil) {
		t.Fatalf("a new group: %+v", ro)
	}

	v1 := ro.TargetInfo
	h.accept(ev(events.KindApp, "web", events.AppPatchedV{Patch: events.AppPatch{DockerImage: ptr("nginx:2")}})) // offset 2
	ro = h.rollout("edge")
	if ro.State != RolloutInProgress || ro.Target != 2 || ro.Stable != 1 || ro.Wave != 0 || ro.TargetInfo.Apps[0].DockerImage != "nginx:2" ||
		ro.StableInfo.Apps[0].DockerImage != "nginx:1" || len(ro.Decisions) != 1 || ro.Decisions[0].Decision != "start" {
		t.Fatalf("after a change: %+v", ro)
	}
	// Waves: about 30% of the devices in the first, canaries always,
	// devices with no ID never.
	first := 0
	for i := range 10000 {
		if ro.ServesTarget("device-"+itoa(i), nil) {
			first++
		}
	}
	if first < 2700 || first > 3300 {
		t.Fatalf("%d of 10000 devices in the first wave of 30%%", first)
	}
	if !ro.ServesTarget("any", map[string]string{"ring": "canary", "site": "x"}) || ro.ServesTarget("", map[string]string{"ring": "canary"}) {
		t.Fatal("a canary is not in the first wave, or a device with no ID is")
	}

	h.reject(decide("edge", events.DecisionPromote, 2, 1), ReasonRolloutMoved)  // not the active wave
	h.reject(decide("edge", events.DecisionPromote, 1, 0), ReasonRolloutMoved)  // not this rollout
	h.reject(decide("edge", events.DecisionComplete, 2, 0), ReasonRolloutMoved) // waves left
	h.reject(decide("edge", events.DecisionResume, 2, 0), ReasonRolloutMoved)   // not paused
	h.accept(decide("edge", events.DecisionPromote, 2, 0))                      // a manager promotes ...
	h.reject(decide("edge", events.DecisionPromote, 2, 0), ReasonRolloutMoved)  // ... another, racing, is refused
	if ro = h.rollout("edge"); ro.Wave != 1 || !ro.ServesTarget("device-1", nil) || ro.ServesTarget("", nil) {
		t.Fatalf("after the promotion: %+v", ro)
	}
	h.accept(decide("edge", events.DecisionComplete, 2, 1))
	if ro = h.rollout("edge"); ro.State != RolloutCompleted || ro.Stable != 2 || !ro.ServesTarget("", nil) {
		t.Fatalf("completed: %+v", ro)
	}

	// A bad version, aborted at its first wave and reverted.
	off := h.off
	h.accept(ev(events.KindApp, "web", events.AppPatchedV{Patch: events.AppPatch{DockerImage: ptr("nginx:bad")}}))
	h.accept(decide("edge", events.DecisionPause, off, 0))
	h.reject(decide("edge", events.DecisionPause, off, 0), ReasonRolloutMoved)
	abort := h.off
	h.accept(ev(events.KindDeviceGroup, "edge", events.RolloutDecidedV{Decision: events.DecisionAbort, Target: off, Wave: 0, Revert: true, Reason: "2 of 3 failed"}))
	ro = h.rollout("edge")
	if ro.State != RolloutReverted || ro.Reverted != abort || ro.Stable != 2 || ro.StableInfo.Apps[0].DockerImage != "nginx:2" ||
		ro.ServesTarget("device-1", map[string]string{"ring": "canary"}) || !ro.Reached("device-1", map[string]string{"ring": "canary"}) ||
		len(ro.Decisions) != 3 {
		t.Fatalf("reverted: %+v", ro)
	}
	h.reject(decide("edge", events.DecisionResume, off, 0), ReasonRolloutMoved)
	// The next change rolls out from the reverted config.
	h.accept(ev(events.KindApp, "web", events.AppPatchedV{Patch: events.AppPatch{DockerImage: ptr("nginx:3")}}))
	if ro = h.rollout("edge"); ro.State != RolloutInProgress || ro.Stable != abort || ro.StableInfo.DeviceGroupID != abort ||
		ro.StableInfo.Apps[0].DockerImage != "nginx:2" || ro.Reverted != 0 {
		t.Fatalf("the next rollout: %+v", ro)
	}
	if sameConfig(v1, ro.StableInfo) {
		t.Fatal("sameConfig says nginx:1 and nginx:2 are the same")
	}
	// No policy, no rollout; a decision on a group without one is refused.
	h.accept(ev(events.KindDeviceGroup, "edge", events.DeviceGroupReplacedV{Spec: events.DeviceGroupSpec{Apps: []string{"web"}, CronJobs: []string{}}}))
	if _, found, _ := (Reader{h.kv}).Rollout("edge"); found {
		t.Fatal("a group without a policy kept its rollout")
	}
	h.reject(decide("edge", events.DecisionPromote, off, 0), ReasonRolloutMoved)
}
