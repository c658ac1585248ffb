package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Log is where commands append their events.
type Log interface {
	Append(ctx context.Context, env events.Envelope) (int64, error)
	// Bounds returns the first offset and the offset of the next record.
	Bounds(ctx context.Context) (start, end int64, err error)
}

// Projection is what commands read and wait on.
type Projection interface {
	// Applied is the offset of the last record folded (-1: none).
	Applied() int64
	WaitFor(ctx context.Context, offset int64) error
	View(fn func(r projections.Reader) error) error
	// DryRun folds env on top of the current state without writing.
	DryRun(env events.Envelope, fn func(res projections.Result, r projections.Reader) error) error
}

// Service runs commands.
type Service struct {
	log  Log
	proj Projection
	past Past
	now  func() time.Time
	// BcryptCost of new password hashes (DefaultBcryptCost).
	BcryptCost int
}

// New returns a service appending to log and answering from proj; past
// (nil: reverts answer ErrNoPast) is where reverts read what they restore.
func New(log Log, proj Projection, past Past) *Service {
	return &Service{log: log, proj: proj, past: past, now: time.Now, BcryptCost: DefaultBcryptCost}
}

// Meta is what a command carries besides its input.
type Meta struct {
	// Actor is who asks (user name or "local-admin").
	Actor string
	// IdempotencyKey, when set, makes a retried request with the same key
	// (from the same actor) a duplicate that changes nothing and gets the
	// first request's answer.
	IdempotencyKey string
	// IfVersion, when non-zero, is the version the object must have
	// (HTTP If-Match).
	IfVersion int64
	// DryRun: decide and answer, append nothing. The device groups whose
	// version the command would raise are put in DryRunGroups.
	DryRun       bool
	DryRunGroups *[]string
}

// ErrLogReplaced: the event log was wiped or restored under this manager's
// projection; the command was appended to the new log, but its answer
// must wait for the projection's rebuild. It is temporary: try again.
var ErrLogReplaced error = logReplaced{}

type logReplaced struct{}

func (logReplaced) Error() string {
	return "the event log was replaced under this manager's projection, which is being rebuilt; the change was appended: check it, then retry"
}
func (logReplaced) Temporary() bool { return true }

// Code classifies why a command failed.
type Code string

// Failure codes. The manager maps each to Nebula's status code and body.
const (
	CodeInvalid         Code = "invalid"          // bad input; Fields says which
	CodeExists          Code = "exists"           // create of an existing name
	CodeNotFound        Code = "not_found"        // the object does not exist
	CodeMissingApp      Code = "missing_app"      // a device group lists an app that does not exist
	CodeMissingCronJob  Code = "missing_cron_job" // a device group lists a cron job that does not exist
	CodeMissingUser     Code = "missing_user"     // a user group lists a user that does not exist
	CodeNotRunning      Code = "not_running"      // restart of a stopped app
	CodeVersionMismatch Code = "version_mismatch" // If-Match differs from the current version
	CodeTokenInUse      Code = "token_in_use"     // another user has this token
	CodeNotAtOffset     Code = "not_at_offset"    // a revert to an offset where the object did not exist
	CodeRolloutMoved    Code = "rollout_moved"    // a rollout decision that no longer applies
)

// Error is a command that was refused: by validation or by the fold.
type Error struct {
	Code   Code
	Kind   events.Kind // the kind of object concerned (for a missing member: the member's)
	Detail string
	// Cause, for CodeInvalid, is the validation error: its
	// *events.FieldError leaves name each invalid field.
	Cause error
	// Missing is the member that does not exist, for CodeMissingApp,
	// CodeMissingCronJob and CodeMissingUser.
	Missing *events.Aggregate
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %s", e.Kind, e.Code, e.Detail) }

// invalid turns a validation error of the events package into an *Error.
func invalid(kind events.Kind, err error) error {
	return &Error{Code: CodeInvalid, Kind: kind, Detail: strings.TrimPrefix(err.Error(), "invalid: "), Cause: err}
}

// stamp fills in what the log records besides the command's input. A dry
// run gets a command ID of its own, so that it is never a duplicate.
func (s *Service) stamp(m Meta, env events.Envelope) events.Envelope {
	env.Actor = m.Actor
	env.IfVersion = m.IfVersion
	env.Time = s.now().UTC()
	env.CommandID = commandID(m)
	if m.DryRun {
		env.CommandID = newCommandID()
	}
	return env
}

// execute appends env, waits for it to be folded and returns the verdict
// (for a duplicate: the verdict of the first record of the command).
func (s *Service) execute(ctx context.Context, m Meta, env events.Envelope) (projections.Verdict, error) {
	env = s.stamp(m, env)
	off, err := s.log.Append(ctx, env)
	if errors.Is(err, events.ErrInvalid) { // e.g. over the record size limit
		return projections.Verdict{}, invalid(env.Aggregate.Kind, err)
	}
	if err != nil {
		return projections.Verdict{}, err
	}
	if off <= s.proj.Applied() {
		// Folded already (the fold is fast), or the log was wiped or
		// restored under the projection and this offset is an old
		// record's: the record there must be this command's.
		if err := s.proj.View(func(r projections.Reader) error {
			v, found, err := r.Verdict(off)
			if err == nil && (!found || v.CommandID != env.CommandID) {
				err = ErrLogReplaced
			}
			return err
		}); err != nil {
			return projections.Verdict{}, err
		}
	}
	if err := s.proj.WaitFor(ctx, off); err != nil {
		return projections.Verdict{}, err
	}
	return s.verdict(env, off)
}

// commandID is the command ID of a request: derived from its idempotency
// key (per actor), random otherwise.
func commandID(m Meta) string {
	if m.IdempotencyKey != "" {
		return m.Actor + "/" + m.IdempotencyKey
	}
	return newCommandID()
}

// replayed returns the verdict of an earlier request with the same
// idempotency key, found=false if there was none.
func (s *Service) replayed(m Meta, env events.Envelope) (projections.Verdict, bool, error) {
	if m.IdempotencyKey == "" {
		return projections.Verdict{}, false, nil
	}
	var off int64
	var found bool
	err := s.proj.View(func(r projections.Reader) error {
		var err error
		off, found, err = r.CommandOffset(commandID(m))
		return err
	})
	if err != nil || !found {
		return projections.Verdict{}, false, err
	}
	v, err := s.verdict(env, off)
	return v, true, err
}

// verdict reads the fold's verdict on the record at off (for a duplicate:
// on the first record of the command) and turns a rejection into *Error.
func (s *Service) verdict(env events.Envelope, off int64) (projections.Verdict, error) {
	var v projections.Verdict
	err := s.proj.View(func(r projections.Reader) error {
		var found bool
		var err error
		v, found, err = r.Verdict(off)
		if err == nil && found && v.Reason == projections.ReasonDuplicate {
			v, found, err = r.Verdict(v.DuplicateOf)
		}
		if err == nil && !found {
			err = fmt.Errorf("no verdict for offset %d after it was folded", off)
		}
		return err
	})
	if err != nil {
		return v, err
	}
	if !v.Accepted {
		return v, rejected(env, v, nil)
	}
	return v, nil
}

// rejected turns the fold's rejection of env into an *Error; cause is
// the validation error behind an invalid verdict when the fold was just
// asked (a verdict read back from the store has its Detail only).
func rejected(env events.Envelope, v projections.Verdict, cause error) error {
	e := &Error{Kind: env.Aggregate.Kind, Detail: v.Detail}
	switch v.Reason {
	case projections.ReasonExists:
		e.Code = CodeExists
	case projections.ReasonNotFound:
		e.Code = CodeNotFound
	case projections.ReasonVersionMismatch:
		e.Code = CodeVersionMismatch
	case projections.ReasonNotRunning:
		e.Code = CodeNotRunning
	case projections.ReasonTokenInUse:
		e.Code = CodeTokenInUse
	case projections.ReasonRolloutMoved:
		e.Code = CodeRolloutMoved
	case projections.ReasonMissingMember:
		e.Code = CodeInvalid
		if v.Missing != nil {
			if code, ok := missingCodes[v.Missing.Kind]; ok {
				e.Code, e.Kind, e.Missing = code, v.Missing.Kind, v.Missing
			}
		}
	default:
		e.Code = CodeInvalid
		if cause != nil {
			return invalid(env.Aggregate.Kind, cause)
		}
	}
	return e
}

// missingCodes are the failure codes of a missing member, by its kind.
var missingCodes = map[events.Kind]Code{
	events.KindApp:     CodeMissingApp,
	events.KindCronJob: CodeMissingCronJob,
	events.KindUser:    CodeMissingUser,
}

func newCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// view reads the projection.
func (s *Service) view(fn func(r projections.Reader) error) error { return s.proj.View(fn) }

func notFound(kind events.Kind, name string) error {
	return &Error{Code: CodeNotFound, Kind: kind, Detail: fmt.Sprintf("%s %q does not exist", strings.ReplaceAll(string(kind), "_", " "), name)}
}

func checkName(kind events.Kind, name string) error {
	if err := events.ValidateName(kind, name); err != nil {
		return invalid(kind, &events.FieldError{Field: "name", Err: err})
	}
	return nil
}
