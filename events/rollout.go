package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// RolloutPolicy is how a change reaches a device group's devices: in
// waves, each a cumulative percentage of the group's devices, gated on the
// health the devices report (docs/rollouts.md). A group without one takes
// every change at once (Nebula 2.7's behaviour).
type RolloutPolicy struct {
	// Waves are cumulative percentages of the devices, increasing, the
	// last 100.
	Waves []int `json:"waves"`
	// MinHealthyTime is how long a device must run the new version with
	// every container up to count as healthy (a Go duration: "60s").
	MinHealthyTime string `json:"min_healthy_time"`
	// HealthyDeadline bounds each wave: past it, the rollout aborts.
	HealthyDeadline string `json:"healthy_deadline"`
	// MaxFailedPercent and MaxSilentPercent of a wave's devices abort the
	// rollout when crossed.
	MaxFailedPercent float64 `json:"max_failed_percent"`
	MaxSilentPercent float64 `json:"max_silent_percent"`
	// AutoPromote promotes a healthy wave by itself (otherwise by hand);
	// AutoRevert serves the last stable version again on an abort.
	AutoPromote bool `json:"auto_promote"`
	AutoRevert  bool `json:"auto_revert"`
	// CanaryLabels put the devices carrying all of them in the first wave.
	CanaryLabels map[string]string `json:"canary_labels,omitempty"`
}

// The defaults of the fields a policy leaves out.
const (
	DefaultMinHealthyTime   = "60s"
	DefaultHealthyDeadline  = "10m"
	DefaultMaxFailedPercent = 10
	DefaultMaxSilentPercent = 25
	maxWaves                = 10
)

// UnmarshalJSON reads a policy strictly (an unknown key is an error) and
// gives the fields it leaves out their defaults.
func (p *RolloutPolicy) UnmarshalJSON(b []byte) error {
	var in struct {
		Waves            []int             `json:"waves"`
		MinHealthyTime   *string           `json:"min_healthy_time"`
		HealthyDeadline  *string           `json:"healthy_deadline"`
		MaxFailedPercent *float64          `json:"max_failed_percent"`
		MaxSilentPercent *float64          `json:"max_silent_percent"`
		AutoPromote      *bool             `json:"auto_promote"`
		AutoRevert       *bool             `json:"auto_revert"`
		CanaryLabels     map[string]string `json:"canary_labels"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	*p = RolloutPolicy{Waves: in.Waves, MinHealthyTime: DefaultMinHealthyTime, HealthyDeadline: DefaultHealthyDeadline,
		MaxFailedPercent: DefaultMaxFailedPercent, MaxSilentPercent: DefaultMaxSilentPercent, AutoPromote: true, AutoRevert: true,
		CanaryLabels: in.CanaryLabels}
	setIf(&p.MinHealthyTime, in.MinHealthyTime)
	setIf(&p.HealthyDeadline, in.HealthyDeadline)
	setIf(&p.MaxFailedPercent, in.MaxFailedPercent)
	setIf(&p.MaxSilentPercent, in.MaxSilentPercent)
	setIf(&p.AutoPromote, in.AutoPromote)
	setIf(&p.AutoRevert, in.AutoRevert)
	return nil
}

// Validate checks the policy; each problem names its field.
func (p RolloutPolicy) Validate() error { return joinInvalid(p.problems()) }

func (p RolloutPolicy) problems() []error {
	var errs []error
	switch {
	case len(p.Waves) == 0:
		errs = append(errs, fieldErr("rollout.waves", errors.New("at least one wave (e.g. [5, 25, 100])")))
	case len(p.Waves) > maxWaves:
		errs = append(errs, fieldErr("rollout.waves", fmt.Errorf("at most %d waves", maxWaves)))
	default:
		for i, w := range p.Waves {
			if w < 1 || w > 100 || (i > 0 && w <= p.Waves[i-1]) {
				errs = append(errs, fieldErr("rollout.waves", errors.New("percentages from 1 to 100, each greater than the one before")))
				break
			}
		}
		if p.Waves[len(p.Waves)-1] != 100 {
			errs = append(errs, fieldErr("rollout.waves", errors.New("the last wave must be 100 (every device)")))
		}
	}
	minHealthy, err := parsePolicyDuration(p.MinHealthyTime, 0, 24*time.Hour)
	errs = append(errs, fieldErr("rollout.min_healthy_time", err))
	deadline, err := parsePolicyDuration(p.HealthyDeadline, time.Second, 7*24*time.Hour)
	errs = append(errs, fieldErr("rollout.healthy_deadline", err))
	if err == nil && deadline <= minHealthy {
		errs = append(errs, fieldErr("rollout.healthy_deadline", errors.New("must be longer than min_healthy_time")))
	}
	for field, v := range map[string]float64{"rollout.max_failed_percent": p.MaxFailedPercent, "rollout.max_silent_percent": p.MaxSilentPercent} {
		if !(v >= 0 && v <= 100) {
			errs = append(errs, fieldErr(field, errors.New("a percentage from 0 to 100")))
		}
	}
	for k, v := range p.CanaryLabels {
		if !labelKey.MatchString(k) || !labelValue.MatchString(v) {
			errs = append(errs, fieldErr("rollout.canary_labels", fmt.Errorf("label %q=%q: keys of 1 to 63 letters, digits, '.', '_', '-', '/', values of up to 63 of those but '/'", k, v)))
			break
		}
	}
	return errs
}

// MinHealthy and Deadline are the policy's durations (valid policies).
func (p RolloutPolicy) MinHealthy() time.Duration {
	d, _ := time.ParseDuration(p.MinHealthyTime)
	return d
}
func (p RolloutPolicy) Deadline() time.Duration {
	d, _ := time.ParseDuration(p.HealthyDeadline)
	return d
}

func parsePolicyDuration(s string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("a duration from %v to %v (\"60s\", \"10m\")", lo, hi)
	}
	return d, nil
}

var (
	labelKey   = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,63}$`)
	labelValue = regexp.MustCompile(`^[A-Za-z0-9._-]{0,63}$`)
)

// ParseLabels reads a device's labels as a worker declares them:
// "ring=canary,site=berlin".
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range bytes.Split([]byte(s), []byte(",")) {
		kv = bytes.TrimSpace(kv)
		if len(kv) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok || !labelKey.Match(k) || !labelValue.Match(v) {
			return nil, fmt.Errorf("label %q: want key=value, keys of 1 to 63 letters, digits, '.', '_', '-', '/', values of up to 63 of those but '/'", kv)
		}
		if _, dup := out[string(k)]; dup {
			return nil, fmt.Errorf("label %q is given twice", k)
		}
		out[string(k)] = string(v)
	}
	if len(out) > 32 {
		return nil, errors.New("at most 32 labels")
	}
	return out, nil
}

// The decisions on a rollout.
const (
	DecisionPromote  = "promote"  // the next wave takes the new version
	DecisionPause    = "pause"    // no promotion until resumed
	DecisionResume   = "resume"   // promotions again
	DecisionAbort    = "abort"    // stop; with Revert, every device gets the stable version again
	DecisionComplete = "complete" // every wave is healthy: the new version is the stable one
)

// RolloutCounts are the devices of a wave (or of a rollout) by health, as
// a decision saw them.
type RolloutCounts struct {
	Devices int `json:"devices"`
	Healthy int `json:"healthy"`
	Pending int `json:"pending"`
	Failed  int `json:"failed"`
	Silent  int `json:"silent"`
}

// RolloutDecidedV is a decision on the rollout of version Target of a
// device group, taken on its wave Wave (the active one). The fold accepts
// it only while it still applies (same target, same wave, a state it can
// leave), so that of managers racing to take the same decision, exactly
// one does.
type RolloutDecidedV struct {
	Decision string         `json:"decision"`
	Target   int64          `json:"target"`
	Wave     int            `json:"wave"`
	Revert   bool           `json:"revert,omitempty"`
	Reason   string         `json:"reason"`
	Counts   *RolloutCounts `json:"counts,omitempty"`
	// Since, on an abort, is when its cause began: the report that
	// crossed the threshold, or the deadline.
	Since *time.Time `json:"since,omitempty"`
}

func (RolloutDecidedV) EventType() Type { return RolloutDecided }

// Validate checks the decision's fields.
func (p RolloutDecidedV) Validate() error {
	var errs []error
	switch p.Decision {
	case DecisionPromote, DecisionPause, DecisionResume, DecisionAbort, DecisionComplete:
	default:
		errs = append(errs, fieldErr("decision", fmt.Errorf("%q is not one of promote, pause, resume, abort, complete", p.Decision)))
	}
	if p.Target < 0 {
		errs = append(errs, fieldErr("target", errors.New("a version (an offset)")))
	}
	if p.Wave < 0 || p.Wave >= maxWaves {
		errs = append(errs, fieldErr("wave", fmt.Errorf("from 0 to %d", maxWaves-1)))
	}
	if p.Revert && p.Decision != DecisionAbort {
		errs = append(errs, fieldErr("revert", errors.New("only with abort")))
	}
	if len(p.Reason) > 1000 {
		errs = append(errs, fieldErr("reason", errors.New("at most 1000 bytes")))
	}
	if c := p.Counts; c != nil && (c.Devices < 0 || c.Healthy < 0 || c.Pending < 0 || c.Failed < 0 || c.Silent < 0) {
		errs = append(errs, fieldErr("counts", errors.New("not negative")))
	}
	return joinInvalid(errs)
}

// The headers a worker identifies its device with on a poll of /info, so
// that a rollout answers it by its wave (a Nebula 2.7 worker sends
// neither).
const (
	DeviceIDHeader     = "Nebula-Device-Id"
	DeviceLabelsHeader = "Nebula-Device-Labels" // FormatLabels: "ring=canary,site=berlin"
)

// FormatLabels writes labels as ParseLabels reads them, sorted by key.
func FormatLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}
