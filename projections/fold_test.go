package projections

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// history folds envelopes into a MemKV at offsets 0, 1, 2, ...
type history struct {
	t   *testing.T
	kv  MemKV
	off int64
}

func newHistory(t *testing.T) *history { return &history{t: t, kv: MemKV{}} }

func ev(kind events.Kind, name string, p events.Payload) events.Envelope {
	return events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: kind, Name: name}, Actor: "t", Time: time.Unix(0, 0), Payload: p}
}

func (h *history) fold(env events.Envelope) Result {
	h.t.Helper()
	b, err := encodeUnchecked(env)
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := Apply(h.kv, events.Record{Offset: h.off, Value: b})
	if err != nil {
		h.t.Fatalf("offset %d: %v", h.off, err)
	}
	h.off++
	return res
}

func (h *history) accept(env events.Envelope) Result {
	h.t.Helper()
	res := h.fold(env)
	if !res.Verdict.Accepted {
		h.t.Fatalf("offset %d %s rejected: %s %s", res.Verdict.Offset, env.Type, res.Verdict.Reason, res.Verdict.Detail)
	}
	return res
}

func (h *history) reject(env events.Envelope, want Reason) Verdict {
	h.t.Helper()
	res := h.fold(env)
	if res.Verdict.Accepted || res.Verdict.Reason != want {
		h.t.Fatalf("offset %d %s: verdict %+v, want rejected %s", res.Verdict.Offset, env.Type, res.Verdict, want)
	}
	return res.Verdict
}

func (h *history) group(name string) DeviceGroup {
	h.t.Helper()
	g, found, err := Reader{h.kv}.DeviceGroup(name)
	if err != nil || !found {
		h.t.Fatalf("group %s: found=%v err=%v", name, found, err)
	}
	return g
}

// encodeUnchecked encodes like events.Encode but without validation, so
// tests can put invalid payloads in the log as a foreign writer could.
func encodeUnchecked(env events.Envelope) ([]byte, error) {
	if err := env.Validate(); err == nil {
		return events.Encode(env)
	}
	good := env
	good.Payload = events.AppDeletedV{}
	good.Type = events.AppDeleted
	good.Aggregate = events.Aggregate{Kind: events.KindApp, Name: "placeholder"}
	b, err := events.Encode(good)
	if err != nil {
		return nil, err
	}
	return []byte(strings.NewReplacer(
		`"type":"app.deleted"`, `"type":"`+string(env.Type)+`"`,
		`"kind":"app","name":"placeholder"`, `"kind":"`+string(env.Aggregate.Kind)+`","name":"`+env.Aggregate.Name+`"`,
		`"payload":{}`, `"payload":`+mustJSON(env.Payload),
		`"schema":1`, `"schema":`+itoa(events.SchemaOf(env.Type)),
	).Replace(string(b))), nil
}

func app(name, image string) events.Envelope {
	return ev(events.KindApp, name, events.AppCreatedV{Spec: events.NewAppSpec(image)})
}

func group(name string, apps ...string) events.Envelope {
	return ev(events.KindDeviceGroup, name, events.DeviceGroupCreatedV{Spec: events.DeviceGroupSpec{Apps: apps, CronJobs: []string{}}})
}

func TestFoldApps(t *testing.T) {
	h := newHistory(t)
	h.accept(app("web", "nginx"))                             // 0
	h.reject(app("web", "nginx:2"), ReasonExists)             // 1
	h.reject(group("edge", "web", "db"), ReasonMissingMember) // 2
	h.accept(group("edge", "web"))                            // 3
	h.accept(group("lab"))                                    // 4
	if g := h.group("edge"); g.Version != 3 || g.PruneID != 3 {
		t.Fatalf("new group: %+v", g)
	}
	res := h.accept(ev(events.KindApp, "web", events.AppPatchedV{Patch: events.AppPatch{DockerImage: ptr("nginx:1.27")}})) // 5
	if len(res.Groups) != 1 || res.Groups[0] != "edge" || h.group("edge").Version != 5 || h.group("lab").Version != 4 {
		t.Fatalf("an app change must raise the version of exactly the groups listing it: %v edge=%d lab=%d", res.Groups, h.group("edge").Version, h.group("lab").Version)
	}
	a, _, _ := Reader{h.kv}.App("web")
	if a.Version != 5 || a.DockerImage != "nginx:1.27" || !a.Running {
		t.Fatalf("patched app: %+v", a)
	}
	h.accept(ev(events.KindApp, "web", events.AppStoppedV{}))                     // 6
	h.reject(ev(events.KindApp, "web", events.AppRestartedV{}), ReasonNotRunning) // 7
	h.accept(ev(events.KindApp, "web", events.AppStartedV{}))                     // 8
	h.accept(ev(events.KindApp, "web", events.AppRestartedV{}))                   // 9
	bad := ev(events.KindApp, "web", events.AppPatchedV{Patch: events.AppPatch{RunPatch: events.RunPatch{Networks: ptr([]string{"host", "nebula"})}}})
	h.reject(bad, ReasonInvalid)                              // 10
	h.accept(ev(events.KindApp, "web", events.AppDeletedV{})) // 11
	if g := h.group("edge"); g.Version != 11 || len(g.Apps) != 1 {
		t.Fatalf("deleting a listed app must raise the group's version and keep the name: %+v", g)
	}
	h.reject(ev(events.KindApp, "web", events.AppDeletedV{}), ReasonNotFound) // 12
	h.accept(app("web", "nginx"))                                             // 13
	if a, _, _ := (Reader{h.kv}).App("web"); a.Version != 13 || h.group("edge").Version != 13 {
		t.Fatalf("re-created app must get a higher version and raise its groups: app %d group %d", a.Version, h.group("edge").Version)
	}
}

func TestFoldInvalidPayloadIsRejectedNotApplied(t *testing.T) {
	h := newHistory(t)
	spec := events.NewAppSpec("nginx")
	spec.StartingPorts = []events.PortSpec{{Port: 70000}}
	h.reject(ev(events.KindApp, "web", events.AppCreatedV{Spec: spec}), ReasonInvalid)
	h.reject(ev(events.KindApp, "bad name", events.AppCreatedV{Spec: events.NewAppSpec("nginx")}), ReasonInvalid)
	if names, _ := (Reader{h.kv}).Names(events.KindApp); len(names) != 0 {
		t.Fatalf("invalid events created apps: %v", names)
	}
}

func TestFoldGroups(t *testing.T) {
	h := newHistory(t)
	h.accept(app("a", "nginx"))                                                                                                                          // 0
	h.accept(app("b", "nginx"))                                                                                                                          // 1
	h.accept(ev(events.KindCronJob, "job", events.CronJobCreatedV{Spec: events.NewCronJobSpec("* * * * *", "busybox")}))                                 // 2
	h.accept(ev(events.KindDeviceGroup, "g1", events.DeviceGroupCreatedV{Spec: events.DeviceGroupSpec{Apps: []string{"a"}, CronJobs: []string{"job"}}})) // 3
	h.accept(group("g2", "a", "b"))                                                                                                                      // 4
	h.accept(ev(events.KindDeviceGroup, "g1", events.DeviceGroupPatchedV{Patch: events.DeviceGroupPatch{Apps: ptr([]string{"b"})}}))                     // 5
	// a is no longer in g1: changing it must not touch g1.
	res := h.accept(ev(events.KindApp, "a", events.AppRestartedV{})) // 6
	if len(res.Groups) != 1 || res.Groups[0] != "g2" || h.group("g1").Version != 5 {
		t.Fatalf("index not moved on patch: touched %v, g1 version %d", res.Groups, h.group("g1").Version)
	}
	res = h.accept(ev(events.KindCronJob, "job", events.CronJobPatchedV{Patch: events.CronJobPatch{Schedule: ptr("@daily")}})) // 7
	if len(res.Groups) != 1 || h.group("g1").Version != 7 {
		t.Fatalf("cron job change must raise g1: %v", res.Groups)
	}
	h.reject(ev(events.KindCronJob, "job", events.CronJobPatchedV{Patch: events.CronJobPatch{Schedule: ptr("61 * * * *")}}), ReasonInvalid) // 8
	h.accept(ev(events.KindDeviceGroup, "g2", events.DeviceGroupPrunedV{}))                                                                 // 9
	if g := h.group("g2"); g.PruneID != 9 || g.Version != 9 {
		t.Fatalf("group prune: %+v", g)
	}
	res = h.accept(ev(events.KindFleet, "", events.FleetPrunedV{})) // 10
	if len(res.Groups) != 2 || h.group("g1").PruneID != 10 || h.group("g2").PruneID != 10 {
		t.Fatalf("fleet prune: %v %+v %+v", res.Groups, h.group("g1"), h.group("g2"))
	}
	h.accept(ev(events.KindDeviceGroup, "g2", events.DeviceGroupDeletedV{})) // 11
	res = h.accept(ev(events.KindApp, "a", events.AppRestartedV{}))          // 12
	if len(res.Groups) != 0 {
		t.Fatalf("a deleted group is still indexed: %v", res.Groups)
	}
	h.accept(group("g2")) // 13: the name is free again
	h.reject(ev(events.KindDeviceGroup, "nope", events.DeviceGroupPrunedV{}), ReasonNotFound)
}

func TestFoldPreconditionsAndDuplicates(t *testing.T) {
	h := newHistory(t)
	e := app("web", "nginx")
	e.CommandID = "cmd-1"
	h.accept(e)                       // 0
	v := h.reject(e, ReasonDuplicate) // 1: the same command again
	if v.DuplicateOf != 0 {
		t.Fatalf("duplicate verdict %+v", v)
	}
	stop := ev(events.KindApp, "web", events.AppStoppedV{})
	stop.IfVersion = 7
	h.reject(stop, ReasonVersionMismatch) // 2
	stop.IfVersion = 0
	h.accept(stop) // 3
	start := ev(events.KindApp, "web", events.AppStartedV{})
	start.IfVersion = 3
	h.accept(start) // 4
	create := app("new", "nginx")
	create.IfVersion = 1
	h.reject(create, ReasonVersionMismatch) // 5: "must not exist" is version 0
	if r, _, _ := (Reader{h.kv}).Verdict(1); r.Reason != ReasonDuplicate {
		t.Fatalf("stored verdict %+v", r)
	}
	st, _, _ := getDoc[Stats](h.kv, keyStats)
	if st.Records != 6 || st.Accepted != 3 || st.Rejected != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFoldUsers(t *testing.T) {
	h := newHistory(t)
	hash := "$2a$12$" + strings.Repeat("x", 53)
	tok := func(c string) string { return strings.Repeat(c, 64) }
	h.accept(ev(events.KindUser, "alice", events.UserCreatedV{PasswordHash: hash, TokenSHA256: tok("a")}))
	h.reject(ev(events.KindUser, "bob", events.UserCreatedV{PasswordHash: hash, TokenSHA256: tok("a")}), ReasonTokenInUse)
	h.accept(ev(events.KindUser, "bob", events.UserCreatedV{PasswordHash: hash, TokenSHA256: tok("b")}))
	spec := events.NewUserGroupSpec()
	spec.GroupMembers = []string{"alice", "carol"}
	h.reject(ev(events.KindUserGroup, "ops", events.UserGroupCreatedV{Spec: spec}), ReasonMissingMember)
	spec.GroupMembers = []string{"alice", "bob"}
	h.accept(ev(events.KindUserGroup, "ops", events.UserGroupCreatedV{Spec: spec}))
	h.accept(ev(events.KindUser, "alice", events.UserTokenRefreshedV{TokenSHA256: tok("c")}))
	r := Reader{h.kv}
	if _, found, _ := r.UserByToken(tok("a")); found {
		t.Fatal("old token still finds the user")
	}
	if u, found, _ := r.UserByToken(tok("c")); !found || u.Name != "alice" {
		t.Fatalf("new token: %+v %v", u, found)
	}
	h.accept(ev(events.KindUser, "alice", events.UserDeletedV{}))
	ug, _, _ := r.UserGroup("ops")
	if len(ug.GroupMembers) != 1 || ug.GroupMembers[0] != "bob" {
		t.Fatalf("deleted user still a member: %+v", ug.GroupMembers)
	}
	if _, found, _ := r.UserByToken(tok("c")); found {
		t.Fatal("deleted user's token still works")
	}
	h.accept(ev(events.KindUser, "alice", events.UserCreatedV{PasswordHash: hash, TokenSHA256: tok("a")}))
	if ug, _, _ := r.UserGroup("ops"); len(ug.GroupMembers) != 1 {
		t.Fatal("a re-created user inherited the old one's groups")
	}
}

func TestFoldUnreadableRecordIsAnError(t *testing.T) {
	for name, value := range map[string]string{
		"garbage":      "\x00not json",
		"unknown type": `{"type":"app.teleported","schema":1,"aggregate":{"kind":"app","name":"a"},"time":"2026-01-01T00:00:00Z","payload":{}}`,
		"newer schema": `{"type":"app.deleted","schema":9,"aggregate":{"kind":"app","name":"a"},"time":"2026-01-01T00:00:00Z","payload":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			kv := MemKV{}
			_, err := Apply(kv, events.Record{Offset: 41, Value: []byte(value)})
			var re *RecordError
			if !errors.As(err, &re) || re.Offset != 41 || !strings.Contains(err.Error(), "offset 41") {
				t.Fatalf("Apply = %v, want a RecordError naming offset 41", err)
			}
			if len(kv) != 0 {
				t.Fatalf("an unreadable record wrote %d keys", len(kv))
			}
		})
	}
}

func TestCheckpointMustMatchTheChain(t *testing.T) {
	h := newHistory(t)
	h.accept(ev(events.KindApp, "web", events.AppCreatedV{Spec: events.NewAppSpec("nginx")}))
	h.accept(ev(events.KindApp, "web", events.AppStoppedV{}))
	head, _, _ := chainAt(h.kv, 1)
	good := events.LogCheckpointedV{Covers: 1, Head: hex.EncodeToString(head), KeyID: "k", Signature: strings.Repeat("ab", 64)}
	h.accept(ev(events.KindLog, "", good))
	bad := good
	bad.Head = strings.Repeat("00", 32)
	h.reject(ev(events.KindLog, "", bad), ReasonCheckpoint)
	future := good
	future.Covers = 99
	h.reject(ev(events.KindLog, "", future), ReasonCheckpoint)
	// The last accepted one is kept, not the rejected ones after it.
	cp, found, err := Reader{h.kv}.LastCheckpoint()
	if err != nil || !found || cp.Offset != 2 || cp.Covers != 1 || cp.Head != good.Head || cp.KeyID != "k" {
		t.Fatalf("the last checkpoint: %+v %v %v", cp, found, err)
	}
}
