package manager

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Info is what a device of a group must run.
type Info = projections.Info

// buildInfo reads a group's info as it is now.
func buildInfo(r projections.Reader, group string) (Info, bool, error) { return r.Info(group) }

// readInfo reads a group's info from the projection (the cache's
// source), with its rollout while one runs or after a revert.
func (s *Server) readInfo(group string) (Info, *projections.Rollout, bool, error) {
	var info Info
	var ro *projections.Rollout
	var found bool
	err := s.proj.View(func(pr projections.Reader) error {
		var err error
		if info, found, err = pr.Info(group); err != nil || !found {
			return err
		}
		r, has, err := pr.Rollout(group)
		if has && r.State != projections.RolloutCompleted {
			ro = &r
		}
		return err
	})
	return info, ro, found, err
}

// The headers a worker identifies its device with on a poll.
const (
	DeviceIDHeader     = events.DeviceIDHeader
	DeviceLabelsHeader = events.DeviceLabelsHeader
)

// maxWait bounds a long-poll (the server's write timeout is longer).
const maxWait = 60 * time.Second

// lagWait is how long /info waits for its fold to reach the version a
// device brings before it asks the brokers (a broker round trip for each
// of the devices that a change wakes would come at the same moment).
const lagWait = 100 * time.Millisecond

// info serves GET /device_groups/<dg>/info from the cache: ETag is the
// group's version; If-None-Match with it answers 304, or with ?wait=30s
// waits until the version changes (long-poll) and answers 200 with the new
// config, or 304 when the wait ends.
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	group := name(r)
	var query url.Values // nil without a query: a poll has none
	if r.URL.RawQuery != "" {
		query = r.URL.Query()
	}
	if query.Has("at") {
		if s.past == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "time travel is not configured on this manager"})
			return
		}
		timeTravel(s, w, r, events.KindDeviceGroup, buildInfo)
		return
	}
	var wait time.Duration
	if q := query.Get("wait"); q != "" {
		d, err := time.ParseDuration(q)
		if err != nil {
			if n, nerr := strconv.Atoi(q); nerr == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 || d > maxWait {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "wait must be a duration from 0s to " + maxWait.String() + ` (e.g. "30s")`})
			return
		}
		wait = d
	}
	deviceID := requestHeader(r, DeviceIDHeader)
	var labels map[string]string // none: a 2.7 worker's poll, or wrk's
	var err error
	if h := requestHeader(r, DeviceLabelsHeader); h != "" {
		labels, err = events.ParseLabels(h)
	}
	if err == nil && len(deviceID) > 256 {
		err = fmt.Errorf("%s: at most 256 bytes", DeviceIDHeader)
	} else if err != nil {
		err = fmt.Errorf("%s: %w", DeviceLabelsHeader, err)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": err.Error()})
		return
	}
	inm := requestHeader(r, "If-None-Match")
	if v := newestETag(inm); v > s.proj.Applied() {
		// Behind a load balancer, a device brings the version another
		// manager served it a moment before this one folded it. Served
		// the older config, it would apply it and then the newer one
		// again, restarting its containers twice for nothing. The fold
		// is about a millisecond behind: wait for it; past lagWait, ask
		// the log where it ends and catch up with that. A version the
		// log does not reach (a log wiped and started again, a made-up
		// tag) just does not match.
		ctx, cancel := context.WithTimeout(r.Context(), lagWait)
		err := s.proj.WaitFor(ctx, v)
		cancel()
		if err != nil && r.Context().Err() == nil {
			projections.CatchUp(r.Context(), s.log, s.proj)
		}
	}
	var timeout <-chan time.Time
	if wait > 0 {
		// Tells the worker this answer came from a long-poll (held until
		// a change or the wait's end): it may ask again at once.
		w.Header().Set(LongPollHeader, "true")
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		if !s.isReady() {
			// The projection is being rebuilt under a held long-poll:
			// an old or partial state must not reach the device.
			s.notServing(w)
			return
		}
		var changed <-chan struct{} // asked before the entry, so that no change is missed
		if timeout != nil {
			changed = s.cache.changed(group)
		}
		e, err := s.cache.get(group)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		e = e.forDevice(deviceID, labels)
		switch {
		case !e.found && timeout == nil:
			writeJSON(w, http.StatusForbidden, map[string]any{existsKey(events.KindDeviceGroup): false})
			return
		case !e.found:
			// Long-poll for the group to be created: a device set up
			// before its group gets its config the moment it exists.
		case !etagMatches(inm, e.etag):
			serveInfo(w, r, e)
			return
		case timeout == nil:
			w.Header()["Etag"] = e.etagHeader
			w.WriteHeader(http.StatusNotModified)
			return
		}
		select {
		case <-changed:
		case <-timeout:
			timeout = nil // answer 304 (403 if still missing) unless it changed meanwhile
		case <-r.Context().Done():
			return
		}
	}
}

// LongPollHeader is set on /info answers to a ?wait long-poll.
const LongPollHeader = "Nebula-Long-Poll"

func etagOf(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// The header values every /info answer has.
var (
	jsonContentType = headerValue("application/json")
	varyEncoding    = headerValue("Accept-Encoding")
	noCache         = headerValue("no-cache")
	gzipEncoding    = headerValue("gzip")
)

// serveInfo answers with e, its header values made once (the keys in
// their canonical form: the map is set directly, as a device's poll does
// this many times a second).
func serveInfo(w http.ResponseWriter, r *http.Request, e *infoEntry) {
	h := w.Header()
	h["Etag"] = e.etagHeader
	h["Content-Type"] = jsonContentType
	h["Vary"] = varyEncoding
	h["Cache-Control"] = noCache
	body, length := e.body, e.bodyLength
	if acceptsGzip(requestHeader(r, "Accept-Encoding")) {
		h["Content-Encoding"] = gzipEncoding
		body, length = e.gz, e.gzLength
	}
	h["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// requestHeader is r.Header.Get(key) for a key in canonical form, as
// net/http stores a request's, without canonicalizing key again on every
// poll (TestRequestHeaderKeysAreCanonical).
func requestHeader(r *http.Request, key string) string {
	if v := r.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// etagMatches implements If-None-Match: a list of entity tags (weak or
// strong, compared weakly) or "*".
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// newestETag is the highest version among If-None-Match's entity tags
// (versions are offsets), -1 if none is one.
func newestETag(header string) int64 {
	newest := int64(-1)
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if len(t) < 3 || t[0] != '"' || t[len(t)-1] != '"' {
			continue
		}
		if v, err := strconv.ParseInt(t[1:len(t)-1], 10, 64); err == nil && v > newest {
			newest = v
		}
	}
	return newest
}

func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
