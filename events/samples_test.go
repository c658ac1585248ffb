package events

import (
	"strings"
	"time"
)

func ptr[T any](v T) *T { return &v }

var sampleTime = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// samples returns one envelope of every event type, the content of the
// golden records of the current schemas.
func samples() []Envelope {
	app := NewAppSpec("registry.example.com:5000/acme/web:1.4@sha256:" + strings.Repeat("ab", 32))
	app.StartingPorts = []PortSpec{{Port: 80}, {Map: []PortPair{{Host: 8443, Container: 443}}}}
	app.ContainersPer = ContainersPer{Kind: PerMemory, Value: 512}
	app.EnvVars = map[string]string{"MODE": "prod", "DEBUG": "True"}
	app.Volumes = []string{"/data:/data:rw", "cache:/cache"}
	app.Devices = []string{"/dev/ttyUSB0:/dev/ttyUSB0:rw"}
	cron := NewCronJobSpec("*/5 * * * *", "busybox:1.36")
	cron.EnvVars = map[string]string{"TARGET": "db"}
	ug := NewUserGroupSpec()
	ug.GroupMembers = []string{"alice", "bob@example.com"}
	ug.Apps = map[string]string{"web": PermRW}
	ug.DeviceGroups = map[string]string{"edge": PermRO}
	bcrypt := "$2a$12$" + strings.Repeat("x", 53)
	tok := strings.Repeat("0f", 32)
	mk := func(kind Kind, name string, p Payload) Envelope {
		return Envelope{Type: p.EventType(), Aggregate: Aggregate{Kind: kind, Name: name}, Actor: "admin",
			CommandID: "cmd-" + string(p.EventType()), Time: sampleTime, Payload: p}
	}
	return []Envelope{
		mk(KindApp, "web", AppCreatedV{Spec: app}),
		mk(KindApp, "web", AppReplacedV{Spec: app}),
		mk(KindApp, "web", AppPatchedV{Patch: AppPatch{DockerImage: ptr("acme/web:1.5"), RunPatch: RunPatch{EnvVars: ptr(map[string]string{"MODE": "canary"})}, ContainersPer: &ContainersPer{Kind: PerCPU, Value: 0.5}}}),
		mk(KindApp, "web", AppStoppedV{}),
		mk(KindApp, "web", AppStartedV{}),
		mk(KindApp, "web", AppRestartedV{}),
		mk(KindApp, "web", AppDeletedV{}),
		mk(KindDeviceGroup, "edge", DeviceGroupCreatedV{Spec: DeviceGroupSpec{Apps: []string{"web"}, CronJobs: []string{"backup"}}}),
		mk(KindDeviceGroup, "edge", DeviceGroupReplacedV{Spec: DeviceGroupSpec{Apps: []string{"web", "api"}, CronJobs: []string{}}}),
		mk(KindDeviceGroup, "edge", DeviceGroupPatchedV{Patch: DeviceGroupPatch{Apps: ptr([]string{"api"})}}),
		mk(KindDeviceGroup, "edge", DeviceGroupDeletedV{}),
		mk(KindDeviceGroup, "edge", DeviceGroupPrunedV{}),
		mk(KindDeviceGroup, "edge", RolloutDecidedV{Decision: DecisionPromote, Target: 41, Wave: 0, Reason: "9 of 10 devices of wave 1 healthy for 60s",
			Counts: &RolloutCounts{Devices: 10, Healthy: 9, Pending: 1}}),
		mk(KindFleet, "", FleetPrunedV{}),
		mk(KindCronJob, "backup", CronJobCreatedV{Spec: cron}),
		mk(KindCronJob, "backup", CronJobReplacedV{Spec: cron}),
		mk(KindCronJob, "backup", CronJobPatchedV{Patch: CronJobPatch{Schedule: ptr("@hourly")}}),
		mk(KindCronJob, "backup", CronJobDeletedV{}),
		mk(KindUser, "alice", UserCreatedV{PasswordHash: bcrypt, TokenSHA256: tok}),
		mk(KindUser, "alice", UserUpdatedV{PasswordHash: ptr(bcrypt)}),
		mk(KindUser, "alice", UserTokenRefreshedV{TokenSHA256: tok}),
		mk(KindUser, "alice", UserDeletedV{}),
		mk(KindUserGroup, "ops", UserGroupCreatedV{Spec: ug}),
		mk(KindUserGroup, "ops", UserGroupUpdatedV{Patch: UserGroupPatch{Admin: ptr(true)}}),
		mk(KindUserGroup, "ops", UserGroupDeletedV{}),
		mk(KindLog, "", LogCheckpointedV{Covers: 41, Head: strings.Repeat("a1", 32), KeyID: "manager-1", Signature: strings.Repeat("5c", 64)}),
	}
}
