package manager

import (
	"context"
	"net/http"
	"time"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/rollouts"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// DefaultSilentAfter: a device not heard from for this long is silent.
const DefaultSilentAfter = 2 * time.Minute

// Rollout statuses of a device (reports.StatusOf decides).
const (
	RolloutConverged = reports.StatusConverged
	RolloutPending   = reports.StatusPending
	RolloutFailed    = reports.StatusFailed
	RolloutSilent    = reports.StatusSilent
)

// deviceBehind is a device not converged.
type deviceBehind struct {
	DeviceID       string    `json:"device_id"`
	Hostname       string    `json:"hostname"`
	Status         string    `json:"status"`
	AppliedVersion int64     `json:"applied_version"`
	LastSeen       time.Time `json:"last_seen"`
	Errors         []string  `json:"errors"`
}

// behindList is Standing's devices behind, as listed (20 at most).
const behindList = 20

// standingOf is where group's devices stand against version, from the
// report store's counters (the group's inventory is not read).
func (s *Server) standingOf(group string, version int64, now time.Time, silentAfter time.Duration) (reports.Standing, []deviceBehind, error) {
	st, err := s.reports.Standing(group, version, now, silentAfter, behindList)
	slow := []deviceBehind{}
	for _, d := range st.Behind {
		slow = append(slow, deviceBehind{d.DeviceID, d.Hostname, reports.StatusOf(d, version, now, silentAfter), d.AppliedVersion, d.LastSeen, d.Errors})
	}
	return st, slow, err
}

// rollout is GET /device_groups/<dg>/rollout: where the group's devices
// stand against its current version, with the slowest listed.
func (s *Server) rollout(w http.ResponseWriter, r *http.Request) {
	if s.reports == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "reporting is not configured on this manager"})
		return
	}
	group := name(r)
	s.caughtUp(r.Context())
	silentAfter := DefaultSilentAfter
	if q := r.URL.Query().Get("silent_after"); q != "" {
		d, err := time.ParseDuration(q)
		if err != nil || d <= 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{`silent_after: must be a positive duration ("90s")`}})
			return
		}
		silentAfter = d
	}
	var g projections.DeviceGroup
	var ro projections.Rollout
	var found, hasRollout bool
	err := s.proj.View(func(pr projections.Reader) error {
		var err error
		if g, found, err = pr.DeviceGroup(group); err != nil || !found {
			return err
		}
		ro, hasRollout, err = pr.Rollout(group)
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !found {
		writeJSON(w, http.StatusForbidden, map[string]any{existsKey(events.KindDeviceGroup): false})
		return
	}
	now := time.Now()
	st, slow, err := s.standingOf(group, g.Version, now, silentAfter)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts := st.Counts
	answer := map[string]any{"device_group": group, "device_group_id": g.Version, "devices": st.Devices,
		"converged": counts[RolloutConverged], "pending": counts[RolloutPending], "failed": counts[RolloutFailed],
		"silent": counts[RolloutSilent], "slowest": slow}
	if hasRollout {
		// A rollout's waves are counted from its devices' entries.
		devs, _, err := s.reports.Devices(reports.DeviceQuery{Group: group})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		answer["rollout"] = rolloutView(ro, devs, now, silentAfter)
	}
	writeJSON(w, http.StatusOK, s.completeness(answer))
}

// handDecision is a decision by hand on group's rollout as it is now,
// once this manager caught up with the log: promote at the last wave
// completes it; abort reverts as the policy says unless revert ("true",
// "false") says.
func (s *Server) handDecision(ctx context.Context, group, decision, revert string) (d events.RolloutDecidedV, groupFound, found bool, err error) {
	s.caughtUp(ctx)
	var ro projections.Rollout
	err = s.proj.View(func(pr projections.Reader) error {
		var err error
		if _, groupFound, err = pr.DeviceGroup(group); err != nil || !groupFound {
			return err
		}
		ro, found, err = pr.Rollout(group)
		return err
	})
	if err != nil || !found {
		return d, groupFound, found, err
	}
	d = events.RolloutDecidedV{Decision: decision, Target: ro.Target, Wave: ro.Wave}
	if decision == events.DecisionPromote && ro.Wave >= len(ro.Policy.Waves)-1 {
		d.Decision = events.DecisionComplete
	}
	if decision == events.DecisionAbort {
		d.Revert = ro.Policy.AutoRevert
		if revert != "" {
			d.Revert = revert == "true"
		}
	}
	return d, groupFound, found, nil
}

// decideRollout is POST /device_groups/<dg>/rollout/<decision>: a decision
// by hand on the group's rollout as it is now (promote at the last wave
// completes it; abort reverts as the policy says unless ?revert= says).
func (s *Server) decideRollout(decision string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		group := name(r)
		revert := r.URL.Query().Get("revert")
		if revert != "" && revert != "true" && revert != "false" || revert != "" && decision != events.DecisionAbort {
			writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{"revert: true or false, with abort only"}})
			return
		}
		d, groupFound, found, err := s.handDecision(r.Context(), group, decision, revert)
		switch {
		case err != nil:
			s.fail(w, r, err)
			return
		case !groupFound:
			writeJSON(w, http.StatusForbidden, map[string]any{existsKey(events.KindDeviceGroup): false})
			return
		case !found:
			writeJSON(w, http.StatusConflict, map[string]any{"rollout_moved": true, "message": "device group " + group + " has no rollout policy"})
			return
		}
		command(s, http.StatusAccepted, func(ctx context.Context, m commands.Meta) (map[string]any, error) {
			d.Reason = "by " + m.Actor
			ro, err := s.cmds.DecideRollout(ctx, m, group, d)
			if err != nil {
				return nil, err
			}
			return rolloutView(ro, nil, time.Now(), DefaultSilentAfter), nil
		}, nil)(w, r)
	}
}

// rolloutView is a rollout as GET .../rollout shows it: its state, policy,
// versions, decisions, and per wave its devices by health (devs nil: no
// counts).
func rolloutView(ro projections.Rollout, devs []reports.Device, now time.Time, silentAfter time.Duration) map[string]any {
	type wave struct {
		Wave    int    `json:"wave"`
		Percent int    `json:"percent"`
		State   string `json:"state"` // done, active, waiting
		Devices int    `json:"devices"`
		Healthy int    `json:"healthy"`
		Pending int    `json:"pending"`
		Failed  int    `json:"failed"`
		Silent  int    `json:"silent"`
	}
	waves := make([]wave, len(ro.Policy.Waves))
	for i, p := range ro.Policy.Waves {
		waves[i] = wave{Wave: i + 1, Percent: p, State: "waiting"}
		switch {
		case ro.State == projections.RolloutCompleted || i < ro.Wave:
			waves[i].State = "done"
		case i == ro.Wave:
			waves[i].State = "active"
		}
	}
	for _, d := range devs {
		i := ro.WaveOf(d.DeviceID, d.Labels)
		if i >= len(waves) {
			continue
		}
		waves[i].Devices++
		switch rollouts.DeviceHealth(ro, d, now, silentAfter) {
		case rollouts.Healthy:
			waves[i].Healthy++
		case rollouts.Failed:
			waves[i].Failed++
		case rollouts.Silent:
			waves[i].Silent++
		default:
			waves[i].Pending++
		}
	}
	decisions := make([]projections.Decision, len(ro.Decisions))
	for i, d := range ro.Decisions {
		d.Wave++ // waves are counted from 1 here, as active_wave
		decisions[i] = d
	}
	return map[string]any{"state": ro.State, "policy": ro.Policy, "target": ro.Target, "stable": ro.Stable, "reverted": ro.Reverted,
		"active_wave": ro.Wave + 1, "started_at": ro.StartedAt, "wave_started_at": ro.WaveStartedAt,
		"waves": waves, "decisions": decisions}
}
