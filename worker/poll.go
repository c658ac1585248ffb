package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// MaxLongPoll is the longest wait a manager holds a long-poll for (it
// refuses a longer ?wait with 400): with a longer check-in time, the
// worker long-polls for this long, and asks again at once.
const MaxLongPoll = 60 * time.Second

// errGroupMissing: the manager says the device group does not exist.
var errGroupMissing = errors.New("device group does not exist")

// notServingError: the manager answered 503, the way a manager catching up
// with its event log does (after a restart, or a rebuild). It will answer
// soon: the worker retries within its check-in time, not after the
// growing backoff of a manager that cannot be reached.
type notServingError struct {
	retryAfter time.Duration
	msg        string
}

func (e *notServingError) Error() string { return "manager not serving yet: " + e.msg }

// poll asks for the group's config. It returns the new config, or nil
// when it did not change (304); held says whether the manager held the
// request (a long-poll) or answered a new config: either way, poll again
// at once.
func (a *Agent) poll(ctx context.Context, etag string) (info *Info, newETag string, held bool, err error) {
	// ?wait asks a manager that long-polls to hold the request until the
	// config changes (or the group appears); Nebula 2.7 ignores it.
	u := strings.TrimRight(a.cfg.Manager, "/") + "/api/v2/device_groups/" + url.PathEscape(a.cfg.Group) + "/info"
	if !a.cfg.NoLongPoll {
		u += "?wait=" + min(a.cfg.CheckIn, MaxLongPoll).String()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", false, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if a.cfg.DeviceID != "" {
		// A rollout answers the device by its wave.
		req.Header.Set(events.DeviceIDHeader, a.cfg.DeviceID)
		if len(a.cfg.Labels) > 0 {
			req.Header.Set(events.DeviceLabelsHeader, events.FormatLabels(a.cfg.Labels))
		}
	}
	a.authorize(req)
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, "", false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, "", false, err
	}
	newETag = resp.Header.Get("ETag")
	// A manager that long-polls says so (Nebula-Long-Poll): its 304 came
	// at the end of the wait, so ask again at once. Any other answer (a
	// 2.7 manager, or one that is merely slow) waits for the check-in.
	held = !a.cfg.NoLongPoll && resp.Header.Get("Nebula-Long-Poll") != ""
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, etag, held, nil
	case http.StatusOK:
		var in Info
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, "", false, fmt.Errorf("manager sent a config that is not JSON: %w", err)
		}
		// A new config: poll again at once (a 2.7 manager sends no ETag
		// and the same config every time: wait for it).
		return &in, newETag, newETag != "" && newETag != etag, nil
	case http.StatusForbidden:
		if strings.Contains(string(body), `"device_group_exists":false`) {
			return nil, "", false, errGroupMissing
		}
	case http.StatusServiceUnavailable:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, "", false, &notServingError{retryAfter: time.Duration(max(secs, 0)) * time.Second, msg: fmt.Sprintf("%.200s", body)}
	}
	return nil, "", false, fmt.Errorf("manager answered %s: %.200s", resp.Status, body)
}

// authorize adds the worker's credentials: Bearer wins over Basic.
func (a *Agent) authorize(req *http.Request) {
	switch {
	case a.cfg.Token != "":
		req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	case a.cfg.User != "":
		req.SetBasicAuth(a.cfg.User, a.cfg.Password)
	}
}
