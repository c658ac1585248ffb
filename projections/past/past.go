// Package past reads the configuration as it was: time travel (?at=), one
// object's versions (history), and the spec a revert restores. It folds
// the event log into memory with the same fold as the projection
// (projections.Apply), so the past is decided exactly as the present was;
// the manager only maps these reads to HTTP, and the revert commands read
// the spec they restore through it.
package past

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"reflect"
	"sort"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Log is the raw event log.
type Log interface {
	// Scan calls fn with each record from offset from to the log's
	// current end, until fn returns false.
	Scan(ctx context.Context, from int64, fn func(events.Record) bool) error
}

// Verdicts is the projection of the whole log: a part of the log folded
// alone is checked against the verdicts it recorded.
type Verdicts interface {
	View(fn func(r projections.Reader) error) error
}

// Past reads the past of one event log.
type Past struct {
	log    Log
	full   Verdicts
	trust  *signing.Trust
	logger *slog.Logger
}

// New returns a reader of log's past; full is the projection of log, and
// trust the record keys its fold trusts (nil: none).
func New(log Log, full Verdicts, trust *signing.Trust, logger *slog.Logger) *Past {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Past{log: log, full: full, trust: trust, logger: logger}
}

// OffsetAt is the offset of the last event at or before t (by its event
// time), -1 when the log has none: the log read from its start up to the
// first event after t. A log that can say where t falls (FirstAtOrAfter:
// the brokers' time index) is read from there, not from its start: every
// record before that offset happened before t.
func (p *Past) OffsetAt(ctx context.Context, t time.Time) (int64, error) {
	from := int64(0)
	if ti, ok := p.log.(timeIndex); ok {
		o, err := ti.FirstAtOrAfter(ctx, t)
		if err != nil {
			return 0, err
		}
		from = o
	}
	at := from - 1
	var decodeErr error
	err := p.log.Scan(ctx, from, func(rec events.Record) bool {
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
	return at, err
}

// timeIndex finds the first offset whose record was written at or after
// t's millisecond (kafkalog.Log).
type timeIndex interface {
	FirstAtOrAfter(ctx context.Context, t time.Time) (int64, error)
}

// StateAt is the projection as it was at offset at (inclusive), as far as
// the object kind/name goes: its document, and for a device group what its
// /info reads (its apps and cron jobs). Other objects may be missing.
func (p *Past) StateAt(ctx context.Context, at int64, kind events.Kind, name string) (projections.Reader, error) {
	var kv projections.MemKV
	err := p.foldKept(ctx, at, alone(kind, name), func() { kv = projections.MemKV{} },
		func(rec events.Record) (projections.Result, error) { return projections.ApplyTrusted(kv, rec, p.trust) })
	return projections.NewReader(kv), err
}

// foldKept calls start, then fold with each record from offset 0 to upTo
// (inclusive) that keep says yes to by its aggregate (nil: all of them).
// Folding a part of the log is for one object's history or past state,
// and holds only when the verdicts on that part do not depend on the rest
// (an app's events decide alone, for instance): each verdict is checked
// against the one the full fold recorded and, if one differs, foldKept
// calls start again and folds every record.
func (p *Past) foldKept(ctx context.Context, upTo int64, keep func(events.Aggregate) bool, start func(),
	fold func(events.Record) (projections.Result, error)) error {
	type decided struct {
		offset   int64
		accepted bool
	}
	var verdicts []decided
	var foldErr error
	start()
	err := p.log.Scan(ctx, 0, func(rec events.Record) bool {
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
	err = p.full.View(func(r projections.Reader) error {
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
	p.logger.Warn("a part of the log folded alone decided differently from the whole; folding the whole",
		"up_to", upTo)
	return p.foldKept(ctx, upTo, nil, start, fold)
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

// Change is one field of a version: its value before and after.
type Change struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// AppVersion is one version of an app: an accepted event that changed it.
type AppVersion struct {
	Version  int64             `json:"version"`
	Type     events.Type       `json:"type"`
	Actor    string            `json:"actor"`
	Time     time.Time         `json:"time"`
	Deleted  bool              `json:"deleted,omitempty"`
	RevertOf *int64            `json:"revert_of,omitempty"`
	Changes  map[string]Change `json:"changes"`
}

// AppVersions is every version of the app, oldest first, with the fields
// each one changed (none: the app never existed).
func (p *Past) AppVersions(ctx context.Context, app string) ([]AppVersion, error) {
	var versions []AppVersion
	var prev map[string]any
	var kv projections.MemKV
	var reader projections.Reader
	start := func() {
		versions, prev, kv = []AppVersion{}, nil, projections.MemKV{}
		reader = projections.NewReader(kv)
	}
	err := p.foldKept(ctx, math.MaxInt64, alone(events.KindApp, app), start, func(rec events.Record) (projections.Result, error) {
		res, err := projections.ApplyTrusted(kv, rec, p.trust)
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
		var revertOf *int64
		switch p := env.Payload.(type) {
		case events.AppReplacedV:
			revertOf = p.RevertOf
		case events.AppCreatedV:
			revertOf = p.RevertOf
		}
		versions = append(versions, AppVersion{Version: rec.Offset, Type: env.Type, Actor: env.Actor, Time: env.Time, Deleted: !found,
			RevertOf: revertOf, Changes: changes(prev, cur)})
		prev = cur
		if !found {
			prev = nil
		}
		return res, nil
	})
	return versions, err
}

// changes are the fields whose values differ between prev and cur.
func changes(prev, cur map[string]any) map[string]Change {
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
	ch := map[string]Change{}
	for _, k := range names {
		if !reflect.DeepEqual(prev[k], cur[k]) {
			ch[k] = Change{From: prev[k], To: cur[k]}
		}
	}
	return ch
}
