package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// pastLog is a log for past reads: creates, changes, deletes and
// re-creates of apps, cron jobs and device groups (some with a rollout
// policy, so rollouts start and move), reverts, and rejected commands
// (invalid, a stale precondition, a missing member, a duplicate command ID).
func pastLog(t *testing.T, n int, seed uint64) []events.Record {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 2))
	name := func(prefix string, of int) string { return fmt.Sprintf("%s%d", prefix, rnd.IntN(of)) }
	var recs []events.Record
	for off := int64(0); off < int64(n); off++ {
		var env events.Envelope
		switch k := rnd.IntN(16); k {
		case 0, 1, 2:
			spec := events.NewAppSpec(fmt.Sprintf("registry.local/img:%d", off))
			spec.EnvVars = map[string]string{"N": fmt.Sprint(off)}
			env = ev(events.KindApp, name("app", 20), events.AppCreatedV{Spec: spec})
		case 3:
			env = ev(events.KindApp, name("app", 20), events.AppPatchedV{Patch: events.AppPatch{DockerImage: ptr(fmt.Sprintf("img:%d", off))}})
		case 4:
			env = ev(events.KindApp, name("app", 20), events.AppStoppedV{})
		case 5:
			env = ev(events.KindApp, name("app", 20), events.AppDeletedV{})
		case 6:
			// A revert: the fold takes the spec the command read.
			to := rnd.Int64N(off + 1)
			spec := events.NewAppSpec(fmt.Sprintf("registry.local/img:%d", to))
			env = ev(events.KindApp, name("app", 20), events.AppReplacedV{Spec: spec, RevertOf: &to})
			if rnd.IntN(2) == 0 {
				env = ev(events.KindApp, name("app", 20), events.AppCreatedV{Spec: spec, RevertOf: &to})
			}
		case 7:
			env = ev(events.KindCronJob, name("cron", 6), events.CronJobCreatedV{Spec: events.NewCronJobSpec("* * * * *", fmt.Sprint("img:", off))})
		case 8:
			env = ev(events.KindCronJob, name("cron", 6), events.CronJobDeletedV{})
		case 9, 10:
			spec := events.DeviceGroupSpec{Apps: []string{name("app", 20), name("app", 20)}, CronJobs: []string{}}
			if rnd.IntN(3) == 0 {
				spec.CronJobs = []string{name("cron", 6)}
			}
			if rnd.IntN(2) == 0 {
				spec.Rollout = &events.RolloutPolicy{Waves: []int{10, 100}, MinHealthyTime: "1s", HealthyDeadline: "1m",
					MaxFailedPercent: 10, MaxSilentPercent: 10, AutoPromote: true, AutoRevert: true}
			}
			env = ev(events.KindDeviceGroup, name("dg", 8), events.DeviceGroupCreatedV{Spec: spec})
		case 11:
			env = ev(events.KindDeviceGroup, name("dg", 8), events.DeviceGroupPatchedV{Patch: events.DeviceGroupPatch{Apps: ptr([]string{name("app", 20)})}})
		case 12:
			env = ev(events.KindDeviceGroup, name("dg", 8), events.DeviceGroupDeletedV{})
		case 13:
			spec := events.NewAppSpec("nginx")
			spec.ContainersPer.Value = 0 // invalid
			env = ev(events.KindApp, name("app", 20), events.AppReplacedV{Spec: spec})
		case 14:
			env = ev(events.KindApp, name("app", 20), events.AppStartedV{})
			env.IfVersion = off - 1 // mostly stale
		case 15:
			env = ev(events.KindApp, name("app", 20), events.AppRestartedV{})
		}
		env.CommandID = fmt.Sprintf("cmd-%d", rnd.IntN(4*n)) // some repeat: duplicates
		recs = append(recs, record(t, off, env))
	}
	return recs
}

// TestPastReadsEqualAFold (issue 20): the projection as read at every
// offset from its versions (Reader.At), after the whole log is folded in
// batches, answers what a fold of the log up to that offset answers:
// every app, cron job, device group, rollout and /info, byte for byte.
func TestPastReadsEqualAFold(t *testing.T) {
	const n = 700
	recs := pastLog(t, n, 11)
	s := openStore(t, t.TempDir())
	if err := s.Reset(events.LogIdentity{ClusterID: "c", Topic: "t", TopicID: "x"}); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < n; {
		m := min(n-i, 1+rnd.IntN(120))
		if _, err := s.ApplyBatch(recs[i : i+m]); err != nil {
			t.Fatal(err)
		}
		i += m
	}

	ref := MemKV{}
	var accepted, rejected, deleted, rolling int
	for _, rec := range recs {
		res, err := Apply(ref, rec)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict.Accepted {
			accepted++
		} else {
			rejected++
		}
		now := Reader{ref}
		err = s.View(func(r Reader) error {
			past, err := r.At(rec.Offset)
			if err != nil {
				return err
			}
			same := func(what string, a, b any, errA, errB error) {
				if errA != nil || errB != nil {
					t.Fatalf("offset %d, %s: %v / %v", rec.Offset, what, errA, errB)
				}
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				if !bytes.Equal(ja, jb) {
					t.Fatalf("offset %d, %s:\npast read %s\nfold      %s", rec.Offset, what, ja, jb)
				}
			}
			for i := range 20 {
				n := fmt.Sprint("app", i)
				a, fa, errA := past.App(n)
				b, fb, errB := now.App(n)
				same(n, []any{a, fa}, []any{b, fb}, errA, errB)
			}
			for i := range 6 {
				n := fmt.Sprint("cron", i)
				a, fa, errA := past.CronJob(n)
				b, fb, errB := now.CronJob(n)
				same(n, []any{a, fa}, []any{b, fb}, errA, errB)
			}
			for i := range 8 {
				n := fmt.Sprint("dg", i)
				a, fa, errA := past.DeviceGroup(n)
				b, fb, errB := now.DeviceGroup(n)
				same(n, []any{a, fa}, []any{b, fb}, errA, errB)
				ia, fa, errA := past.Info(n)
				ib, fb, errB := now.Info(n)
				same(n+" /info", []any{ia, fa}, []any{ib, fb}, errA, errB)
				ra, fa, errA := past.Rollout(n)
				rb, fb, errB := now.Rollout(n)
				same(n+" rollout", []any{ra, fa}, []any{rb, fb}, errA, errB)
				if fb {
					rolling++
				}
				if !fb && res.Verdict.Accepted && res.Verdict.Type == events.DeviceGroupDeleted {
					deleted++
				}
			}
			for _, kind := range []events.Kind{events.KindApp, events.KindDeviceGroup, events.KindCronJob, events.KindUser, events.KindUserGroup} {
				a, errA := past.Names(kind)
				b, errB := now.Names(kind)
				same(string(kind)+" names", a, b, errA, errB)
			}
			ra, errA := past.Rollouts()
			rb, errB := now.Rollouts()
			same("rollouts", ra, rb, errA, errB)
			va, fa, errA := past.Verdict(rec.Offset)
			vb, fb, errB := now.Verdict(rec.Offset)
			same("verdict", []any{va, fa}, []any{vb, fb}, errA, errB)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The log is a mix, or the test proves little.
	if accepted < n/4 || rejected < n/10 || deleted == 0 || rolling == 0 {
		t.Fatalf("not a mix: %d accepted, %d rejected, %d group deletes, %d rollouts seen", accepted, rejected, deleted, rolling)
	}

	// Each object's events, accepted or not, from its index and its
	// versions: every record of that object, and no other.
	want := map[events.Aggregate][]int64{}
	for _, rec := range recs {
		h, err := events.DecodeHead(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		want[h.Aggregate] = append(want[h.Aggregate], rec.Offset)
	}
	err := s.View(func(r Reader) error {
		for a, offs := range want {
			got, err := r.EventOffsets(a, 0, -1, n)
			if err != nil {
				return err
			}
			if fmt.Sprint(got) != fmt.Sprint(offs) {
				t.Errorf("events of %v: %v, want %v", a, got, offs)
			}
			if page, err := r.EventOffsets(a, offs[len(offs)/2], -1, 2); err != nil || len(offs) > len(offs)/2+1 && fmt.Sprint(page) != fmt.Sprint(offs[len(offs)/2:len(offs)/2+2]) {
				t.Errorf("a page of the events of %v: %v %v", a, page, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// What has no past is an error, not the present.
	err = s.View(func(r Reader) error {
		past, err := r.At(3)
		if err != nil {
			return err
		}
		if err := past.kv.Keys([]byte("c/"), func([]byte) error { return nil }); err == nil {
			t.Error("a past listing of what keeps no versions answered")
		}
		if _, _, err := past.UserByToken("ab"); err == nil {
			t.Error("a past token lookup answered")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVersionsPage: an app's versions come a page at a time, each with
// the version before it, and say who made them.
func TestVersionsPage(t *testing.T) {
	h := newHistory(t)
	h.accept(app("web", "nginx:1"))                                                                              // 0
	h.accept(app("db", "pg"))                                                                                    // 1
	h.accept(ev(events.KindApp, "web", events.AppPatchedV{Patch: events.AppPatch{DockerImage: ptr("nginx:2")}})) // 2
	h.accept(ev(events.KindApp, "web", events.AppDeletedV{}))                                                    // 3
	to := int64(2)
	h.accept(ev(events.KindApp, "web", events.AppCreatedV{Spec: events.NewAppSpec("nginx:2"), RevertOf: &to})) // 4
	r := Reader{h.kv}
	all, before, err := r.Versions(events.KindApp, "web", 0, 10)
	if err != nil || before != nil {
		t.Fatalf("%v, before %v", err, before)
	}
	var offs []int64
	for _, v := range all {
		offs = append(offs, v.Offset)
	}
	if fmt.Sprint(offs) != "[0 2 3 4]" || all[2].Doc != nil || all[3].Meta.RevertOf == nil || *all[3].Meta.RevertOf != 2 ||
		all[1].Meta.Type != events.AppPatched || all[1].Meta.Actor != "t" {
		t.Fatalf("versions %v: %+v", offs, all)
	}
	page, before, err := r.Versions(events.KindApp, "web", 1, 2)
	if err != nil || len(page) != 2 || page[0].Offset != 2 || page[1].Offset != 3 || before == nil || before.Offset != 0 {
		t.Fatalf("page from 1: %+v, before %+v, %v", page, before, err)
	}
	if none, _, err := r.Versions(events.KindApp, "nothing", 0, 10); err != nil || len(none) != 0 {
		t.Fatalf("an app that never was: %+v %v", none, err)
	}
}

// TestVersionChunks: a batch keeps a document's versions in chunks (one
// per document and batch, a new one past maxChunkBytes), and every read of
// versions (a page forward from any offset, the one before it, back from
// any offset, the document at any offset) answers what a fold of one
// record at a time, one version per chunk, answers.
func TestVersionChunks(t *testing.T) {
	const n = 400
	big := string(bytes.Repeat([]byte("x"), 600)) // 120 versions fill a chunk
	rnd := rand.New(rand.NewPCG(9, 9))
	var recs []events.Record
	for off := int64(0); off < n; off++ {
		var env events.Envelope
		switch {
		case off == 0:
			env = app("web", "nginx:1")
		case rnd.IntN(40) == 0:
			env = ev(events.KindApp, "web", events.AppDeletedV{})
		case rnd.IntN(40) == 0:
			env = app("web", fmt.Sprint("nginx:", off))
		default:
			env = ev(events.KindApp, "web", events.AppPatchedV{Patch: events.AppPatch{RunPatch: events.RunPatch{
				EnvVars: &map[string]string{"BIG": big, "N": fmt.Sprint(off)}}}})
		}
		env.CommandID = fmt.Sprint("c", off)
		recs = append(recs, record(t, off, env))
	}
	ref := MemKV{}
	for _, rec := range recs {
		if _, err := Apply(ref, rec); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, t.TempDir())
	if err := s.Reset(events.LogIdentity{ClusterID: "c", Topic: "t", TopicID: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyBatch(recs[:n/2]); err != nil { // one batch
		t.Fatal(err)
	}
	if _, err := s.ApplyBatch(recs[n/2:]); err != nil {
		t.Fatal(err)
	}
	chunks, most := 0, 0
	for k, v := range dump(t, s) {
		if doc, _, ok := docOfVersion([]byte(k)); ok && string(doc) == "app/web" {
			vs, err := splitChunk([]byte(k), v)
			if err != nil {
				t.Fatal(err)
			}
			chunks, most = chunks+1, max(most, len(vs))
		}
	}
	if chunks < 4 || most < 50 {
		t.Fatalf("%d chunks of at most %d versions: the batches did not chunk", chunks, most)
	}
	offsets := func(vs []Version) []int64 {
		var out []int64
		for _, v := range vs {
			out = append(out, v.Offset)
		}
		return out
	}
	want := Reader{ref}
	err := s.View(func(got Reader) error {
		for range 300 {
			from, limit := rnd.Int64N(n+20)-10, 1+rnd.IntN(150)
			g, gb, err := got.Versions(events.KindApp, "web", from, limit)
			if err != nil {
				return err
			}
			w, wb, err := want.Versions(events.KindApp, "web", from, limit)
			if err != nil {
				return err
			}
			if fmt.Sprint(offsets(g)) != fmt.Sprint(offsets(w)) || (gb == nil) != (wb == nil) || gb != nil && gb.Offset != wb.Offset {
				t.Fatalf("Versions from %d, %d: %v (before %v), want %v (before %v)", from, limit, offsets(g), offsets(nonNil(gb)), offsets(w), offsets(nonNil(wb)))
			}
			for i := range g {
				if !bytes.Equal(g[i].Doc, w[i].Doc) || g[i].Meta.Type != w[i].Meta.Type {
					t.Fatalf("version %d differs", g[i].Offset)
				}
			}
			upTo, downTo := rnd.Int64N(n+10), rnd.Int64N(n)
			gbk, err := got.VersionsBack(events.KindApp, "web", upTo, downTo, limit)
			if err != nil {
				return err
			}
			wbk, err := want.VersionsBack(events.KindApp, "web", upTo, downTo, limit)
			if err != nil {
				return err
			}
			if fmt.Sprint(offsets(gbk)) != fmt.Sprint(offsets(wbk)) {
				t.Fatalf("VersionsBack(%d, %d, %d): %v, want %v", upTo, downTo, limit, offsets(gbk), offsets(wbk))
			}
			at := rnd.Int64N(n)
			ga, err := got.At(at)
			if err != nil {
				return err
			}
			wa, err := want.At(at)
			if err != nil {
				return err
			}
			gApp, gFound, gErr := ga.App("web")
			wApp, wFound, wErr := wa.App("web")
			gj, _ := json.Marshal(gApp)
			wj, _ := json.Marshal(wApp)
			if gErr != nil || wErr != nil || gFound != wFound || !bytes.Equal(gj, wj) {
				t.Fatalf("web at %d: %s (%v %v), want %s (%v %v)", at, gj, gFound, gErr, wj, wFound, wErr)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// nonNil is the version v points to, if any, as a list.
func nonNil(v *Version) []Version {
	if v == nil {
		return nil
	}
	return []Version{*v}
}

// TestVersionChunkEncoding: a chunk's encoded size is what it counted
// (the batch's size is counted from it), and a second version by one
// record replaces the first.
func TestVersionChunkEncoding(t *testing.T) {
	vc := newVersionChunks()
	meta := appendMeta(nil, VersionMeta{Type: events.AppPatched, Aggregate: events.Aggregate{Kind: events.KindApp, Name: "web"}, Actor: "a"})
	doc := bytes.Repeat([]byte("d"), 300)
	var c *versionChunk
	for i, off := range []int64{5, 7, 7, 9, 200, 70000} {
		var made bool
		c, _, made = vc.add([]byte("app/web"), pendingVersion{off: off, meta: meta, doc: doc[:i*50], exists: i != 3})
		if made != (i == 0) {
			t.Fatalf("version %d at %d: made a chunk: %v", i, off, made)
		}
	}
	b := c.encode()
	if len(b) != c.bytes {
		t.Fatalf("encoded %d bytes, counted %d", len(b), c.bytes)
	}
	vs, err := splitChunk(c.key, b)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, v := range vs {
		offs = append(offs, v.off)
	}
	if fmt.Sprint(offs) != "[5 7 9 200 70000]" {
		t.Fatalf("offsets %v", offs)
	}
	if v, _ := decodeVersion(vs[1].off, vs[1].v); len(v.Doc) != 100 {
		t.Fatalf("the second version at 7 did not replace the first: %d bytes", len(v.Doc))
	}
	if v, _ := decodeVersion(vs[2].off, vs[2].v); v.Doc != nil {
		t.Fatalf("the deletion at 9 has a document")
	}
}

// FuzzVersionChunk: any bytes read as a version chunk give an error or
// versions in offset order whose bytes are the chunk's, each of which
// decodes or fails with an error: a corrupt store never panics a read.
func FuzzVersionChunk(f *testing.F) {
	meta := appendMeta(nil, VersionMeta{Type: events.AppPatched, Aggregate: events.Aggregate{Kind: events.KindApp, Name: "web"}, Actor: "a"})
	f.Add(appendChunkVersion(appendChunkVersion(nil, 3, meta, []byte(`{"a":1}`), true), 9, meta, nil, false))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := splitChunk([]byte("v/app/web/x"), b)
		if err != nil {
			return
		}
		n := 0
		for i, v := range vs {
			if i > 0 && v.off <= vs[i-1].off {
				t.Fatalf("offsets out of order: %d after %d", v.off, vs[i-1].off)
			}
			n += 8 + len(v.v)
			d, err := decodeVersion(v.off, v.v)
			if err == nil && d.Offset != v.off {
				t.Fatalf("version at %d decoded as %d", v.off, d.Offset)
			}
			got, found, lerr := lastAtOrBefore([]byte("k"), b, v.off)
			if (err == nil) != (lerr == nil) || err == nil && (!found || got.Offset != v.off) {
				t.Fatalf("the version at %d: %v, last at or before it: %+v %v %v", v.off, err, got, found, lerr)
			}
		}
		if n > len(b) || n+len(vs) > len(b) {
			t.Fatalf("%d versions of %d bytes in a chunk of %d", len(vs), n, len(b))
		}
	})
}
