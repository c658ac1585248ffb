package projections

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/chain"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
)

// FoldVersion changes whenever the fold's logic changes what it writes for
// the same log. A store built by another fold version is rebuilt.
const FoldVersion = 12 // 7: rollouts (rollout.go); 8: documents keep their versions (versions.go); 9: the last checkpoint; 10: versions in chunks; 11: random command IDs remembered for a window (recent.go); 12: its buckets compact

// RecordError is a record the fold cannot read (corrupt, unknown type,
// newer schema). The projection stops there: it never skips a record.
type RecordError struct {
	Offset int64
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("event log record at offset %d cannot be folded: %v", e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Result is the outcome of folding one record.
type Result struct {
	Verdict Verdict
	// Groups are the device groups whose /info changed.
	Groups []string
	// Cause is what made an invalid result invalid (the spec's validation
	// error, with its field errors), for the answer to a command. It is
	// not stored: a verdict read back has Detail only.
	Cause error
}

// Apply folds one record into kv: it decodes the record, decides whether
// its event is accepted against the state in kv, writes the new state and
// the verdict. It is deterministic: the same state and record give the same
// verdict and writes on every manager. Rejections are verdicts, not errors;
// errors are unreadable records (*RecordError) and storage failures.
func Apply(kv KV, rec events.Record) (Result, error) { return ApplyTrusted(kv, rec, nil) }

// ApplyTrusted is Apply with signatures checked against trust (nil:
// none): see notSigned.
func ApplyTrusted(kv KV, rec events.Record, trust *signing.Trust) (Result, error) {
	env, err := events.Decode(rec.Value)
	if err != nil {
		return Result{}, &RecordError{Offset: rec.Offset, Err: err}
	}
	head, err := extendChain(kv, rec)
	if err != nil {
		return Result{}, err
	}
	unsigned, err := notSigned(kv, trust != nil, trust != nil && trust.Verify(rec.Value, rec.Signature), rec.Offset)
	if err != nil {
		return Result{}, err
	}
	res, err := applyEnvelope(kv, rec.Offset, env, env.Validate(), head, unsigned, nil)
	if err != nil {
		return res, err
	}
	st, _, err := getDoc[Stats](kv, keyStats)
	if err != nil {
		return res, err
	}
	st.count(res.Verdict.Accepted)
	return res, putDoc(kv, keyStats, st)
}

// applyEnvelope folds a decoded event (everything Apply does but the
// decoding, the chain and the stats); invalid is env.Validate(), which
// depends on no state, so the applier computes it with the decoding, on
// every core. head is the hash chain after the record, stored with its
// verdict. memo, if not nil, keeps decoded documents from one record to the next.
func applyEnvelope(kv KV, off int64, env events.Envelope, invalid error, head []byte, unsigned bool, memo *memos) (Result, error) {
	// The record's fold state in one allocation (a replay folds a
	// hundred thousand records a second).
	st := &struct {
		vkv versioningKV
		f   folder
	}{}
	vkv, f := &st.vkv, &st.f
	*f = folder{kv: vkv, off: off, env: env, invalid: invalid, memo: memo}
	*vkv = versioningKV{KV: kv, off: off, env: &f.env}
	v := Verdict{Offset: off, Type: env.Type, Aggregate: env.Aggregate, CommandID: env.CommandID}
	var err error
	if unsigned {
		// Before dedupe: a forged record must not take a command ID.
		err = reject(ReasonUnsigned, "no trusted key signed this record: a manager of this cluster did not write it")
	} else if err = f.dedupe(); err == nil {
		if err = f.decide(); err == nil {
			err = f.followRollouts()
		}
	}
	var cause error
	if err == nil {
		v.Accepted = true
	} else if rej := asRejection(err); rej != nil {
		v.Reason, v.Detail, v.DuplicateOf, v.Missing = rej.reason, rej.detail, rej.duplicateOf, rej.missing
		cause = rej.cause
		f.touched = nil
	} else {
		return Result{}, fmt.Errorf("fold offset %d: %w", off, err)
	}
	if err := putRecord(kv, off, head, v, env.Time); err != nil {
		return Result{}, err
	}
	if env.Aggregate.Name != "" && !(v.Accepted && vkv.own) {
		// An accepted event that versioned its own document is found
		// among its versions (EventOffsets): one Badger entry less.
		if err := kv.Set(objectEventKey(env.Aggregate, off), nil); err != nil {
			return Result{}, err
		}
	}
	groups := make([]string, 0, len(f.touched))
	for g := range f.touched {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	return Result{Verdict: v, Groups: groups, Cause: cause}, nil
}

// asRejection is the rejection err is or wraps, nil if none.
func asRejection(err error) *rejection {
	if rej, ok := err.(*rejection); ok {
		return rej // most are returned as made: no errors.As, whose target escapes
	}
	var rej *rejection
	if errors.As(err, &rej) {
		return rej
	}
	return nil
}

// extendChain extends the log's hash chain (package events/chain) with
// rec, kept as the current head (and, by applyEnvelope, per offset).
func extendChain(kv KV, rec events.Record) ([]byte, error) {
	prev, _, err := kv.Get(keyChainHead)
	if err != nil {
		return nil, err
	}
	head := chain.NewHasher().Next(prev, rec.Offset, rec.Value)
	return head, kv.Set(keyChainHead, head)
}

// notSigned says whether the fold must reject the record at off for want
// of a manager's signature: the fold checks signatures, no trusted key
// signed it (signed: checked ahead, on every core), and an earlier record
// of the log was signed (the records of a log from before signing was
// turned on keep their verdicts). The first signed record marks the log as
// signed from there.
func notSigned(kv KV, checking, signed bool, off int64) (bool, error) {
	if !checking {
		return false, nil
	}
	_, signedLog, err := kv.Get(keySignedFrom)
	if err != nil {
		return false, err
	}
	if signed {
		if !signedLog {
			return false, kv.Set(keySignedFrom, encodeInt(off))
		}
		return false, nil
	}
	return signedLog, nil
}

// chainAt is the chain value after offset off (read from kv).
func chainAt(kv KV, off int64) ([]byte, bool, error) {
	e, found, err := getRecord(kv, off)
	return e.head, found, err
}

func (st *Stats) count(accepted bool) {
	st.Records++
	if accepted {
		st.Accepted++
	} else {
		st.Rejected++
	}
}

type rejection struct {
	reason      Reason
	detail      string
	duplicateOf int64
	missing     *events.Aggregate // ReasonMissingMember
	cause       error             // ReasonInvalid: the validation error
}

func (r *rejection) Error() string { return string(r.reason) + ": " + r.detail }

func reject(reason Reason, format string, args ...any) error {
	return &rejection{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// folder holds what folding one record needs.
type folder struct {
	kv      KV
	off     int64
	env     events.Envelope
	invalid error // env.Validate()
	touched map[string]bool
	// rolling are the touched groups with a rollout policy (rollout.go
	// follows their rollouts; the others cost nothing more).
	rolling map[string]bool
	// memo: the applier's decoded documents (nil: none; memo.go)
	memo *memos
}

// markTouched records that the devices of group name get another answer
// (the map made at the first: most records touch none).
func (f *folder) markTouched(name string) {
	if f.touched == nil {
		f.touched = map[string]bool{}
	}
	f.touched[name] = true
}

// touch records that a change reached group g (its devices' answers
// change), and whether its rollout must follow.
func (f *folder) touch(g DeviceGroup) {
	f.markTouched(g.Name)
	if g.Rollout != nil {
		if f.rolling == nil {
			f.rolling = map[string]bool{}
		}
		f.rolling[g.Name] = true
	}
}

// dedupe rejects a record whose command ID an earlier record carried (for
// a random ID: one of the recentWindow before it, recent.go), and
// otherwise remembers the command ID.
func (f *folder) dedupe() error {
	id := f.env.CommandID
	if id == "" {
		return nil
	}
	if !keyedCommand(id) {
		return f.dedupeRecent(id)
	}
	k := key(prefixCommand, id)
	prev, found, err := f.kv.Get(k)
	if err != nil {
		return err
	}
	if found {
		return &rejection{reason: ReasonDuplicate, detail: fmt.Sprintf("command %q was folded at offset %d", id, decodeInt(prev)), duplicateOf: decodeInt(prev)}
	}
	return f.kv.Set(k, encodeInt(f.off))
}

func (f *folder) decide() error {
	if err := f.invalid; err != nil {
		return &rejection{reason: ReasonInvalid, detail: err.Error(), cause: err}
	}
	if err := f.checkVersion(); err != nil {
		return err
	}
	name := f.env.Aggregate.Name
	switch p := f.env.Payload.(type) {
	case events.AppCreatedV:
		return f.createApp(name, p.Spec)
	case events.AppReplacedV:
		return f.changeApp(name, func(a *App) error { a.AppSpec = p.Spec; return nil })
	case events.AppPatchedV:
		return f.changeApp(name, func(a *App) error {
			a.AppSpec = p.Patch.Apply(a.AppSpec)
			return validSpec(p.Patch.ValidateApplied(a.AppSpec))
		})
	case events.AppStoppedV:
		return f.changeApp(name, func(a *App) error { a.Running = false; return nil })
	case events.AppStartedV:
		return f.changeApp(name, func(a *App) error { a.Running = true; return nil })
	case events.AppRestartedV:
		return f.changeApp(name, func(a *App) error {
			if !a.Running {
				return reject(ReasonNotRunning, "app %q is stopped; start it instead", name)
			}
			return nil
		})
	case events.AppDeletedV:
		return f.deleteApp(name)

	case events.DeviceGroupCreatedV:
		return f.createGroup(name, p.Spec)
	case events.DeviceGroupReplacedV:
		return f.changeGroup(name, func(g *DeviceGroup) { g.DeviceGroupSpec = p.Spec }, true)
	case events.DeviceGroupPatchedV:
		return f.changeGroup(name, func(g *DeviceGroup) { g.DeviceGroupSpec = p.Patch.Apply(g.DeviceGroupSpec) }, true)
	case events.DeviceGroupPrunedV:
		return f.changeGroup(name, func(g *DeviceGroup) { g.PruneID = f.off }, false)
	case events.DeviceGroupDeletedV:
		return f.deleteGroup(name)
	case events.RolloutDecidedV:
		return f.decideRollout(name, p)
	case events.FleetPrunedV:
		return f.pruneFleet()

	case events.CronJobCreatedV:
		return f.createCron(name, p.Spec)
	case events.CronJobReplacedV:
		return f.changeCron(name, func(c *CronJob) error { c.CronJobSpec = p.Spec; return nil })
	case events.CronJobPatchedV:
		return f.changeCron(name, func(c *CronJob) error {
			c.CronJobSpec = p.Patch.Apply(c.CronJobSpec)
			return validSpec(c.CronJobSpec.Validate())
		})
	case events.CronJobDeletedV:
		return f.deleteCron(name)

	case events.UserCreatedV:
		return f.createUser(name, p)
	case events.UserUpdatedV:
		return f.changeUser(name, p.PasswordHash, p.TokenSHA256)
	case events.UserTokenRefreshedV:
		return f.changeUser(name, nil, &p.TokenSHA256)
	case events.UserDeletedV:
		return f.deleteUser(name)

	case events.UserGroupCreatedV:
		return f.createUserGroup(name, p.Spec)
	case events.UserGroupUpdatedV:
		return f.changeUserGroup(name, p.Patch)
	case events.UserGroupDeletedV:
		return f.deleteUserGroup(name)
	case events.LogCheckpointedV:
		if p.Covers >= f.off {
			return reject(ReasonCheckpoint, "a checkpoint covers earlier records, not offset %d", p.Covers)
		}
		head, found, err := chainAt(f.kv, p.Covers)
		if err != nil {
			return err
		}
		if !found || hex.EncodeToString(head) != p.Head {
			return reject(ReasonCheckpoint, "the log up to offset %d is not what checkpoint signer %q saw: a record was changed or lost", p.Covers, p.KeyID)
		}
		return putDoc(f.kv, keyCheckpoint, Checkpoint{Offset: f.off, Covers: p.Covers, Head: p.Head, KeyID: p.KeyID, Time: f.env.Time})
	}
	// Decode only returns catalogue types, and every one is handled above.
	return fmt.Errorf("fold has no case for %s", f.env.Type)
}

func validSpec(err error) error {
	if err != nil {
		return &rejection{reason: ReasonInvalid, detail: "the result would be invalid: " + err.Error(), cause: err}
	}
	return nil
}

// checkVersion enforces IfVersion: the aggregate's current version (0 when
// it does not exist) must equal it.
func (f *folder) checkVersion() error {
	want := f.env.IfVersion
	if want == 0 {
		return nil
	}
	var cur int64
	var err error
	name := f.env.Aggregate.Name
	switch f.env.Aggregate.Kind {
	case events.KindApp:
		cur, err = version[App](f.kv, key(prefixApp, name), func(d App) int64 { return d.Version })
	case events.KindDeviceGroup:
		cur, err = version[DeviceGroup](f.kv, key(prefixGroup, name), func(d DeviceGroup) int64 { return d.Version })
	case events.KindCronJob:
		cur, err = version[CronJob](f.kv, key(prefixCron, name), func(d CronJob) int64 { return d.Version })
	case events.KindUser:
		cur, err = version[User](f.kv, key(prefixUser, name), func(d User) int64 { return d.Version })
	case events.KindUserGroup:
		cur, err = version[UserGroup](f.kv, key(prefixUserGroup, name), func(d UserGroup) int64 { return d.Version })
	default:
		return reject(ReasonInvalid, "%s events take no version precondition", f.env.Aggregate.Kind)
	}
	if err != nil {
		return err
	}
	if cur != want {
		return reject(ReasonVersionMismatch, "%s is at version %d, not %d", f.env.Aggregate, cur, want)
	}
	return nil
}

func version[T any](kv KV, k []byte, v func(T) int64) (int64, error) {
	doc, found, err := getDoc[T](kv, k)
	if err != nil || !found {
		return 0, err
	}
	return v(doc), nil
}
