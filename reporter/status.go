package reporter

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// DefaultSilentAfter: a device with no report for this long is silent.
const DefaultSilentAfter = 2 * time.Minute

// deviceState is what the reporter remembers of a device to derive its
// status changes. It lives in memory: after a restart the first report of
// a device says "online" again, which the projections take as no change.
type deviceState struct {
	group     string
	lastSeen  time.Time
	silent    bool
	converged int64 // last version reported converged, -1 none
	failed    bool
}

// tracker derives status events from reports and silence.
type tracker struct {
	mu      sync.Mutex
	devices map[string]*deviceState
}

func newTracker() *tracker { return &tracker{devices: map[string]*deviceState{}} }

// heartbeat returns the status events a heartbeat causes: online, for a
// device silent or not seen since this reporter started.
func (t *tracker) heartbeat(h events.Heartbeat, now time.Time) []events.DeviceEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, known := t.devices[h.DeviceID]
	if !known {
		st = &deviceState{converged: -1}
		t.devices[h.DeviceID] = st
	}
	var out []events.DeviceEvent
	if !known || st.silent {
		out = append(out, events.DeviceEvent{Type: events.DeviceOnline, DeviceID: h.DeviceID, DeviceGroup: h.DeviceGroup, Time: now})
	}
	st.group, st.lastSeen, st.silent = h.DeviceGroup, now, false
	return out
}

// observe returns the status events a report causes.
func (t *tracker) observe(rep events.Report, now time.Time) []events.DeviceEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, known := t.devices[rep.DeviceID]
	if !known {
		st = &deviceState{converged: -1}
		t.devices[rep.DeviceID] = st
	}
	ev := func(typ string) events.DeviceEvent {
		return events.DeviceEvent{Type: typ, DeviceID: rep.DeviceID, DeviceGroup: rep.DeviceGroup, Time: now}
	}
	var out []events.DeviceEvent
	if !known || st.silent {
		out = append(out, ev(events.DeviceOnline))
	}
	st.group, st.lastSeen, st.silent = rep.DeviceGroup, now, false
	var errs []string
	allWell := true
	for _, a := range rep.AppsStatus {
		switch {
		case a.Failing():
			errs = append(errs, a.Name+": "+a.Error)
			allWell = false
		case a.Status != events.AppStatusRunning && a.Status != events.AppStatusStopped:
			allWell = false
		}
	}
	switch {
	case len(errs) > 0 && !st.failed:
		st.failed = true
		e := ev(events.DeviceFailed)
		e.Detail = strings.Join(errs, "; ")
		out = append(out, e)
	case len(errs) == 0:
		st.failed = false
	}
	if allWell && rep.AppliedVersion >= 0 && rep.AppliedVersion != st.converged {
		st.converged = rep.AppliedVersion
		e := ev(events.DeviceConverged)
		e.Version = rep.AppliedVersion
		out = append(out, e)
	}
	return out
}

// sweep returns the devices that went silent.
func (t *tracker) sweep(now time.Time, silentAfter time.Duration) []events.DeviceEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []events.DeviceEvent
	for id, st := range t.devices {
		if !st.silent && now.Sub(st.lastSeen) > silentAfter {
			st.silent = true
			out = append(out, events.DeviceEvent{Type: events.DeviceSilent, DeviceID: id, DeviceGroup: st.group, Time: now})
		}
	}
	return out
}

// statusMessages renders status events as messages keyed by device; ids
// derive from the cause so a redelivery makes the same ids.
func statusMessages(evs []events.DeviceEvent, cause string) ([]*message.Message, error) {
	var out []*message.Message
	for i, e := range evs {
		e.ID = fmt.Sprintf("%s-%s-%d", cause, e.Type, i)
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		m := message.NewMessage(e.ID, b)
		m.Metadata.Set(metaDevice, e.DeviceID)
		out = append(out, m)
	}
	return out, nil
}

// watchSilence publishes device.silent for devices that stopped
// reporting, every interval, until ctx ends.
func (r *Reporter) watchSilence(ctx context.Context) {
	t := time.NewTicker(r.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			evs := r.tracker.sweep(now.UTC(), r.SilentAfter)
			if len(evs) == 0 {
				continue
			}
			msgs, err := statusMessages(evs, fmt.Sprintf("sweep-%d", now.UnixNano()))
			if err == nil {
				err = r.pub.Publish(DeviceEventsTopic, msgs...)
			}
			if err != nil {
				r.logger.Warn("cannot publish silent devices; will retry at the next sweep", "err", err)
				r.tracker.unsilence(evs)
			}
		}
	}
}

// unsilence undoes a sweep whose events could not be published.
func (t *tracker) unsilence(evs []events.DeviceEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range evs {
		if st, ok := t.devices[e.DeviceID]; ok {
			st.silent = false
		}
	}
}
