// Package past reads the configuration as it was: time travel (?at=), one
// object's versions (history), and the spec a revert restores. The fold
// keeps every version of every document (projections/versions.go), so a
// past read is a read of the versions, as cheap at a million events as at
// a thousand; the manager only maps these reads to HTTP, and the revert
// commands read the spec they restore through it.
package past

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Store is the projection of the whole log, which keeps the versions of
// its documents (projections/versions.go).
type Store interface {
	View(fn func(r projections.Reader) error) error
	// WaitFor returns once the store has folded offset.
	WaitFor(ctx context.Context, offset int64) error
	// Applied is the offset of the last record folded (-1: none).
	Applied() int64
}

// Past reads the past of one event log from its projection.
type Past struct {
	store Store
	times *projections.TimeIndex
}

// timeStride is how many records apart the in-memory time index samples
// the latest event time: 1,000 entries (8 KB) a million records, and
// OffsetAt reads the blocks of 1,024 records only.
const timeStride = 1024

// New returns a reader of the past of the log store is the projection of.
func New(store Store) *Past {
	return &Past{store: store, times: projections.NewTimeIndex(timeStride)}
}

// OffsetAt is the offset of the last event at or before t (by its event
// time, in log order: the record before the first one after t), -1 when
// the log has none, among the records the store has folded. The store
// keeps the latest event time of every record, so this reads no log; an
// index in memory of every 1,024th of them narrows the search first.
func (p *Past) OffsetAt(ctx context.Context, t time.Time) (int64, error) {
	var at int64
	last := p.store.Applied() // before the view: the view holds it
	err := p.store.View(func(r projections.Reader) error {
		var err error
		at, err = r.OffsetAt(t, last, p.times)
		return err
	})
	return at, err
}

// ViewAt runs fn with the projection as it was at offset at (inclusive):
// every document and /info as they were (projections.Reader.At), read
// from the versions the store keeps, not folded again. It waits for the
// store to have folded at.
func (p *Past) ViewAt(ctx context.Context, at int64, fn func(r projections.Reader) error) error {
	if err := p.store.WaitFor(ctx, at); err != nil {
		return err
	}
	return p.store.View(func(r projections.Reader) error {
		pr, err := r.At(at)
		if err != nil {
			return err
		}
		return fn(pr)
	})
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
	// Object is the object whose event made the version, when not this
	// one (a device group's version made by a change of one of its apps).
	Object *events.Aggregate `json:"object,omitempty"`
}

// AppVersions is a page of the versions of the app: up to limit of them
// from offset from on, oldest first, with the fields each one changed,
// and the offset the next page starts from (-1: none). It reads the app's
// versions only, however long the log.
func (p *Past) AppVersions(ctx context.Context, app string, from int64, limit int) ([]AppVersion, int64, error) {
	return p.Versions(ctx, events.KindApp, app, from, limit)
}

// versionField is the field of each kind's document that holds its
// version: not a change of its own.
var versionField = map[events.Kind]string{events.KindApp: "app_id", events.KindDeviceGroup: "device_group_id",
	events.KindCronJob: "cron_job_id", events.KindUser: "version", events.KindUserGroup: "version"}

// Versions is AppVersions for an object of any kind.
func (p *Past) Versions(ctx context.Context, kind events.Kind, name string, from int64, limit int) ([]AppVersion, int64, error) {
	var out []AppVersion
	next := int64(-1)
	err := p.store.View(func(r projections.Reader) error {
		versions, before, err := r.Versions(kind, name, from, limit+1)
		if err != nil {
			return err
		}
		if len(versions) > limit {
			next, versions = versions[limit].Offset, versions[:limit]
		}
		prev, err := fields(before, versionField[kind])
		if err != nil {
			return err
		}
		out = make([]AppVersion, 0, len(versions))
		for i := range versions {
			v := &versions[i]
			cur, err := fields(v, versionField[kind])
			if err != nil {
				return err
			}
			av := AppVersion{Version: v.Offset, Type: v.Meta.Type, Actor: v.Meta.Actor, Time: v.Meta.Time,
				Deleted: v.Doc == nil, RevertOf: v.Meta.RevertOf, Changes: changes(prev, cur)}
			if a := v.Meta.Aggregate; a.Kind != kind || a.Name != name {
				av.Object = &a // a group's version an app's change made
			}
			out = append(out, av)
			prev = cur
		}
		return nil
	})
	return out, next, err
}

// fields are the fields of a version's document but its version (nil:
// none, or deleted).
func fields(v *projections.Version, version string) (map[string]any, error) {
	if v == nil || v.Doc == nil {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(v.Doc, &m); err != nil {
		return nil, fmt.Errorf("version at offset %d: %w", v.Offset, err)
	}
	delete(m, version)
	return m, nil
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
