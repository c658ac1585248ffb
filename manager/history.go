package manager

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/past"
)

// Past is the configuration as it was (projections/past): time travel,
// an app's versions.
type Past interface {
	OffsetAt(ctx context.Context, t time.Time) (int64, error)
	StateAt(ctx context.Context, at int64, kind events.Kind, name string) (projections.Reader, error)
	AppVersions(ctx context.Context, app string) ([]past.AppVersion, error)
}

// EventLog is the raw event log: the event listing reads it.
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
		end := int64(math.MaxInt64)
		if s.log != nil {
			var err error
			if _, end, err = s.log.Bounds(r.Context()); err != nil {
				s.fail(w, r, err)
				return 0, false
			}
		}
		if n >= end {
			writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{
				fmt.Sprintf("at: offset %d is beyond the end of the event log (its last offset is %d)", n, end-1)}})
			return 0, false
		}
		return n, true
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{"at: an offset or an RFC 3339 time"}})
		return 0, false
	}
	at, err := s.past.OffsetAt(r.Context(), t)
	if err != nil {
		s.fail(w, r, err)
		return 0, false
	}
	return at, true
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
		pr, err := s.past.StateAt(r.Context(), at, kind, name(r))
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
	versions, err := s.past.AppVersions(r.Context(), app)
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
