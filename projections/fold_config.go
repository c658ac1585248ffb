package projections

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Apps, device groups and cron jobs: what devices run.

func (f *folder) createApp(name string, spec events.AppSpec) error {
	k := key(prefixApp, name)
	if _, found, err := f.kv.Get(k); err != nil || found {
		return existsOr(err, "app", name)
	}
	if err := f.memo.appMemo().put(f.kv, k, App{Name: name, Version: f.off, AppSpec: spec}); err != nil {
		return err
	}
	// Groups that listed the app before it was deleted serve it again.
	return f.bumpGroupsListing(prefixIdxGroupApp, name)
}

func (f *folder) changeApp(name string, change func(*App) error) error {
	k := key(prefixApp, name)
	app, found, err := f.memo.appMemo().get(f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "app", name)
	}
	if err := change(&app); err != nil {
		return err
	}
	app.Version = f.off
	if err := f.memo.appMemo().put(f.kv, k, app); err != nil {
		return err
	}
	return f.bumpGroupsListing(prefixIdxGroupApp, name)
}

func (f *folder) deleteApp(name string) error {
	k := key(prefixApp, name)
	if _, found, err := f.kv.Get(k); err != nil || !found {
		return notFoundOr(err, "app", name)
	}
	if err := f.kv.Delete(k); err != nil {
		return err
	}
	// The groups keep the name (as Nebula did) but get a new version, so
	// their devices stop the app now rather than at the next group change.
	return f.bumpGroupsListing(prefixIdxGroupApp, name)
}

func (f *folder) createCron(name string, spec events.CronJobSpec) error {
	k := key(prefixCron, name)
	if _, found, err := f.kv.Get(k); err != nil || found {
		return existsOr(err, "cron job", name)
	}
	if err := putDoc(f.kv, k, CronJob{Name: name, Version: f.off, CronJobSpec: spec}); err != nil {
		return err
	}
	return f.bumpGroupsListing(prefixIdxGroupCron, name)
}

func (f *folder) changeCron(name string, change func(*CronJob) error) error {
	k := key(prefixCron, name)
	cj, found, err := getDoc[CronJob](f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "cron job", name)
	}
	if err := change(&cj); err != nil {
		return err
	}
	cj.Version = f.off
	if err := putDoc(f.kv, k, cj); err != nil {
		return err
	}
	return f.bumpGroupsListing(prefixIdxGroupCron, name)
}

func (f *folder) deleteCron(name string) error {
	k := key(prefixCron, name)
	if _, found, err := f.kv.Get(k); err != nil || !found {
		return notFoundOr(err, "cron job", name)
	}
	if err := f.kv.Delete(k); err != nil {
		return err
	}
	return f.bumpGroupsListing(prefixIdxGroupCron, name)
}

// bumpGroupsListing gives every device group that lists name (in the
// index under prefix) the current offset as its version.
func (f *folder) bumpGroupsListing(prefix []byte, name string) error {
	groups, err := indexed(f.kv, f.memo.listMemo(), prefix, name)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := f.updateGroup(g, func(*DeviceGroup) {}); err != nil {
			return err
		}
	}
	return nil
}

func (f *folder) updateGroup(name string, change func(*DeviceGroup)) error {
	k := key(prefixGroup, name)
	groups := f.memo.groupMemo()
	g, found, err := groups.get(f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "device group", name)
	}
	change(&g)
	g.Version = f.off
	f.touch(g)
	return groups.put(f.kv, k, g)
}

func (f *folder) createGroup(name string, spec events.DeviceGroupSpec) error {
	k := key(prefixGroup, name)
	if _, found, err := f.kv.Get(k); err != nil || found {
		return existsOr(err, "device group", name)
	}
	if err := f.checkMembers(spec); err != nil {
		return err
	}
	g := DeviceGroup{Name: name, Version: f.off, PruneID: f.off, DeviceGroupSpec: spec}
	if err := f.memo.groupMemo().put(f.kv, k, g); err != nil {
		return err
	}
	f.touch(g)
	return f.reindexGroup(name, events.DeviceGroupSpec{}, spec)
}

// changeGroup changes a group; members says whether the change may alter
// the member lists (which must then name existing apps and cron jobs).
func (f *folder) changeGroup(name string, change func(*DeviceGroup), members bool) error {
	k := key(prefixGroup, name)
	groups := f.memo.groupMemo()
	g, found, err := groups.get(f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "device group", name)
	}
	old := g.DeviceGroupSpec
	change(&g)
	if members {
		if err := validSpec(g.DeviceGroupSpec.Validate()); err != nil {
			return err
		}
		if err := f.checkMembers(g.DeviceGroupSpec); err != nil {
			return err
		}
		if err := f.reindexGroup(name, old, g.DeviceGroupSpec); err != nil {
			return err
		}
	}
	g.Version = f.off
	f.touch(g)
	if old.Rollout != nil && g.Rollout == nil {
		if err := f.kv.Delete(key(prefixRollout, name)); err != nil { // the policy removed: every change at once again
			return err
		}
	}
	return groups.put(f.kv, k, g)
}

func (f *folder) deleteGroup(name string) error {
	k := key(prefixGroup, name)
	g, found, err := getDoc[DeviceGroup](f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "device group", name)
	}
	if err := f.reindexGroup(name, g.DeviceGroupSpec, events.DeviceGroupSpec{}); err != nil {
		return err
	}
	f.markTouched(name)
	if g.Rollout != nil {
		if err := f.kv.Delete(key(prefixRollout, name)); err != nil {
			return err
		}
	}
	return f.kv.Delete(k)
}

// pruneFleet is a prune of every device group.
func (f *folder) pruneFleet() error {
	var names []string
	err := f.kv.Keys(prefixGroup, func(k []byte) error {
		names = append(names, string(k[len(prefixGroup):]))
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := f.updateGroup(n, func(g *DeviceGroup) { g.PruneID = f.off }); err != nil {
			return err
		}
	}
	return nil
}

// checkMembers rejects a group listing an app or cron job that does not
// exist at this point of the log.
func (f *folder) checkMembers(spec events.DeviceGroupSpec) error {
	for _, a := range spec.Apps {
		if _, found, err := f.kv.Get(key(prefixApp, a)); err != nil || !found {
			return missingOr(err, events.KindApp, a)
		}
	}
	for _, c := range spec.CronJobs {
		if _, found, err := f.kv.Get(key(prefixCron, c)); err != nil || !found {
			return missingOr(err, events.KindCronJob, c)
		}
	}
	return nil
}

// reindexGroup moves the group's index entries from the old member lists
// to the new ones.
func (f *folder) reindexGroup(group string, old, cur events.DeviceGroupSpec) error {
	if err := f.reindex(prefixIdxGroupApp, group, old.Apps, cur.Apps); err != nil {
		return err
	}
	return f.reindex(prefixIdxGroupCron, group, old.CronJobs, cur.CronJobs)
}

// reindex removes index entries (member, owner) for members no longer
// listed and adds them for new ones.
func (f *folder) reindex(prefix []byte, owner string, old, cur []string) error {
	memo := f.memo.listMemo()
	for _, m := range old {
		if !slices.Contains(cur, m) {
			if err := indexRemove(f.kv, memo, prefix, m, owner); err != nil {
				return err
			}
		}
	}
	for _, m := range cur {
		if err := indexAdd(f.kv, memo, prefix, m, owner); err != nil {
			return err
		}
	}
	return nil
}

func existsOr(err error, what, name string) error {
	if err != nil {
		return err
	}
	return reject(ReasonExists, "%s %q exists", what, name)
}

func notFoundOr(err error, what, name string) error {
	if err != nil {
		return err
	}
	return reject(ReasonNotFound, "%s %q does not exist", what, name)
}

// missingOr rejects a command naming a member (of kind) that does not
// exist; the verdict carries the member as data.
func missingOr(err error, kind events.Kind, name string) error {
	if err != nil {
		return err
	}
	what := strings.ReplaceAll(string(kind), "_", " ")
	return &rejection{reason: ReasonMissingMember, detail: fmt.Sprintf("%s %q does not exist", what, name),
		missing: &events.Aggregate{Kind: kind, Name: name}}
}
