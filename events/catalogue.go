package events

import (
	"errors"
	"fmt"
	"strings"
)

// Type is the wire name of an event. Wire names are written to the log and
// never change; they are not derived from Go type names.
type Type string

// The configuration events. docs/events.md describes each one.
const (
	AppCreated   Type = "app.created"
	AppReplaced  Type = "app.replaced"
	AppPatched   Type = "app.patched"
	AppStopped   Type = "app.stopped"
	AppStarted   Type = "app.started"
	AppRestarted Type = "app.restarted"
	AppDeleted   Type = "app.deleted"

	DeviceGroupCreated  Type = "device_group.created"
	DeviceGroupReplaced Type = "device_group.replaced"
	DeviceGroupPatched  Type = "device_group.patched"
	DeviceGroupDeleted  Type = "device_group.deleted"
	DeviceGroupPruned   Type = "device_group.pruned"
	// RolloutDecided is a decision on a group's rollout (docs/rollouts.md).
	RolloutDecided Type = "device_group.rollout_decided"

	FleetPruned Type = "fleet.pruned"

	CronJobCreated  Type = "cron_job.created"
	CronJobReplaced Type = "cron_job.replaced"
	CronJobPatched  Type = "cron_job.patched"
	CronJobDeleted  Type = "cron_job.deleted"

	UserCreated        Type = "user.created"
	UserUpdated        Type = "user.updated"
	UserTokenRefreshed Type = "user.token_refreshed"
	UserDeleted        Type = "user.deleted"

	UserGroupCreated Type = "user_group.created"
	UserGroupUpdated Type = "user_group.updated"
	UserGroupDeleted Type = "user_group.deleted"

	LogCheckpointed Type = "log.checkpointed"
)

// entry describes one event type: its aggregate kind, the schema version
// this code writes, a constructor for its payload, and the upcasters that
// lift an older payload one version (upcast[v] turns version v into v+1).
type entry struct {
	kind   Kind
	schema int
	new    func() Payload
	upcast map[int]upcaster
}

var appUpcasts = map[int]upcaster{1: upcastAppV1}

// catalogue is every event type this code knows. Adding an event means
// adding it here, to docs/events.md and a golden record to testdata/.
var catalogue = map[Type]entry{
	AppCreated:   {KindApp, 2, func() Payload { return &AppCreatedV{} }, appUpcasts},
	AppReplaced:  {KindApp, 2, func() Payload { return &AppReplacedV{} }, appUpcasts},
	AppPatched:   {KindApp, 2, func() Payload { return &AppPatchedV{} }, appUpcasts},
	AppStopped:   {KindApp, 1, func() Payload { return &AppStoppedV{} }, nil},
	AppStarted:   {KindApp, 1, func() Payload { return &AppStartedV{} }, nil},
	AppRestarted: {KindApp, 1, func() Payload { return &AppRestartedV{} }, nil},
	AppDeleted:   {KindApp, 1, func() Payload { return &AppDeletedV{} }, nil},

	DeviceGroupCreated:  {KindDeviceGroup, 1, func() Payload { return &DeviceGroupCreatedV{} }, nil},
	DeviceGroupReplaced: {KindDeviceGroup, 1, func() Payload { return &DeviceGroupReplacedV{} }, nil},
	DeviceGroupPatched:  {KindDeviceGroup, 1, func() Payload { return &DeviceGroupPatchedV{} }, nil},
	DeviceGroupDeleted:  {KindDeviceGroup, 1, func() Payload { return &DeviceGroupDeletedV{} }, nil},
	DeviceGroupPruned:   {KindDeviceGroup, 1, func() Payload { return &DeviceGroupPrunedV{} }, nil},
	RolloutDecided:      {KindDeviceGroup, 1, func() Payload { return &RolloutDecidedV{} }, nil},

	FleetPruned: {KindFleet, 1, func() Payload { return &FleetPrunedV{} }, nil},

	CronJobCreated:  {KindCronJob, 1, func() Payload { return &CronJobCreatedV{} }, nil},
	CronJobReplaced: {KindCronJob, 1, func() Payload { return &CronJobReplacedV{} }, nil},
	CronJobPatched:  {KindCronJob, 1, func() Payload { return &CronJobPatchedV{} }, nil},
	CronJobDeleted:  {KindCronJob, 1, func() Payload { return &CronJobDeletedV{} }, nil},

	UserCreated:        {KindUser, 1, func() Payload { return &UserCreatedV{} }, nil},
	UserUpdated:        {KindUser, 1, func() Payload { return &UserUpdatedV{} }, nil},
	UserTokenRefreshed: {KindUser, 1, func() Payload { return &UserTokenRefreshedV{} }, nil},
	UserDeleted:        {KindUser, 1, func() Payload { return &UserDeletedV{} }, nil},

	UserGroupCreated: {KindUserGroup, 1, func() Payload { return &UserGroupCreatedV{} }, nil},
	UserGroupUpdated: {KindUserGroup, 1, func() Payload { return &UserGroupUpdatedV{} }, nil},
	UserGroupDeleted: {KindUserGroup, 1, func() Payload { return &UserGroupDeletedV{} }, nil},

	LogCheckpointed: {KindLog, 1, func() Payload { return &LogCheckpointedV{} }, nil},
}

// Types lists every event type in the catalogue.
func Types() []Type {
	ts := make([]Type, 0, len(catalogue))
	for t := range catalogue {
		ts = append(ts, t)
	}
	return ts
}

// KindOf returns the aggregate kind of an event type.
func KindOf(t Type) (Kind, bool) {
	e, ok := catalogue[t]
	return e.kind, ok
}

// SchemaOf returns the schema version this code writes for t.
func SchemaOf(t Type) int { return catalogue[t].schema }

// Payload types. The V suffix keeps the payload types apart from the
// wire-name constants above (AppCreated is the name, AppCreatedV its body).
type (
	// AppCreatedV creates an app. Accepted if no app of that name exists.
	AppCreatedV struct {
		Spec AppSpec `json:"spec"`
		// RevertOf, when set, says this restores the version at that
		// offset (a revert).
		RevertOf *int64 `json:"revert_of,omitempty"`
	}
	// AppReplacedV replaces an existing app's whole spec (POST .../update).
	AppReplacedV struct {
		Spec AppSpec `json:"spec"`
		// RevertOf, when set, says this restores the version at that
		// offset (a revert).
		RevertOf *int64 `json:"revert_of,omitempty"`
	}
	// AppPatchedV changes some fields of an existing app (PUT/PATCH .../update).
	AppPatchedV struct {
		Patch AppPatch `json:"patch"`
	}
	// AppStoppedV sets running=false.
	AppStoppedV struct{}
	// AppStartedV sets running=true.
	AppStartedV struct{}
	// AppRestartedV restarts a running app on every device.
	AppRestartedV struct{}
	// AppDeletedV deletes an app; groups listing it get a new version.
	AppDeletedV struct{}

	// DeviceGroupCreatedV creates a device group of existing apps and cron jobs.
	DeviceGroupCreatedV struct {
		Spec DeviceGroupSpec `json:"spec"`
		// RevertOf, when set, says this restores the version at that
		// offset (a revert).
		RevertOf *int64 `json:"revert_of,omitempty"`
	}
	// DeviceGroupReplacedV replaces both member lists.
	DeviceGroupReplacedV struct {
		Spec DeviceGroupSpec `json:"spec"`
		// RevertOf, when set, says this restores the version at that
		// offset (a revert).
		RevertOf *int64 `json:"revert_of,omitempty"`
	}
	// DeviceGroupPatchedV replaces the member lists it names.
	DeviceGroupPatchedV struct {
		Patch DeviceGroupPatch `json:"patch"`
	}
	// DeviceGroupDeletedV deletes a device group.
	DeviceGroupDeletedV struct{}
	// DeviceGroupPrunedV asks the group's devices to prune unused images.
	DeviceGroupPrunedV struct{}
	// FleetPrunedV asks every device to prune unused images.
	FleetPrunedV struct{}

	// CronJobCreatedV creates a cron job.
	CronJobCreatedV struct {
		Spec CronJobSpec `json:"spec"`
		// RevertOf, when set, says this restores the version at that
		// offset (a revert).
		RevertOf *int64 `json:"revert_of,omitempty"`
	}
	// CronJobReplacedV replaces a cron job's whole spec.
	CronJobReplacedV struct {
		Spec CronJobSpec `json:"spec"`
		// RevertOf, when set, says this restores the version at that
		// offset (a revert).
		RevertOf *int64 `json:"revert_of,omitempty"`
	}
	// CronJobPatchedV changes some fields of a cron job.
	CronJobPatchedV struct {
		Patch CronJobPatch `json:"patch"`
	}
	// CronJobDeletedV deletes a cron job; groups listing it get a new version.
	CronJobDeletedV struct{}

	// UserCreatedV creates a user. Secrets never enter the log in clear:
	// the password as a bcrypt hash, the token as its SHA-256 (hex), which
	// is what a Bearer token is looked up by.
	UserCreatedV struct {
		PasswordHash string `json:"password_hash"`
		TokenSHA256  string `json:"token_sha256"`
	}
	// UserUpdatedV changes a user's password and/or token.
	UserUpdatedV struct {
		PasswordHash *string `json:"password_hash,omitempty"`
		TokenSHA256  *string `json:"token_sha256,omitempty"`
	}
	// UserTokenRefreshedV replaces a user's token.
	UserTokenRefreshedV struct {
		TokenSHA256 string `json:"token_sha256"`
	}
	// UserDeletedV deletes a user (and its group memberships).
	UserDeletedV struct{}

	// UserGroupCreatedV creates a user group.
	UserGroupCreatedV struct {
		Spec UserGroupSpec `json:"spec"`
	}
	// UserGroupUpdatedV changes some fields of a user group.
	UserGroupUpdatedV struct {
		Patch UserGroupPatch `json:"patch"`
	}
	// UserGroupDeletedV deletes a user group.
	UserGroupDeletedV struct{}

	// LogCheckpointedV signs the hash chain of the log up to Covers: Head
	// is the chain's value after that offset (hex SHA-256), Signature the
	// ed25519 signature (hex) of chain.Message(Covers, Head) (package events/chain) by the
	// key KeyID names.
	LogCheckpointedV struct {
		Covers    int64  `json:"covers"`
		Head      string `json:"head"`
		KeyID     string `json:"key_id"`
		Signature string `json:"signature"`
	}
)

func (AppCreatedV) EventType() Type         { return AppCreated }
func (AppReplacedV) EventType() Type        { return AppReplaced }
func (AppPatchedV) EventType() Type         { return AppPatched }
func (AppStoppedV) EventType() Type         { return AppStopped }
func (AppStartedV) EventType() Type         { return AppStarted }
func (AppRestartedV) EventType() Type       { return AppRestarted }
func (AppDeletedV) EventType() Type         { return AppDeleted }
func (DeviceGroupCreatedV) EventType() Type { return DeviceGroupCreated }
func (DeviceGroupReplacedV) EventType() Type {
	return DeviceGroupReplaced
}
func (DeviceGroupPatchedV) EventType() Type { return DeviceGroupPatched }
func (DeviceGroupDeletedV) EventType() Type { return DeviceGroupDeleted }
func (DeviceGroupPrunedV) EventType() Type  { return DeviceGroupPruned }
func (FleetPrunedV) EventType() Type        { return FleetPruned }
func (CronJobCreatedV) EventType() Type     { return CronJobCreated }
func (CronJobReplacedV) EventType() Type    { return CronJobReplaced }
func (CronJobPatchedV) EventType() Type     { return CronJobPatched }
func (CronJobDeletedV) EventType() Type     { return CronJobDeleted }
func (UserCreatedV) EventType() Type        { return UserCreated }
func (UserUpdatedV) EventType() Type        { return UserUpdated }
func (UserTokenRefreshedV) EventType() Type { return UserTokenRefreshed }
func (UserDeletedV) EventType() Type        { return UserDeleted }
func (UserGroupCreatedV) EventType() Type   { return UserGroupCreated }
func (UserGroupUpdatedV) EventType() Type   { return UserGroupUpdated }
func (UserGroupDeletedV) EventType() Type   { return UserGroupDeleted }
func (LogCheckpointedV) EventType() Type    { return LogCheckpointed }

// Validate methods check what can be checked without state.

func (p AppCreatedV) Validate() error          { return p.Spec.Validate() }
func (p AppReplacedV) Validate() error         { return p.Spec.Validate() }
func (p DeviceGroupCreatedV) Validate() error  { return p.Spec.Validate() }
func (p DeviceGroupReplacedV) Validate() error { return p.Spec.Validate() }
func (p CronJobCreatedV) Validate() error      { return p.Spec.Validate() }
func (p CronJobReplacedV) Validate() error     { return p.Spec.Validate() }
func (p UserGroupCreatedV) Validate() error    { return p.Spec.Validate() }

func (p AppPatchedV) Validate() error {
	if p.Patch.Empty() {
		return fmt.Errorf("%w: the patch changes nothing", ErrInvalid)
	}
	return nil
}

func (p DeviceGroupPatchedV) Validate() error {
	if p.Patch == (DeviceGroupPatch{}) {
		return fmt.Errorf("%w: the patch changes nothing", ErrInvalid)
	}
	// The lists it gives must be valid lists of names, whatever the group.
	return p.Patch.Apply(DeviceGroupSpec{Apps: []string{}, CronJobs: []string{}}).Validate()
}

func (p CronJobPatchedV) Validate() error {
	if p.Patch == (CronJobPatch{}) {
		return fmt.Errorf("%w: the patch changes nothing", ErrInvalid)
	}
	return nil
}

func (p UserGroupUpdatedV) Validate() error {
	if p.Patch == (UserGroupPatch{}) {
		return fmt.Errorf("%w: the patch changes nothing", ErrInvalid)
	}
	return nil
}

func (p UserCreatedV) Validate() error {
	return joinInvalid([]error{validateBcrypt(p.PasswordHash), validateTokenHash(p.TokenSHA256)})
}

func (p UserUpdatedV) Validate() error {
	if p.PasswordHash == nil && p.TokenSHA256 == nil {
		return fmt.Errorf("%w: the update changes nothing", ErrInvalid)
	}
	var errs []error
	if p.PasswordHash != nil {
		errs = append(errs, validateBcrypt(*p.PasswordHash))
	}
	if p.TokenSHA256 != nil {
		errs = append(errs, validateTokenHash(*p.TokenSHA256))
	}
	return joinInvalid(errs)
}

func (p UserTokenRefreshedV) Validate() error {
	return joinInvalid([]error{validateTokenHash(p.TokenSHA256)})
}

func validateBcrypt(h string) error {
	if len(h) != 60 || !strings.HasPrefix(h, "$2") {
		return errors.New("password_hash is not a bcrypt hash")
	}
	return nil
}

func validateTokenHash(h string) error {
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return errors.New("token_sha256 is not 64 lower-case hex digits")
	}
	return nil
}

func (p LogCheckpointedV) Validate() error {
	var errs []error
	if p.Covers < 0 {
		errs = append(errs, errors.New("covers must be an offset"))
	}
	if len(p.Head) != 64 || strings.Trim(p.Head, "0123456789abcdef") != "" {
		errs = append(errs, errors.New("head is not 64 lower-case hex digits"))
	}
	if len(p.Signature) != 128 || strings.Trim(p.Signature, "0123456789abcdef") != "" {
		errs = append(errs, errors.New("signature is not 128 lower-case hex digits"))
	}
	if p.KeyID == "" || len(p.KeyID) > 64 {
		errs = append(errs, errors.New("key_id must have 1 to 64 characters"))
	}
	return joinInvalid(errs)
}
