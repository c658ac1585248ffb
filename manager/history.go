package manager

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
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
	ViewAt(ctx context.Context, at int64, fn func(r projections.Reader) error) error
	AppVersions(ctx context.Context, app string, from int64, limit int) ([]past.AppVersion, int64, error)
	Versions(ctx context.Context, kind events.Kind, name string, from int64, limit int) ([]past.AppVersion, int64, error)
}

// EventLog is the raw event log: the event listing reads it.
type EventLog interface {
	Bounds(ctx context.Context) (start, end int64, err error)
	// Scan calls fn with each record from offset from to the log's
	// current end, until fn returns false.
	Scan(ctx context.Context, from int64, fn func(events.Record) bool) error
	// ReadOffsets calls fn with the records at offsets (ascending).
	ReadOffsets(ctx context.Context, offsets []int64, fn func(events.Record) bool) error
}

// Limits of history reads.
const (
	historyMaxScan  = 200_000 // records one /events request reads at most
	historyMaxLimit = 1000
)

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
// (kind, name, type, actor, from/to offsets, since/until times), a page at
// a time (next_from), or as a whole in JSON lines or CSV (?format=), each
// event with its hash-chain link. One object's events (name) are read
// through the projection's index of them, not by reading the log; a time
// range starts where the brokers' time index puts since.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := params{q: q}
	f := eventFilter{kind: q.Get("kind"), name: q.Get("name"), typ: q.Get("type"), actor: q.Get("actor")}
	limit := p.limit()
	from := p.offset("from", 0)
	f.to = p.offset("to", -1)
	f.since, f.until = p.instant("since"), p.instant("until")
	format := q.Get("format")
	if format != "" && format != "json" && format != "jsonl" && format != "csv" {
		p.invalid = append(p.invalid, "format: json (pages, the default), jsonl or csv (the whole range, streamed)")
	}
	if !validKind(f.kind) {
		p.invalid = append(p.invalid, kindChoices)
	}
	if p.bad(w) {
		return
	}
	s.caughtUp(r.Context()) // every event listed has its verdict
	from, err := s.sinceOffset(r.Context(), f, from)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if format == "jsonl" || format == "csv" {
		s.exportEvents(w, r, f, from, format)
		return
	}
	out, next, err := s.eventsPage(r.Context(), f, from, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := map[string]any{"events": out, "next_from": nil}
	if next >= 0 {
		body["next_from"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

// sinceOffset is where a read of the events f keeps starts, from offset
// from on: past the records older than f.since, found by the time index.
func (s *Server) sinceOffset(ctx context.Context, f eventFilter, from int64) (int64, error) {
	if f.since.IsZero() || from != 0 || s.past == nil {
		return from, nil
	}
	// Every record before the last one at or before since-1ns is older.
	at, err := s.past.OffsetAt(ctx, f.since.Add(-time.Nanosecond))
	return at + 1, err
}

// eventsPage is a page of the events f keeps from offset from on, with
// their verdicts, and the offset the next page starts from (-1: none).
func (s *Server) eventsPage(ctx context.Context, f eventFilter, from int64, limit int) ([]eventView, int64, error) {
	out := []eventView{}
	next := int64(-1)
	err := s.eachEvent(ctx, f, from, func(rec events.Record, env events.Envelope) bool {
		if len(out) == limit {
			next = rec.Offset
			return false
		}
		out = append(out, view(rec, env))
		return true
	}, func(at int64) { next = at })
	if err == nil {
		err = s.withVerdicts(out)
	}
	return out, next, err
}

// validKind says whether k names an aggregate kind ("" is any).
func validKind(k string) bool {
	kind := events.Kind(k)
	return k == "" || slices.Contains(namedKinds, kind) || kind == events.KindFleet || kind == events.KindLog
}

// kindChoices is what a kind filter accepts.
const kindChoices = "kind: app, device_group, cron_job, user, user_group, fleet or log"

// eventFilter selects events.
type eventFilter struct {
	kind, name, typ, actor string
	to                     int64 // -1: the end
	since, until           time.Time
}

func (f eventFilter) keep(h events.Head) bool {
	switch {
	case f.kind != "" && string(h.Aggregate.Kind) != f.kind, f.name != "" && h.Aggregate.Name != f.name,
		f.typ != "" && string(h.Type) != f.typ, f.actor != "" && h.Actor != f.actor,
		!f.since.IsZero() && h.Time.Before(f.since), !f.until.IsZero() && h.Time.After(f.until):
		return false
	}
	return true
}

// namedKinds are the kinds whose objects have names (and an index of
// their events).
var namedKinds = []events.Kind{events.KindApp, events.KindDeviceGroup, events.KindCronJob, events.KindUser, events.KindUserGroup}

// eachEvent calls fn with each event f keeps from offset from on, until fn
// returns false. A scan that reads historyMaxScan records without
// finishing calls stopped with the offset to go on from (pages only: an
// export, stopped nil, reads to the end).
func (s *Server) eachEvent(ctx context.Context, f eventFilter, from int64, fn func(events.Record, events.Envelope) bool, stopped func(int64)) error {
	var decodeErr error
	visit := func(rec events.Record) bool {
		if f.to >= 0 && rec.Offset > f.to {
			return false
		}
		h, err := events.DecodeHead(rec.Value)
		if err != nil {
			decodeErr = err
			return false
		}
		if !f.keep(h) {
			return true
		}
		env, err := events.Decode(rec.Value)
		if err != nil {
			decodeErr = err
			return false
		}
		return fn(rec, env)
	}
	var err error
	if f.name != "" {
		err = s.eachOfObject(ctx, f, from, visit)
	} else {
		scanned := 0
		err = s.events.Scan(ctx, from, func(rec events.Record) bool {
			if scanned++; stopped != nil && scanned > historyMaxScan {
				stopped(rec.Offset)
				return false
			}
			return visit(rec)
		})
	}
	if err == nil {
		err = decodeErr
	}
	return err
}

// eachOfObject reads the events of the objects named f.name (of kind
// f.kind, or of every kind) from the log, through the projection's index
// of their offsets, a chunk at a time.
func (s *Server) eachOfObject(ctx context.Context, f eventFilter, from int64, visit func(events.Record) bool) error {
	kinds := namedKinds
	if f.kind != "" {
		kinds = []events.Kind{events.Kind(f.kind)}
	}
	const chunk = 500
	for {
		var offsets []int64
		err := s.proj.View(func(pr projections.Reader) error {
			for _, k := range kinds {
				o, err := pr.EventOffsets(events.Aggregate{Kind: k, Name: f.name}, from, f.to, chunk)
				if err != nil {
					return err
				}
				offsets = append(offsets, o...)
			}
			return nil
		})
		if err != nil || len(offsets) == 0 {
			return err
		}
		slices.Sort(offsets)
		offsets = offsets[:min(len(offsets), chunk)] // in order across kinds
		more := true
		err = s.events.ReadOffsets(ctx, offsets, func(rec events.Record) bool {
			more = visit(rec)
			return more
		})
		if err != nil || !more {
			return err
		}
		from = offsets[len(offsets)-1] + 1
	}
}

// params reads query parameters, collecting what is wrong with them.
type params struct {
	q       url.Values
	invalid []string
}

// bad answers 400 naming every invalid parameter, if any.
func (p *params) bad(w http.ResponseWriter) bool {
	if len(p.invalid) == 0 {
		return false
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": p.invalid})
	return true
}

// limit is ?limit= (a page's size): 100 unless given, at most 1000.
func (p *params) limit() int {
	v := p.q.Get("limit")
	if v == "" {
		return 100
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > historyMaxLimit {
		p.invalid = append(p.invalid, "limit: must be an integer from 1 to 1000")
	}
	return n
}

// offset is an offset parameter, def unless given.
func (p *params) offset(name string, def int64) int64 {
	v := p.q.Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		p.invalid = append(p.invalid, name+": must be an offset (an integer from 0)")
	}
	return n
}

// instant is a time parameter (zero unless given).
func (p *params) instant(name string) time.Time {
	v := p.q.Get(name)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		p.invalid = append(p.invalid, name+": must be an RFC 3339 time (2026-11-24T14:00:00Z)")
	}
	return t
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
	s.caughtUp(r.Context()) // the time index covers the log as it is now
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
		err := s.past.ViewAt(r.Context(), at, func(pr projections.Reader) error {
			var err error
			doc, found, err = read(pr, name(r))
			return err
		})
		if err != nil {
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

// appHistory is GET /api/v2/apps/<app>/history: the versions of the app
// (the offsets of the accepted events that changed it), with the fields
// each one changed, oldest first, a page at a time (?from=, ?limit=;
// next_from is where the next page starts).
func (s *Server) appHistory(w http.ResponseWriter, r *http.Request) {
	app := name(r)
	p := params{q: r.URL.Query()}
	from, limit := p.offset("from", 0), p.limit()
	if p.bad(w) {
		return
	}
	s.caughtUp(r.Context()) // every version acknowledged before is listed
	versions, next, err := s.past.AppVersions(r.Context(), app, from, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(versions) == 0 && from == 0 {
		writeJSON(w, http.StatusForbidden, map[string]any{existsKey(events.KindApp): false})
		return
	}
	body := map[string]any{"app_name": app, "versions": versions, "next_from": nil}
	if next >= 0 {
		body["next_from"] = next
	}
	writeJSON(w, http.StatusOK, body)
}
