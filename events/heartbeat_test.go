package events

import (
	"errors"
	"testing"
)

// TestDecodeHeartbeat: a heartbeat is told from a report by its key, and
// read strictly.
func TestDecodeHeartbeat(t *testing.T) {
	good := []byte(`{"heartbeat": true, "device_id": "device-0001", "device_group": "edge", "applied_version": 42}`)
	if !IsHeartbeat(good) {
		t.Fatal("a heartbeat not told from a report")
	}
	h, err := DecodeHeartbeat(good)
	if err != nil || h.DeviceID != "device-0001" || h.DeviceGroup != "edge" || h.AppliedVersion != 42 {
		t.Fatalf("%+v %v", h, err)
	}
	for _, b := range []string{`{"device_id": "device-0001", "device_group": "edge"}`, `{"heartbeat": false}`, `{"hostname": "heartbeat"}`, `[1]`} {
		if IsHeartbeat([]byte(b)) {
			t.Errorf("%s taken for a heartbeat", b)
		}
	}
	for _, b := range []string{
		`{"heartbeat": true, "device_id": "device-0001", "device_group": "edge"}`,                                   // no version
		`{"heartbeat": true, "device_group": "edge", "applied_version": 1}`,                                         // no device
		`{"heartbeat": true, "device_id": "device-0001", "device_group": "bad group", "applied_version": 1}`,        // bad group
		`{"heartbeat": true, "device_id": "device-0001", "device_group": "edge", "applied_version": 1, "apps": []}`, // unknown key
		`{"heartbeat": true, "device_id": "device-0001", "device_group": "edge", "applied_version": 1} {}`,          // trailing
	} {
		if _, err := DecodeHeartbeat([]byte(b)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", b, err)
		}
	}
}

// FuzzDecodeHeartbeat: whatever the body, decoding answers a valid
// heartbeat or ErrInvalid, never a panic.
func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add([]byte(`{"heartbeat": true, "device_id": "device-0001", "device_group": "edge", "applied_version": 42}`))
	f.Add([]byte(`{"heartbeat": true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeartbeat(b)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: %v", b, err)
		}
		if err == nil && (ValidateDeviceID(h.DeviceID) != nil || h.AppliedVersion < -1 || !h.Heartbeat) {
			t.Fatalf("%q accepted as %+v", b, h)
		}
	})
}
