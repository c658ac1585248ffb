package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// TestPollNamesTheDevice: a poll carries the device's ID and its labels
// (sorted), so that a rollout answers the device by its wave; a worker
// without an ID sends neither.
func TestPollNamesTheDevice(t *testing.T) {
	got := make(chan http.Header, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Header().Set("ETag", `"1"`)
		_, _ = w.Write([]byte(`{"apps": [], "apps_list": [], "prune_id": 0, "cron_jobs": [], "cron_jobs_list": [], "device_group_id": 1}`))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		id     string
		labels map[string]string
		wantID string
		wantLb string
	}{
		{"dev-1", map[string]string{"site": "berlin", "ring": "canary"}, "dev-1", "ring=canary,site=berlin"},
		{"", map[string]string{"ring": "canary"}, "", ""},
	} {
		a := NewAgent(Config{Group: "g", Manager: srv.URL, StateDir: t.TempDir(), RequestTimeout: time.Second, NoLongPoll: true,
			DeviceID: tc.id, Labels: tc.labels}, nil)
		if _, _, _, err := a.poll(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		h := <-got
		if h.Get(events.DeviceIDHeader) != tc.wantID || h.Get(events.DeviceLabelsHeader) != tc.wantLb {
			t.Fatalf("device %q: sent %q and %q", tc.id, h.Get(events.DeviceIDHeader), h.Get(events.DeviceLabelsHeader))
		}
	}
}
