package projections

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Rollouts (docs/rollouts.md). A device group with a rollout policy takes
// each change of its config in waves: the fold keeps, per such group, the
// version rolling out (Target) and the last version every device was
// healthy on (Stable), each with the config it serves, and the active
// wave. Which of the two configs a device gets is a pure function of its
// ID, its labels and the rollout (WaveOf), so every manager answers every
// device the same with no coordination. Decisions (promote, pause,
// resume, abort, complete) are events, accepted only while they still
// apply: of managers racing to take one, exactly one does.

// Rollout states.
const (
	RolloutInProgress = "in_progress"
	RolloutPaused     = "paused"
	RolloutCompleted  = "completed"
	RolloutAborted    = "aborted"
	RolloutReverted   = "reverted"
)

// Rollout is a device group's rollout (key ro/<group>).
type Rollout struct {
	Group  string               `json:"device_group"`
	Policy events.RolloutPolicy `json:"policy"`
	State  string               `json:"state"`
	// Target is the version rolling out (the group's device_group_id
	// then), Start the offset that started the rollout: the seed of the
	// waves.
	Target    int64     `json:"target"`
	Start     int64     `json:"start"`
	StartedAt time.Time `json:"started_at"`
	// Stable is the last version every device was healthy on.
	Stable int64 `json:"stable"`
	// Reverted is the offset of the revert (state reverted): the devices
	// the rollout reached get the stable config under it (versions never
	// go backwards); the others keep it under Stable, with nothing to
	// fetch.
	Reverted int64 `json:"reverted,omitempty"`
	// Wave is the active wave: the devices of waves 0..Wave get Target.
	Wave          int        `json:"wave"`
	WaveStartedAt time.Time  `json:"wave_started_at"`
	Decisions     []Decision `json:"decisions"`
	// The configs served: TargetInfo is the group's config at Target,
	// StableInfo at Stable.
	TargetInfo Info `json:"target_info"`
	StableInfo Info `json:"stable_info"`
}

// Decision is one step of a rollout, from the event that took it.
type Decision struct {
	Offset   int64                 `json:"offset"`
	Time     time.Time             `json:"time"`
	Actor    string                `json:"actor"`
	Decision string                `json:"decision"` // "start", or an events.Decision*
	Wave     int                   `json:"wave"`
	Revert   bool                  `json:"revert,omitempty"`
	Reason   string                `json:"reason"`
	Counts   *events.RolloutCounts `json:"counts,omitempty"`
	Since    *time.Time            `json:"since,omitempty"`
}

// Rollout returns a group's rollout (found false: the group has no policy).
func (r Reader) Rollout(group string) (Rollout, bool, error) {
	return getDoc[Rollout](r.kv, key(prefixRollout, group))
}

// ServesTarget says whether a device gets the version rolling out (else
// the stable one). A device that gives no ID (a Nebula 2.7 worker) gets
// it only once the rollout completes.
func (ro Rollout) ServesTarget(deviceID string, labels map[string]string) bool {
	switch ro.State {
	case RolloutCompleted:
		return true
	case RolloutReverted:
		return false
	}
	return ro.Reached(deviceID, labels)
}

// Reached says whether the rollout reached a device: its wave is active
// or done (a device with no ID: never before completion).
func (ro Rollout) Reached(deviceID string, labels map[string]string) bool {
	return deviceID != "" && ro.WaveOf(deviceID, labels) <= ro.Wave
}

// WaveOf is the wave a device belongs to: the first, for a device with
// every canary label; otherwise the first wave whose cumulative
// percentage is above the device's place, a hash of the group, the
// rollout's start and the device ID (in [0, 100)). It depends on nothing
// else, so it is stable as devices come and go.
func (ro Rollout) WaveOf(deviceID string, labels map[string]string) int {
	waves := ro.Policy.Waves
	if len(waves) == 0 {
		return 0
	}
	if c := ro.Policy.CanaryLabels; len(c) > 0 {
		canary := true
		for k, v := range c {
			if got, ok := labels[k]; !ok || got != v {
				canary = false
				break
			}
		}
		if canary {
			return 0
		}
	}
	place := float64(DevicePlace(ro.Group, ro.Start, deviceID)) / 100
	for i, w := range waves {
		if place < float64(w) {
			return i
		}
	}
	return len(waves) - 1
}

// DevicePlace is a device's place in a rollout, from 0 to 9999.
func DevicePlace(group string, start int64, deviceID string) int {
	h := sha256.New()
	h.Write([]byte(group))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, start, 10))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	return int(binary.BigEndian.Uint64(h.Sum(nil)[:8]) % 10000)
}

// followRollouts keeps the rollouts of the groups with a policy that an
// accepted change touched (f.rolling; a policy removed, or its group
// deleted, drops the rollout where that change is folded): a group given a
// policy starts with its config as the stable one (its devices run it); a
// change of a group's config starts a rollout of the new version, the
// stable one being the last completed rollout's (or the config a revert
// serves).
func (f *folder) followRollouts() error {
	if _, ok := f.env.Payload.(events.RolloutDecidedV); ok {
		return nil // decideRollout did it
	}
	names := make([]string, 0, len(f.rolling))
	for n := range f.rolling {
		names = append(names, n)
	}
	slices.Sort(names)
	r := Reader{f.kv}
	for _, name := range names {
		k := key(prefixRollout, name)
		g, found, err := r.DeviceGroup(name)
		if err != nil {
			return err
		}
		if !found || g.Rollout == nil {
			continue // touched with a policy, it has one: never so
		}
		ro, hasRollout, err := r.Rollout(name)
		if err != nil {
			return err
		}
		info, _, err := r.Info(name)
		if err != nil {
			return err
		}
		if !hasRollout {
			ro = Rollout{Group: name, State: RolloutCompleted, Target: g.Version, Stable: g.Version, Start: f.off,
				StartedAt: f.env.Time, WaveStartedAt: f.env.Time, Decisions: []Decision{}, TargetInfo: info, StableInfo: info}
		} else if sameConfig(ro.TargetInfo, info) {
			// Same config, new version (the policy changed, say): the
			// rollout goes on as it was.
			ro.Target, ro.TargetInfo = g.Version, info
			if ro.State == RolloutCompleted {
				ro.Stable, ro.StableInfo = g.Version, info
			}
		} else {
			switch ro.State {
			case RolloutCompleted:
				ro.Stable, ro.StableInfo = ro.Target, ro.TargetInfo
			case RolloutReverted:
				// Every device gets the stable config under the revert's
				// version from now on.
				ro.Stable, ro.StableInfo.DeviceGroupID = ro.Reverted, ro.Reverted
			}
			ro.Reverted = 0
			ro.State, ro.Target, ro.TargetInfo, ro.Start = RolloutInProgress, g.Version, info, f.off
			ro.StartedAt, ro.Wave, ro.WaveStartedAt = f.env.Time, 0, f.env.Time
			ro.Decisions = []Decision{{Offset: f.off, Time: f.env.Time, Actor: f.env.Actor, Decision: "start",
				Reason: "a change of the group's config (" + string(f.env.Type) + " of " + f.env.Aggregate.Name + ")"}}
		}
		ro.Policy = *g.Rollout
		if err := putDoc(f.kv, k, ro); err != nil {
			return err
		}
	}
	return nil
}

// sameConfig says whether two configs are the same but for their version.
func sameConfig(a, b Info) bool {
	a.DeviceGroupID, b.DeviceGroupID = 0, 0
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// decideRollout folds a decision on a group's rollout: accepted only
// while it applies (the rollout of that version, on that wave, in a state
// the decision can leave).
func (f *folder) decideRollout(name string, p events.RolloutDecidedV) error {
	k := key(prefixRollout, name)
	if _, found, err := f.kv.Get(key(prefixGroup, name)); err != nil || !found {
		return notFoundOr(err, "device group", name)
	}
	ro, found, err := getDoc[Rollout](f.kv, k)
	if err != nil {
		return err
	}
	if !found {
		return reject(ReasonRolloutMoved, "device group %q has no rollout policy", name)
	}
	if ro.Target != p.Target || ro.Wave != p.Wave {
		return reject(ReasonRolloutMoved, "the rollout of %q is of version %d at wave %d, not version %d at wave %d", name, ro.Target, ro.Wave+1, p.Target, p.Wave+1)
	}
	allowed := map[string][]string{
		events.DecisionPromote:  {RolloutInProgress, RolloutPaused},
		events.DecisionPause:    {RolloutInProgress},
		events.DecisionResume:   {RolloutPaused},
		events.DecisionAbort:    {RolloutInProgress, RolloutPaused},
		events.DecisionComplete: {RolloutInProgress, RolloutPaused},
	}[p.Decision]
	if !slices.Contains(allowed, ro.State) {
		return reject(ReasonRolloutMoved, "the rollout of %q is %s: it cannot take %s", name, ro.State, p.Decision)
	}
	last := len(ro.Policy.Waves) - 1
	switch p.Decision {
	case events.DecisionPromote:
		if ro.Wave >= last {
			return reject(ReasonRolloutMoved, "the rollout of %q is at its last wave: complete it", name)
		}
		ro.Wave++
		ro.WaveStartedAt = f.env.Time
	case events.DecisionPause:
		ro.State = RolloutPaused
	case events.DecisionResume:
		ro.State = RolloutInProgress
		ro.WaveStartedAt = f.env.Time // the deadline counts from here
	case events.DecisionAbort:
		ro.State = RolloutAborted
		if p.Revert {
			// The devices the rollout reached get the stable config
			// again, under this offset (versions never go backwards).
			ro.State, ro.Reverted = RolloutReverted, f.off
		}
	case events.DecisionComplete:
		if ro.Wave < last {
			return reject(ReasonRolloutMoved, "the rollout of %q is at wave %d of %d: promote it first", name, ro.Wave+1, last+1)
		}
		ro.State = RolloutCompleted
		ro.Stable, ro.StableInfo = ro.Target, ro.TargetInfo
	}
	ro.Decisions = append(ro.Decisions, Decision{Offset: f.off, Time: f.env.Time, Actor: f.env.Actor, Decision: p.Decision,
		Wave: p.Wave, Revert: p.Revert, Reason: p.Reason, Counts: p.Counts, Since: p.Since})
	f.markTouched(name) // the devices' answers change
	return putDoc(f.kv, k, ro)
}

// Rollouts lists the groups that have a rollout (a policy), sorted.
func (r Reader) Rollouts() ([]string, error) {
	var names []string
	err := r.kv.Keys(prefixRollout, func(k []byte) error {
		names = append(names, string(k[len(prefixRollout):]))
		return nil
	})
	return names, err
}
