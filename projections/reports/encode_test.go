package reports

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Moved from projections/encode_test.go with the device entry's code.

// sameAsMarshal fails the test unless the device's appender writes what
// json.Marshal writes (or both fail).
func sameAsMarshal(t *testing.T, d Device) {
	t.Helper()
	want, wantErr := json.Marshal(d)
	got, err := d.appendJSON(nil)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%#v: appendJSON error %v, json.Marshal error %v", d, err, wantErr)
	}
	if wantErr == nil && !bytes.Equal(got, want) {
		t.Fatalf("appendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

// sameAsUnmarshal fails the test if the fast reader read b into something
// other than what json.Unmarshal reads (or read what it rejects). It
// reports whether the fast reader read it.
func sameAsUnmarshal(t *testing.T, b []byte) bool {
	t.Helper()
	var fast Device
	if !fast.readJSON(b) {
		return false
	}
	var want Device
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("fast reader read what json.Unmarshal rejects (%v):\n%s", err, b)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Fatalf("fast reader differs from json.Unmarshal on\n%s\nfast %#v\nwant %#v", b, fast, want)
	}
	return true
}

func deviceSeeds() []Device {
	odd := "é <b>&amp; \"q\" \\ \n\t\x01 \u2028 \xff end"
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	return []Device{
		{},
		{DeviceID: "d-1", DeviceGroup: "edge", Hostname: "vm", Labels: map[string]string{"site": "berlin", "ring": "canary", "v": odd}, LastSeen: at, AppliedVersion: 7, ConvergedAt: 7, StatusChangedAt: at.Add(-time.Hour),
			Apps: []events.AppStatus{{Name: "web", Version: 7, Status: events.AppStatusRunning, Running: 2, Expected: 2}}, Errors: []string{}},
		{DeviceID: odd, DeviceGroup: odd, Hostname: odd, LastSeen: at.In(time.FixedZone("x", 3600)), AppliedVersion: -1, ConvergedAt: -1, Silent: true,
			Apps: []events.AppStatus{{Name: odd, Status: events.AppStatusPullFailed, Error: odd, Running: -1}, {}}, Errors: []string{odd, ""}, Failure: odd},
		{LastSeen: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, // a time json.Marshal refuses
	}
}

// TestDeviceDocument: the inventory's device entries are written as
// json.Marshal writes them, and read as json.Unmarshal reads them.
func TestDeviceDocument(t *testing.T) {
	for i, d := range deviceSeeds() {
		sameAsMarshal(t, d)
		b, err := json.Marshal(d)
		if err != nil {
			continue
		}
		if !sameAsUnmarshal(t, b) && i < 3 {
			t.Errorf("the fast reader did not read %s", b)
		}
	}
	for _, s := range []string{`{"device_id":"a","Device_ID":"b"}`, `{"device_id":"a","x":1}`, `{"last_seen":null}`, `{"apps_status":null,"errors":null}`} {
		sameAsUnmarshal(t, []byte(s))
	}
}

func FuzzDeviceDocument(f *testing.F) {
	for _, d := range deviceSeeds() {
		b, _ := json.Marshal(d)
		f.Add(b, d.DeviceID, d.Failure, int64(3), int64(7), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, id, s string, n, ns int64, flag bool) {
		sameAsUnmarshal(t, b)
		at := time.Unix(n%(1<<34), ns%1_000_000_000)
		sameAsMarshal(t, Device{DeviceID: id, DeviceGroup: s, Hostname: id + s, LastSeen: at, AppliedVersion: n, ConvergedAt: ns, Silent: flag,
			StatusChangedAt: at.UTC(), Apps: []events.AppStatus{{Name: s, Version: n, Status: id, Running: int(ns), Expected: int(n), Error: s}},
			Errors: []string{s}, Failure: s})
	})
}
