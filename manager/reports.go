package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
)

// ReportSink takes the reports devices send (the reports topic).
type ReportSink interface {
	Publish(ctx context.Context, deviceID string, report []byte) error
}

// Reports answers the report queries (the manager's report projection).
type Reports interface {
	Reports(q reports.Query, allowed func(group string) bool) ([]reports.StoredReport, error)
	// Devices returns the devices q selects, and whether the page is full.
	Devices(q reports.DeviceQuery) ([]reports.Device, bool, error)
	// RecentReports is up to n of a hostname's reports, the newest first.
	RecentReports(hostname string, n int) ([]reports.StoredReport, error)
	// DeviceCount is how many devices a group has.
	DeviceCount(group string) (int, error)
	// Standing is where a group's devices stand against a version, with
	// at most limit of those behind listed.
	Standing(group string, version int64, now time.Time, silentAfter time.Duration, limit int) (reports.Standing, error)
	// Device is the inventory's entry of a device (found=false: unknown).
	Device(id string) (reports.Device, bool, error)
	// AppliedVersions is a page of a device's story: the reports that
	// changed its applied version, oldest first, after report ID after.
	AppliedVersions(device, after string, limit int) ([]reports.AppliedVersion, bool, error)
	// CatchingUp says whether the store is still folding the device
	// events the topic held when it started, and how many are left.
	CatchingUp() (bool, int64)
	// Lag is how many device events the store has not folded, as of its
	// last check (-1: not known yet).
	Lag() int64
}

// completeness says, in an answer built from the report store, whether
// the store has folded every device event the topic held when it started
// (a manager just added to a cluster has not: its counts are short).
func (s *Server) completeness(answer map[string]any) map[string]any {
	catchingUp, left := s.reports.CatchingUp()
	answer["reports_complete"] = !catchingUp
	if catchingUp && left >= 0 {
		answer["device_events_left"] = left
	}
	if lag := s.reports.Lag(); lag >= 0 {
		answer["device_events_lag"] = lag // a lag that keeps growing: the fleet reports faster than this manager folds
	}
	return answer
}

// ingestReport is POST /api/v2/reports: a device reports for its own
// group (its credentials need ro on it), the report is validated and
// published, keyed by device ID.
func (s *Server) ingestReport(w http.ResponseWriter, r *http.Request) {
	if s.sink == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "reporting is not configured on this manager"})
		return
	}
	refuse := func(reason, detail string, rep events.Report) {
		s.refused.add(Refusal{Time: time.Now().UTC(), Reason: reason, Detail: detail, DeviceID: rep.DeviceID,
			DeviceGroup: rep.DeviceGroup, Hostname: rep.Hostname, Actor: actor(r), Remote: r.RemoteAddr})
	}
	body, ok := readBody(w, r)
	if !ok {
		refuse(refusedTooLarge, "the body could not be read, or is over the limit", events.Report{})
		return
	}
	if events.IsHeartbeat(body) {
		s.ingestHeartbeat(w, r, body)
		return
	}
	rep, err := events.DecodeReport(body)
	if err != nil {
		probs := problems(err)
		refuse(refusedInvalid, strings.Join(probs, "; "), reportIdentity(body))
		writeJSON(w, http.StatusBadRequest, invalidBody(probs))
		return
	}
	id := identityOf(r)
	if id == nil || !id.can(events.KindDeviceGroup, rep.DeviceGroup, events.PermRO) {
		refuse(refusedForbidden, "the credentials may not read device group "+strconv.Quote(rep.DeviceGroup), rep)
		writeJSON(w, http.StatusForbidden, map[string]any{"access_allowed": false})
		return
	}
	s.publishReport(w, r, rep.DeviceID, rep.DeviceGroup, body, func(msg string) { refuse(refusedMoves, msg, rep) })
}

// publishReport checks that the sender may move the device (a device
// belongs to the group of its last report: a report that names it from
// another group moves it, which takes rw on the group it leaves;
// docs/reports.md, device identity and ownership), then publishes body.
func (s *Server) publishReport(w http.ResponseWriter, r *http.Request, device, group string, body []byte, refuseMove func(msg string)) {
	if s.reports != nil {
		d, known, err := s.reports.Device(device)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if known && d.DeviceGroup != group && !identityOf(r).can(events.KindDeviceGroup, d.DeviceGroup, events.PermRW) {
			msg := fmt.Sprintf("device %q belongs to device group %q: a report from another group moves it, which needs rw on %q", device, d.DeviceGroup, d.DeviceGroup)
			refuseMove(msg)
			writeJSON(w, http.StatusForbidden, map[string]any{"access_allowed": false, "message": msg})
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	if err := s.sink.Publish(ctx, device, body); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true})
}

// ingestHeartbeat takes a device's heartbeat (nothing changed since its
// last full report), with a report's checks, to the reports topic.
func (s *Server) ingestHeartbeat(w http.ResponseWriter, r *http.Request, body []byte) {
	refuse := func(reason, detail string, h events.Heartbeat) {
		s.refused.add(Refusal{Time: time.Now().UTC(), Reason: reason, Detail: detail, DeviceID: h.DeviceID,
			DeviceGroup: h.DeviceGroup, Actor: actor(r), Remote: r.RemoteAddr})
	}
	h, err := events.DecodeHeartbeat(body)
	if err != nil {
		probs := problems(err)
		refuse(refusedInvalid, strings.Join(probs, "; "), h)
		writeJSON(w, http.StatusBadRequest, invalidBody(probs))
		return
	}
	id := identityOf(r)
	if id == nil || !id.can(events.KindDeviceGroup, h.DeviceGroup, events.PermRO) {
		refuse(refusedForbidden, "the credentials may not read device group "+strconv.Quote(h.DeviceGroup), h)
		writeJSON(w, http.StatusForbidden, map[string]any{"access_allowed": false})
		return
	}
	s.publishReport(w, r, h.DeviceID, h.DeviceGroup, body, func(msg string) { refuse(refusedMoves, msg, h) })
}

// reportIdentity is what identifies the sender of a report that could not
// be decoded, as far as its body says (for the refusal's record).
func reportIdentity(body []byte) events.Report {
	var id struct {
		DeviceID    string `json:"device_id"`
		DeviceGroup string `json:"device_group"`
		Hostname    string `json:"hostname"`
	}
	_ = json.Unmarshal(body, &id)
	clip := func(s string) string { return s[:min(len(s), 128)] }
	return events.Report{DeviceID: clip(id.DeviceID), DeviceGroup: clip(id.DeviceGroup), Hostname: clip(id.Hostname)}
}

// readable is the permission filter of report queries: the groups the
// caller may read (2.7 showed every report to every user).
func readable(r *http.Request) func(string) bool {
	id := identityOf(r)
	return func(group string) bool { return id != nil && id.can(events.KindDeviceGroup, group, events.PermRO) }
}

// queryError is a bad query parameter: 400 (2.7 answered some with 500).
type queryError struct{ param, why string }

func (e queryError) Error() string { return e.param + ": " + e.why }

func parseReportQuery(r *http.Request) (reports.Query, error) {
	v := r.URL.Query()
	q := reports.Query{PageSize: 10, CreationOp: "eq"}
	if s := v.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return q, queryError{"page_size", "must be an integer from 1 to 1000"}
		}
		q.PageSize = n
	}
	if s := v.Get("last_id"); s != "" {
		if len(s) != 24 || strings.Trim(s, "0123456789abcdef") != "" {
			return q, queryError{"last_id", "must be the 24 hex digits of a report's _id"}
		}
		q.LastID = s
	}
	if v.Has("hostname") {
		h := v.Get("hostname")
		q.Hostname = &h
	}
	if v.Has("device_group") {
		g := v.Get("device_group")
		q.DeviceGroup = &g
	}
	if s := v.Get("report_creation_time"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return q, queryError{"report_creation_time", "must be a unix time in seconds"}
		}
		q.CreationTime = &n
	}
	if s := v.Get("report_creation_time_filter"); s != "" {
		switch s {
		case "eq", "gt", "lt", "gte", "lte", "ne":
			q.CreationOp = s
		default:
			return q, queryError{"report_creation_time_filter", "must be one of eq, gt, lt, gte, lte, ne"}
		}
	}
	if s := v.Get("updated"); s != "" {
		switch strings.ToLower(s) {
		case "true":
			b := true
			q.Updated = &b
		case "false":
			b := false
			q.Updated = &b
		default:
			return q, queryError{"updated", "must be True or False"}
		}
	}
	return q, nil
}

// listReports is GET /api/v2/reports, as 2.7: {"data": [...], "last_id":
// {"$oid": ...}}, and {"data": null, "last_id": null} past the end.
func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	if s.reports == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "reporting is not configured on this manager"})
		return
	}
	q, err := parseReportQuery(r)
	var qe queryError
	if errors.As(err, &qe) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{qe.Error()}})
		return
	}
	found, err := s.reports.Reports(q, readable(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(found) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"data": nil, "last_id": nil})
		return
	}
	data := make([]json.RawMessage, 0, len(found))
	for _, f := range found {
		doc, err := reportDoc(f)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		data = append(data, doc)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "last_id": map[string]string{"$oid": found[len(found)-1].ID}})
}

// reportDoc renders a stored report as 2.7's document: the report's
// fields, "_id" and "report_insert_date" in MongoDB's extended JSON.
func reportDoc(f reports.StoredReport) (json.RawMessage, error) {
	b, err := json.Marshal(f.Report)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["_id"], _ = json.Marshal(map[string]string{"$oid": f.ID})
	m["report_insert_date"], _ = json.Marshal(map[string]int64{"$date": f.InsertedAt.UnixMilli()})
	return json.Marshal(m)
}

// listDevices is GET /api/v2/devices: the inventory (last seen, group,
// applied version, apps' status), of the groups the caller may read, a
// page at a time in device ID order: ?device_group= (one group, read
// through its index), ?page_size= (1-10000, default 1000), ?last_id= (the
// last device ID of the previous page). "last_id" is the one to continue
// from when the page is full, null otherwise.
func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	if s.reports == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "reporting is not configured on this manager"})
		return
	}
	q, err := parseDeviceQuery(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{err.Error()}})
		return
	}
	q.Allowed = readable(r)
	devs, full, err := s.reports.Devices(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := time.Now()
	out := make([]map[string]any, 0, len(devs))
	for _, d := range devs {
		labels := d.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, map[string]any{"device_id": d.DeviceID, "device_group": d.DeviceGroup, "hostname": d.Hostname, "labels": labels,
			"last_seen": d.LastSeen, "seconds_since_seen": int64(now.Sub(d.LastSeen).Seconds()),
			"applied_version": d.AppliedVersion, "apps_status": d.Apps, "errors": d.Errors,
			"silent": d.Silent, "converged_version": d.ConvergedAt, "failure": d.Failure, "status_changed_at": d.StatusChangedAt})
	}
	var last any
	if full {
		last = devs[len(devs)-1].DeviceID
	}
	writeJSON(w, http.StatusOK, s.completeness(map[string]any{"devices": out, "last_id": last}))
}

// parseDeviceQuery reads GET /devices' parameters.
func parseDeviceQuery(r *http.Request) (reports.DeviceQuery, error) {
	v := r.URL.Query()
	q := reports.DeviceQuery{Limit: 1000}
	if s := v.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return q, queryError{"page_size", "must be an integer from 1 to 10000"}
		}
		q.Limit = n
	}
	if g := v.Get("device_group"); g != "" {
		if err := events.ValidateName(events.KindDeviceGroup, g); err != nil {
			return q, queryError{"device_group", err.Error()}
		}
		q.Group = g
	}
	if id := v.Get("last_id"); id != "" {
		if err := events.ValidateDeviceID(id); err != nil {
			return q, queryError{"last_id", err.Error()}
		}
		q.After = id
	}
	if ls := v["label"]; len(ls) > 0 {
		labels, err := events.ParseLabels(strings.Join(ls, ","))
		if err != nil {
			return q, queryError{"label", err.Error()}
		}
		q.Labels = labels
	}
	return q, nil
}
