package projections

import "github.com/nebula-orchestrator/nebula-go/events"

// The documents of the projection. Their JSON keys are Nebula's, so the API
// can serve them as they are. Versions are log offsets.

// App is an app as the projection holds it.
type App struct {
	Name    string `json:"app_name"`
	Version int64  `json:"app_id"`
	events.AppSpec
}

// DeviceGroup is a device group. Version is the offset of the last event
// that changed what the group's devices must run (/info): a change of the
// group itself, of one of its apps or cron jobs (including their deletion
// or re-creation), or a prune of the group or of the fleet.
type DeviceGroup struct {
	Name    string `json:"device_group"`
	Version int64  `json:"device_group_id"`
	PruneID int64  `json:"prune_id"`
	events.DeviceGroupSpec
}

// CronJob is a cron job.
type CronJob struct {
	Name    string `json:"cron_job_name"`
	Version int64  `json:"cron_job_id"`
	events.CronJobSpec
}

// User is a user. Secrets are stored only as hashes.
type User struct {
	Name         string `json:"user_name"`
	Version      int64  `json:"version"`
	PasswordHash string `json:"password_hash"`
	TokenSHA256  string `json:"token_sha256"`
}

// UserGroup is a user group.
type UserGroup struct {
	Name    string `json:"user_group"`
	Version int64  `json:"version"`
	events.UserGroupSpec
}

// Reason says why the fold rejected a record. The strings are stable: they
// are stored in verdicts.
type Reason string

// Rejection reasons.
const (
	ReasonExists          Reason = "exists"              // create of a name that exists
	ReasonNotFound        Reason = "not_found"           // change of a name that does not exist
	ReasonVersionMismatch Reason = "version_mismatch"    // IfVersion differs from the current version
	ReasonInvalid         Reason = "invalid"             // the payload breaks a rule of the events package
	ReasonMissingMember   Reason = "missing_member"      // a listed app, cron job or user does not exist
	ReasonNotRunning      Reason = "not_running"         // restart of a stopped app
	ReasonTokenInUse      Reason = "token_in_use"        // another user has this token
	ReasonDuplicate       Reason = "duplicate"           // the command ID was folded before
	ReasonCheckpoint      Reason = "checkpoint_mismatch" // a checkpoint's head differs from the fold's chain
	ReasonUnsigned        Reason = "unsigned"            // no trusted key signed the record (events/signing)
	ReasonRolloutMoved    Reason = "rollout_moved"       // a rollout decision that no longer applies (another version, wave or state)
)

// Verdict is the fold's decision on one record. Every manager reaches the
// same verdict for the same offset.
type Verdict struct {
	Offset    int64            `json:"offset"`
	Type      events.Type      `json:"type"`
	Aggregate events.Aggregate `json:"aggregate"`
	CommandID string           `json:"command_id,omitempty"`
	Accepted  bool             `json:"accepted"`
	Reason    Reason           `json:"reason,omitempty"`
	// Detail explains a rejection to a person (which app is missing).
	Detail string `json:"detail,omitempty"`
	// DuplicateOf is the offset of the first record with the same command
	// ID, for ReasonDuplicate.
	DuplicateOf int64 `json:"duplicate_of,omitempty"`
	// Missing is the member that does not exist, for ReasonMissingMember:
	// an app or cron job a device group lists, a user a user group lists.
	Missing *events.Aggregate `json:"missing,omitempty"`
}

// Stats count what the store has folded since it was built.
type Stats struct {
	Records  int64 `json:"records"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
}
