package worker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/worker"
)

// TestDeviceID: generated once and kept; one written by hand is used if
// the manager would take it, and refused with the file named otherwise
// (every report of the device would be refused).
func TestDeviceID(t *testing.T) {
	dir := t.TempDir()
	id, err := worker.DeviceID(dir)
	if err != nil || events.ValidateDeviceID(id) != nil {
		t.Fatalf("generated device ID %q, %v", id, err)
	}
	if again, err := worker.DeviceID(dir); again != id || err != nil {
		t.Fatalf("device ID not kept: %q then %q (%v)", id, again, err)
	}
	path := filepath.Join(dir, "device-id")
	if err := os.WriteFile(path, []byte("  truck-0042.eu \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := worker.DeviceID(dir); got != "truck-0042.eu" || err != nil {
		t.Fatalf("hand-written device ID: %q, %v", got, err)
	}
	for _, bad := range []string{"dev1", "truck 42 of the fleet", strings.Repeat("x", 65), "caf\u00e9-device"} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := worker.DeviceID(dir)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not valid") {
			t.Errorf("device ID %q: got %q, %v; want an error naming %s", bad, got, err, path)
		}
	}
}
