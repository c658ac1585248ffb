package manager

import (
	"net/http"
	"sort"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// DefaultSilentAfter: a device not heard from for this long is silent.
const DefaultSilentAfter = 2 * time.Minute

// Rollout statuses of a device.
const (
	RolloutConverged = "converged" // applied the group's current version, every app as wanted
	RolloutPending   = "pending"   // not yet
	RolloutFailed    = "failed"    // an app failed (engine refused, image not pullable)
	RolloutSilent    = "silent"    // not heard from
)

// rolloutStatus places one device against the group's version.
func rolloutStatus(d reports.Device, version int64, now time.Time, silentAfter time.Duration) string {
	if now.Sub(d.LastSeen) > silentAfter {
		return RolloutSilent
	}
	for _, a := range d.Apps {
		if a.Status == events.AppStatusFailed || a.Status == events.AppStatusPullFailed {
			return RolloutFailed
		}
	}
	if d.AppliedVersion < version {
		return RolloutPending
	}
	for _, a := range d.Apps {
		if a.Status != events.AppStatusRunning && a.Status != events.AppStatusStopped {
			return RolloutPending
		}
	}
	return RolloutConverged
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
	var found bool
	err := s.proj.View(func(pr projections.Reader) error {
		var err error
		g, found, err = pr.DeviceGroup(group)
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
	devs, _, err := s.reports.Devices(reports.DeviceQuery{Group: group})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := time.Now()
	counts := map[string]int{RolloutConverged: 0, RolloutPending: 0, RolloutFailed: 0, RolloutSilent: 0}
	type behind struct {
		DeviceID       string    `json:"device_id"`
		Hostname       string    `json:"hostname"`
		Status         string    `json:"status"`
		AppliedVersion int64     `json:"applied_version"`
		LastSeen       time.Time `json:"last_seen"`
		Errors         []string  `json:"errors"`
	}
	var slow []behind
	for _, d := range devs {
		st := rolloutStatus(d, g.Version, now, silentAfter)
		counts[st]++
		if st != RolloutConverged {
			slow = append(slow, behind{d.DeviceID, d.Hostname, st, d.AppliedVersion, d.LastSeen, d.Errors})
		}
	}
	// Slowest first: the oldest applied version, then the longest silence.
	sort.Slice(slow, func(i, j int) bool {
		if slow[i].AppliedVersion != slow[j].AppliedVersion {
			return slow[i].AppliedVersion < slow[j].AppliedVersion
		}
		return slow[i].LastSeen.Before(slow[j].LastSeen)
	})
	if len(slow) > 20 {
		slow = slow[:20]
	}
	if slow == nil {
		slow = []behind{}
	}
	writeJSON(w, http.StatusOK, s.completeness(map[string]any{"device_group": group, "device_group_id": g.Version, "devices": len(devs),
		"converged": counts[RolloutConverged], "pending": counts[RolloutPending], "failed": counts[RolloutFailed],
		"silent": counts[RolloutSilent], "slowest": slow}))
}
