package manager

import (
	"net/http"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Info is what a device of a group must run: GET /device_groups/<dg>/info.
type Info struct {
	Apps          []projections.App     `json:"apps"`
	AppsList      []string              `json:"apps_list"`
	PruneID       int64                 `json:"prune_id"`
	CronJobs      []projections.CronJob `json:"cron_jobs"`
	CronJobsList  []string              `json:"cron_jobs_list"`
	DeviceGroupID int64                 `json:"device_group_id"`
}

// buildInfo reads a group's info: its apps and cron jobs in the group's
// order, leaving out names that do not exist (deleted apps).
func buildInfo(r projections.Reader, group string) (Info, bool, error) {
	g, found, err := r.DeviceGroup(group)
	if err != nil || !found {
		return Info{}, false, err
	}
	info := Info{Apps: []projections.App{}, AppsList: []string{}, CronJobs: []projections.CronJob{}, CronJobsList: []string{},
		PruneID: g.PruneID, DeviceGroupID: g.Version}
	for _, n := range g.Apps {
		a, found, err := r.App(n)
		if err != nil {
			return info, false, err
		}
		if found {
			info.Apps = append(info.Apps, a)
			info.AppsList = append(info.AppsList, n)
		}
	}
	for _, n := range g.CronJobs {
		c, found, err := r.CronJob(n)
		if err != nil {
			return info, false, err
		}
		if found {
			info.CronJobs = append(info.CronJobs, c)
			info.CronJobsList = append(info.CronJobsList, n)
		}
	}
	return info, true, nil
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	var info Info
	var found bool
	err := s.proj.View(func(pr projections.Reader) error {
		var err error
		info, found, err = buildInfo(pr, name(r))
		return err
	})
	switch {
	case err != nil:
		s.fail(w, r, err)
	case !found:
		writeJSON(w, http.StatusForbidden, map[string]any{existsKey(events.KindDeviceGroup): false})
	default:
		withETag(w, info.DeviceGroupID)
		writeJSON(w, http.StatusOK, info)
	}
}
