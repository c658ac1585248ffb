package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Heartbeat is what a device sends, in place of a full report, when
// nothing changed since its last one: who it is and the version it runs.
// POST /api/v2/reports takes either; a 2.7 worker sends full reports only.
type Heartbeat struct {
	Heartbeat      bool   `json:"heartbeat"` // true: what tells one from a report
	DeviceID       string `json:"device_id"`
	DeviceGroup    string `json:"device_group"`
	AppliedVersion int64  `json:"applied_version"`
}

// MaxHeartbeatSize bounds a heartbeat's body.
const MaxHeartbeatSize = 2 << 10

// IsHeartbeat says whether a report body is a heartbeat: a JSON object
// with "heartbeat": true (a full report has no such key, and is refused
// with one).
func IsHeartbeat(b []byte) bool {
	if len(b) > MaxHeartbeatSize || !bytes.Contains(b, []byte(`"heartbeat"`)) {
		return false
	}
	var h struct {
		Heartbeat bool `json:"heartbeat"`
	}
	return json.Unmarshal(b, &h) == nil && h.Heartbeat
}

// DecodeHeartbeat parses and validates a heartbeat: unknown fields, a
// missing identity or version are errors (ErrInvalid).
func DecodeHeartbeat(b []byte) (Heartbeat, error) {
	h := Heartbeat{AppliedVersion: -2}
	if len(b) > MaxHeartbeatSize {
		return Heartbeat{}, fmt.Errorf("%w: heartbeat of %d bytes exceeds %d", ErrInvalid, len(b), MaxHeartbeatSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Heartbeat{}, fmt.Errorf("%w: heartbeat: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Heartbeat{}, fmt.Errorf("%w: heartbeat: trailing data", ErrInvalid)
	}
	var errs []error
	if !h.Heartbeat {
		errs = append(errs, fieldErr("heartbeat", errors.New("must be true")))
	}
	if err := ValidateDeviceID(h.DeviceID); err != nil {
		errs = append(errs, fieldErr("device_id", err))
	}
	if err := ValidateName(KindDeviceGroup, h.DeviceGroup); err != nil {
		errs = append(errs, fieldErr("device_group", err))
	}
	if h.AppliedVersion < -1 {
		errs = append(errs, fieldErr("applied_version", errors.New("must be a version, or -1 for none")))
	}
	return h, joinInvalid(errs)
}
