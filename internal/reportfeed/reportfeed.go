// Package reportfeed connects the device events topic (events/kafkalog)
// to the report projection (projections): the adapter between the two.
package reportfeed

import (
	"context"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Opener returns the opener FollowReports takes, reading topic.
func Opener(ctx context.Context, cfg kafkalog.Config, topic string) func(from map[int32]int64) (projections.ReportReader, error) {
	return func(from map[int32]int64) (projections.ReportReader, error) {
		r, err := kafkalog.NewTopicReader(ctx, cfg, topic, from)
		if err != nil {
			return nil, err
		}
		return reader{r}, nil
	}
}

type reader struct{ r *kafkalog.TopicReader }

func (d reader) Fetch(ctx context.Context) ([]projections.DeviceRecord, error) {
	recs, err := d.r.Fetch(ctx)
	out := make([]projections.DeviceRecord, len(recs))
	for i, r := range recs {
		out[i] = projections.DeviceRecord{Partition: r.Partition, Offset: r.Offset, Value: r.Value}
	}
	return out, err
}

func (d reader) Bounds(ctx context.Context) (starts, ends map[int32]int64, err error) {
	return d.r.Bounds(ctx)
}

func (d reader) Close() { d.r.Close() }
