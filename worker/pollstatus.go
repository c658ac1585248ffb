package worker

import (
	"errors"
	"log/slog"
	"strings"
	"time"
)

// pollStatus logs the transitions of what the polls meet (the manager
// answers; the device group does not exist; the manager is not serving
// yet; it cannot be reached, or refuses), not every failed poll: a device
// cut off for a day would otherwise log every retry.
type pollStatus struct {
	logger  *slog.Logger
	group   string
	manager string
	state   string // "" while the manager answers
	since   time.Time
	failed  int // polls since the last answer
}

// observe takes the outcome of a poll and logs it if it differs from
// the last one's.
func (p *pollStatus) observe(err error) {
	state := ""
	var ns *notServingError
	switch {
	case err == nil:
	case errors.Is(err, errGroupMissing):
		state = "group missing"
	case errors.As(err, &ns):
		state = "not serving"
	default:
		state = "failing: " + err.Error()
	}
	if err != nil {
		p.failed++
	}
	if state == p.state {
		return
	}
	was := p.state
	p.state = state
	switch {
	case state == "" && was == "group missing":
		p.logger.Info("the device group exists now", "device_group", p.group)
	case state == "":
		p.logger.Info("the manager answers again", "after", time.Since(p.since).Round(time.Second), "failed_polls", p.failed)
	case state == "group missing":
		p.logger.Warn("the manager says the device group does not exist (yet); keeping the containers as they are and asking again at every check-in",
			"device_group", p.group, "create_it", "POST "+strings.TrimSuffix(p.manager, "/")+"/api/v2/device_groups/"+p.group)
	case state == "not serving":
		p.logger.Info("the manager is not serving yet (catching up with its event log); containers keep running, asking again within the check-in time", "err", err)
	default:
		p.logger.Warn("cannot get the config from the manager; containers keep running, retrying with backoff up to 5 minutes (logged again when this changes)", "err", err)
	}
	if err == nil {
		p.failed = 0
	} else if was == "" {
		p.since = time.Now()
	}
}
