package manager

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// EventLog is the raw event log: history and time travel read it.
type EventLog interface {
	Bounds(ctx context.Context) (start, end int64, err error)
	// Scan calls fn with each record from offset from to the log's
	// current end, until fn returns false.
	Scan(ctx context.Context, from int64, fn func(events.Record) bool) error
}

// Limits of history reads.
const (
	historyMaxScan  = 200_000 // records one /events request reads at most
	historyMaxLimit = 1000
)

// scan calls fn for each record from offset from up to the log's end
// (or until fn returns false).
func (s *Server) scan(ctx context.Context, from int64, fn func(events.Record) bool) error {
	return s.events.Scan(ctx, from, fn)
}

// eventView is one event as the history API shows it.
type eventView struct {
	Offset    int64            `json:"offset"`
	Type      events.Type      `json:"type"`
	Schema    int              `json:"schema"`
	Aggregate events.Aggregate `json:"aggregate"`
	Actor     string           `json:"actor"`
	CommandID string           `json:"command_id,omitempty"`
	Time      time.Time        `json:"time"`
	IfVersion int64            `json:"if_version,omitempty"`
	Payload   any              `json:"payload"`
	Verdict   *verdictView     `json:"verdict,omitempty"`
}

type verdictView struct {
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// redacted replaces secrets (hashes included) in user payloads.
func redacted(env events.Envelope) any {
	switch env.Payload.(type) {
	case events.UserCreatedV, events.UserUpdatedV, events.UserTokenRefreshedV:
		return map[string]string{"secrets": "redacted"}
	}
	return env.Payload
}

func view(rec events.Record, env events.Envelope) eventView {
	return eventView{Offset: rec.Offset, Type: env.Type, Schema: env.Schema, Aggregate: env.Aggregate, Actor: env.Actor,
		CommandID: env.CommandID, Time: env.Time, IfVersion: env.IfVersion, Payload: redacted(env)}
}

// withVerdicts adds the fold's verdict to each event, in one read.
func (s *Server) withVerdicts(evs []eventView) error {
	return s.proj.View(func(r projections.Reader) error {
		for i := range evs {
			vd, found, err := r.Verdict(evs[i].Offset)
			if err != nil {
				return err
			}
			if found {
				evs[i].Verdict = &verdictView{Accepted: vd.Accepted, Reason: string(vd.Reason), Detail: vd.Detail}
			}
		}
		return nil
	})
}

// listEvents is GET /api/v2/events (admin): the decoded log with filters
// (kind, name, type, actor, from/to offsets, since/until times) and
// offset-keyed pagination (next_from).
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(msg string) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{msg}})
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > historyMaxLimit {
			bad("limit: must be an integer from 1 to 1000")
			return
		}
		limit = n
	}
	offset := func(name string, def int64) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			bad(name + ": must be an offset (an integer from 0)")
			return 0, false
		}
		return n, true
	}
	instant := func(name string) (time.Time, bool) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, true
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			bad(name + ": must be an RFC 3339 time (2026-11-24T14:00:00Z)")
			return t, false
		}
		return t, true
	}
	from, ok1 := offset("from", 0)
	to, ok2 := offset("to", -1)
	since, ok3 := instant("since")
	until, ok4 := instant("until")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return
	}
	kind, name, typ, actor := q.Get("kind"), q.Get("name"), q.Get("type"), q.Get("actor")
	s.caughtUp(r.Context()) // every event listed has its verdict
	var out []eventView
	next := int64(-1)
	scanned := 0
	var decodeErr error
	err := s.scan(r.Context(), from, func(rec events.Record) bool {
		if to >= 0 && rec.Offset > to {
			return false
		}
		if scanned++; scanned > historyMaxScan || len(out) == limit {
			next = rec.Offset
			return false
		}
		h, err := events.DecodeHead(rec.Value)
		if err != nil {
			decodeErr = err
			return false
		}
		switch {
		case kind != "" && string(h.Aggregate.Kind) != kind, name != "" && h.Aggregate.Name != name,
			typ != "" && string(h.Type) != typ, actor != "" && h.Actor != actor,
			!since.IsZero() && h.Time.Before(since), !until.IsZero() && h.Time.After(until):
			return true
		}
		env, err := events.Decode(rec.Value)
		if err != nil {
			decodeErr = err
			return false
		}
		out = append(out, view(rec, env))
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err == nil {
		err = s.withVerdicts(out)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if out == nil {
		out = []eventView{}
	}
	body := map[string]any{"events": out, "next_from": nil}
	if next >= 0 {
		body["next_from"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

// atOffset resolves ?at= (an offset, or an RFC 3339 time: the last event
// at or before it) to an offset; ok=false when the answer is written.
func (s *Server) atOffset(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := r.URL.Query().Get("at")
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{"at: an offset is 0 or more"}})
			return 0, false
		}
		return n, true
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{"at: an offset or an RFC 3339 time"}})
		return 0, false
	}
	at := int64(-1)
	var decodeErr error
	err = s.scan(r.Context(), 0, func(rec events.Record) bool {
		h, err := events.DecodeHead(rec.Value)
		if err != nil {
			decodeErr = err
			return false
		}
		if h.Time.After(t) {
			return false
		}
		at = rec.Offset
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		s.fail(w, r, err)
		return 0, false
	}
	return at, true
}

// foldTo folds the log up to offset at (inclusive) into memory: the
// projection as it was then, as far as the records keep says yes to go
// (nil: all of them).
func (s *Server) foldTo(ctx context.Context, at int64, keep func(events.Aggregate) bool) (projections.Reader, error) {
	var kv projections.MemKV
	err := s.foldKept(ctx, at, keep, func() { kv = projections.MemKV{} },
		func(rec events.Record) (projections.Result, error) { return projections.Apply(kv, rec) })
	return projections.NewReader(kv), err
}

// foldKept calls start, then fold with each record from offset 0 to upTo
// (inclusive) that keep says yes to by its aggregate (nil: all of them).
// Folding a part of the log is for one object's history or past state,
// and holds only when the verdicts on that part do not depend on the rest
// (an app's events decide alone, for instance): each verdict is checked
// against the one the full fold recorded and, if one differs, foldKept
// calls start again and folds every record.
func (s *Server) foldKept(ctx context.Context, upTo int64, keep func(events.Aggregate) bool, start func(),
	fold func(events.Record) (projections.Result, error)) error {
	type decided struct {
		offset   int64
		accepted bool
	}
	var verdicts []decided
	var foldErr error
	start()
	err := s.scan(ctx, 0, func(rec events.Record) bool {
		if rec.Offset > upTo {
			return false
		}
		if keep != nil {
			h, err := events.DecodeHead(rec.Value)
			if err == nil && !keep(h.Aggregate) {
				return true
			}
			// A record without a head is folded: the fold names the error.
		}
		res, err := fold(rec)
		if err != nil {
			foldErr = err
			return false
		}
		if keep != nil {
			verdicts = append(verdicts, decided{rec.Offset, res.Verdict.Accepted})
		}
		return true
	})
	if err == nil {
		err = foldErr
	}
	if err != nil || keep == nil {
		return err
	}
	same := true
	err = s.proj.View(func(r projections.Reader) error {
		for _, d := range verdicts {
			v, found, err := r.Verdict(d.offset)
			if err != nil {
				return err
			}
			if found && v.Accepted != d.accepted {
				same = false
				return nil
			}
		}
		return nil
	})
	if err != nil || same {
		return err
	}
	s.logger.Warn("a part of the log folded alone decided differently from the whole; folding the whole",
		"up_to", upTo)
	return s.foldKept(ctx, upTo, nil, start, fold)
}

// alone says which records a past state of an object of kind needs: an
// app's or a cron job's own events make its document; a device group's
// /info also reads apps and cron jobs, and fleet-wide events touch it;
// for users and user groups, everything is folded (nil).
func alone(kind events.Kind, name string) func(events.Aggregate) bool {
	switch kind {
	case events.KindApp, events.KindCronJob:
		return func(a events.Aggregate) bool { return a.Kind == kind && a.Name == name }
	case events.KindDeviceGroup:
		return func(a events.Aggregate) bool {
			return a.Kind != events.KindUser && a.Kind != events.KindUserGroup && (a.Kind != kind || a.Name == name)
		}
	}
	return nil
}

// timeTravel serves a read as of ?at=.
func timeTravel[T any](s *Server, w http.ResponseWriter, r *http.Request, kind events.Kind, read func(projections.Reader, string) (T, bool, error)) {
	at, ok := s.atOffset(w, r)
	if !ok {
		return
	}
	var doc T
	found := false
	if at >= 0 {
		pr, err := s.foldTo(r.Context(), at, alone(kind, name(r)))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if doc, found, err = read(pr, name(r)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	w.Header().Set("Nebula-At-Offset", strconv.FormatInt(at, 10))
	if !found {
		writeJSON(w, http.StatusForbidden, map[string]any{existsKey(kind): false})
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// appHistory is GET /api/v2/apps/<app>/history: every version of the app
// (the offsets of the accepted events that changed it), with the fields
// each one changed.
func (s *Server) appHistory(w http.ResponseWriter, r *http.Request) {
	app := name(r)
	type change struct {
		From any `json:"from"`
		To   any `json:"to"`
	}
	type version struct {
		Version  int64             `json:"version"`
		Type     events.Type       `json:"type"`
		Actor    string            `json:"actor"`
		Time     time.Time         `json:"time"`
		Deleted  bool              `json:"deleted,omitempty"`
		RevertOf *int64            `json:"revert_of,omitempty"`
		Changes  map[string]change `json:"changes"`
	}
	var versions []version
	var prev map[string]any
	var kv projections.MemKV
	var reader projections.Reader
	start := func() {
		versions, prev, kv = []version{}, nil, projections.MemKV{}
		reader = projections.NewReader(kv)
	}
	err := s.foldKept(r.Context(), math.MaxInt64, alone(events.KindApp, app), start, func(rec events.Record) (projections.Result, error) {
		res, err := projections.Apply(kv, rec)
		if err != nil {
			return res, err
		}
		v := res.Verdict
		if !v.Accepted || v.Aggregate.Kind != events.KindApp || v.Aggregate.Name != app {
			return res, nil
		}
		env, _ := events.Decode(rec.Value)
		doc, found, err := reader.App(app)
		if err != nil {
			return res, err
		}
		cur := map[string]any{}
		if found {
			b, _ := json.Marshal(doc)
			_ = json.Unmarshal(b, &cur)
			delete(cur, "app_id")
		}
		ch := map[string]change{}
		keys := map[string]bool{}
		for k := range cur {
			keys[k] = true
		}
		for k := range prev {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if !reflect.DeepEqual(prev[k], cur[k]) {
				ch[k] = change{From: prev[k], To: cur[k]}
			}
		}
		var revertOf *int64
		switch p := env.Payload.(type) {
		case events.AppReplacedV:
			revertOf = p.RevertOf
		case events.AppCreatedV:
			revertOf = p.RevertOf
		}
		versions = append(versions, version{Version: rec.Offset, Type: env.Type, Actor: env.Actor, Time: env.Time, Deleted: !found,
			RevertOf: revertOf, Changes: ch})
		prev = cur
		if !found {
			prev = nil
		}
		return res, nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(versions) == 0 {
		writeJSON(w, http.StatusForbidden, map[string]any{existsKey(events.KindApp): false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"app_name": app, "versions": versions})
}
