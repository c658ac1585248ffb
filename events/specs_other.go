package events

import (
	"fmt"

	"github.com/nebula-orchestrator/nebula-go/internal/cronexpr"
)

// DeviceGroupSpec is what a device group runs: app and cron job names, in
// the order their configs are served to devices.
type DeviceGroupSpec struct {
	Apps     []string `json:"apps"`
	CronJobs []string `json:"cron_jobs"`
	// Rollout, when set, takes each change to the devices in waves
	// (absent: all at once, as Nebula 2.7).
	Rollout *RolloutPolicy `json:"rollout,omitempty"`
}

// Validate checks the member names (their existence is decided by the
// fold) and the rollout policy.
func (s DeviceGroupSpec) Validate() error {
	errs := []error{
		fieldErr("apps", validateMembers(KindApp, s.Apps)),
		fieldErr("cron_jobs", validateMembers(KindCronJob, s.CronJobs)),
	}
	if s.Rollout != nil {
		errs = append(errs, s.Rollout.problems()...)
	}
	return joinInvalid(errs)
}

func validateMembers(kind Kind, names []string) error {
	for _, n := range names {
		if err := ValidateName(kind, n); err != nil {
			return err
		}
	}
	if len(dedupe(names)) != len(names) {
		return fmt.Errorf("a %s is listed twice", kind)
	}
	return nil
}

// DeviceGroupPatch is a partial update of a device group.
type DeviceGroupPatch struct {
	Apps     *[]string      `json:"apps,omitempty"`
	CronJobs *[]string      `json:"cron_jobs,omitempty"`
	Rollout  *RolloutPolicy `json:"rollout,omitempty"`
}

// Apply returns s with the patch's fields set.
func (p DeviceGroupPatch) Apply(s DeviceGroupSpec) DeviceGroupSpec {
	setIf(&s.Apps, p.Apps)
	setIf(&s.CronJobs, p.CronJobs)
	if p.Rollout != nil {
		s.Rollout = p.Rollout
	}
	return s
}

// CronJobSpec is the desired configuration of a cron job.
type CronJobSpec struct {
	Schedule    string `json:"schedule"`
	DockerImage string `json:"docker_image"`
	RunSpec
}

// NewCronJobSpec returns a spec holding the create defaults (networks as
// for apps: Nebula 2.7's empty default crashed its workers).
func NewCronJobSpec(schedule, image string) CronJobSpec {
	return CronJobSpec{Schedule: schedule, DockerImage: image, RunSpec: NewRunSpec()}
}

// Validate reports every problem of the spec at once.
func (s CronJobSpec) Validate() error {
	sched, cronErr := cronexpr.Parse(s.Schedule)
	if cronErr == nil && !sched.Fires() {
		cronErr = fmt.Errorf("cron schedule %q never fires: no month has that day", s.Schedule)
	}
	errs := []error{
		fieldErr("schedule", cronErr),
		fieldErr("docker_image", ValidateImage(s.DockerImage)),
	}
	errs = append(errs, s.RunSpec.validate()...)
	return joinInvalid(errs)
}

// CronJobPatch is a partial update of a cron job.
type CronJobPatch struct {
	Schedule    *string `json:"schedule,omitempty"`
	DockerImage *string `json:"docker_image,omitempty"`
	RunPatch
}

// Apply returns s with the patch's fields set.
func (p CronJobPatch) Apply(s CronJobSpec) CronJobSpec {
	setIf(&s.Schedule, p.Schedule)
	setIf(&s.DockerImage, p.DockerImage)
	s.RunSpec = p.RunPatch.Apply(s.RunSpec)
	return s
}

// Permission levels of a user group on an object. "rw" implies "ro"
// (in Nebula 2.7 it did not).
const (
	PermRO = "ro"
	PermRW = "rw"
)

// UserGroupSpec is a user group: its members and what they may do.
type UserGroupSpec struct {
	GroupMembers   []string          `json:"group_members"`
	PruningAllowed bool              `json:"pruning_allowed"`
	Apps           map[string]string `json:"apps"`
	DeviceGroups   map[string]string `json:"device_groups"`
	CronJobs       map[string]string `json:"cron_jobs"`
	Admin          bool              `json:"admin"`
}

// NewUserGroupSpec returns an empty group: no members, no permissions.
func NewUserGroupSpec() UserGroupSpec {
	return UserGroupSpec{GroupMembers: []string{}, Apps: map[string]string{}, DeviceGroups: map[string]string{}, CronJobs: map[string]string{}}
}

// Validate checks member names and permission levels.
func (s UserGroupSpec) Validate() error {
	return joinInvalid([]error{
		fieldErr("group_members", validateMembers(KindUser, s.GroupMembers)),
		fieldErr("apps", validatePerms(KindApp, s.Apps)),
		fieldErr("device_groups", validatePerms(KindDeviceGroup, s.DeviceGroups)),
		fieldErr("cron_jobs", validatePerms(KindCronJob, s.CronJobs)),
	})
}

func validatePerms(kind Kind, perms map[string]string) error {
	for name, p := range perms {
		if err := ValidateName(kind, name); err != nil {
			return err
		}
		if p != PermRO && p != PermRW {
			return fmt.Errorf("permission on %q must be %q or %q, got %q", name, PermRO, PermRW, p)
		}
	}
	return nil
}

// UserGroupPatch is a partial update of a user group.
type UserGroupPatch struct {
	GroupMembers   *[]string          `json:"group_members,omitempty"`
	PruningAllowed *bool              `json:"pruning_allowed,omitempty"`
	Apps           *map[string]string `json:"apps,omitempty"`
	DeviceGroups   *map[string]string `json:"device_groups,omitempty"`
	CronJobs       *map[string]string `json:"cron_jobs,omitempty"`
	Admin          *bool              `json:"admin,omitempty"`
}

// Apply returns s with the patch's fields set.
func (p UserGroupPatch) Apply(s UserGroupSpec) UserGroupSpec {
	setIf(&s.GroupMembers, p.GroupMembers)
	setIf(&s.PruningAllowed, p.PruningAllowed)
	setIf(&s.Apps, p.Apps)
	setIf(&s.DeviceGroups, p.DeviceGroups)
	setIf(&s.CronJobs, p.CronJobs)
	setIf(&s.Admin, p.Admin)
	return s
}
