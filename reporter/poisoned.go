package reporter

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
)

// Poisoned is a report the reporter refused: it is in the poison topic
// with the reason.
type Poisoned struct {
	Time        time.Time `json:"time"`
	Reason      string    `json:"reason"`
	DeviceID    string    `json:"device_id,omitempty"`
	DeviceGroup string    `json:"device_group,omitempty"`
	Hostname    string    `json:"hostname,omitempty"`
}

// RecentPoisoned reads the last n reports of the poison topic, newest
// first.
func RecentPoisoned(ctx context.Context, cfg kafkalog.Config, names Names, n int) ([]Poisoned, error) {
	recs, err := kafkalog.TopicTail(ctx, cfg, names.Poison(), n)
	out := make([]Poisoned, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		var body struct {
			DeviceID    string `json:"device_id"`
			DeviceGroup string `json:"device_group"`
			Hostname    string `json:"hostname"`
		}
		_ = json.Unmarshal(rec.Value, &body) // best effort: it was refused
		p := Poisoned{Time: rec.Timestamp.UTC(), Reason: rec.Headers[metaReason], DeviceID: string(rec.Key),
			DeviceGroup: body.DeviceGroup, Hostname: body.Hostname}
		if p.DeviceID == "" {
			p.DeviceID = body.DeviceID
		}
		out = append(out, p)
	}
	return out, err
}
