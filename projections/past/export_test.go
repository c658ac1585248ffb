package past

import "github.com/nebula-orchestrator/nebula-go/projections"

// NewStrided is New with a time index of the given stride (records).
func NewStrided(store Store, stride int64) *Past {
	return &Past{store: store, times: projections.NewTimeIndex(stride)}
}
