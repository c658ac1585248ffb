package manager

import (
	"net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// A device's story (GET /api/v2/devices/<id>/history): each version it
// applied, when, and what brought it there: the events that made the
// versions of its group since the one it ran before, and the rollout that
// took the version, with the wave the device was in.

// storyEvents bounds the events listed per step (a device that was off
// for months missed many versions; the last ones are listed).
const storyEvents = 20

// changeView is an event that made a version of a device group.
type changeView struct {
	Offset    int64            `json:"offset"`
	Type      events.Type      `json:"type"`
	Aggregate events.Aggregate `json:"aggregate"`
	Actor     string           `json:"actor"`
	Time      time.Time        `json:"time"`
	RevertOf  *int64           `json:"revert_of,omitempty"`
}

// rolloutStep is the rollout of a version as a device's story shows it.
type rolloutStep struct {
	Target     int64                  `json:"target"`
	State      string                 `json:"state"`
	DeviceWave int                    `json:"device_wave"`
	Reached    bool                   `json:"reached"`
	Decisions  []projections.Decision `json:"decisions"`
}

// storyStep is one version a device applied.
type storyStep struct {
	reports.AppliedVersion
	// Events made the group's versions after the one the device ran
	// before, up to this one (the last storyEvents of them; MoreEvents
	// when there were more).
	Events     []changeView `json:"events"`
	MoreEvents bool         `json:"more_events,omitempty"`
	Rollout    *rolloutStep `json:"rollout"`
}

func (s *Server) deviceHistory(w http.ResponseWriter, r *http.Request) {
	if s.reports == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "reporting is not configured on this manager"})
		return
	}
	id := chi.URLParam(r, "id")
	p := params{q: r.URL.Query()}
	limit := p.limit()
	after := r.URL.Query().Get("after")
	if err := events.ValidateDeviceID(id); err != nil {
		p.invalid = append(p.invalid, "device id: "+err.Error())
	}
	if p.bad(w) {
		return
	}
	dev, found, err := s.reports.Device(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !found || !readable(r)(dev.DeviceGroup) {
		writeJSON(w, http.StatusForbidden, map[string]any{"device_exists": false})
		return
	}
	applied, more, err := s.reports.AppliedVersions(id, after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	steps := make([]storyStep, 0, len(applied))
	err = s.proj.View(func(pr projections.Reader) error {
		pr, done := pr.Reusing() // the steps read the same few documents' versions
		defer done()
		for _, a := range applied {
			st, err := storyOf(pr, a, dev)
			if err != nil {
				return err
			}
			steps = append(steps, st)
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := map[string]any{"device_id": id, "device_group": dev.DeviceGroup, "history": steps, "next_after": nil}
	if more {
		body["next_after"] = applied[len(applied)-1].Report
	}
	writeJSON(w, http.StatusOK, s.completeness(body))
}

// storyOf finds what brought the device to a's version: the versions of
// its group after the one it ran before (or, new to the group, the one
// that made a's), and the rollout of a's version.
func storyOf(pr projections.Reader, a reports.AppliedVersion, dev reports.Device) (storyStep, error) {
	st := storyStep{AppliedVersion: a, Events: []changeView{}}
	from := a.Version
	if a.PreviousGroup == "" && a.Previous > 0 && a.Previous < a.Version {
		from = a.Previous + 1
	}
	// Newest first, one more than listed: whether there were more.
	made, err := pr.VersionsBack(events.KindDeviceGroup, a.DeviceGroup, a.Version, from, storyEvents+1)
	if err != nil {
		return st, err
	}
	if len(made) == 0 {
		// a's version came from no change of the group (a revert's):
		// the group's version it served.
		if made, err = pr.VersionsBack(events.KindDeviceGroup, a.DeviceGroup, a.Version, 0, 1); err != nil {
			return st, err
		}
	}
	if len(made) > storyEvents {
		made, st.MoreEvents = made[:storyEvents], true
	}
	slices.Reverse(made)
	for _, v := range made {
		st.Events = append(st.Events, changeView{Offset: v.Offset, Type: v.Meta.Type, Aggregate: v.Meta.Aggregate,
			Actor: v.Meta.Actor, Time: v.Meta.Time, RevertOf: v.Meta.RevertOf})
	}
	ro, found, err := pr.RolloutOf(a.DeviceGroup, a.Version)
	if err != nil || !found {
		return st, err
	}
	wave := ro.WaveOf(dev.DeviceID, dev.Labels)
	st.Rollout = &rolloutStep{Target: ro.Target, State: ro.State, DeviceWave: wave, Reached: ro.Reached(dev.DeviceID, dev.Labels),
		Decisions: ro.Decisions}
	return st, nil
}
