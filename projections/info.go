package projections

// Info is what a device of a group must run: GET /device_groups/<dg>/info.
type Info struct {
	Apps          []App     `json:"apps"`
	AppsList      []string  `json:"apps_list"`
	PruneID       int64     `json:"prune_id"`
	CronJobs      []CronJob `json:"cron_jobs"`
	CronJobsList  []string  `json:"cron_jobs_list"`
	DeviceGroupID int64     `json:"device_group_id"`
}

// Info reads a group's info as the projection holds it now: its apps and
// cron jobs in the group's order, leaving out names that do not exist
// (deleted apps).
func (r Reader) Info(group string) (Info, bool, error) {
	g, found, err := r.DeviceGroup(group)
	if err != nil || !found {
		return Info{}, false, err
	}
	info := Info{Apps: []App{}, AppsList: []string{}, CronJobs: []CronJob{}, CronJobsList: []string{},
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
