package manager

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRefusalsLogOncePerReason: a flood of refused reports logs one line
// per reason every RefusalLogEvery, naming the reason and the device, and
// says how many were not logged; every one is counted and the last
// RecentRefusals are kept.
func TestRefusalsLogOncePerReason(t *testing.T) {
	var out bytes.Buffer
	f := newRefusals(slog.New(slog.NewTextHandler(&out, nil)))
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for i := range 250 {
		f.add(Refusal{Time: at.Add(time.Duration(i) * 100 * time.Millisecond), Reason: refusedInvalid, DeviceID: "device-00000001", Detail: "colour"})
	}
	f.add(Refusal{Time: at, Reason: refusedForbidden, DeviceID: "device-00000002"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// 25 s of invalid reports at 10/s: logged at 0, 10 and 20 s.
	if len(lines) != 4 || !strings.Contains(lines[0], "reason=invalid") || !strings.Contains(lines[0], "device_id=device-00000001") ||
		!strings.Contains(lines[1], "refused_since_last_line=99") {
		t.Fatalf("log:\n%s", out.String())
	}
	if c := f.countsCopy(); c[refusedInvalid] != 250 || c[refusedForbidden] != 1 {
		t.Fatalf("counts %v", c)
	}
	if l := f.list(); len(l) != RecentRefusals || l[0].Reason != refusedForbidden {
		t.Fatalf("%d kept, newest %+v", len(l), l[0])
	}
}
