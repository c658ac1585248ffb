package reports_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// eventsTopic starts a broker with a device events topic of partitions
// partitions and returns its config, a context bounding the test, and a
// producer of device.reported events over devices devices of group edge
// (in turn); produce returns how many it produced in all.
func eventsTopic(t *testing.T, topic string, partitions int32, devices int) (kafkalog.Config, context.Context, func(count int) int) {
	t.Helper()
	b := testenv.StartBroker(t, t.TempDir())
	cfg := kafkalog.Config{Brokers: []string{b.Addr()}}
	ctx := testenv.Context(t, 2*time.Minute)
	if err := kafkalog.EnsureTopic(ctx, cfg, topic, partitions, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	produced := 0
	return cfg, ctx, func(count int) int {
		t.Helper()
		var recs []*kgo.Record
		for range count {
			device := fmt.Sprintf("device-%04d", produced%devices)
			v, _ := json.Marshal(events.DeviceEvent{Type: events.DeviceReported, ID: fmt.Sprint("ev-", produced), DeviceID: device, DeviceGroup: "edge",
				Time: time.Now(), Report: &events.Report{DeviceID: device, DeviceGroup: "edge", Hostname: "h", ReportCreationTime: 1764000000, AppliedVersion: 1}})
			recs = append(recs, &kgo.Record{Key: []byte(device), Value: v})
			produced++
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return produced
	}
}
